"""Callbacks called directly (pure functions of a DataSource and the inputs), and through
the app's HTTP endpoint, on the planted fixture."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from dash.exceptions import PreventUpdate

from curriculens import constants as C
from curriculens.errors import CurriculensError
from dashboard import callbacks as cb
from dashboard import layout as L
from dashboard.app import draw_sites, make_app
from dashboard.data import DataSource
from probes.store import ResultsStore

from .conftest import PLANT


@pytest.fixture(scope="module")
def src(dash_fixture):
    return DataSource(dash_fixture.root)


def names(fig):
    return [t.name for t in fig.data]


def test_list_experiments_picks_the_fixture(src, dash_fixture):
    options, value, note = cb.list_experiments(src, 0, None)
    assert value == dash_fixture.key and note == ""
    assert len(options) == 1
    label = options[0]["label"]
    assert "parity" in label and "k=3" in label and "n=10" in label and "8 runs" in label and "probe results" in label
    assert cb.list_experiments(src, 1, "gone")[1] == dash_fixture.key  # an unknown selection falls back
    assert cb.list_experiments(src, 1, dash_fixture.key)[1] == dash_fixture.key


def test_overview_defaults_to_the_in_support_probe(src, dash_fixture):
    summary, fam_opts, fam_val, run_opts, run_val, note = cb.experiment_overview(src, dash_fixture.key)
    assert fam_val == "fourier::corr"  # in-support + degree info beats linear and the model's accuracy
    assert {o["value"] for o in fam_opts} == {
        "fourier::corr",
        "linear::test_acc",
        "linear::control_acc",
        "model::accuracy",
    }
    assert run_val == "teacher" and len(run_opts) == 8
    with ResultsStore(dash_fixture.exp / C.RESULTS_DB, readonly=True) as store:
        n = store.count()
    text = str(summary)
    assert f"{n:,} probe values" in text and "two-shot (teacher ckpt " in text and "done" in text
    assert note == ""


def test_family_controls_offer_sites_and_degrees(src, dash_fixture):
    site_opts, site_val, deg_opts, deg_val, word = cb.family_controls(src, dash_fixture.key, "fourier::corr")
    assert [o["value"] for o in site_opts] == ["output"] and site_val == "output"
    assert [o["value"] for o in deg_opts] == [L.ALL_DEGREES, "1", "2"] and deg_val == "1"
    site_opts, site_val, deg_opts, deg_val, word = cb.family_controls(src, dash_fixture.key, "linear::test_acc")
    assert [o["value"] for o in site_opts] == sorted(PLANT.sites) and site_val == "blocks.0.hook_post"
    assert [o["value"] for o in deg_opts] == [L.ALL_DEGREES, "1"]
    assert cb.family_controls(src, dash_fixture.key, None)[3] is None  # nothing picked: nothing to keep


def test_views_only_compute_on_their_tab(src, dash_fixture):
    with pytest.raises(PreventUpdate):
        cb.teacher_view(src, dash_fixture.key, "linear", L.TAB_FEATURES)
    with pytest.raises(PreventUpdate):
        cb.features_view(src, dash_fixture.key, "teacher", "fourier::corr", "output", "1", "linear", [], L.TAB_TEACHER)
    with pytest.raises(PreventUpdate):
        cb.students_view(src, dash_fixture.key, "fourier::corr", "output", "1", "linear", [], L.TAB_TEACHER)
    with pytest.raises(PreventUpdate):
        cb.emergence_view(src, dash_fixture.key, L.TAB_TEACHER)


def test_teacher_view_log_axis_and_window_text(src, dash_fixture):
    fig, text = cb.teacher_view(src, dash_fixture.key, "log", L.TAB_TEACHER)
    w = cb.window_of(src.metrics(dash_fixture.key))
    assert fig.layout.xaxis.type == "log"
    assert f"between step {w.start:,} and step {w.end:,}" in text and "10% to 90%" in text
    assert fig.layout.uirevision == f"{dash_fixture.key}|teacher|log"


def test_features_view_traces(src, dash_fixture):
    timeline, sites, heat, note = cb.features_view(
        src, dash_fixture.key, "teacher", "fourier::corr", "output", "1", "linear", ["log"], L.TAB_FEATURES
    )
    assert names(timeline)[:3] == list(PLANT.in_deg1) and "Rest (off-support)" in names(timeline)
    assert timeline.layout.yaxis.type == "log"
    assert names(sites) == ["output · degree 1", "output · degree 2"]  # every degree, whatever the picker
    assert len(heat.data[0].y) == len(PLANT.in_deg1 + PLANT.off_deg1)
    assert "teacher's transition window" in note
    # all degrees: degree-2 features join the lines
    timeline_all, *_ = cb.features_view(
        src, dash_fixture.key, "teacher", "fourier::corr", "output", L.ALL_DEGREES, "linear", [], L.TAB_FEATURES
    )
    assert set(PLANT.in_deg2) <= set(names(timeline_all))
    # a student run, another probe
    tl, sites, _, _ = cb.features_view(
        src,
        dash_fixture.key,
        "progressive-s0",
        "linear::test_acc",
        "blocks.0.hook_post",
        "1",
        "linear",
        [],
        L.TAB_FEATURES,
    )
    assert names(tl)[:3] == list(PLANT.in_deg1) and sorted(names(sites)) == sorted(
        f"{s} · degree 1" for s in PLANT.sites
    )
    assert "progressive-s0/checkpoints/step_%{x:09d}" in tl.data[0].hovertemplate


def test_students_view_overlays_methods_and_compares_features(src, dash_fixture):
    acc, side, two, note = cb.students_view(
        src, dash_fixture.key, "fourier::corr", "output", "1", "linear", [], L.TAB_STUDENTS
    )
    assert {"ce", "one-shot", "progressive", "teacher"} <= set(names(acc))
    titles = [a.text for a in side.layout.annotations if a.text and "run(s)" in a.text]
    t_step = int(src.metrics(dash_fixture.key).query("method == 'two-shot'")["two_shot_step"].iloc[0])
    assert titles == [  # issue 25.6: every student method, not only progressive and one-shot
        "progressive<br>(mean of 2 run(s))",
        "one-shot<br>(mean of 2 run(s))",
        f"two-shot (ckpt {t_step:,}, T=120)<br>(mean of 1 run(s))",
        "ce<br>(mean of 2 run(s))",
    ]
    assert len(two.data) == 2 and "shaded on each student's own step axis" in note
    assert "corr (Fourier) = |mean over inputs x of chi_A(x) p(x)|" in note  # issue 25.9: the axis defined


def test_emergence_view_hides_off_support_series_and_orders_features_naturally(src, dash_fixture):
    data, _, note = cb.emergence_view(src, dash_fixture.key, L.TAB_EMERGENCE)
    df = pd.DataFrame(data)
    assert len(df) > 0 and not (df["in_support"] == 0).any()
    hidden = (src.emergence(dash_fixture.key)["in_support"] == 0).sum()
    assert hidden > 0 and f"{hidden:,} off-support series are hidden" in note
    every, _, note_all = cb.emergence_view(src, dash_fixture.key, L.TAB_EMERGENCE, ["show"])
    assert len(every) == len(df) + hidden and "hidden" not in note_all
    from probes.summary import sort_summary

    table = src.emergence(dash_fixture.key)
    shuffled = table.sample(frac=1.0, random_state=0).assign(
        feature=lambda d: d["feature"].where(d["feature"] != "9", "10")
    )  # a two-digit id among 0..8
    ordered = sort_summary(shuffled)
    teacher_off = ordered[
        (ordered["run"] == "teacher")
        & (ordered["probe"] == "fourier")
        & (ordered["degree"] == 1)
        & (ordered["in_support"] == 0)
    ]["feature"].tolist()
    assert teacher_off == ["3", "4", "5", "6", "7", "8", "10"]


def test_emergence_view_recovers_planted_steps(src, dash_fixture):
    data, columns, note = cb.emergence_view(src, dash_fixture.key, L.TAB_EMERGENCE, ["show"])
    df = pd.DataFrame(data)
    assert {"run", "probe", "feature", "site", "metric", "appear_step", "peak_step", "peak_value"} <= set(df.columns)
    types = {c["id"]: c["type"] for c in columns}
    assert types["appear_step"] == "numeric" and types["run"] == "text"
    lin = df[(df["probe"] == "linear") & (df["metric"] == "test_acc") & (df["site"] == "blocks.0.hook_post")]
    for (run, feature), step in dash_fixture.appear.items():
        row = lin[(lin["run"] == run) & (lin["feature"] == feature)]
        assert len(row) == 1, (run, feature)
        assert row["appear_step"].iloc[0] == step and row["peak_value"].iloc[0] == pytest.approx(1.0)
    four = df[(df["probe"] == "fourier") & (df["run"] == "teacher") & (df["feature"].isin(PLANT.in_deg1))]
    assert set(four["appear_step"]) == {dash_fixture.spike_step} == set(four["peak_step"])
    assert sorted(four["peak_value"]) == pytest.approx([PLANT.spike_value + 0.01 * i for i in range(3)])
    assert sorted(four["final_value"]) == pytest.approx([0.001] * 3)
    one = df[(df["probe"] == "fourier") & (df["run"] == "one-shot-s0") & (df["feature"].isin(PLANT.in_deg1))]
    assert one["appear_step"].isna().all()  # flat: never appears
    json.dumps(data)  # JSON-ready: no NaN objects or numpy scalars
    assert "trajectories" in note


def test_csv_downloads(src, dash_fixture):
    with pytest.raises(PreventUpdate):
        cb.download_emergence(src, 0, dash_fixture.key)
    out, note = cb.download_emergence(src, 1, dash_fixture.key)
    assert out["filename"] == "parity-small_emergence.csv"
    table = pd.read_csv(io.StringIO(out["content"]))
    assert len(table) == len(src.emergence(dash_fixture.key)) and "appear_step" in table.columns
    out, note = cb.download_rows(src, 1, dash_fixture.key)
    rows = pd.read_csv(io.StringIO(out["content"]))
    with ResultsStore(dash_fixture.exp / C.RESULTS_DB, readonly=True) as store:
        assert len(rows) == store.count()
    assert list(rows.columns[:5]) == ["run", "role", "method", "seed", "step"] and note.endswith("rows saved.")


def test_graph_configs_switch_the_modebar_format(dash_fixture):
    configs = cb.graph_configs("svg", "sweeps/exp 1")
    assert len(configs) == len(L.GRAPHS)
    assert {c["toImageButtonOptions"]["format"] for c in configs} == {"svg"}
    assert configs[0]["toImageButtonOptions"]["filename"] == "sweeps_exp_1_teacher"
    assert cb.graph_configs("png", ".")[1]["toImageButtonOptions"]["filename"] == "experiment_timeline"


def test_guarded_turns_errors_into_plain_messages():
    def boom(*_):
        raise ValueError("bad\nsecond line with a path")

    def user(*_):
        raise CurriculensError("the results database is locked")

    def skip(*_):
        raise PreventUpdate

    assert (
        cb.guarded(boom, lambda m: m)()
        == "This view could not be drawn (ValueError: bad). The server log has the details."
    )
    assert cb.guarded(user, lambda m: m)() == "the results database is locked"
    with pytest.raises(PreventUpdate):
        cb.guarded(skip, lambda m: m)()


def _post(client, output, outputs, inputs, changed=None):
    payload = {
        "output": output,
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": changed if changed is not None else [f"{inputs[0][0]}.{inputs[0][1]}"],
        "state": [],
    }
    return client.post("/_dash-update-component", json=payload)


def test_draw_sites_only_when_what_it_shows_changed():
    assert draw_sites([]) and draw_sites(["."])  # the first call draws everything
    assert not draw_sites([f"{L.DEGREE}.value"]) and not draw_sites([f"{L.SITE}.value", f"{L.YLOG}.value"])
    for other in (L.RUN, L.FAMILY, L.AXIS, L.TABS, L.EXPERIMENT, L.X_UNIT, L.IMAGE_FORMAT, L.RELOAD):
        assert draw_sites([f"{other}.value"]) and draw_sites([f"{L.DEGREE}.value", f"{other}.value"])


def test_degree_change_does_not_redraw_the_site_overview(dash_fixture, src):
    """Issue 25.10: a Degree or Site change answers the timeline and heatmap only (the per-site
    overview shows every site and degree); a Run change answers all three."""
    app = make_app(dash_fixture.root, prefetch=False)
    client = app.server.test_client()
    graphs = (L.TIMELINE_GRAPH, L.SITES_GRAPH, L.HEATMAP_GRAPH)
    outs = [(g, "figure") for g in graphs] + [(L.FEATURES_NOTE, "children")] + [(g, "config") for g in graphs]
    out = ".." + "...".join(f"{i}.{p}" for i, p in outs) + ".."
    assert out in app.callback_map
    ins = [
        (L.EXPERIMENT, "value", dash_fixture.key),
        (L.RUN, "value", "teacher"),
        (L.FAMILY, "value", "fourier::corr"),
        (L.SITE, "value", "output"),
        (L.DEGREE, "value", "2"),
        (L.AXIS, "value", "linear"),
        (L.YLOG, "value", []),
        (L.TABS, "value", L.TAB_FEATURES),
        (L.X_UNIT, "value", L.X_STEP),
        (L.IMAGE_FORMAT, "value", "png"),
        (L.RELOAD, "n_clicks", 0),
    ]
    deg = _post(client, out, outs, ins, changed=[f"{L.DEGREE}.value"]).get_json()["response"]
    run = _post(client, out, outs, ins, changed=[f"{L.RUN}.value"]).get_json()["response"]
    assert L.SITES_GRAPH not in deg and {L.TIMELINE_GRAPH, L.HEATMAP_GRAPH} <= set(deg)
    assert set(graphs) <= set(run) and "figure" in run[L.SITES_GRAPH] and "config" in run[L.SITES_GRAPH]
    assert deg[L.TIMELINE_GRAPH]["figure"] == run[L.TIMELINE_GRAPH]["figure"]  # the same view otherwise
    direct = cb.features_view(
        src, dash_fixture.key, "teacher", "fourier::corr", "output", "2", "linear", [], L.TAB_FEATURES
    )
    assert names(direct[0]) == [t["name"] for t in deg[L.TIMELINE_GRAPH]["figure"]["data"]]


def test_http_callbacks_answer_without_tracebacks(dash_fixture):
    app = make_app(dash_fixture.root)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    out = "..teacher-graph.figure...teacher-note.children...teacher-graph.config.."
    outs = [("teacher-graph", "figure"), ("teacher-note", "children"), ("teacher-graph", "config")]
    assert out in app.callback_map
    ok = _post(
        client,
        out,
        outs,
        [
            ("experiment", "value", dash_fixture.key),
            ("axis", "value", "log"),
            ("tabs", "value", "teacher"),
            ("x-unit", "value", "step"),
            ("image-format", "value", "svg"),
            ("reload", "n_clicks", 0),
        ],
    )
    assert ok.status_code == 200
    body = ok.get_json()["response"]
    assert body["teacher-graph"]["figure"]["layout"]["xaxis"]["type"] == "log"
    assert body["teacher-graph"]["config"]["toImageButtonOptions"] == {
        "format": "svg",
        "filename": f"{dash_fixture.key}_teacher",
        "scale": 2,
    }
    assert "Transition window" in body["teacher-note"]["children"]
    bad = _post(
        client,
        out,
        outs,
        [
            ("experiment", "value", "../../etc"),
            ("axis", "value", "log"),
            ("tabs", "value", "teacher"),
            ("x-unit", "value", "step"),
            ("image-format", "value", "png"),
            ("reload", "n_clicks", 0),
        ],
    )
    assert bad.status_code == 200
    text = bad.get_data(as_text=True)
    assert (
        "Traceback" not in text
        and "no experiment '../../etc'" in bad.get_json()["response"]["teacher-note"]["children"]
    )
    broken = client.post("/_dash-update-component", json={"output": "nonsense"})  # not even a callback
    assert broken.status_code == 500 and "Traceback" not in broken.get_data(as_text=True)


def test_emergence_prefetch_and_single_flight(dash_fixture, monkeypatch):
    import threading

    import dashboard.data as D

    for t in threading.enumerate():  # earlier tests' apps may still prefetch in the background
        if t.name.startswith("emergence-"):
            t.join(60)
    calls = []
    real = D.emergence_table
    gate = threading.Event()

    def slow(rows, specs):
        calls.append((specs, tuple(sorted(set(zip(rows["run"], rows["probe"], strict=True))))))
        gate.wait(5)
        return real(rows, specs)

    monkeypatch.setattr(D, "emergence_table", slow)
    src = DataSource(dash_fixture.root, prefetch=True)
    cb.teacher_view(src, dash_fixture.key, "linear", L.TAB_TEACHER)  # starts the background computation
    assert src.prefetch_emergence(dash_fixture.key) is None  # already in flight: no second thread
    results = []
    waiter = threading.Thread(target=lambda: results.append(src.emergence(dash_fixture.key)))
    waiter.start()
    gate.set()
    waiter.join(30)
    # each (run, probe) piece computed once, shared by the waiting request
    pieces = [c[1] for c in calls]
    stored = src.reader(dash_fixture.key).metric_specs()  # the specs the database holds
    assert len(pieces) == len(set(pieces)) == 8 * 3 and all(
        len(p) == 1 and c[0] == stored for c, p in zip(calls, pieces, strict=True)
    )
    assert len(results[0]) > 0
    pd.testing.assert_frame_equal(
        results[0], D.emergence_table(src.reader(dash_fixture.key).table(with_extra=True), stored)
    )
    assert DataSource(dash_fixture.root).prefetch_emergence(dash_fixture.key) is None  # off by default


def test_views_serve_features_without_degree_or_support(dash_fixture, fresh_copy):
    """PCFG-style rows (no degree, no in_support): one line per feature, no Rest band, no degree."""
    from probes.store import ResultRow, UnitKey

    root = fresh_copy()
    with ResultsStore(root / dash_fixture.key / C.RESULTS_DB) as store:
        for i, s in enumerate(dash_fixture.teacher_steps):
            store.write_unit(
                UnitKey("teacher", "teacher", "teacher", 0, s, "ngram"),
                [
                    ResultRow("ngram", f, "output", "m_robust_p50", 10.0 ** (-3 + (i == 5) * 2 + k))
                    for k, f in enumerate(("n3", "n5", "n10"))
                ],
            )
    src = DataSource(root)
    options = {o["value"] for o in cb.experiment_overview(src, dash_fixture.key)[1]}
    assert "ngram::m_robust_p50" in options
    site_opts, site, deg_opts, deg, word = cb.family_controls(src, dash_fixture.key, "ngram::m_robust_p50")
    assert site == "output" and [o["value"] for o in deg_opts] == [L.ALL_DEGREES] and deg == L.ALL_DEGREES
    timeline, sites, heat, _ = cb.features_view(
        src, dash_fixture.key, "teacher", "ngram::m_robust_p50", site, deg, "log", ["log"], L.TAB_FEATURES
    )
    assert names(timeline) == ["n3", "n5", "n10"]  # natural order, no band
    assert timeline.layout.yaxis.type == "log" and timeline.layout.xaxis.type == "log"
    assert list(heat.data[0].y) == ["n3", "n5", "n10"] and "in support" not in heat.layout.title.text
    peak = dash_fixture.teacher_steps[5]
    n3 = dict(zip(timeline.data[0].x, timeline.data[0].y, strict=True))
    assert n3[peak] == pytest.approx(0.1)


def test_pcfg_controls_name_the_level_and_offer_only_the_runs_sites(dash_fixture, fresh_copy):
    from probes.store import ResultRow, UnitKey

    root = fresh_copy()
    with ResultsStore(root / dash_fixture.key / C.RESULTS_DB) as store:
        for run, role, method, sites in (
            ("teacher", "teacher", "teacher", ("blocks.0.hook_in", "blocks.0.hook_out", "blocks.1.hook_out")),
            ("ce-s0", "student", "ce", ("blocks.0.hook_in", "blocks.0.hook_out")),
        ):
            for s in (0, 20, 40):
                store.write_unit(
                    UnitKey(run, role, method, 0, s, "nt_span"),
                    [
                        ResultRow("nt_span", f"level{d}", site, "test_acc", 0.5 + 0.1 * d, degree=d)
                        for d in (2, 3)
                        for site in sites
                    ],
                )
    src = DataSource(root)
    site_opts, site, deg_opts, deg, label = cb.family_controls(src, dash_fixture.key, "nt_span::test_acc", "ce-s0")
    assert [o["value"] for o in site_opts] == ["blocks.0.hook_in", "blocks.0.hook_out"]  # no blocks.1 in the student
    assert label == "Tree level" and [o["label"] for o in deg_opts][1:] == ["tree level 2", "tree level 3"]
    teacher_sites = [o["value"] for o in cb.family_controls(src, dash_fixture.key, "nt_span::test_acc", "teacher")[0]]
    assert teacher_sites == ["blocks.0.hook_in", "blocks.0.hook_out", "blocks.1.hook_out"]
    assert cb.family_controls(src, dash_fixture.key, "fourier::corr", "teacher")[4] == "Degree"
    assert cb.selection_title("context", "test_acc", "b0", -2) == "context · test_acc, site b0, context offset -2"
    _, sites_fig, _, _ = cb.features_view(
        src,
        dash_fixture.key,
        "ce-s0",
        "nt_span::test_acc",
        "blocks.0.hook_in",
        L.ALL_DEGREES,
        "linear",
        [],
        L.TAB_FEATURES,
    )
    assert sorted(t.name for t in sites_fig.data) == [
        "blocks.0.hook_in · level2",
        "blocks.0.hook_in · level3",
        "blocks.0.hook_out · level2",
        "blocks.0.hook_out · level3",
    ]


def test_students_panel_says_when_a_site_can_never_have_rows(dash_fixture, fresh_copy):
    from probes.store import ResultRow, UnitKey

    root = fresh_copy()
    with ResultsStore(root / dash_fixture.key / C.RESULTS_DB) as store:
        for run, role, method, sites in (
            ("teacher", "teacher", "teacher", ("b0", "b1")),
            ("progressive-s0", "student", "progressive", ("b0",)),
            ("one-shot-s0", "student", "one-shot", ("b0",)),
        ):
            store.write_unit(
                UnitKey(run, role, method, 0, 0, "nt_span"),
                [ResultRow("nt_span", "level2", s, "test_acc", 0.5, degree=2) for s in sites],
            )
    src = DataSource(root)
    note = cb.students_view(src, dash_fixture.key, "nt_span::test_acc", "b1", "2", "linear", [], L.TAB_STUDENTS)[3]
    assert "The students have no site b1" in note and "may not have probed" not in note


def test_family_controls_keep_the_selection_when_the_run_changes(src, dash_fixture):
    """Issue 25.1: a new run keeps the degree and site picked, when it has them."""
    key = dash_fixture.key
    assert cb.family_controls(src, key, "fourier::corr", "ce-s0", "output", "2")[3] == "2"
    assert cb.family_controls(src, key, "fourier::corr", "teacher", "output", "2")[3] == "2"
    assert cb.family_controls(src, key, "fourier::corr", "teacher", "output", L.ALL_DEGREES)[3] == L.ALL_DEGREES
    assert cb.family_controls(src, key, "fourier::corr", "teacher", "output", "7")[3] == "1"  # gone: the default
    site = cb.family_controls(src, key, "linear::test_acc", "teacher", "blocks.0.hook_pre", "1")[1]
    assert site == "blocks.0.hook_pre"
    assert cb.family_controls(src, key, "fourier::corr", "teacher", "blocks.0.hook_pre", "1")[1] == "output"


def test_default_degree_is_the_lowest_that_appeared_else_all(src, dash_fixture):
    """Issue 25.2: open on a degree with signal: the teacher's planted degree-1 spike appears;
    ce's degree-1 values are flat (no appearance at any degree), so it opens on all degrees."""
    key = dash_fixture.key
    assert cb.family_controls(src, key, "fourier::corr", "teacher")[3] == "1"
    assert cb.family_controls(src, key, "fourier::corr", "progressive-s0")[3] == "1"
    assert cb.family_controls(src, key, "fourier::corr", "ce-s0")[3] == L.ALL_DEGREES


def test_findings_lead_with_the_transition_features_and_methods(src, dash_fixture):
    """Issue 25.2: the findings panel names the window, the teacher's planted features in order
    with their checkpoint interval, and one comparison row per method."""
    text = str(cb.findings_view(src, dash_fixture.key))
    window = cb.window_of(src.metrics(dash_fixture.key), "parity")
    assert f"between step {window.start:,} and step {window.end:,}; middle at step {window.mid_step:,.0f}" in text
    spike = dash_fixture.spike_step
    before = max(s for s in dash_fixture.teacher_steps if s < spike)
    assert text.count(f"({before:,}, {spike:,}]") == len(PLANT.in_deg1)  # degree-1 features, nothing else
    assert "passes its null (multiple-comparison controlled)" in text and "no null test" not in text  # i24's null
    for method in ("teacher", "ce", "one-shot", "progressive", "two-shot"):
        assert f"'{method}'" in text
    assert cb.findings_view(src, None).children is None


def test_emergence_table_follows_the_pickers(src, dash_fixture):
    """Issue 25.9: the table shows the probe family, site and degree picked above."""
    key = dash_fixture.key
    data, _, note = cb.emergence_view(src, key, L.TAB_EMERGENCE, ["show"], "fourier::corr", "output", "2")
    df = pd.DataFrame(data)
    assert set(df["probe"]) == {"fourier"} and set(df["degree"]) == {2} and set(df["site"]) == {"output"}
    n_runs = len(src.experiment(key).runs)
    assert len(df) == n_runs * len(PLANT.in_deg2 + PLANT.off_deg2)
    assert "of fourier · corr, site output, degree 2 (the pickers above" in note
    every, _, _ = cb.emergence_view(src, key, L.TAB_EMERGENCE, ["show"], "fourier::corr", "output", L.ALL_DEGREES)
    assert len(every) == n_runs * (len(PLANT.in_deg1 + PLANT.off_deg1) + len(PLANT.in_deg2 + PLANT.off_deg2))


def test_student_run_features_shade_its_own_schedule(src, dash_fixture):
    """Issue 25.4: on a student's features the window is mapped through its schedule (ce: none)."""
    key = dash_fixture.key
    args = ("fourier::corr", "output", "1", "linear", [], L.TAB_FEATURES)
    tl, _, heat, note = cb.features_view(src, key, "progressive-s0", *args)
    w = cb.student_window(src.metrics(key), ["progressive-s0"], cb.window_of(src.metrics(key), "parity"))
    shapes = [s for s in tl.layout.shapes if s.name == "teacher transition window"]
    assert [(s.x0, s.x1) for s in shapes] == [(w.start, w.end)] and f"student steps {w.start:,} to {w.end:,}" in note
    tl, _, _, note = cb.features_view(src, key, "ce-s0", *args)
    assert not tl.layout.shapes and "never learned from a teacher checkpoint inside" in note


def test_students_note_of_an_experiment_without_students(dash_fixture, fresh_copy):
    """Issue 25.9: a teacher-only (e.g. imported) experiment is not told about students' rows."""
    import shutil

    root = fresh_copy()
    for run in (root / dash_fixture.key / C.RUNS_DIR).iterdir():
        if run.name != "teacher":
            shutil.rmtree(run)
    acc, side, _, note = cb.students_view(
        DataSource(root), dash_fixture.key, "fourier::corr", "output", "1", "linear", [], L.TAB_STUDENTS
    )
    assert note.startswith("This experiment has no student runs") and "sweep may not have probed" not in note
    assert side.layout.meta["empty"]


def _steps_to(metrics: pd.DataFrame, run: str, target: float = C.TARGET_ACC) -> int:
    """Planted answer, computed here: the first evaluated step at or above target, else the last."""
    m = metrics[metrics["run"] == run].sort_values("step")
    hit = m[m["eval_acc"] >= target]
    return int(hit["step"].iloc[0] if len(hit) else m["step"].iloc[-1])


def test_findings_comparison_is_the_compare_commands(src, dash_fixture):
    """The panel's verdicts are `curriculens compare EXP A ce`'s: n, mean paired difference,
    95% interval and verdict, each student method against ce."""
    from curriculens.compare import compare
    from dashboard.data import method_comparison

    key = dash_fixture.key
    metrics = src.metrics(key)
    fam = src.emergence(key, probe="fourier")
    comp = method_comparison(fam[fam["metric"] == "corr"], metrics).set_index("method")
    assert comp.loc["teacher", "vs"] == "" and comp.loc["ce", "vs"] == ""
    text = str(cb.findings_view(src, key))
    for m, seeds in (("one-shot", (0, 1)), ("progressive", (0, 1)), ("two-shot", (0,))):
        res = compare(dash_fixture.exp, m, "ce", features=False)["steps"]
        row = comp.loc[m]
        runs = metrics.drop_duplicates("run").set_index("run")
        diffs = [
            _steps_to(metrics, a) - _steps_to(metrics, b)
            for s in seeds
            for a in runs.index[(runs["method"] == m) & (runs["seed"] == s)][:1]
            for b in runs.index[(runs["method"] == "ce") & (runs["seed"] == s)]
        ]
        assert row["vs"] == "ce" and row["n_pairs"] == res["interval"]["n"] == len(seeds) == len(diffs)
        assert row["diff_steps"] == pytest.approx(sum(diffs) / len(diffs)) == res["interval"]["estimate"]
        for k in ("lo", "hi"):
            want = res["interval"][k]
            assert (pd.isna(row[k]) and want is None and len(seeds) == 1) or row[k] == pytest.approx(want)
        assert row["verdict"] == res["verdict"] and f"-> {res['verdict']}" in text
        assert f"(n = {len(seeds)})" in text


def _plant_tokens(root, key) -> dict:
    """Write a planted ``tokens`` count into every metrics row of the copy: 1000 * step + 3."""
    from curriculens.io import read_jsonl

    planted = {}
    for metrics in (root / key / C.RUNS_DIR).glob(f"*/{C.METRICS_FILE}"):
        rows = read_jsonl(metrics)
        for r in rows:
            r[C.TOKENS_KEY] = 1000 * int(r["step"]) + 3
            planted[(metrics.parent.name, int(r["step"]))] = r[C.TOKENS_KEY]
        metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return planted


def test_x_axis_plots_against_planted_tokens(dash_fixture, fresh_copy):
    """Issue 27.2: where the metrics record tokens, the x-axis picker shows and the accuracy and
    feature figures plot against the tokens seen; elsewhere it is hidden and stays on steps."""
    key = dash_fixture.key
    plain = DataSource(dash_fixture.root)
    assert cb.x_unit_control(plain, key, L.X_TOKENS) == ({"display": "none"}, L.X_STEP)
    fig, _ = cb.teacher_view(plain, key, "linear", L.TAB_TEACHER, L.X_TOKENS)  # no tokens: steps, as before
    assert max(max(t.x) for t in fig.data if t.x is not None) == max(dash_fixture.teacher_steps)

    root = fresh_copy()
    tokens = _plant_tokens(root, key)
    src = DataSource(root)
    assert cb.x_unit_control(src, key, L.X_TOKENS) == ({"display": "block"}, L.X_TOKENS)
    assert cb.x_unit_control(src, key, None) == ({"display": "block"}, L.X_STEP)
    teacher_tokens = {tokens[("teacher", s)] for s in dash_fixture.teacher_steps}

    fig, note = cb.teacher_view(src, key, "linear", L.TAB_TEACHER, L.X_TOKENS)
    xs = {int(x) for t in fig.data if t.x is not None for x in t.x}
    assert teacher_tokens <= xs and max(xs) == max(teacher_tokens) and "tokens" in note
    assert all("tokens" in (ax.title.text or "") for ax in (fig.layout.xaxis, fig.layout.xaxis2))

    timeline, sites, heat, note = cb.features_view(
        src, key, "teacher", "fourier::corr", "output", "1", "linear", [], L.TAB_FEATURES, L.X_TOKENS
    )
    line = next(t for t in timeline.data if t.name == PLANT.in_deg1[0])
    assert [int(x) for x in line.x] == [tokens[("teacher", s)] for s in dash_fixture.teacher_steps]
    assert [int(x) for x in heat.data[0].x] == [tokens[("teacher", s)] for s in dash_fixture.teacher_steps]
    assert not timeline.layout.shapes and "tokens" in note  # the window is in steps: not shaded here
    steps_view = cb.features_view(
        src, key, "teacher", "fourier::corr", "output", "1", "linear", [], L.TAB_FEATURES, L.X_STEP
    )[0]
    assert [int(x) for x in next(t for t in steps_view.data if t.name == PLANT.in_deg1[0]).x] == list(
        dash_fixture.teacher_steps
    )

    acc, side, _, note = cb.students_view(
        src, key, "fourier::corr", "output", "1", "linear", [], L.TAB_STUDENTS, L.X_TOKENS
    )
    student_tokens = {v for (run, _), v in tokens.items() if run != "teacher"}
    xs = {int(x) for t in acc.data if t.x is not None for x in t.x}  # the students and the teacher's curve
    assert student_tokens <= xs <= student_tokens | teacher_tokens and max(xs) == max(teacher_tokens)
    side_xs = {int(x) for t in side.data if t.x is not None for x in t.x}
    assert side_xs and side_xs <= student_tokens and "tokens" in note


def test_warm_up_leaves_the_findings_computed(dash_fixture, monkeypatch):
    """Issue 25.10: with prefetch, the app computes the first page's findings at start-up, so
    the request that asks for them reads no probe rows (and gets the same panel)."""
    from dashboard import data as D
    from dashboard.app import warm_up

    reference = json.dumps(
        cb.findings_view(DataSource(dash_fixture.root), dash_fixture.key).to_plotly_json(), default=str
    )
    warm = DataSource(dash_fixture.root, prefetch=True)
    warm_up(warm).join(timeout=120)  # the experiment the page opens on: the fixture's

    def no_reads(*_a, **_k):
        raise AssertionError("probe rows read after the warm-up")

    monkeypatch.setattr(D.ResultsReader, "unit_rows", no_reads)
    got = json.dumps(cb.findings_view(warm, dash_fixture.key).to_plotly_json(), default=str)
    assert got == reference and "Teacher's in-support" in got
    with pytest.raises(AssertionError, match="probe rows read"):  # a cold source does read them
        cb.findings_view(DataSource(dash_fixture.root), dash_fixture.key)


def test_findings_name_a_teacher_that_ended_below_the_target(src, dash_fixture, fresh_copy):
    """The panel names a teacher whose last held-out accuracy is under the steps' target (its
    students' last teacher misses it), as `curriculens compare` does; the planted end decides."""
    from curriculens.io import read_jsonl

    key = dash_fixture.key
    last = src.metrics(key).query("run == 'teacher'").sort_values("step")["eval_acc"].dropna().iloc[-1]
    assert ("ended at" in str(cb.findings_view(src, key))) == (last < C.TARGET_ACC)
    root = fresh_copy()
    path = root / key / C.RUNS_DIR / "teacher" / C.METRICS_FILE
    rows = read_jsonl(path)
    evaluated = [r for r in rows if r.get("eval_acc") is not None]
    for r, acc in ((evaluated[-2], 0.99), (evaluated[-1], 0.625)):
        r["eval_acc"] = acc
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = str(cb.findings_view(DataSource(root), key))
    assert f"Teacher teacher ended at 0.625 held-out accuracy, below the {C.TARGET_ACC:g} target" in text
    # a task without a target (C.TASK_TARGETS: PCFG, text) names no teacher as below one
    from dashboard.findings import findings_block

    metrics = DataSource(root).metrics(key)
    assert "ended at" not in str(findings_block(None, metrics, None, None, "teacher", None))
    assert "ended at 0.625" in str(findings_block(None, metrics, None, None, "teacher", C.TARGET_ACC))
