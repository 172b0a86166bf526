"""Fourier correlations: exact on planted functions, the paper's monomial sets, the sampled path."""

from __future__ import annotations

import math

import pytest
import torch

from models.configs import MLPConfig
from models.registry import build_model
from probes.tasks.parity.fourier import expected_rows
from probes.tasks.parity.maths import (
    class1_probability,
    forward_rows,
    fourier_coefficients,
    fourier_rows_for,
    hypercube,
    in_support_monomials,
    monomial_set,
    monomial_values,
    off_support_monomials,
)
from training.tasks.parity import ParityConfig, ParityTask


def planted(x: torch.Tensor) -> torch.Tensor:
    """p(x) = 0.5 + 0.1 x0 + 0.05 x1 x2: Fourier coefficients 0.1 on {0}, 0.05 on {1, 2}."""
    x = x.double()
    return 0.5 + 0.1 * x[:, 0] + 0.05 * x[:, 1] * x[:, 2]


def test_exact_on_hypercube():
    n = 6
    x = hypercube(n)
    assert x.shape == (64, 6) and torch.unique(x, dim=0).shape[0] == 64
    monos = [m for d in (1, 2, 3) for m in in_support_monomials(range(n), d)]
    rows = fourier_rows_for(planted, x, monos)
    got = {r.feature: r.value for r in rows}
    signed = {r.feature: r.extra["signed"] for r in rows}
    assert got["0"] == pytest.approx(0.1, abs=1e-12)
    assert got["1_2"] == pytest.approx(0.05, abs=1e-12)
    others = [v for f, v in got.items() if f not in ("0", "1_2")]
    assert len(others) == len(monos) - 2 and max(others) < 1e-12
    # a negative coefficient keeps its sign in extra and its magnitude in value
    neg = fourier_rows_for(lambda z: 0.5 - 0.2 * z.double()[:, 3], x, in_support_monomials(range(n), 1))
    r3 = next(r for r in neg if r.feature == "3")
    assert r3.value == pytest.approx(0.2, abs=1e-12) and r3.extra["signed"] == pytest.approx(-0.2, abs=1e-12)
    assert signed["0"] > 0


def test_sampled_estimate_within_noise():
    g = torch.Generator().manual_seed(1)
    n, N = 12, 200_000
    x = (1 - 2 * torch.randint(0, 2, (N, n), generator=g)).float()
    monos = monomial_set(n, (0, 1, 2), degrees=(1, 2), n_off=20, seed=0)
    coefs = fourier_coefficients(planted(x), x, monos)
    se = 0.6 / math.sqrt(N)  # std(chi_A * p) = sqrt(E p^2) <= 0.6 for this p
    for m, c in zip(monos, coefs.tolist(), strict=True):
        truth = {"0": 0.1, "1_2": 0.05}.get(m.feature, 0.0)
        assert abs(c - truth) < 5 * se, (m.feature, c, truth)


def test_monomial_sets_follow_the_paper():
    n, support = 10, (0, 1, 2)
    monos = monomial_set(n, support, degrees=(1, 2), n_off=100, seed=3)
    for d in (1, 2):
        ins = [m for m in monos if m.degree == d and m.in_support]
        offs = [m for m in monos if m.degree == d and not m.in_support]
        assert len(ins) == math.comb(3, d)
        assert len(offs) == math.comb(n, d) - math.comb(3, d)  # pool smaller than 100: all of it
        assert len({m.coords for m in offs}) == len(offs)
        assert all(not set(m.coords) <= set(support) for m in offs)
        assert all(m.disjoint == (not set(m.coords) & set(support)) for m in offs)
    # partial overlap with S is allowed (the paper's rule) and flagged as not disjoint
    assert any(m.degree == 2 and not m.in_support and not m.disjoint for m in monos)
    # a larger pool is sampled: distinct, seeded, reproducible
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = off_support_monomials(40, range(4), 2, 100, g1)
    b = off_support_monomials(40, range(4), 2, 100, g2)
    assert [m.coords for m in a] == [m.coords for m in b] and len({m.coords for m in a}) == 100
    assert all(m.coords == tuple(sorted(m.coords)) for m in a)
    assert expected_rows(40, 4)["fourier"] == (4 + 6 + 4) + (36 + 100 + 100)


def test_monomial_values_match_products():
    x = hypercube(5)
    monos = monomial_set(5, (0, 1), degrees=(1,), n_off=3, seed=0) + in_support_monomials(range(5), 3)
    vals = monomial_values(x, monos)
    for j, m in enumerate(monos):
        assert torch.equal(vals[:, j], x[:, list(m.coords)].prod(1))


def test_class1_probability_matches_manual_softmax():
    task = ParityTask(ParityConfig(n=8, k=3, n_eval=64))
    cfg = MLPConfig(d_in=8, width=16)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    x = hypercube(8)
    p = class1_probability(model, cfg, task, x, task.support, batch_size=50)
    with torch.no_grad():
        ref = torch.softmax(model(x), -1)[:, 1].double()
    assert torch.allclose(p, ref, atol=1e-6)


def test_narrow_mlps_take_more_rows_per_forward_with_the_same_numbers(one_thread):
    """forward_rows raises the forward's rows only for a narrow MLP (up to the memory of a
    256-row batch of an 8,192-wide layer); the probabilities are the 256-row ones bit for bit."""
    from curriculens.constants import FORWARD_HIDDEN_FLOATS
    from models.configs import GPT2Config

    assert forward_rows(MLPConfig(d_in=60, width=8000), 256) == 256
    assert forward_rows(MLPConfig(d_in=60, width=50), 256) == 256 * (FORWARD_HIDDEN_FLOATS // (256 * 50))
    assert forward_rows(GPT2Config(), 256) == 256
    task = ParityTask(ParityConfig(n=60, k=5, n_eval=64))
    cfg = MLPConfig(d_in=60, width=50)
    torch.manual_seed(1)
    model = build_model(cfg).eval()
    x = (torch.randint(0, 2, (50_000, 60)) * 2 - 1).float()
    p = class1_probability(model, cfg, task, x, task.support, batch_size=256)
    with torch.no_grad():  # 256 rows per forward, as before
        ref = torch.cat([torch.sigmoid(model.class1_margin(x[i : i + 256])) for i in range(0, 50_000, 256)])
    assert torch.equal(p, ref.double())
