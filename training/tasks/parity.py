"""The (n, k)-sparse parity task (paper section 2)."""

from __future__ import annotations

from curriculens.seeding import PARITY_EVAL, PARITY_TRAIN, torch_generator
from dataclasses import dataclass
from typing import Iterator

import torch

from curriculens.config import from_dict
from curriculens.errors import CurriculensError
from models.configs import GPT2Config, MLPConfig, ModelConfig
from training.data.parity import parity_labels, sample_pm1, to_tokens
from training.tasks.base import Batch, Task

_CHUNK = 64  # training batches generated together (per-step determinism is kept)


@dataclass(frozen=True)
class ParityConfig:
    """(n, k)-sparse parity.

    Args:
        n: input length.
        k: support size.
        support: support coordinates; empty = the first k (the paper's choice).
        n_eval: held-out examples (paper: 4096 for students).
        data_seed: seeds the held-out set (shared by every run of an experiment).
    """

    name: str = "parity"
    n: int = 100
    k: int = 6
    support: tuple = ()
    n_eval: int = 4096
    data_seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n <= 0:
            raise CurriculensError(f"parity n must be a positive integer, got {self.n!r}")
        if not isinstance(self.k, int) or not 0 < self.k <= self.n:
            raise CurriculensError(f"parity k (support size) must be in 1..n = 1..{self.n}, got {self.k!r}")
        if not isinstance(self.n_eval, int) or self.n_eval <= 0:
            raise CurriculensError(f"parity n_eval must be a positive number of held-out examples, got {self.n_eval!r}")
        s = self.support_coords
        if len(s) != self.k or len(set(s)) != self.k or min(s) < 0 or max(s) >= self.n:
            raise CurriculensError(f"parity support {s} must be {self.k} distinct coordinates in [0, {self.n})")

    @property
    def support_coords(self) -> tuple[int, ...]:
        return tuple(sorted(self.support)) if self.support else tuple(range(self.k))


class ParityTask(Task):
    name = "parity"

    def __init__(self, cfg: ParityConfig) -> None:
        super().__init__(cfg)
        s = cfg.support_coords
        self.support = s
        g = torch_generator(PARITY_EVAL, cfg.data_seed)
        self._eval_x = sample_pm1(cfg.n_eval, cfg.n, g)
        self._eval_y = parity_labels(self._eval_x, s)
        self._chunk: tuple[int, int, int, torch.Tensor] | None = None

    @classmethod
    def from_config(cls, data: dict) -> "ParityTask":
        return cls(from_dict(ParityConfig, data, where="task"))

    def train_batch(self, step: int, batch_size: int, seed: int) -> Batch:
        chunk = step // _CHUNK
        key = (seed, chunk, batch_size)
        if self._chunk is None or self._chunk[:3] != key:
            g = torch_generator(PARITY_TRAIN, seed, chunk)
            self._chunk = (*key, sample_pm1(_CHUNK * batch_size, self.cfg.n, g))
        i = (step % _CHUNK) * batch_size
        x = self._chunk[3][i : i + batch_size]
        return {"x": x, "y": parity_labels(x, self.support)}

    def eval_batches(self, batch_size: int) -> Iterator[Batch]:
        for i in range(0, self.cfg.n_eval, batch_size):
            yield {"x": self._eval_x[i : i + batch_size], "y": self._eval_y[i : i + batch_size]}

    def model_input(self, batch: Batch, model_cfg: ModelConfig) -> tuple[torch.Tensor, dict]:
        if isinstance(model_cfg, MLPConfig):
            return batch["x"], {}
        return to_tokens(batch["x"]), {}

    def scored(self, logits: torch.Tensor, batch: Batch, model_cfg: ModelConfig):
        if logits.dim() == 3:  # Transformer: classes are read at the last position
            logits = logits[:, -1, :]
        return logits, batch["y"]

    def default_model(self, size: str) -> ModelConfig:
        if size == "teacher":
            return MLPConfig(d_in=self.cfg.n, width=50_000, depth=1, n_classes=2)
        return MLPConfig(d_in=self.cfg.n, width=100, depth=1, n_classes=2)

    def check_model(self, model_cfg: ModelConfig) -> None:
        if isinstance(model_cfg, MLPConfig) and model_cfg.d_in != self.cfg.n:
            raise CurriculensError(f"MLP d_in={model_cfg.d_in} but the task has n={self.cfg.n}")
        if isinstance(model_cfg, GPT2Config) and (model_cfg.vocab_size != 2 or model_cfg.n_positions < self.cfg.n):
            raise CurriculensError("a parity Transformer needs vocab_size=2 and n_positions >= n")
