"""Plain figure builders shared by the dashboard and ``curriculens export``.

Each builder takes tidy DataFrames (``dashboard.data``: metrics rows, probe rows) and returns a
``plotly.graph_objects.Figure``; none reads files or keeps state. The builders know nothing
about parity or PCFG: a feature is whatever the ``feature`` column names, grouped by the
optional ``degree`` and ``in_support`` columns.

Panels (paper spec section 9):

- ``teacher_accuracy``: F2a, teacher accuracy with the transition window shaded, the saved
  checkpoints nearest its start / middle / end marked 1 2 3 (``window_checkpoints``), and the checkpoint each two-shot student
  actually started from (its config's ``two_shot_step``) marked with a diamond.
- ``teacher_overview``: accuracy and loss of the teacher, one above the other.
- ``feature_timeline``: F2b / F3b, one line per in-support feature and a "Rest" mean +- sd
  band over the off-support ones (or the top features by peak and a band for the rest).
- ``site_timeline``: one probe metric per site (mean over the features in scope).
- ``feature_heatmap``: feature x step.
- ``students_accuracy``: F1a, every method's mean +- sd over seeds, the teacher dashed.
- ``two_shot_accuracy``: F2c, one curve per chosen teacher checkpoint of the two-shot students.
- ``students_features``: feature timelines of several students side by side, shared axes.

Notes:
    Layout shapes (the shaded window) take data coordinates on log axes too; annotations
    would not, so labels ride on shapes or on scatter text. On a log step axis step 0 cannot
    be drawn: lines skip it and the heatmap drops that column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from curriculens import constants as C
from curriculens.curves import Transition
from training.experiment import two_shot_label

METHOD_COLORS = {
    C.METHOD_TEACHER: "#000000",
    C.METHOD_CE: "#1f77b4",
    C.METHOD_ONE_SHOT: "#ff7f0e",
    C.METHOD_PROGRESSIVE: "#2ca02c",
    C.METHOD_TWO_SHOT: "#9467bd",
}
PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
    "#ff7f0e", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354",
)  # fmt: skip
REST_COLOR = "#7f7f7f"
ACC_AXIS = {"autorangeoptions": {"clipmin": 0.0, "clipmax": 1.02}}  # an accuracy axis never leaves [0, 1]
WINDOW_FILL = "rgba(255, 160, 0, 0.18)"
WINDOW_NAME = "teacher transition window"
MARK_NAMES = ("start", "middle", "end")
MARKS_NAME = "transition checkpoints (saved)"
MAX_POINTS = 400  # per trace / heatmap column count before thinning
MAX_LABELLED_ROWS = 120  # heatmap rows that still get a label each
FEW_STEPS = 16  # heatmap columns up to which each column gets its own tick
_AXIS = {
    "gridcolor": "#EBF0F8",
    "linecolor": "#EBF0F8",
    "zerolinecolor": "#EBF0F8",
    "zerolinewidth": 2,
    "ticks": "",
    "automargin": True,
    "title": {"standoff": 12},
}
# The look of plotly_white, small: assigning plotly's own templates deep-copies ~6 kB per figure
# (~25 ms), which dominated the server time of a page with many figures.
TEMPLATE = {
    "layout": {
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": {"color": "#2a3f5f"},
        "hoverlabel": {"align": "left"},
        "xaxis": _AXIS,
        "yaxis": _AXIS,
    }
}


def new_figure(data=None) -> go.Figure:
    """An empty figure with the dashboard's template (never plotly's default, see ``TEMPLATE``)."""
    return go.Figure(data=data, layout={"template": TEMPLATE})


def new_subplots(**kwargs) -> go.Figure:
    return make_subplots(figure=new_figure(), **kwargs)


METHOD_ORDER = C.METHODS
LINE_DASH = {"teacher": "dash", C.METHOD_CE: "dot"}  # ce dotted: it can lie exactly on one-shot (both at chance)


# --- helpers ------------------------------------------------------------------------------
def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def natural_key(text: str) -> tuple:
    """Sort ``"0_10"`` after ``"0_9"``, ``"n10"`` after ``"n3"``."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(text)) if t != "")


def ckpt_hover(prefix: str | None) -> str:
    """Hover line naming the checkpoint of the hovered step: ``<prefix>step_%{x:09d}``."""
    if not prefix:
        return ""
    return f"<br>{prefix}{C.CKPT_PREFIX}%{{x:0{C.CKPT_STEP_DIGITS}d}}"


def thin_steps(steps: Sequence[int], max_points: int = MAX_POINTS, log: bool = False) -> np.ndarray:
    """At most ``max_points`` of the sorted unique ``steps``: evenly spaced in index space
    (or in log space when ``log``), always keeping the first and the last."""
    s = np.unique(np.asarray(steps, dtype=np.int64))
    if len(s) <= max_points:
        return s
    if log:
        pos = s[s > 0].astype(float)
        targets = np.geomspace(pos[0], pos[-1], max_points)
        idx = np.unique(np.searchsorted(s, targets).clip(0, len(s) - 1))
    else:
        idx = np.unique(np.linspace(0, len(s) - 1, max_points).round().astype(int))
    return s[np.unique(np.concatenate([[0, len(s) - 1], idx]))]


def _thin_frame(df: pd.DataFrame, log_x: bool, max_points: int = MAX_POINTS) -> pd.DataFrame:
    if df.empty or df["step"].nunique() <= max_points:
        return df
    keep = thin_steps(df["step"].to_numpy(), max_points, log_x)
    return df[df["step"].isin(keep)]


def empty_figure(message: str, *, height: int = 320, title: str = "") -> go.Figure:
    """A figure with no axes that says ``message`` in the middle."""
    fig = new_figure()
    fig.add_annotation(
        text=message, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font=dict(size=14, color="#555")
    )
    fig.update_layout(
        title=title or None,
        height=height,
        margin=dict(l=30, r=30, t=50 if title else 20, b=30),
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
        meta={"empty": True, "message": message},
    )
    return fig


def _style(
    fig: go.Figure, *, title: str, log_x: bool, uirevision: str = "", height: int = 420, x_title: str = "step"
) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left"),
        height=height,
        margin=dict(l=60, r=20, t=60, b=50),
        hovermode="closest",
        legend=dict(orientation="v", yanchor="top", y=1.0, x=1.01, font=dict(size=11)),
        uirevision=uirevision or None,
    )
    fig.update_xaxes(type="log" if log_x else "linear", title_text=x_title, showgrid=True)
    return fig


def shade_window(
    fig: go.Figure,
    window: Transition | None,
    *,
    row=None,
    col=None,
    log_x: bool = False,
    label: str = "teacher transition",
    fill: str = WINDOW_FILL,
    outline: bool = False,
) -> go.Figure:
    """Shade ``[window.start, window.end]`` on the step axis (a layout shape named
    ``WINDOW_NAME``). On a log axis a start at step 0 is drawn from step 1. ``outline``: a
    dashed frame above the data instead (a heatmap hides anything below it)."""
    if window is None:
        return fig
    x0 = max(window.start, 1) if log_x else window.start
    x1 = max(window.end, x0)
    kw = {} if row is None else dict(row=row, col=col)
    fig.add_vrect(
        x0=x0,
        x1=x1,
        fillcolor="rgba(0, 0, 0, 0)" if outline else fill,
        line=dict(color="#ffffff", width=2, dash="dash") if outline else dict(width=0),
        layer="above" if outline else "below",
        name=WINDOW_NAME,
        label=dict(text=label, textposition="top center", font=dict(size=10, color="#a05a00")) if label else None,
        **kw,
    )
    return fig


def _hover_ckpt_column(ckpt: pd.Series) -> np.ndarray:
    return np.where(ckpt.fillna("").astype(str) == "", "eval only (no checkpoint saved)", ckpt.fillna("").astype(str))


# --- teacher ------------------------------------------------------------------------------
def _teacher_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    if metrics.empty or "role" not in metrics:
        return metrics
    return metrics[metrics["role"] == C.ROLE_TEACHER].sort_values("step")


def _curve(m: pd.DataFrame, col: str, name: str, color: str, log_x: bool, dash: str = "solid") -> go.Scatter:
    m = m.dropna(subset=[col])
    return go.Scatter(
        x=m["step"],
        y=m[col],
        mode="lines+markers",
        name=name,
        line=dict(color=color, dash=dash, width=2),
        marker=dict(size=4),
        customdata=_hover_ckpt_column(m["ckpt"]) if "ckpt" in m else None,
        hovertemplate=f"{name}<br>step %{{x:,}}<br>{col} %{{y:.4f}}<br>%{{customdata}}<extra></extra>",
    )


def saved_steps(m: pd.DataFrame) -> np.ndarray:
    """The sorted steps of ``m`` (one run's metrics rows) that saved a checkpoint (``ckpt`` set);
    every step when the rows do not say."""
    if "ckpt" not in m:
        return np.unique(m["step"].to_numpy(dtype=np.int64))
    return np.unique(m.loc[m["ckpt"].fillna("").astype(str) != "", "step"].to_numpy(dtype=np.int64))


def window_checkpoints(m: pd.DataFrame, window: Transition) -> list[int]:
    """The saved checkpoints nearest the window's start, middle (``mid_step``, as two-shot picks
    it) and end: the checkpoints a user can load, not the evaluation steps the rule found."""
    saved = saved_steps(m)
    if not len(saved):
        return [window.start, window.mid, window.end]
    mid = window.mid_step if not math.isnan(window.mid_step) else window.mid
    return [int(saved[np.abs(saved - t).argmin()]) for t in (window.start, mid, window.end)]


def _marks(m: pd.DataFrame, window: Transition, col: str) -> go.Scatter | None:
    steps = window_checkpoints(m, window)
    curve = m.dropna(subset=[col])
    vals = [float(np.interp(s, curve["step"], curve[col])) if len(curve) else None for s in steps]
    ck = []
    for s in steps:
        hit = m.loc[m["step"] == s, "ckpt"] if "ckpt" in m else pd.Series(dtype=str)
        ck.append(hit.iloc[0] if len(hit) and hit.iloc[0] else "eval only (no checkpoint saved)")
    return go.Scatter(
        x=steps,
        y=vals,
        mode="markers+text",
        name=MARKS_NAME,
        text=["1", "2", "3"],
        textposition="top left",
        textfont=dict(size=13, color="#a05a00"),
        cliponaxis=False,  # the "3" sits near the top of a 0..1 accuracy axis: draw it past the plot edge
        marker=dict(size=11, color="#a05a00", symbol="circle-open", line=dict(width=2)),
        customdata=[[n, c] for n, c in zip(MARK_NAMES, ck, strict=True)],
        hovertemplate="saved checkpoint nearest the %{customdata[0]} of the transition<br>step %{x:,}<br>"
        + col
        + " %{y:.4f}<br>%{customdata[1]}<extra></extra>",
    )


TWO_SHOT_MARK = "checkpoint used by two-shot"


def _two_shot_marks(metrics: pd.DataFrame, m: pd.DataFrame, col: str) -> go.Scatter | None:
    """The teacher checkpoints the two-shot students actually started from (each student's
    ``distill.two_shot_step``), on the teacher's ``col`` curve; None when there are none."""
    if "method" not in metrics or "two_shot_step" not in metrics:
        return None
    used = sorted(
        {int(v) for v in metrics.loc[metrics["method"] == C.METHOD_TWO_SHOT, "two_shot_step"].dropna() if v >= 0}
    )
    if not used:
        return None
    curve = m.dropna(subset=[col])
    vals = [float(np.interp(s, curve["step"], curve[col])) if len(curve) else None for s in used]
    return go.Scatter(
        x=used,
        y=vals,
        mode="markers",
        name=TWO_SHOT_MARK,
        marker=dict(size=12, color="#1f77b4", symbol="diamond-open", line=dict(width=2)),
        hovertemplate="teacher checkpoint a two-shot student used<br>step %{x:,}<br>"
        + col
        + " %{y:.4f}<extra></extra>",
    )


def teacher_accuracy(
    metrics: pd.DataFrame,
    window: Transition | None,
    *,
    log_x: bool = False,
    title: str = "Teacher accuracy, transition window shaded",
    uirevision: str = "",
) -> go.Figure:
    """F2a: the teacher's held-out accuracy vs step, the window shaded, its checkpoints marked."""
    m = _teacher_rows(metrics)
    if m.empty or "eval_acc" not in m or m["eval_acc"].notna().sum() == 0:
        return empty_figure("No teacher accuracy to show (the teacher has no metrics.jsonl rows yet).", title=title)
    fig = new_figure(_curve(m, "eval_acc", "teacher", METHOD_COLORS[C.METHOD_TEACHER], log_x))
    if window is not None:
        fig.add_trace(_marks(m, window, "eval_acc"))
    two = _two_shot_marks(metrics, m, "eval_acc")
    if two is not None:
        fig.add_trace(two)
    shade_window(fig, window, log_x=log_x)
    _style(fig, title=title, log_x=log_x, uirevision=uirevision)
    fig.update_yaxes(title_text="eval accuracy", **ACC_AXIS)
    return fig


def teacher_overview(
    metrics: pd.DataFrame, window: Transition | None, *, log_x: bool = False, uirevision: str = ""
) -> go.Figure:
    """Teacher accuracy (top) and loss (bottom) on one step axis, the window shaded in both."""
    m = _teacher_rows(metrics)
    if m.empty:
        return empty_figure("No teacher run with metrics in this experiment.", title="Teacher")
    fig = new_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=("held-out accuracy", "held-out loss")
    )
    if "eval_acc" in m and m["eval_acc"].notna().any():
        fig.add_trace(_curve(m, "eval_acc", "teacher accuracy", METHOD_COLORS[C.METHOD_TEACHER], log_x), row=1, col=1)
        if window is not None:
            fig.add_trace(_marks(m, window, "eval_acc"), row=1, col=1)
        two = _two_shot_marks(metrics, m, "eval_acc")
        if two is not None:
            fig.add_trace(two, row=1, col=1)
    if "eval_loss" in m and m["eval_loss"].notna().any():
        fig.add_trace(_curve(m, "eval_loss", "teacher loss", "#444444", log_x), row=2, col=1)
    if "train_loss" in m and m["train_loss"].notna().any():
        fig.add_trace(_curve(m, "train_loss", "train loss (running mean)", "#bbbbbb", log_x, dash="dot"), row=2, col=1)
    for r in (1, 2):
        shade_window(fig, window, row=r, col=1, log_x=log_x, label="transition" if r == 1 else "")
    _style(fig, title="Teacher: held-out accuracy and loss", log_x=log_x, uirevision=uirevision, height=560)
    fig.update_xaxes(title_text="", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", row=1, col=1, **ACC_AXIS)
    fig.update_yaxes(title_text="loss (nats)", row=2, col=1)
    return fig


# --- features -----------------------------------------------------------------------------
def _feature_meta(rows: pd.DataFrame) -> pd.DataFrame:
    """Per feature: in_support (bool or NaN) and degree, first non-null value."""
    cols = [c for c in ("in_support", "degree") if c in rows]
    if not cols:
        return pd.DataFrame(index=pd.Index(sorted(rows["feature"].unique(), key=natural_key), name="feature"))
    meta = rows.groupby("feature")[cols].first()
    return meta.loc[sorted(meta.index, key=natural_key)]


def _per_feature_step(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean value per (feature, step) over runs (one run: the value itself)."""
    return rows.groupby(["feature", "step"], sort=False)["value"].mean().reset_index()


def split_features(rows: pd.DataFrame, max_lines: int = 12) -> tuple[list[str], list[str], str]:
    """(features drawn one line each, features pooled into the band, the band's label).

    With ``in_support`` present: in-support features are lines, the others are "Rest". Without
    it: all features as lines if there are at most ``max_lines``, else the ``max_lines`` with
    the highest peak are lines and the others are pooled.
    """
    meta = _feature_meta(rows)
    feats = list(meta.index)
    if "in_support" in meta and meta["in_support"].notna().any():
        ins = [f for f in feats if meta.at[f, "in_support"] == 1]
        rest = [f for f in feats if f not in set(ins)]
        return ins, rest, "Rest (off-support)"
    if len(feats) <= max_lines:
        return feats, [], ""
    peaks = rows.groupby("feature")["value"].max().sort_values(ascending=False, kind="stable")
    top = set(peaks.index[:max_lines])
    return [f for f in feats if f in top], [f for f in feats if f not in top], f"Rest ({len(feats) - max_lines} others)"


def _band_traces(
    agg: pd.DataFrame,
    pooled: Sequence[str],
    label: str,
    color: str,
    hover_prefix: str,
    legendgroup: str,
    showlegend: bool = True,
) -> list[go.Scatter]:
    sub = agg[agg["feature"].isin(pooled)]
    if sub.empty:
        return []
    stats = sub.groupby("step")["value"].agg(["mean", "std", "count"]).reset_index().sort_values("step")
    stats["std"] = stats["std"].fillna(0.0)
    lo, hi = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
    common = dict(
        x=stats["step"], legendgroup=legendgroup, hoverinfo="skip", showlegend=False, line=dict(width=0), mode="lines"
    )
    return [
        go.Scatter(y=hi, name=f"{label} +1 sd", **common),
        go.Scatter(y=lo, name=f"{label} -1 sd", fill="tonexty", fillcolor=_rgba(color, 0.2), **common),
        go.Scatter(
            x=stats["step"],
            y=stats["mean"],
            mode="lines",
            name=label,
            legendgroup=legendgroup,
            showlegend=showlegend,
            line=dict(color=color, width=2, dash="dash"),
            customdata=np.stack([stats["std"], stats["count"]], axis=-1),
            hovertemplate=(
                f"{label}: mean of %{{customdata[1]}} features<br>step %{{x:,}}<br>value %{{y:.4g}}"
                f" +- %{{customdata[0]:.2g}}{hover_prefix}<extra></extra>"
            ),
        ),
    ]


def _timeline_traces(
    rows: pd.DataFrame,
    *,
    log_x: bool,
    max_lines: int,
    ckpt_prefix: str | None,
    showlegend: bool = True,
    colors: dict | None = None,
    split: tuple[list[str], list[str], str] | None = None,
) -> list[go.Scatter]:
    agg = _thin_frame(_per_feature_step(rows), log_x)
    lines, pooled, band_label = split or split_features(rows, max_lines)
    present = set(agg["feature"].unique())
    lines, pooled = [f for f in lines if f in present], [f for f in pooled if f in present]
    hover = ckpt_hover(ckpt_prefix)
    traces: list[go.Scatter] = []
    colors = colors or {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(lines)}
    for f in lines:
        d = agg[agg["feature"] == f].sort_values("step")
        traces.append(
            go.Scatter(
                x=d["step"],
                y=d["value"],
                mode="lines+markers",
                name=str(f),
                legendgroup=f"f:{f}",
                showlegend=showlegend,
                line=dict(color=colors.get(f, REST_COLOR), width=2),
                marker=dict(size=4),
                hovertemplate=f"feature {f}<br>step %{{x:,}}<br>value %{{y:.4g}}{hover}<extra></extra>",
            )
        )
    if pooled:
        traces += _band_traces(agg, pooled, band_label, REST_COLOR, hover, "rest", showlegend)
    return traces


def feature_timeline(
    rows: pd.DataFrame,
    *,
    title: str,
    window: Transition | None = None,
    log_x: bool = False,
    log_y: bool = False,
    max_lines: int = 12,
    ckpt_prefix: str | None = None,
    y_title: str = "value",
    uirevision: str = "",
) -> go.Figure:
    """F2b-style timelines of one (probe, metric, site[, degree]) for one run (or the mean of
    several runs): columns ``step, feature, value`` and optionally ``in_support, degree``."""
    if rows is None or rows.empty:
        return empty_figure("No probe rows for this selection.", title=title)
    fig = new_figure(_timeline_traces(rows, log_x=log_x, max_lines=max_lines, ckpt_prefix=ckpt_prefix))
    shade_window(fig, window, log_x=log_x)
    _style(fig, title=title, log_x=log_x, uirevision=uirevision)
    fig.update_yaxes(title_text=y_title, type="log" if log_y else "linear")
    return fig


def site_timeline(
    rows: pd.DataFrame,
    *,
    title: str,
    window: Transition | None = None,
    log_x: bool = False,
    ckpt_prefix: str | None = None,
    y_title: str = "value",
    uirevision: str = "",
    degree_word: str = "degree",
    max_lines: int = 24,
) -> go.Figure:
    """The metric per site, never averaging values of different meaning in one line.

    With ``in_support`` (parity monomials): one line per (site, degree), the mean over that
    degree's in-support features. Without it (PCFG levels, offsets, n-gram windows): one line
    per (site, feature), no mean; the ``max_lines`` lines with the highest peak when there are
    more."""
    if rows is None or rows.empty:
        return empty_figure("No probe rows for this selection.", title=title)
    by_degree = "in_support" in rows and rows["in_support"].notna().any()
    if by_degree:
        scope = rows[rows["in_support"] == 1].assign(
            _line=lambda d: d["degree"].map(lambda x: "" if pd.isna(x) else f"{degree_word} {int(x)}")
        )
        title = f"{title} (mean over the in-support features of each {degree_word})"
    else:
        scope = rows.assign(_line=rows["feature"].astype(str))
        title = f"{title} (one line per site and feature)"
    agg = scope.groupby(["site", "_line", "step"])["value"].agg(["mean", "count"]).reset_index()
    agg = _thin_frame(agg, log_x)
    keys = sorted(
        agg[["site", "_line"]].drop_duplicates().itertuples(index=False, name=None),
        key=lambda k: (natural_key(k[0]), natural_key(k[1])),
    )
    if len(keys) > max_lines:
        peaks = agg.groupby(["site", "_line"])["mean"].max()
        top = set(peaks.sort_values(ascending=False, kind="stable").index[:max_lines])
        keys = [k for k in keys if k in top]
        title = f"{title}, the {max_lines} highest"
    hover = ckpt_hover(ckpt_prefix)
    fig = new_figure()
    for i, (site, line) in enumerate(keys):
        d = agg[(agg["site"] == site) & (agg["_line"] == line)].sort_values("step")
        name = f"{site} · {line}" if line else str(site)
        what = f"mean over %{{customdata}} features of {line}" if by_degree else f"feature {line}"
        fig.add_trace(
            go.Scatter(
                x=d["step"],
                y=d["mean"],
                mode="lines+markers",
                name=name,
                marker=dict(size=4),
                line=dict(color=PALETTE[i % len(PALETTE)], width=2),
                customdata=d["count"],
                hovertemplate=f"site {site}<br>step %{{x:,}}<br>%{{y:.4g}}: {what}{hover}<extra></extra>",
            )
        )
    shade_window(fig, window, log_x=log_x)
    _style(fig, title=title, log_x=log_x, uirevision=uirevision, height=380)
    fig.update_yaxes(title_text=y_title)
    return fig


def feature_heatmap(
    rows: pd.DataFrame,
    *,
    title: str,
    log_x: bool = False,
    ckpt_prefix: str | None = None,
    max_steps: int = MAX_POINTS,
    uirevision: str = "",
    window: Transition | None = None,
    max_rows: int = MAX_LABELLED_ROWS,
) -> go.Figure:
    """Feature x step heatmap of the value (mean over runs). In-support features first, marked
    ``*``; then by degree and name. With more than ``max_rows`` features and in-support
    information, only the in-support rows are drawn (the title says how many were left out):
    hundreds of unlabelled noise rows hide the curriculum. ``window`` is framed (dashed), not
    shaded: the cells would hide a shade. With few checkpoints the ticks are the steps themselves."""
    if rows is None or rows.empty:
        return empty_figure("No probe rows for this selection.", title=title)
    agg = _per_feature_step(rows)
    if log_x:
        agg = agg[agg["step"] > 0]
    agg = _thin_frame(agg, log_x, max_steps)
    if agg.empty:
        return empty_figure("Nothing to draw on a log step axis (only step 0).", title=title)
    meta = _feature_meta(rows)
    has_in = "in_support" in meta and meta["in_support"].notna().any()

    def ins(f) -> bool:
        return bool(has_in and meta.at[f, "in_support"] == 1)

    def order(f):
        deg = meta.at[f, "degree"] if "degree" in meta and pd.notna(meta.at[f, "degree"]) else math.inf
        return (0 if ins(f) else 1, deg, natural_key(f))

    feats = sorted(agg["feature"].unique(), key=order)
    hidden = 0
    if len(feats) > max_rows and has_in and any(ins(f) for f in feats):
        kept = [f for f in feats if ins(f)]
        hidden, feats = len(feats) - len(kept), kept
    z = agg.pivot(index="feature", columns="step", values="value").reindex(feats)
    shown_off = has_in and any(not ins(f) for f in feats)
    labels = [f"{f} *" if shown_off and ins(f) else str(f) for f in feats]
    fig = new_figure(
        go.Heatmap(
            x=z.columns.to_numpy(),
            y=labels,
            z=z.to_numpy(),
            colorscale="Viridis",
            colorbar=dict(title="value"),
            hovertemplate=f"feature %{{y}}<br>step %{{x:,}}<br>value %{{z:.4g}}{ckpt_hover(ckpt_prefix)}<extra></extra>",
        )
    )
    height = int(min(1400, max(320, 140 + 12 * len(feats))))
    if hidden:
        title += f" (in-support features only; {hidden:,} off-support rows not drawn)"
    elif shown_off:
        title += " (* = in support)"
    _style(fig, title=title, log_x=log_x, uirevision=uirevision, height=height)
    shade_window(fig, window, log_x=log_x, label="", outline=True)
    # categorical: plotly would read labels like "3" as numbers and drop the "0 *" rows
    fig.update_yaxes(
        type="category",
        autorange="reversed",
        showticklabels=len(feats) <= max_rows,
        title_text="feature",
        tickfont=dict(size=10 if len(feats) <= 60 else 8),
    )
    steps = z.columns.to_numpy()
    if not log_x and 0 < len(steps) <= FEW_STEPS:  # plotly would pad the cells with ticks below step 0
        fig.update_xaxes(tickmode="array", tickvals=steps, ticktext=[f"{int(x):,}" for x in steps])
    return fig


# --- students -----------------------------------------------------------------------------
def _label_order(labels: Sequence[str]) -> list[str]:
    def key(label: str):
        base = label.split(" ")[0]
        return (METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER), natural_key(label))

    return sorted(labels, key=key)


def short_label(label: str) -> str:
    """A curve group's name for a narrow panel title: ``two-shot (teacher ckpt 26,000, first
    10,000 steps)`` -> ``two-shot (ckpt 26,000, T=10,000)``; other labels unchanged."""
    return re.sub(r", first ([\d,]+) steps\)", r", T=\1)", label.replace("(teacher ckpt ", "(ckpt "))


def _color_of(label: str, i: int = 0) -> str:
    base = label.split(" ")[0]
    if base == C.METHOD_TWO_SHOT and label != base:
        return PALETTE[(3 + i) % len(PALETTE)]
    return METHOD_COLORS.get(base, PALETTE[i % len(PALETTE)])


def _seed_band(m: pd.DataFrame, col: str, name: str, color: str, legendgroup: str) -> list[go.Scatter]:
    """Mean over seeds (runs) per step, with a +-1 sd band when there are >= 2 seeds."""
    m = m.dropna(subset=[col])
    g = m.groupby("step")
    stats = g[col].agg(["mean", "std", "count"]).reset_index().sort_values("step")
    stats["std"] = stats["std"].fillna(0.0)
    ck = (
        g["ckpt"].agg(lambda s: "<br>".join([c for c in s if c][:3]) or "eval only (no checkpoint saved)")
        if "ckpt" in m
        else None
    )
    traces = []
    if stats["count"].max() > 1:
        common = dict(
            x=stats["step"],
            mode="lines",
            line=dict(width=0),
            hoverinfo="skip",
            showlegend=False,
            legendgroup=legendgroup,
        )
        traces += [
            go.Scatter(y=stats["mean"] + stats["std"], name=f"{name} +1 sd", **common),
            go.Scatter(
                y=stats["mean"] - stats["std"],
                name=f"{name} -1 sd",
                fill="tonexty",
                fillcolor=_rgba(color, 0.18),
                **common,
            ),
        ]
    custom = np.stack(
        [
            stats["count"].astype(str),
            ck.reindex(stats["step"]).to_numpy() if ck is not None else np.full(len(stats), ""),
        ],
        axis=-1,
    )
    traces.append(
        go.Scatter(
            x=stats["step"],
            y=stats["mean"],
            mode="lines",
            name=name,
            legendgroup=legendgroup,
            line=dict(color=color, width=2.5, dash=LINE_DASH.get(name, "solid")),
            customdata=custom,
            hovertemplate=(
                f"{name}: mean over %{{customdata[0]}} seed(s)<br>step %{{x:,}}<br>{col} %{{y:.4f}}"
                f"<br>%{{customdata[1]}}<extra></extra>"
            ),
        )
    )
    return traces


def students_accuracy(
    metrics: pd.DataFrame,
    windows: Mapping[str, Transition] | None = None,
    *,
    log_x: bool = False,
    include_teacher: bool = True,
    labels: Sequence[str] | None = None,
    title: str = "Students: held-out accuracy by method (mean +- sd over seeds)",
    uirevision: str = "",
) -> go.Figure:
    """F1a: every method's accuracy vs its own step; ``labels`` restricts to some groups
    (``method`` or a two-shot label). ``windows``: per group, the teacher's window mapped
    onto that group's step axis (``selection.student_windows``), shaded in its colour; the
    teacher's own window is in teacher steps and is not drawn here. ce is drawn dotted and
    on top: at chance it would hide under one-shot."""
    if metrics.empty or "eval_acc" not in metrics:
        return empty_figure("No evaluation rows in this experiment yet.", title=title)
    students = metrics[metrics["role"] == C.ROLE_STUDENT]
    if students.empty:
        return empty_figure("This experiment has no student runs yet.", title=title)
    fig = new_figure()
    todo = _label_order(students["label"].unique())
    if labels is not None:
        todo = [lab for lab in todo if lab in set(labels)]
    colors = {lab: _color_of(lab, i) for i, lab in enumerate(todo)}
    for lab in [x for x in todo if x != C.METHOD_CE] + [x for x in todo if x == C.METHOD_CE]:  # ce last: on top
        for tr in _seed_band(students[students["label"] == lab], "eval_acc", lab, colors[lab], lab):
            fig.add_trace(tr)
    if include_teacher:
        t = _teacher_rows(metrics)
        if not t.empty:
            for tr in _seed_band(t, "eval_acc", "teacher", METHOD_COLORS[C.METHOD_TEACHER], "teacher"):
                fig.add_trace(tr)
    for lab, w in (windows or {}).items():
        if lab in colors and w is not None:
            shade_window(
                fig, w, log_x=log_x, label=f"{lab.split(' ')[0]}: teacher's window", fill=_rgba(colors[lab], 0.12)
            )
    _style(fig, title=title, log_x=log_x, uirevision=uirevision)
    fig.update_yaxes(title_text="eval accuracy", **ACC_AXIS)
    return fig


def two_shot_accuracy(
    metrics: pd.DataFrame,
    *,
    log_x: bool = False,
    title: str = "Two-shot students: accuracy per first-stage teacher checkpoint",
    uirevision: str = "",
) -> go.Figure:
    """F2c: one curve per (teacher checkpoint, first-stage length T) of the two-shot students
    (mean +- sd over seeds), named in the legend (``two_shot_label``), and a dotted line, also
    in the legend, where the students switch to the final teacher (student step T)."""
    if metrics.empty or "method" not in metrics:
        return empty_figure("No evaluation rows in this experiment yet.", title=title)
    two = metrics[metrics["method"] == C.METHOD_TWO_SHOT]
    if two.empty:
        return empty_figure("No two-shot students in this experiment.", title=title)
    teacher = _teacher_rows(metrics)
    fig = new_figure()
    if "two_shot_T" not in two:
        two = two.assign(two_shot_T=0)
    groups = sorted(two.groupby(["two_shot_step", "two_shot_T"]), key=lambda kv: kv[0])
    for i, ((tstep, T), d) in enumerate(groups):
        acc = teacher.loc[teacher["step"] <= tstep, "eval_acc"] if "eval_acc" in teacher else pd.Series(dtype=float)
        name = two_shot_label(int(tstep), int(T)) + (f", teacher acc {acc.iloc[-1]:.2f}" if len(acc) else "")
        color = PALETTE[i % len(PALETTE)]
        for tr in _seed_band(d, "eval_acc", name, color, f"T{tstep}-{T}"):
            fig.add_trace(tr)
        if T and T > 0:
            fig.add_trace(
                go.Scatter(
                    x=[T, T],
                    y=[0, 1],
                    mode="lines",
                    line=dict(color=color, dash="dot", width=1),
                    name=f"switch to the final teacher (student step {int(T):,})",
                    legendgroup=f"T{tstep}-{T}",
                    hovertemplate=f"student step {int(T):,}: switch to the final teacher<extra></extra>",
                )
            )
    _style(fig, title=title, log_x=log_x, uirevision=uirevision)
    fig.update_layout(showlegend=True)  # one student is one trace: plotly would hide the legend naming it
    fig.update_xaxes(title_text="student step")
    fig.update_yaxes(title_text="eval accuracy", **ACC_AXIS)
    return fig


def students_features(
    panels: Mapping[str, pd.DataFrame],
    *,
    title: str,
    window: Transition | None = None,
    log_x: bool = False,
    log_y: bool = False,
    max_lines: int = 12,
    ckpt_prefixes: Mapping[str, str] | None = None,
    y_title: str = "value",
    uirevision: str = "",
    windows: Mapping[str, Transition] | None = None,
) -> go.Figure:
    """Feature timelines of several students side by side (one panel per key of ``panels``,
    e.g. progressive and one-shot), shared x and y axes, same colour per feature. ``windows``:
    per panel, the teacher's window mapped onto that student's steps (``selection.student_windows``);
    a panel without one (ce, one-shot) is not shaded. ``window`` (the teacher's own, in teacher
    steps) is shaded in every panel only when ``windows`` is None (figures of runs without a schedule)."""
    names = [k for k in panels]
    if not names or all(p is None or p.empty for p in panels.values()):
        return empty_figure("No probe rows for these students.", title=title)

    def n_runs(df: pd.DataFrame | None) -> int:
        if df is None or df.empty:
            return 0
        return int(df["run"].nunique()) if "run" in df else 1

    fig = new_subplots(
        rows=1,
        cols=len(names),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[f"{short_label(n)}<br>(mean of {n_runs(panels[n])} run(s))" for n in names],
    )
    all_rows = pd.concat([p for p in panels.values() if p is not None and not p.empty])
    split = split_features(all_rows, max_lines)  # the same lines and band in every panel
    colors = {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(split[0])}
    for j, n in enumerate(names, start=1):
        rows = panels[n]
        if rows is None or rows.empty:
            continue
        for tr in _timeline_traces(
            rows,
            log_x=log_x,
            max_lines=max_lines,
            showlegend=(j == 1),
            colors=colors,
            ckpt_prefix=(ckpt_prefixes or {}).get(n),
            split=split,
        ):
            fig.add_trace(tr, row=1, col=j)
        w = window if windows is None else windows.get(n)
        shade_window(fig, w, row=1, col=j, log_x=log_x, label="")  # the two-line panel titles leave no room
    _style(fig, title=title, log_x=log_x, uirevision=uirevision, height=460)
    fig.update_layout(margin=dict(t=100))  # room for the two-line panel titles under the figure's
    fig.update_xaxes(matches="x")
    fig.update_yaxes(type="log" if log_y else "linear")
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    return fig
