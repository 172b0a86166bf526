"""curriculens.curves: the window rule on curves whose window is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curriculens.curves import teacher_transition, window


def ramp(steps, lo_step, hi_step, y0=0.5, y1=1.0):
    """Flat at y0 until lo_step, linear to y1 at hi_step, flat after."""
    s = np.asarray(steps, dtype=float)
    return y0 + (y1 - y0) * np.clip((s - lo_step) / (hi_step - lo_step), 0.0, 1.0)


def test_ramp_window_is_the_10_to_90_percent_span():
    steps = np.arange(0, 1001, 10)
    y = ramp(steps, 400, 600)  # 10% of the rise at 420, 50% at 500, 90% at 580
    w = window(steps, y)
    assert (w.start, w.mid, w.end) == (420, 500, 580)
    assert w.start_level == pytest.approx(0.5) and w.end_level == pytest.approx(1.0)
    assert w.width == 160


def test_order_and_nan_do_not_matter():
    steps = np.arange(0, 1001, 10)
    y = ramp(steps, 400, 600)
    perm = np.random.default_rng(0).permutation(len(steps))
    y_nan = y[perm].copy()
    y_nan[3] = math.nan
    w = window(steps[perm], y_nan)
    assert (w.start, w.mid, w.end) == (420, 500, 580)


def test_flat_curve_has_no_transition():
    steps = np.arange(100)
    assert window(steps, np.full(100, 0.5)) is None
    assert window(steps, 0.5 + 0.01 * np.sin(steps)) is None  # moves less than min_change
    assert window([0, 1], [0.5, 1.0]) is None  # too few points


def test_falling_loss_reports_loss_levels():
    steps = np.arange(0, 1001, 10)
    loss = ramp(steps, 200, 300, y0=0.7, y1=0.1)
    w = window(steps, loss, increasing=False, metric="eval_loss")
    assert (w.start, w.mid, w.end) == (210, 250, 290)
    assert w.start_level == pytest.approx(0.7) and w.end_level == pytest.approx(0.1)
    assert "eval_loss" in w.describe()


def test_a_dip_after_the_rise_moves_the_end_later():
    steps = np.arange(0, 1001, 10)
    y = ramp(steps, 400, 600)
    y[steps == 700] = 0.8  # a dip below the 90% level after the rise
    w = window(steps, y)
    assert w.end == 710 and w.start == 420


def test_last_point_below_hi_falls_back_to_first_crossing():
    steps = np.arange(0, 101, 10)
    y = np.array([0.5, 0.5, 0.5, 0.5, 0.7, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9])
    w = window(steps, y, edge_frac=0.3)  # end level = median(1, 1, .9) = 1
    assert w is not None and w.end == 50 and w.start == 30


def test_teacher_transition_falls_back_to_loss_when_accuracy_is_flat():
    steps = np.arange(0, 1001, 10)
    acc = np.full(len(steps), 0.5)
    loss = ramp(steps, 500, 700, y0=1.0, y1=0.5)
    w = teacher_transition(steps, acc, loss)
    assert w.metric == "eval_loss" and (w.start, w.end) == (520, 680)
    w2 = teacher_transition(steps, ramp(steps, 100, 200), loss)
    assert w2.metric == "eval_acc" and w2.start == 110


def test_bad_arguments():
    with pytest.raises(ValueError):
        window([0, 1, 2], [0, 1])
    with pytest.raises(ValueError):
        window([0, 1, 2], [0, 1, 2], lo_frac=0.9, hi_frac=0.1)
