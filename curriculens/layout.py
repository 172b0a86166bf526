"""Where things are in an experiment directory, without torch: checkpoint directory names.

The names themselves are constants in ``curriculens.constants``; this module spells the
patterns built from them once, for the trainer, the checkpoint format and the dashboard.
"""

from __future__ import annotations

import re
from pathlib import Path

from curriculens import constants as C

CKPT_RE = re.compile(rf"^{C.CKPT_PREFIX}(\d+)$")  # a checkpoint directory name; group 1 = the step


def ckpt_dirname(step: int) -> str:
    """``step_000001000``: the directory of the checkpoint at optimizer step ``step``."""
    return f"{C.CKPT_PREFIX}{int(step):0{C.CKPT_STEP_DIGITS}d}"


def run_lock_path(run_dir: Path | str) -> Path:
    """``EXP/.locks/<run>.lock``: the lock file of run directory ``EXP/runs/<run>``, outside it
    (a run directory elsewhere: ``.locks/<run>.lock`` beside it)."""
    run_dir = Path(run_dir)
    base = run_dir.parent.parent if run_dir.parent.name == C.RUNS_DIR else run_dir.parent
    return base / C.RUN_LOCKS_DIR / f"{run_dir.name}.lock"
