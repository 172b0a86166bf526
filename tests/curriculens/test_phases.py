"""The loss-phase rule (``curriculens.curves.detect_phases``) on synthetic curves with a known
drop middle: run lengths 800-20,000 steps, evaluation grids (every 25, every 100, log-spaced),
drop widths and noise; a plateau 3% of the run long on the ``--eval-log`` grid, where both fits
must agree; and plateau-free power laws, which must rarely be called clear."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from curriculens.curves import CONFIDENCE_AGREE, detect_phases
from training.schedule import eval_steps


def _grid(T: int, kind) -> np.ndarray:
    if kind == "log":
        return np.unique(np.concatenate([[0], np.round(np.geomspace(10, T, 60))]))
    return np.arange(0, T + 1, kind, dtype=float)


def _curve(x: np.ndarray, T: int, mid: float, w: float, noise: float, seed: int) -> np.ndarray:
    """ln V at step 0, a fast transient, a plateau, a drop of 0.3 centred at ``mid`` (a logistic
    in log step of width ``w``), a slow phase falling 0.08 over the run, Gaussian noise."""
    t = np.maximum(x, 1.0)
    y = 0.6 + 0.3 / (1 + np.exp(-(math.log(mid) - np.log(t)) / w))
    y = y + 0.08 * (1 - np.log(t) / math.log(T)) + 1.2 * np.exp(-t / 8)
    y[x == 0] = 2.3
    return y + np.random.default_rng(seed).normal(0, noise, x.size)


def _cases(lengths, noises):
    """Every combination whose plateau has 3+ evaluations before the drop and whose drop has
    2+ inside (no rule can see a plateau the grid does not sample)."""
    for T, g, frac, w, noise in itertools.product(lengths, (25, 100, "log"), (0.1, 0.2, 0.35), (0.15, 0.3), noises):
        x = _grid(T, g)
        mid = frac * T
        before = ((x > 0) & (x < mid * math.exp(-2.2 * w))).sum()
        inside = ((x >= mid * math.exp(-2.2 * w)) & (x <= mid * math.exp(2.2 * w))).sum()
        if before >= 3 and inside >= 2:
            yield T, g, w, noise, x, mid


def _hit_rate(lengths, noises) -> tuple[int, int, list]:
    ok = n = 0
    misses = []
    for T, g, w, noise, x, mid in _cases(lengths, noises):
        ph = detect_phases(x, _curve(x, T, mid, w, noise, n))
        n += 1
        good = ph is not None and ph.clear and abs(ph.mid_step - mid) <= 0.25 * mid
        ok += good
        if not good:
            misses.append((T, g, w, noise, mid, ph and ph.mid_step, ph and ph.confidence))
    return ok, n, misses


def test_the_middle_of_a_planted_drop_is_found_on_short_runs():
    ok, n, misses = _hit_rate((800, 2000), (0.006,))
    assert n >= 15 and ok >= 0.9 * n, misses


@pytest.mark.slow
def test_the_middle_of_a_planted_drop_is_found_over_run_lengths_grids_widths_and_noise():
    ok, n, misses = _hit_rate((800, 2000, 5000, 20000), (0.003, 0.01))
    assert n >= 50 and ok >= 0.9 * n, misses  # measured: 115 of 118


def _eval_log_grid(T: int) -> np.ndarray:
    """The ``--eval-log 40`` grid of a teacher evaluating every 100 steps (step 0 included)."""
    return np.array([0, *eval_steps(T, 100, 40)], dtype=float)


def _three_percent_plateau(lengths, widths, noises, seeds) -> tuple[int, int, list]:
    """Drops whose plateau (steps 50 to the drop's start, mid * exp(-2.2 w)) is 3% of the run,
    on the eval-log grid: how many both fits find, agreeing, with the middle within 25%."""
    ok = n = 0
    misses = []
    for T, w, noise, seed in itertools.product(lengths, widths, noises, seeds):
        mid = (50 + 0.03 * T) * math.exp(2.2 * w)
        x = _eval_log_grid(T)
        ph = detect_phases(x, _curve(x, T, mid, w, noise, seed))
        n += 1
        good = ph is not None and ph.confidence == CONFIDENCE_AGREE and abs(ph.mid_step - mid) <= 0.25 * mid
        ok += good
        if not good:
            misses.append((T, w, noise, seed, mid, ph and ph.mid_step, ph and ph.mid_step_alt, ph and ph.confidence))
    return ok, n, misses


def test_a_three_percent_plateau_on_the_eval_log_grid_is_agreed():
    """The dense log grid samples the initial fall with two segments; the found check measures
    the drop against the range left after the transient, not after the first segment (before:
    the 5-segment fit failed it and these curves were "unclear")."""
    ok, n, misses = _three_percent_plateau((5000, 20000), (0.15, 0.3), (0.006,), (0, 1))
    assert ok == n, misses


@pytest.mark.slow
def test_a_three_percent_plateau_on_the_eval_log_grid_study():
    ok, n, misses = _three_percent_plateau((2000, 5000, 20000), (0.15, 0.3), (0.003, 0.006, 0.01), range(3))
    # measured: 45 of 54 agree (all 54 middles within 25%); the 9 others are the 2,000-step runs
    # with the wide drop (plateau steps 50-110), whose 4-segment fit spends its segments on the
    # initial fall and puts its middle at step ~8: the fits disagree, so "unclear" is right
    assert n == 54 and ok >= 0.8 * n, misses


def _power_laws_clear(grids) -> tuple[int, int]:
    """(called clear, tried) over plateau-free power laws a t^-b on each grid of ``grids``."""
    clear = n = 0
    for x, b, noise in itertools.product(grids, (0.1, 0.3, 0.6), (0.003, 0.01)):
        y = 0.5 + 1.5 * (np.maximum(x, 1) / 10) ** (-b)
        y[x == 0] = 2.3
        ph = detect_phases(x, y + np.random.default_rng(n).normal(0, noise, x.size))
        n += 1
        clear += bool(ph and ph.clear)
    return clear, n


def test_plateau_free_power_laws_are_rarely_clear_on_the_eval_log_grid():
    clear, n = _power_laws_clear([_eval_log_grid(T) for T in (800, 2000)])
    assert clear <= 0.1 * n, (clear, n)  # measured: 0 of 12 (0 of 24 with 5,000 and 20,000 steps)


def test_plateau_free_power_laws_are_rarely_clear():
    clear, n = _power_laws_clear([_grid(T, g) for T in (800, 2000) for g in (25, 100, "log")])
    assert clear <= 0.1 * n, (clear, n)  # measured: 0 of 36 (0 of 72 with 5,000 and 20,000 steps)


def test_a_short_early_plateau_of_a_long_run_is_clear():
    """The wide teacher's shape: a plateau at steps ~50-175 of 5,000, a drop, a long slow phase
    (3% of a linear axis: the old linear-axis rule called such curves unclear)."""
    x = _grid(5000, 25)
    t = np.maximum(x, 1.0)
    y = 0.6 + 0.3 / (1 + np.exp(-(math.log(250) - np.log(t)) / 0.15)) + 0.25 * (1 - np.log(t) / math.log(5000))
    y = y + 1.2 * np.exp(-t / 8)
    y[0] = 2.3
    ph = detect_phases(x, y)
    assert ph.clear and ph.confidence == CONFIDENCE_AGREE and abs(ph.mid_step - 250) <= 0.25 * 250
    assert ph.mid_step_alt == pytest.approx(ph.mid_step, rel=0.25)
