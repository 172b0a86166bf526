"""The fast sweep: the same rows as the previous implementation, probe data computed once per
sweep, every checkpoint hashed once, warm starts along a run."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from benchmarks.bench_probe_sweep import PREVIOUS, PREVIOUS_SHIM
from curriculens import constants as C
from models import checkpoint as ckpt_mod
from probes.memo import SweepMemo
from probes.store import ResultsStore
from probes.sweep import SweepConfig, probe_checkpoint, run_sweep
from probes.tasks.parity import common as parity_common
from probes.tasks.parity import fourier as parity_fourier
from probes.tasks.parity import linear as parity_linear
from tests.probes.conftest import FOURIER_MARGIN_TOL
from training.experiment import list_runs

REPO = Path(__file__).resolve().parents[2]
# PREVIOUS: the last commit with the previous sweep (joint L-BFGS, per-checkpoint probe data,
# one TL bridge per call, weights hashed twice), the same one the benchmark runs
_OLD_SWEEP = (
    PREVIOUS_SHIM
    + """
import sys, torch
torch.set_num_threads(1)
from probes.sweep import SweepConfig, run_sweep
import json
res = run_sweep(sys.argv[1], SweepConfig(device="cpu", options=json.loads(sys.argv[2])))
assert res.n_failed == 0, res.failures
"""
)


def table(exp: Path):
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        return store.query()


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json", "failed.jsonl"))
    return dst


def previous_source(dst: Path) -> Path:
    """The previous implementation's ``probes`` package, from git history (skip without it);
    it runs against the current ``curriculens``, ``models`` and ``training`` (whose run configs
    it must read)."""
    try:
        blob = subprocess.run(
            ["git", "-C", str(REPO), "archive", PREVIOUS, "probes"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"git history with commit {PREVIOUS} is not available")
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(dst, filter="data")
    return dst


@pytest.mark.slow  # two sweeps and a subprocess: about a minute on a loaded 2-core machine
def test_rows_equal_the_previous_sweep(tiny_parity_experiment, tmp_path, assert_rows_close):
    import json
    import os

    options = {"n_probe": 2048, "n_linear": 512, "n_off": 6}  # linear probes at default max_iter

    old_src = previous_source(tmp_path / "old_src")
    old_exp, new_exp = _copy(tiny_parity_experiment, tmp_path / "old"), _copy(tiny_parity_experiment, tmp_path / "new")
    env = dict(os.environ, PYTHONPATH=str(old_src), OMP_WAIT_POLICY="PASSIVE")
    old_run = subprocess.run(
        [sys.executable, "-c", _OLD_SWEEP, str(old_exp), json.dumps(options)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    if old_run.returncode != 0:
        last = (old_run.stderr.strip().splitlines() or ["?"])[-1]
        pytest.fail(f"the previous probes package no longer runs against the current packages: {last}")
    res = run_sweep(new_exp, SweepConfig(device="cpu", options=options))
    assert res.n_failed == 0
    old, new = table(old_exp), table(new_exp)
    assert len(new) == len(old) > 0
    # the Fourier noise field came after 6a0d20b; the margin path moves Fourier values by rounding
    assert_rows_close(new, old, new_extra=("noise",), fourier_tol=FOURIER_MARGIN_TOL)
    lin = new[new.probe == "linear"]
    assert lin["extra"].str.contains('"n_iter"').all()  # convergence recorded per probe


def test_probe_data_are_computed_once_and_weights_hashed_once(exp_copy, small_options, monkeypatch):
    calls = {"x": 0, "hash": []}
    real_x, real_hash = parity_common._probe_x, ckpt_mod.sha256_file

    def count_x(*a, **k):
        calls["x"] += 1
        return real_x(*a, **k)

    def count_hash(path):
        calls["hash"].append(str(path))
        return real_hash(path)

    monkeypatch.setattr(parity_fourier, "_probe_x", count_x)
    monkeypatch.setattr(parity_linear, "_probe_x", count_x)
    monkeypatch.setattr(ckpt_mod, "sha256_file", count_hash)
    res = run_sweep(exp_copy, SweepConfig(device="cpu", options=small_options))
    n_ckpts = sum(1 for r in list_runs(exp_copy) for _ in ckpt_mod.list_checkpoints(r.path))
    assert res.n_failed == 0 and n_ckpts > 2
    assert calls["x"] == 2  # Fourier inputs and linear inputs, once per sweep
    assert len(calls["hash"]) == len(set(calls["hash"])) == n_ckpts


def test_unit_function_warm_starts_along_a_run(exp_copy, small_options):
    """Units as plain functions: a worker passing one memo through a run's checkpoints in
    order warm-starts each fit; rows match units run with a fresh memo each."""
    run = next(r for r in list_runs(exp_copy) if r.name == "teacher")
    cfg = SweepConfig(device="cpu", options=small_options)
    memo = SweepMemo()
    warm_rows, cold_rows, iters = [], [], {"warm": 0, "cold": 0}
    for step, ckpt in ckpt_mod.list_checkpoints(run.path):
        (w,) = probe_checkpoint(run, step, ckpt, ["linear"], cfg, memo=memo)
        (c,) = probe_checkpoint(run, step, ckpt, ["linear"], cfg)
        warm_rows += w.rows
        cold_rows += c.rows
        iters["warm"] += sum(r.extra["n_iter"] for r in w.rows if r.metric == "test_acc")
        iters["cold"] += sum(r.extra["n_iter"] for r in c.rows if r.metric == "test_acc")
    assert iters["warm"] < iters["cold"]
    for a, b in zip(warm_rows, cold_rows, strict=True):
        assert (a.feature, a.site, a.metric) == (b.feature, b.site, b.metric)
        assert abs(a.value - b.value) <= 0.02


def test_stored_solver_state_round_trips_exactly():
    import torch

    from probes.memo import decode_solution, encode_solution

    w, b = torch.randn(7, 3, 1, dtype=torch.float32), torch.randn(3, 1, dtype=torch.float64)
    w2, b2 = decode_solution(encode_solution((w, b)))
    assert torch.equal(w, w2) and torch.equal(b, b2) and (w2.dtype, b2.dtype) == (w.dtype, b.dtype)
    memo = SweepMemo()
    memo.restore_warm(("r", "linear", "s"), 5, (w, b))
    memo.restore_warm(("r", "linear", "s"), 3, (w2 * 0, b2 * 0))  # older than what the slot holds
    assert memo.warm_start(("r", "linear", "s")).solution[0] is w
