"""The (n, k)-sparse parity task (paper section 2)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from curriculens.errors import CurriculensError
from curriculens.seeding import PARITY_EVAL, PARITY_TRAIN, torch_generator
from models.configs import GPT2Config, MLPConfig, ModelConfig
from training.data.parity import parity_labels, sample_pm1, to_tokens
from training.tasks.base import Batch, Task
from training.tasks.configs import ParityConfig

_CHUNK = 64  # training batches generated together (per-step determinism is kept)


class ParityTask(Task):
    name = "parity"

    def __init__(self, cfg: ParityConfig) -> None:
        super().__init__(cfg)
        s = cfg.support_coords
        self.support = s
        g = torch_generator(PARITY_EVAL, cfg.data_seed)
        self._eval_x = sample_pm1(cfg.n_eval, cfg.n, g)
        self._eval_y = parity_labels(self._eval_x, s)
        self._chunk: tuple[int, int, int, torch.Tensor, torch.Tensor] | None = None  # key, x, labels

    def train_batch(self, step: int, batch_size: int, seed: int) -> Batch:
        chunk = step // _CHUNK
        key = (seed, chunk, batch_size)
        if self._chunk is None or self._chunk[:3] != key:
            g = torch_generator(PARITY_TRAIN, seed, chunk)
            x = sample_pm1(_CHUNK * batch_size, self.cfg.n, g)
            self._chunk = (*key, x, parity_labels(x, self.support))
        i = (step % _CHUNK) * batch_size
        return {"x": self._chunk[3][i : i + batch_size], "y": self._chunk[4][i : i + batch_size]}

    def eval_batches(self, batch_size: int) -> Iterator[Batch]:
        for i in range(0, self.cfg.n_eval, batch_size):
            yield {"x": self._eval_x[i : i + batch_size], "y": self._eval_y[i : i + batch_size]}

    def model_input(self, batch: Batch, model_cfg: ModelConfig) -> tuple[torch.Tensor, dict]:
        if not model_cfg.takes_tokens:
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
