"""The two-shot checkpoint sweep: student speed against the teacher checkpoint it started from.

A (2, T) sweep is a grid of two-shot students, one per teacher checkpoint (``curriculens grid
EXP --two-shot-steps all``). ``sweep_table`` measures each student's speed from its metrics:
the first evaluated step at which its held-out accuracy reaches ``target`` (NaN when it never
does within its budget) and its held-out loss at the end of its budget. ``two_shot_sweep``
draws that against the teacher checkpoint used (mean over seeds, one marker per seed; students
that never reached the target are drawn at the top as open markers), with the teacher's
accuracy and, when the results database has them, the teacher's in-support feature
correlations per degree (each scaled to its own peak, so their spikes line up) on a second
axis over the same steps.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from curriculens import constants as C
from dashboard.figures import METHOD_COLORS, PALETTE, new_subplots


def sweep_table(metrics: pd.DataFrame, target: float = C.TARGET_ACC) -> pd.DataFrame:
    """One row per two-shot student: run, seed, two_shot_step, steps_to_target (NaN if never),
    budget (its last evaluated step), final_loss (held-out loss at its last evaluation)."""
    from curriculens.curves import first_crossing

    cols = ["run", "seed", "two_shot_step", "steps_to_target", "budget", "final_loss"]
    two = metrics[metrics["method"] == C.METHOD_TWO_SHOT] if not metrics.empty else metrics
    if two.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for run, m in two.groupby("run", sort=False):
        m = m.sort_values("step")
        hit = first_crossing(m["step"], m["eval_acc"], target)
        rows.append(
            {
                "run": run,
                "seed": int(m["seed"].iloc[0]),
                "two_shot_step": int(m["two_shot_step"].iloc[0]),
                "steps_to_target": math.nan if hit is None else float(hit),
                "budget": int(m["step"].iloc[-1]),
                "final_loss": float(m["eval_loss"].iloc[-1]),
            }
        )
    return pd.DataFrame(rows, columns=cols).sort_values(["two_shot_step", "seed"], ignore_index=True)


def two_shot_sweep(
    metrics: pd.DataFrame,
    features: pd.DataFrame | None = None,
    *,
    target: float = C.TARGET_ACC,
    recommended: int | None = None,
    uirevision: str = "",
) -> go.Figure:
    """Student steps to ``target`` vs the teacher checkpoint it used (left axis) with the
    teacher's accuracy and feature spikes (right axis, 0-1).

    Args:
        metrics: ``dashboard.data.load_metrics`` rows (teacher and two-shot students).
        features: optional teacher feature curves, columns ``step``, ``label`` (e.g.
            ``deg 2 in-support``), ``value``; each label is scaled to its own maximum.
        recommended: a teacher checkpoint to mark (``curriculens recommend``'s pick).
    """
    table = sweep_table(metrics, target)
    fig = new_subplots(specs=[[{"secondary_y": True}]])
    color = METHOD_COLORS[C.METHOD_TWO_SHOT]
    if not table.empty:
        budget = float(table["budget"].max())
        reached = table[table["steps_to_target"].notna()]
        missed = table[table["steps_to_target"].isna()]
        fig.add_trace(
            go.Scatter(
                x=reached["two_shot_step"],
                y=reached["steps_to_target"],
                mode="markers",
                name="student (one per seed)",
                marker={"color": color, "size": 7, "opacity": 0.6},
                customdata=reached[["run"]],
                hovertemplate="teacher ckpt %{x}<br>steps to target %{y}<br>%{customdata[0]}<extra></extra>",
            ),
            secondary_y=False,
        )
        if not missed.empty:
            fig.add_trace(
                go.Scatter(
                    x=missed["two_shot_step"],
                    y=[budget] * len(missed),
                    mode="markers",
                    name=f"not reached in {budget:,.0f}",
                    marker={"color": color, "size": 8, "symbol": "circle-open"},
                    customdata=missed[["run"]],
                    hovertemplate="teacher ckpt %{x}<br>not reached<br>%{customdata[0]}<extra></extra>",
                ),
                secondary_y=False,
            )
        mean = table.fillna({"steps_to_target": budget}).groupby("two_shot_step")["steps_to_target"].mean()
        fig.add_trace(
            go.Scatter(
                x=mean.index,
                y=mean.values,
                mode="lines",
                name="mean over seeds (missed = budget)",
                line={"color": color, "width": 2},
            ),
            secondary_y=False,
        )
    teacher = metrics[metrics["role"] == C.ROLE_TEACHER].sort_values("step") if not metrics.empty else metrics
    if not teacher.empty:
        fig.add_trace(
            go.Scatter(
                x=teacher["step"],
                y=teacher["eval_acc"],
                mode="lines",
                name="teacher accuracy",
                line={"color": METHOD_COLORS[C.METHOD_TEACHER], "dash": "dash"},
            ),
            secondary_y=True,
        )
    if features is not None and not features.empty:
        for i, (label, f) in enumerate(features.groupby("label", sort=True)):
            f = f.sort_values("step")
            peak = float(f["value"].abs().max()) or 1.0
            fig.add_trace(
                go.Scatter(
                    x=f["step"],
                    y=f["value"] / peak,
                    mode="lines",
                    name=f"teacher {label} (/ peak)",
                    line={"color": PALETTE[(i + 1) % len(PALETTE)], "width": 1},
                ),
                secondary_y=True,
            )
    if recommended is not None:
        fig.add_vline(x=recommended, line={"color": "#d62728", "dash": "dot"}, annotation_text="recommended")
    fig.update_layout(
        title=f"Two-shot sweep: student steps to {target:.0%} vs the teacher checkpoint used",
        height=460,
        uirevision=uirevision or None,
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_xaxes(title_text="teacher checkpoint (step)")
    fig.update_yaxes(title_text=f"student steps to {target:.0%}", secondary_y=False)
    fig.update_yaxes(title_text="teacher accuracy / feature (scaled)", range=[0, 1.05], secondary_y=True)
    if table.empty:
        fig.add_annotation(
            text="No two-shot students: run `curriculens grid EXP --two-shot-steps all --two-shot-T T`",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
        )
    return fig


def teacher_feature_curves(rows: pd.DataFrame) -> pd.DataFrame:
    """From probe rows of the teacher (one probe/metric/site, with ``degree`` and ``in_support``):
    the mean in-support value per (degree, step), as ``step, label, value``."""
    if rows.empty or "in_support" not in rows:
        return pd.DataFrame(columns=["step", "label", "value"])
    ins = rows[rows["in_support"] == 1]
    if ins.empty:
        return pd.DataFrame(columns=["step", "label", "value"])
    agg = ins.groupby(["degree", "step"])["value"].mean().reset_index()
    agg["label"] = "deg " + agg["degree"].astype(int).astype(str) + " in-support"
    return agg[["step", "label", "value"]]


def sweep_figure(source, key: str, metrics: pd.DataFrame, *, target: float = C.TARGET_ACC) -> go.Figure:
    """``two_shot_sweep`` for experiment ``key`` of a ``dashboard.data.DataSource``, with the
    teacher's in-support Fourier correlations at the output when the results database has them."""
    from dashboard.data import ResultsUnavailable

    features = None
    exp = source.experiment(key)
    if exp.has_results:
        try:
            features = teacher_feature_curves(source.rows(key, "fourier", "corr", runs=["teacher"], site="output"))
        except ResultsUnavailable:
            features = None
    return two_shot_sweep(metrics, features, target=target)


def has_sweep(metrics: pd.DataFrame) -> bool:
    """True when the experiment holds two-shot students from at least two teacher checkpoints."""
    if metrics.empty or "two_shot_step" not in metrics:
        return False
    return metrics.loc[metrics["method"] == C.METHOD_TWO_SHOT, "two_shot_step"].nunique() > 1
