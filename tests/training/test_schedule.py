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


# --- the two official progressive rules, as tables (student step -> teacher checkpoint) -------
# Parity scripts (boolean_distill_expts.py): the first checkpoint at or after max(anchor, 1) x speed,
# re-selected every save_every / speed student steps. A parity teacher saved every 500 steps to 3000:
PARITY_TEACHER = list(range(0, 3001, 500))
PARITY_TABLE = {
    1: {0: 500, 1: 500, 499: 500, 500: 500, 999: 500, 1000: 1000, 2600: 2500, 3000: 3000, 9000: 3000},
    2: {0: 500, 249: 500, 250: 500, 499: 500, 500: 1000, 1250: 2500, 1499: 2500, 1500: 3000, 5000: 3000},
}
# Official masked-LM trainer (KL_trainer_MLM.py): the largest checkpoint <= speed x (1 + floor(g/R)) x R.
# The paper's teacher (saved every 200 to 8000) and R = 1000 (distil.sh).
PCFG_TEACHER = list(range(0, 8001, 200))
PCFG_TABLE = {
    1: {0: 1000, 1: 1000, 999: 1000, 1000: 2000, 1999: 2000, 6999: 7000, 7000: 8000, 7999: 8000, 20_000: 8000},
    2: {0: 2000, 999: 2000, 1000: 4000, 2999: 6000, 3000: 8000, 3999: 8000, 9000: 8000},
}


@pytest.mark.parametrize("speed", [1, 2])
def test_parity_rule_table(speed):
    from training.schedule import progressive_interval

    interval = progressive_interval("parity", 0, 500, speed)
    assert interval == 500 // speed
    got = {
        t: teacher_step_for("progressive", t, PARITY_TEACHER, speed=speed, interval=interval, rule="parity")
        for t in PARITY_TABLE[speed]
    }
    assert got == PARITY_TABLE[speed]


@pytest.mark.parametrize("speed", [1, 2])
def test_pcfg_rule_table(speed):
    got = {
        t: teacher_step_for("progressive", t, PCFG_TEACHER, speed=speed, interval=1000, rule="pcfg")
        for t in PCFG_TABLE[speed]
    }
    assert got == PCFG_TABLE[speed]


def test_pcfg_rule_is_one_interval_ahead_of_the_parity_rule():
    """With R = save_every = 200 the official student sees checkpoint 400 while steps 200..399
    run; the parity rule gives 200 (the lag the issue found)."""
    from training.schedule import progressive_interval

    assert progressive_interval("pcfg", 0, 200, 2.0) == 200  # R is not divided by the speed
    ahead = [
        teacher_step_for("progressive", t, PCFG_TEACHER, interval=200, rule="pcfg") for t in (0, 199, 200, 399, 400)
    ]
    behind = [
        teacher_step_for("progressive", t, PCFG_TEACHER, interval=200, rule="parity") for t in (0, 199, 200, 399, 400)
    ]
    assert ahead == [200, 200, 400, 400, 600]
    assert behind == [200, 200, 200, 200, 400]


def test_pcfg_rule_speed_below_one():
    # c = (1 + int(speed * floor(g / R))) * R: speed 0.5 moves one interval every 2 R student steps
    got = [
        teacher_step_for("progressive", g, PCFG_TEACHER, speed=0.5, interval=1000, rule="pcfg")
        for g in (0, 1000, 1999, 2000, 3999, 4000)
    ]
    assert got == [1000, 1000, 1000, 2000, 2000, 3000]


def test_pcfg_rule_takes_the_largest_saved_checkpoint_at_or_below():
    sparse = [0, 300, 1100, 2600]
    assert [teacher_step_for("progressive", g, sparse, interval=1000, rule="pcfg") for g in (0, 1000, 2000)] == [
        300,
        1100,
        2600,
    ]
    with pytest.raises(ValueError):
        teacher_step_for("progressive", 0, sparse, rule="bogus")


def test_pcfg_progressive_refuses_an_interval_below_the_first_saved_checkpoint():
    """The official masked-LM trainer fails when R is below the first saved step; the rule
    would silently pick the untrained step-0 teacher, so the check refuses with one line."""
    from curriculens.errors import CurriculensError
    from training.config import DistillConfig
    from training.schedule import check_progressive

    steps = [0, 200, 400, 600]
    bad = DistillConfig(method="progressive", progressive_rule="pcfg", interval=100, teacher_dir="t")
    assert teacher_step_for("progressive", 0, steps, interval=100, rule="pcfg") == 0  # what it would do
    with pytest.raises(CurriculensError, match="below the teacher's first saved checkpoint after step 0 \\(200\\)"):
        check_progressive(bad, steps, 200)
    check_progressive(
        DistillConfig(method="progressive", progressive_rule="pcfg", interval=200, teacher_dir="t"), steps, 200
    )
    check_progressive(
        DistillConfig(method="progressive", progressive_rule="pcfg", interval=100, speed=2.0, teacher_dir="t"),
        steps,
        200,
    )
    check_progressive(DistillConfig(method="progressive", interval=100, teacher_dir="t"), steps, 200)  # parity rule
