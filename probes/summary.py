"""When does each feature appear? A pre-stated rule applied to every probe series.

A *series* is the values of one (run, probe, feature, site, metric) over checkpoint steps.
Only **primary** metrics are summarised: the ones a probe declares in ``Probe.primary_metrics``
(parity: ``model``/accuracy, ``fourier``/corr, ``linear``/test_acc and selectivity), which the
sweep stores in the database's ``metric_specs`` table, so the results describe themselves. Ask
for a metric explicitly (``metrics=[...]``) to summarise it too (a metric with "loss" in its
name is then read as falling).

The rule (with ``MetricSpec(min_effect, direction, off_support_null)`` of the metric; steps
sorted, missing values dropped; ``dir`` = +1 for a rising metric, -1 for a falling one):

1. ``baseline`` = the value at the first probed checkpoint.
2. ``peak`` = the extreme value in the metric's direction (max for +1, min for -1), at the
   first step it is reached (``peak_step``); ``effect = dir * (peak - baseline)``.
3. ``threshold = min_effect``. If ``off_support_null`` and the series has ``in_support`` set
   (parity monomials), ``threshold = max(min_effect, q95)`` where ``q95`` is the 95th
   percentile (linear interpolation) of the held effects of the off-support series of the same
   (run, probe, site, metric, degree): a feature must rise more than 95% of the matched
   control monomials do.
4. The **sampling null** (``curriculens.findings``): the rise must *hold* (``effect`` is the
   largest rise kept over two consecutive checkpoints, so a one-checkpoint blip is not a rise),
   its p-value against the series' sampling sd (``noise``: the probe's own ``extra["noise"]``,
   or the binomial sd of a linear probe's test set, never below the series' own scatter) is
   computed, and Benjamini-Hochberg at 5% runs over *all* series of the run: ``passes_null``.
   A series whose sd cannot be known (no sampling sd and fewer than 8 checkpoints) is not
   tested and does not pass. Rows without an ``extra`` column at all (a reader that drops it)
   cannot be tested: ``passes_null`` is then <NA> and ``appear_step`` follows the threshold
   rule alone on the raw peak (the rule before the null); pass ``extra`` to get the null.
5. The feature **appears** at the first step where ``dir * (value - baseline) >= 0.5 *
   effect``, provided it passes the null, ``effect >= threshold`` and ``effect > 0``;
   otherwise ``appear_step`` is missing ("never"). So every "appears" has a null:
   ``passes_null`` is exactly ``appear_step.notna()``.

So ``appear_step`` is the half-rise point of the largest held excursion from the start, at or
before ``peak_step`` (``peak_*`` describe the raw extreme, held or not). A transient (the parity spike of in-support correlations) appears at
its rise and peaks at the spike; ``final_value`` shows whether it fell back.

Why a calibrated null rather than a fixed noise level: off-support correlations are not only
sampling noise. A wide MLP trained with SGD picks up transient degree-1 correlations with
*every* coordinate (measured on the (40, 4) demo teacher: off-support |corr| up to 0.09 while
the sampling noise at N = 20000 is ~0.003), so only a rise beyond what the off-support
monomials do is evidence of a support-specific feature.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from curriculens import constants as C
from curriculens import findings as F
from curriculens.curves import half_rise
from curriculens.errors import CurriculensError
from probes.store import MetricSpec, ResultsStore

NULL_QUANTILE = 0.95
KEYS = ["run", "role", "method", "seed", "probe", "feature", "site", "metric"]
SUMMARY_COLUMNS = KEYS + [
    "degree",
    "in_support",
    "appear_step",
    "peak_step",
    "peak_value",
    "baseline",
    "final_value",
    "effect",
    "threshold",
    "n_steps",
    "noise",
    "p_value",
    "passes_null",
]


def appearance(
    steps: Iterable[int],
    values: Iterable[float],
    spec: MetricSpec,
    threshold: float | None = None,
    sd: float | None = None,
    significant: bool | None = None,
) -> dict:
    """Apply the rule to one series (``threshold`` defaults to ``spec.min_effect``).

    ``sd``: the series' sampling sd (None: unknown; the series' own scatter still counts on 8+
    checkpoints). ``significant``: the family's verdict on this series' p-value (the summary
    passes Benjamini-Hochberg's); None judges the series alone (p <= ``findings.FDR_Q``).

    Returns appear_step (None = never), peak_step, peak_value, baseline, final_value,
    effect (the held effect), threshold, n_steps, noise, p_value, passes_null.
    """
    x, v = _sorted_finite(steps, values)
    rise = half_rise(list(x), list(v), direction=spec.direction)
    threshold = spec.min_effect if threshold is None else float(threshold)
    rel = (1.0 if spec.direction >= 0 else -1.0) * (v - v[0]) if v.size else v
    noise = float(np.fmax(np.nan if sd is None else sd, F.empirical_sd(v)))
    effect, p = _effect_and_p(rel, noise)
    ok = bool(np.isfinite(p) and p <= F.FDR_Q) if significant is None else bool(significant)
    passes = bool(ok and np.isfinite(effect) and effect >= threshold and effect > 0 and v.size >= 3)
    appear = int(x[np.nonzero(rel >= 0.5 * effect)[0][0]]) if passes else None
    return {
        "appear_step": appear,
        "peak_step": rise["peak_step"],
        "peak_value": rise["peak_value"],
        "baseline": rise["baseline"],
        "final_value": rise["final_value"],
        "effect": effect,
        "threshold": threshold,
        "n_steps": rise["n_steps"],
        "noise": noise,
        "p_value": p,
        "passes_null": passes,
    }


def _raw_effect(rec: dict, spec: MetricSpec) -> float:
    return rec["peak_value"] - rec["baseline"] if spec.direction >= 0 else rec["baseline"] - rec["peak_value"]


def rise_step(steps, values, spec: MetricSpec, effect: float) -> int | None:
    """The first step whose rise from the first value reaches half of ``effect``."""
    x, v = _sorted_finite(steps, values)
    rel = (1.0 if spec.direction >= 0 else -1.0) * (v - v[0])
    hit = np.nonzero(rel >= 0.5 * effect)[0]
    return int(x[hit[0]]) if hit.size else None


def _sorted_finite(steps, values) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(list(steps), dtype=np.int64)
    v = np.asarray(pd.to_numeric(pd.Series(list(values), dtype="object"), errors="coerce"), dtype=np.float64)
    ok = np.isfinite(v)
    x, v = x[ok], v[ok]
    order = np.argsort(x, kind="stable")
    return x[order], v[order]


def _held_effect(rel: np.ndarray) -> float:
    """The largest rise held over two consecutive checkpoints (NaN under 2 points)."""
    if rel.size < 2:
        return math.nan
    return float(np.minimum(rel[:-1], rel[1:]).max())


def _z(effect, noise):
    if not np.isfinite(noise) or not np.isfinite(effect):
        return math.nan
    return effect / noise if noise > 0 else (math.inf if effect > 0 else -math.inf)


def _effect_and_p(rel: np.ndarray, noise: float) -> tuple[float, float]:
    """The series' effect (held rise, or single peak when that route is the stronger) and its
    p-value (``findings.rise_p``; NaN when the sd is unknown)."""
    held = _held_effect(rel)
    peak = float(rel.max()) if rel.size else math.nan
    if rel.size < 2:
        return held, math.nan if not np.isfinite(noise) else 1.0
    p, single = F.rise_p([_z(held, noise)], [_z(peak, noise)], rel.size)
    return (peak if single[0] else held), float(p[0])


NOISE_KEY = "noise"  # the ``extra`` key of a row's sampling sd (rows describe their own noise)


def _spec(probe: str, metric: str, specs: Mapping[tuple[str, str], MetricSpec], explicit: bool) -> MetricSpec | None:
    if (probe, metric) in specs:
        return specs[(probe, metric)]
    if explicit:
        return MetricSpec(direction=-1 if "loss" in metric else 1)
    return None


def summarize_frame(
    rows: pd.DataFrame,
    specs: Mapping[tuple[str, str], MetricSpec] | None = None,
    metrics: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Summarise a ``probe_results``-shaped frame (columns as ``probes.store.COLUMNS``).

    Args:
        rows: the results rows.
        specs: ``{(probe, metric): MetricSpec}`` of the primary metrics (stored by the sweep,
            ``ResultsStore.metric_specs``); only these are summarised.
        metrics: summarise exactly these metrics (declared spec, else a default).

    The rule of ``appearance`` applied to every series at once with numpy (the same numbers:
    tested against a per-series loop). Each series depends on its own run's rows only (the
    null groups are per run), so a table built run by run and concatenated is the same table.
    """
    specs = dict(specs or {})
    wanted = set(metrics) if metrics else None
    if rows.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    chosen = {}
    for probe, metric in rows[["probe", "metric"]].drop_duplicates().itertuples(index=False):
        if wanted is not None and metric not in wanted:
            continue
        spec = _spec(probe, metric, specs, explicit=wanted is not None)
        if spec is not None:
            chosen[(probe, metric)] = spec
    if not chosen:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    keep = np.zeros(len(rows), dtype=bool)
    for probe, metric in chosen:
        keep |= ((rows["probe"] == probe) & (rows["metric"] == metric)).to_numpy(dtype=bool)
    idx = np.nonzero(keep)[0]
    gid = _group_ids(rows, KEYS, idx)
    n_series = int(gid.max()) + 1
    _, first = np.unique(gid, return_index=True)  # each series' first row, in the frame's order
    series = rows.iloc[idx[first]][KEYS + ["degree", "in_support"]].reset_index(drop=True)
    df = rows.iloc[idx][["step", "value"]]
    spec_of = [chosen[(p, m)] for p, m in zip(series["probe"], series["metric"], strict=True)]
    direction = np.array([1.0 if sp.direction >= 0 else -1.0 for sp in spec_of])
    min_effect = np.array([float(sp.min_effect) for sp in spec_of])
    use_null = np.array([bool(sp.off_support_null) for sp in spec_of])

    # finite values, in (series, step) order; ties keep the frame's order, as a stable argsort
    steps = df["step"].to_numpy(dtype=np.int64)
    values = pd.to_numeric(df["value"], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(values)
    g, s, v = gid[ok], steps[ok], values[ok]
    order = np.lexsort((s, g))
    g, s, v = g[order], s[order], v[order]
    n = np.bincount(g, minlength=n_series)
    has = n > 0
    start = (np.cumsum(n) - n)[has]  # first position of each non-empty series (g is sorted)
    last = start + n[has] - 1
    pos = np.arange(len(g))
    nothing = len(g)

    def per_series(values: np.ndarray, fill) -> np.ndarray:
        out = np.full(n_series, fill, dtype=np.result_type(values, type(fill)))
        out[has] = values
        return out

    def first_where(cond: np.ndarray) -> np.ndarray:
        """Per non-empty series, the first position where ``cond`` holds (else ``nothing``)."""
        return np.minimum.reduceat(np.where(cond, pos, nothing), start) if len(g) else start

    baseline = per_series(v[start], np.nan)
    final = per_series(v[last], np.nan)
    rel = direction[g] * (v - baseline[g])
    raw_peak = per_series(np.maximum.reduceat(rel, start) if len(g) else rel[:0], np.nan)
    i_peak = first_where(rel == raw_peak[g])
    peak_step = per_series(s[i_peak], 0)
    peak_value = per_series(v[i_peak], np.nan)
    # the held effect: the largest min(rise_t, rise_t+1) inside the series (NaN under 2 points)
    nxt = np.full(len(g), -np.inf)
    nxt[:-1] = rel[1:]
    nxt[last] = -np.inf
    held = np.minimum(rel, nxt)
    effect = per_series(np.maximum.reduceat(held, start) if len(g) else held[:0], np.nan)
    effect = np.where(n >= 2, effect, np.nan)

    # the sampling null: the sd from the rows' extra (once per checkpoint), never below the
    # series' own scatter; p-values; Benjamini-Hochberg over each run's series
    if "extra" in rows.columns:
        sd = _series_noise(rows, idx, gid, np.ones(n_series, dtype=bool), list(series["metric"]), n_series)
    else:
        sd = np.full(n_series, np.nan)
    noise = np.fmax(sd, _series_scatter(g, v, start, n, has, n_series))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(noise > 0, effect / np.where(noise > 0, noise, 1.0), np.where(effect > 0, np.inf, -np.inf))
    z = np.where(np.isfinite(noise) & np.isfinite(effect), z, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        zp = np.where(noise > 0, raw_peak / np.where(noise > 0, noise, 1.0), np.where(raw_peak > 0, np.inf, -np.inf))
    zp = np.where(np.isfinite(noise) & np.isfinite(raw_peak) & (n >= 2), zp, np.nan)
    p_value, single = F.rise_p(z, zp, n) if n_series else (np.zeros(0), np.zeros(0, dtype=bool))
    effect = np.where(single, raw_peak, effect)
    tested = "extra" in rows.columns  # without the rows' extra no sampling sd: the null cannot run
    if not tested:
        effect, p_value = raw_peak, np.full(n_series, np.nan)

    # threshold: min_effect, or for in/off-support series of a null-calibrated metric the
    # NULL_QUANTILE of the off-support effects of the same (run, probe, site, metric, degree)
    threshold = min_effect.copy()
    in_support = series["in_support"]
    supp_known = in_support.notna().to_numpy()
    is_null = use_null & supp_known & (in_support.fillna(1).to_numpy() == 0) & np.isfinite(effect)
    if use_null.any():
        deg = series["degree"].astype("float64").fillna(-np.inf)
        group = pd.MultiIndex.from_arrays([series["run"], series["probe"], series["site"], series["metric"], deg])
        gcode, _ = pd.factorize(group)
        q = {}
        for code in np.unique(gcode[is_null]):
            q[code] = float(np.quantile(effect[is_null & (gcode == code)], NULL_QUANTILE))
        calibrated = use_null & supp_known & np.isin(gcode, list(q))
        for i in np.nonzero(calibrated)[0]:
            threshold[i] = max(threshold[i], q[gcode[i]])

    significant = np.zeros(n_series, dtype=bool)
    for run_rows in series.groupby("run", sort=False, dropna=False).indices.values():
        significant[run_rows] = F.bh_reject(p_value[run_rows])
    with np.errstate(invalid="ignore"):
        appears = significant & (n >= 3) & (effect >= threshold) & (effect > 0)
        if not tested:  # the threshold rule alone (the raw peak), as before the null
            appears = (n >= 2) & (effect >= threshold) & (effect > 0)
    half = np.where(appears, 0.5 * effect, np.inf)
    i_appear = first_where(rel >= half[g])
    appear_step = per_series(s[np.minimum(i_appear, max(nothing - 1, 0))] if len(g) else s[:0], 0)

    res = series[KEYS].copy()
    res["degree"] = pd.array(series["degree"].astype("float64").round(), dtype="Int64")
    res["in_support"] = pd.array(series["in_support"].astype("float64").round(), dtype="Int64")
    res["appear_step"] = pd.array(np.where(appears, appear_step, 0), dtype="Int64")
    res.loc[~appears, "appear_step"] = pd.NA
    res["peak_step"] = pd.array(np.where(has, peak_step, 0), dtype="Int64")
    res.loc[~has, "peak_step"] = pd.NA
    res["peak_value"] = peak_value
    res["baseline"] = baseline
    res["final_value"] = final
    res["effect"] = effect
    res["threshold"] = threshold
    res["n_steps"] = n.astype(np.int64)
    res["noise"] = noise
    res["p_value"] = p_value
    res["passes_null"] = pd.array(appears.astype(bool), dtype="boolean")
    if not tested:
        res["passes_null"] = pd.array([pd.NA] * n_series, dtype="boolean")
    res["seed"] = pd.array(res["seed"], dtype="Int64")
    return sort_summary(res)


def _series_scatter(
    g: np.ndarray, v: np.ndarray, start: np.ndarray, n: np.ndarray, has: np.ndarray, n_series: int
) -> np.ndarray:
    """Per series, ``findings.empirical_sd`` of its values (in step order), NaN under
    ``findings.EMPIRICAL_MIN_STEPS`` points; the same numbers as the per-series function."""
    out = np.full(n_series, np.nan)
    if len(g) < 2:
        return out
    same = g[1:] == g[:-1]
    d = pd.DataFrame({"g": g[1:][same], "d": np.diff(v)[same]})
    med = d.groupby("g")["d"].transform("median")
    mad = (d["d"] - med).abs().groupby(d["g"]).median()
    long_enough = n[mad.index.to_numpy()] >= F.EMPIRICAL_MIN_STEPS
    ids = mad.index.to_numpy()[long_enough]
    out[ids] = F.MAD_TO_SD * mad.to_numpy()[long_enough] / math.sqrt(2.0)
    return out


def _series_noise(
    rows: pd.DataFrame, idx: np.ndarray, gid: np.ndarray, noisy: np.ndarray, metrics: list[str], n_series: int
) -> np.ndarray:
    """Per series, the largest sampling sd of its checkpoints (``findings.sampling_sd`` of the
    series' metric and its rows' ``extra``; NaN if none); the JSON is parsed once per (run,
    probe, step, metric), since the sd belongs to the checkpoint (a linear probe's test set is
    the same for every monomial)."""
    pick = noisy[gid]
    sub = rows.iloc[idx[pick]][["run", "probe", "step", "extra"]].copy()
    sub["gid"] = gid[pick]
    sub["metric"] = np.asarray(metrics, dtype=object)[sub["gid"].to_numpy()] if len(sub) else []
    cols = ["run", "probe", "step", "metric"]
    uniq = sub.drop_duplicates(cols)[cols + ["extra"]].copy()
    uniq["sd"] = [F.sampling_sd(m, _extra_dict(e)) for m, e in zip(uniq["metric"], uniq["extra"], strict=True)]
    sub = sub.drop(columns="extra").merge(uniq.drop(columns="extra"), on=cols, how="left")
    out = np.full(n_series, np.nan)
    if len(sub):
        mx = sub.groupby("gid")["sd"].max()
        out[mx.index.to_numpy()] = mx.to_numpy()
    return out


def _extra_dict(extra) -> dict | None:
    if extra is None or (isinstance(extra, float) and math.isnan(extra)):
        return None
    try:
        d = json.loads(extra) if isinstance(extra, str) else extra
    except json.JSONDecodeError:
        return None
    return d if isinstance(d, dict) else None


def _group_ids(rows: pd.DataFrame, cols: list[str], idx: np.ndarray) -> np.ndarray:
    """Dense ids (0..n-1) of the distinct ``cols`` tuples of ``rows.iloc[idx]``; missing values
    are a value of their own (as ``groupby(dropna=False)``)."""
    code = np.zeros(len(idx), dtype=np.int64)
    for c in cols:
        col_codes, uniques = pd.factorize(rows[c], use_na_sentinel=False)
        code = code * (len(uniques) + 1) + col_codes[idx]
        _, code = np.unique(code, return_inverse=True)  # stay dense: no overflow however many columns
    return code.reshape(-1)


def sort_summary(df: pd.DataFrame) -> pd.DataFrame:
    """The summary's row order (teacher first, then by run, probe, metric, site, degree,
    in-support first, feature in natural order: ``2`` before ``10``), columns ``SUMMARY_COLUMNS``; pieces of one table (per run)
    concatenated and sorted give the table."""
    if df.empty:
        return df.reset_index(drop=True)[SUMMARY_COLUMNS]
    keys = [(df["role"] != C.ROLE_TEACHER).to_numpy()]  # as a stable sort_values, missing values last
    for c in ("run", "probe", "metric", "site"):
        codes, _ = pd.factorize(df[c], sort=True)
        keys.append(np.where(codes < 0, np.iinfo(np.int64).max, codes))
    keys.append(pd.to_numeric(df["degree"]).astype("float64").fillna(np.inf).to_numpy())
    keys.append((-pd.to_numeric(df["in_support"]).astype("float64")).fillna(np.inf).to_numpy())
    codes, uniques = pd.factorize(df["feature"])  # numeric parts compare as numbers: "2" < "10"
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[sorted(range(len(uniques)), key=lambda i: _natural(uniques[i]))] = np.arange(len(uniques))
    keys.append(np.where(codes < 0, np.iinfo(np.int64).max, rank[codes] if len(uniques) else codes))
    order = np.lexsort(keys[::-1])
    return df.iloc[order].reset_index(drop=True)[SUMMARY_COLUMNS]


def summarize_series_loop(rows: pd.DataFrame, specs: Mapping[tuple[str, str], MetricSpec]) -> pd.DataFrame:
    """Reference: ``summarize_frame`` (declared specs only) as a Python loop over series calling
    ``appearance`` one at a time; slow (seconds per 100k rows). Tests and the dashboard
    benchmark compare the vectorised table against it."""
    chosen = {}
    for probe, metric in rows[["probe", "metric"]].drop_duplicates().itertuples(index=False):
        spec = _spec(probe, metric, specs, explicit=False)
        if spec is not None:
            chosen[(probe, metric)] = spec
    df = rows[[(p, m) in chosen for p, m in zip(rows["probe"], rows["metric"], strict=True)]]

    def group(rec: dict) -> tuple:
        return (
            rec["run"],
            rec["probe"],
            rec["site"],
            rec["metric"],
            None if pd.isna(rec["degree"]) else int(rec["degree"]),
        )

    series = []
    for key, grp in df.groupby(KEYS, sort=False, dropna=False):
        rec = dict(zip(KEYS, key, strict=True))
        spec = chosen[(rec["probe"], rec["metric"])]
        rec.update(degree=grp["degree"].iloc[0], in_support=grp["in_support"].iloc[0])
        rec.update(appearance(grp["step"], grp["value"], spec))
        series.append((rec, spec, grp))
    sd_at: dict[tuple, float] = {}  # the sampling sd belongs to the checkpoint: parse it once there
    for rec, _, grp in series:
        if "extra" in grp:
            for step, extra in zip(grp["step"], grp["extra"], strict=True):
                key = (rec["run"], rec["probe"], step, rec["metric"])
                if key not in sd_at:
                    sd_at[key] = F.sampling_sd(rec["metric"], _extra_dict(extra))
    sd_of = {}
    for i, (rec, spec, grp) in enumerate(series):
        sds = [sd_at.get((rec["run"], rec["probe"], s, rec["metric"]), math.nan) for s in grp["step"]]
        sd_of[i] = float(np.nanmax(sds)) if np.isfinite(sds).any() else None
        rec.update(appearance(grp["step"], grp["value"], spec, sd=sd_of[i]))  # the effect the null collects
        if "extra" not in rows.columns:  # untestable rows: the raw peak, as the threshold rule had it
            rec["effect"] = _raw_effect(rec, spec)
    null = {}
    for rec, spec, _ in series:
        if (
            spec.off_support_null
            and pd.notna(rec["in_support"])
            and not rec["in_support"]
            and np.isfinite(rec["effect"])
        ):
            null.setdefault(group(rec), []).append(rec["effect"])
    judged = []
    for i, (rec, spec, grp) in enumerate(series):
        threshold = spec.min_effect
        if spec.off_support_null and pd.notna(rec["in_support"]) and null.get(group(rec)):
            threshold = max(threshold, float(np.quantile(null[group(rec)], NULL_QUANTILE)))
        sd = sd_of[i]
        judged.append((rec, spec, grp, threshold, sd, appearance(grp["step"], grp["value"], spec, threshold, sd)))
    significant = {}
    for run in {rec["run"] for rec, *_ in judged}:
        mine = [i for i, (rec, *_) in enumerate(judged) if rec["run"] == run]
        for i, ok in zip(mine, F.bh_reject([judged[i][-1]["p_value"] for i in mine]), strict=True):
            significant[i] = bool(ok)
    out = []
    for i, (rec, spec, grp, threshold, sd, _) in enumerate(judged):
        rec.update(appearance(grp["step"], grp["value"], spec, threshold, sd, significant=significant[i]))
        if "extra" not in rows.columns:  # no sampling sd: the threshold rule alone (the raw peak)
            eff = _raw_effect(rec, spec)
            ok = rec["n_steps"] >= 2 and eff >= threshold and eff > 0
            half = rise_step(grp["step"], grp["value"], spec, eff) if ok else None
            rec.update(effect=eff, p_value=math.nan, passes_null=pd.NA, appear_step=half)
        out.append(rec)
    res = pd.DataFrame(out, columns=SUMMARY_COLUMNS)
    res["passes_null"] = pd.array(res["passes_null"], dtype="boolean")
    for col in ("appear_step", "peak_step", "degree", "in_support", "seed"):
        res[col] = pd.array(res[col], dtype="Int64")
    return sort_summary(res)


def _task_names(store: ResultsStore, db_path: Path) -> list[str]:
    names = set()
    for cfg in store.runs()["config"]:
        try:
            task = json.loads(cfg or "{}").get("task", {})
        except json.JSONDecodeError:
            continue
        if isinstance(task, dict) and task.get("name"):
            names.add(task["name"])
    exp = db_path.parent / C.EXPERIMENT_FILE
    if not names and exp.is_file():
        try:
            names.add(json.loads(exp.read_text()).get("task", {}).get("name", ""))
        except (json.JSONDecodeError, AttributeError):
            pass
    return sorted(n for n in names if n)


def summarize(
    db_path: Path | str,
    probes: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
    runs: Iterable[str] | None = None,
    specs: Mapping[tuple[str, str], MetricSpec] | None = None,
    check: bool = False,
) -> pd.DataFrame:
    """The appearance table of a results database (columns ``SUMMARY_COLUMNS``).

    ``specs`` defaults to the specs the sweep stored (``ResultsStore.metric_specs``); a database
    from before they were stored falls back to what its task's probes declare
    (``probes.registry.metric_specs``). ``check``: verify the file first
    (``ResultsStore.check``; a damaged database raises ``CurriculensError``).
    """
    db_path = Path(db_path)
    with ResultsStore(db_path, readonly=True) as store:
        if check:
            store.check()
        try:
            rows, specs = _read(store, db_path, probes, metrics, runs, specs)
        except sqlite3.DatabaseError as exc:
            raise CurriculensError(f"results database {db_path} cannot be read: {str(exc).splitlines()[0]}") from None
    return summarize_frame(rows, specs, metrics=list(metrics) if metrics else None)


def _read(store: ResultsStore, db_path: Path, probes, metrics, runs, specs) -> tuple[pd.DataFrame, dict]:
    """The rows asked for and the metric specs (given, else those the tasks' probes declare)."""
    where, params = [], []
    for col, vals in (("probe", probes), ("metric", metrics), ("run", runs)):
        vals = list(vals or [])
        unknown = sorted(set(vals) - set(store.distinct(col))) if vals else []
        if unknown:
            raise CurriculensError(
                f"unknown {col} {', '.join(unknown)} in {db_path} (known: {', '.join(map(str, store.distinct(col))) or 'none'})"
            )
        if vals:
            where.append(f"{col} IN ({', '.join('?' * len(vals))})")
            params += vals
    rows = store.query(" AND ".join(where), tuple(params))
    specs = store.metric_specs() if specs is None else dict(specs)  # default: what the sweep stored
    if not specs:  # a database from before specs were stored: what its task's probes declare
        from probes import registry  # imports the probes (torch): only for such old databases

        for task in _task_names(store, db_path):
            specs.update(registry.metric_specs(task))
    return rows, specs


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_summary(df: pd.DataFrame, off_support: bool = False) -> str:
    """A plain-text table. Off-support series (``in_support == 0``) are hidden unless
    ``off_support`` (a footer says how many)."""
    if df.empty:
        return "no primary-metric series to summarise"
    shown = df if off_support else df[df["in_support"].isna() | (df["in_support"] == 1)]
    cols = [
        "run",
        "probe",
        "metric",
        "site",
        "degree",
        "feature",
        "in_support",
        "appear_step",
        "peak_step",
        "peak_value",
        "baseline",
        "final_value",
        "threshold",
    ]
    head = [
        "run",
        "probe",
        "metric",
        "site",
        "deg",
        "feature",
        "in_S",
        "appears",
        "peak_step",
        "peak",
        "baseline",
        "final",
        "threshold",
    ]
    body = []
    for rec in shown[cols].itertuples(index=False):
        vals = [_fmt(v) for v in rec]
        vals[7] = "never" if vals[7] == "-" else vals[7]
        vals[6] = {"1": "yes", "0": "no"}.get(vals[6], "-")
        body.append(vals)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    hidden = df[df["in_support"] == 0]
    if not off_support and not hidden.empty:
        lines.append("")
        lines.append(
            f"{len(hidden)} off-support series hidden: they are the null that sets each in-support "
            "threshold (--off-support lists them)"
        )
    return "\n".join(lines)


def _shown(df: pd.DataFrame, off_support: bool) -> pd.DataFrame:
    return df if off_support else df[df["in_support"].isna() | (df["in_support"] == 1)]


def earliest(df: pd.DataFrame, per_run: int, run_order: Iterable[str] | None = None) -> pd.DataFrame:
    """The ``per_run`` earliest-appearing series of each run (off-support series dropped
    *first*, so every run keeps its own rows); runs in ``run_order`` (else teacher first)."""
    shown = _shown(df[df["appear_step"].notna()], off_support=False)
    order = {name: i for i, name in enumerate(run_order or [])}
    rank = shown["run"].map(order).fillna(len(order)) if order else (shown["role"] != C.ROLE_TEACHER).astype(int)
    return (
        shown.assign(_order=rank)
        .sort_values(["_order", "run", "appear_step"], kind="stable")
        .groupby("run", sort=False)
        .head(per_run)
        .drop(columns="_order")
        .reset_index(drop=True)
    )


PIVOT_INDEX = ["probe", "metric", "site", "degree", "feature"]


def pivot_by_method(df: pd.DataFrame, off_support: bool = False) -> pd.DataFrame:
    """Feature x method -> appearance step: one row per (probe, metric, site, degree, feature),
    one column per method (teacher first, then ``ce``, ``one-shot``, ``progressive``,
    ``two-shot``, then any other). A cell is the median appear step over that method's runs
    (seeds) in which the series appeared (``<NA>`` where none did); ``<method> appeared`` says
    in how many of its runs (``"2/3"``). Off-support series are dropped unless ``off_support``.
    """
    shown = _shown(df, off_support)
    known = [C.METHOD_TEACHER, *C.PAPER_METHODS]
    methods = [m for m in known if m in set(shown["method"])] + sorted(set(shown["method"]) - set(known))
    if shown.empty:
        return pd.DataFrame(columns=PIVOT_INDEX + methods)
    keyed = shown.assign(
        degree=shown["degree"].astype("float64").fillna(-1), _appear=shown["appear_step"].astype("float64")
    )
    g = keyed.groupby(PIVOT_INDEX + ["method"], sort=False, dropna=False)["_appear"]
    stats = pd.DataFrame({"median": g.median(), "hit": g.count(), "n": g.size()}).reset_index()
    med = stats.pivot(index=PIVOT_INDEX, columns="method", values="median")
    hits = stats.assign(frac=stats["hit"].astype(str) + "/" + stats["n"].astype(str)).pivot(
        index=PIVOT_INDEX, columns="method", values="frac"
    )
    out = pd.DataFrame(index=med.index)
    for m in methods:
        out[m] = pd.array(med[m].round(), dtype="Int64") if m in med else pd.array([pd.NA] * len(med), dtype="Int64")
    for m in methods:
        out[f"{m} appeared"] = hits[m] if m in hits else None
    out = out.reset_index()
    out["degree"] = pd.array(out["degree"].where(out["degree"] >= 0).round(), dtype="Int64")
    key = out["feature"].map(_natural)
    out = out.assign(_f=key).sort_values(
        ["probe", "metric", "site", "degree", "_f"], kind="stable", na_position="first"
    )
    return out.drop(columns="_f").reset_index(drop=True)


POOLED_COLUMNS = PIVOT_INDEX + ["method", "n_runs", "n_appeared", "mean", "lo", "hi"]


def pool_by_method(df: pd.DataFrame, level: float = F.LEVEL) -> pd.DataFrame:
    """Appearance pooled over each method's runs (seeds, and teacher replicates when the frame
    holds several experiments): per (feature, method) the number of runs, in how many the
    feature appeared (passed the null), and the mean appear step over those with its Student-t
    ``level`` interval (``findings.t_interval``; NaN bounds under 2 appearances). In-support and
    support-free series only."""
    shown = _shown(df, off_support=False)
    if shown.empty:
        return pd.DataFrame(columns=POOLED_COLUMNS)
    keyed = shown.assign(degree=shown["degree"].astype("float64").fillna(-1))
    rows = []
    for key, g in keyed.groupby(PIVOT_INDEX + ["method"], sort=False, dropna=False):
        iv = F.t_interval(g["appear_step"].dropna().astype(float), level=level)
        rows.append([*key, len(g), iv.n, iv.estimate, iv.lo, iv.hi])
    out = pd.DataFrame(rows, columns=POOLED_COLUMNS)
    out["degree"] = pd.array(out["degree"].where(out["degree"] >= 0).round(), dtype="Int64")
    return out.sort_values(["probe", "metric", "site", "degree", "method"], kind="stable").reset_index(drop=True)


def format_pooled(pooled: pd.DataFrame) -> str:
    """The pooled table as text: ``mean [lo, hi] (k/n)`` per feature and method."""
    if pooled.empty:
        return "no primary-metric series to summarise"
    head = ["probe", "metric", "site", "deg", "feature", "method", "appears (mean [95% t interval]) in k/n runs"]
    body = []
    for r in pooled.to_dict("records"):
        cell = F.format_estimate(r["mean"], r["lo"], r["hi"], r["n_appeared"], empty="never")
        body.append([_fmt(r[c]) for c in PIVOT_INDEX] + [r["method"], f"{cell} ({r['n_appeared']}/{r['n_runs']})"])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def _natural(text) -> tuple:
    """Sort key: ``"0_10"`` after ``"0_9"``, ``"offset+2"`` after ``"offset+1"``."""
    import re

    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(text)) if t != "")


def format_pivot(pivot: pd.DataFrame) -> str:
    """The method pivot as plain text: ``appear step`` per method, ``never``, and ``(k/n)``
    after a step when only k of the method's n runs saw the feature appear."""
    if pivot.empty:
        return "no primary-metric series to summarise"
    methods = [c for c in pivot.columns if c not in PIVOT_INDEX and not str(c).endswith(" appeared")]
    head = ["probe", "metric", "site", "deg", "feature", *methods]
    body = []
    for rec in pivot.to_dict("records"):
        row = [_fmt(rec[c]) for c in PIVOT_INDEX]
        for m in methods:
            frac = rec.get(f"{m} appeared")
            if frac is None or (isinstance(frac, float) and math.isnan(frac)):
                row.append("-")
                continue
            hit, n = (int(x) for x in str(frac).split("/"))
            cell = "never" if hit == 0 else _fmt(rec[m])
            row.append(cell + (f" ({frac})" if 0 < hit < n or (n > 1 and hit == 0) else ""))
        body.append(row)
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    lines.append("")
    lines.append(
        "cells: the median step at which the feature appears in that method's runs; (k/n): it appeared in "
        "k of n runs; - : no such series"
    )
    return "\n".join(lines)


def summary_records(df: pd.DataFrame) -> list[dict]:
    """JSON-ready records (missing values as None)."""
    out = []
    for rec in df.to_dict(orient="records"):
        clean = {}
        for k, v in rec.items():
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                clean[k] = None
            elif isinstance(v, (np.integer,)):
                clean[k] = int(v)
            elif isinstance(v, (np.floating,)):
                clean[k] = float(v)
            else:
                clean[k] = v
        out.append(clean)
    return out
