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


@pytest.mark.parametrize(("n", "width"), [(60, 8000), (12, 64)])
def test_blocked_outputs_equal_one_step_forwards_bit_for_bit(n, width, one_thread):
    torch.manual_seed(width)
    task = build_task({"name": "parity", "n": n, "k": 3, "n_eval": 16})
    cfg = MLPConfig(d_in=n, width=width, depth=1, n_classes=2)
    models = {ts: (ParityMLP(cfg).requires_grad_(False), cfg) for ts in (0, 100)}
    proj = torch.randn(width, 50) / width**0.5
    first, last, batch_size = 3, 3 + 2 * TEACHER_BLOCK + 5, 32  # blocks cut at both ends
    outs = TeacherOutputs(_Provider(models), task, torch.device("cpu"), False, batch_size, 7, first, last)
    calls = []  # rows of every output_logits call: the blocks', and the one-step references'
    for m, _ in models.values():
        m.output_logits = lambda x, _f=m.output_logits, **kw: calls.append(x.shape[0]) or _f(x, **kw)
    for step in range(first, last):
        batch = task.train_batch(step, batch_size, 7)
        for ts, hidden in ((0, step < 12), (100, False)):  # hidden for a while, as extraction asks
            got_logits, got_h = outs.get(ts, step, batch, hidden)
            ref_logits, ref_h = teacher_outputs(*models[ts], task, batch, torch.device("cpu"), hidden=hidden)
            assert got_logits.shape == (batch_size, 2) and torch.equal(got_logits, ref_logits)
            assert torch.equal(got_h, ref_h) if hidden else got_h is None
            if hidden:  # curriculum extraction's target, one product per block
                assert torch.equal(outs.projected(ts, step, batch, proj, "p"), ref_h @ proj)
            spec = ((None, 0.0, 1.0), (ts, 0.0, 1.0), (ts, 0.3, 2.0), (0, 0.0, 1.0))
            ref = torch.stack(
                [
                    target_distribution(
                        batch["y"], 2, None if t is None else outs.get(t, step, batch, False)[0], a, tau
                    )
                    for t, a, tau in spec
                ]
            )
            assert torch.equal(outs.stacked_targets(step, batch, spec, 2), ref)  # a grid stack's targets
            for tau in (1.0, 2.5, 0.0):  # the block's soft targets, row by row
                assert torch.equal(outs.soft_targets(ts, step, batch, tau), teacher_targets(ref_logits, tau))
    # blocks [3, 8), [8, 16), [16, 24): one forward per block and checkpoint (steps 12-15 of
    # checkpoint 0 reuse its hidden block)
    assert [c for c in calls if c != batch_size] == [5 * batch_size] * 2 + [8 * batch_size] * 4


def test_a_transformer_teacher_is_not_blocked(one_thread):
    """Where the scored logits are not the raw rows (a Transformer reads the last position),
    every step runs its own forward."""
    from models.configs import GPT2Config
    from models.registry import build_model

    task = build_task({"name": "parity", "n": 6, "k": 2, "n_eval": 8})
    cfg = GPT2Config(n_positions=6, n_layer=1, n_head=2, head_dim=8)
    model = build_model(cfg).eval().requires_grad_(False)
    outs = TeacherOutputs(_Provider({0: (model, cfg)}), task, torch.device("cpu"), False, 4, 0, 0, 16)
    batch = task.train_batch(0, 4, 0)
    logits, h = outs.get(0, 0, batch, False)
    ref, _ = teacher_outputs(model, cfg, task, batch, torch.device("cpu"))
    assert torch.equal(logits, ref) and h is None and not outs._cache
