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


# --- the primitives --------------------------------------------------------------------------
def test_first_crossing_is_the_first_evaluated_step_at_the_level_in_step_order():
    from curriculens.curves import first_crossing

    steps, acc = [300, 0, 200, 100], [0.99, 0.5, 0.95, math.nan]
    assert first_crossing(steps, acc, 0.95) == 200
    assert first_crossing(steps, acc, 0.999) is None
    assert first_crossing([0, 10, 20], [2.0, 1.0, 0.5], 1.0, increasing=False) == 10


def test_crossing_interpolates_between_the_two_evaluations_around_the_level():
    from curriculens.curves import crossing

    assert crossing([0, 100, 200], [0.5, 0.5, 1.0], 0.75) == pytest.approx(150.0)
    assert crossing([0, 100, 200], [2.0, 1.0, 0.0], 0.25, increasing=False) == pytest.approx(175.0)
    assert crossing([0, 100, 200, 300], [0.0, 1.0, 0.0, 1.0], 0.5, after=150) == pytest.approx(250.0)
    assert crossing([0, 100], [1.0, 1.0], 0.5) is None  # already there at the first point
    assert crossing([0, 100], [0.0, 0.1], 0.5) is None  # never


def test_half_rise_is_half_of_the_largest_move_from_the_first_value():
    from curriculens.curves import half_rise

    got = half_rise([0, 10, 20, 30, 40], [0.1, 0.2, 0.35, 0.5, 0.2])
    assert (got["step"], got["peak_step"], got["effect"]) == (20, 30, pytest.approx(0.4))
    assert half_rise([0, 10, 20], [1.0, 0.4, 0.9], direction=-1)["step"] == 10
    assert half_rise([0, 10], [0.5, 0.4])["step"] is None  # moves only the other way
    assert half_rise([], [])["n_steps"] == 0


# --- one middle of the teacher's transition ---------------------------------------------------
def test_the_middle_the_dashboard_marks_is_the_checkpoint_two_shot_starts_from():
    from curriculens.curves import two_shot_step

    steps = np.arange(0, 2001, 50)
    acc = ramp(steps, 900, 1300)  # half of the rise at 1100
    w = teacher_transition(steps, acc, None)
    assert w.mid_step == pytest.approx(1100.0) and w.mid == 1100
    assert two_shot_step(w, range(0, 2001, 200)) == 1000  # saves every 200: 1000 and 1200 tie, earlier wins
    assert two_shot_step(w, range(0, 2001, 100)) == w.mid
    assert two_shot_step(None, [0, 100, 200, 300, 400], fallback_frac=0.5) == 200
    assert two_shot_step(None, [0]) == 0
    with pytest.raises(ValueError):
        two_shot_step(w, [])


def test_the_middle_is_where_the_curve_crosses_half_not_the_first_step_past_it():
    steps = np.arange(0, 101, 10)
    y = np.array([0.5, 0.5, 0.5, 0.5, 0.74, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])  # 0.75 is crossed just after 40
    w = window(steps, y)
    assert 40.0 < w.mid_step < 41.0 and w.mid == 40  # the first step past half would be 50
    y[4], y[5] = 0.5, 0.9  # now the crossing is at 46.25
    w = window(steps, y)
    assert w.mid_step == pytest.approx(46.25) and w.mid == 50


def test_loss_drop_rule_marks_the_drop_of_the_loss_phases():
    from curriculens.curves import RULE_LOSS_DROP, detect_phases, transition_rule

    x = np.arange(0, 2001, 50)
    y = np.full(x.shape, 1.03)
    y[0] = 2.08  # the untrained model, then a plateau, a drop 950 - 1300 and a slow phase
    y = np.where(x >= 950, 1.03 - 0.24 * np.clip((x - 950) / 350, 0, 1), y) - 4e-5 * np.clip(x - 1300, 0, None)
    assert transition_rule("pcfg") == RULE_LOSS_DROP and transition_rule("parity") == "accuracy"
    ph = detect_phases(x, y)
    w = teacher_transition(x, np.full(x.shape, 0.5), y, rule=transition_rule("pcfg"))
    assert (w.start, w.end, w.mid_step) == (ph.drop_start, ph.drop_end, ph.mid_step)
    assert w.mid in x and abs(w.mid - ph.mid_step) <= 25 and w.metric == "eval_loss"
    assert w.start_level > w.end_level  # loss levels, not negated
    smooth = 2.0 * np.exp(-x / 400) + 0.5  # no plateau: no transition under this rule
    assert teacher_transition(x, None, smooth, rule=RULE_LOSS_DROP) is None
    assert teacher_transition(x, None, None, rule=RULE_LOSS_DROP) is None
    with pytest.raises(ValueError):
        teacher_transition(x, y, y, rule="nope")
