"""Ready-made experiment plans: the configs of a teacher and its students.

A plan is data (a list of RunConfigs); ``run_plan`` executes it with the shared work unit
``train_run``: locally in order, or as Ray tasks (``curriculens.executor``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from curriculens import constants as C
from curriculens.executor import LOCAL, ExecutorConfig, executor_session, map_tasks
from training.config import CheckpointConfig, DistillConfig, OptimConfig, RunConfig
from training.experiment import init_experiment, student_run_name, two_shot_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParityDemoSize:
    """Sizes of the parity demo. ``demo``: the (60, 5) setting, where the paper's ordering shows
    on one seed (students trained as one grid; a few minutes on 2 CPU cores); ``small``: the
    earlier (50, 4) demo, where the methods hardly differ; ``tiny``: seconds (tests);
    ``bench``: the calibrated (60, 5) setting of the benchmark (longer runs, no early stop).
    ``extract_steps`` > 0 adds a curriculum-extraction student; ``stop_at_acc`` ends each
    student at that held-out accuracy."""

    n: int
    k: int
    teacher_width: int
    student_width: int
    teacher_steps: int
    student_steps: int
    save_every: int
    student_save_every: int
    eval_every: int
    lr: float = 0.05
    batch_size: int = 32
    two_shot_T: int = 2000
    n_eval: int = 4096
    extract_steps: int = 0
    stop_at_acc: float = 0.0


PARITY_SIZES = {
    "tiny": ParityDemoSize(10, 3, 64, 16, 300, 400, 100, 100, 50, two_shot_T=100, n_eval=512),
    "small": ParityDemoSize(50, 4, 4000, 100, 10_000, 24_000, 500, 1000, 500, two_shot_T=2000),
    "demo": ParityDemoSize(
        60, 5, 8000, 50, 40_000, 60_000, 2000, 4000, 500, two_shot_T=10_000, extract_steps=10_000, stop_at_acc=0.99
    ),
    "bench": ParityDemoSize(60, 5, 8000, 50, 60_000, 150_000, 2000, 2000, 500, two_shot_T=10_000),
}


def parity_teacher_config(size: ParityDemoSize, seed: int = 0, device: str = "auto") -> RunConfig:
    task = {"name": "parity", "n": size.n, "k": size.k, "n_eval": size.n_eval, "data_seed": 0}
    return RunConfig(
        name="teacher",
        role=C.ROLE_TEACHER,
        task=task,
        model={"kind": "mlp", "d_in": size.n, "width": size.teacher_width, "depth": 1, "n_classes": 2},
        optim=OptimConfig(name="sgd", lr=size.lr),
        checkpoints=CheckpointConfig(save_every=size.save_every, eval_every=size.eval_every),
        steps=size.teacher_steps,
        batch_size=size.batch_size,
        seed=seed,
        device=device,
    )


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
    optim: Optional[OptimConfig] = None,
    extract_steps: int = 0,
    exp_dir: Optional[Path] = None,
) -> list[RunConfig]:
    """Student configs for every (method, seed), following the teacher named ``teacher.name``
    (two-shot only with ``two_shot_step >= 0``, curriculum-extraction only with ``extract_steps > 0``)."""
    out = []
    for seed in seeds:
        for method in methods:
            if (method == "two-shot" and two_shot_step < 0) or (method == "curriculum-extraction" and extract_steps <= 0):
                continue
            name = student_run_name(method, seed, two_shot_step, two_shot_T=two_shot_T if method == "two-shot" else 0,
                                    exp_dir=exp_dir)
            out.append(
                replace(
                    teacher,
                    name=name,
                    role=C.ROLE_STUDENT,
                    model=model,
                    optim=optim or teacher.optim,
                    steps=steps,
                    seed=seed,
                    checkpoints=CheckpointConfig(save_every=save_every, eval_every=eval_every),
                    distill=DistillConfig(
                        method=method,
                        teacher_dir=f"../{teacher.name}",
                        tau=tau,
                        two_shot_step=two_shot_step if method == "two-shot" else -1,
                        two_shot_T=two_shot_T if method == "two-shot" else 0,
                        extract_steps=extract_steps if method == "curriculum-extraction" else 0,
                    ),
                )
            )
    return out


def parity_students_for(
    exp_dir: Path, size: ParityDemoSize, teacher: RunConfig, seeds: Sequence[int] = (0,), methods: Sequence[str] = C.METHODS
) -> list[RunConfig]:
    """Students of the parity demo; two-shot starts from the teacher's checkpoint nearest the
    middle of its transition (``training.experiment.two_shot_checkpoint``)."""
    two_shot = two_shot_checkpoint(exp_dir / C.RUNS_DIR / teacher.name, teacher.task.get("name"))
    cfgs = student_configs(
        teacher,
        model={"kind": "mlp", "d_in": size.n, "width": size.student_width, "depth": 1, "n_classes": 2},
        steps=size.student_steps,
        save_every=size.student_save_every,
        eval_every=size.eval_every,
        seeds=seeds,
        methods=methods,
        two_shot_step=two_shot,
        two_shot_T=size.two_shot_T,
        extract_steps=size.extract_steps,
        exp_dir=exp_dir,
    )
    return [replace(c, stop_at_acc=size.stop_at_acc) for c in cfgs] if size.stop_at_acc else cfgs


def train_runs(
    exp_dir: Path,
    configs: Sequence[RunConfig],
    *,
    executor: ExecutorConfig = LOCAL,
    progress: bool = False,
    wait: bool = False,
    on_run: Optional[Callable[[RunConfig, object], None]] = None,
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
    on_run: Optional[Callable[[RunConfig, object], None]] = None,
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
            return results + train_runs(exp_dir, students, executor=executor, progress=progress, wait=wait, on_run=on_run)
        streams: dict[int, list[RunConfig]] = {}
        for cfg in students:
            streams.setdefault(cfg.data_seed, []).append(cfg)
        for cfgs in streams.values():
            for cfg, res in zip(cfgs, run_grid(cfgs, exp_dir / C.RUNS_DIR, executor=executor, progress=progress, wait=wait)):
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
            for cfg, res in zip(chunks[i], results):
                res.run_dir = runs_dir / cfg.name
                by_name[cfg.name] = res
    return [by_name[cfg.name] for cfg in cfgs]
