"""The parity ``fourier`` probe recovers planted Fourier coefficients through the probe path."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from models.configs import MLPConfig
from probes.base import ProbeContext
from probes.tasks.parity.fourier import FourierProbe
from training.tasks.parity import ParityConfig, ParityTask


class PlantedModel(nn.Module):
    """Logits [0, logit(p)] so that softmax(...)[:, 1] = p(x) = 0.5 + 0.1 x0 + 0.05 x1 x2."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        x = x.double()
        p = (0.5 + 0.1 * x[:, 0] + 0.05 * x[:, 1] * x[:, 2]).float()
        return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1) + 0 * self.dummy


def test_fourier_probe_recovers_planted_coefficients():
    task = ParityTask(ParityConfig(n=12, k=3, n_eval=64))
    ctx = ProbeContext(
        model=PlantedModel(),
        model_cfg=MLPConfig(d_in=12, width=4),
        task=task,
        device=torch.device("cpu"),
        step=0,
        ckpt_dir=Path("."),
        seed=0,
        options={"n_probe": 100_000, "n_off": 30},
    )
    rows = FourierProbe().run(ctx)
    by = {r.feature: r for r in rows}
    assert {r.degree for r in rows} == {1, 2}
    assert sum(r.in_support for r in rows) == 3 + 3
    assert all(r.site == "output" and r.metric == "corr" and r.probe == "fourier" for r in rows)
    noise = 4 * 0.6 / math.sqrt(100_000)
    assert by["0"].value == pytest.approx(0.1, abs=noise) and by["0"].in_support
    assert by["1_2"].value == pytest.approx(0.05, abs=noise) and by["1_2"].in_support
    rest = [r.value for f, r in by.items() if f not in ("0", "1_2")]
    assert max(rest) < noise
    # the same seed gives the same probe data: identical values on a second call
    assert [r.value for r in FourierProbe().run(ctx)] == [r.value for r in rows]


def test_class1_probability_margin_path_matches_the_module_forward():
    """The Fourier probe's p(x) of a parity MLP is sigmoid(``class1_margin``) (labels passed
    in): the hooked module forward's softmax up to float32 rounding, and exactly the margin's
    sigmoid; a model without the margin path gets the forward's softmax exactly."""
    from probes.tasks.parity.maths import class1_probability
    from training.data.parity import parity_labels, sample_pm1

    task = ParityTask(ParityConfig(n=12, k=3))
    cfg = MLPConfig(d_in=12, width=64)
    torch.manual_seed(0)
    from models.registry import build_model

    model = build_model(cfg).eval()
    x = sample_pm1(3000, 12, torch.Generator().manual_seed(1))
    fast = class1_probability(model, cfg, task, x, task.support, 512, labels=parity_labels(x, task.support))

    class Plain(nn.Module):  # the same model without the output-only path
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, inp):
            return self.m(inp)

    slow = class1_probability(Plain(model), cfg, task, x, task.support, 512)
    assert torch.allclose(fast, slow, rtol=0, atol=1e-6)
    with torch.no_grad():
        logits = model(x)
        assert torch.equal(slow, torch.softmax(logits, dim=-1)[:, 1].double())
        assert torch.equal(fast, torch.sigmoid(model.class1_margin(x, [])).double())
        assert torch.allclose(model.class1_margin(x), logits[:, 1] - logits[:, 0], rtol=1e-5, atol=1e-6)
