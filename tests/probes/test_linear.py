"""Linear probes: a planted feature is decoded, shuffled labels are not, torch agrees with sklearn."""

from __future__ import annotations

import math

import pytest
import torch

from curriculens.errors import CurriculensError
from probes.linear import LinearProbeConfig, fit_linear_probe, fit_linear_probes, split_indices


def planted_data(n=2048, d=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    acts = torch.randn(n, d, generator=g)
    w = torch.randn(d, generator=g)
    planted = (acts @ w > 0).long()  # linearly decodable
    shuffled = planted[torch.randperm(n, generator=g)]  # same balance, no relation to acts
    return acts, planted, shuffled


@pytest.mark.parametrize("backend", ["torch", "sklearn"])
def test_planted_feature_is_decoded_and_shuffled_label_is_not(backend):
    acts, planted, shuffled = planted_data()
    cfg = LinearProbeConfig(backend=backend)
    fit_p, fit_s = fit_linear_probes(acts, torch.stack([planted, shuffled], 1), cfg)
    n_test = fit_p.n_test
    sigma = 0.5 / math.sqrt(n_test)  # sd of a chance-level accuracy
    assert fit_p.test_acc > 0.9
    assert fit_p.control_acc < 0.5 + 4 * sigma  # the control of a real feature is at chance
    assert fit_p.selectivity > 0.3
    assert abs(fit_s.test_acc - 0.5) < 4 * sigma  # a shuffled label is not decoded
    assert abs(fit_s.selectivity) < 6 * sigma
    assert 0.4 < fit_p.majority < 0.6
    assert fit_p.n_train + fit_p.n_test == 2048 and fit_p.n_features == 64


def test_torch_backend_agrees_with_sklearn():
    g = torch.Generator().manual_seed(2)
    n, d = 1500, 40
    x = torch.randn(n, d, generator=g)
    # targets of varied difficulty: linear, noisy linear, non-linear (xor of two signs), random
    y = torch.stack(
        [
            (x[:, 0] + x[:, 1] > 0).long(),
            (x[:, :5].sum(1) + 1.5 * torch.randn(n, generator=g) > 0).long(),
            ((x[:, 2] > 0) ^ (x[:, 3] > 0)).long(),
            torch.randint(0, 2, (n,), generator=g),
        ],
        1,
    )
    a = fit_linear_probes(x, y, LinearProbeConfig(backend="torch", max_iter=200))
    b = fit_linear_probes(x, y, LinearProbeConfig(backend="sklearn", max_iter=200))
    for fa, fb in zip(a, b, strict=True):
        assert abs(fa.test_acc - fb.test_acc) <= 0.02
        assert abs(fa.control_acc - fb.control_acc) <= 0.02
        assert abs(fa.train_acc - fb.train_acc) <= 0.02
        assert fa.majority == fb.majority


def test_torch_agrees_with_sklearn_on_wide_subsampled_features():
    g = torch.Generator().manual_seed(3)
    x = torch.relu(torch.randn(800, 12, generator=g).sign() @ torch.randn(12, 600, generator=g))
    y = torch.stack([(x[:, 5] > x[:, 6]).long(), torch.randint(0, 2, (800,), generator=g)], 1)
    cfg = dict(max_features=128, max_iter=300)
    a = fit_linear_probes(x, y, LinearProbeConfig(backend="torch", **cfg))
    b = fit_linear_probes(x, y, LinearProbeConfig(backend="sklearn", **cfg))
    assert a[0].n_features == 128 and a[0].n_features == b[0].n_features
    for fa, fb in zip(a, b, strict=True):
        assert abs(fa.test_acc - fb.test_acc) <= 0.02


def test_multiclass_planted_feature():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1500, 10, generator=g)
    y = x[:, :4].argmax(1) + 10  # 4 classes, labels need not start at 0
    for backend in ("torch", "sklearn"):
        fit = fit_linear_probe(x, y, LinearProbeConfig(backend=backend, max_iter=200))
        assert fit.test_acc > 0.85, backend
        assert fit.control_acc < 0.25 + 0.1, backend


def test_convergence_is_recorded():
    acts, planted, _ = planted_data(n=600, d=30)
    for backend in ("torch", "sklearn"):
        short = fit_linear_probe(acts, planted, LinearProbeConfig(backend=backend, max_iter=1))
        long = fit_linear_probe(acts, planted, LinearProbeConfig(backend=backend, max_iter=500, C=0.1))
        assert short.converged is False, backend
        assert long.converged is True, backend


def test_single_class_column_and_determinism():
    acts, planted, _ = planted_data(n=200, d=8)
    const = torch.ones(200, dtype=torch.long)
    fit = fit_linear_probe(acts, const, LinearProbeConfig())
    assert fit.test_acc == 1.0 and fit.majority == 1.0 and fit.converged
    a = fit_linear_probe(acts, planted, LinearProbeConfig(seed=7))
    b = fit_linear_probe(acts, planted, LinearProbeConfig(seed=7))
    assert a == b
    tr, te = split_indices(200, 0.25, 7)
    assert len(te) == 50 and len(set(tr.tolist()) | set(te.tolist())) == 200


def test_bad_config_is_a_user_error():
    acts, planted, _ = planted_data(n=100, d=4)
    with pytest.raises(CurriculensError):
        fit_linear_probe(acts, planted, LinearProbeConfig(backend="nope"))
    with pytest.raises(CurriculensError):
        fit_linear_probe(acts, planted, LinearProbeConfig(test_frac=1.5))
    with pytest.raises(CurriculensError):
        fit_linear_probe(acts[:50], planted, LinearProbeConfig())
