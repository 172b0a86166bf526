"""recommend: the pick is the checkpoint nearest the teacher's transition middle; the sweep
score ranks it among planted student speeds."""

import json

import pytest

from curriculens import constants as C
from curriculens.cli import main
from curriculens.io import write_json
from training.config import CheckpointConfig, DistillConfig, RunConfig
from training.experiment import init_experiment, two_shot_checkpoint
from training.recommend import indistinguishable, middle_uncertainty, recommend, score_sweep

TASK = {"name": "parity", "n": 10, "k": 3, "n_eval": 64}


def _run(exp, name, role, rows, distill=None, steps=(0,)):
    d = exp / C.RUNS_DIR / name
    cfg = RunConfig(
        name=name,
        role=role,
        task=TASK,
        model={"kind": "mlp", "d_in": 10, "width": 8},
        checkpoints=CheckpointConfig(save_every=100),
        distill=distill,
        steps=1000,
        device="cpu",
    )
    write_json(d / C.RUN_CONFIG_FILE, cfg.to_dict())
    for s in steps:  # checkpoint directories as list_checkpoints sees them
        (d / C.CHECKPOINTS_DIR / f"step_{s:09d}").mkdir(parents=True)
        write_json(d / C.CHECKPOINTS_DIR / f"step_{s:09d}" / C.META_FILE, {"step": s})
    (d / C.METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_json(d / C.DONE_FILE, {"steps": 1000})


def build_planted(tmp_path):
    """An experiment with a planted teacher curve and a planted two-shot sweep (no training)."""
    exp = tmp_path / "exp"
    init_experiment(exp, TASK)
    # a teacher whose accuracy rises 0.5 -> 1.0 between steps 300 and 700 (middle at 500)
    acc = {0: 0.5, 100: 0.5, 200: 0.5, 300: 0.5, 400: 0.6, 500: 0.75, 600: 0.9, 700: 1.0, 800: 1.0, 900: 1.0, 1000: 1.0}
    steps = sorted(acc)
    _run(
        exp,
        "teacher",
        C.ROLE_TEACHER,
        [{"step": s, "eval_acc": a, "eval_loss": 1 - a, "checkpoint": True} for s, a in acc.items()],
        steps=steps,
    )
    # two-shot students: planted steps to 95% per teacher checkpoint (None = never)
    planted_speed = {200: None, 400: 600, 500: 300, 600: 400, 800: None}
    for ck, hit in planted_speed.items():
        rows = [
            {"step": s, "eval_acc": 0.96 if hit is not None and s >= hit else 0.5, "eval_loss": 0.5}
            for s in range(0, 1001, 100)
        ]
        dist = DistillConfig(method="two-shot", teacher_dir="../teacher", two_shot_step=ck, two_shot_T=100)
        _run(exp, f"two-shot-T{ck}-s0", C.ROLE_STUDENT, rows, distill=dist)
    return exp


@pytest.fixture
def planted(tmp_path):
    return build_planted(tmp_path)


def test_pick_is_the_checkpoint_nearest_the_transition_middle(planted):
    rec = recommend(planted)
    assert rec["pick"] == 500 == two_shot_checkpoint(planted / C.RUNS_DIR / "teacher", "parity")
    assert [r["step"] for r in rec["ranking"][:3]] == [500, 400, 600]
    assert rec["ranking"][0]["teacher_acc"] == 0.75


def test_score_ranks_the_pick_among_the_measured_speeds(planted):
    s = score_sweep(planted, 500)["seeds"][0]
    assert (s["rank"], s["best"], s["best_steps"], s["pick_steps"], s["pick_over_best"]) == (1, 500, 300, 300, 1.0)
    s = score_sweep(planted, 400)["seeds"][0]
    assert (s["rank"], s["pick_over_best"]) == (3, 2.0)
    assert score_sweep(planted, 200)["seeds"][0]["rank"] == 4  # never reached: after every student that did
    assert score_sweep(planted, 300) is None  # no student used that checkpoint


def test_recommend_command(planted, capsys):
    assert main(["recommend", str(planted), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "recommended checkpoint: 500" in out and "ranks 1 of 5" in out
    assert main(["recommend", str(planted / "nope")]) == 2


def test_sharp_transition_with_dense_evaluations_leaves_one_candidate(planted):
    rec = recommend(planted)  # middle exactly at the evaluation 500, evaluations every 100
    assert (rec["uncertainty"], rec["indistinguishable"]) == (50, [500])


def build_coarse(tmp_path):
    """A teacher evaluated every 200 steps with a checkpoint every 100: accuracy crosses 0.75
    at 1000 + 0.05 / 0.25 * 200 = 1040, between the evaluations 1000 and 1200."""
    exp = tmp_path / "coarse"
    init_experiment(exp, TASK)
    acc = {s: 0.5 for s in range(0, 601, 200)} | {800: 0.55, 1000: 0.7, 1200: 0.95}
    acc |= {s: 1.0 for s in range(1400, 2001, 200)}
    rows = [{"step": s, "eval_acc": a, "eval_loss": 1 - a} for s, a in acc.items()]
    _run(exp, "teacher", C.ROLE_TEACHER, rows, steps=range(0, 2001, 100))
    return exp


def test_coarse_evaluations_leave_several_candidates(tmp_path):
    rec = recommend(build_coarse(tmp_path))
    assert rec["target_step"] == pytest.approx(1040)
    assert rec["pick"] == 1000
    assert rec["uncertainty"] == pytest.approx(100)  # half the gap 1000 -> 1200
    assert rec["indistinguishable"] == [1000, 1100]  # 1200 is 160 away


def test_uncertainty_is_the_larger_of_half_the_spacing_and_the_rules_spread():
    evals = range(0, 2001, 100)
    assert middle_uncertainty(evals, 1030.0) == 50  # half the gap 1000 -> 1100
    assert middle_uncertainty(evals, 1000.0) == 50  # on an evaluation: the larger adjacent gap
    assert middle_uncertainty([0, 100, 400, 500], 100.0) == 150
    assert middle_uncertainty(evals, 1030.0, 1030.0 + 20) == 50  # the rules agree closely
    assert middle_uncertainty(evals, 1030.0, 1030.0 - 230) == pytest.approx(230)  # they disagree
    assert middle_uncertainty(evals, 1030.0, float("nan")) == 50  # one fit
    ckpts = list(range(100, 2001, 100))
    assert indistinguishable(ckpts, 1030.0, 50) == [1000]
    assert indistinguishable(ckpts, 1030.0, 230) == [800, 900, 1000, 1100, 1200]  # 800: exactly 230 away
    assert indistinguishable([100, 2000], 1030.0, 50) == [100]  # the pick, however far


def test_recommend_command_prints_what_it_cannot_tell_apart(planted, tmp_path, capsys):
    assert main(["recommend", str(planted)]) == 0
    assert "cannot tell apart: 500 (middle 500 +/- 50)" in capsys.readouterr().out
    exp = build_coarse(tmp_path)
    assert main(["recommend", str(exp)]) == 0
    assert "cannot tell apart: 1000, 1100 (middle 1,040 +/- 100)" in capsys.readouterr().out
    assert main(["recommend", str(exp), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["indistinguishable"] == [1000, 1100] and rec["uncertainty"] == pytest.approx(100)
