"""The batched Newton-CG solver reaches scikit-learn's solution, column by column."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from probes.linear import LinearProbeConfig, WarmStart, fit_linear_probes, prepare_targets
from probes.logreg import fit_logistic


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """scikit-learn's BLAS threads spin on a shared machine (a 3 s fit took 0.1 s on one)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


COEF_TOL = 0.02  # max |coefficient difference| to scikit-learn at tol=1e-4 (standardised features)


def _sklearn(x: torch.Tensor, y: np.ndarray, C: float = 1.0):
    """scikit-learn's exact reference: the same objective solved to tol 1e-8 (newton-cholesky)."""
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LogisticRegression(C=C, solver="newton-cholesky", max_iter=200, tol=1e-8).fit(x.double().numpy(), y)


def _standard(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(0)) / x.std(0)


def planted_binary(n=800, d=24, m=6, seed=0):
    """Targets of varied difficulty: noisy planted directions of growing strength + controls."""
    g = torch.Generator().manual_seed(seed)
    x = _standard(torch.randn(n, d, generator=g) @ torch.randn(d, d, generator=g))  # correlated features
    w = torch.randn(d, m, generator=g) * torch.linspace(0.1, 3.0, m)
    y = ((x @ w) / d**0.5 + torch.randn(n, m, generator=g) > 0).long()
    return x, torch.cat([y, y[torch.randperm(n, generator=g)]], 1)


def test_binary_coefficients_match_sklearn_per_column():
    x, y = planted_binary()
    sol = fit_logistic(x, y, torch.full((y.shape[1],), 2), C=0.5, tol=1e-6, max_iter=100)
    assert bool(sol.converged.all())
    assert (sol.n_iter > 0).all() and (sol.n_iter < 30).all()  # each column its own count
    assert len(set(sol.n_iter.tolist())) > 1
    for j in range(y.shape[1]):
        ref = _sklearn(x, y[:, j].numpy(), C=0.5)
        assert np.abs(sol.w[:, j, 0].numpy() - ref.coef_[0]).max() < 1e-3
        assert abs(float(sol.b[j, 0]) - ref.intercept_[0]) < 1e-3


def test_multiclass_with_absent_classes_matches_sklearn():
    g = torch.Generator().manual_seed(1)
    x = _standard(torch.randn(900, 10, generator=g))
    y4 = (x[:, :4] + 0.7 * torch.randn(900, 4, generator=g)).argmax(1)  # 4 classes
    y3 = (x[:, 4:7] + 0.7 * torch.randn(900, 3, generator=g)).argmax(1)  # 3 classes: padded
    y = torch.stack([y4, y3], 1)
    sol = fit_logistic(x, y, torch.tensor([4, 3]), tol=1e-6, max_iter=100)
    assert bool(sol.converged.all())
    for j, kj in enumerate((4, 3)):
        ref = _sklearn(x, y[:, j].numpy())
        assert np.abs(sol.w[:, j, :kj].numpy() - ref.coef_.T).max() < 1e-3
        assert np.abs(sol.b[j, :kj].numpy() - ref.intercept_).max() < 1e-3
        assert float(sol.w[:, j, kj:].abs().sum()) == 0.0  # padded classes carry no weight
    assert torch.equal(
        sol.predict(x, torch.tensor([4, 3]))[:, 1].clamp(max=2), sol.predict(x, torch.tensor([4, 3]))[:, 1]
    )


def test_probe_accuracy_and_coefficients_match_sklearn_at_default_tolerance():
    x, y = planted_binary(n=1200, d=64, m=8, seed=3)
    cfg = LinearProbeConfig()
    a = fit_linear_probes(x, y[:, :8], cfg)
    b = fit_linear_probes(x, y[:, :8], LinearProbeConfig(backend="sklearn"))
    for fa, fb in zip(a, b, strict=True):
        assert abs(fa.test_acc - fb.test_acc) <= 0.02 and abs(fa.control_acc - fb.control_acc) <= 0.02
        assert fa.converged and fa.n_iter > 0 and fb.n_iter > 0
    t = prepare_targets(y[:, :8], x.shape[1], cfg)
    xs = x[t.train]
    xs = (xs - xs.mean(0)) / xs.std(0)
    sol = fit_logistic(xs, t.codes[t.train], t.k, tol=cfg.tol)
    for j in range(16):
        ref = _sklearn(xs, t.codes[t.train][:, j].numpy())
        assert np.abs(sol.w[:, j, 0].numpy() - ref.coef_[0]).max() < COEF_TOL


def test_real_activations_match_sklearn(tiny_parity_experiment):
    """Hidden activations of a trained parity checkpoint, monomial labels: same accuracies."""
    from models.checkpoint import list_checkpoints, load_checkpoint
    from probes.activations import extract_activations
    from probes.tasks.parity.maths import monomial_set, monomial_values
    from training.data.parity import sample_pm1

    run = tiny_parity_experiment / "runs" / "teacher"
    step, ckpt = list_checkpoints(run)[-1]
    model, cfg, _ = load_checkpoint(ckpt)
    x = sample_pm1(1024, cfg.d_in, torch.Generator().manual_seed(0))
    acts = extract_activations(model, cfg, x, ["blocks.0.hook_post"])["blocks.0.hook_post"]
    monomials = monomial_set(cfg.d_in, (0, 1, 2), (1, 2), n_off=4, seed=0)
    labels = (monomial_values(x, monomials) < 0).long()
    a = fit_linear_probes(acts, labels, LinearProbeConfig())
    b = fit_linear_probes(acts, labels, LinearProbeConfig(backend="sklearn"))
    for fa, fb in zip(a, b, strict=True):
        assert abs(fa.test_acc - fb.test_acc) <= 0.02, (fa, fb)
        assert abs(fa.control_acc - fb.control_acc) <= 0.02


def test_warm_start_reaches_the_same_solution_in_fewer_iterations():
    x, y = planted_binary(n=1000, d=32, m=6, seed=5)
    g = torch.Generator().manual_seed(9)
    x2 = x + 0.05 * torch.randn(x.shape, generator=g)  # "the next checkpoint": nearby features
    cold = fit_linear_probes(x2, y, LinearProbeConfig(tol=1e-6))
    warm = WarmStart()
    fit_linear_probes(x, y, LinearProbeConfig(tol=1e-6), warm=warm)
    assert warm.solution is not None
    hot = fit_linear_probes(x2, y, LinearProbeConfig(tol=1e-6), warm=warm)
    assert sum(f.n_iter for f in hot) < sum(f.n_iter for f in cold)
    for fc, fh in zip(cold, hot, strict=True):
        assert fc.test_acc == fh.test_acc and fc.control_acc == fh.control_acc


def test_warm_start_of_another_shape_is_ignored():
    x, y = planted_binary(n=400, d=8, m=2)
    warm = WarmStart((torch.ones(3, 3, 1), torch.ones(3, 1)))
    fits = fit_linear_probes(x, y, LinearProbeConfig(), warm=warm)
    assert fits == fit_linear_probes(x, y, LinearProbeConfig())
    assert warm.solution[0].shape == (8, 8, 1)  # 4 columns and their controls


def test_linear_probes_do_not_import_dynamo():
    code = (
        "import sys, torch\n"
        "from probes.linear import fit_linear_probes\n"
        "x = torch.randn(200, 8); y = (x[:, 0] > 0).long()\n"
        "fit_linear_probes(x, y)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.gpu
def test_cuda_fit_matches_cpu():
    x, y = planted_binary(n=1500, d=64, m=10, seed=7)
    a = fit_linear_probes(x, y, LinearProbeConfig(device="cpu"))
    b = fit_linear_probes(x.cuda(), y, LinearProbeConfig(device="cuda"))
    for fa, fb in zip(a, b, strict=True):
        assert abs(fa.test_acc - fb.test_acc) <= 0.02 and fb.converged
