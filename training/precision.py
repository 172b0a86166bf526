"""Mixed precision: the one place that decides when a forward runs under autocast."""

from __future__ import annotations

import contextlib

import torch


def autocast(device: torch.device, amp: bool):
    """bfloat16 autocast on CUDA when ``amp``; a no-op context otherwise (CPU runs float32)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
