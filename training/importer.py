"""``curriculens import``: a foreign checkpoint trajectory becomes one run of an experiment.

``import_trajectory(ImportConfig) -> ImportResult`` finds the checkpoints (``training.sources``),
names their model (``models.foreign``: an HF ``config.json`` whose architecture the TransformerLens
4 bridge supports, or a parity MLP from its weight shapes), loads every checkpoint once to check
that it fits (``.bin``/``.pt`` through ``torch.load(weights_only=True)``; no code from the
checkpoint runs, no remote code), hashes it, and only then writes::

    EXP/experiment.json                      created if needed (the task must match an existing one)
    EXP/runs/<run>/config.json               a RunConfig (role, method, seed, task, model = hf|mlp)
    EXP/runs/<run>/checkpoints/step_N/       config.json + meta.json (+ model.safetensors with copy)
    EXP/runs/<run>/metrics.jsonl             from trainer_state.json's log_history, when present
    EXP/runs/<run>/import.json               the ImportConfig, layout, per-checkpoint provenance
    EXP/runs/<run>/done.json                 steps, imported: true

The run directory is assembled under a temporary name and renamed into place. Without ``copy``
each checkpoint's ``meta.json`` references the foreign weights in place (``weights``: path,
format, layout) and records their sha256, which every later load verifies; with ``copy`` the
weights are rewritten as ``model.safetensors`` (a native checkpoint). ``meta.json["source"]``
keeps the provenance either way: dir, weights path, revision, commit, sha256.

Two steps whose weights have the same sha256 (public step branches sometimes serve identical
files) are logged as a warning and marked ``duplicate_of`` in both ``meta.json`` and
``import.json``; they stay in the run.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Optional

from curriculens import constants as C
from curriculens.config import canonical_json, coerce_field, to_dict
from curriculens.errors import CurriculensError
from curriculens.io import atomic_dir, read_json, sha256_file, write_json, write_jsonl
from models.checkpoint import ckpt_dirname, load_weights_into, write_model_config
from models.configs import ModelConfig
from models.foreign import (
    TOKENIZER_FILES,
    canonical_hf_config,
    hf_model_config,
    mlp_state,
    read_weights,
    weights_format,
)
from training.config import CheckpointConfig, RunConfig
from training.experiment import init_experiment, read_experiment, student_distill, student_run_name
from training.sources import ForeignCheckpoint, discover
from training.tasks.configs import TaskConfig, TaskField

log = logging.getLogger(__name__)

IMPORT_FILE = "import.json"
# trainer_state.json log_history key -> metrics.jsonl key
TRAINER_METRICS = {"eval_loss": "eval_loss", "eval_accuracy": "eval_acc", "loss": "train_loss", "learning_rate": "lr"}


@dataclass(frozen=True)
class ImportConfig:
    """What to import and as which run.

    Args:
        src: the foreign trajectory (see ``training.sources``).
        out: the experiment directory (created if needed).
        task: the task config (``training.tasks.configs``; a dict such as ``{"name": "text",
            "corpus": ...}`` is parsed on construction).
        role: ``teacher`` | ``student``.
        method: a student's method (``ce``, ``one-shot``, ``progressive``, ``two-shot``).
        name: run name; "" = ``teacher`` or ``<method>-s<seed>``.
        seed: the run's seed label (students of several seeds sit side by side).
        copy: rewrite the weights into the run as safetensors instead of referencing them.
        force: replace a run of the same name.
        two_shot_step, two_shot_T: a two-shot student's teacher checkpoint and switch step.
    """

    src: str
    out: str
    task: TaskField = field(default_factory=dict)
    role: str = C.ROLE_TEACHER
    method: str = ""
    name: str = ""
    seed: int = 0
    copy: bool = False
    force: bool = False
    two_shot_step: int = -1
    two_shot_T: int = 0

    def __post_init__(self) -> None:
        if self.role not in (C.ROLE_TEACHER, C.ROLE_STUDENT):
            raise CurriculensError(f"unknown role {self.role!r} (teacher or student)")
        if self.role == C.ROLE_TEACHER and self.method not in ("", C.METHOD_TEACHER):
            raise CurriculensError("--method applies to students only (add --role student)")
        if self.role == C.ROLE_STUDENT and self.method not in C.METHODS:
            raise CurriculensError(f"a student needs --method, one of {', '.join(C.METHODS)}")
        if isinstance(self.task, dict) and not self.task.get("name"):
            raise CurriculensError("the task config needs a name (--task)")
        coerce_field(self, "task")
        if self.name and (self.name.startswith(".") or "/" in self.name or self.name != self.name.strip()):
            raise CurriculensError(f"bad run name {self.name!r}")

    @property
    def run_name(self) -> str:
        if self.name:
            return self.name
        if self.role == C.ROLE_TEACHER:
            return C.ROLE_TEACHER
        return student_run_name(self.method, self.seed, self.two_shot_step)


@dataclass
class ImportResult:
    run_dir: Path
    layout: str
    model: str
    steps: list[int]
    duplicates: dict[int, int]  # step -> the earlier step with the same weights


@dataclass(frozen=True)
class _Planned:
    ckpt: ForeignCheckpoint
    fmt: str
    sha256: str
    duplicate_of: Optional[int]


def _model_config(ckpts: list[ForeignCheckpoint]) -> tuple[ModelConfig, str]:
    """The one model config shared by every checkpoint, and the weights layout (hf | mlp)."""
    with_cfg = [c for c in ckpts if c.config is not None]
    if not with_cfg:
        first = ckpts[0]
        try:
            cfg, _ = mlp_state(read_weights(first.weights, weights_format(first.weights)), first.weights)
        except CurriculensError as exc:
            raise CurriculensError(
                f"missing config.json in {first.dir}, and the weights are not a parity MLP ({exc})"
            ) from None
        return cfg, "mlp"
    if len(with_cfg) < len(ckpts):
        missing = next(c for c in ckpts if c.config is None)
        raise CurriculensError(f"missing config.json for step {missing.step} ({missing.dir})")
    from models.hf import bridge_architectures

    supported = bridge_architectures()
    first = with_cfg[0]
    base = hf_model_config(read_json(first.config), first.config, supported)
    for c in with_cfg[1:]:
        raw = read_json(c.config)
        arch = (raw.get("architectures") or ["?"])[0] if isinstance(raw, dict) else "?"
        if arch != base.architecture:
            raise CurriculensError(
                f"mixed architectures across steps: step {first.step} is {base.architecture}, step {c.step} is {arch}"
            )
        other = canonical_hf_config(raw)
        if other != base.config:
            key = next(k for k in sorted(set(other) | set(base.config)) if other.get(k) != base.config.get(k))
            raise CurriculensError(
                f"model configs differ across steps: {key!r} is {base.config.get(key)!r} at step {first.step}, "
                f"{other.get(key)!r} at step {c.step}"
            )
    return base, "hf"


def _check_task(task_cfg: TaskConfig, model_cfg: ModelConfig, first: ForeignCheckpoint):
    from training.tasks import build_task

    task = build_task(task_cfg)
    task.check_model(model_cfg)
    task.check_source(first.dir, model_cfg)
    return task


def _trainer_metrics(ckpts: list[ForeignCheckpoint]) -> list[dict]:
    """metrics.jsonl rows from the last ``trainer_state.json`` (its log_history covers the run)."""
    states = [c.trainer_state for c in ckpts if c.trainer_state is not None]
    steps = {c.step for c in ckpts}
    rows: dict[int, dict] = {}
    if states:
        history = read_json(states[-1]).get("log_history") or []
        for entry in history:
            if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
                continue
            row = rows.setdefault(entry["step"], {"step": entry["step"]})
            for src_key, key in TRAINER_METRICS.items():
                if isinstance(entry.get(src_key), (int, float)):
                    row[key] = float(entry[src_key])
    if not rows:
        return []
    for s in steps:
        rows.setdefault(s, {"step": s})
    for s, row in rows.items():
        row["checkpoint"] = s in steps
    return [rows[s] for s in sorted(rows)]


def _save_every(steps: list[int]) -> int:
    gaps = [b - a for a, b in pairwise(steps) if b > a]
    return Counter(gaps).most_common(1)[0][0] if gaps else max(steps[-1], 1)


def plan_import(cfg: ImportConfig):
    """Validate everything an import needs (reads and hashes, writes nothing)."""
    layout, ckpts = discover(cfg.src)
    model_cfg, weights_layout = _model_config(ckpts)
    out = Path(cfg.out)
    if (out / C.EXPERIMENT_FILE).is_file():
        old = read_experiment(out).get("task")
        if canonical_json(old) != canonical_json(cfg.task):
            raise CurriculensError(f"{out} holds an experiment on a different task ({old}); use another --out")
    run_dir = out / C.RUNS_DIR / cfg.run_name
    if run_dir.exists() and not cfg.force:
        raise CurriculensError(f"run {cfg.run_name} already exists in {out}; use --name, or --force to replace it")
    _check_task(cfg.task, model_cfg, ckpts[0])
    from models.registry import build_model

    model = build_model(model_cfg)
    planned: list[_Planned] = []
    seen: dict[str, int] = {}
    for c in ckpts:
        fmt = weights_format(c.weights)
        load_weights_into(model, read_weights(c.weights, fmt, weights_layout), c.weights)
        digest = sha256_file(c.weights)
        dup = seen.get(digest)
        if dup is not None:
            log.warning("steps %d and %d have byte-identical weights (sha256 %s...)", dup, c.step, digest[:12])
        seen.setdefault(digest, c.step)
        planned.append(_Planned(c, fmt, digest, dup))
    return layout, model_cfg, weights_layout, planned


def import_trajectory(cfg: ImportConfig) -> ImportResult:
    """Validate, then write the run (see the module docstring)."""
    layout, model_cfg, weights_layout, planned = plan_import(cfg)
    out = Path(cfg.out)
    steps = [p.ckpt.step for p in planned]
    run_cfg = RunConfig(
        name=cfg.run_name,
        role=cfg.role,
        task=cfg.task,
        model=model_cfg,
        checkpoints=CheckpointConfig(save_every=_save_every(steps)),
        distill=None
        if cfg.role == C.ROLE_TEACHER
        else student_distill(
            cfg.method,
            cfg.seed,
            out / C.RUNS_DIR / C.ROLE_TEACHER,
            name=cfg.run_name,
            two_shot_step=cfg.two_shot_step,
            two_shot_T=cfg.two_shot_T,
        )[1],
        steps=max(steps[-1], 1),
        seed=cfg.seed,
    )  # validated on construction
    init_experiment(out, cfg.task, notes="")
    final = out / C.RUNS_DIR / cfg.run_name
    dups = {p.ckpt.step: p.duplicate_of for p in planned if p.duplicate_of is not None}
    with atomic_dir(final) as tmp:
        provenance = []
        for p in planned:
            provenance.append(_write_checkpoint(tmp / C.CHECKPOINTS_DIR, p, model_cfg, weights_layout, cfg, dups))
        rows = _trainer_metrics([p.ckpt for p in planned])
        if rows:
            write_jsonl(tmp / C.METRICS_FILE, rows)
        write_json(
            tmp / IMPORT_FILE,
            {
                "config": to_dict(cfg),
                "layout": layout,
                "weights_layout": weights_layout,
                "checkpoints": provenance,
                "duplicates": {str(k): v for k, v in dups.items()},
            },
        )
        write_json(tmp / C.DONE_FILE, {"steps": steps[-1], "imported": True, "n_checkpoints": len(steps)})
        write_json(tmp / C.RUN_CONFIG_FILE, run_cfg.to_dict())  # last: only now does the temp dir look like a run
    from models.foreign import describe_model

    return ImportResult(final, layout, describe_model(model_cfg), steps, dups)


def _write_checkpoint(
    root: Path, p: _Planned, model_cfg: ModelConfig, layout: str, cfg: ImportConfig, dups: dict[int, int]
) -> dict:
    c = p.ckpt
    d = root / ckpt_dirname(c.step)
    d.mkdir(parents=True)
    write_model_config(d, model_cfg)
    source = {
        "dir": str(c.dir.resolve()),
        "weights": str(c.weights.absolute()),
        "revision": c.revision,
        "commit": c.commit,
        "sha256": p.sha256,
        "format": p.fmt,
    }
    meta = {
        "step": c.step,
        "role": cfg.role,
        "method": cfg.method or C.METHOD_TEACHER,
        "run": cfg.run_name,
        "seed": cfg.seed,
        "imported": True,
        "source": source,
    }
    if cfg.copy:
        from safetensors.torch import save_file

        state = read_weights(c.weights, p.fmt, layout)
        save_file(
            {k: v.detach().clone().contiguous() for k, v in state.items()},
            str(d / C.WEIGHTS_FILE),
            metadata={"format": "pt"},
        )
        meta["sha256"] = sha256_file(d / C.WEIGHTS_FILE)
        _copy_tokenizer(c.dir, d)
    else:
        meta["sha256"] = p.sha256
        meta["weights"] = {"path": str(c.weights.absolute()), "format": p.fmt, "layout": layout}
    dup_of = dups.get(c.step)
    if dup_of is not None:
        meta["duplicate_of"] = dup_of
    write_json(d / C.META_FILE, meta)
    return {"step": c.step, **source, **({"duplicate_of": dup_of} if dup_of is not None else {})}


def _copy_tokenizer(src: Path, dst: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)


def is_imported(run_dir: Path | str) -> bool:
    return (Path(run_dir) / IMPORT_FILE).is_file()


__all__ = ["ImportConfig", "ImportResult", "import_trajectory", "plan_import", "is_imported"]
