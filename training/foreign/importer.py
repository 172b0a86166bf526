"""``curriculens import``: a foreign checkpoint trajectory becomes one run of an experiment.

``import_trajectory(ImportConfig) -> ImportResult`` finds the checkpoints (``training.foreign.sources``),
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

Everything is validated first (the target too: ``training.rundir``'s one rule); then the run's
lock is taken (a second import of the same name is refused, or queues with ``wait``), the run
is checked again, a replaced run's probe results leave the database (``probes.store.
forget_run``), and the run directory is assembled under a temporary name and renamed into
place (``curriculens.io.atomic_dir``: a crash leaves the old run or the new). Without ``copy``
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
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from curriculens import constants as C
from curriculens.config import to_dict
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
from probes.store import forget_run
from training.config import CheckpointConfig, RunConfig
from training.experiment import init_experiment, read_experiment, student_distill
from training.foreign.config import ImportConfig
from training.foreign.sources import ForeignCheckpoint, discover
from training.rundir import check_replaceable, run_lock, sweep_run_dir
from training.tasks.configs import TaskConfig, same_task

log = logging.getLogger(__name__)

IMPORT_FILE = "import.json"
# trainer_state.json log_history key -> metrics.jsonl key
TRAINER_METRICS = {"eval_loss": "eval_loss", "eval_accuracy": "eval_acc", "loss": "train_loss", "learning_rate": "lr"}
TOKENS_SEEN = "num_input_tokens_seen"  # trainer_state.json log_history key -> metrics.jsonl "tokens"


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
    duplicate_of: int | None


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
        state = read_json(states[-1])
        if not isinstance(state, dict):
            raise CurriculensError(
                f"{states[-1]} is not a trainer state (a JSON {type(state).__name__}, not an object)"
            )
        history = state.get("log_history") or []
        if not isinstance(history, list):
            raise CurriculensError(f"{states[-1]}: log_history is not a list")
        for entry in history:
            if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
                continue
            row = rows.setdefault(entry["step"], {"step": entry["step"]})
            for src_key, key in TRAINER_METRICS.items():
                if isinstance(entry.get(src_key), (int, float)):
                    row[key] = float(entry[src_key])
            if isinstance(entry.get(TOKENS_SEEN), (int, float)):
                row[C.TOKENS_KEY] = int(entry[TOKENS_SEEN])
    if not rows:
        return []
    for c in ckpts:
        row = rows.setdefault(c.step, {"step": c.step})
        tokens = checkpoint_tokens(c)
        if tokens is not None:
            row.setdefault(C.TOKENS_KEY, tokens)
    for s, row in rows.items():
        row["checkpoint"] = s in steps
    return [rows[s] for s in sorted(rows)]


def select_checkpoints(ckpts: list[ForeignCheckpoint], cfg: ImportConfig) -> list[ForeignCheckpoint]:
    """The checkpoints ``cfg.revisions``, ``cfg.steps`` and ``cfg.every`` keep (in that order), by step."""
    if cfg.revisions:
        from training.foreign.revisions import select

        names = set(select(cfg.revisions, {c.revision: c.step for c in ckpts}))
        ckpts = [c for c in ckpts if c.revision in names]
    if cfg.steps:
        have = {c.step for c in ckpts}
        missing = [s for s in cfg.steps if s not in have]
        if missing:
            shown = ", ".join(str(s) for s in sorted(have)[:8])
            raise CurriculensError(
                f"no checkpoint at step(s) {', '.join(map(str, missing[:5]))} (there are {shown}...)"
            )
        ckpts = [c for c in ckpts if c.step in set(cfg.steps)]
    if cfg.every > 1 and len(ckpts) > 2:
        keep = set(range(0, len(ckpts), cfg.every)) | {len(ckpts) - 1}
        ckpts = [c for i, c in enumerate(ckpts) if i in keep]
    return ckpts


def checkpoint_tokens(c: ForeignCheckpoint) -> int | None:
    """Training tokens seen at checkpoint ``c`` where its source states them: the OLMo-style
    name (``step1000-tokens4B``), else its ``trainer_state.json`` log entry at its step
    (``num_input_tokens_seen``, Trainer's ``include_num_input_tokens_seen``); None otherwise."""
    from training.foreign.sources import parse_tokens

    tokens = parse_tokens(c.revision)
    if tokens is not None or c.trainer_state is None:
        return tokens
    seen = [
        e[TOKENS_SEEN]
        for e in read_json(c.trainer_state).get("log_history") or []
        if isinstance(e, dict) and e.get("step") == c.step and isinstance(e.get(TOKENS_SEEN), (int, float))
    ]
    return int(seen[-1]) if seen else None


def _save_every(steps: list[int]) -> int:
    gaps = [b - a for a, b in pairwise(steps) if b > a]
    return Counter(gaps).most_common(1)[0][0] if gaps else max(steps[-1], 1)


def plan_import(cfg: ImportConfig):
    """Validate everything an import needs (reads and hashes, writes nothing)."""
    layout, ckpts = discover(cfg.src)
    ckpts = select_checkpoints(ckpts, cfg)
    model_cfg, weights_layout = _model_config(ckpts)
    out = Path(cfg.out)
    if (out / C.EXPERIMENT_FILE).is_file():
        old = read_experiment(out).get("task")
        if not same_task(old, cfg.task, str(out / C.EXPERIMENT_FILE)):
            raise CurriculensError(f"{out} holds an experiment on a different task ({old}); use another --out")
    _check_target(cfg)
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
    _trainer_metrics(ckpts)  # a bad trainer_state.json fails here, before anything is written
    return layout, model_cfg, weights_layout, planned


def _check_target(cfg: ImportConfig) -> None:
    """The one rule of ``training.rundir``: only a curriculens run is replaced (with ``force``),
    never another directory, and a student never replaces the teacher. Reads only."""
    run_dir = Path(cfg.out) / C.RUNS_DIR / cfg.run_name
    if check_replaceable(run_dir, cfg.role) is not None and not cfg.force:
        raise CurriculensError(f"run {cfg.run_name} already exists in {cfg.out}; use --name, or --force to replace it")


def import_trajectory(cfg: ImportConfig, wait: bool = False) -> ImportResult:
    """Validate, then write the run under its lock (see the module docstring). A second import
    (or trainer) of the same run is refused, or with ``wait`` queues and then checks again."""
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
    final = out / C.RUNS_DIR / cfg.run_name
    dups = {p.ckpt.step: p.duplicate_of for p in planned if p.duplicate_of is not None}
    with run_lock(final, wait):
        if sweep_run_dir(final):
            log.info("removed what a killed writer left of %s", final)
        _check_target(cfg)  # again: another writer may have made the run meanwhile
        if cfg.force and check_replaceable(final, cfg.role) is not None:
            forget_run(out, cfg.run_name, wait=wait)
        init_experiment(out, cfg.task, notes="")
        _write_run(final, cfg, layout, model_cfg, weights_layout, planned, run_cfg, dups)
    from models.foreign import describe_model

    return ImportResult(final, layout, describe_model(model_cfg), steps, dups)


def _write_run(final, cfg, layout, model_cfg, weights_layout, planned, run_cfg, dups) -> None:
    """Assemble the run under a temporary name and rename it into place (``atomic_dir``)."""
    steps = [p.ckpt.step for p in planned]
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
    tokens = checkpoint_tokens(c)
    if tokens is not None:
        source[C.TOKENS_KEY] = tokens
    meta = {
        "step": c.step,
        "role": cfg.role,
        "method": cfg.method or C.METHOD_TEACHER,
        "run": cfg.run_name,
        "seed": cfg.seed,
        "imported": True,
        "source": source,
        **({C.TOKENS_KEY: tokens} if tokens is not None else {}),
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


def run_tokens(run_dir: Path | str) -> dict[int, int]:
    """``{step: training tokens}`` of a run's checkpoints whose ``meta.json`` states them (an
    import from OLMo-style names or a Trainer's ``num_input_tokens_seen``): the tokens x-axis."""
    from models.checkpoint import list_checkpoints, read_meta

    out = {}
    for step, path in list_checkpoints(run_dir):
        tokens = read_meta(path).get(C.TOKENS_KEY)
        if isinstance(tokens, int):
            out[step] = tokens
    return out


def is_imported(run_dir: Path | str) -> bool:
    return (Path(run_dir) / IMPORT_FILE).is_file()


__all__ = [
    "ImportConfig",
    "ImportResult",
    "import_trajectory",
    "plan_import",
    "is_imported",
    "select_checkpoints",
    "checkpoint_tokens",
    "run_tokens",
]
