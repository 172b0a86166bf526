"""``--device auto|cpu|cuda``."""

from __future__ import annotations

import torch

from curriculens import constants as C
from curriculens.errors import CurriculensError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CurriculensError("--device cuda was asked for but no CUDA device is available")
    if name not in C.DEVICES:
        raise CurriculensError(f"unknown device {name!r} ({', '.join(C.DEVICES)})")
    return torch.device(name)
