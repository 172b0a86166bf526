"""``ImportConfig`` (what ``curriculens import``, ``training.foreign.importer``, imports and as which
run) and ``FetchConfig`` (what ``curriculens fetch``, ``training.foreign.fetch``, downloads);
torch-free, so the CLI builds its flags from them without loading the importer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from curriculens import constants as C
from curriculens.config import cli, coerce_field, csv_of
from curriculens.errors import CurriculensError
from training.experiment import student_run_name
from training.foreign.revisions import parse_spec
from training.tasks.configs import TaskField

_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_WHICH = "which checkpoints (default all; applied in this order)"  # the flags' group in `curriculens import --help`


@dataclass(frozen=True)
class ImportConfig:
    """What to import and as which run.

    Args:
        src: the foreign trajectory (see ``training.foreign.sources``).
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
        revisions: a revision SPEC over the checkpoints found (``training.foreign.revisions.select``:
            names or steps, ``START:STOP[:STRIDE]``, ``log:N``, ``all``); "" = all.
        steps: exactly these steps (each must exist); () = all.
        every: then keep every k-th checkpoint (by index), always with the first and the last.
    """

    src: str
    out: str
    task: TaskField = field(default_factory=dict)
    role: str = field(default=C.ROLE_TEACHER, metadata=cli("the run's role", choices=(C.ROLE_TEACHER, C.ROLE_STUDENT)))
    method: str = field(default="", metadata=cli("a student's method: " + " | ".join(C.METHODS), default=""))
    name: str = field(default="", metadata=cli("run name", default="teacher, or <method>-s<seed>"))
    seed: int = field(default=0, metadata=cli("the run's seed label"))
    copy: bool = field(
        default=False, metadata=cli("copy the weights into the run as safetensors", default="reference in place")
    )
    force: bool = field(default=False, metadata=cli("replace a run of the same name", default=""))
    two_shot_step: int = field(
        default=-1, metadata=cli("two-shot students: the teacher checkpoint used first", default="")
    )
    two_shot_T: int = field(default=0, metadata=cli("two-shot students: the step where they switched", default=""))
    revisions: str = field(
        default="",
        metadata=cli(
            "names or steps (step1000,2000) | START:STOP[:STRIDE] (steps) | log:N | all",
            metavar="SPEC",
            default="",
            group=_WHICH,
        ),
    )
    steps: tuple = field(
        default=(),
        metadata=cli(
            "exactly these steps, comma-separated (each must exist)",
            parse=csv_of(int),
            metavar="LIST",
            default="",
            group=_WHICH,
        ),
    )
    every: int = field(default=1, metadata=cli("every K-th checkpoint, first and last kept", metavar="K", group=_WHICH))

    def __post_init__(self) -> None:
        if self.every < 1:
            raise CurriculensError(f"--every must be >= 1, got {self.every}")
        if not all(isinstance(s, int) and s >= 0 for s in self.steps):
            raise CurriculensError("--steps must be non-negative integers")
        if self.revisions:
            parse_spec(self.revisions)
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


@dataclass(frozen=True)
class FetchConfig:
    """What to fetch.

    Args:
        repo: ``org/name`` of a model repository.
        revisions: the SPEC (``resolve_revisions``).
        out: the hub-cache directory to fill (``import`` reads it).
        endpoint: the hub's URL; "" = ``HF_ENDPOINT`` or huggingface.co.
        timeout_s: per-request timeout.
    """

    repo: str
    revisions: str
    out: str
    endpoint: str = field(default="", metadata=cli("hub URL", default="HF_ENDPOINT, else huggingface.co"))
    timeout_s: float = field(default=30.0, metadata=cli("per-request timeout in seconds", flag="--timeout"))

    def __post_init__(self) -> None:
        if not _REPO.match(self.repo):
            raise CurriculensError(f"bad repository id {self.repo!r} (expected org/name)")
        parse_spec(self.revisions)  # raises on a bad SPEC
        if self.endpoint and not re.match(r"^https?://", self.endpoint):
            raise CurriculensError(f"bad --endpoint {self.endpoint!r} (expected http(s)://...)")
        if self.timeout_s <= 0:
            raise CurriculensError("timeout must be positive")
