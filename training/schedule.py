"""Checkpoint schedules: when a run saves, and which teacher checkpoint a student uses.

Both are pure functions of integers so they are easy to test and to reason about.
"""

from __future__ import annotations

import bisect
import math
from typing import Optional, Sequence


def save_steps(total: int, save_every: int, log_early: int = 0) -> list[int]:
    """Sorted steps at which a run saves: 0, ``log_early`` log-spaced steps in (0, save_every),
    every multiple of ``save_every``, and ``total``.

    >>> save_steps(10, 4)
    [0, 4, 8, 10]
    >>> save_steps(100, 50, log_early=3)
    [0, 1, 5, 18, 50, 100]
    """
    steps = {0, total}
    steps.update(range(save_every, total + 1, save_every))
    if log_early > 0 and save_every > 1:
        hi = math.log(min(save_every, total))
        for i in range(log_early):
            s = int(round(math.exp(hi * i / log_early)))
            if 0 < s < min(save_every, total):
                steps.add(s)
    return sorted(steps)


def teacher_step_for(
    method: str,
    student_step: int,
    teacher_steps: Sequence[int],
    *,
    speed: float = 1.0,
    interval: int = 1,
    two_shot_step: int = -1,
    two_shot_T: int = 0,
) -> Optional[int]:
    """The teacher checkpoint step a student uses at ``student_step`` (updates done so far).

    - ``ce``: None (no teacher).
    - ``one-shot``: the last teacher checkpoint.
    - ``progressive``: re-selected every ``interval`` student steps; at the anchor
      a = interval x floor(t / interval) it is the first checkpoint at or after
      max(a, 1) x speed, or the last checkpoint after the end (the paper's rule).
    - ``two-shot``: the checkpoint ``two_shot_step`` (the nearest saved one at or before it)
      while t < two_shot_T, then the last one.
    - ``curriculum-extraction``: the last checkpoint (its hidden layer, then its outputs).
    """
    if method == "ce":
        return None
    steps = sorted(teacher_steps)
    if not steps:
        raise ValueError("the teacher has no checkpoints")
    last = steps[-1]
    if method in ("one-shot", "curriculum-extraction"):
        return last
    if method == "progressive":
        interval = max(1, int(interval))
        anchor = (student_step // interval) * interval
        target = max(anchor, 1) * speed
        i = bisect.bisect_left(steps, target)
        return steps[i] if i < len(steps) else last
    if method == "two-shot":
        if student_step < two_shot_T:
            i = bisect.bisect_right(steps, two_shot_step) - 1
            return steps[max(i, 0)]
        return last
    raise ValueError(f"unknown method {method!r}")


def teacher_step_of(dist, student_step: int, teacher_steps: Sequence[int], teacher_save_every: int) -> Optional[int]:
    """``teacher_step_for`` with the fields of a ``DistillConfig``; progressive's default
    interval (``dist.interval == 0``) is the teacher's save_every / speed."""
    interval = dist.interval or max(1, int(teacher_save_every / dist.speed))
    return teacher_step_for(
        dist.method,
        student_step,
        teacher_steps,
        speed=dist.speed,
        interval=interval,
        two_shot_step=dist.two_shot_step,
        two_shot_T=dist.two_shot_T,
    )
