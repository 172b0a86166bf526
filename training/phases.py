"""Loss-curve phases: plateau, sharp drop, slow phase (paper figure 3a).

``detect_phases(steps, losses)`` drops the step-0 evaluation (the untrained model sits at
ln V; it is not part of the dynamics) and fits the (lightly smoothed) curve with a *continuous*
piecewise-linear function of ``N_SEGMENTS`` = 5 segments by least squares, searching every set
of breakpoints among the evaluation steps (the curve is first thinned to at most ``MAX_POINTS``
evenly spaced points, so the exhaustive search stays under a second). Continuity matters:
with independent segments a fit can hide the drop in a jump between two flat pieces. Then:

- the *drop* is the steepest segment that has a flat segment before it (slope within
  ``flat_ratio`` of the candidate's), extended over neighbouring segments at least half as
  steep; a steep segment with nothing flat before it is the end of the initial fall to the
  unigram level (the *transient*), never the drop;
- the *plateau* is the flat segment right before the drop (flat segments span at least
  three evaluations);
- the *slow phase* runs from the end of the drop to the end (its slope: the average).

``clear`` says whether the curve really has the three phases: such a drop exists, it removes
at least ``min_drop`` of the loss range left after the first segment, and the slow phase's
average slope is under ``flat_ratio`` of the drop's. ``mid_step`` is where the smoothed curve
first crosses the middle of the drop's loss range (the paper's C1, "the middle of the phase
transition"). Without a clear drop the fields describe the steepest segment after the first.

Pure numpy; works on any list of (step, loss) points (>= 11 of them; fewer gives None).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

MAX_POINTS = 32
N_SEGMENTS = 5


@dataclass(frozen=True)
class Phases:
    """Detected phases; steps are in the units of the input (optimizer steps).

    ``*_start``/``*_end`` are the segment's breakpoints (evaluation steps); the drop spans
    ``[drop_start, drop_end]``. Slopes are loss per step of the fit (negative = falling).
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
    """Best continuous k-segment fit: the k - 1 breakpoints (among thinned x[1:-1]) and the
    fitted values at ``x``."""
    n = x.size
    if n > MAX_POINTS:
        keep = np.unique(np.round(np.linspace(0, n - 1, MAX_POINTS)).astype(int))
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
    full = np.stack([np.ones_like(uu), uu] + [np.maximum(uu - (v - x0) / scale, 0.0) for v in breaks], axis=1)
    c, *_ = np.linalg.lstsq(full, y, rcond=None)
    return breaks, full @ c


def detect_phases(
    steps: Sequence[float],
    losses: Sequence[float],
    flat_ratio: float = 0.4,
    min_drop: float = 0.25,
) -> Optional[Phases]:
    """Plateau / drop / slow phase of a loss curve; None with fewer than 11 points.

    Args:
        steps: evaluation steps (any order; sorted here).
        losses: held-out loss at those steps.
        flat_ratio: a segment is flat if its slope is within this fraction of the drop's;
            the slow phase's average slope must be too, for ``clear``.
        min_drop: the drop must remove at least this fraction of the loss range left after
            the first segment (its highest loss minus the lowest) for ``clear``.
    """
    x = np.asarray(steps, dtype=float)
    y = np.asarray(losses, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 * N_SEGMENTS + 1:
        return None
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if x[0] <= 0 and x.size > 2 * N_SEGMENTS + 1:  # the untrained model: ln V, not dynamics
        x, y = x[1:], y[1:]
    y = _smooth(y)
    breaks, fit = _hinge_fit(x, y)
    edges = [float(x[0])] + breaks + [float(x[-1])]
    k = len(edges) - 1

    def value(step: float) -> float:
        return float(np.interp(step, x, fit))

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
    mid_level = 0.5 * (drop_hi + drop_lo)
    below = np.nonzero((x >= drop_start) & (y <= mid_level))[0]
    if below.size and below[0] > 0:
        j = below[0]
        x0, x1, y0, y1 = x[j - 1], x[j], y[j - 1], y[j]
        mid = float(x1 if y0 == y1 else x0 + (y0 - mid_level) * (x1 - x0) / (y0 - y1))
    else:
        mid = 0.5 * (drop_start + drop_end)
    after = y[x >= edges[1]]
    span = float(after.max() - y.min()) if after.size else 0.0
    clear = (
        bool(cands)
        and hi + 1 < k
        and drop_slope < 0
        and span > 0
        and (drop_hi - drop_lo) >= min_drop * span
        and abs(slow_slope) <= flat_ratio * abs(drop_slope)
    )
    in_p = (x >= edges[p]) & (x <= edges[p + 1])
    return Phases(
        plateau_start=float(edges[p]),
        plateau_end=float(edges[p + 1]),
        drop_start=float(drop_start),
        drop_end=float(drop_end),
        slow_start=float(slow_start),
        slow_end=float(slow_end),
        mid_step=mid,
        plateau_loss=float(np.median(y[in_p])) if in_p.any() else value(edges[p]),
        drop_end_loss=float(drop_lo),
        final_loss=float(y[-1]),
        plateau_slope=slopes[p],
        drop_slope=float(drop_slope),
        slow_slope=float(slow_slope),
        clear=bool(clear),
    )


def nearest_step(candidates: Sequence[int], target: float) -> int:
    """The candidate step (e.g. a saved checkpoint) closest to ``target``; ties go earlier."""
    c = sorted(int(v) for v in candidates)
    if not c:
        raise ValueError("no candidate steps")
    return min(c, key=lambda v: (abs(v - target), v))
