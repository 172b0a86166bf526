"""Figure builders on the planted fixture: traces, axes, the shaded window, planted values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curriculens import constants as C
from curriculens.curves import window as detect_window
from dashboard import figures as F
from dashboard.data import DataSource

from .conftest import PLANT


@pytest.fixture(scope="module")
def src(dash_fixture):
    return DataSource(dash_fixture.root)


@pytest.fixture(scope="module")
def metrics(src, dash_fixture):
    return src.metrics(dash_fixture.key)


@pytest.fixture(scope="module")
def window(metrics):
    t = metrics[metrics["role"] == "teacher"].sort_values("step")
    return detect_window(t["step"], t["eval_acc"])


def trace(fig, name):
    found = [t for t in fig.data if t.name == name]
    assert found, f"no trace {name!r} in {[t.name for t in fig.data]}"
    return found[0]


def window_shapes(fig):
    return [s for s in fig.layout.shapes if s.name == F.WINDOW_NAME]


def test_teacher_accuracy_traces_window_and_marks(metrics, window, dash_fixture):
    assert window is not None  # the tiny teacher does learn the parity
    fig = F.teacher_accuracy(metrics, window)
    t = metrics[metrics["role"] == "teacher"].sort_values("step")
    line = trace(fig, "teacher")
    np.testing.assert_array_equal(line.x, t["step"])
    np.testing.assert_allclose(line.y, t["eval_acc"])
    # hover names the checkpoint directory of each saved step
    ck = dict(zip(line.x, line.customdata, strict=True))
    assert ck[dash_fixture.teacher_steps[-1]].endswith(
        f"parity-small/runs/teacher/checkpoints/step_{dash_fixture.teacher_steps[-1]:09d}"
    )
    (shape,) = window_shapes(fig)
    assert (shape.x0, shape.x1) == (window.start, window.end)
    marks = trace(fig, F.MARKS_NAME)
    assert marks.cliponaxis is False  # the "3" near the top of the axis is drawn whole
    saved = np.array(dash_fixture.teacher_steps)  # issue 25.5: saved checkpoints, not evaluation steps
    near = [int(saved[np.abs(saved - x).argmin()]) for x in (window.start, window.mid_step, window.end)]
    assert list(marks.x) == near and set(near) <= set(dash_fixture.teacher_steps)
    assert list(marks.text) == ["1", "2", "3"]
    acc = dict(zip(t["step"], t["eval_acc"], strict=True))
    assert list(marks.y) == pytest.approx([acc[s] for s in near])
    assert fig.layout.xaxis.type == "linear"


def test_teacher_overview_has_accuracy_and_loss_and_two_windows(metrics, window):
    fig = F.teacher_overview(metrics, window, log_x=True)
    names = [t.name for t in fig.data]
    assert {"teacher accuracy", "teacher loss"} <= set(names)
    assert len(window_shapes(fig)) == 2
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    assert trace(fig, "teacher loss").yaxis == "y2"


def test_feature_timeline_in_support_lines_and_rest_band(src, dash_fixture, window):
    rows = src.rows(dash_fixture.key, "fourier", "corr", runs=["teacher"], site="output", degree=1)
    fig = F.feature_timeline(rows, title="t", window=window, ckpt_prefix="x/runs/teacher/checkpoints/")
    names = [t.name for t in fig.data]
    assert names[:3] == list(PLANT.in_deg1)
    spike = dash_fixture.spike_step
    for i, f in enumerate(PLANT.in_deg1):
        tr = trace(fig, f)
        y = dict(zip(tr.x, tr.y, strict=True))
        assert y[spike] == pytest.approx(PLANT.spike_value + 0.01 * i)  # the planted spike
        assert y[dash_fixture.teacher_steps[-1]] == pytest.approx(0.001)
        assert "step_%{x:09d}" in tr.hovertemplate
    rest = trace(fig, "Rest (off-support)")
    for s, m in zip(rest.x, rest.y, strict=True):
        vals = [dash_fixture.off_values[("teacher", s, f)] for f in PLANT.off_deg1]
        assert m == pytest.approx(np.mean(vals))
    hi = trace(fig, "Rest (off-support) +1 sd")
    lo = trace(fig, "Rest (off-support) -1 sd")
    s0 = rest.x[0]
    vals = [dash_fixture.off_values[("teacher", s0, f)] for f in PLANT.off_deg1]
    assert hi.y[0] == pytest.approx(np.mean(vals) + np.std(vals, ddof=1))
    assert lo.y[0] == pytest.approx(np.mean(vals) - np.std(vals, ddof=1))
    assert lo.fill == "tonexty"
    assert len(window_shapes(fig)) == 1


def test_feature_timeline_without_in_support_pools_beyond_max_lines():
    steps = np.arange(0, 50, 10)
    rows = pd.DataFrame(
        [{"step": s, "feature": f"n{i}", "value": i * 0.1 + s * 0.001} for i in range(6) for s in steps]
    )
    fig = F.feature_timeline(rows, title="t", max_lines=3)
    names = [t.name for t in fig.data]
    assert names[:3] == ["n3", "n4", "n5"]  # the three with the highest peak
    assert "Rest (3 others)" in names
    fig_all = F.feature_timeline(rows, title="t", max_lines=12)
    assert [t.name for t in fig_all.data] == [f"n{i}" for i in range(6)]


def test_site_timeline_means_in_support_features_per_site(src, dash_fixture):
    rows = src.rows(dash_fixture.key, "linear", "test_acc", runs=["teacher"], degree=1)
    fig = F.site_timeline(rows, title="t")
    assert sorted(t.name for t in fig.data) == sorted(f"{s} · degree 1" for s in PLANT.sites)
    last = dash_fixture.teacher_steps[-1]
    post = trace(fig, "blocks.0.hook_post · degree 1")
    pre = trace(fig, "blocks.0.hook_pre · degree 1")
    assert dict(zip(post.x, post.y, strict=True))[last] == pytest.approx(1.0)
    assert dict(zip(pre.x, pre.y, strict=True))[last] == pytest.approx(0.9)
    # at the first step no in-support feature has appeared: all at 0.5
    assert dict(zip(post.x, post.y, strict=True))[0] == pytest.approx(0.5)
    assert "in-support" in fig.layout.title.text
    both = F.site_timeline(src.rows(dash_fixture.key, "fourier", "corr", runs=["teacher"]), title="t")
    assert [t.name for t in both.data] == ["output · degree 1", "output · degree 2"]  # degrees never pooled


def test_site_timeline_never_averages_features_of_different_meaning():
    """PCFG rows (no in_support): tree levels at two sites stay separate lines, values as given."""
    rows = pd.DataFrame(
        [
            dict(
                run="teacher",
                step=s,
                feature=f,
                site=site,
                value=v + (site == "b1") * 0.1,
                degree=int(f[-1]),
                in_support=np.nan,
            )
            for s in (0, 10, 20)
            for f, v in (("level2", 0.3), ("level3", 0.9))
            for site in ("b0", "b1")
        ]
    )
    fig = F.site_timeline(rows, title="t", degree_word="tree level")
    assert [t.name for t in fig.data] == ["b0 · level2", "b0 · level3", "b1 · level2", "b1 · level3"]
    assert list(trace(fig, "b1 · level3").y) == pytest.approx([1.0] * 3)  # not the 0.6 mean of the two levels


def test_heatmap_matches_rows_and_orders_in_support_first(src, dash_fixture):
    rows = src.rows(dash_fixture.key, "fourier", "corr", runs=["teacher"], site="output")
    fig = F.feature_heatmap(rows, title="t")
    hm = fig.data[0]
    labels = list(hm.y)
    assert labels[:6] == ["0 *", "1 *", "2 *", "0_1 *", "0_2 *", "1_2 *"]  # in support, by degree
    assert set(labels[6:]) == set(PLANT.off_deg1 + PLANT.off_deg2)
    z = np.asarray(hm.z, dtype=float)
    col = list(hm.x).index(dash_fixture.spike_step)
    assert z[0, col] == pytest.approx(PLANT.spike_value)
    assert z[labels.index("3"), col] == pytest.approx(
        dash_fixture.off_values[("teacher", dash_fixture.spike_step, "3")]
    )
    assert 0 in list(hm.x)
    assert fig.layout.yaxis.type == "category"  # "3", "4" are names, not numbers; "0 *" rows stay
    fig_log = F.feature_heatmap(rows, title="t", log_x=True)
    assert 0 not in list(fig_log.data[0].x) and fig_log.layout.xaxis.type == "log"


def test_students_accuracy_mean_and_band_over_seeds(metrics, window):
    fig = F.students_accuracy(metrics)
    s = metrics[metrics["role"] == "student"]
    for method in ("ce", "one-shot", "progressive"):
        m = s[s["method"] == method].groupby("step")["eval_acc"]
        line = trace(fig, method)
        np.testing.assert_allclose(line.y, m.mean().to_numpy())
        band_hi = trace(fig, f"{method} +1 sd")
        np.testing.assert_allclose(band_hi.y, (m.mean() + m.std()).to_numpy())
    t_step = int(s.loc[s["method"] == "two-shot", "two_shot_step"].iloc[0])
    label = f"two-shot (teacher ckpt {t_step:,}, first 120 steps)"  # the checkpoint, and T = student steps
    two = trace(fig, label)  # one seed: a line without a band
    assert not [t for t in fig.data if t.name == f"{label} +1 sd"]
    assert len(two.x) > 0
    teacher = trace(fig, "teacher")
    assert teacher.line.dash == "dash"
    assert not window_shapes(fig)  # the teacher's window is in teacher steps: not on the students' axis


def test_ce_is_dotted_and_drawn_over_one_shot(metrics):
    """Issue 25.6: at chance ce lies exactly on one-shot; dotted and drawn last it stays visible."""
    fig = F.students_accuracy(metrics)
    lines = [t for t in fig.data if t.name in ("ce", "one-shot", "progressive")]
    assert lines[-1].name == "ce" and lines[-1].line.dash == "dot"
    assert trace(fig, "one-shot").line.dash == "solid"


def test_window_is_mapped_through_each_students_schedule(metrics, window):
    """Issue 25.4: the teacher's window on a student's own axis is where its schedule used the
    teacher's checkpoints from inside the window; ce and one-shot never do."""
    from dashboard.selection import student_window

    def runs(method):
        return sorted(metrics.loc[metrics["method"] == method, "run"].unique())

    for method in ("ce", "one-shot"):
        assert student_window(metrics, runs(method), window) is None
    prog = student_window(metrics, runs("progressive"), window)
    m = metrics[metrics["method"] == "progressive"]
    ts = m["teacher_step"].astype(float)
    assert ts[m["step"] == prog.start].min() >= window.start and ts[m["step"] == prog.end].max() <= window.end
    before = m[m["step"] < prog.start]["teacher_step"].astype(float)
    assert (before < window.start).all()  # it reaches the window at prog.start, not earlier
    two = student_window(metrics, runs("two-shot"), window)
    t_step = int(metrics.loc[metrics["method"] == "two-shot", "two_shot_step"].iloc[0])
    assert window.start <= t_step <= window.end and two.start == 0 and two.end <= 120  # first stage, up to the switch
    fig = F.students_accuracy(metrics, {"progressive": prog, "two-shot (x)": two})
    (shape,) = window_shapes(fig)  # only groups of the figure are shaded
    assert (shape.x0, shape.x1) == (prog.start, prog.end)
    assert student_window(metrics, runs("progressive"), None) is None


def test_two_shot_curve_per_checkpoint_and_switch_line(metrics):
    fig = F.two_shot_accuracy(metrics)
    names = [t.name for t in fig.data]
    t_step = int(metrics.loc[metrics["method"] == "two-shot", "two_shot_step"].iloc[0])
    assert len(names) == 2 and names[0].startswith(f"two-shot (teacher ckpt {t_step:,}, first 120 steps), teacher acc ")
    t = metrics[(metrics["role"] == "teacher") & (metrics["step"] == t_step)]["eval_acc"].iloc[0]
    assert f"{t:.2f}" in names[0]
    switch = trace(fig, "switch to the final teacher (student step 120)")  # a legend entry, not a label
    assert list(switch.x) == [120, 120]
    assert fig.layout.showlegend is True  # one student is one trace: the legend must still name its checkpoint
    assert not fig.layout.shapes and not fig.layout.annotations  # nothing drawn over the title


def test_students_features_side_by_side_share_axes_and_colours(src, dash_fixture, window):
    exp = src.experiment(dash_fixture.key)
    panels = {
        lab: src.rows(
            dash_fixture.key,
            "fourier",
            "corr",
            site="output",
            degree=1,
            runs=[r.name for r in exp.runs if r.label == lab],
        )
        for lab in ("progressive", "one-shot")
    }
    fig = F.students_features(panels, title="t", window=window)
    prog = [t for t in fig.data if t.xaxis == "x" and t.name == "0"][0]
    one = [t for t in fig.data if t.xaxis == "x2" and t.name == "0"][0]
    assert prog.line.color == one.line.color
    y = dict(zip(prog.x, prog.y, strict=True))
    assert y[dash_fixture.progressive_spike] == pytest.approx(PLANT.spike_value)  # mean of two equal seeds
    assert max(one.y) == pytest.approx(0.004)  # the one-shot students carry no spike
    assert fig.layout.xaxis2.matches == "x" and fig.layout.yaxis2.matches == "y"
    assert len(window_shapes(fig)) == 2
    titles = [a.text for a in fig.layout.annotations if a.text and "run(s)" in a.text]
    assert titles == ["progressive<br>(mean of 2 run(s))", "one-shot<br>(mean of 2 run(s))"]


def test_empty_inputs_give_a_message_figure():
    fig = F.feature_timeline(pd.DataFrame(columns=["step", "feature", "value"]), title="x")
    assert fig.layout.meta["empty"] and "No probe rows" in fig.layout.annotations[0].text
    assert F.students_accuracy(pd.DataFrame(columns=["role", "eval_acc"]), None).layout.meta["empty"]
    assert F.two_shot_accuracy(pd.DataFrame(columns=["method"])).layout.meta["empty"]


def test_thin_steps_keeps_ends_and_caps_count():
    steps = np.arange(0, 100_001, 10)
    kept = F.thin_steps(steps, 200)
    assert kept[0] == 0 and kept[-1] == 100_000 and len(kept) <= 202
    kept_log = F.thin_steps(steps, 200, log=True)
    assert kept_log[-1] == 100_000 and np.sum(kept_log < 1000) > np.sum(kept < 1000)
    assert list(F.thin_steps([3, 1, 2], 10)) == [1, 2, 3]


def test_natural_key_sorts_numbers_numerically():
    assert sorted(["0_10", "0_9", "1", "n10", "n3"], key=F.natural_key) == ["0_9", "0_10", "1", "n3", "n10"]
    assert C.CKPT_STEP_DIGITS == 9 and F.ckpt_hover("p/") == "<br>p/step_%{x:09d}"


def test_teacher_figures_mark_the_checkpoint_the_two_shot_student_used(metrics, window):
    used = sorted(int(v) for v in metrics.loc[metrics["method"] == "two-shot", "two_shot_step"].unique())
    assert used  # the fixture has a two-shot student
    t = metrics[metrics["role"] == "teacher"].set_index("step")["eval_acc"]
    for fig in (F.teacher_accuracy(metrics, window), F.teacher_overview(metrics, window)):
        mark = trace(fig, F.TWO_SHOT_MARK)
        assert list(mark.x) == used
        assert list(mark.y) == pytest.approx([t[s] for s in used])  # on the teacher's curve
    no_two = metrics[metrics["method"] != "two-shot"]
    assert not [tr for tr in F.teacher_accuracy(no_two, window).data if tr.name == F.TWO_SHOT_MARK]


def test_heatmap_of_many_rows_keeps_the_labelled_in_support_rows_and_frames_the_window(src, dash_fixture, window):
    """Issue 25.9: "all degrees" heatmaps of hundreds of rows draw the in-support rows only (the
    title says how many were left out), the window is framed, and few columns get their own
    ticks (no negative steps)."""
    rows = src.rows(dash_fixture.key, "fourier", "corr", runs=["teacher"], site="output")
    fig = F.feature_heatmap(rows, title="t", window=window, max_rows=6)
    n_off = len(PLANT.off_deg1 + PLANT.off_deg2)
    assert list(fig.data[0].y) == list(PLANT.in_deg1 + PLANT.in_deg2)  # no "*": every row is in support
    assert fig.layout.title.text == f"t (in-support features only; {n_off} off-support rows not drawn)"
    assert fig.layout.yaxis.showticklabels is True
    (shape,) = window_shapes(fig)
    assert (shape.x0, shape.x1) == (window.start, window.end) and shape.layer == "above"
    assert "(* = in support)" in F.feature_heatmap(rows, title="t").layout.title.text
    few = rows[rows["step"].isin(dash_fixture.teacher_steps[:3])]
    ticks = F.feature_heatmap(few, title="t").layout.xaxis.tickvals
    assert list(ticks) == list(dash_fixture.teacher_steps[:3]) and min(ticks) >= 0


def test_accuracy_axes_stay_within_0_and_1(metrics, window):
    """Issue 25.9: a mean + sd band above 1 no longer stretches an accuracy axis (to 1.9)."""
    for fig in (F.students_accuracy(metrics), F.teacher_accuracy(metrics, window), F.two_shot_accuracy(metrics)):
        opts = fig.layout.yaxis.autorangeoptions
        assert (opts.clipmin, opts.clipmax) == (0.0, 1.02)
