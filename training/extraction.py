"""Curriculum Extraction (Gupta & Karmalkar 2025, arXiv 2503.17494) for MLP students.

Our reading of the method (the abstract and summaries; the paper's body was not available):
the curriculum is *extracted* from the final teacher alone, without intermediate checkpoints.

1. For the first ``extract_steps`` student steps the student fits a fixed random projection
   of the final teacher's hidden representation: with ``h_t(x)`` the teacher's last hidden
   layer after the ReLU ``[N, W_t]`` and ``P`` a Gaussian ``[W_t, m]`` matrix with entries
   N(0, 1 / W_t) (seeded by ``extract_seed``), the loss is the mean squared error between the
   student's last hidden *pre-activation* ``[N, m]`` (m = the student's width) and
   ``h_t(x) @ P``. Only the student's hidden layers receive gradient; its output layer is
   left as initialised.
2. Afterwards it distils from the final teacher's outputs (the one-shot loss).

Choices of ours: the pre-activation is matched (a ReLU output cannot match a projection of
either sign); depth > 1 fits the last hidden layer only (the paper goes layer by layer; its
parity setting has one hidden layer, where the two agree). MLP teachers and students only.
"""

from __future__ import annotations

import torch

from curriculens.errors import CurriculensError
from curriculens.seeding import EXTRACTION_PROJECTION, torch_generator
from models.configs import MLPConfig, ModelConfig


def check_models(student: ModelConfig, teacher: ModelConfig) -> None:
    if not isinstance(student, MLPConfig) or not isinstance(teacher, MLPConfig):
        raise CurriculensError("curriculum-extraction is implemented for MLP teachers and students only")


def projection(seed: int, d_teacher: int, d_student: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The fixed random projection ``P`` ``[d_teacher, d_student]``, entries N(0, 1/d_teacher)."""
    g = torch_generator(EXTRACTION_PROJECTION, seed)
    return (torch.randn(d_teacher, d_student, generator=g) / d_teacher**0.5).to(device)


def mlp_forward_hidden(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(logits [N, C], last hidden pre-activation [N, W], last hidden post-ReLU [N, W])`` of a
    ``models.mlp.ParityMLP`` (the same arithmetic as its forward, without the hooks)."""
    h = x.to(model.unembed.weight.dtype)
    pre = h
    for block in model.blocks:
        pre = block.fc(h)
        h = torch.relu(pre)
    return model.unembed(h), pre, h


def extraction_loss(student_pre: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the last two dims: ``[..., N, m]`` x ``[..., N, m]`` -> ``[...]``."""
    return (student_pre.float() - target.float()).pow(2).mean(dim=(-2, -1))
