"""Checkpoint schedules: when a run saves, and which teacher checkpoint a student uses.

Both are pure functions of integers so they are easy to test and to reason about.

Progressive distillation has two rules, one per family of the paper's official scripts:

- ``parity`` (``parity/boolean_distill_expts.py``): every ``interval`` student steps, at the
  anchor a = interval x floor(t / interval), the first saved checkpoint at or after
  max(a, 1) x speed (the last one after the end). The teacher is *at or just ahead of* the
  student's own step.
- ``pcfg`` (``PCFG_mlm/components/KL_trainer_MLM.py``, also the AR trainer): with R = interval,
  at student step g the requested checkpoint is c = speed x (1 + floor(g / R)) x R for
  speed >= 1, and c = (1 + int(speed x floor(g / R))) x R for speed < 1; the teacher is the
  largest saved checkpoint at or below c. The teacher is one interval *ahead*: with R = 1000
  (the paper's main text) and speed 1, student steps 0..999 use checkpoint 1000.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from curriculens import constants as C


def save_steps(total: int, save_every: int, log_early: int = 0) -> list[int]:
    """Sorted steps at which a run saves: 0, ``log_early`` log-spaced steps in (0, save_every),
    every multiple of ``save_every``, and ``total``.

    >>> save_steps(10, 4)
    [0, 4, 8, 10]
    >>> save_steps(100, 50, log_early=3)
    [0, 1, 4, 14, 50, 100]
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


def log_steps(total: int, n: int) -> list[int]:
    """``n`` log-spaced steps in [1, ``total``] (round(total ** (i / (n - 1))), i = 0..n-1),
    deduplicated, so early ones that round together count once; ``n`` 0 = none, 1 = ``total``.

    >>> log_steps(1000, 4)
    [1, 10, 100, 1000]
    >>> log_steps(10, 6)
    [1, 2, 3, 4, 6, 10]
    """
    if n <= 0 or total <= 0:
        return []
    if n == 1:
        return [total]
    return sorted({min(total, max(1, int(round(total ** (i / (n - 1)))))) for i in range(n)})


def eval_steps(total: int, eval_every: int = 0, eval_log: int = 0) -> list[int]:
    """Sorted steps at which a run evaluates besides its saves: every multiple of ``eval_every``
    (0 = none) merged with ``log_steps(total, eval_log)``.

    >>> eval_steps(1000, 400, eval_log=4)
    [1, 10, 100, 400, 800, 1000]
    """
    steps = set(range(eval_every, total + 1, eval_every)) if eval_every > 0 else set()
    steps.update(log_steps(total, eval_log))
    return sorted(steps)


PROGRESSIVE_RULES = ("parity", "pcfg")


def progressive_interval(rule: str, interval: int, save_every: int, speed: float) -> int:
    """Student steps between teacher re-selections; ``interval`` 0 means the default:
    ``parity``: the teacher's ``save_every / speed`` (a new checkpoint at every re-selection);
    ``pcfg``: R = the teacher's ``save_every`` (the rule multiplies R by ``speed`` itself)."""
    if interval:
        return max(1, int(interval))
    if rule == "pcfg":
        return max(1, int(save_every))
    return max(1, int(save_every / speed))


def teacher_step_for(
    method: str,
    student_step: int,
    teacher_steps: Sequence[int],
    *,
    speed: float = 1.0,
    interval: int = 1,
    two_shot_step: int = -1,
    two_shot_T: int = 0,
    rule: str = "parity",
) -> int | None:
    """The teacher checkpoint step a student uses at ``student_step`` (updates done so far).

    - ``ce``: None (no teacher).
    - ``one-shot``: the last teacher checkpoint.
    - ``progressive``: by ``rule`` (module docstring): ``parity`` re-selects every
      ``interval`` student steps the first checkpoint at or after max(a, 1) x speed, a the
      anchor (the last after the end); ``pcfg`` takes the largest checkpoint at or below
      speed x (1 + floor(t / interval)) x interval (the official masked-LM trainer).
    - ``two-shot``: the checkpoint ``two_shot_step`` (the nearest saved one at or before it)
      while t < two_shot_T, then the last one.
    - ``curriculum-extraction``: the last checkpoint (its hidden layer, then its outputs).
    """
    if method == C.METHOD_CE:
        return None
    steps = sorted(teacher_steps)
    if not steps:
        raise ValueError("the teacher has no checkpoints")
    last = steps[-1]
    if method in (C.METHOD_ONE_SHOT, C.METHOD_CURRICULUM_EXTRACTION):
        return last
    if method == C.METHOD_PROGRESSIVE:
        interval = max(1, int(interval))
        if rule == "pcfg":
            k = student_step // interval
            c = speed * (1 + k) * interval if speed >= 1 else (1 + int(speed * k)) * interval
            i = bisect.bisect_right(steps, c) - 1
            return steps[max(i, 0)]
        if rule != "parity":
            raise ValueError(f"unknown progressive rule {rule!r} (one of {', '.join(PROGRESSIVE_RULES)})")
        anchor = (student_step // interval) * interval
        target = max(anchor, 1) * speed
        i = bisect.bisect_left(steps, target)
        return steps[i] if i < len(steps) else last
    if method == C.METHOD_TWO_SHOT:
        if student_step < two_shot_T:
            i = bisect.bisect_right(steps, two_shot_step) - 1
            return steps[max(i, 0)]
        return last
    raise ValueError(f"unknown method {method!r}")


def check_progressive(dist, teacher_steps: Sequence[int], teacher_save_every: int) -> None:
    """Refuse (``CurriculensError``, one line) a ``pcfg``-rule progressive student whose first
    requested checkpoint (speed x R) lies below the teacher's first saved step after 0: the rule
    would silently distil the untrained step-0 teacher, where the official trainer fails."""
    if dist.method != C.METHOD_PROGRESSIVE or dist.progressive_rule != "pcfg":
        return
    positive = sorted(s for s in teacher_steps if s > 0)
    if not positive:
        return
    interval = progressive_interval("pcfg", dist.interval, teacher_save_every, dist.speed)
    if teacher_step_for(C.METHOD_PROGRESSIVE, 0, teacher_steps, speed=dist.speed, interval=interval, rule="pcfg") == 0:
        from curriculens.errors import CurriculensError

        raise CurriculensError(
            f"progressive (pcfg rule): R = {interval} x speed {dist.speed:g} is below the teacher's first saved "
            f"checkpoint after step 0 ({positive[0]}), so it would distil the untrained step-0 teacher; "
            f"use an interval of at least {positive[0]}"
        )


def teacher_step_of(dist, student_step: int, teacher_steps: Sequence[int], teacher_save_every: int) -> int | None:
    """``teacher_step_for`` with the fields of a ``DistillConfig`` (its ``progressive_rule``);
    progressive's default interval (``dist.interval == 0``) is ``progressive_interval``'s."""
    rule = dist.progressive_rule
    interval = progressive_interval(rule, dist.interval, teacher_save_every, dist.speed)
    return teacher_step_for(
        dist.method,
        student_step,
        teacher_steps,
        speed=dist.speed,
        interval=interval,
        two_shot_step=dist.two_shot_step,
        two_shot_T=dist.two_shot_T,
        rule=rule,
    )
