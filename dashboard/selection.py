"""What the dashboard's controls select, as plain functions (no Dash): probe families, sites,
degrees, the teacher's transition window, titles and table records.

The callbacks (``dashboard.callbacks``) and the figure export (``dashboard.export``) share them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from curriculens import constants as C
from curriculens.curves import Transition, teacher_transition, transition_rule
from dashboard.data import ExperimentSummary, appeared

FAMILY_SEP = "::"  # a probe family's dropdown value: ``probe::metric``
ALL_DEGREES = "all"  # the degree dropdown's value for every degree
PREFERRED_METRICS = ("corr", "test_acc", "acc", "accuracy", "p50")  # the first family shown, best first
# the students compared feature by feature, in this order (then any other label)
SIDE_BY_SIDE = (
    C.METHOD_PROGRESSIVE,
    C.METHOD_ONE_SHOT,
    C.METHOD_TWO_SHOT,
    C.METHOD_CURRICULUM_EXTRACTION,
    C.METHOD_CE,
)
MAX_SIDE_PANELS = 5  # panels side by side (a two-shot sweep has a label per checkpoint)
# what a probe's ``degree`` column means: (name in the page, file-name tag); parity's default
DEGREE_NAMES = {
    "nt_span": ("tree level", "level"),
    "context": ("context offset", "offset"),
    "ngram": ("n-gram window", "n"),
}


def degree_name(probe: str | None) -> str:
    """``degree`` (parity monomials), ``tree level`` (nt_span), ``context offset``, ``n-gram window``."""
    return DEGREE_NAMES.get(probe or "", ("degree", "deg"))[0]


def degree_tag(probe: str | None) -> str:
    """The file-name tag of a degree value: ``deg``, ``level``, ``offset``, ``n``."""
    return DEGREE_NAMES.get(probe or "", ("degree", "deg"))[1]


def split_family(family: str | None) -> tuple[str | None, str | None]:
    if not family or FAMILY_SEP not in family:
        return None, None
    probe, metric = family.split(FAMILY_SEP, 1)
    return probe, metric


def degree_value(degree: Any) -> int | None:
    if degree in (None, "", ALL_DEGREES):
        return None
    return int(degree)


def site_value(site: Any) -> str | None:
    return None if site in (None, "") else str(site)


def is_log(axis: Any) -> bool:
    return axis == "log"


def uirev(key: str, *parts: Any) -> str:
    return "|".join([key or "", *(str(p) for p in parts)])


def window_of(metrics: pd.DataFrame, task_name: str | None = None) -> Transition | None:
    """The teacher's transition under its task's rule (``curriculens.curves.teacher_transition``);
    its middle is the one a two-shot student starts from."""
    if metrics.empty or "role" not in metrics:
        return None
    t = metrics[metrics["role"] == C.ROLE_TEACHER].sort_values("step")
    if t.empty:
        return None
    return teacher_transition(
        t["step"].to_numpy(),
        t["eval_acc"].to_numpy() if "eval_acc" in t else None,
        t["eval_loss"].to_numpy() if "eval_loss" in t else None,
        rule=transition_rule(task_name),
    )


def student_window(metrics: pd.DataFrame, runs: Sequence[str], window: Transition | None) -> Transition | None:
    """The teacher's ``window`` mapped onto the student steps of ``runs`` through their own
    schedule: the first to the last evaluated student step whose ``teacher_step`` (the teacher
    checkpoint the student learned from, in its metrics rows) lies inside the window.

    Progressive: the stretch that followed the teacher through its transition. Two-shot: its
    first stage when its checkpoint is inside the window (it ends at the switch). ce and
    one-shot (the final teacher only) never do: None, as without a window. Levels are NaN."""
    if window is None or metrics.empty or "teacher_step" not in metrics:
        return None
    m = metrics[metrics["run"].isin(list(runs))]
    ts = pd.to_numeric(m["teacher_step"], errors="coerce")
    inside = m.loc[(ts >= window.start) & (ts <= window.end), "step"]
    if inside.empty:
        return None
    lo, hi = int(inside.min()), int(inside.max())
    return Transition(
        start=lo, mid=(lo + hi) // 2, end=hi, start_level=math.nan, end_level=math.nan, metric="student step"
    )


def student_groups(students: Sequence[Any]) -> dict[str, list[str]]:
    """Curve group (``RunSummary.label``) -> its runs' names, in ``students`` order."""
    groups: dict[str, list[str]] = {}
    for r in students:
        groups.setdefault(r.label, []).append(r.name)
    return groups


def student_windows(
    metrics: pd.DataFrame, groups: Mapping[str, Sequence[str]], window: Transition | None
) -> dict[str, Transition]:
    """``student_window`` of each group (label -> its runs), only the groups that have one."""
    out = {lab: student_window(metrics, runs, window) for lab, runs in groups.items()}
    return {lab: w for lab, w in out.items() if w is not None}


def describe_window(window: Transition, saved: Sequence[int]) -> str:
    """The window in one sentence that names the middle once: the rule's evaluated edges, the
    middle as the rule computes it (``mid_step``, what ``recommend`` prints) and the saved
    checkpoint nearest it (the one two-shot starts from)."""
    name = window.metric or "value"
    mid = window.mid_step if not math.isnan(window.mid_step) else float(window.mid)
    text = (
        f"{name} goes from {window.start_level:.3g} to {window.end_level:.3g} between step {window.start:,} "
        f"and step {window.end:,}; middle at step {mid:,.0f}"
    )
    if len(saved):
        near = int(min(saved, key=lambda s: abs(s - mid)))
        text += f" (nearest saved checkpoint: step {near:,})"
    return text


def default_family(catalog: pd.DataFrame) -> str | None:
    """Prefer a probe other than the model's own metrics, one with in-support / degree info,
    and a metric named like a correlation or an accuracy."""
    if catalog.empty:
        return None

    def score(row) -> tuple:
        m = row.metric
        pref = PREFERRED_METRICS.index(m) if m in PREFERRED_METRICS else len(PREFERRED_METRICS)
        return (row.probe == "model", not row.has_in_support, not row.degrees, pref, row.probe, m)

    best = min(catalog.itertuples(index=False), key=score)
    return f"{best.probe}{FAMILY_SEP}{best.metric}"


def keep(value: Any, options: Sequence[dict], default: Any) -> Any:
    """``value`` when one of ``options`` has it (a picker keeps its selection), else ``default``."""
    return value if value is not None and any(o["value"] == value for o in options) else default


def default_degree(summary: pd.DataFrame | None, run: str | None, family: str | None, site: str | None) -> str:
    """The degree the page opens on: the lowest degree with an in-support series of ``run``
    (at ``site``) that appeared (``dashboard.data.appeared``: the noise rule, and the null test
    when the summary has ``passes_null``); ``ALL_DEGREES`` when none did or nothing is known."""
    probe, metric = split_family(family)
    if summary is None or summary.empty or probe is None or "degree" not in summary:
        return ALL_DEGREES
    s = summary[(summary["probe"] == probe) & (summary["metric"] == metric)]
    if run is not None:
        s = s[s["run"] == run]
    if site is not None:
        s = s[s["site"] == site]
    if "in_support" in s:
        s = s[s["in_support"].fillna(0).astype(bool)]
    degrees = s.loc[appeared(s), "degree"].dropna()
    return str(int(degrees.min())) if len(degrees) else ALL_DEGREES


def family_options(catalog: pd.DataFrame) -> list[dict]:
    pairs = catalog[["probe", "metric"]].drop_duplicates().itertuples(index=False)
    return [
        {"label": f"{p} · {m}", "value": f"{p}{FAMILY_SEP}{m}"} for p, m in sorted(pairs, key=lambda t: (t[0], t[1]))
    ]


def _family_rows(catalog: pd.DataFrame, family: str | None) -> pd.DataFrame:
    probe, metric = split_family(family)
    if probe is None or catalog.empty:
        return catalog.iloc[0:0]
    return catalog[(catalog["probe"] == probe) & (catalog["metric"] == metric)]


def side_by_side_labels(students: Sequence[Any]) -> list[str]:
    """The curve groups (``RunSummary.label``) of ``students`` drawn side by side: every
    distinct label, ``SIDE_BY_SIDE`` order first (two-shot labels with their checkpoint, e.g.
    ``two-shot (teacher ckpt 100, T=120)``, sort under two-shot); at most ``MAX_SIDE_PANELS``."""
    labels = sorted({r.label for r in students})

    def key(label: str) -> tuple:
        base = next((m for m in SIDE_BY_SIDE if label == m or label.startswith(m + " ")), None)
        return (SIDE_BY_SIDE.index(base) if base else len(SIDE_BY_SIDE), label)

    return sorted(labels, key=key)[:MAX_SIDE_PANELS]


def ckpt_prefix(exp: ExperimentSummary, runs: Sequence[str]) -> str:
    """The checkpoint directory shown in hovers for a curve over ``runs``: the run's own, or a
    brace pattern for a mean over seeds (``exp/runs/{progressive-s0,progressive-s1}/checkpoints/``)."""
    if len(runs) == 1:
        return exp.ckpt_display(runs[0])
    return exp.ckpt_display("{" + ",".join(runs) + "}") if len(runs) <= 3 else exp.ckpt_display("<each run>")


def selection_title(probe: str, metric: str, site: str | None, degree: int | None) -> str:
    """``fourier · corr, site output, degree 1``: the selection, for titles."""
    parts = [f"{probe} · {metric}"]
    if site:
        parts.append(f"site {site}")
    if degree is not None:
        parts.append(f"{degree_name(probe)} {degree}")
    return ", ".join(parts)


def table_records(df: pd.DataFrame) -> list[dict]:
    """JSON-ready records: missing values (NaN, pd.NA) become None, numpy scalars plain."""
    out = df.astype(object).where(df.notna(), None)
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in rec.items()} for rec in out.to_dict("records")
    ]
