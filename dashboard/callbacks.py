"""The dashboard's callbacks: pure functions of a ``DataSource`` and the page's inputs.

``make_app`` binds each to its app's ``DataSource`` and registers it through ``guarded``,
which turns any exception into a plain sentence on the page (and a log record with the
traceback on the server); the browser never sees a traceback. Tests call these functions
directly with a ``DataSource`` over a fixture experiment.

Views hidden behind another tab raise ``PreventUpdate`` and are computed when their tab opens.
The only state they touch is the ``DataSource``'s cache (and its background prefetch of the
emergence table once a view is drawn).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html, no_update
from dash.exceptions import PreventUpdate

from curriculens import constants as C
from curriculens.curves import describe_rule, transition_rule
from curriculens.errors import CurriculensError
from dashboard import figures as F
from dashboard import layout as L
from dashboard.data import DataSource, ResultsUnavailable
from dashboard.findings import findings_block
from dashboard.selection import (
    ALL_DEGREES,
    FAMILY_SEP,
    _family_rows,
    ckpt_prefix,
    default_degree,
    default_family,
    degree_name,
    degree_value,
    describe_window,
    family_options,
    is_log,
    keep,
    selection_title,
    side_by_side_labels,
    site_value,
    split_family,
    student_groups,
    student_window,
    student_windows,
    table_records,
    uirev,
    window_of,
)
from dashboard.sweep import has_sweep, sweep_figure

log = logging.getLogger(__name__)

_CELL = {"padding": "1px 10px 1px 0", "textAlign": "left", "whiteSpace": "nowrap"}


# --- error handling -----------------------------------------------------------------------
def plain_message(exc: BaseException) -> str:
    """One sentence for the page: the message of a user-facing error, else a generic line."""
    if isinstance(exc, CurriculensError):
        return str(exc).splitlines()[0] if str(exc) else "This view could not be drawn."
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"This view could not be drawn ({type(exc).__name__}{': ' + text[:200] if text else ''}). The server log has the details."


def guarded(fn: Callable[..., Any], fallback: Callable[[str], Any]) -> Callable[..., Any]:
    """Wrap a callback: ``PreventUpdate`` passes through; any other exception is logged and
    replaced by ``fallback(message)``."""

    @functools.wraps(fn)
    def wrapper(*args):
        try:
            return fn(*args)
        except PreventUpdate:
            raise
        except Exception as exc:  # noqa: BLE001 - the page must keep working
            if isinstance(exc, CurriculensError):
                log.warning("%s: %s", getattr(fn, "__name__", "callback"), exc)
            else:
                log.exception("callback %s failed", getattr(fn, "__name__", "callback"))
            return fallback(plain_message(exc))

    return wrapper


# --- page-level callbacks -----------------------------------------------------------------
def list_experiments(source: DataSource, _n_clicks: Any, current: str | None) -> tuple[list, str | None, str]:
    """Reload button -> experiment options, the selected one, and a page note."""
    exps = source.experiments()
    if not exps:
        return (
            [],
            None,
            (
                f"No experiments found under {source.root}. Train one first (for example "
                f"`curriculens demo`), then press Reload."
            ),
        )
    options = []
    for e in exps:
        status = "probe results" if e.has_results else "no probe results"
        options.append({"label": f"{e.name} — {e.task_label} — {len(e.runs)} runs, {status}", "value": e.key})
    keys = [e.key for e in exps]
    value = current if current in keys else keys[0]
    return options, value, ""


def experiment_overview(source: DataSource, key: str | None) -> tuple:
    """Experiment -> summary block, probe-family options/value, run options/value, page note."""
    if not key:
        return html.Div(), [], None, [], None, ""
    exp = source.experiment(key)
    metrics = source.metrics(key)
    notes = list(exp.problems)
    header = [
        html.B(exp.name),
        f" — task: {exp.task_label}",
        html.Br(),
    ]
    rows = []
    for r in exp.runs:
        m = metrics[metrics["run"] == r.name] if not metrics.empty else metrics
        last = m.iloc[-1] if len(m) else None
        acc = f"{last['eval_acc']:.3f}" if last is not None and "eval_acc" in m and pd.notna(last["eval_acc"]) else "—"
        state = (
            "done"
            if r.done
            else (f"running (step {int(last['step']):,} of {r.steps:,})" if last is not None else "not started")
        )
        rows.append(
            html.Tr(
                [
                    html.Td(x, style=_CELL)
                    for x in (r.name, r.role, r.label, str(r.seed), r.model, f"{r.steps:,}", state, acc)
                ]
            )
        )
    head = ("run", "role", "method", "seed", "model", "steps", "status", "last acc")
    table = html.Table(
        [html.Thead(html.Tr([html.Th(h, style={**_CELL, "borderBottom": "1px solid #999"}) for h in head]))]
        + [html.Tbody(rows)],
        style={"borderCollapse": "collapse", "fontSize": "12px", "margin": "4px 0"},
    )
    fam_opts, fam_val = [], None
    try:
        status = source.status(key)
        catalog = source.catalog(key)
        fam_opts, fam_val = family_options(catalog), default_family(catalog)
        results_line = f"Probe results: {status.describe()}."
        if catalog.empty:
            notes.append("The results database holds no probe rows yet.")
    except ResultsUnavailable as exc:
        results_line = f"Probe results: {exc}"
    run_opts = [{"label": f"{r.name} ({r.label})", "value": r.name} for r in exp.runs]
    run_val = exp.teacher.name if exp.teacher else (exp.runs[0].name if exp.runs else None)
    summary = html.Div(header + [table, html.Div(results_line, style={"marginTop": "4px"})])
    return summary, fam_opts, fam_val, run_opts, run_val, " ".join(notes)


def family_controls(
    source: DataSource,
    key: str | None,
    family: str | None,
    run: str | None = None,
    site_now: str | None = None,
    degree_now: Any = None,
) -> tuple:
    """Probe family (and the run shown) -> site options/value, degree options/value and the
    degree control's label (what the probe's ``degree`` means: ``degree_name``). Only the
    sites ``run`` has rows for are offered (all sites when no run is selected).

    The current site and degree (``site_now``, ``degree_now``) are kept when the new options
    have them, so switching the run compares like with like. Otherwise the site is ``output``
    (or the first) and the degree the lowest where ``run`` has an in-support feature that
    appeared (``selection.default_degree``), else all degrees apart."""
    if not key or not family:  # no value: nothing picked here for the next experiment to keep
        return [], None, [{"label": "all", "value": ALL_DEGREES}], None, "Degree"
    probe, _ = split_family(family)
    word = degree_name(probe)
    rows = _family_rows(source.catalog(key), family)
    if run and "runs" in rows:
        mine = rows[[run in r for r in rows["runs"]]]
        rows = mine if len(mine) else rows
    sites = sorted(rows["site"].unique(), key=F.natural_key)
    site_opts = [{"label": s, "value": s} for s in sites]
    site_val = keep(site_now, site_opts, "output" if "output" in sites else (sites[0] if sites else None))
    degrees = sorted({d for ds in rows["degrees"] for d in ds})
    deg_opts = [{"label": f"all ({word}s apart)" if degrees else "all", "value": ALL_DEGREES}] + [
        {"label": f"{word} {d}", "value": str(d)} for d in degrees
    ]
    deg_val = keep(degree_now, deg_opts, None)
    if deg_val is None:
        summary = _summary_or_none(source, key, probe, [run] if run else None)
        deg_val = default_degree(summary, run, family, site_val) if degrees else ALL_DEGREES
    return site_opts, site_val, deg_opts, deg_val, word[0].upper() + word[1:]


def _summary_or_none(
    source: DataSource, key: str, probe: str, runs: Sequence[str] | None = None
) -> pd.DataFrame | None:
    """The emergence table of ``probe`` (``runs``), or None when the results cannot be read
    (the views say why)."""
    try:
        return source.emergence(key, probe, runs)
    except ResultsUnavailable:
        return None


def findings_view(source: DataSource, key: str | None) -> html.Div:
    """Experiment -> the findings panel (``dashboard.findings``) over the default probe family."""
    if not key:
        return html.Div()
    exp = source.experiment(key)
    metrics = source.metrics(key)
    window = window_of(metrics, exp.task_name)
    summary, family = None, None
    if exp.has_results:
        try:
            family = default_family(source.catalog(key))
        except ResultsUnavailable:
            family = None
        summary = _summary_or_none(source, key, split_family(family)[0]) if family else None
    teacher = exp.teacher.name if exp.teacher else None
    return findings_block(summary, metrics, window, family, teacher, C.TASK_TARGETS.get(exp.task_name))


def graph_configs(image_format: str, key: str | None) -> tuple:
    """Every graph's config (``layout.graph_config``), in ``layout.GRAPHS`` order."""
    return tuple(L.graph_config(gid, image_format, key) for gid in L.GRAPHS)


# --- the x axis: steps or tokens -------------------------------------------------------------
def has_tokens(metrics: pd.DataFrame) -> bool:
    """Whether the experiment's metrics record training tokens (imported runs whose source states them)."""
    return C.TOKENS_KEY in metrics and bool(metrics[C.TOKENS_KEY].notna().any())


def x_unit_control(source: DataSource, key: str | None, current: str | None) -> tuple[dict, str]:
    """Experiment -> the x-axis picker's style and value: shown (keeping ``current``) where the
    metrics record tokens, hidden and on steps otherwise."""
    if not key or not has_tokens(source.metrics(key)):
        return {"display": "none"}, L.X_STEP
    return {"display": "block"}, current if current in (L.X_STEP, L.X_TOKENS) else L.X_STEP


def on_tokens(frame: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (run, step, ...) with ``step`` replaced by the tokens the run had seen at that
    step (``metrics``' tokens column); rows of steps without a token count are dropped."""
    if frame.empty or "run" not in frame:
        return frame
    tok = metrics[["run", "step", C.TOKENS_KEY]].dropna(subset=[C.TOKENS_KEY]).drop_duplicates(["run", "step"])
    tok = tok.rename(columns={C.TOKENS_KEY: "_tokens"})
    out = frame.drop(columns=[C.TOKENS_KEY], errors="ignore").merge(tok, on=["run", "step"], how="inner")
    return out.assign(step=out["_tokens"].astype("int64")).drop(columns="_tokens")


def _x_title(fig: go.Figure) -> go.Figure:
    """Every x axis titled in tokens instead of steps."""
    fig.for_each_xaxis(
        lambda ax: ax.update(
            title_text=(ax.title.text or "tokens").replace("steps", "tokens").replace("step", "tokens")
        )
    )
    return fig


def _use_tokens(x_unit: str | None, metrics: pd.DataFrame) -> bool:
    return x_unit == L.X_TOKENS and has_tokens(metrics)


TOKENS_NOTE = "x axis: training tokens seen (the transition window is shaded on the step axis only)."


# --- views --------------------------------------------------------------------------------
def teacher_view(
    source: DataSource, key: str | None, axis: str, tab: str, x_unit: str = L.X_STEP
) -> tuple[go.Figure, str]:
    if tab != L.TAB_TEACHER:
        raise PreventUpdate
    if not key:
        return F.empty_figure("Pick an experiment."), ""
    metrics = source.metrics(key)
    task_name = source.experiment(key).task_name
    rule = transition_rule(task_name)
    window = window_of(metrics, task_name)
    if _use_tokens(x_unit, metrics):
        fig = F.teacher_overview(
            on_tokens(metrics, metrics), None, log_x=is_log(axis), uirevision=uirev(key, "teacher", axis, x_unit)
        )
        source.prefetch_emergence(key)
        return _x_title(fig), TOKENS_NOTE
    fig = F.teacher_overview(metrics, window, log_x=is_log(axis), uirevision=uirev(key, "teacher", axis))
    if window is None:
        text = (
            f"No phase transition detected in the teacher's curves. {describe_rule(rule)} "
            "Under the accuracy rule the curve must move by at least 0.05 between its first and last tenth; "
            "under the loss-drop rule the loss must show a plateau, a sharp drop and a slow phase."
        )
    else:
        saved = F.saved_steps(metrics[metrics["role"] == C.ROLE_TEACHER])
        text = (
            f"Transition window (shaded): {describe_window(window, saved)}. {describe_rule(rule)} "
            "Marks 1 2 3: the saved checkpoints nearest its start, middle and end."
        )
    source.prefetch_emergence(key)  # the page is drawn: warm the emergence tab in the background
    return fig, text


def features_view(
    source: DataSource,
    key: str | None,
    run: str | None,
    family: str | None,
    site: str | None,
    degree: Any,
    axis: str,
    ylog: Sequence[str],
    tab: str,
    x_unit: str = L.X_STEP,
    *,
    draw_sites: bool = True,
) -> tuple:
    """(timeline, per-site overview, heatmap, note) of one run's probe family at one site and
    degree. The overview shows every site and degree, so it depends on neither picker:
    ``draw_sites=False`` (the app's choice when only they changed) returns ``no_update`` for it
    instead of drawing it again."""
    if tab != L.TAB_FEATURES:
        raise PreventUpdate
    probe, metric = split_family(family)
    if key and probe is None and source.catalog(key).empty:  # raises ResultsUnavailable: no/unreadable database
        msg = "The results database holds no probe rows yet."
        return F.empty_figure(msg), F.empty_figure(""), F.empty_figure(""), msg
    if not key or not run or probe is None:
        msg = "Pick an experiment, a run and a probe to see feature timelines."
        return F.empty_figure(msg), F.empty_figure(""), F.empty_figure(""), msg if key else ""
    exp = source.experiment(key)
    log_x, log_y = is_log(axis), "log" in (ylog or [])
    metrics = source.metrics(key)
    teacher_window = window_of(metrics, exp.task_name)
    is_student = any(r.name == run and r.role == C.ROLE_STUDENT for r in exp.runs)
    window = student_window(metrics, [run], teacher_window) if is_student else teacher_window
    site, deg = site_value(site), degree_value(degree)
    prefix = exp.ckpt_display(run)
    sel = selection_title(probe, metric, site, deg)
    # one query for the three graphs; the per-site view shows every degree (the degrees' order in one picture)
    all_sites = source.rows(key, probe, metric, runs=[run])
    rows = all_sites[all_sites["site"] == site] if site is not None else all_sites
    if deg is not None and "degree" in rows:
        rows = rows[rows["degree"] == deg]
    tokens = _use_tokens(x_unit, metrics)
    if tokens:  # the rows' steps become the tokens seen; the window (in steps) is not shaded
        rows, all_sites, window, prefix = on_tokens(rows, metrics), on_tokens(all_sites, metrics), None, ""
    rev = uirev(key, "features", run, family, site, degree, axis, log_y, x_unit if tokens else "")
    timeline = F.feature_timeline(
        rows,
        title=f"{run}: {sel}",
        window=window,
        log_x=log_x,
        log_y=log_y,
        ckpt_prefix=prefix,
        y_title=metric,
        uirevision=rev,
    )
    sites = (
        F.site_timeline(
            all_sites,
            title=f"{run}: {probe} · {metric} per site",
            window=window,
            log_x=log_x,
            ckpt_prefix=prefix,
            y_title=metric,
            uirevision=rev,
            degree_word=degree_name(probe),
        )
        if draw_sites
        else no_update
    )
    heat = F.feature_heatmap(
        rows, title=f"{run}: {sel}, feature x step", log_x=log_x, ckpt_prefix=prefix, uirevision=rev, window=window
    )
    text = "" if not rows.empty else f"No {sel} rows for run {run} yet."
    if not rows.empty:
        text = " ".join(t for t in (_window_note(window, teacher_window, is_student), metric_note(probe, metric)) if t)
    source.prefetch_emergence(key)
    if tokens:
        sites = _x_title(sites) if draw_sites else sites
        return _x_title(timeline), sites, _x_title(heat), f"{TOKENS_NOTE} {text}".strip()
    return timeline, sites, heat, text


def students_view(
    source: DataSource,
    key: str | None,
    family: str | None,
    site: str | None,
    degree: Any,
    axis: str,
    ylog: Sequence[str],
    tab: str,
    x_unit: str = L.X_STEP,
) -> tuple:
    if tab != L.TAB_STUDENTS:
        raise PreventUpdate
    if not key:
        msg = "Pick an experiment."
        return F.empty_figure(msg), F.empty_figure(""), F.empty_figure(""), ""
    exp = source.experiment(key)
    metrics = source.metrics(key)
    window = window_of(metrics, exp.task_name)
    log_x, log_y = is_log(axis), "log" in (ylog or [])
    rev = uirev(key, "students", axis)
    students = [r for r in exp.runs if r.role == C.ROLE_STUDENT]
    windows = student_windows(metrics, student_groups(students), window)
    tokens = _use_tokens(x_unit, metrics)
    if tokens:  # accuracy and features against the tokens seen; the windows (in steps) are not shaded
        acc = _x_title(F.students_accuracy(on_tokens(metrics, metrics), {}, log_x=log_x, uirevision=f"{rev}|{x_unit}"))
    else:
        acc = F.students_accuracy(metrics, windows, log_x=log_x, uirevision=rev)
    if has_sweep(metrics):  # a (2, T) sweep: student speed vs the checkpoint used (dashboard.sweep)
        two = sweep_figure(source, key, metrics)
    else:
        two = F.two_shot_accuracy(metrics, log_x=log_x, uirevision=rev)
    notes = []
    probe, metric = split_family(family)
    if not students:
        side = F.empty_figure("This experiment has no student runs: nothing to compare.")
        notes.append("This experiment has no student runs (only its teacher's features can be shown).")
    elif probe is None:
        side = F.empty_figure("No probe results to compare the students' features.")
    else:
        site_v, deg = site_value(site), degree_value(degree)
        labels = side_by_side_labels(students)
        panels, prefixes = {}, {}
        sel = selection_title(probe, metric, site_v, deg)
        try:
            for lab in labels:
                runs = [r.name for r in students if r.label == lab]
                panels[lab] = source.rows(key, probe, metric, runs=runs, site=site_v, degree=deg)
                prefixes[lab] = ckpt_prefix(exp, runs)
        except ResultsUnavailable as exc:  # the accuracy panels need no probe results: keep them
            side = F.empty_figure(str(exc))
            notes.append(str(exc))
        else:
            if tokens:
                panels = {lab: on_tokens(p, metrics) for lab, p in panels.items()}
            side = F.students_features(
                panels,
                title=f"Students' features side by side: {sel}",
                window=None if tokens else window,
                log_x=log_x,
                log_y=log_y,
                ckpt_prefixes={lab: "" for lab in prefixes} if tokens else prefixes,
                y_title=metric,
                uirevision=uirev(key, "side", family, site, degree, axis, log_y, x_unit if tokens else ""),
                windows={} if tokens else windows,
            )
            if tokens:
                side = _x_title(side)
            if all(p.empty for p in panels.values()):
                notes.append(
                    _no_student_rows(
                        source, key, probe, metric, site_v, sel, [r.name for r in students if r.label in panels]
                    )
                )
    if window is not None and students:
        notes.append(
            f"The teacher's transition (teacher steps {window.start:,} to {window.end:,}) is shaded on each "
            "student's own step axis where its schedule used those teacher checkpoints: progressive's stretch, "
            "two-shot's first stage when its checkpoint is inside (up to the switch); ce and one-shot never do, "
            "so they are not shaded."
        )
    if probe is not None:
        notes.append(metric_note(probe, metric))
        source.prefetch_emergence(key)
    if tokens:
        notes.insert(0, TOKENS_NOTE)
    return acc, side, two, " ".join(notes)


def _window_note(window, teacher_window, is_student: bool) -> str:
    if teacher_window is None:
        return ""
    if not is_student:
        return f"Shaded: the teacher's transition window (steps {teacher_window.start:,} to {teacher_window.end:,})."
    if window is None:
        return "Not shaded: this student never learned from a teacher checkpoint inside the teacher's window."
    return (
        f"Shaded: student steps {window.start:,} to {window.end:,}, where this student learned from teacher "
        f"checkpoints inside the teacher's window (teacher steps {teacher_window.start:,} to {teacher_window.end:,})."
    )


METRIC_NOTES = {
    ("fourier", "corr"): (
        "corr (Fourier) = |mean over inputs x of chi_A(x) p(x)|: the correlation of the model's class-1 "
        "probability p with the monomial chi_A(x) = prod of x_i over i in A (x in {-1, +1}^n); in support = "
        "A inside the parity's support S."
    ),
}


def metric_note(probe: str | None, metric: str | None) -> str:
    """What a probe metric means, for the page (``METRIC_NOTES``); "" when not described."""
    return METRIC_NOTES.get((probe, metric), "")


def _no_student_rows(
    source: DataSource, key: str, probe: str, metric: str, site: str | None, sel: str, runs: Sequence[str]
) -> str:
    """Why the students' panel is empty: a site their models do not have (it can never fill),
    or rows not probed yet."""
    fam = _family_rows(source.catalog(key), f"{probe}{FAMILY_SEP}{metric}")
    if site is not None and "runs" in fam:
        at = fam[fam["site"] == site]
        probed = {r for rs in fam["runs"] for r in rs}
        if any(r in probed for r in runs) and not any(r in rs for rs in at["runs"] for r in runs):
            return f"The students have no site {site} (their models have other layers): pick one of their sites."
    return f"No {sel} rows for the students yet (the sweep may not have probed them)."


def emergence_view(
    source: DataSource,
    key: str | None,
    tab: str,
    off_support: Sequence[str] | None = (),
    family: str | None = None,
    site: str | None = None,
    degree: Any = None,
) -> tuple[list, list, str]:
    """The emergence table of the probe family, site and degree picked above (each that is
    set); off-support series (the null that sets each in-support threshold) are hidden unless
    ``off_support`` is ticked, as in ``curriculens summary``. Rows come in the summary's order
    (feature ids in natural order). The CSV button saves the whole table."""
    if tab != L.TAB_EMERGENCE:
        raise PreventUpdate
    if not key:
        return [], [], "Pick an experiment."
    full = source.emergence(key)
    probe, metric = split_family(family)
    picked = []
    if probe is not None and not full.empty:
        full = full[(full["probe"] == probe) & (full["metric"] == metric)]
        picked.append(f"{probe} · {metric}")
        site_v, deg = site_value(site), degree_value(degree)
        if site_v is not None:
            full = full[full["site"] == site_v]
            picked.append(f"site {site_v}")
        if deg is not None:
            full = full[full["degree"] == deg]
            picked.append(f"{degree_name(probe)} {deg}")
    hidden = full["in_support"] == 0
    df = full if off_support else full[~hidden.fillna(False).astype(bool)]
    cols = []
    for c in df.columns:  # types from the frame, so new summary columns show right too
        numeric = pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        col = {"name": c, "id": c, "type": "numeric" if numeric else "text"}
        if numeric and pd.api.types.is_float_dtype(df[c]):
            col["format"] = {"specifier": ".4g"}
        cols.append(col)
    scope = f" of {', '.join(picked)} (the pickers above; the CSV button saves every row)" if picked else ""
    text = (
        f"{len(df):,} trajectories{scope} of primary metrics. appear_step = the first step at which the value has made "
        "half of its largest move away from the first checkpoint (if that move exceeds threshold); empty = "
        "never. peak_step / peak_value = that largest move. Type in the header row to filter "
        "(e.g. > 100), click a column name to sort."
    )
    if not off_support and hidden.any():
        text += (
            f" {int(hidden.sum()):,} off-support series are hidden: they are the null that sets each in-support "
            'threshold (tick "show off-support series" to list them).'
        )
    if df.empty:
        text = "No probe rows yet, so no emergence table."
    return table_records(df), cols, text


def download_emergence(source: DataSource, n_clicks: Any, key: str | None) -> tuple[dict, str]:
    """Button -> the emergence table as CSV (``dcc.Download`` data) and a note."""
    if not n_clicks or not key:
        raise PreventUpdate
    df = source.emergence(key)
    return dcc.send_data_frame(df.to_csv, f"{L.file_stem(key)}_emergence.csv", index=False), f"{len(df):,} rows saved."


def download_rows(source: DataSource, n_clicks: Any, key: str | None) -> tuple[dict, str]:
    """Button -> every probe row as CSV and a note."""
    if not n_clicks or not key:
        raise PreventUpdate
    df = source.all_rows(key)
    return dcc.send_data_frame(df.to_csv, f"{L.file_stem(key)}_probe_rows.csv", index=False), f"{len(df):,} rows saved."
