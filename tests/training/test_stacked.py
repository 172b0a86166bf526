"""StackedMLPGroup.ce_grads: the hand-written stacked backward equals autograd bit for bit."""

import pytest
import torch

from models.configs import MLPConfig
from models.registry import build_model
from training.config import OptimConfig
from training.losses import stacked_cross_entropy
from training.stacked import StackedMLPGroup


@pytest.mark.parametrize(
    ("depth", "width", "size", "batch"), [(1, 50, 5, 32), (1, 50, 2, 32), (1, 40, 1, 32), (2, 16, 3, 17), (3, 8, 4, 5)]
)
def test_stacked_ce_grads_equal_autograd_bit_for_bit(depth, width, size, batch, one_thread):
    torch.manual_seed(depth * 1000 + width + size)
    cfg = MLPConfig(d_in=12, width=width, depth=depth, n_classes=2)
    group = StackedMLPGroup([build_model(cfg) for _ in range(size)], cfg, OptimConfig(name="sgd"), "cpu")
    for _ in range(3):
        x = torch.randint(0, 2, (batch, 12)).float() * 2 - 1
        target = torch.softmax(3 * torch.randn(size, batch, 2), -1)
        target[0] = torch.nn.functional.one_hot(torch.randint(0, 2, (batch,)), 2).float()  # a ce student
        group.optimizer.zero_grad(set_to_none=True)
        losses = stacked_cross_entropy(group.forward(x)[0], target)
        losses.sum().backward()
        ref = [p.grad.clone() for p in group.params]
        group.optimizer.zero_grad(set_to_none=True)
        got = group.ce_grads(x, target)
        assert torch.equal(got, losses.detach())
        assert all(torch.equal(p.grad, r) and p.grad.is_contiguous() for p, r in zip(group.params, ref, strict=True))
        group.optimizer.step()


@pytest.mark.parametrize("optim", ["sgd", "adam"])
@pytest.mark.parametrize(("depth", "size", "extracting"), [(1, 5, [4]), (1, 5, [0, 3]), (2, 3, [1]), (1, 1, [0])])
def test_stacked_ce_grads_with_extraction_equal_autograd(depth, size, extracting, optim, one_thread):
    """Curriculum extraction's students: the hidden-layer fit masks their cross-entropy (the
    engine's ``torch.where(mask, extraction losses, cross-entropies)``), bit for bit."""
    from training.extraction import extraction_loss

    torch.manual_seed(depth * 10 + size)
    cfg = MLPConfig(d_in=12, width=16, depth=depth, n_classes=2)
    group = StackedMLPGroup([build_model(cfg) for _ in range(size)], cfg, OptimConfig(name=optim, lr=1e-2), "cpu")
    idx = torch.tensor(extracting)
    mask = torch.zeros(size, dtype=torch.bool)
    mask[idx] = True
    for _ in range(3):
        x = torch.randint(0, 2, (32, 12)).float() * 2 - 1
        target = torch.softmax(3 * torch.randn(size, 32, 2), -1)
        hidden_target = torch.randn(len(extracting), 32, 16)
        group.optimizer.zero_grad(set_to_none=True)
        logits, pre = group.forward(x)
        full = torch.zeros(size).index_put((idx,), extraction_loss(pre[idx], hidden_target))
        losses = torch.where(mask, full, stacked_cross_entropy(logits, target))
        losses.sum().backward()
        ref = [p.grad.clone() for p in group.params]
        group.optimizer.zero_grad(set_to_none=True)
        got = group.ce_grads(x, target, (idx, mask, hidden_target))
        assert torch.equal(got, losses.detach())
        assert all(torch.equal(p.grad, r) for p, r in zip(group.params, ref, strict=True))
        group.optimizer.step()
