"""One run (teacher or student, any method, any task) as a work unit; ``train_units`` of
``training.engine`` trains it, as it trains grids: a single run is a grid of one.

``train_run(cfg, run_dir)`` is a work unit: a function of a config that writes a run
directory and returns a ``RunResult``, so it runs the same in a local loop or on a cluster.
It is resumable: rerun it on the same directory and it continues from the last checkpoint
(bit-exact on CPU, since the data stream and the lr are functions of the step). This module
also holds the checks and preparation of a run directory that ``training.grid`` shares.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from curriculens import constants as C
from curriculens.config import canonical_json, config_diff
from curriculens.device import resolve_device
from curriculens.errors import CurriculensError
from curriculens.io import read_json, write_json
from models.checkpoint import (
    list_checkpoints,
    read_meta,
    read_model_config,
    remove_stale_temp_dirs,
    strip_optimizer_state,
    verify_checkpoint,
)
from models.configs import ModelConfig
from training.config import RunConfig
from training.engine import (  # noqa: F401  (re-exported: the names callers import from here)
    EVAL_BATCH,
    RunResult,
    TeacherProvider,
    TrainingDiverged,
    Unit,
    evaluate,
    teacher_outputs,
    train_units,
    truncate_metrics,
    write_done,
)
from training.experiment import check_experiment, init_experiment
from training.extraction import check_models as check_extraction_models
from training.rundir import check_replaceable, run_lock, sweep_run_dir
from training.schedule import check_progressive
from training.tasks import Task, build_task

log = logging.getLogger(__name__)


def resolve_teacher_dir(teacher_dir: str, run_dir: Path) -> Path:
    """A student's ``teacher_dir`` is stored relative to its own run directory when possible
    (so an experiment directory can be moved); absolute paths are used as they are."""
    p = Path(teacher_dir)
    return p if p.is_absolute() else (run_dir / p).resolve()


def check_outputs(student: ModelConfig, teacher: ModelConfig, teacher_dir: Path) -> None:
    """A student learns its teacher's output distribution, so both must score the same classes
    or vocabulary (``n_outputs`` of ``models.configs.ModelKind``; 0 = unknown, not checked).
    Raises a one-line CurriculensError instead of a shape error at the first distilled step."""
    s, t = student.n_outputs, teacher.n_outputs
    if s and t and s != t:
        raise CurriculensError(
            f"the student's {student.label} model has {s} outputs but the teacher {teacher_dir} has {t} "
            f"({teacher.label}): a student distils its teacher's vocabulary/classes, so set the student's "
            f"{'vocab_size' if student.takes_tokens else 'n_classes'} to {t}"
        )


def check_teacher(cfg: RunConfig, run_dir: Path) -> Path | None:
    """The teacher directory of a distilling student, after checking (reading only) that it is
    a finished run on the same task, distinct from ``run_dir``, whose checkpoints are intact,
    whose outputs match the student's (``check_outputs``), and that a two-shot checkpoint lies
    in its range. None for teachers and ``ce`` students."""
    dist = cfg.distill
    if cfg.role != C.ROLE_STUDENT or dist.method == C.METHOD_CE:
        return None
    tdir = resolve_teacher_dir(dist.teacher_dir, run_dir)
    if tdir == run_dir.resolve():
        raise CurriculensError(f"a student cannot take its teacher's run directory {tdir}; choose another --name")
    if not (tdir / C.RUN_CONFIG_FILE).is_file():
        raise CurriculensError(f"teacher run not found: {tdir} (no {C.RUN_CONFIG_FILE})")
    tcfg = RunConfig.from_dict(read_json(tdir / C.RUN_CONFIG_FILE))
    if not (tdir / C.DONE_FILE).is_file():
        raise CurriculensError(f"teacher run {tdir} has not finished (no {C.DONE_FILE}); train it first")
    if canonical_json(tcfg.task) != canonical_json(cfg.task):
        raise CurriculensError(f"teacher run {tdir} was trained on another task than this student's")
    check_outputs(cfg.model, tcfg.model, tdir)
    ckpts = list_checkpoints(tdir)
    if not ckpts:
        raise CurriculensError(f"teacher run {tdir} has no checkpoints")
    expected = tcfg.model
    for _, path in ckpts:
        verify_checkpoint(path, expected)
    first, last = ckpts[0][0], ckpts[-1][0]
    check_progressive(dist, [s for s, _ in ckpts], read_json(tdir / C.RUN_CONFIG_FILE)["checkpoints"]["save_every"])
    if dist.method == C.METHOD_TWO_SHOT and not first <= dist.two_shot_step <= last:
        raise CurriculensError(
            f"two-shot step {dist.two_shot_step} is outside the teacher's checkpoints ({first}..{last})"
        )
    return tdir


def check_run_dir(cfg: RunConfig, run_dir: Path, force: bool) -> bool:
    """Whether ``run_dir`` already holds this run (False: nothing there yet, or ``force``);
    raises CurriculensError if it holds another config, or anything ``training.rundir.
    check_replaceable`` refuses (a directory that is not a curriculens run, which ``force``
    never deletes; a teacher run wanted by a student). Configs compare by value, defaults
    filled in. Reads only."""
    stored = check_replaceable(run_dir, cfg.role)
    if stored is None or force:
        return False
    if stored != cfg:
        raise CurriculensError(
            f"{run_dir} holds a run with a different config ({config_diff(stored, cfg)}); "
            "pass --force to overwrite it or choose another name"
        )
    return True


def prepare_run_dir(cfg: RunConfig, run_dir: Path, force: bool, wait: bool = False) -> None:
    """Inside the run's lock (``run_lock``): undo what a killed writer left (``training.rundir.
    sweep_run_dir``), check ``run_dir`` again (``check_run_dir``), then create it with its
    config.json. ``force`` replaces a run: its probe results leave the experiment's database
    first (``probes.store.forget_run``), then the directory is renamed aside and deleted after
    the new config.json is in place, so a crash leaves the old run or the new one. Finally the
    temporary checkpoint directories of a killed writer are removed."""
    if sweep_run_dir(run_dir):
        log.info("removed what a killed writer left of %s", run_dir)
    exists = check_run_dir(cfg, run_dir, force)
    aside = None
    if force and check_replaceable(run_dir, cfg.role) is not None:
        if run_dir.parent.name == C.RUNS_DIR:
            from probes.store import forget_run  # pandas: only when a run is replaced

            if forget_run(run_dir.parent.parent, run_dir.name, wait=wait):
                log.info("removed the probe results of the replaced run %s", run_dir.name)
        aside = run_dir.parent / f".{run_dir.name}.old-{os.getpid()}"
        os.replace(run_dir, aside)
    if not exists:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / C.RUN_CONFIG_FILE, cfg.to_dict())
    if aside is not None:
        shutil.rmtree(aside)
    if remove_stale_temp_dirs(run_dir):
        log.info("removed unfinished checkpoint directories of a killed writer in %s", run_dir)


def finished_result(cfg: RunConfig, run_dir: Path) -> RunResult | None:
    """The RunResult of a finished run, else None. A run whose last checkpoint ends it (its
    final step, or where ``stop_at_acc`` was reached) but that was killed before done.json is
    marked done here, not retrained. Call it inside the run's lock."""
    if (run_dir / C.DONE_FILE).is_file():
        done = read_json(run_dir / C.DONE_FILE)
        _strip_all(cfg, run_dir)  # a kill right after done.json leaves the last optimizer state
        return RunResult(run_dir, done.get("steps", cfg.steps), done.get("final_eval", {}), 0.0, skipped=True)
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        return None
    step, path = ckpts[-1]
    meta = read_meta(path)
    stopped = bool(cfg.stop_at_acc) and 0 < step < cfg.steps and meta.get("eval_acc", 0.0) >= cfg.stop_at_acc
    if step < cfg.steps and not stopped:
        return None
    truncate_metrics(run_dir / C.METRICS_FILE, step)
    final_eval = write_done(run_dir, step, stopped, meta, meta.get("wall_time_s", 0.0))
    _strip_all(cfg, run_dir)
    log.info("run %s had finished at step %d without %s; marked done", run_dir, step, C.DONE_FILE)
    return RunResult(run_dir, step, final_eval, 0.0, resumed_from=step)


def _strip_all(cfg: RunConfig, run_dir: Path) -> None:
    if not cfg.checkpoints.keep_optimizer:
        for _, path in list_checkpoints(run_dir):
            strip_optimizer_state(path)


def train_run(
    cfg: RunConfig,
    run_dir: Path | str,
    *,
    force: bool = False,
    progress: bool = False,
    wait: bool = False,
    task: Task | None = None,
) -> RunResult:
    """Train one run (teacher or student) into ``run_dir``; resume if it was interrupted.

    Everything is checked before the first write (task, model, teacher, the experiment's task,
    what ``run_dir`` holds). The run directory is then locked (``run_lock``: a second writer is
    refused, or queues with ``wait``) and checked again inside the lock. A run inside
    ``EXP/runs/`` creates ``EXP/experiment.json`` if needed. Raises ``TrainingDiverged`` (a
    CurriculensError) when the loss stops being finite; the last finite checkpoint is kept.
    ``task``: the task of ``cfg.task`` if the caller has built it (building a PCFG task loads
    its grammar); None = built here.
    """
    run_dir = Path(run_dir)
    t0 = time.time()
    exp_dir = run_dir.parent.parent if run_dir.parent.name == C.RUNS_DIR else None
    # --- validate: nothing is written before this block has passed
    task = task if task is not None else build_task(cfg.task)
    model_cfg = cfg.model
    task.check_model(model_cfg)
    teacher_dir = check_teacher(cfg, run_dir)
    if teacher_dir is not None and cfg.distill.method == C.METHOD_CURRICULUM_EXTRACTION:
        check_extraction_models(model_cfg, read_model_config(list_checkpoints(teacher_dir)[-1][1]))
    if exp_dir is not None:
        check_experiment(exp_dir, cfg.task)
    check_run_dir(cfg, run_dir, force)
    device = resolve_device(cfg.device)

    with run_lock(run_dir, wait):
        prepare_run_dir(cfg, run_dir, force, wait)  # checks again: another writer may have finished meanwhile
        if exp_dir is not None:
            init_experiment(exp_dir, cfg.task)
        done = finished_result(cfg, run_dir)
        if done is not None:
            log.info("run %s already finished; skipping", run_dir)
            return done
        unit = Unit(cfg, run_dir)
        return train_units([unit], task, device, teacher_dir=teacher_dir, t0=t0, progress=progress, desc=cfg.name)[
            cfg.name
        ]
