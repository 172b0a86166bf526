"""The distillation loss shared by every task.

``L = alpha * CE(y, p_s) + (1 - alpha) * H(p_t, p_s)`` with ``p_t = softmax(z_t / tau)``
(temperature on the teacher only; the student's log-softmax is at tau = 1, as in the paper's
code) and ``H(p, q) = -sum p log q``. ``tau <= HARD_TAU`` uses the teacher's one-hot argmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.config import DistillConfig

HARD_TAU = 1e-6  # the paper's scripts use tau = 1e-20, i.e. hard labels


def teacher_targets(teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Soft targets [N, C] from teacher logits [N, C]; one-hot argmax when tau <= HARD_TAU."""
    if tau <= HARD_TAU:
        idx = teacher_logits.argmax(dim=-1)
        return F.one_hot(idx, teacher_logits.shape[-1]).to(teacher_logits.dtype)
    z = teacher_logits.float()
    return torch.softmax(z if tau == 1.0 else z / tau, dim=-1)  # z / 1.0 == z exactly


def distillation_loss(
    student_logits: torch.Tensor,
    targets: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    *,
    alpha: float = DistillConfig.alpha,
    tau: float = DistillConfig.tau,
) -> torch.Tensor:
    """Mean loss over N scored positions.

    Args:
        student_logits: [N, C].
        targets: [N] int64 labels.
        teacher_logits: [N, C] or None (then plain cross-entropy, whatever alpha is).
    """
    ce = F.cross_entropy(student_logits.float(), targets)
    if teacher_logits is None:
        return ce
    p_t = teacher_targets(teacher_logits.detach(), tau)
    soft = -(p_t * F.log_softmax(student_logits.float(), dim=-1)).sum(-1).mean()
    if alpha == 0.0:
        return soft
    return alpha * ce + (1.0 - alpha) * soft


def target_distribution(
    targets: torch.Tensor, n_classes: int, teacher_logits: torch.Tensor | None, alpha: float, tau: float
) -> torch.Tensor:
    """The distribution ``[N, C]`` whose cross-entropy with the student is the loss above:
    ``alpha * onehot(y) + (1 - alpha) * p_t`` (``onehot(y)`` without a teacher). Used by grids,
    where every student's target is stacked into one ``[E, N, C]`` tensor."""
    p_t = None if teacher_logits is None else teacher_targets(teacher_logits.detach(), tau)
    return mix_targets(targets, n_classes, p_t, alpha)


def mix_targets(targets: torch.Tensor, n_classes: int, p_t: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """``target_distribution`` from the teacher's targets ``p_t [N, C]`` (``teacher_targets``;
    None: no teacher) already computed."""
    if p_t is None:
        return F.one_hot(targets, n_classes).float()
    p_t = p_t.float()
    if alpha == 0.0:
        return p_t
    return alpha * F.one_hot(targets, n_classes).float() + (1.0 - alpha) * p_t


def stacked_cross_entropy(student_logits: torch.Tensor, target_dist: torch.Tensor) -> torch.Tensor:
    """Per-student mean cross-entropy ``[E]`` of logits ``[E, N, C]`` against ``[E, N, C]``
    target distributions (equal to ``distillation_loss`` of each student up to rounding)."""
    return -(target_dist * F.log_softmax(student_logits.float(), dim=-1)).sum(-1).mean(-1)
