"""Ready-made experiment plans: the configs of a teacher and its students, one module per task.

- ``base``: student configs and running a plan (``run_plan``: the teacher, then its students;
  ``run_grid``: students trained together);
- ``parity``: the parity demo, benchmark and test sizes (``PARITY_SIZES``);
- ``pcfg``: the named PCFG presets and the PCFG demo;
- ``demo_plan(task, size)``: the plan ``curriculens demo`` runs.

A plan is data (RunConfigs); ``run_plan`` executes it with the shared work unit ``train_run``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from curriculens import constants as C
from curriculens.errors import CurriculensError
from training.config import RunConfig
from training.plans.base import *  # noqa: F403 - the generic pieces, re-exported
from training.plans.base import __all__ as _base_all
from training.plans.parity import PARITY_SIZES, ParityDemoSize, parity_students_for, parity_teacher_config

DEMO_TASKS = ("parity", "pcfg")
# demos whose students train together as one grid (stacked MLPs; PCFG Transformers train one by one)
DEMO_GRID_TASKS = ("parity",)


def demo_plan(
    task: str,
    size: str,
    *,
    out: Path | str = "demo_out",
    seeds: Sequence[int] = (0,),
    device: str = C.DEVICE_AUTO,
    grammar: str | None = None,
) -> tuple[RunConfig, Callable[[Path, RunConfig], list[RunConfig]]]:
    """The demo's plan for ``task`` at ``size``: (teacher config, students_for(exp_dir, teacher)).

    parity: a size of ``PARITY_SIZES``; pcfg: ``tiny`` | ``demo`` (``grammar``: a grammar file
    instead of a generated grammar).
    """
    if task == "parity":
        if grammar:
            raise CurriculensError("--grammar applies to --task pcfg only")
        if size not in PARITY_SIZES:
            raise CurriculensError(f"unknown parity size {size!r} (one of {', '.join(PARITY_SIZES)})")
        sz = PARITY_SIZES[size]
        teacher = parity_teacher_config(sz, device=device)

        def students_for(exp_dir: Path, t: RunConfig) -> list[RunConfig]:
            return [replace(s, device=device) for s in parity_students_for(exp_dir, sz, t, seeds=seeds)]

        return teacher, students_for
    if task == "pcfg":
        from training.plans.pcfg import pcfg_demo_plan

        return pcfg_demo_plan(out, grammar_path=grammar, size=size, seeds=seeds, device=device)
    raise CurriculensError(f"no demo for task {task!r} (one of {', '.join(DEMO_TASKS)})")


__all__ = [
    *_base_all,
    "PARITY_SIZES",
    "ParityDemoSize",
    "parity_students_for",
    "parity_teacher_config",
    "demo_plan",
    "DEMO_GRID_TASKS",
]
