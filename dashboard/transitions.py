"""Detect a phase-transition window in a training curve (pure, no I/O).

The rule (the one the dashboard shades and the export marks):

1. Work on the points in step order; ``values`` must rise during the transition (accuracy).
   For a falling curve (loss) pass ``increasing=False``: the curve is negated first.
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
6. ``mid`` = the first step in ``[start, end]`` at which the curve reaches
   ``start_level + gain / 2`` (the middle of the transition, where the paper's
   checkpoint 2 sits).

Notes:
    Steps are the evaluated steps, so the window's edges are evaluated steps too; its
    resolution is the evaluation interval. Noise around the final level can move ``end``
    later (it must stay above ``hi``), never earlier, so the window errs on the wide side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class Transition:
    """A detected transition window, in steps, and the curve's levels around it.

    Levels are in the curve's own units (for a loss, the actual loss values, not negated).
    """

    start: int
    mid: int
    end: int
    start_level: float
    end_level: float
    metric: str = ""

    @property
    def width(self) -> int:
        return self.end - self.start

    def describe(self) -> str:
        name = self.metric or "value"
        return (
            f"{name} goes from {self.start_level:.3g} to {self.end_level:.3g} between step "
            f"{self.start:,} and step {self.end:,} (middle at step {self.mid:,})"
        )


def detect_transition(
    steps: Sequence[float],
    values: Sequence[float],
    *,
    increasing: bool = True,
    lo_frac: float = 0.1,
    hi_frac: float = 0.9,
    min_change: float = 0.05,
    edge_frac: float = 0.1,
    metric: str = "",
) -> Optional[Transition]:
    """The transition window of one curve, by the rule in the module docstring.

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
    x = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"steps and values differ in length: {x.shape} vs {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
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
    half = start_level + 0.5 * gain

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
    reached = np.nonzero(z[i_start : i_end + 1] >= half)[0]
    i_mid = i_start + int(reached[0]) if len(reached) else i_end
    return Transition(
        start=int(x[i_start]),
        mid=int(x[i_mid]),
        end=int(x[i_end]),
        start_level=sign * start_level,
        end_level=sign * end_level,
        metric=metric,
    )


def teacher_transition(
    steps: Sequence[float],
    acc: Sequence[float] | None,
    loss: Sequence[float] | None = None,
    *,
    min_change: float = 0.05,
) -> Optional[Transition]:
    """The teacher's window: from accuracy if it rises by ``min_change``, else from loss.

    Accuracy is preferred because it is what the paper marks (F2a); the loss fallback serves
    tasks whose accuracy moves little while the loss drops sharply (PCFG, real data, F3a).
    """
    if acc is not None:
        found = detect_transition(steps, acc, increasing=True, min_change=min_change, metric="eval_acc")
        if found is not None:
            return found
    if loss is not None:
        return detect_transition(steps, loss, increasing=False, min_change=min_change, metric="eval_loss")
    return None
