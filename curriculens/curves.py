"""Where a training curve changes: one home for every rule (pure numpy, no I/O, no torch).

Three primitives, on points taken in step order (NaN points dropped with their step):

- ``first_crossing(steps, values, level)``: the first evaluated step at which a curve reaches
  ``level`` (at or above it; at or below it with ``increasing=False``). Steps to 95 % accuracy,
  the benchmark's 0.6 / 0.99 marks.
- ``crossing(steps, values, level, after=...)``: the same, linearly interpolated between that
  evaluation and the one before it, from step ``after`` on (a real-valued step).
- ``window(steps, values)``: the 10-90 % transition window of a curve (rule below).

Built on them:

- ``half_rise(steps, values, direction)``: where a probe feature *appears*
  (``probes.summary.appearance``): the first step at which it has made half of its largest
  move away from its step-0 value.
- ``detect_phases(steps, losses)``: plateau / sharp drop / slow phase of a loss curve
  (paper figure 3a), by continuous piecewise-linear fits on log(step) (two rules, a confidence).
- ``teacher_transition(steps, acc, loss, rule=...)``: the teacher's transition, which the
  dashboard shades and whose middle the two-shot student starts from.

**The middle of the teacher's transition** (one definition for every task): the step at which
the teacher's curve first crosses the level halfway between its level before and its level
after the transition, searched from the start of the transition and interpolated between
evaluations (``Transition.mid_step``, a float). A two-shot student's first-stage checkpoint is
the saved checkpoint nearest it (``nearest_step``, ties go to the earlier step); the dashboard
marks ``Transition.mid``, the evaluated step nearest it. What "the transition" is depends on the
task's rule (``transition_rule``):

- ``accuracy`` (parity, the default): the 10-90 % window of the held-out accuracy if it rises by
  ``min_change``, else the window of the held-out loss.
- ``loss_drop`` (PCFG): the sharp drop of the held-out loss between its plateau and its slow
  phase, when ``detect_phases`` finds the three phases clearly; otherwise there is none.

The 10-90 % window rule:

1. ``values`` must rise during the transition (accuracy). For a falling curve (loss) pass
   ``increasing=False``: the curve is negated first.
2. ``start_level`` = the median of the first ``edge`` points and ``end_level`` = the median
   of the last ``edge`` points, with ``edge = max(1, round(edge_frac * n))``.
   ``gain = end_level - start_level``. If ``gain < min_change`` (in the curve's own units:
   0.05 = five accuracy points) there is no transition and the result is ``None``.
3. ``lo = start_level + lo_frac * gain`` and ``hi = start_level + hi_frac * gain``
   (10% and 90% of the rise by default).
4. ``end`` = the first step from which the curve stays at or above ``hi`` for good (if the
   very last point dips below ``hi``, the first step at or above ``hi`` after the last
   point at or below ``lo``).
5. ``start`` = the last step before ``end`` at which the curve is at or below ``lo``
   (the last time it was still near where it began); the first step if there is none.
6. the middle: the crossing of ``start_level + gain / 2`` from ``start`` (above).

Notes:
    Steps are the evaluated steps, so the window's edges are evaluated steps too; its
    resolution is the evaluation interval. Noise around the final level can move ``end``
    later (it must stay above ``hi``), never earlier, so the window errs on the wide side.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

RULE_ACCURACY = "accuracy"
RULE_LOSS_DROP = "loss_drop"
RULES = (RULE_ACCURACY, RULE_LOSS_DROP)
TASK_RULES = {"pcfg": RULE_LOSS_DROP}  # task name -> rule; every other task: RULE_ACCURACY

MAX_POINTS = 32  # detect_phases thins longer curves to this many points before its search
N_SEGMENTS = 5  # detect_phases fits this many linear segments (its second rule: one fewer)
MIDDLE_AGREEMENT = 0.25  # detect_phases' two rules agree when their middles are this close (relative)
CONFIDENCE_AGREE, CONFIDENCE_UNCLEAR, CONFIDENCE_NONE = "two rules agree", "unclear", "none"


# --- primitives -----------------------------------------------------------------------------
def _points(steps: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Finite (step, value) points as float arrays, in step order (stable for equal steps)."""
    x = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"steps and values differ in length: {x.shape} vs {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def _first_at_or_above(z: np.ndarray, level: float) -> int | None:
    hit = np.nonzero(z >= level)[0]
    return int(hit[0]) if hit.size else None


def first_crossing(
    steps: Sequence[float], values: Sequence[float], level: float, *, increasing: bool = True
) -> int | None:
    """The first evaluated step (in step order) at which the curve is at or above ``level``
    (at or below it with ``increasing=False``); None if it never is."""
    x, y = _points(steps, values)
    i = _first_at_or_above(y if increasing else -y, level if increasing else -level)
    return None if i is None else int(x[i])


def crossing(
    steps: Sequence[float], values: Sequence[float], level: float, *, increasing: bool = True, after: float = -math.inf
) -> float | None:
    """The step at which the curve first reaches ``level`` at or after step ``after``, linearly
    interpolated between that evaluation and the one before it (a float).

    None if it never does, or already does at its very first point (no crossing was seen).
    """
    x, y = _points(steps, values)
    sign = 1.0 if increasing else -1.0
    z, target = sign * y, sign * level
    hit = np.nonzero((x >= after) & (z >= target))[0]
    if not hit.size or hit[0] == 0:
        return None
    j = int(hit[0])
    x0, x1, z0, z1 = x[j - 1], x[j], z[j - 1], z[j]
    return float(x1 if z0 == z1 else x0 + (target - z0) * (x1 - x0) / (z1 - z0))


def nearest_step(candidates: Sequence[int], target: float) -> int:
    """The candidate step (e.g. a saved checkpoint) closest to ``target``; ties go earlier."""
    c = sorted(int(v) for v in candidates)
    if not c:
        raise ValueError("no candidate steps")
    return min(c, key=lambda v: (abs(v - target), v))


def half_rise(steps: Sequence[float], values: Sequence[float], *, direction: int = 1) -> dict:
    """Where a curve first makes half of its largest move away from its first value.

    ``direction`` +1: moves up count (accuracy, correlation); -1: moves down (loss).
    Returns ``step`` (None when the curve never moves that way or has < 2 points),
    ``peak_step``, ``peak_value``, ``baseline`` (the first value), ``final_value``, ``effect``
    (the largest move, in the curve's units, >= 0 unless the curve only moves the other way)
    and ``n_steps``; values are NaN and steps None for an empty curve.
    """
    x, v = _points(steps, values)
    out = {
        "step": None,
        "peak_step": None,
        "peak_value": math.nan,
        "baseline": math.nan,
        "final_value": math.nan,
        "effect": math.nan,
        "n_steps": int(x.size),
    }
    if x.size == 0:
        return out
    rel = (1.0 if direction >= 0 else -1.0) * (v - v[0])
    i_peak = int(np.argmax(rel))
    effect = float(rel[i_peak])
    out.update(
        peak_step=int(x[i_peak]),
        peak_value=float(v[i_peak]),
        baseline=float(v[0]),
        final_value=float(v[-1]),
        effect=effect,
    )
    if x.size >= 2 and effect > 0:
        out["step"] = int(x[_first_at_or_above(rel, 0.5 * effect)])
    return out


# --- the transition window ------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    """A detected transition, in steps, and the curve's levels around it.

    ``start``, ``mid`` and ``end`` are evaluated steps (``mid``: the one nearest ``mid_step``);
    ``mid_step`` is the middle itself (module docstring), a float. Levels are in the curve's own
    units (for a loss, the actual loss values, not negated). ``rule``: how it was found.
    """

    start: int
    mid: int
    end: int
    start_level: float
    end_level: float
    metric: str = ""
    mid_step: float = math.nan
    rule: str = RULE_ACCURACY

    @property
    def width(self) -> int:
        return self.end - self.start

    def describe(self) -> str:
        name = self.metric or "value"
        return (
            f"{name} goes from {self.start_level:.3g} to {self.end_level:.3g} between step "
            f"{self.start:,} and step {self.end:,} (middle at step {self.mid:,})"
        )


def _middle(
    x: np.ndarray, z: np.ndarray, start_level: float, end_level: float, i_start: int, i_end: int
) -> tuple[int, float]:
    """(nearest evaluated step, crossing step) of the half level, searched from ``i_start``;
    the start itself if the curve is already past the half level there."""
    half = start_level + 0.5 * (end_level - start_level)
    mid = crossing(x[i_start:], z[i_start:], half)
    if mid is None:
        mid = float(x[i_start])
    return nearest_step(x[i_start : i_end + 1], mid), mid


def window(
    steps: Sequence[float],
    values: Sequence[float],
    *,
    increasing: bool = True,
    lo_frac: float = 0.1,
    hi_frac: float = 0.9,
    min_change: float = 0.05,
    edge_frac: float = 0.1,
    metric: str = "",
) -> Transition | None:
    """The 10-90 % transition window of one curve, by the rule in the module docstring.

    Args:
        steps: evaluated steps (any order; NaN values are dropped with their step).
        values: the curve at those steps.
        increasing: True for a rising curve (accuracy), False for a falling one (loss).
        lo_frac, hi_frac: the window spans the rise from ``lo_frac`` to ``hi_frac``.
        min_change: the smallest rise (end level minus start level) that counts.
        edge_frac: fraction of points whose median gives the start and the end levels.
        metric: a name stored on the result, for labels.

    Returns:
        A ``Transition``, or ``None`` when there are fewer than 3 points or no rise.
    """
    if not 0.0 <= lo_frac < hi_frac <= 1.0:
        raise ValueError("need 0 <= lo_frac < hi_frac <= 1")
    x, y = _points(steps, values)
    n = len(x)
    if n < 3:
        return None
    sign = 1.0 if increasing else -1.0
    z = sign * y
    edge = max(1, int(round(edge_frac * n)))
    start_level = float(np.median(z[:edge]))
    end_level = float(np.median(z[-edge:]))
    gain = end_level - start_level
    if gain < min_change:
        return None
    lo = start_level + lo_frac * gain
    hi = start_level + hi_frac * gain

    below_hi = np.nonzero(z < hi)[0]
    i_end = int(below_hi[-1]) + 1 if len(below_hi) else 0
    if i_end >= n:  # the very last point dips below hi: take the first hi after the last lo
        at_lo = np.nonzero(z <= lo)[0]
        after = int(at_lo[-1]) + 1 if len(at_lo) else 0
        above = np.nonzero(z[after:] >= hi)[0]
        if not len(above):
            return None
        i_end = after + int(above[0])
    at_lo = np.nonzero(z[:i_end] <= lo)[0]
    i_start = int(at_lo[-1]) if len(at_lo) else 0
    mid, mid_step = _middle(x, z, start_level, end_level, i_start, i_end)
    return Transition(
        start=int(x[i_start]),
        mid=int(mid),
        end=int(x[i_end]),
        start_level=sign * start_level,
        end_level=sign * end_level,
        metric=metric,
        mid_step=mid_step,
        rule=RULE_ACCURACY,
    )


# --- loss phases ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Phases:
    """Plateau / drop / slow phase of a loss curve (``detect_phases``); steps are in the units of
    the input (optimizer steps).

    ``*_start``/``*_end`` are the segment's breakpoints (evaluation steps); the drop spans
    ``[drop_start, drop_end]``. Slopes are loss per step of the fit (negative = falling).
    ``mid_step`` is where the smoothed curve first crosses the middle of the drop's loss range
    (the middle of the transition, module docstring; the paper's C1).
    """

    plateau_start: float
    plateau_end: float
    drop_start: float
    drop_end: float
    slow_start: float
    slow_end: float
    mid_step: float
    plateau_loss: float
    drop_end_loss: float
    final_loss: float
    plateau_slope: float
    drop_slope: float
    slow_slope: float
    clear: bool
    confidence: str = ""  # "two rules agree" | "unclear" | "none" (detect_phases)
    slow_flat: bool = False  # the slow phase's slope is within flat_ratio of the drop's (not a veto)
    mid_step_alt: float = math.nan  # the middle by the second rule (one segment fewer)

    def phase_of(self, step: float) -> str:
        """``transient`` | ``plateau`` | ``drop`` | ``slow`` for a step."""
        if step < self.plateau_start:
            return "transient"
        if step < self.drop_start:
            return "plateau"
        if step <= self.drop_end:
            return "drop"
        return "slow"

    def to_dict(self) -> dict:
        return asdict(self)


def _smooth(y: np.ndarray) -> np.ndarray:
    """3-point running median (ends kept): removes single-evaluation spikes."""
    if y.size < 3:
        return y.copy()
    out = y.copy()
    out[1:-1] = np.median(np.stack([y[:-2], y[1:-1], y[2:]]), axis=0)
    return out


def _hinge_fit(x: np.ndarray, y: np.ndarray, k: int = N_SEGMENTS) -> tuple[list[float], np.ndarray]:
    """Best continuous k-segment fit: the k - 1 breakpoints and the fitted values at ``x``.

    Longer curves are searched exhaustively on ``MAX_POINTS`` evenly thinned points, then every
    breakpoint is refined over all points between its neighbours (so a short plateau early in a
    long run is not lost between thinned points)."""
    n = x.size
    if n > MAX_POINTS:  # evenly spaced on the fit's axis (log steps: every decade gets its share)
        grid = np.linspace(x[0], x[-1], MAX_POINTS)
        keep = np.unique(np.clip(np.searchsorted(x, grid), 0, n - 1))
        xs, ys = x[keep], y[keep]
    else:
        xs, ys = x, y
    x0, scale = float(xs[0]), max(float(xs[-1] - xs[0]), 1e-12)
    u = (xs - x0) / scale
    combos = np.array(list(itertools.combinations(range(1, xs.size - 1), k - 1)), dtype=int)  # [C, k-1]
    hinges = np.maximum(u[None, :, None] - u[combos][:, None, :], 0.0)  # [C, n, k-1]
    base = np.broadcast_to(np.stack([np.ones_like(u), u], axis=1), (combos.shape[0], u.size, 2))
    design = np.concatenate([base, hinges], axis=2)  # [C, n, k+1]
    gram = design.transpose(0, 2, 1) @ design + 1e-10 * np.eye(k + 1)
    rhs = design.transpose(0, 2, 1) @ ys
    coef = np.linalg.solve(gram, rhs[..., None])[..., 0]
    sse = ((np.einsum("cnk,ck->cn", design, coef) - ys) ** 2).sum(axis=1)
    breaks = [float(v) for v in xs[combos[int(np.argmin(sse))]]]
    uu = (x - x0) / scale

    def fit(bs: list[float]) -> tuple[float, np.ndarray]:
        full = np.stack([np.ones_like(uu), uu] + [np.maximum(uu - (v - x0) / scale, 0.0) for v in bs], axis=1)
        c, *_ = np.linalg.lstsq(full, y, rcond=None)
        return float(((full @ c - y) ** 2).sum()), full @ c

    best, values = fit(breaks)
    if n > MAX_POINTS:  # refine on every point: each breakpoint moves between its neighbours
        for _ in range(n):  # until no move lowers the error (coordinate descent; bounded)
            moved = False
            for i in range(len(breaks)):
                lo = breaks[i - 1] if i else x[0]
                hi = breaks[i + 1] if i + 1 < len(breaks) else x[-1]
                for v in x[(x > lo) & (x < hi)]:
                    trial = breaks[:i] + [float(v)] + breaks[i + 1 :]
                    err, vals = fit(trial)
                    if err < best - 1e-12 * max(best, 1e-30):
                        best, values, breaks, moved = err, vals, trial, True
            if not moved:
                break
    return breaks, values


def _drop_of(x: np.ndarray, y: np.ndarray, k: int, flat_ratio: float, min_drop: float) -> dict:
    """One continuous ``k``-segment fit of (x, y) and the drop it shows (units of x)."""
    breaks, fit = _hinge_fit(x, y, k)
    edges = [float(x[0])] + breaks + [float(x[-1])]
    k = len(edges) - 1

    def value(at: float) -> float:
        return float(np.interp(at, x, fit))

    slopes = [float((value(edges[i + 1]) - value(edges[i])) / max(edges[i + 1] - edges[i], 1e-12)) for i in range(k)]

    def flat(i: int, ref: float) -> bool:  # a plateau: flat and at least 3 evaluations long
        n_pts = int(((x >= edges[i]) & (x <= edges[i + 1])).sum())
        return abs(slopes[i]) <= flat_ratio * abs(ref) and n_pts >= 3

    # the steepest segment with a flat one before it; a steep first segment is the transient
    cands = [i for i in range(1, k) if slopes[i] < 0 and any(flat(j, slopes[i]) for j in range(i))]
    d = min(cands, key=lambda i: slopes[i]) if cands else 1 + int(np.argmin(slopes[1:]))
    floor = 0 if cands else 1
    lo = hi = d
    while lo - 1 >= floor and slopes[lo - 1] <= 0.5 * slopes[d] and not flat(lo - 1, slopes[d]):
        lo -= 1
    while hi + 1 < k and slopes[hi + 1] <= 0.5 * slopes[d]:
        hi += 1
    p = lo - 1 if lo >= 1 else lo
    drop_start, drop_end = edges[lo], edges[hi + 1]
    drop_hi, drop_lo = value(drop_start), value(drop_end)
    drop_slope = (drop_lo - drop_hi) / max(drop_end - drop_start, 1e-12)
    slow_start, slow_end = (drop_end, edges[-1]) if hi + 1 < k else (drop_start, drop_end)
    slow_slope = (value(slow_end) - value(slow_start)) / max(slow_end - slow_start, 1e-12)
    mid = crossing(x, y, 0.5 * (drop_hi + drop_lo), increasing=False, after=drop_start)
    if mid is None:
        mid = 0.5 * (drop_start + drop_end)
    # the loss range left after the transient: the segments before the first flat one (at least
    # the first segment; a dense log grid samples the transient with two or three segments)
    first_flat = min((j for j in range(d) if flat(j, slopes[d])), default=1) if cands else 1
    after = y[x >= edges[max(first_flat, 1)]]
    span = float(after.max() - y.min()) if after.size else 0.0
    # found: a plateau, then a drop that ends before the run does (else its middle is unknown)
    found = bool(cands) and hi + 1 < k and drop_slope < 0 and span > 0 and (drop_hi - drop_lo) >= min_drop * span
    in_p = (x >= edges[p]) & (x <= edges[p + 1])
    return dict(
        edges=edges,
        p=p,
        drop=(drop_start, drop_end),
        slow=(slow_start, slow_end),
        mid=float(mid),
        plateau_loss=float(np.median(y[in_p])) if in_p.any() else value(edges[p]),
        drop_end_loss=float(drop_lo),
        found=found,
        slow_flat=bool(hi + 1 < k and abs(slow_slope) <= flat_ratio * abs(drop_slope)),
    )


def detect_phases(
    steps: Sequence[float],
    losses: Sequence[float],
    flat_ratio: float = 0.4,
    min_drop: float = 0.25,
) -> Phases | None:
    """Plateau / drop / slow phase of a loss curve, on a **log step axis**; None with fewer than
    11 points.

    Drops the step-0 evaluation (the untrained model sits at ln V; it is not part of the
    dynamics, and log 0 is not a step) and fits the (3-point median smoothed) curve against
    log(step) with a *continuous* piecewise-linear function by least squares, searching every
    set of breakpoints among the evaluation steps (thinned to at most ``MAX_POINTS`` points evenly
    spaced in log step, then refined over all points). The log axis is the paper's own: a
    plateau at steps 50-175 of a 5,000-step run is a third of the axis, not 3%. Continuity
    matters: with independent segments a fit can hide the drop in a jump between two flat
    pieces. In each fit:

    - the *drop* is the steepest segment that has a flat segment before it (slope within
      ``flat_ratio`` of the candidate's), extended over neighbouring segments at least half as
      steep; a steep segment with nothing flat before it is the end of the initial fall to the
      unigram level (the *transient*), never the drop;
    - the *plateau* is the flat segment right before the drop (at least three evaluations);
    - the *slow phase* runs from the end of the drop to the end (its slope: the average).
    - a fit *finds* a plateau and a drop when such a drop exists, ends before the last segment
      (a curve still falling at its end has no known middle) and removes at least
      ``min_drop`` of the loss range left after the transient (the segments before the first
      flat one, at least the first: a dense log-spaced grid samples the initial fall with two).

    Two rules: the ``N_SEGMENTS``-segment fit (the fields come from it) and a fit with one
    segment fewer. ``clear`` (``confidence == "two rules agree"``) when both find a plateau
    and a drop and their middles are within 25% of each other; ``"unclear"`` when they disagree
    (one finds it, or the middles differ); ``"none"`` when neither does. Whether the slow phase
    is flat (average slope within ``flat_ratio`` of the drop's) is reported as ``slow_flat``
    and never vetoes the drop. Slopes are loss per step (over each segment's own steps).
    Without a found drop the fields describe the steepest segment after the first.
    """
    x, y = _points(steps, losses)
    if x.size < 2 * N_SEGMENTS + 1:
        return None
    keep = x > 0
    if (~keep).any() and keep.sum() < 2 * N_SEGMENTS + 1:
        return None
    x, y = x[keep], y[keep]
    y = _smooth(y)
    lx = np.log(x)
    a = _drop_of(lx, y, N_SEGMENTS, flat_ratio, min_drop)
    b = _drop_of(lx, y, N_SEGMENTS - 1, flat_ratio, min_drop)
    mid_a, mid_b = math.exp(a["mid"]), math.exp(b["mid"])
    agree = abs(mid_a - mid_b) <= MIDDLE_AGREEMENT * mid_a
    if a["found"] and b["found"] and agree:
        confidence = CONFIDENCE_AGREE
    elif a["found"] or b["found"]:
        confidence = CONFIDENCE_UNCLEAR
    else:
        confidence = CONFIDENCE_NONE
    edges = [float(np.exp(e)) for e in a["edges"]]
    # the breakpoints are evaluation steps; exp(log(step)) can be off by rounding
    edges = [float(x[int(np.argmin(np.abs(x - e)))]) for e in edges]
    p = a["p"]
    drop_start, drop_end = (float(x[int(np.argmin(np.abs(lx - e)))]) for e in a["drop"])
    slow_start, slow_end = (float(x[int(np.argmin(np.abs(lx - e)))]) for e in a["slow"])

    def per_step(s0: float, s1: float) -> float:
        return float((np.interp(s1, x, y) - np.interp(s0, x, y)) / max(s1 - s0, 1e-12))

    return Phases(
        plateau_start=edges[p],
        plateau_end=edges[p + 1],
        drop_start=drop_start,
        drop_end=drop_end,
        slow_start=slow_start,
        slow_end=slow_end,
        mid_step=mid_a,
        plateau_loss=a["plateau_loss"],
        drop_end_loss=a["drop_end_loss"],
        final_loss=float(y[-1]),
        plateau_slope=per_step(edges[p], edges[p + 1]),
        drop_slope=(a["drop_end_loss"] - float(np.interp(drop_start, x, y))) / max(drop_end - drop_start, 1e-12),
        slow_slope=per_step(slow_start, slow_end),
        clear=confidence == CONFIDENCE_AGREE,
        confidence=confidence,
        slow_flat=a["slow_flat"],
        mid_step_alt=mid_b,
    )


# --- the teacher's transition ---------------------------------------------------------------
def transition_rule(task_name: str | None) -> str:
    """The rule that finds a task's transition: ``loss_drop`` for PCFG, ``accuracy`` otherwise."""
    return TASK_RULES.get(task_name or "", RULE_ACCURACY)


def describe_rule(rule: str) -> str:
    """One sentence saying how ``teacher_transition`` finds the window under ``rule``."""
    if rule == RULE_LOSS_DROP:
        return (
            "Rule: the sharp drop of the held-out loss between its plateau and its slow phase "
            "(a continuous 5-segment linear fit); the middle is where the loss crosses half the drop."
        )
    return (
        "Rule: 10% to 90% of the move between the median of the first and of the last tenth of the "
        "evaluations (accuracy; the loss if accuracy moves by less than 0.05); the middle is where "
        "the curve crosses half the move."
    )


def teacher_transition(
    steps: Sequence[float],
    acc: Sequence[float] | None,
    loss: Sequence[float] | None = None,
    *,
    rule: str = RULE_ACCURACY,
    min_change: float = 0.05,
) -> Transition | None:
    """The teacher's transition under ``rule`` (module docstring), or None.

    ``accuracy``: the accuracy window if accuracy rises by ``min_change``, else the loss window.
    Accuracy is preferred because it is what the paper marks for parity (F2a); the loss
    fallback serves curves whose accuracy moves little while the loss drops sharply.
    ``loss_drop``: the drop of ``detect_phases`` on the loss when it is clear (the paper's
    F3a, PCFG), as a ``Transition`` from ``drop_start`` to ``drop_end``.
    """
    if rule not in RULES:
        raise ValueError(f"unknown transition rule {rule!r} (one of {', '.join(RULES)})")
    if rule == RULE_LOSS_DROP:
        if loss is None:
            return None
        ph = detect_phases(steps, loss)
        if ph is None or not ph.clear:
            return None
        x, _ = _points(steps, loss)
        inside = x[(x >= ph.drop_start) & (x <= ph.drop_end)]
        return Transition(
            start=int(ph.drop_start),
            mid=nearest_step(inside, ph.mid_step),
            end=int(ph.drop_end),
            start_level=ph.plateau_loss,
            end_level=ph.drop_end_loss,
            metric="eval_loss",
            mid_step=ph.mid_step,
            rule=RULE_LOSS_DROP,
        )
    if acc is not None:
        found = window(steps, acc, increasing=True, min_change=min_change, metric="eval_acc")
        if found is not None:
            return found
    if loss is not None:
        return window(steps, loss, increasing=False, min_change=min_change, metric="eval_loss")
    return None


def two_shot_step(transition: Transition | None, checkpoint_steps: Sequence[int], fallback_frac: float = 0.5) -> int:
    """The teacher checkpoint a two-shot student starts from: the saved step (after step 0 when
    there is one) nearest the middle of ``transition``; without a transition, the one nearest
    ``fallback_frac`` of the last saved step."""
    steps = [int(s) for s in checkpoint_steps]
    if not steps:
        raise ValueError("no checkpoint steps")
    target = transition.mid_step if transition is not None else fallback_frac * max(steps)
    return nearest_step([s for s in steps if s > 0] or steps, target)
