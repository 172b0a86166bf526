"""Fixtures for the probe tests: a private copy of the session's tiny parity experiment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# probe sizes that keep sweeps fast in tests (values are still real measurements)
SMALL_OPTIONS = {"n_probe": 4096, "n_linear": 512, "n_off": 12, "max_iter": 50}


@pytest.fixture
def exp_copy(tiny_parity_experiment: Path, tmp_path: Path) -> Path:
    """A writable copy of the tiny experiment (sweeps write results.sqlite into it)."""
    dst = tmp_path / "exp"
    shutil.copytree(tiny_parity_experiment, dst, ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json", "failed.jsonl"))
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
    shutil.copytree(tiny_parity_experiment, exp, ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json", "failed.jsonl"))
    res = run_sweep(exp, cfg)
    assert res.n_failed == 0
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        return cfg, store.query(), res.n_units
