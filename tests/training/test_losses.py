"""The distillation loss against hand computations."""

import math

import pytest
import torch

from training.losses import distillation_loss, teacher_targets


def test_ce_only_without_teacher():
    s = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0])
    expected = (-math.log(math.e**2 / (math.e**2 + 1)) - math.log(1 / (1 + math.e))) / 2
    assert distillation_loss(s, y).item() == pytest.approx(expected, rel=1e-6)


def test_soft_target_by_hand():
    s = torch.tensor([[1.0, 0.0, -1.0]])
    t = torch.tensor([[0.0, 2.0, 0.0]])
    y = torch.tensor([0])
    tau = 2.0
    pt = [math.exp(v / tau) for v in (0.0, 2.0, 0.0)]
    pt = [p / sum(pt) for p in pt]
    z = sum(math.exp(v) for v in (1.0, 0.0, -1.0))
    log_ps = [v - math.log(z) for v in (1.0, 0.0, -1.0)]
    soft = -sum(p * lq for p, lq in zip(pt, log_ps, strict=True))
    ce = -log_ps[0]
    assert distillation_loss(s, y, t, alpha=0.0, tau=tau).item() == pytest.approx(soft, rel=1e-6)
    mix = distillation_loss(s, y, t, alpha=0.3, tau=tau).item()
    assert mix == pytest.approx(0.3 * ce + 0.7 * soft, rel=1e-6)


def test_tau_to_zero_is_hard_teacher_labels():
    s = torch.randn(6, 4)
    t = torch.randn(6, 4)
    y = torch.randint(0, 4, (6,))
    hard = distillation_loss(s, y, t, tau=1e-20).item()
    ce_on_argmax = torch.nn.functional.cross_entropy(s, t.argmax(-1)).item()
    assert hard == pytest.approx(ce_on_argmax, rel=1e-6)
    # and a small positive tau converges to the same value
    assert distillation_loss(s, y, t, tau=1e-3).item() == pytest.approx(hard, rel=1e-4)
    assert torch.equal(teacher_targets(t, 0.0).argmax(-1), t.argmax(-1))


def test_teacher_gets_no_gradient():
    s = torch.randn(3, 2, requires_grad=True)
    t = torch.randn(3, 2, requires_grad=True)
    distillation_loss(s, torch.tensor([0, 1, 0]), t).backward()
    assert t.grad is None and s.grad is not None
