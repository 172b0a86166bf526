"""The probe sweep on a real tiny experiment: rows, resumption, failures, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import read_json, read_jsonl, write_json
from models.checkpoint import list_checkpoints, read_meta
from probes.store import COLUMNS, ResultsStore
from probes.sweep import SweepConfig, plan_sweep, probe_checkpoint, resolve_target, run_sweep
from probes.tasks.parity.fourier import FourierProbe, expected_rows
from probes.tasks.parity.linear import LinearProbe
from training.experiment import list_runs, read_run


def table(exp: Path) -> pd.DataFrame:
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        return store.query()


def units(exp: Path) -> pd.DataFrame:
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        return store.units()


def n_checkpoints(exp: Path) -> int:
    return sum(len(list_checkpoints(r.path)) for r in list_runs(exp))


def test_sweep_writes_every_probe_row(exp_copy, small_options):
    cfg = SweepConfig(device="cpu", options=small_options)
    res = run_sweep(exp_copy, cfg)
    n_ck = n_checkpoints(exp_copy)
    assert (res.n_units, res.n_done, res.n_skipped, res.n_failed) == (3 * n_ck, 3 * n_ck, 0, 0)
    df = table(exp_copy)
    assert tuple(df.columns) == COLUMNS and res.n_rows == len(df)
    # every checkpoint of every run was probed by every probe
    for run in list_runs(exp_copy):
        steps = [s for s, _ in list_checkpoints(run.path)]
        for probe in ("model", "fourier", "linear"):
            got = sorted(df[(df.run == run.name) & (df.probe == probe)].step.unique().tolist())
            assert got == steps, (run.name, probe)
        sub = df[df.run == run.name]
        assert set(sub.role) == {run.role} and set(sub.method) == {run.method} and set(sub.seed) == {run.seed}

    four = df[df.probe == "fourier"]
    assert four.degree.notna().all() and four.in_support.notna().all()
    assert set(four.degree) == {1, 2} and set(four.site) == {"output"} and set(four.metric) == {"corr"}
    per_ckpt = four.groupby(["run", "step"]).size()
    assert (per_ckpt == expected_rows(10, 3, small_options)["fourier"]).all()
    assert (four.groupby(["run", "step"]).in_support.sum() == 3 + 3).all()
    assert set(four[four.in_support == 1].feature) == {"0", "1", "2", "0_1", "0_2", "1_2"}
    assert all("disjoint" in json.loads(e) for e in four.extra)

    lin = df[df.probe == "linear"]
    assert set(lin.metric) == {"test_acc", "control_acc", "majority", "selectivity"}
    assert set(lin.site) == {"blocks.0.hook_post"}
    # (3 + 3 in-support) + as many off-support monomials, 4 metrics each
    assert (lin.groupby(["run", "step"]).size() == 12 * 4).all()
    assert (lin.groupby(["run", "step", "degree"]).in_support.mean() == 0.5).all()
    wide = lin.pivot_table(index=["run", "step", "feature"], columns="metric", values="value")
    assert ((wide.test_acc - wide.control_acc - wide.selectivity).abs() < 1e-9).all()

    # the model probe recomputes the training loop's evaluation from the saved weights
    model = df[(df.probe == "model") & (df.metric == "accuracy")]
    for rec in model.itertuples():
        meta = read_meta(exp_copy / C.RUNS_DIR / rec.run / C.CHECKPOINTS_DIR / f"step_{rec.step:09d}")
        assert rec.value == pytest.approx(meta["eval_acc"], abs=1e-9)

    with ResultsStore(exp_copy / C.RESULTS_DB, readonly=True) as store:
        assert set(store.runs().run) == {r.name for r in list_runs(exp_copy)}
    assert read_json(exp_copy / C.PROBE_CONFIG_FILE) == json.loads(json.dumps(cfg.to_dict()))


def test_rerun_skips_finished_units(exp_copy, small_options):
    cfg = SweepConfig(device="cpu", probes=("model", "fourier"), options=small_options)
    first = run_sweep(exp_copy, cfg)
    before = table(exp_copy)
    again = run_sweep(exp_copy, cfg)
    assert again.n_done == 0 and again.n_skipped == first.n_units == again.n_units
    after = table(exp_copy)
    pd.testing.assert_frame_equal(before, after)
    assert not after.duplicated(["run", "step", "probe", "feature", "site", "metric"]).any()


def test_killed_sweep_resumes_to_the_same_table(tiny_parity_experiment, tmp_path, monkeypatch, small_options):
    cfg = SweepConfig(device="cpu", options=small_options)
    ref_exp, cut_exp = tmp_path / "ref", tmp_path / "cut"
    for dst in (ref_exp, cut_exp):
        shutil.copytree(
            tiny_parity_experiment, dst, ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json")
        )
    run_sweep(ref_exp, cfg)

    real_run = FourierProbe.run
    calls = {"n": 0}

    def interrupted(self, ctx):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_run(self, ctx)

    monkeypatch.setattr(FourierProbe, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cut_exp, cfg)
    monkeypatch.undo()
    partial = units(cut_exp)
    assert 0 < len(partial) < 3 * n_checkpoints(cut_exp)
    counts = table(cut_exp).groupby(["run", "step", "probe"]).size()
    for rec in partial.itertuples():  # no half-written unit
        assert counts.get((rec.run, rec.step, rec.probe), 0) == rec.n_rows

    resumed = run_sweep(cut_exp, cfg)
    assert resumed.n_skipped == len(partial) and resumed.n_failed == 0
    # the resumed runs' linear fits start from the stored solver states (warm_starts), so the
    # table is the uninterrupted sweep's exactly, solver extras (n_iter, converged) included
    with ResultsStore(cut_exp / C.RESULTS_DB, readonly=True) as store:
        (n_states,) = store.conn.execute("SELECT COUNT(*) FROM warm_starts WHERE probe = 'linear'").fetchone()
    assert n_states > 0  # the linear units stored the solutions they ended with
    pd.testing.assert_frame_equal(table(cut_exp), table(ref_exp))


def test_failing_unit_is_logged_and_the_sweep_goes_on(exp_copy, monkeypatch, small_options):
    cfg = SweepConfig(device="cpu", probes=("model", "linear"), options=small_options)

    def broken(self, ctx):
        raise RuntimeError(f"planted failure at step {ctx.step}")

    real = LinearProbe.run
    monkeypatch.setattr(LinearProbe, "run", lambda self, ctx: broken(self, ctx) if ctx.step == 200 else real(self, ctx))
    res = run_sweep(exp_copy, cfg)
    n_at_200 = sum(200 in dict(list_checkpoints(r.path)) for r in list_runs(exp_copy))
    assert res.n_failed == n_at_200 > 0 and res.n_done == res.n_units - n_at_200
    failed = read_jsonl(exp_copy / C.FAILED_FILE)
    assert len(failed) == n_at_200
    assert all(
        f["step"] == 200 and f["probe"] == "linear" and "planted failure" in f["error"] and f["run"] for f in failed
    )
    df = table(exp_copy)
    assert df[(df.step == 200) & (df.probe == "linear")].empty
    assert not df[(df.step == 200) & (df.probe == "model")].empty
    monkeypatch.undo()
    retry = run_sweep(exp_copy, cfg)
    assert retry.n_done == n_at_200 and retry.n_failed == 0


def test_force_recomputes_identical_values(exp_copy, small_options):
    cfg = SweepConfig(device="cpu", probes=("model", "fourier"), options=small_options)
    run_sweep(exp_copy, cfg)
    before, t_before = table(exp_copy), units(exp_copy)
    res = run_sweep(exp_copy, SweepConfig(device="cpu", probes=("model", "fourier"), options=small_options, force=True))
    assert res.n_skipped == 0 and res.n_done == res.n_units
    t_after = units(exp_copy)
    assert (t_after.finished_at.values > t_before.finished_at.values).all()
    pd.testing.assert_frame_equal(table(exp_copy), before)


def test_every_keeps_first_and_last(exp_copy):
    run_sweep(exp_copy, SweepConfig(device="cpu", probes=("model",), every=3))
    df = table(exp_copy)
    for run in list_runs(exp_copy):
        steps = [s for s, _ in list_checkpoints(run.path)]
        want = sorted({steps[i] for i in range(0, len(steps), 3)} | {steps[-1]})
        assert sorted(df[df.run == run.name].step.unique()) == want


def test_the_sweep_stores_the_metric_specs_its_probes_declare(exp_copy):
    from probes.registry import metric_specs

    run_sweep(exp_copy, SweepConfig(device="cpu", probes=("model",), every=100))
    with ResultsStore(exp_copy / C.RESULTS_DB, readonly=True) as store:
        stored = store.metric_specs()
    assert stored == metric_specs("parity") and stored[("fourier", "corr")].off_support_null


def test_targets_run_dir_and_checkpoints_dir(exp_copy, tmp_path):
    teacher = exp_copy / C.RUNS_DIR / "teacher"
    assert resolve_target(teacher)[0] == exp_copy
    assert resolve_target(teacher / C.CHECKPOINTS_DIR)[0] == exp_copy
    res = run_sweep(teacher / C.CHECKPOINTS_DIR, SweepConfig(device="cpu", probes=("model",)))
    assert res.db_path == exp_copy / C.RESULTS_DB and set(table(exp_copy).run) == {"teacher"}
    lone = tmp_path / "lone-teacher"
    shutil.copytree(teacher, lone)
    res = run_sweep(lone, SweepConfig(device="cpu", probes=("model",)))
    assert res.db_path == lone / C.RESULTS_DB and res.n_done == len(list_checkpoints(lone))


def _assert_no_results(exp: Path) -> None:
    assert not (exp / C.RESULTS_DB).exists()
    assert not (exp / C.PROBE_CONFIG_FILE).exists()


def test_bad_input_fails_before_writing_anything(exp_copy, tmp_path):
    ok = SweepConfig(device="cpu", probes=("model",))
    with pytest.raises(CurriculensError, match="no such directory"):
        run_sweep(tmp_path / "missing", ok)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CurriculensError, match="not an experiment"):
        run_sweep(tmp_path / "empty", ok)
    (tmp_path / "noruns" / C.RUNS_DIR).mkdir(parents=True)
    with pytest.raises(CurriculensError, match="no runs"):
        run_sweep(tmp_path / "noruns", ok)
    with pytest.raises(CurriculensError, match="unknown probe"):
        run_sweep(exp_copy, SweepConfig(probes=("model", "nope")))
    with pytest.raises(CurriculensError, match="unknown run"):
        run_sweep(exp_copy, SweepConfig(runs=("nope",)))
    with pytest.raises(CurriculensError, match="unknown config key"):
        run_sweep(exp_copy, SweepConfig(options={"n_prbe": 10}))
    with pytest.raises(CurriculensError, match="positive"):
        run_sweep(exp_copy, SweepConfig(options={"n_probe": 0}))
    _assert_no_results(exp_copy)


def test_corrupted_weights_fail_before_writing(exp_copy):
    ckpts = list_checkpoints(exp_copy / C.RUNS_DIR / "progressive-s0")
    weights = ckpts[-1][1] / C.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-20] ^= 0xFF  # flip one byte of the tensor data (the header stays valid)
    weights.write_bytes(bytes(data))
    with pytest.raises(CurriculensError, match="corrupted weights"):
        run_sweep(exp_copy, SweepConfig(device="cpu"))
    _assert_no_results(exp_copy)


def test_config_mismatch_fails_before_writing(exp_copy):
    ckpt = list_checkpoints(exp_copy / C.RUNS_DIR / "teacher")[1][1]
    cfg = read_json(ckpt / C.MODEL_CONFIG_FILE)
    cfg["width"] = cfg["width"] + 1
    write_json(ckpt / C.MODEL_CONFIG_FILE, cfg)
    with pytest.raises(CurriculensError, match="config mismatch"):
        run_sweep(exp_copy, SweepConfig(device="cpu"))
    _assert_no_results(exp_copy)


def test_changed_settings_need_force(exp_copy):
    run_sweep(exp_copy, SweepConfig(device="cpu", probes=("model",)))
    with pytest.raises(CurriculensError, match="--force"):
        run_sweep(exp_copy, SweepConfig(device="cpu", probes=("model",), seed=1))
    res = run_sweep(exp_copy, SweepConfig(device="cpu", probes=("model",), seed=1, force=True))
    assert res.n_done == res.n_units
    assert read_json(exp_copy / C.PROBE_CONFIG_FILE)["seed"] == 1


def test_probe_checkpoint_is_a_function_of_its_config(tiny_parity_experiment, small_options):
    run = read_run(tiny_parity_experiment / C.RUNS_DIR / "teacher")
    step, ckpt = list_checkpoints(run.path)[-1]
    cfg = SweepConfig(device="cpu", options=small_options)
    out1 = probe_checkpoint(run, step, ckpt, ["model", "fourier"], cfg)
    out2 = probe_checkpoint(run, step, ckpt, ["model", "fourier"], cfg)
    assert [o.key.probe for o in out1] == ["model", "fourier"]
    assert all(o.error is None and o.key.run == "teacher" and o.key.step == step for o in out1)
    assert [r.value for o in out1 for r in o.rows] == [r.value for o in out2 for r in o.rows]
    assert not (tiny_parity_experiment / C.RESULTS_DB).exists()
    plan = plan_sweep(tiny_parity_experiment, cfg)
    assert plan.n_pending == plan.n_units == 3 * plan.n_checkpoints


def test_transformer_parity_sweep(tmp_path, small_options):
    from training.config import CheckpointConfig, OptimConfig, RunConfig
    from training.experiment import init_experiment
    from training.loop import train_run

    task = {"name": "parity", "n": 8, "k": 3, "n_eval": 256}
    exp = init_experiment(tmp_path / "gpt", task)
    cfg = RunConfig(
        name="teacher",
        role="teacher",
        task=task,
        model={"kind": "gpt2", "n_positions": 8, "n_layer": 2, "n_head": 2, "head_dim": 4},
        optim=OptimConfig(name="adam", lr=1e-3),
        checkpoints=CheckpointConfig(save_every=10),
        steps=20,
        batch_size=16,
        seed=0,
        device="cpu",
    )
    train_run(cfg, exp / C.RUNS_DIR / "teacher")
    res = run_sweep(exp, SweepConfig(device="cpu", options={**small_options, "n_probe": 2048, "n_linear": 256}))
    assert res.n_failed == 0 and res.n_done == 9
    df = table(exp)
    assert set(df[df.probe == "linear"].site) == {"blocks.0.hook_out", "blocks.1.hook_out"}
    acc = df[(df.probe == "model") & (df.metric == "accuracy")]
    assert acc.value.between(0, 1).all()


@pytest.mark.gpu
def test_cuda_sweep_matches_cpu(tiny_parity_experiment, tmp_path, small_options):
    a, b = tmp_path / "cpu", tmp_path / "cuda"
    for dst in (a, b):
        shutil.copytree(
            tiny_parity_experiment, dst, ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json")
        )
    run_sweep(a, SweepConfig(device="cpu", options=small_options))
    res = run_sweep(b, SweepConfig(device="cuda", options=small_options))
    assert res.n_failed == 0 and torch.cuda.is_available()
    ta, tb = table(a), table(b)
    assert len(ta) == len(tb)
    m = ta.merge(tb, on=["run", "step", "probe", "feature", "site", "metric"], suffixes=("_cpu", "_gpu"))
    diff = (m.value_cpu - m.value_gpu).abs()
    assert diff[m.probe != "linear"].max() < 1e-4
    assert diff[m.probe == "linear"].max() < 0.05
