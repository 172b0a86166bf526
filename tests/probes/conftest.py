"""Fixtures for the probe tests: a private copy of the session's tiny parity experiment."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# probe sizes that keep sweeps fast in tests (values are still real measurements)
SMALL_OPTIONS = {"n_probe": 4096, "n_linear": 512, "n_off": 12, "max_iter": 50}


@pytest.fixture
def exp_copy(tiny_parity_experiment: Path, tmp_path: Path) -> Path:
    """A writable copy of the tiny experiment (sweeps write results.sqlite into it)."""
    dst = tmp_path / "exp"
    shutil.copytree(
        tiny_parity_experiment,
        dst,
        ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json", "failed.jsonl"),
    )
    return dst


@pytest.fixture
def small_options() -> dict:
    return dict(SMALL_OPTIONS)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Probe tests do many small tensor ops; on a shared, oversubscribed CPU OpenMP threads
    make them 10-100x slower, so these tests run single-threaded (results are unaffected)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def local_reference(tiny_parity_experiment: Path, tmp_path_factory):
    """(sweep config, the local executor's table, number of units) on the tiny experiment,
    with SMALL_OPTIONS: the reference other executors must reproduce."""
    from curriculens import constants as C
    from probes.store import ResultsStore
    from probes.sweep import SweepConfig, run_sweep

    cfg = SweepConfig(device="cpu", options=dict(SMALL_OPTIONS))
    exp = tmp_path_factory.mktemp("ref") / "exp"
    shutil.copytree(
        tiny_parity_experiment,
        exp,
        ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json", "failed.jsonl"),
    )
    res = run_sweep(exp, cfg)
    assert res.n_failed == 0
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        return cfg, store.query(), res.n_units


# Fourier values against a sweep from before p(x) = sigmoid(class1_margin) (the output layer's
# GEMM skipped): each p moves by float32 rounding (below 1e-6), so a mean of chi * p does too
FOURIER_MARGIN_TOL = 1e-6
LINEAR_ACC_TOL = 0.02  # probes.linear's stated agreement of two solutions within the solver tolerance
_SOLVER_EXTRA = ("n_iter", "control_n_iter", "train_acc", "control_train_acc", "converged", "control_converged")


def rows_close(
    a: pd.DataFrame,
    b: pd.DataFrame,
    acc_tol: float = LINEAR_ACC_TOL,
    value_tol: float = 1e-9,
    new_extra: tuple = (),
    fourier_tol: float | None = None,
) -> None:
    """Assert the same rows; values equal within ``value_tol`` except linear-probe accuracies
    (rows whose ``extra`` has ``n_train``: within ``acc_tol``); ``extra`` equal except the
    solver's iteration counts, convergence flags and train accuracies (where and whether a fit
    stopped depends on the solver). ``new_extra``: ``extra`` keys that only ``a`` may carry
    (fields added since ``b`` was written, e.g. the Fourier rows' ``noise``). ``fourier_tol``:
    the Fourier rows' tolerance instead of ``value_tol`` (``FOURIER_MARGIN_TOL`` against a
    sweep from before the margin path)."""
    key = ["run", "step", "probe", "feature", "site", "metric"]
    a, b = a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[key], b[key])
    linear = a["extra"].fillna("").str.contains('"n_train"').to_numpy()
    diff = (a["value"] - b["value"]).abs().to_numpy()
    fourier = (a["probe"] == "fourier").to_numpy() if fourier_tol is not None else np.zeros(len(a), bool)
    assert (diff[~linear & ~fourier] <= value_tol).all(), diff[~linear & ~fourier].max()
    assert (diff[fourier] <= (fourier_tol or 0.0)).all(), diff[fourier].max()
    assert (diff[linear] <= acc_tol + 1e-9).all(), diff[linear].max()

    def strip(extra):
        if not isinstance(extra, str):
            return extra
        return {k: v for k, v in json.loads(extra).items() if k not in _SOLVER_EXTRA}

    def strip_new(extra):
        extra = strip(extra)
        return {k: v for k, v in extra.items() if k not in new_extra} if isinstance(extra, dict) else extra

    tols = np.where(fourier, fourier_tol or 0.0, value_tol)
    for ea, eb, tol in zip(a["extra"].map(strip_new), b["extra"].map(strip), tols, strict=True):
        if isinstance(ea, dict) and isinstance(eb, dict):
            assert ea.keys() == eb.keys(), (ea, eb)
            for k in ea:
                x, y = ea[k], eb[k]
                same = x == y or (
                    isinstance(x, float) and isinstance(y, float) and (abs(x - y) <= tol or x != x and y != y)
                )
                assert same, (k, ea, eb)
        else:
            assert ea == eb or (pd.isna(ea) and pd.isna(eb)), (ea, eb)


@pytest.fixture
def assert_rows_close():
    """``rows_close(a, b)``: two sweeps' tables agree within the probes' stated tolerance."""
    return rows_close
