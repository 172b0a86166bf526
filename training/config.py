"""Frozen run configs, saved as ``config.json`` beside every run.

A run is one teacher or one student. ``task`` and ``model`` are plain dicts parsed by the
task registry (``training.tasks``) and ``models.model_config_from_dict``, so one RunConfig
type serves every task and model family.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from curriculens import constants as C
from curriculens.config import from_dict, to_dict
from curriculens.errors import CurriculensError
from training.schedule import PROGRESSIVE_RULES


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and learning-rate schedule.

    Args:
        name: ``sgd`` | ``adam`` | ``adamw``.
        lr: peak learning rate.
        schedule: ``constant`` | ``cosine`` (linear warmup over ``warmup_frac`` of the run,
            then cosine from ``lr`` down to ``min_lr_frac * lr``).
        grad_clip: max global grad norm; 0 disables clipping.
    """

    name: str = "sgd"
    lr: float = 0.05
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.0
    schedule: str = "constant"
    warmup_frac: float = 0.0
    min_lr_frac: float = 0.0
    grad_clip: float = 0.0


@dataclass(frozen=True)
class CheckpointConfig:
    """When to evaluate and save.

    Args:
        save_every: save a checkpoint every this many optimizer steps (plus step 0 and the end).
        log_early: also save this many log-spaced checkpoints in (0, save_every), for dense
            coverage of early training.
        eval_every: evaluate (without saving) every this many steps; 0 = only at checkpoints.
        keep_optimizer: keep optimizer state in every checkpoint, not only the latest.
    """

    save_every: int = 1000
    log_early: int = 0
    eval_every: int = 0
    keep_optimizer: bool = False


@dataclass(frozen=True)
class DistillConfig:
    """How a student learns.

    Args:
        method: ``ce`` (labels only) | ``one-shot`` (final teacher checkpoint) |
            ``progressive`` (teacher checkpoint at t x speed) | ``two-shot`` (checkpoint
            ``two_shot_step`` for ``two_shot_T`` student steps, then the final one).
        teacher_dir: the teacher run directory (unused for ``ce``).
        alpha: loss = alpha * CE(labels) + (1 - alpha) * CE(softmax(teacher / tau), student).
        tau: teacher temperature; ``tau <= 1e-6`` means the teacher's hard (argmax) labels.
        speed: progressive speed factor: student step t follows teacher step t x speed.
        interval: progressive re-selects its teacher every ``interval`` student steps
            (0 = the default of the rule, ``training.schedule.progressive_interval``).
        progressive_rule: ``parity`` (the parity scripts: first checkpoint at or after
            t x speed) | ``pcfg`` (the official masked-LM trainer: largest checkpoint at or
            below speed x (1 + floor(t / interval)) x interval, one interval ahead); see
            ``training.schedule``.
        two_shot_step, two_shot_T: two-shot's intermediate checkpoint and how many student
            steps use it.
        extract_steps: ``curriculum-extraction``: student steps spent fitting a random
            projection of the final teacher's last hidden layer (see ``training.extraction``)
            before distilling from its outputs.
        extract_seed: seeds that random projection (students sharing it share the target).
    """

    method: str = "ce"
    teacher_dir: str = ""
    alpha: float = 0.0
    tau: float = 1.0
    speed: float = 1.0
    interval: int = 0
    progressive_rule: str = "parity"
    two_shot_step: int = -1
    two_shot_T: int = 0
    extract_steps: int = 0
    extract_seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run. Saved as ``<run>/config.json``.

    Args:
        name: run directory name inside the experiment's ``runs/``.
        role: ``teacher`` | ``student``.
        task: task config dict with a ``name`` (see ``training.tasks``).
        model: model config dict with a ``kind`` (see ``models.configs``).
        steps: optimizer steps; samples seen = steps x batch_size.
        seed: seeds model init, and the training data stream unless ``stream_seed`` is set
            (eval data come from the task).
        stream_seed: seeds the training data stream; None = ``seed``. Students trained
            together in a grid share one stream (``training.grid``) and record it here.
        device: ``auto`` | ``cpu`` | ``cuda``.
        amp: bf16 autocast on CUDA (ignored on CPU).
        stop_at_acc: end the run (with a final checkpoint) at the first evaluation whose
            held-out accuracy reaches this value; 0 = never (benchmarks use it to save time).
    """

    name: str
    role: str
    task: dict
    model: dict
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoints: CheckpointConfig = field(default_factory=CheckpointConfig)
    distill: Optional[DistillConfig] = None
    steps: int = 10000
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    stop_at_acc: float = 0.0
    stream_seed: Optional[int] = None

    @property
    def method(self) -> str:
        return C.METHOD_TEACHER if self.role == C.ROLE_TEACHER else self.distill.method

    @property
    def data_seed(self) -> int:
        """The seed of the training data stream."""
        return self.seed if self.stream_seed is None else self.stream_seed

    def validate(self) -> "RunConfig":
        if self.role not in (C.ROLE_TEACHER, C.ROLE_STUDENT):
            raise CurriculensError(f"unknown role {self.role!r} (teacher or student)")
        if self.device not in C.DEVICES:
            raise CurriculensError(f"unknown device {self.device!r} (one of {', '.join(C.DEVICES)})")
        if self.steps <= 0 or self.batch_size <= 0:
            raise CurriculensError("steps and batch_size must be positive")
        if self.checkpoints.save_every <= 0:
            raise CurriculensError("save_every must be positive")
        if self.optim.name not in C.OPTIMIZERS:
            raise CurriculensError(f"unknown optimizer {self.optim.name!r} ({', '.join(C.OPTIMIZERS)})")
        if self.optim.schedule not in C.LR_SCHEDULES:
            raise CurriculensError(f"unknown lr schedule {self.optim.schedule!r} ({', '.join(C.LR_SCHEDULES)})")
        if self.role == C.ROLE_STUDENT:
            d = self.distill
            if d is None:
                raise CurriculensError("a student run needs a distill config")
            if d.method not in C.METHODS:
                raise CurriculensError(f"unknown method {d.method!r} (one of {', '.join(C.METHODS)})")
            if d.method != "ce" and not d.teacher_dir:
                raise CurriculensError(f"method {d.method} needs a teacher directory")
            if d.method == "two-shot" and (d.two_shot_step < 0 or d.two_shot_T <= 0):
                raise CurriculensError("two-shot needs --two-shot-step >= 0 and --two-shot-T > 0")
            if d.method == "curriculum-extraction" and d.extract_steps <= 0:
                raise CurriculensError("curriculum-extraction needs --extract-steps > 0")
            if not 0.0 <= d.alpha <= 1.0:
                raise CurriculensError("alpha must be in [0, 1]")
            if d.speed <= 0:
                raise CurriculensError("speed must be positive")
            if d.progressive_rule not in PROGRESSIVE_RULES:
                raise CurriculensError(
                    f"unknown progressive rule {d.progressive_rule!r} (one of {', '.join(PROGRESSIVE_RULES)})"
                )
            if d.interval < 0:
                raise CurriculensError("interval must be >= 0")
        return self

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        return from_dict(cls, data).validate()

    def replace(self, **changes) -> "RunConfig":
        return replace(self, **changes)
