"""Optimizers and learning-rate schedules from an OptimConfig."""

from __future__ import annotations

import math

import torch

from training.config import OptimConfig


def make_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, cfg: OptimConfig) -> float:
    """Multiplier of ``cfg.lr`` at ``step`` (0-based update index)."""
    if cfg.schedule == "constant":
        return 1.0
    warm = int(round(cfg.warmup_frac * total))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    cos = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return cfg.min_lr_frac + (1.0 - cfg.min_lr_frac) * cos


def set_lr(optimizer: torch.optim.Optimizer, step: int, total: int, cfg: OptimConfig) -> float:
    """Set every param group's lr for update ``step``; returns it (stateless, so resume is exact)."""
    lr = cfg.lr * lr_factor(step, total, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
