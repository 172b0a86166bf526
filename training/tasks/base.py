"""The task plug-in interface: what a task gives the shared training loop and probes.

A task owns its data (a deterministic training stream and a fixed held-out set) and knows how
to feed a model and which positions are scored. Everything else (optimizers, distillation,
checkpoints, schedules, the probe sweep, the results store) is shared.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterator

import torch
from torch import nn

from models.configs import ModelConfig

Batch = dict[str, torch.Tensor]


class Task(ABC):
    """Base class for tasks. Subclasses are built from a task config dict with ``name``."""

    name: str = ""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    @abstractmethod
    def train_batch(self, step: int, batch_size: int, seed: int) -> Batch:
        """The batch for update ``step`` of a run seeded ``seed`` (deterministic, on CPU)."""

    @abstractmethod
    def eval_batches(self, batch_size: int) -> Iterator[Batch]:
        """The fixed held-out set, in batches (CPU tensors)."""

    @abstractmethod
    def model_input(self, batch: Batch, model_cfg: ModelConfig) -> tuple[torch.Tensor, dict]:
        """``(input, kwargs)`` such that ``model(input, **kwargs)`` runs the model (and
        ``hookable(model).run_with_cache(input, **kwargs)`` too)."""

    @abstractmethod
    def scored(self, logits: torch.Tensor, batch: Batch, model_cfg: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """From the model's raw logits, ``(logits [N, C], targets [N])`` at the scored positions."""

    def default_model(self, size: str) -> ModelConfig:
        """A model config for this task: ``size`` is ``teacher`` or ``student``."""
        raise NotImplementedError

    def extra_eval(self, model: nn.Module, model_cfg: ModelConfig, device: torch.device) -> dict:
        """Task-specific eval metrics logged beside loss and accuracy (default none)."""
        return {}


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
