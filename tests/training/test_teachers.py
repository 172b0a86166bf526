"""TeacherOutputs: blocked teacher forwards give every step the numbers of its own forward."""

import pytest
import torch

from models.configs import MLPConfig
from models.mlp import ParityMLP
from training.losses import target_distribution, teacher_targets
from training.tasks import build_task
from training.teachers import TEACHER_BLOCK, TeacherOutputs, teacher_outputs


class _Provider:  # TeacherProvider's one method that TeacherOutputs uses
    def __init__(self, models):
        self.models = models

    def get(self, ts):
        return self.models[ts]


def _block_reference(model, task, step, batch_size, seed, hidden):
    """The margin of ``step``'s aligned block, computed directly: (logits [0, m], hidden) rows."""
    start = step - step % TEACHER_BLOCK
    x = torch.cat([task.train_batch(s, batch_size, seed)["x"] for s in range(start, start + TEACHER_BLOCK)])
    h = torch.empty(x.shape[0], model.cfg.width) if hidden else None
    with torch.no_grad():
        m = ParityMLP.class1_margin(model, x, hidden_out=h)  # the class's, not a test's wrapper
    rows = slice((step - start) * batch_size, (step - start + 1) * batch_size)
    logits = torch.stack([torch.zeros_like(m), m], dim=1)[rows]
    return logits, (h[rows] if hidden else None)


@pytest.mark.parametrize(("n", "width", "n_classes"), [(60, 8000, 2), (12, 64, 2), (12, 64, 3)])
def test_blocked_outputs(n, width, n_classes, one_thread):
    """Blocked teacher outputs. Two classes: logits [0, margin] of the step's aligned block,
    bit for bit (``class1_margin``), whose soft targets match the one-step forward's to float32
    rounding; the hidden layer is the forward's. Three classes: the one-step forward's logits
    bit for bit. Soft targets, a stack's targets and extraction's ``h @ P`` are those of the
    blocked logits; one forward per aligned block and checkpoint."""
    torch.manual_seed(width + n_classes)
    task = build_task({"name": "parity", "n": n, "k": 3, "n_eval": 16})
    cfg = MLPConfig(d_in=n, width=width, depth=1, n_classes=n_classes)
    models = {ts: (ParityMLP(cfg).requires_grad_(False), cfg) for ts in (0, 100)}
    proj = torch.randn(width, 50) / width**0.5
    first, last, batch_size = 3, 3 + 2 * TEACHER_BLOCK + 5, 32  # blocks cut at both ends
    outs = TeacherOutputs(_Provider(models), task, torch.device("cpu"), False, batch_size, 7)
    calls = []  # rows of every block forward
    name = "class1_margin" if n_classes == 2 else "output_logits"

    def counted(f):
        return lambda x, **kw: calls.append(x.shape[0]) or f(x, **kw)

    for m, _ in models.values():
        setattr(m, name, counted(getattr(m, name)))
    for step in range(first, last):
        batch = task.train_batch(step, batch_size, 7)
        for ts, hidden in ((0, step < TEACHER_BLOCK * 3 // 2), (100, False)):  # hidden for a while, as extraction asks
            got_logits, got_h = outs.get(ts, step, batch, hidden)
            ref_logits, ref_h = teacher_outputs(*models[ts], task, batch, torch.device("cpu"), hidden=hidden)
            assert got_logits.shape == (batch_size, n_classes)
            if n_classes == 2:
                blk_logits, blk_h = _block_reference(models[ts][0], task, step, batch_size, 7, hidden)
                assert torch.equal(got_logits, blk_logits)
                margin = ref_logits[:, 1] - ref_logits[:, 0]
                assert torch.allclose(got_logits[:, 1], margin, rtol=1e-5, atol=1e-5)
                assert torch.allclose(teacher_targets(got_logits, 1.0), teacher_targets(ref_logits, 1.0), atol=1e-6)
                if hidden:
                    assert torch.allclose(got_h, ref_h, rtol=1e-6, atol=1e-6) and torch.equal(got_h, blk_h)
            else:
                assert torch.equal(got_logits, ref_logits)
                if hidden:
                    assert torch.equal(got_h, ref_h)
            assert got_h is not None if hidden else got_h is None
            if hidden:  # curriculum extraction's target, one product per block
                assert torch.equal(outs.projected(ts, step, batch, proj, "p"), got_h @ proj)
            spec = ((None, 0.0, 1.0), (ts, 0.0, 1.0), (ts, 0.3, 2.0), (0, 0.0, 1.0))
            ref = torch.stack(
                [
                    target_distribution(
                        batch["y"], n_classes, None if t is None else outs.get(t, step, batch, False)[0], a, tau
                    )
                    for t, a, tau in spec
                ]
            )
            assert torch.equal(outs.stacked_targets(step, batch, spec, n_classes), ref)  # a grid stack's targets
            for tau in (1.0, 2.5, 0.0):  # the block's soft targets, row by row
                assert torch.equal(outs.soft_targets(ts, step, batch, tau), teacher_targets(got_logits, tau))
    # three aligned blocks: one forward per block and checkpoint (checkpoint 0's last logits-only
    # steps of the second block reuse its hidden forward); a wide logits forward's row chunks
    # call it again
    assert [c for c in calls if c == TEACHER_BLOCK * batch_size] == [TEACHER_BLOCK * batch_size] * 6


def test_blocks_do_not_depend_on_where_a_run_starts(one_thread):
    """A run resumed at step 13 gets the rows a run from step 0 got (the same aligned block
    calls), bit for bit: what makes resumes bit-identical."""
    torch.manual_seed(0)
    task = build_task({"name": "parity", "n": 12, "k": 3, "n_eval": 16})
    cfg = MLPConfig(d_in=12, width=300, depth=1, n_classes=2)
    models = {0: (ParityMLP(cfg).requires_grad_(False), cfg)}
    whole = TeacherOutputs(_Provider(models), task, torch.device("cpu"), False, 20, 1)
    resumed = TeacherOutputs(_Provider(models), task, torch.device("cpu"), False, 20, 1)  # asked from step 13
    for step in range(40):
        batch = task.train_batch(step, 20, 1)
        a, ha = whole.get(0, step, batch, True)
        if 13 <= step < 37:
            b, hb = resumed.get(0, step, batch, True)
            assert torch.equal(a, b) and torch.equal(ha, hb)


def test_a_transformer_teacher_is_not_blocked(one_thread):
    """Where the scored logits are not the raw rows (a Transformer reads the last position),
    every step runs its own forward."""
    from models.configs import GPT2Config
    from models.registry import build_model

    task = build_task({"name": "parity", "n": 6, "k": 2, "n_eval": 8})
    cfg = GPT2Config(n_positions=6, n_layer=1, n_head=2, head_dim=8)
    model = build_model(cfg).eval().requires_grad_(False)
    outs = TeacherOutputs(_Provider({0: (model, cfg)}), task, torch.device("cpu"), False, 4, 0)
    batch = task.train_batch(0, 4, 0)
    logits, h = outs.get(0, 0, batch, False)
    ref, _ = teacher_outputs(model, cfg, task, batch, torch.device("cpu"))
    assert torch.equal(logits, ref) and h is None and not outs._cache


def test_step_outputs_fetch_hidden_at_once_and_the_rest_when_read():
    """The engine's per-step teacher outputs: checkpoints that need a hidden layer are fetched
    when the step starts (so a block's first forward of them is the hidden one), the others
    only when read, each once."""
    from training.engine import _StepOutputs

    class _Outs:
        def __init__(self):
            self.calls = []

        def get(self, ts, step, batch, hidden):
            self.calls.append((ts, step, hidden))
            return (f"logits {ts}", "h" if hidden else None)

    outs = _Outs()
    t_out = _StepOutputs(outs, 5, {"x": None}, {100: False, 0: True, 200: False})
    assert outs.calls == [(0, 5, True)]
    assert t_out[100] == ("logits 100", None) and t_out[0] == ("logits 0", "h") and t_out[100][0] == "logits 100"
    assert outs.calls == [(0, 5, True), (100, 5, False)]  # 200 never read: never fetched
    with pytest.raises(KeyError):
        t_out[300]  # a checkpoint this step does not use
