"""``--device auto|cpu|cuda`` -> a ``torch.device`` (torch is imported when called)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from curriculens import constants as C
from curriculens.errors import CurriculensError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str = C.DEVICE_AUTO) -> torch.device:
    import torch

    if name == C.DEVICE_AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CurriculensError("--device cuda was asked for but no CUDA device is available")
    if name not in C.DEVICES:
        raise CurriculensError(f"unknown device {name!r} ({', '.join(C.DEVICES)})")
    return torch.device(name)
