"""``curriculens compare`` on planted experiments: paired differences, intervals and verdicts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curriculens import constants as C
from curriculens.cli.entry import main
from curriculens.compare import compare, format_comparison
from probes.store import MetricSpec, ResultRow, ResultsStore, UnitKey


def _run(exp, name, method, seed, hit_step, last=6000, every=250):
    d = exp / C.RUNS_DIR / name
    d.mkdir(parents=True)
    role = C.ROLE_TEACHER if method == C.METHOD_TEACHER else C.ROLE_STUDENT
    cfg = {"name": name, "role": role, "seed": seed, "distill": None if role == C.ROLE_TEACHER else {"method": method}}
    (d / C.RUN_CONFIG_FILE).write_text(json.dumps(cfg))
    rows = [
        {"step": s, "eval_acc": 0.99 if hit_step is not None and s >= hit_step else 0.5}
        for s in range(0, last + 1, every)
    ]
    (d / C.METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _feature(store, run, method, seed, rise_at):
    """A Fourier feature rising (held) at ``rise_at`` among 20 checkpoints, with its sampling sd."""
    store.upsert_run(run, C.ROLE_STUDENT, method, seed, "", {"task": {"name": "parity"}})
    for s in range(0, 10_000, 500):
        v = 0.1 if s >= rise_at else 0.0
        store.write_unit(
            UnitKey(run, C.ROLE_STUDENT, method, seed, s, "fourier"),
            [ResultRow("fourier", "0_1", "output", "corr", v, 2, True, extra={"noise": 0.003})],
        )


@pytest.fixture
def planted(tmp_path):
    """Two teacher seeds x three student seeds: progressive reaches 95% ~2,000 steps before
    one-shot and its degree-2 feature appears 3,000 steps earlier; ce matches one-shot."""
    rng = np.random.default_rng(0)
    for t in range(2):
        exp = tmp_path / f"seed{t}"
        _run(exp, "teacher", C.METHOD_TEACHER, t, 3000)
        with ResultsStore(exp / C.RESULTS_DB) as store:
            store.write_metric_specs({("fourier", "corr"): MetricSpec(min_effect=0.02, off_support_null=True)})
            for s in range(3):
                base = 4000 + 250 * int(rng.integers(0, 4))
                _run(exp, f"progressive-s{s}", "progressive", s, base - 2000)
                _run(exp, f"one-shot-s{s}", "one-shot", s, base + 250 * int(rng.integers(-1, 2)))
                _run(exp, f"ce-s{s}", "ce", s, base + 250 * int(rng.integers(-1, 2)))
                _feature(store, f"progressive-s{s}", "progressive", s, 2000)
                _feature(store, f"one-shot-s{s}", "one-shot", s, 5000)
    return tmp_path


def test_a_planted_lead_is_found_with_its_interval(planted):
    res = compare(planted, "progressive", "one-shot")
    st = res["steps"]
    assert st["n_pairs"] == 6 and st["verdict"] == "A earlier"
    assert st["interval"]["hi"] < 0 and -2600 < st["interval"]["estimate"] < -1400
    feat = {f["what"]: f for f in res["features"]}
    f = feat["fourier/corr output degree 2 0_1"]
    assert f["verdict"] == "A earlier" and f["n_pairs"] == 6 and f["interval"]["estimate"] == pytest.approx(-3000)
    assert compare(planted, "one-shot", "progressive")["steps"]["verdict"] == "B earlier"
    assert "A earlier" in format_comparison(res)


def test_no_difference_is_not_established(planted):
    res = compare(planted, "ce", "one-shot", features=False)
    assert res["steps"]["verdict"] == "not established" and res["steps"]["n_pairs"] == 6
    assert res["steps"]["interval"]["lo"] < 0 < res["steps"]["interval"]["hi"]


def test_a_run_that_never_reaches_the_target_is_counted_at_its_last_step(tmp_path):
    exp = tmp_path / "e"
    for s in range(3):
        _run(exp, f"progressive-s{s}", "progressive", s, 1000 + 250 * s)
        _run(exp, f"ce-s{s}", "ce", s, None)
    st = compare(exp, "progressive", "ce", features=False)["steps"]
    assert st["verdict"] == "A earlier" and st["censored"] == 3 and st["a_only"] == 3


def test_cli_prints_the_comparison_and_refuses_bad_input(planted, capsys, tmp_path):
    assert main(["-q", "compare", str(planted), "progressive", "one-shot", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"]["verdict"] == "A earlier"
    for argv, msg in (
        ([str(planted), "progressive", "nope"], "no run of method"),
        ([str(tmp_path / "missing"), "progressive", "ce"], "not a directory"),
        ([str(planted), "ce", "ce"], "different methods"),
        ([str(planted), "ce", "one-shot", "--target", "2"], "--target"),
    ):
        assert main(["-q", "compare", *argv]) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_teacher_that_ends_below_the_target_is_named(planted, tmp_path):
    """A teacher whose last held-out accuracy is under the target is listed (its students' last
    teacher misses it); the planted teachers end at 0.99 and are not."""
    assert compare(planted, "progressive", "ce", features=False)["teachers_below_target"] == []
    exp = tmp_path / "late"
    _run(exp, "teacher", C.METHOD_TEACHER, 0, None)  # ends at 0.5
    for s in range(2):
        _run(exp, f"progressive-s{s}", "progressive", s, 1000)
        _run(exp, f"ce-s{s}", "ce", s, None)
    res = compare(exp, "progressive", "ce", features=False)
    assert res["teachers_below_target"] == [{"experiment": str(exp), "run": "teacher", "final_acc": 0.5}]
    assert f"ended below the target, so their students' last teacher misses it: {exp} (0.50)" in format_comparison(res)


def test_the_dashboards_records_name_the_same_teachers(tmp_path):
    """``records_from_metrics`` (the dashboard's frame) finds the teacher below the target that
    ``student_runs`` (the files) finds, so both paths of ``compare_records`` name it."""
    import pandas as pd

    from curriculens.compare import compare_records, records_from_metrics, student_runs

    exp = tmp_path / "late"
    _run(exp, "teacher", C.METHOD_TEACHER, 0, None)  # ends at 0.5
    for s in range(2):
        _run(exp, f"progressive-s{s}", "progressive", s, 1000)
        _run(exp, f"ce-s{s}", "ce", s, None)
    rows = []
    for run in sorted((exp / C.RUNS_DIR).iterdir()):
        cfg = json.loads((run / C.RUN_CONFIG_FILE).read_text())
        method = C.METHOD_TEACHER if cfg["role"] == C.ROLE_TEACHER else cfg["distill"]["method"]
        for line in (run / C.METRICS_FILE).read_text().splitlines():
            rows.append({"run": run.name, "method": method, "seed": cfg["seed"], **json.loads(line)})
    rows.append({"run": "teacher", "method": C.METHOD_TEACHER, "seed": 0, "step": 7000})  # no eval_acc
    frame = records_from_metrics(pd.DataFrame(rows), exp=str(exp))
    files = student_runs(exp, C.TARGET_ACC)
    want = [{"experiment": str(exp), "run": "teacher", "final_acc": 0.5}]
    assert compare_records(frame, "progressive", "ce")["teachers_below_target"] == want
    assert compare_records(files, "progressive", "ce")["teachers_below_target"] == want
