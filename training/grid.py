"""Student grids: many students of one teacher trained together, each written as a normal run.

``train_grid(cfgs, runs_dir)`` checks that the student RunConfigs ``cfgs`` can share one loop
(``check_grid``: one task, one data stream, one teacher, one schedule), locks every student's
run directory and hands them to ``training.engine.train_units``, the engine that also trains
single runs. So:

- every student sees the same training batches (``cfg.data_seed`` is the same for all; a
  student's ``seed`` sets its initialisation only);
- the teacher's outputs are computed once per (teacher checkpoint, step) and shared;
- MLP students of one model and optimizer config are stacked into one batched model
  (``training.stacked.StackedMLPGroup``); the rest run side by side (``SingleGroup``);
- each student is a normal run directory (config.json, metrics.jsonl, checkpoints/, done.json):
  a grid of one is bit-identical to ``train_run(cfg)``; a student stacked with others equals
  it to float rounding (batched matmuls may round differently);
- resumable after kill -9, bit-exact on CPU: a rerun resumes all unfinished students from the
  latest step at which all of them have a resumable checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from curriculens import constants as C
from curriculens.config import canonical_json
from curriculens.device import resolve_device
from curriculens.errors import CurriculensError
from curriculens.io import read_json
from models.checkpoint import list_checkpoints, read_model_config
from training.config import RunConfig
from training.engine import RunResult, Unit, group_key, train_units
from training.experiment import check_experiment, init_experiment
from training.extraction import check_models as check_extraction_models
from training.loop import check_outputs, check_run_dir, check_teacher, finished_result, prepare_run_dir, run_lock
from training.tasks import build_task

log = logging.getLogger(__name__)

# fields every student of a grid must share (they run in one loop over one data stream)
SHARED_FIELDS = ("task", "steps", "batch_size", "checkpoints", "device", "amp")


def check_grid(cfgs: list[RunConfig]) -> None:
    """Raise CurriculensError unless ``cfgs`` can be trained as one grid."""
    if not cfgs:
        raise CurriculensError("the grid has no students")
    names = [c.name for c in cfgs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise CurriculensError(f"two students of the grid have the same run name: {', '.join(dup)}")
    first = cfgs[0].to_dict()
    for cfg in cfgs:  # each config validated itself on construction
        if cfg.role != C.ROLE_STUDENT:
            raise CurriculensError(f"grid run {cfg.name} is not a student")
        d = cfg.to_dict()
        for key in SHARED_FIELDS:
            if canonical_json(d[key]) != canonical_json(first[key]):
                raise CurriculensError(f"grid students must share {key}; {cfg.name} differs from {cfgs[0].name}")
        if cfg.data_seed != cfgs[0].data_seed:
            raise CurriculensError(f"grid students share one data stream; {cfg.name} has stream seed {cfg.data_seed}")
    dirs = {c.distill.teacher_dir for c in cfgs if c.distill.method != C.METHOD_CE}
    if len(dirs) > 1:
        raise CurriculensError(f"grid students must follow one teacher, got {sorted(dirs)}")


_group_key = group_key  # the name training.plans uses


def train_grid(
    cfgs: list[RunConfig], runs_dir: Path | str, *, force: bool = False, progress: bool = False, wait: bool = False
) -> list[RunResult]:
    """Train the student configs ``cfgs`` together into ``runs_dir/<name>/``; returns one
    RunResult per config (in order). Finished students are skipped; rerunning resumes.
    Everything is checked before the first write; every student's run directory is then
    locked (``training.loop.run_lock``; ``wait`` queues behind another writer)."""
    check_grid(cfgs)
    runs_dir = Path(runs_dir)
    t0 = time.time()
    base = cfgs[0]
    device = resolve_device(base.device)
    task = build_task(base.task)
    teacher_dir = None
    first = next((c for c in cfgs if c.distill.method != C.METHOD_CE), None)
    if first is not None:
        teacher_dir = check_teacher(first, runs_dir / first.name)
    t_model = RunConfig.from_dict(read_json(teacher_dir / C.RUN_CONFIG_FILE)).model if teacher_dir else None
    for c in cfgs:
        task.check_model(c.model)
        if t_model is not None and c.distill.method != C.METHOD_CE:
            check_outputs(c.model, t_model, teacher_dir)
        if c.distill.method == C.METHOD_CURRICULUM_EXTRACTION:
            check_extraction_models(c.model, read_model_config(list_checkpoints(teacher_dir)[-1][1]))
    exp_dir = runs_dir.parent if runs_dir.name == C.RUNS_DIR else None
    if exp_dir is not None:
        check_experiment(exp_dir, base.task)
    for c in cfgs:
        check_run_dir(c, runs_dir / c.name, force)
    with contextlib.ExitStack() as locks:
        for c in cfgs:
            locks.enter_context(run_lock(runs_dir / c.name, wait))
        if exp_dir is not None:
            init_experiment(exp_dir, base.task)
        results: dict[str, RunResult] = {}
        units = []
        for c in cfgs:  # everything is validated and locked: from here on the grid writes
            prepare_run_dir(c, runs_dir / c.name, force)
            done = finished_result(c, runs_dir / c.name)
            if done is not None:
                results[c.name] = done
            else:
                units.append(Unit(c, runs_dir / c.name))
        if units:
            results.update(
                train_units(
                    units,
                    task,
                    device,
                    teacher_dir=teacher_dir,
                    t0=t0,
                    progress=progress,
                    desc=f"grid x{len(units)}",
                    done_extra={"grid": len(cfgs)},
                )
            )
        return [results[c.name] for c in cfgs]
