"""The parity demo's plan: sizes of the demo, the benchmark and the tests, the teacher config and
its students."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from curriculens import constants as C
from curriculens.config import dataclass_default
from training.config import CheckpointConfig, OptimConfig, RunConfig
from training.experiment import two_shot_checkpoint
from training.plans.base import student_configs
from training.tasks.configs import ParityConfig


@dataclass(frozen=True)
class ParityDemoSize:
    """Sizes of the parity demo. ``demo``: the (60, 5) setting, where the paper's ordering shows
    on one seed (students trained as one grid; a few minutes on 2 CPU cores); ``small``: the
    earlier (50, 4) demo, where the methods hardly differ; ``tiny``: seconds (tests);
    ``bench``: the calibrated (60, 5) setting of the benchmark (longer runs, no early stop).
    ``extract_steps`` > 0 adds a curriculum-extraction student; ``stop_at_acc`` ends each
    student at that held-out accuracy; ``eval_log`` > 0: the teacher also evaluates at that many
    log-spaced steps (``CheckpointConfig``). Students save at least as often as the teacher
    (``student_save_every <= save_every``), so their appear steps are no coarser than its."""

    n: int
    k: int
    teacher_width: int
    student_width: int
    teacher_steps: int
    student_steps: int
    save_every: int
    student_save_every: int
    eval_every: int
    lr: float = dataclass_default(OptimConfig, "lr")
    batch_size: int = dataclass_default(RunConfig, "batch_size")
    two_shot_T: int = 2000
    n_eval: int = dataclass_default(ParityConfig, "n_eval")
    extract_steps: int = 0
    stop_at_acc: float = 0.0
    eval_log: int = 0


PARITY_SIZES = {
    "tiny": ParityDemoSize(10, 3, 64, 16, 300, 400, 100, 100, 50, two_shot_T=100, n_eval=512),
    "small": ParityDemoSize(50, 4, 4000, 100, 10_000, 24_000, 500, 500, 500, two_shot_T=2000),
    "demo": ParityDemoSize(
        60, 5, 8000, 50, 40_000, 60_000, 2000, 2000, 500, two_shot_T=10_000, extract_steps=10_000, stop_at_acc=0.99
    ),
    "bench": ParityDemoSize(60, 5, 8000, 50, 60_000, 150_000, 2000, 2000, 500, two_shot_T=10_000),
}


def parity_teacher_config(size: ParityDemoSize, seed: int = 0, device: str = C.DEVICE_AUTO) -> RunConfig:
    task = {"name": "parity", "n": size.n, "k": size.k, "n_eval": size.n_eval, "data_seed": 0}
    return RunConfig(
        name="teacher",
        role=C.ROLE_TEACHER,
        task=task,
        model={"kind": "mlp", "d_in": size.n, "width": size.teacher_width, "depth": 1, "n_classes": 2},
        optim=OptimConfig(name=C.OPTIM_SGD, lr=size.lr),
        checkpoints=CheckpointConfig(save_every=size.save_every, eval_every=size.eval_every, eval_log=size.eval_log),
        steps=size.teacher_steps,
        batch_size=size.batch_size,
        seed=seed,
        device=device,
    )


def parity_students_for(
    exp_dir: Path,
    size: ParityDemoSize,
    teacher: RunConfig,
    seeds: Sequence[int] = (0,),
    methods: Sequence[str] = C.METHODS,
) -> list[RunConfig]:
    """Students of the parity demo; two-shot starts from the teacher's checkpoint nearest the
    middle of its transition (``training.experiment.two_shot_checkpoint``)."""
    two_shot = two_shot_checkpoint(exp_dir / C.RUNS_DIR / teacher.name, teacher.task.name)
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
