"""Frozen run configs, saved as ``config.json`` beside every run.

A run is one teacher or one student. ``task`` and ``model`` are typed configs, tagged unions
(``training.tasks.configs.TaskConfig`` by ``name``, ``models.configs.ModelConfig`` by
``kind``) parsed once when the RunConfig is built (a dict given for either is parsed then),
so one RunConfig type serves every task and model family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from curriculens import constants as C
from curriculens.config import check_name, cli, coerce_field, from_dict, to_dict
from curriculens.errors import CurriculensError
from models.configs import ModelField
from training.schedule import PROGRESSIVE_RULES
from training.tasks.configs import TaskField


def check(ok: bool, message: str) -> None:
    """Raise CurriculensError(message) unless ``ok``: the configs' one-line validation."""
    if not ok:
        raise CurriculensError(message)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


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

    name: str = field(default=C.OPTIM_SGD, metadata=cli("optimizer", flag="--optimizer", choices=C.OPTIMIZERS))
    lr: float = field(default=0.05, metadata=cli("peak learning rate"))
    weight_decay: float = field(default=0.0, metadata=cli("weight decay"))
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.0
    schedule: str = field(default=C.SCHEDULE_CONSTANT, metadata=cli("lr schedule", choices=C.LR_SCHEDULES))
    warmup_frac: float = field(default=0.0, metadata=cli("linear warmup as a fraction of the run (cosine only)"))
    min_lr_frac: float = 0.0
    grad_clip: float = field(default=0.0, metadata=cli("max grad norm, 0 = off"))

    def __post_init__(self) -> None:
        check(self.name in C.OPTIMIZERS, f"unknown optimizer {self.name!r} (one of {', '.join(C.OPTIMIZERS)})")
        check(
            self.schedule in C.LR_SCHEDULES,
            f"unknown lr schedule {self.schedule!r} (one of {', '.join(C.LR_SCHEDULES)})",
        )
        check(_finite(self.lr) and self.lr > 0, f"lr must be a positive number, got {self.lr}")
        check(
            _finite(self.weight_decay) and self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"
        )
        check(
            _finite(self.warmup_frac) and 0 <= self.warmup_frac <= 1,
            f"warmup fraction must be in [0, 1], got {self.warmup_frac}",
        )
        check(
            _finite(self.min_lr_frac) and 0 <= self.min_lr_frac <= 1,
            f"min_lr_frac must be in [0, 1], got {self.min_lr_frac}",
        )
        check(
            _finite(self.grad_clip) and self.grad_clip >= 0, f"grad clip must be >= 0 (0 = off), got {self.grad_clip}"
        )
        check(_finite(self.eps) and self.eps > 0, f"eps must be > 0, got {self.eps}")
        check(_finite(self.momentum) and 0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        check(
            len(self.betas) == 2 and all(_finite(b) and 0 <= b < 1 for b in self.betas),
            f"betas must be two numbers in [0, 1), got {list(self.betas)}",
        )


# The Adam family's defaults where they differ from OptimConfig's (which are SGD's).
ADAM_DEFAULTS = {"lr": 1e-3, "schedule": C.SCHEDULE_COSINE, "warmup_frac": 0.06, "betas": (0.9, 0.95)}


def default_optimizer(model_kind: str) -> str:
    """The optimizer a model kind trains with unless told otherwise: SGD for the parity MLP
    (the paper's), AdamW for Transformers."""
    return C.OPTIM_SGD if model_kind == "mlp" else C.OPTIM_ADAMW


def default_optim(name: str) -> OptimConfig:
    """The OptimConfig of optimizer ``name`` with its family's defaults (``ADAM_DEFAULTS`` for
    adam / adamw; OptimConfig's own for sgd)."""
    return OptimConfig(name=name) if name == C.OPTIM_SGD else OptimConfig(name=name, **ADAM_DEFAULTS)


@dataclass(frozen=True)
class CheckpointConfig:
    """When to evaluate and save.

    Args:
        save_every: save a checkpoint every this many optimizer steps (plus step 0 and the end).
        log_early: also save this many log-spaced checkpoints in (0, save_every), for dense
            coverage of early training.
        eval_every: evaluate (without saving) every this many steps; 0 = only at checkpoints.
        eval_log: also evaluate at this many log-spaced steps in [1, steps] (deduplicated,
            merged with ``eval_every``'s grid; ``training.schedule.eval_steps``), so a short early
            plateau gets several evaluations; 0 = off.
        keep_optimizer: keep optimizer state in every checkpoint, not only the latest.
    """

    save_every: int = field(default=1000, metadata=cli("save a checkpoint every N steps"))
    log_early: int = field(default=0, metadata=cli("extra log-spaced checkpoints before the first save"))
    eval_every: int = field(
        default=0, metadata=cli("evaluate every N steps between checkpoints", default="only at checkpoints")
    )
    eval_log: int = field(default=0, metadata=cli("also evaluate at N log-spaced steps in [1, steps], 0 = off"))
    keep_optimizer: bool = False

    def __post_init__(self) -> None:
        check(self.save_every > 0, f"save every must be > 0 steps, got {self.save_every}")
        check(self.log_early >= 0, f"log early must be >= 0 checkpoints, got {self.log_early}")
        check(self.eval_every >= 0, f"eval every must be >= 0 steps (0 = only at checkpoints), got {self.eval_every}")
        check(self.eval_log >= 0, f"eval log must be >= 0 evaluations (0 = off), got {self.eval_log}")


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

    method: str = C.METHOD_CE
    teacher_dir: str = ""
    alpha: float = field(default=0.0, metadata=cli("weight of the label CE term, in [0, 1]; 0 = pure distillation"))
    tau: float = field(default=1.0, metadata=cli("teacher temperature, >= 0; <= 1e-6 means hard teacher labels"))
    speed: float = field(default=1.0, metadata=cli("progressive: student step t uses teacher step t x speed"))
    interval: int = field(
        default=0,
        metadata=cli("progressive: reselect the teacher every N >= 1 steps", default="teacher save_every / speed"),
    )
    progressive_rule: str = field(
        default="parity",
        metadata=cli(
            "progressive: parity = first checkpoint at or after t x speed (the parity scripts); pcfg = largest "
            "checkpoint at or below speed x (1 + floor(t / interval)) x interval (the official masked-LM trainer, "
            "one interval ahead)",
            choices=PROGRESSIVE_RULES,
        ),
    )
    two_shot_step: int = field(
        default=-1,
        metadata=cli(
            "two-shot: the intermediate teacher checkpoint step (within the teacher's checkpoints)", default=""
        ),
    )
    two_shot_T: int = field(
        default=0,
        metadata=cli("two-shot: student steps on that checkpoint before switching to the final one", default=""),
    )
    extract_steps: int = field(
        default=0,
        metadata=cli(
            "curriculum-extraction: student steps fitting a random projection of the final teacher's hidden "
            "layer before distilling its outputs (> 0; MLP teacher and student)",
            default="",
        ),
    )
    extract_seed: int = field(default=0, metadata=cli("curriculum-extraction: seed of that random projection"))

    def __post_init__(self) -> None:
        check(self.method in C.METHODS, f"unknown method {self.method!r} (one of {', '.join(C.METHODS)})")
        check(self.method == C.METHOD_CE or bool(self.teacher_dir), f"method {self.method} needs a teacher directory")
        check(_finite(self.alpha) and 0 <= self.alpha <= 1, f"alpha must be in [0, 1], got {self.alpha}")
        check(_finite(self.tau) and self.tau >= 0, f"tau must be >= 0, got {self.tau}")
        check(_finite(self.speed) and self.speed > 0, f"speed must be > 0, got {self.speed}")
        check(
            self.interval >= 0,
            f"interval must be >= 1 step (0 in a config = the teacher's save_every / speed), got {self.interval}",
        )
        if self.method == "two-shot":
            check(
                self.two_shot_step >= 0 and self.two_shot_T > 0,
                "two-shot needs --two-shot-step >= 0 and --two-shot-T > 0",
            )
        if self.method == "curriculum-extraction":
            check(self.extract_steps > 0, "curriculum-extraction needs --extract-steps > 0")
        check(
            self.progressive_rule in PROGRESSIVE_RULES,
            f"unknown progressive rule {self.progressive_rule!r} (one of {', '.join(PROGRESSIVE_RULES)})",
        )


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one run. Saved as ``<run>/config.json``.

    Args:
        name: run directory name inside the experiment's ``runs/``.
        role: ``teacher`` | ``student``.
        task: the task config (``training.tasks.configs``; a dict with a ``name`` is parsed).
        model: the model config (``models.configs``; a dict with a ``kind`` is parsed).
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
    task: TaskField
    model: ModelField
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoints: CheckpointConfig = field(default_factory=CheckpointConfig)
    distill: DistillConfig | None = None
    steps: int = field(default=10000, metadata=cli("optimizer steps"))
    batch_size: int = field(default=32, metadata=cli("examples per step"))
    seed: int = field(default=0, metadata=cli("seed of the model init and the training stream"))
    device: str = C.DEVICE_AUTO
    amp: bool = field(default=False, metadata=cli("bf16 autocast on CUDA", default=""))
    stop_at_acc: float = 0.0
    stream_seed: int | None = None

    @property
    def method(self) -> str:
        return C.METHOD_TEACHER if self.role == C.ROLE_TEACHER else self.distill.method

    @property
    def data_seed(self) -> int:
        """The seed of the training data stream."""
        return self.seed if self.stream_seed is None else self.stream_seed

    def __post_init__(self) -> None:
        coerce_field(self, "task")  # parsed once, here; validated by its own __post_init__
        coerce_field(self, "model")
        check_name(self.name)
        check(self.role in (C.ROLE_TEACHER, C.ROLE_STUDENT), f"unknown role {self.role!r} (teacher or student)")
        check(self.device in C.DEVICES, f"unknown device {self.device!r} (one of {', '.join(C.DEVICES)})")
        check(self.steps > 0, f"steps must be > 0, got {self.steps}")
        check(self.batch_size > 0, f"batch size must be > 0, got {self.batch_size}")
        check(
            _finite(self.stop_at_acc) and 0 <= self.stop_at_acc <= 1,
            f"stop_at_acc must be in [0, 1], got {self.stop_at_acc}",
        )
        if self.role == C.ROLE_STUDENT:
            check(self.distill is not None, "a student run needs a distill config")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        return from_dict(cls, data)

    def replace(self, **changes) -> RunConfig:
        return replace(self, **changes)
