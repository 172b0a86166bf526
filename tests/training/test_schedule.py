"""Which checkpoints a run saves, and which teacher checkpoint each student method uses."""

import pytest

from training.schedule import save_steps, teacher_step_for

TEACHER = [0, 100, 200, 300, 400]


def test_save_steps():
    assert save_steps(1000, 250) == [0, 250, 500, 750, 1000]
    assert save_steps(900, 250) == [0, 250, 500, 750, 900]
    early = save_steps(1000, 500, log_early=4)
    assert early[0] == 0 and early[-2:] == [500, 1000]
    assert early[1:-2] == [1, 5, 22, 106]  # round(500 ** (i / 4)), i = 0..3


def test_ce_has_no_teacher_and_one_shot_uses_last():
    assert teacher_step_for("ce", 50, TEACHER) is None
    assert [teacher_step_for("one-shot", t, TEACHER) for t in (0, 150, 10_000)] == [400, 400, 400]


@pytest.mark.parametrize(
    "t, speed, interval, expected",
    [
        (0, 1, 100, 100),  # anchor 0 -> max(0, 1) * 1 = 1 -> first ckpt >= 1
        (99, 1, 100, 100),  # still anchored at 0 until the next reselection
        (100, 1, 100, 100),
        (101, 1, 100, 100),  # anchor 100 -> first ckpt >= 100
        (250, 1, 100, 200),
        (399, 1, 100, 300),
        (400, 1, 100, 400),
        (5000, 1, 100, 400),  # after the last checkpoint: the final one
        (150, 2, 50, 300),  # speed 2: anchor 150 -> first ckpt >= 300
        (120, 0.5, 10, 100),  # speed 0.5: anchor 120 -> 60 -> first ckpt >= 60
        (260, 1, 1, 300),  # reselect every step: first ckpt >= 260
    ],
)
def test_progressive(t, speed, interval, expected):
    assert teacher_step_for("progressive", t, TEACHER, speed=speed, interval=interval) == expected


def test_two_shot_switches_at_T():
    kw = dict(two_shot_step=200, two_shot_T=1000)
    assert teacher_step_for("two-shot", 0, TEACHER, **kw) == 200
    assert teacher_step_for("two-shot", 999, TEACHER, **kw) == 200
    assert teacher_step_for("two-shot", 1000, TEACHER, **kw) == 400
    # a step that was not saved falls back to the nearest saved one before it
    assert teacher_step_for("two-shot", 0, TEACHER, two_shot_step=250, two_shot_T=5) == 200


def test_unknown_method_and_no_checkpoints():
    with pytest.raises(ValueError):
        teacher_step_for("bogus", 0, TEACHER)
    with pytest.raises(ValueError):
        teacher_step_for("one-shot", 0, [])
