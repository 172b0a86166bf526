"""The one student factory (``training.experiment.student_distill`` / ``student_config``):
method-only fields, names and the relative teacher path, the same from the plans, grid specs
and the CLI."""

import pytest

from curriculens import constants as C
from curriculens.errors import CurriculensError
from training.config import CheckpointConfig, DistillConfig, RunConfig
from training.experiment import init_experiment, student_config, student_distill
from training.gridspec import GridSpec, grid_configs
from training.loop import train_run
from training.plans.base import student_configs

TASK = {"name": "parity", "n": 6, "k": 2, "n_eval": 64}
MODEL = {"kind": "mlp", "d_in": 6, "width": 8, "depth": 1, "n_classes": 2}


def test_fields_of_another_method_keep_their_defaults(tmp_path):
    t_dir = tmp_path / "exp" / C.RUNS_DIR / "teacher"
    base = DistillConfig(method="two-shot", teacher_dir="x", two_shot_step=10, two_shot_T=5, tau=0.5)
    name, d = student_distill("one-shot", 0, t_dir, base)
    assert name == "one-shot-s0" and (d.two_shot_step, d.two_shot_T, d.tau) == (-1, 0, 0.5)
    name, d = student_distill("two-shot", 1, t_dir, base, extract_steps=7)
    assert name == "two-shot-ckpt10-T5-s1" and d.extract_steps == 0 and d.two_shot_step == 10
    name, d = student_distill("curriculum-extraction", 0, t_dir, extract_steps=7, two_shot_step=3, two_shot_T=2)
    assert (d.extract_steps, d.two_shot_step, d.two_shot_T) == (7, -1, 0)
    for method in C.METHODS:  # every student names its teacher relative to its own run directory
        changes = {"two_shot_step": 1, "two_shot_T": 1, "extract_steps": 1}
        assert student_distill(method, 0, t_dir, **changes)[1].teacher_dir == "../teacher"
    with pytest.raises(CurriculensError, match="needs --extract-steps"):
        student_distill("curriculum-extraction", 0, t_dir)


def test_student_config_takes_the_base_run_fields(tmp_path):
    teacher = RunConfig(name="teacher", role="teacher", task=TASK, model=MODEL, steps=30, batch_size=8, amp=True)
    cfg = student_config(
        teacher, tmp_path / C.RUNS_DIR / "teacher", "progressive", 2, tags="-x2", run_fields={"steps": 12}, speed=2.0
    )
    assert cfg.name == "progressive-x2-s2" and cfg.role == C.ROLE_STUDENT and cfg.seed == 2
    assert (cfg.steps, cfg.batch_size, cfg.amp, cfg.distill.speed) == (12, 8, True, 2.0)


def test_plans_and_grid_specs_make_the_same_students(tmp_path):
    exp = tmp_path / "exp"
    teacher = RunConfig(
        name="teacher",
        role="teacher",
        task=TASK,
        model=MODEL,
        steps=20,
        device="cpu",
        checkpoints=CheckpointConfig(save_every=10),
    )
    init_experiment(exp, teacher.task)
    train_run(teacher, exp / C.RUNS_DIR / "teacher")
    plan = student_configs(
        teacher, MODEL, 20, 10, 10, seeds=(0,), two_shot_step=10, two_shot_T=5, extract_steps=4, exp_dir=exp
    )
    spec = GridSpec(methods=C.METHODS, seeds=(0,), two_shot_steps=(10,), two_shot_T=5, extract_steps=4, device="cpu")
    grid = grid_configs(exp, spec)
    assert [c.name for c in plan] == [c.name for c in grid]
    for p, g in zip(plan, grid, strict=True):
        assert p.distill == g.distill, p.name
