"""The pieces every plan shares: student configs, and running a plan (teacher, then students).

A plan is data (a list of RunConfigs); ``run_plan`` executes it with the shared work unit
``train_run``: locally in order, or as Ray tasks (``curriculens.executor``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from curriculens import constants as C
from curriculens.executor import LOCAL, ExecutorConfig, executor_session, map_tasks
from models.configs import ModelConfig
from training.config import CheckpointConfig, DistillConfig, OptimConfig, RunConfig
from training.experiment import init_experiment, student_config

log = logging.getLogger(__name__)


def default_student_model(task, teacher_model: ModelConfig) -> ModelConfig:
    """The model a student of ``teacher_model`` gets unless told otherwise: the task's student
    size (``Task.default_model("student")``), or the teacher's own model when the task's
    student is of another kind (e.g. a GPT-2 teacher on parity)."""
    default = task.default_model("student")
    return default if default.kind == teacher_model.kind else teacher_model


def student_configs(
    teacher: RunConfig,
    model: dict,
    steps: int,
    save_every: int,
    eval_every: int,
    seeds: Sequence[int] = (0,),
    methods: Sequence[str] = C.METHODS,
    two_shot_step: int = -1,
    two_shot_T: int = 0,
    tau: float = DistillConfig.tau,  # the one default, DistillConfig's
    optim: OptimConfig | None = None,
    extract_steps: int = 0,
    exp_dir: Path | None = None,
) -> list[RunConfig]:
    """Student configs for every (method, seed), following the teacher named ``teacher.name``
    (two-shot only with ``two_shot_step >= 0``, curriculum-extraction only with ``extract_steps > 0``)."""
    teacher_dir = exp_dir / C.RUNS_DIR / teacher.name if exp_dir is not None else Path(teacher.name)
    run_fields = dict(
        model=model,
        optim=optim or teacher.optim,
        steps=steps,
        checkpoints=CheckpointConfig(save_every=save_every, eval_every=eval_every),
    )
    out = []
    for seed in seeds:
        for method in methods:
            if (method == C.METHOD_TWO_SHOT and two_shot_step < 0) or (
                method == C.METHOD_CURRICULUM_EXTRACTION and extract_steps <= 0
            ):
                continue
            out.append(
                student_config(
                    teacher,
                    teacher_dir,
                    method,
                    seed,
                    run_fields=run_fields,
                    tau=tau,
                    two_shot_step=two_shot_step,
                    two_shot_T=two_shot_T,
                    extract_steps=extract_steps,
                )
            )
    return out


def train_runs(
    exp_dir: Path,
    configs: Sequence[RunConfig],
    *,
    executor: ExecutorConfig = LOCAL,
    progress: bool = False,
    wait: bool = False,
    on_run: Callable[[RunConfig, object], None] | None = None,
) -> list:
    """Train ``configs`` into ``exp_dir/runs/<name>``; return their ``RunResult``s in order.

    Locally one after the other; on Ray as parallel tasks (``executor.cpus_per_task`` /
    ``gpus_per_task`` each) that write into ``exp_dir`` themselves, so ``exp_dir`` must be on a
    filesystem every worker mounts at the same path. ``on_run`` is called as each finishes."""
    from training.loop import train_run

    run_dirs = [exp_dir / C.RUNS_DIR / cfg.name for cfg in configs]
    results: list = [None] * len(configs)
    if executor.is_ray:
        exp_abs = exp_dir.resolve()
        args = [(cfg, exp_abs / C.RUNS_DIR / cfg.name) for cfg in configs]
        finished = map_tasks(executor, train_run, args, must_see=str(exp_abs / C.EXPERIMENT_FILE))
    else:
        finished = ((i, train_run(cfg, run_dirs[i], progress=progress, wait=wait)) for i, cfg in enumerate(configs))
    for i, res in finished:
        res.run_dir = run_dirs[i]  # as the caller named it (a Ray worker reports the absolute path)
        results[i] = res
        if on_run:
            on_run(configs[i], res)
    return results


def run_plan(
    exp_dir: Path | str,
    teacher: RunConfig,
    students_for: Callable[[Path, RunConfig], list[RunConfig]],
    *,
    progress: bool = False,
    wait: bool = False,
    on_run: Callable[[RunConfig, object], None] | None = None,
    executor: ExecutorConfig = LOCAL,
    grid: bool = False,
) -> list:
    """Train the teacher, then the students that ``students_for(exp_dir, teacher)`` returns
    (on Ray: the students in parallel; see ``train_runs``). With ``grid`` the students train
    as grids (``run_grid``), one per data stream."""
    with executor_session(executor):  # connect before the first write
        exp_dir = init_experiment(exp_dir, teacher.task)
        results = train_runs(exp_dir, [teacher], executor=executor, progress=progress, wait=wait, on_run=on_run)
        # after the teacher: two-shot reads its metrics
        students = students_for(exp_dir, teacher)
        if not grid:
            return results + train_runs(
                exp_dir, students, executor=executor, progress=progress, wait=wait, on_run=on_run
            )
        streams: dict[int, list[RunConfig]] = {}
        for cfg in students:
            streams.setdefault(cfg.data_seed, []).append(cfg)
        for cfgs in streams.values():
            for cfg, res in zip(
                cfgs,
                run_grid(cfgs, exp_dir / C.RUNS_DIR, executor=executor, progress=progress, wait=wait),
                strict=False,
            ):
                results.append(res)
                if on_run:
                    on_run(cfg, res)
        return results


def split_grid(cfgs: Sequence[RunConfig], size: int = 0) -> list[list[RunConfig]]:
    """Sub-grids for Ray tasks: students that stack into one batched model stay together
    (``training.grid``'s model/optimizer groups, in order of first appearance), cut into
    chunks of at most ``size`` students (0 = one chunk per group)."""
    from training.grid import _group_key

    groups: dict[str, list[RunConfig]] = {}
    for cfg in cfgs:
        groups.setdefault(_group_key(cfg), []).append(cfg)
    step = size or len(cfgs)
    return [members[i : i + step] for members in groups.values() for i in range(0, len(members), step)]


def _train_subgrid(cfgs: list[RunConfig], runs_dir: Path, force: bool) -> list:
    from training.grid import train_grid

    return train_grid(cfgs, runs_dir, force=force)


def run_grid(
    cfgs: Sequence[RunConfig],
    runs_dir: Path | str,
    *,
    executor: ExecutorConfig = LOCAL,
    force: bool = False,
    progress: bool = False,
    wait: bool = False,
) -> list:
    """``training.grid.train_grid`` locally (one batched loop), or on Ray: one task per
    sub-grid (``split_grid`` with ``executor.block`` students at most), each writing its
    students' run directories under ``runs_dir`` (on a filesystem all workers share).
    Returns one RunResult per config, in order. A sub-grid trains exactly as ``train_grid``
    does (resumable, the same students to float rounding)."""
    from training.grid import check_grid, train_grid

    runs_dir = Path(runs_dir)
    if not executor.is_ray:
        return train_grid(list(cfgs), runs_dir, force=force, progress=progress, wait=wait)
    check_grid(list(cfgs))  # one-line errors before any task starts
    chunks = split_grid(cfgs, executor.block)
    runs_abs = runs_dir.resolve()
    by_name: dict = {}
    with executor_session(executor):
        args = [(chunk, runs_abs, force) for chunk in chunks]
        for i, results in map_tasks(executor, _train_subgrid, args, must_see=str(runs_abs.parent / C.EXPERIMENT_FILE)):
            for cfg, res in zip(chunks[i], results, strict=True):
                res.run_dir = runs_dir / cfg.name
                by_name[cfg.name] = res
    return [by_name[cfg.name] for cfg in cfgs]


__all__ = ["run_grid", "run_plan", "split_grid", "student_configs", "train_runs"]
