"""``curriculens.open``: the tables against the files they come from and the planted probe
values, read-only behaviour while a writer holds the database, and a torch-free import."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

import curriculens
from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import read_jsonl


def test_runs_and_metrics_come_from_the_run_files(planted):
    exp = curriculens.open(planted.exp)
    runs = exp.runs()
    names = sorted(p.name for p in (planted.exp / C.RUNS_DIR).iterdir())
    assert sorted(runs["run"]) == names and runs["run"].iloc[0] == "teacher"
    assert set(runs.loc[runs["role"] == "student", "method"]) == {"ce", "one-shot", "progressive", "two-shot"}
    m = exp.metrics()
    for name in names:
        rows = read_jsonl(planted.exp / C.RUNS_DIR / name / C.METRICS_FILE)
        got = m[m["run"] == name]
        assert got["step"].tolist() == [r["step"] for r in rows]
        assert got["eval_acc"].tolist() == pytest.approx([r["eval_acc"] for r in rows])
    assert exp.metrics(runs=["ce-s0"])["run"].unique().tolist() == ["ce-s0"]
    with pytest.raises(CurriculensError, match="no run 'nope'"):
        exp.metrics(runs=["nope"])


def test_results_hold_the_planted_values_with_the_teacher_step_axis(planted):
    exp = curriculens.open(planted.exp)
    r = exp.results(probe="fourier", metric="corr")
    assert set(r["probe"]) == {"fourier"} and set(r["metric"]) == {"corr"}
    off = r[(r["degree"] == 1) & (r["in_support"] == 0)]
    got = {(a, int(b), c): v for a, b, c, v in off[["run", "step", "feature", "value"]].itertuples(index=False)}
    assert got == pytest.approx(planted.off_values)  # every planted off-support value, nothing else
    spike = r[(r["run"] == "teacher") & (r["feature"] == "0")].set_index("step")["value"]
    assert spike.idxmax() == planted.spike_step
    # the second axis: the teacher checkpoint each student step learned from (metrics.jsonl)
    rows = read_jsonl(planted.exp / C.RUNS_DIR / "progressive-s0" / C.METRICS_FILE)
    want = {row["step"]: row["teacher_step"] for row in rows}
    prog = r[r["run"] == "progressive-s0"].drop_duplicates("step")
    assert len(prog) == len(planted.student_steps)
    assert {int(s): int(t) for s, t in zip(prog["step"], prog["teacher_step"], strict=True)} == {
        s: want[s] for s in prog["step"]
    }
    teacher = r[r["run"] == "teacher"]
    assert (teacher["teacher_step"] == teacher["step"]).all()  # a teacher's own step
    assert r.loc[r["run"] == "ce-s0", "teacher_step"].isna().all()  # ce learns from labels
    with pytest.raises(CurriculensError, match="no run"):
        exp.results(runs=["nope"])


def test_summary_is_the_summarize_of_the_database(planted):
    from probes.summary import summarize

    exp = curriculens.open(planted.exp)
    pd.testing.assert_frame_equal(exp.summary(), summarize(planted.exp / C.RESULTS_DB))
    lin = exp.summary(probes=["linear"])
    for (run, f), a in planted.appear.items():
        got = lin[(lin["run"] == run) & (lin["feature"] == f) & (lin["metric"] == "test_acc")]["appear_step"]
        assert set(got) == {a}


def test_figures_are_the_dashboards(planted):
    from dashboard import figures as F
    from dashboard.selection import window_of

    exp = curriculens.open(planted.exp)
    figs = exp.figures()
    for name in (
        "teacher_accuracy",
        "students_accuracy",
        "two_shot_accuracy",
        "features_teacher_fourier_corr_output_deg1",
    ):
        assert name in figs
    direct = F.teacher_accuracy(exp.metrics(), window_of(exp.metrics(), "parity"))
    assert figs["teacher_accuracy"].to_json() == direct.to_json() == exp.teacher_accuracy().to_json()
    timeline = figs["features_teacher_fourier_corr_output_deg1"]
    assert timeline.to_json() == exp.feature_timeline("teacher", "fourier", "corr", degree=1).to_json()
    spike = next(t for t in timeline.data if t.name == "0")
    assert list(spike.x)[int(max(range(len(spike.y)), key=lambda i: spike.y[i]))] == planted.spike_step
    with pytest.raises(CurriculensError, match="several sites"):
        exp.feature_timeline("teacher", "linear", "test_acc")
    assert exp.feature_timeline("teacher", "linear", "test_acc", site="blocks.0.hook_post").data
    labels = {t.legendgroup for t in exp.students_accuracy(labels=["progressive"]).data}
    assert "progressive" in labels and "ce" not in labels


def test_repr_html_lists_the_runs_escaped(planted, tmp_path):
    import shutil

    root = tmp_path / "r"
    shutil.copytree(planted.exp, root / "<b>exp")
    exp = curriculens.open(root / "<b>exp")
    page = exp._repr_html_()
    assert "&lt;b&gt;exp" in page and "<b>exp" not in page
    assert page.count("<tr") == len(exp.runs()) + 1  # header + one row per run
    assert "probe values" in page


def test_a_non_experiment_is_one_clear_error(tmp_path):
    with pytest.raises(CurriculensError, match="not an experiment directory"):
        curriculens.open(tmp_path)


def test_no_results_yet_is_a_curriculens_error(planted, tmp_path):
    import shutil

    dst = tmp_path / "exp"
    shutil.copytree(planted.exp, dst)
    (dst / C.RESULTS_DB).unlink()
    exp = curriculens.open(dst)
    assert len(exp.runs()) == len(curriculens.open(planted.exp).runs())
    for call in (exp.results, exp.summary):
        with pytest.raises(CurriculensError, match="No probe results yet"):
            call()
    assert "no probe results" in exp._repr_html_()


def test_reads_while_a_writer_holds_the_database_and_sees_its_commit(planted, tmp_path):
    import shutil

    dst = tmp_path / "exp"
    shutil.copytree(planted.exp, dst)
    exp = curriculens.open(dst)
    before = len(exp.results())
    writer = sqlite3.connect(dst / C.RESULTS_DB, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("BEGIN IMMEDIATE")  # a sweep mid-unit: the write lock held, nothing committed
        writer.execute(
            "INSERT INTO probe_results (run, role, method, seed, step, probe, feature, site, metric, value) "
            "VALUES ('teacher', 'teacher', 'teacher', 0, 99999, 'fourier', 'planted', 'output', 'corr', 0.5)"
        )
        assert len(exp.results()) == before  # not blocked, and the open transaction is not seen
        writer.execute("COMMIT")
    finally:
        writer.close()
    after = exp.results(probe="fourier")
    assert len(exp.results()) == before + 1
    assert after.loc[after["feature"] == "planted", "value"].tolist() == [0.5]


def test_open_imports_neither_torch_nor_transformer_lens(planted):
    code = f"""
import sys, curriculens
assert 'pandas' not in sys.modules  # importing the package alone loads nothing heavy
e = curriculens.open({str(planted.exp)!r})
e.runs(); e.metrics(); e.results(); e.summary(); e.teacher_accuracy(); e._repr_html_()
import dashboard.export
print(' '.join(sorted(sys.modules)))
"""
    loaded = set(
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    )
    assert "pandas" in loaded and "plotly" in loaded
    assert "torch" not in loaded and "transformer_lens" not in loaded


def test_reads_a_read_only_copy(planted, tmp_path, readonly_view):
    import shutil

    src = tmp_path / "exp"
    shutil.copytree(planted.exp, src)
    exp = curriculens.open(readonly_view(src))
    assert len(exp.results()) == len(curriculens.open(planted.exp).results())
    assert len(exp.summary()) > 0 and len(exp.runs()) == 8


def test_step_axes_of_runs_without_metrics_merge_as_missing():
    from curriculens.analysis import step_axes

    rows = pd.DataFrame({"run": ["imported"], "step": [300], "value": [0.5]})
    out = rows.merge(
        step_axes(pd.DataFrame()), on=["run", "step"], how="left"
    )  # e.g. an imported run, no metrics.jsonl
    assert out[["teacher_step", "samples", "tokens"]].isna().all().all() and len(out) == 1
    m = pd.DataFrame(
        {
            "run": ["t", "t", "p", "p", "c"],
            "role": ["teacher", "teacher", "student", "student", "student"],
            "step": [0, 10, 0, 10, 10],
            "teacher_step": [None, None, 0, 10, None],
            "samples": [0, 320, 0, 320, 320],
        }
    )
    axes = step_axes(m).set_index(["run", "step"])
    assert axes.loc[("t", 10), "teacher_step"] == 10 and axes.loc[("p", 10), "teacher_step"] == 10
    assert pd.isna(axes.loc[("c", 10), "teacher_step"]) and axes["tokens"].isna().all()


def test_compare_is_the_compare_commands_frame(planted):
    """Experiment.compare: the numbers `curriculens compare EXP A B` prints, as a frame; the steps
    row's mean is the planted runs' paired difference in steps to 95%, computed here."""
    from curriculens.compare import COMPARISON_FRAME_COLUMNS, compare, format_comparison

    exp = curriculens.open(planted.exp)
    df = exp.compare("progressive", "ce")
    assert list(df.columns) == COMPARISON_FRAME_COLUMNS
    res = compare(planted.exp, "progressive", "ce")
    assert len(df) == 1 + len(res["features"]) and df["what"].iloc[0] == "steps to 0.95 accuracy"
    m = exp.metrics()

    def steps_to(run):
        r = m[m["run"] == run].sort_values("step")
        hit = r[r["eval_acc"] >= C.TARGET_ACC]
        return int(hit["step"].iloc[0] if len(hit) else r["step"].iloc[-1])

    diffs = [steps_to(f"progressive-s{s}") - steps_to(f"ce-s{s}") for s in (0, 1)]
    first = df.iloc[0]
    assert first["n"] == 2 and first["estimate"] == pytest.approx(sum(diffs) / 2)
    assert first["lo"] <= first["estimate"] <= first["hi"]
    printed = format_comparison(res)
    for r in df.itertuples(index=False):
        assert f"  {r.what}: " in printed and f"-> {r.verdict}" in printed
    with pytest.raises(CurriculensError, match="no run of method 'nope'"):
        exp.compare("nope", "ce")
    # the teachers that ended below the target ride along (computed here from the metrics)
    t = m[m["role"] == C.ROLE_TEACHER].sort_values("step").dropna(subset=["eval_acc"]).groupby("run")["eval_acc"].last()
    want = [{"experiment": str(planted.exp), "run": r, "final_acc": float(a)} for r, a in t.items() if a < C.TARGET_ACC]
    assert df.attrs["teachers_below_target"] == res["teachers_below_target"] == want


def test_compare_names_a_teacher_that_ended_below_the_target(planted, tmp_path, caplog):
    """A copy of the planted experiment whose teacher's last evaluation is set to 0.5: the frame
    carries it in ``attrs`` and a warning names it."""
    import json
    import logging
    import shutil

    root = tmp_path / planted.exp.name
    shutil.copytree(planted.exp, root)
    path = root / C.RUNS_DIR / "teacher" / C.METRICS_FILE
    rows = read_jsonl(path)
    [r for r in rows if r.get("eval_acc") is not None][-1]["eval_acc"] = 0.5
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING, logger="curriculens.analysis"):
        df = curriculens.open(root).compare("progressive", "ce", features=False)
    assert df.attrs["teachers_below_target"] == [{"experiment": str(root), "run": "teacher", "final_acc": 0.5}]
    assert "teacher teacher of" in caplog.text and "ended at 0.500" in caplog.text
