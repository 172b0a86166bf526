"""ParityMLP.ce_grads: the hand-written cross-entropy backward equals autograd bit for bit."""

import pytest
import torch
import torch.nn.functional as F

from models.configs import MLPConfig
from models.mlp import ParityMLP


@pytest.mark.parametrize(("depth", "width", "batch"), [(1, 512, 32), (1, 50, 32), (2, 64, 17), (3, 16, 5)])
def test_ce_grads_equal_autograd_bit_for_bit(depth, width, batch, one_thread):
    torch.manual_seed(depth * 100 + width)
    model = ParityMLP(MLPConfig(d_in=12, width=width, depth=depth, n_classes=2))
    work = {}
    for _ in range(3):  # the buffers are reused across calls
        x = torch.randint(0, 2, (batch, 12)).float() * 2 - 1
        y = torch.randint(0, 2, (batch,))
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        ref = [p.grad.clone() for p in model.parameters()]
        model.zero_grad(set_to_none=True)
        got = model.ce_grads(x, y, work)
        assert torch.equal(got, loss.detach())
        assert all(torch.equal(p.grad, r) for p, r in zip(model.parameters(), ref, strict=True))
        with torch.no_grad():  # move the weights, as a step would
            for p in model.parameters():
                p.sub_(0.05 * p.grad)


@pytest.mark.parametrize(("depth", "width", "batch"), [(1, 512, 32), (2, 64, 17)])
def test_ce_grads_with_sgd_lr_apply_the_sgd_step(depth, width, batch, one_thread):
    """``sgd_lr``: the plain-SGD update applied inside the backward (one ``addmm_`` per weight):
    from the same weights, the same loss bits and weights within float32 rounding of
    gradients-then-``add_``, no grads left; the same bits again from the same start."""
    torch.manual_seed(depth * 7 + width)
    lr = 0.05
    fused = ParityMLP(MLPConfig(d_in=12, width=width, depth=depth, n_classes=2))
    twice, again = ParityMLP(fused.cfg), ParityMLP(fused.cfg)
    again.load_state_dict(fused.state_dict())
    works = {}, {}, {}
    moved = False
    for _ in range(5):
        x = torch.randint(0, 2, (batch, 12)).float() * 2 - 1
        y = torch.randint(0, 2, (batch,))
        twice.load_state_dict(fused.state_dict())
        ref = twice.ce_grads(x, y, works[0])
        with torch.no_grad():
            for p in twice.parameters():
                p.add_(p.grad, alpha=-lr)
        got = fused.ce_grads(x, y, works[1], sgd_lr=lr)
        assert torch.equal(got, ref)  # the loss, before any update
        assert all(p.grad is None for p in fused.parameters())
        for (name, a), b in zip(fused.named_parameters(), twice.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)
            moved |= not torch.equal(a, b)
        again.ce_grads(x, y, works[2], sgd_lr=lr)
    assert all(torch.equal(a, c) for a, c in zip(fused.parameters(), again.parameters(), strict=True))
    assert moved  # the fused update rounds differently somewhere: not the two-step path by accident


def test_ce_grads_reallocate_for_a_new_batch_size(one_thread):
    torch.manual_seed(0)
    model = ParityMLP(MLPConfig(d_in=8, width=32, depth=1, n_classes=2))
    work = {}
    for n in (16, 7):
        x = torch.randint(0, 2, (n, 8)).float() * 2 - 1
        y = torch.randint(0, 2, (n,))
        model.ce_grads(x, y, work)
        assert work["h"][0].shape == (n, 32)
        got = [p.grad.clone() for p in model.parameters()]
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), got, strict=True))


@pytest.mark.parametrize("depth", [1, 2])
def test_output_logits_with_hidden_equal_the_forward(depth, one_thread):
    """The teacher forward of curriculum extraction: logits and last hidden layer, in reused buffers."""
    from training.extraction import mlp_forward_hidden

    torch.manual_seed(depth)
    model = ParityMLP(MLPConfig(d_in=12, width=64, depth=depth, n_classes=2))
    work = []
    with torch.no_grad():
        for n in (32, 32, 9):
            x = torch.randint(0, 2, (n, 12)).float() * 2 - 1
            logits, _, h = mlp_forward_hidden(model, x)
            got_logits, got_h = model.output_logits(x, work=work, hidden=True)
            assert torch.equal(got_logits, logits) and torch.equal(got_h, h)
            assert torch.equal(model.output_logits(x, hidden=True)[1], h)


@pytest.mark.parametrize("depth", [1, 2])
def test_output_logits_in_row_chunks_equal_the_forward(depth, one_thread, monkeypatch):
    """A batch wider than ``FORWARD_HIDDEN_FLOATS`` runs the chain in row chunks (here 64
    rows, the last one shorter) in chunk-sized buffers: the logits are the one-shot forward's,
    bit for bit; a ``hidden`` forward runs whole."""
    import models.mlp as mlp

    monkeypatch.setattr(mlp, "FORWARD_HIDDEN_FLOATS", 64 * 300)
    torch.manual_seed(depth)
    model = ParityMLP(MLPConfig(d_in=20, width=300, depth=depth, n_classes=2))
    assert model._chunk_rows() == 64
    x = torch.randint(0, 2, (777, 20), generator=torch.Generator().manual_seed(1)).float() * 2 - 1
    with torch.no_grad():
        ref = model(x)
        work: list = []
        assert torch.equal(model.output_logits(x, work=work), ref)
        assert work[0].shape == (64, 300)  # chunk-sized buffers, not batch-sized
        logits, h = model.output_logits(x, work=[], hidden=True)
        assert torch.equal(logits, ref) and h.shape == (777, 300)


@pytest.mark.parametrize("depth", [1, 2])
def test_class1_margin_is_the_logit_difference(depth, one_thread, monkeypatch):
    """``class1_margin`` = logit_1 - logit_0 of the forward up to float32 rounding, with the
    hidden layer in blocks of ``MARGIN_HIDDEN_UNITS`` (here 64: the last block 44 wide) or
    whole; the same numbers on every call; ``hidden_out`` receives the forward's last hidden
    layer and leaves the margin as it was; three classes are refused."""
    import models.mlp as mlp
    from training.extraction import mlp_forward_hidden

    torch.manual_seed(depth)
    model = ParityMLP(MLPConfig(d_in=20, width=300, depth=depth, n_classes=2))
    x = torch.randint(0, 2, (777, 20), generator=torch.Generator().manual_seed(2)).float() * 2 - 1
    with torch.no_grad():
        logits, _, h = mlp_forward_hidden(model, x)
        ref = logits[:, 1] - logits[:, 0]
        whole = model.class1_margin(x)
        assert whole.shape == (777,)
        assert torch.allclose(whole, ref, rtol=1e-5, atol=1e-5)
        monkeypatch.setattr(mlp, "MARGIN_HIDDEN_UNITS", 64)
        work: list = []
        blocked = model.class1_margin(x, work)
        assert work[0].shape == (777 * 64,) and torch.allclose(blocked, ref, rtol=1e-5, atol=1e-5)
        assert torch.equal(model.class1_margin(x, work), blocked)
        out = torch.full((777, 300), float("nan"))
        assert torch.equal(model.class1_margin(x, work, hidden_out=out), blocked)
        assert torch.allclose(out, h, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="two classes"):
        ParityMLP(MLPConfig(d_in=20, width=30, n_classes=3)).class1_margin(x)


def test_first_layer_is_input_major_with_the_same_numbers(tmp_path, one_thread):
    """The first layer's weight is stored transposed (its forward and gradient are then plain
    GEMMs); values, the forward, ce_grads and the saved file equal a contiguous copy's."""
    from models.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(3)
    cfg = MLPConfig(d_in=60, width=800, depth=1, n_classes=2)
    model = ParityMLP(cfg)
    w = model.blocks[0].fc.weight
    assert w.shape == (800, 60) and w.t().is_contiguous() and not w.is_contiguous()
    plain = ParityMLP(cfg)
    with torch.no_grad():
        plain.blocks[0].fc.weight = torch.nn.Parameter(w.detach().contiguous())
        for (_, p), (_, q) in zip(model.named_parameters(), plain.named_parameters(), strict=True):
            q.copy_(p)
    assert plain.blocks[0].fc.weight.is_contiguous()
    x = torch.randint(0, 2, (32, 60)).float() * 2 - 1
    y = torch.randint(0, 2, (32,))
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))
    model.ce_grads(x, y, {})
    plain.ce_grads(x, y, {})
    assert model.blocks[0].fc.weight.grad.t().is_contiguous()  # the gradient shares the layout
    for p, q in zip(model.parameters(), plain.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)
    a = save_checkpoint(tmp_path / "a", 0, model, cfg, {})
    b = save_checkpoint(tmp_path / "b", 0, plain, cfg, {})
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    loaded, _, _ = load_checkpoint(a)
    assert loaded.blocks[0].fc.weight.t().is_contiguous()
    assert torch.equal(loaded.blocks[0].fc.weight, w)
