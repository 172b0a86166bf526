"""The task plug-in interface: what a task gives the training engine and probes.

A task owns its data (a deterministic training stream and a fixed held-out set) and knows how
to feed a model and which positions are scored. Everything else (optimizers, distillation,
checkpoints, schedules, the probe sweep, the results store) is shared. The optional hooks are
declared here with their defaults (callers call them, never probe for them with ``hasattr``):
``check_model``, ``check_source``, ``expected_length``, ``support`` and ``objective``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.configs import ModelConfig

Batch = dict[str, torch.Tensor]


class Task(ABC):
    """Base class for tasks. Subclasses are built from a task config dict with ``name``."""

    name: str = ""
    # the input coordinates the label depends on (sparse parity; the parity probes read it)
    support: tuple[int, ...] | None = None

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    @property
    def objective(self) -> str | None:
        """``mlm`` (masked LM) | ``next`` (causal LM) for a language task; None otherwise."""
        return None

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

    def scores_raw_rows(self, batch: Batch, model_cfg: ModelConfig) -> bool:
        """Whether ``model_input`` is one 2-D tensor without keywords and ``scored`` hands back
        the model's raw logits [rows, C] as they are (parity's MLPs): then a forward's rows can
        be computed in any row blocks (``training.teachers``) and reduced row by row (the
        Fourier probe's margin)."""
        inp, kw = self.model_input(batch, model_cfg)
        if kw or inp.dim() != 2:
            return False
        probe = inp.new_empty(inp.shape[0], model_cfg.n_outputs, dtype=torch.float32)
        return self.scored(probe, batch, model_cfg)[0] is probe

    def scores_by_margin(self, model: nn.Module, batch: Batch, model_cfg: ModelConfig) -> bool:
        """Whether ``model.class1_margin`` (``ParityMLP``) can stand for its scored output: a
        two-class model with float32 weights on rows this task scores raw
        (``scores_raw_rows``). The Fourier probe's p(x) and a blocked teacher's targets
        (``training.teachers``) then come from the margin."""
        if not hasattr(model, "class1_margin") or model_cfg.n_outputs != 2:
            return False
        return next(model.parameters()).dtype == torch.float32 and self.scores_raw_rows(batch, model_cfg)

    def default_model(self, size: str) -> ModelConfig:
        """A model config for this task: ``size`` is ``teacher`` or ``student``."""
        raise NotImplementedError

    def extra_eval(self, model: nn.Module, model_cfg: ModelConfig, device: torch.device) -> dict:
        """Task-specific eval metrics logged beside loss and accuracy (default none)."""
        return {}

    def check_model(self, model_cfg: ModelConfig) -> None:
        """Raise CurriculensError if this task cannot train or probe ``model_cfg`` (called before
        anything is written; default: every model fits)."""
        return None

    def check_source(self, ckpt_dir: Path, model_cfg: ModelConfig) -> None:
        """Raise CurriculensError if a foreign checkpoint directory does not fit this task
        (``curriculens import`` calls it before writing; default: every directory fits)."""
        return None

    def expected_length(self) -> float:
        """Expected sentence length in tokens (sequence tasks: the PCFG probes' automatic
        strides and offsets); a task without sentences raises NotImplementedError."""
        raise NotImplementedError(f"task {self.name!r} has no sentence length")


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
