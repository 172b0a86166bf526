"""The read-only data layer against plain SQL on the same database."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from curriculens import constants as C
from dashboard.data import DataSource, ResultsReader, task_label

from .conftest import PLANT


def _plain(db, sql):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return pd.read_sql_query(sql, conn)


def test_table_equals_a_plain_select(dash_fixture):
    db = dash_fixture.exp / C.RESULTS_DB
    cols = [
        "run",
        "role",
        "method",
        "seed",
        "step",
        "probe",
        "feature",
        "site",
        "metric",
        "value",
        "degree",
        "in_support",
    ]
    ours = ResultsReader(db).table()
    plain = _plain(db, f"SELECT {', '.join(cols)} FROM probe_results")
    key = ["run", "step", "probe", "feature", "site", "metric"]
    a = ours.sort_values(key, ignore_index=True)
    b = plain.sort_values(key, ignore_index=True)
    assert list(a.columns) == cols and len(a) == len(b)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert a["degree"].dtype == b["degree"].dtype == "float64"


def test_catalog_matches_a_full_scan(dash_fixture):
    db = dash_fixture.exp / C.RESULTS_DB
    cat = ResultsReader(db).catalog()
    full = _plain(
        db,
        "SELECT probe, metric, site, COUNT(DISTINCT feature) AS n, MIN(degree) AS dmin, MAX(degree) AS dmax, "
        "MAX(in_support IS NOT NULL) AS has_in FROM probe_results GROUP BY probe, metric, site",
    )
    merged = cat.merge(full, on=["probe", "metric", "site"], how="outer", validate="one_to_one")
    assert len(merged) == len(cat) == len(full)
    for r in merged.itertuples():
        assert r.n_features == r.n and bool(r.has_in_support) == bool(r.has_in)
        assert (r.degrees[0], r.degrees[-1]) == (r.dmin, r.dmax) if r.degrees else pd.isna(r.dmin)


def test_rows_filters(dash_fixture):
    r = ResultsReader(dash_fixture.exp / C.RESULTS_DB)
    rows = r.rows("fourier", "corr", runs=["teacher", "ce-s0"], site="output", degree=2)
    assert set(rows["run"]) == {"teacher", "ce-s0"} and set(rows["degree"]) == {2}
    assert set(rows["feature"]) == set(PLANT.in_deg2 + PLANT.off_deg2)
    assert len(rows) == (len(dash_fixture.teacher_steps) + len(dash_fixture.student_steps)) * 5
    assert r.rows("fourier", "corr", runs=[]).empty


def test_metrics_and_checkpoint_paths_point_at_real_directories(dash_fixture):
    src = DataSource(dash_fixture.root)
    m = src.metrics(dash_fixture.key)
    assert {"run", "role", "method", "label", "seed", "step", "eval_acc", "eval_loss", "ckpt"} <= set(m.columns)
    saved = m[m["ckpt"] != ""]
    assert len(saved) > 0
    for rel in saved["ckpt"].head(20):
        assert (dash_fixture.root / rel).is_dir(), rel  # hover paths are real checkpoint directories
    eval_only = m[(m["run"] == "ce-s0") & (m["ckpt"] == "")]
    assert len(eval_only) > 0  # students evaluate every 20 steps but save every 40


def test_experiment_summary_refreshes_when_runs_change(dash_fixture, fresh_copy):
    root = fresh_copy()
    src = DataSource(root)
    exp = src.experiment(dash_fixture.key)
    assert exp.run("ce-s0").done and exp.teacher.name == "teacher"
    (root / dash_fixture.key / C.RUNS_DIR / "ce-s0" / C.DONE_FILE).unlink()
    assert not src.experiment(dash_fixture.key).run("ce-s0").done  # the cache key saw the change


def test_task_label():
    assert task_label({"name": "parity", "n": 10, "k": 3}) == "parity n=10 k=3"
    assert task_label({}) == "unknown task"
    assert task_label({"name": "pcfg", "grammar": "cfg3b", "big": list(range(10))}) == "pcfg grammar=cfg3b"


def test_a_committed_unit_invalidates_only_what_reads_its_run_and_probe(dash_fixture, fresh_copy, monkeypatch):
    import dashboard.data as D
    from probes.store import ResultRow, ResultsStore, UnitKey

    root = fresh_copy()
    key = dash_fixture.key
    src = DataSource(root)
    pieces, reads = [], []
    real_table, real_rows = D.emergence_table, D.ResultsReader.rows
    monkeypatch.setattr(
        D,
        "emergence_table",
        lambda rows, task: (
            pieces.append(tuple(sorted(set(zip(rows["run"], rows["probe"], strict=True))))),
            real_table(rows, task),
        )[1],
    )
    monkeypatch.setattr(
        D.ResultsReader,
        "rows",
        lambda self, probe, metric, **kw: (reads.append((probe, kw.get("runs"))), real_rows(self, probe, metric, **kw))[
            1
        ],
    )

    def views():
        src.emergence(key)
        src.rows(key, "fourier", "corr", runs=["teacher"], site="output", degree=1)
        src.rows(key, "fourier", "corr", runs=["ce-s0"], site="output", degree=1)
        src.rows(key, "linear", "test_acc", runs=["teacher"])
        src.catalog(key)

    views()
    assert len(pieces) == 24 and len(reads) == 3
    n_cached = len(src._cache)
    with ResultsStore(root / key / C.RESULTS_DB) as store:  # a sweep: one writer committing unit after unit
        for i in range(5):
            pieces.clear()
            reads.clear()
            step = 10_000 + i
            store.write_unit(
                UnitKey("teacher", "teacher", "teacher", 0, step, "fourier"),
                [
                    ResultRow("fourier", f, "output", "corr", 0.5, degree=1, in_support=f in PLANT.in_deg1)
                    for f in PLANT.in_deg1 + PLANT.off_deg1
                ],
            )
            views()
            assert pieces == [(("teacher", "fourier"),)]  # one piece recomputed, not the whole table
            assert reads == [("fourier", ("teacher",))]  # the other runs' and probes' rows stay cached
            assert len(src._cache) == n_cached  # replaced in place: memory does not grow with commits
            rows = src.rows(key, "fourier", "corr", runs=["teacher"], site="output", degree=1)
            assert rows["step"].max() == step
    table = src.emergence(key)
    fresh = real_table(
        ResultsReader(root / key / C.RESULTS_DB).table(with_extra=True),  # extra: the rows' sampling sd
        ResultsReader(root / key / C.RESULTS_DB).metric_specs(),
    )
    pd.testing.assert_frame_equal(table, fresh)
    assert (
        table[(table["run"] == "teacher") & (table["probe"] == "fourier")]["n_steps"].max()
        == len(dash_fixture.teacher_steps) + 5
    )


def _summary(rows):
    cols = ["run", "method", "probe", "metric", "feature", "site", "degree", "in_support", "appear_step"]
    return pd.DataFrame(rows, columns=cols)


def test_method_comparison_counts_pools_and_orders_methods():
    from dashboard.data import method_comparison

    s = _summary(
        [
            ("p-s0", "progressive", "f", "corr", "0", "out", 1, True, 100),
            ("p-s1", "progressive", "f", "corr", "0", "out", 1, True, 300),
            ("p-s1", "progressive", "f", "corr", "9", "out", 1, False, 50),  # off-support: not counted
            ("c-s0", "ce", "f", "corr", "0", "out", 1, True, None),
            ("t", "teacher", "f", "corr", "0", "out", 1, True, 40),
        ]
    )
    metrics = pd.DataFrame(
        {
            "run": ["c-s0", "c-s0", "p-s0", "p-s1", "t"],
            "method": ["ce", "ce", "progressive", "progressive", "teacher"],
            "step": [0, 10, 10, 10, 10],
            "eval_acc": [0.9, 0.5, 0.8, 1.0, 1.0],
        }
    )
    out = method_comparison(s, metrics).set_index("method")
    assert list(out.index) == ["teacher", "ce", "progressive"]
    assert out.at["progressive", "appeared"] == "2/2" and out.at["progressive", "median_appear_step"] == 200
    assert out.at["ce", "appeared"] == "0/1" and np.isnan(out.at["ce", "median_appear_step"])
    assert out.at["ce", "final_acc"] == 0.5  # the last evaluation, not the best
    assert out.at["progressive", "final_acc"] == pytest.approx(0.9)
    assert out.at["progressive", "final_acc_sd"] == pytest.approx(np.std([0.8, 1.0], ddof=1))
    assert out.at["progressive", "runs"] == 2 and np.isnan(out.at["ce", "final_acc_sd"])


def test_passes_null_overrides_the_noise_rule_when_present():
    """A summary with ``passes_null`` (issue 'Findings you can trust') counts only appearances
    that pass it; the default degree follows."""
    from dashboard.data import appeared
    from dashboard.selection import ALL_DEGREES, default_degree

    rows = [
        ("t", "teacher", "f", "corr", "0", "out", 1, True, 100),
        ("t", "teacher", "f", "corr", "0_1", "out", 2, True, 200),
    ]
    s = _summary(rows)
    assert list(appeared(s)) == [True, True]
    assert default_degree(s, "t", "f::corr", "out") == "1"
    s = s.assign(passes_null=[False, True])
    assert list(appeared(s)) == [False, True]
    assert default_degree(s, "t", "f::corr", "out") == "2"
    assert default_degree(s.assign(passes_null=False), "t", "f::corr", "out") == ALL_DEGREES
    assert default_degree(None, "t", "f::corr", "out") == ALL_DEGREES


def test_emergence_of_one_probe_equals_the_full_tables_rows(dash_fixture):
    """The findings read one probe's pieces; they are the full table's rows, nothing else."""
    src = DataSource(dash_fixture.root)
    part = src.emergence(dash_fixture.key, "fourier", ["teacher"])
    full = src.emergence(dash_fixture.key)
    want = full[(full["probe"] == "fourier") & (full["run"] == "teacher")].reset_index(drop=True)
    pd.testing.assert_frame_equal(part.reset_index(drop=True), want)
    assert src.emergence(dash_fixture.key, "nope").empty
