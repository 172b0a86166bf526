"""The experiment directory: one teacher run and its student runs side by side.

::

    EXP/
      experiment.json            task config, created_at, curriculens version, notes
      runs/
        teacher/                 one run (config.json, metrics.jsonl, checkpoints/, done.json)
        progressive-s0/          students: <method>[-T<two_shot_step>]-s<seed>
        one-shot-s0/
        ce-s0/
        two-shot-ckpt2000-T500-s0/  teacher checkpoint 2000 for the student's first 500 steps
      results.sqlite             the probe results database (probes.store)
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from curriculens import constants as C
from curriculens.config import canonical_json, check_name, dataclass_default, to_dict
from curriculens.curves import Transition, first_crossing, teacher_transition, transition_rule, two_shot_step
from curriculens.errors import CurriculensError
from curriculens.io import read_json, read_jsonl, write_json
from curriculens.version import __version__
from training.config import DistillConfig, RunConfig
from training.tasks.configs import TaskConfig, same_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """What the probe sweep and the dashboard need to know about one run."""

    name: str
    path: Path
    role: str
    method: str
    seed: int
    config: RunConfig
    done: bool


def student_run_name(
    method: str,
    seed: int,
    two_shot_step: int = -1,
    tags: str = "",
    *,
    two_shot_T: int = 0,
    exp_dir: Path | str | None = None,
) -> str:
    """A student's run directory name: ``<method><tags>-s<seed>``, and for two-shot
    ``two-shot-ckpt<teacher checkpoint step>-T<student steps on it><tags>-s<seed>`` (T as in
    the paper's (2, T) and ``--two-shot-T``); ``tags`` name the other settings a grid varies
    (``-w100-tau0.5-a0.1-x2``).

    Experiments made before this naming hold ``two-shot-T<teacher checkpoint step><tags>-s<seed>``
    (T there meant the checkpoint): with ``exp_dir``, such a run directory is kept (resumed,
    skipped) when the new name does not exist yet."""
    if method != C.METHOD_TWO_SHOT:
        return f"{method}{tags}-s{seed}"
    t_part = f"-T{two_shot_T}" if two_shot_T > 0 else ""
    name = f"two-shot-ckpt{two_shot_step}{t_part}{tags}-s{seed}"
    if exp_dir is not None:
        runs = Path(exp_dir) / C.RUNS_DIR
        legacy = f"two-shot-T{two_shot_step}{tags}-s{seed}"
        if not (runs / name).exists() and (runs / legacy).is_dir():
            return legacy
    return name


def relative_teacher_dir(teacher_dir: Path | str, student_name: str) -> str:
    """How a student's ``DistillConfig.teacher_dir`` names its teacher: relative to the
    student's run directory, a sibling of the teacher's (``../teacher``), so an experiment
    directory can be moved or copied whole."""
    teacher_dir = Path(teacher_dir)
    return os.path.relpath(teacher_dir.resolve(), (teacher_dir.parent / student_name).resolve())


# DistillConfig fields only one method uses: a student of another method keeps their defaults
METHOD_ONLY_FIELDS = {
    C.METHOD_TWO_SHOT: ("two_shot_step", "two_shot_T"),
    C.METHOD_CURRICULUM_EXTRACTION: ("extract_steps", "extract_seed"),
}


def student_distill(
    method: str,
    seed: int,
    teacher_dir: Path | str,
    base: DistillConfig | None = None,
    name: str = "",
    tags: str = "",
    **changes,
) -> tuple[str, DistillConfig]:
    """The student factory's core (the CLI, the plans, grid specs and the importer all use it):
    a student's run name and DistillConfig. ``base``'s fields (else DistillConfig's defaults)
    with ``changes`` on top; the fields of ``METHOD_ONLY_FIELDS`` that belong to another method
    keep their defaults (a two-shot base's checkpoint does not carry over to a one-shot
    student); ``name`` "" = ``student_run_name`` (with ``tags``) in the teacher's experiment (an
    existing legacy name is kept); the teacher's path is stored relative to the student's run
    (``relative_teacher_dir``), for every method. Validated (on construction); writes nothing."""
    teacher_dir = Path(teacher_dir)
    fields = {**to_dict(base or DistillConfig()), **changes, "method": method}
    for owner, keys in METHOD_ONLY_FIELDS.items():
        if owner != method:
            for key in keys:
                fields[key] = dataclass_default(DistillConfig, key)
    exp_dir = teacher_dir.parent.parent if teacher_dir.parent.name == C.RUNS_DIR else None
    name = name or student_run_name(
        method, seed, fields["two_shot_step"], tags, two_shot_T=fields["two_shot_T"], exp_dir=exp_dir
    )
    check_name(name)
    fields["teacher_dir"] = relative_teacher_dir(teacher_dir, name)
    return name, DistillConfig(**fields)


def student_config(
    base: RunConfig,
    teacher_dir: Path | str,
    method: str,
    seed: int,
    *,
    name: str = "",
    tags: str = "",
    distill: DistillConfig | None = None,
    run_fields: dict | None = None,
    **changes,
) -> RunConfig:
    """A student RunConfig: ``base`` (the teacher's config, or a config file) with
    ``run_fields`` (model, optim, steps, ...) on top, named and distilling as
    ``student_distill(method, seed, teacher_dir, distill, name, tags, **changes)`` says.
    Validated; writes nothing."""
    name, dist = student_distill(method, seed, teacher_dir, distill, name, tags, **changes)
    return replace(base, **(run_fields or {}), name=name, role=C.ROLE_STUDENT, seed=seed, distill=dist)


def two_shot_label(two_shot_step: int, two_shot_T: int = 0) -> str:
    """How legends name two-shot students: ``two-shot (teacher ckpt 5,500, first 2,000 steps)``:
    the teacher checkpoint they learn from first, and for how many of their own steps."""
    steps = f", first {two_shot_T:,} steps" if two_shot_T > 0 else ""
    return f"two-shot (teacher ckpt {two_shot_step:,}{steps})"


def check_experiment(exp_dir: Path | str, task: TaskConfig) -> bool:
    """True if ``exp_dir`` holds an experiment on ``task``, False if it holds none yet; raises
    CurriculensError if it holds one on another task or cannot hold one. Writes nothing."""
    exp_dir = Path(exp_dir)
    if exp_dir.exists() and not exp_dir.is_dir():
        raise CurriculensError(f"experiment directory {exp_dir} is a file")
    path = exp_dir / C.EXPERIMENT_FILE
    if not path.is_file():
        return False
    old = read_json(path)
    if not isinstance(old, dict):
        raise CurriculensError(f"{path} is not an experiment file (a JSON {type(old).__name__}); move it aside")
    if not same_task(old.get("task"), task, str(path)):
        raise CurriculensError(
            f"{exp_dir} already holds an experiment on a different task ({canonical_json(old.get('task'))}); use another --out"
        )
    return True


def init_experiment(exp_dir: Path | str, task: TaskConfig | dict, notes: str = "") -> Path:
    """Create ``exp_dir`` with its ``experiment.json`` (kept if it exists with the same task)."""
    exp_dir = Path(exp_dir)
    if check_experiment(exp_dir, task):
        return exp_dir
    exp_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        exp_dir / C.EXPERIMENT_FILE,
        {"task": task, "created_at": time.time(), "curriculens_version": __version__, "notes": notes},
    )
    return exp_dir


def is_experiment(path: Path | str) -> bool:
    return (Path(path) / C.EXPERIMENT_FILE).is_file()


def is_run(path: Path | str) -> bool:
    return (Path(path) / C.RUN_CONFIG_FILE).is_file() and (Path(path) / C.CHECKPOINTS_DIR).is_dir()


def read_experiment(exp_dir: Path | str) -> dict:
    return read_json(Path(exp_dir) / C.EXPERIMENT_FILE)


def read_run(run_dir: Path | str) -> RunInfo:
    run_dir = Path(run_dir)
    cfg = RunConfig.from_dict(read_json(run_dir / C.RUN_CONFIG_FILE))
    return RunInfo(
        name=run_dir.name,
        path=run_dir,
        role=cfg.role,
        method=cfg.method,
        seed=cfg.seed,
        config=cfg,
        done=(run_dir / C.DONE_FILE).is_file(),
    )


def list_runs(exp_dir: Path | str) -> list[RunInfo]:
    """Every run of an experiment, teacher first, then students by name (names starting with
    ``.`` are a killed writer's temporary copies or locks, never runs)."""
    runs_dir = Path(exp_dir) / C.RUNS_DIR
    if not runs_dir.is_dir():
        return []
    runs = [read_run(p) for p in sorted(runs_dir.iterdir()) if not p.name.startswith(".") and is_run(p)]
    return sorted(runs, key=lambda r: (r.role != C.ROLE_TEACHER, r.name))


def find_experiments(root: Path | str) -> list[Path]:
    """Experiment directories at or below ``root`` (depth <= 3), sorted."""
    root = Path(root)
    found = []
    if is_experiment(root):
        found.append(root)
    for depth in ("*", "*/*", "*/*/*"):
        found += [p.parent for p in root.glob(f"{depth}/{C.EXPERIMENT_FILE}")]
    return sorted(set(found))


def unlistable_dirs(root: Path | str) -> list[Path]:
    """Directories at or below ``root`` (depth <= 3, the depth ``find_experiments`` searches)
    that cannot be listed (permission denied...): an experiment inside one is not found, so a
    list of experiments names them instead of leaving it out silently. Experiments are not
    entered (their own reader reports what it cannot read)."""
    out, level = [], [Path(root)]
    for _ in range(4):
        below = []
        for d in level:
            try:
                children = list(d.iterdir())
            except OSError:
                out.append(d)
                continue
            if any(c.name == C.EXPERIMENT_FILE for c in children) and d != Path(root):
                continue
            below += [c for c in children if c.is_dir() and not c.is_symlink() and not c.name.startswith(".")]
        level = below
    return sorted(out)


def read_metrics(run_dir: Path | str) -> list[dict]:
    """The run's evaluation rows (``metrics.jsonl``), sorted by step."""
    return sorted(read_jsonl(Path(run_dir) / C.METRICS_FILE), key=lambda r: r["step"])


def steps_to_acc(rows: list[dict], target: float) -> int | None:
    """The first evaluated step whose held-out accuracy reaches ``target`` (None if never)."""
    return first_crossing([r["step"] for r in rows], [r.get("eval_acc", math.nan) for r in rows], target)


def teacher_transition_of(teacher_dir: Path | str, task_name: str | None) -> Transition | None:
    """The transition of a teacher run's held-out curves under its task's rule
    (``curriculens.curves.teacher_transition``; None: no transition or too few evaluations)."""
    rows = read_metrics(teacher_dir)
    return teacher_transition(
        [r["step"] for r in rows],
        [r.get("eval_acc", math.nan) for r in rows],
        [r.get("eval_loss", math.nan) for r in rows],
        rule=transition_rule(task_name),
    )


def two_shot_checkpoint(teacher_dir: Path | str, task_name: str | None, fallback_frac: float = 0.5) -> int:
    """The teacher checkpoint a two-shot student starts from: the saved step nearest the middle
    of the teacher's transition (``curriculens.curves.two_shot_step``); without a transition,
    the one nearest ``fallback_frac`` of the teacher's steps."""
    from models.checkpoint import list_checkpoints

    steps = [s for s, _ in list_checkpoints(teacher_dir)]
    if not steps:
        raise CurriculensError(f"teacher run {teacher_dir} has no checkpoints")
    found = teacher_transition_of(teacher_dir, task_name)
    if found is None:
        log.info("teacher %s: no transition; two-shot uses %.0f%% of training", teacher_dir, 100 * fallback_frac)
    return two_shot_step(found, steps, fallback_frac)


def teacher_run(exp_dir: Path | str) -> RunInfo | None:
    for run in list_runs(exp_dir):
        if run.role == C.ROLE_TEACHER:
            return run
    return None
