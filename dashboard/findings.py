"""The findings the page leads with: the teacher's transition, its features in the order they
appeared, and the method comparison (plain functions; ``findings_block`` builds the html).

A feature "appeared" by ``dashboard.data.appeared``: the summary's noise rule, and its null test
(``passes_null``) when the summary carries it. Each appearance comes with its interval: the
half-rise happened after the previous saved checkpoint and by the one reported, so the step is
known only to within ``(previous checkpoint, appear_step]``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from dash import html

from curriculens import constants as C
from curriculens.curves import Transition
from curriculens.findings import format_estimate
from dashboard.data import appeared, method_comparison
from dashboard.figures import saved_steps
from dashboard.selection import degree_name, describe_window, split_family

MAX_FEATURES = 8  # features listed in the panel; the rest are counted
_CELL = {"padding": "1px 12px 1px 0", "textAlign": "left", "whiteSpace": "nowrap"}
_HEAD = {**_CELL, "borderBottom": "1px solid #999"}
_COLUMN = {"flex": "1 1 420px", "maxWidth": "640px"}


def checkpoint_steps(metrics: pd.DataFrame, run: str) -> np.ndarray:
    """The sorted steps at which ``run`` saved a checkpoint (``figures.saved_steps``)."""
    if metrics.empty or "run" not in metrics:
        return np.array([], dtype=np.int64)
    return saved_steps(metrics[metrics["run"] == run])


def appearance_order(summary: pd.DataFrame, run: str, probe: str, metric: str, ckpts: np.ndarray) -> pd.DataFrame:
    """In-support series of ``run`` for (probe, metric) that appeared, earliest first.

    Columns: feature, site, degree, appear_step, after_step (the previous saved checkpoint, the
    interval's open end; -1 when the appearance is at the first checkpoint), peak_value."""
    cols = ["feature", "site", "degree", "appear_step", "after_step", "peak_value"]
    if summary.empty:
        return pd.DataFrame(columns=cols)
    s = summary[(summary["run"] == run) & (summary["probe"] == probe) & (summary["metric"] == metric)]
    if "in_support" in s:
        s = s[s["in_support"].fillna(0).astype(bool)]
    s = s[appeared(s)]
    if s.empty:
        return pd.DataFrame(columns=cols)
    steps = s["appear_step"].astype("int64").to_numpy()
    idx = np.searchsorted(ckpts, steps, side="left") - 1
    after = np.where(idx >= 0, ckpts[np.clip(idx, 0, None)] if len(ckpts) else -1, -1)
    out = s.assign(appear_step=steps, after_step=after)
    return out.sort_values(["appear_step", "degree", "feature"], kind="stable")[cols].reset_index(drop=True)


def _fmt_step(v: float) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{int(round(v)):,}"


def _fmt_acc(mean: float, sd: float) -> str:
    if mean is None or math.isnan(mean):
        return "—"
    return f"{mean:.3f}" + ("" if math.isnan(sd) else f" ± {sd:.3f}")


def _fmt_versus(r) -> str:
    """``vs B: +d [lo, hi] (n = k) -> verdict`` of a ``method_comparison`` row ("" without one)."""
    if not r.vs:
        return ""
    body = format_estimate(r.diff_steps, r.lo, r.hi, int(r.n_pairs), signed=True)
    return f"vs {r.vs}: {body} (n = {int(r.n_pairs)}) -> {r.verdict}"


def _table(head: tuple, rows: list[tuple]) -> html.Table:
    return html.Table(
        [html.Thead(html.Tr([html.Th(h, style=_HEAD) for h in head]))]
        + [html.Tbody([html.Tr([html.Td(x, style=_CELL) for x in r]) for r in rows])],
        style={"borderCollapse": "collapse", "fontSize": "12px", "margin": "2px 0 6px 0"},
    )


def teachers_below_lines(metrics: pd.DataFrame, target: float = C.TARGET_ACC) -> list[str]:
    """One line per teacher run whose last held-out accuracy is below ``target`` (the
    students' target: their last teacher misses it), by ``curriculens.compare.teachers_below``,
    as ``curriculens compare`` reports it; [] when none."""
    from curriculens.compare import records_from_metrics, teachers_below  # noqa: PLC0415 - torch-free

    return [
        f"Teacher {t['run']} ended at {t['final_acc']:.3f} held-out accuracy, below the {target:g} target: its "
        "students' last teacher misses it, so their steps to the target measure this teacher as much as their method."
        for t in teachers_below(records_from_metrics(metrics, target), target)
    ]


def findings_block(
    summary: pd.DataFrame | None,
    metrics: pd.DataFrame,
    window: Transition | None,
    family: str | None,
    teacher: str | None,
    target: float | None = C.TARGET_ACC,
) -> html.Div:
    """The findings panel: transition, the teacher's features in order, the method comparison.

    ``summary``: the emergence table (None when the experiment has no probe results);
    ``family``: the probe family compared (``probe::metric``); ``teacher``: the teacher run;
    ``target``: the task's target accuracy (``C.TASK_TARGETS``; None: the task has none, and
    no teacher is named as ending below it)."""
    parts: list = [html.B("Findings")]
    if window is None:
        parts.append(html.Div("Teacher: no phase transition detected in its curves."))
    else:
        saved = checkpoint_steps(metrics, teacher) if teacher else []
        parts.append(html.Div(f"Teacher's transition: {describe_window(window, saved)}."))
    if target is not None:
        parts += [html.Div(line, style={"color": "#a33"}) for line in teachers_below_lines(metrics, target)]
    probe, metric = split_family(family)
    if summary is None or probe is None:
        parts.append(html.Div("No probe results yet: no feature findings."))
        return html.Div(parts, id="findings-body")
    rule = (
        "appear_step set and passes its null (multiple-comparison controlled)"
        if "passes_null" in summary
        else "appear_step set: the rise beat the series' noise threshold (no null test in this summary)"
    )
    word = degree_name(probe)
    columns: list = []
    if teacher is not None:
        order = appearance_order(summary, teacher, probe, metric, checkpoint_steps(metrics, teacher))
        if order.empty:
            columns.append(html.Div(f"Teacher's in-support {probe} · {metric} features: none appeared ({rule})."))
        else:
            rows = [
                (
                    str(r.feature),
                    r.site,
                    "—" if pd.isna(r.degree) else str(int(r.degree)),
                    f"{int(r.appear_step):,}",
                    f"({int(r.after_step):,}, {int(r.appear_step):,}]"
                    if r.after_step >= 0
                    else "at the first checkpoint",
                    f"{r.peak_value:.3g}",
                )
                for r in order.head(MAX_FEATURES).itertuples(index=False)
            ]
            more = len(order) - MAX_FEATURES
            block = [
                html.Div(
                    f"Teacher's in-support {probe} · {metric} features in the order they appeared ({rule}); "
                    "the interval runs from the previous saved checkpoint to the one that showed it:"
                ),
                _table(("feature", "site", word, "appears", "interval (steps)", "peak"), rows),
            ]
            if more > 0:
                block.append(html.Div(f"... and {more} more (Emergence table tab)."))
            columns.append(html.Div(block, style=_COLUMN))
    fam = summary[(summary["probe"] == probe) & (summary["metric"] == metric)]
    comp = method_comparison(fam, metrics)
    if not comp.empty:
        rows = [
            (
                r.method,
                str(r.runs),
                r.appeared,
                _fmt_step(r.median_appear_step),
                _fmt_acc(r.final_acc, r.final_acc_sd),
                _fmt_versus(r),
            )
            for r in comp.itertuples(index=False)
        ]
        columns.append(
            html.Div(
                [
                    html.Div(f"Methods compared on {probe} · {metric} (in-support series, pooled over seeds):"),
                    _table(
                        (
                            "method",
                            "runs",
                            "appeared",
                            "median appears",
                            "final accuracy (mean ± sd)",
                            f"steps to {C.TARGET_ACC:g} accuracy, A - B (n, 95% interval): verdict",
                        ),
                        rows,
                    ),
                    html.Div(
                        "Paired over runs sharing teacher and seed, as `curriculens compare EXP A B` reports it.",
                        style={"fontSize": "11px", "color": "#666"},
                    ),
                ],
                style=_COLUMN,
            )
        )
    parts.append(html.Div(columns, style={"display": "flex", "flexWrap": "wrap", "gap": "28px"}))
    return html.Div(parts, id="findings-body")
