"""Where things are in an experiment directory, without torch: checkpoint directory names.

The names themselves are constants in ``curriculens.constants``; this module spells the
patterns built from them once, for the trainer, the checkpoint format and the dashboard.
"""

from __future__ import annotations

import re

from curriculens import constants as C

CKPT_RE = re.compile(rf"^{C.CKPT_PREFIX}(\d+)$")  # a checkpoint directory name; group 1 = the step


def ckpt_dirname(step: int) -> str:
    """``step_000001000``: the directory of the checkpoint at optimizer step ``step``."""
    return f"{C.CKPT_PREFIX}{int(step):0{C.CKPT_STEP_DIGITS}d}"
