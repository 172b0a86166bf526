"""Student grids: a student trained in a grid equals the same student trained alone, for every
method; grids resume bit-exactly; finished students leave the stack; bad specs write nothing."""

from dataclasses import replace

import pytest
import torch

from curriculens import constants as C
from curriculens.errors import CurriculensError
from models.checkpoint import list_checkpoints, load_checkpoint
from training.experiment import init_experiment, read_metrics
from training.grid import train_grid
from training.gridspec import GridSpec, grid_configs
from training.loop import train_run
from training.plans import PARITY_SIZES, parity_teacher_config

ALL = ("ce", "one-shot", "progressive", "two-shot", "curriculum-extraction")


@pytest.fixture(scope="module")
def teacher_exp(tmp_path_factory, one_thread):
    exp = tmp_path_factory.mktemp("grid") / "exp"
    t = parity_teacher_config(PARITY_SIZES["tiny"], device="cpu")
    init_experiment(exp, t.task)
    train_run(t, exp / C.RUNS_DIR / "teacher")
    return exp


def spec(**kw):
    base = dict(
        methods=ALL,
        seeds=(0, 1),
        widths=(16,),
        two_shot_steps=(100,),
        two_shot_T=50,
        extract_steps=100,
        steps=200,
        eval_every=50,
        save_every=100,
        device="cpu",
    )
    base.update(kw)
    return GridSpec(**base)


def weights(run_dir, step=None):
    ckpts = dict(list_checkpoints(run_dir))
    model, _, _ = load_checkpoint(ckpts[step if step is not None else max(ckpts)])
    return model.state_dict()


@pytest.fixture(scope="module")
def grid_and_alone(teacher_exp, tmp_path_factory):
    """One grid of 10 students (5 methods x 2 seeds on one stream) and each trained alone."""
    cfgs = grid_configs(teacher_exp, spec())
    train_grid(cfgs, teacher_exp / C.RUNS_DIR)
    alone = tmp_path_factory.mktemp("alone")
    t_dir = str((teacher_exp / C.RUNS_DIR / "teacher").resolve())
    for c in cfgs:
        d = replace(c.distill, teacher_dir=t_dir if c.distill.teacher_dir else "")
        train_run(c.replace(distill=d), alone / c.name)
    return teacher_exp, alone, cfgs


@pytest.mark.parametrize("method", ALL)
def test_grid_student_equals_the_student_trained_alone(grid_and_alone, method):
    exp, alone, cfgs = grid_and_alone
    names = [c.name for c in cfgs if c.distill.method == method]
    assert len(names) == 2
    for name in names:
        a, b = weights(exp / C.RUNS_DIR / name), weights(alone / name)
        for k in a:
            assert torch.allclose(a[k], b[k], atol=1e-6, rtol=1e-5), (name, k)
        ra, rb = read_metrics(exp / C.RUNS_DIR / name), read_metrics(alone / name)
        assert [r["step"] for r in ra] == [r["step"] for r in rb] == [0, 50, 100, 150, 200]
        assert [r["teacher_step"] for r in ra] == [r["teacher_step"] for r in rb]
        for x, y in zip(ra, rb, strict=True):
            assert x["eval_loss"] == pytest.approx(y["eval_loss"], abs=1e-5)
            if x["train_loss"] is not None:
                assert x["train_loss"] == pytest.approx(y["train_loss"], abs=1e-5)
        assert (exp / C.RUNS_DIR / name / C.DONE_FILE).is_file()
        # a normal run: optimizer state only for resuming, dropped at the end
        assert not any((p / C.OPTIM_STATE_FILE).exists() for _, p in list_checkpoints(exp / C.RUNS_DIR / name))


def checkpoint_bytes(run_dir):
    """``{step: model.safetensors bytes}`` of every checkpoint of a run."""
    return {s: (p / C.WEIGHTS_FILE).read_bytes() for s, p in list_checkpoints(run_dir)}


def rows_without_time(run_dir):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in read_metrics(run_dir)]


@pytest.mark.parametrize("optim", [{"name": "sgd"}, {"name": "adam", "lr": 3e-3}], ids=["sgd", "adam"])
@pytest.mark.parametrize("method", ALL)
def test_a_grid_of_one_is_bit_identical_to_the_run_alone(teacher_exp, tmp_path, method, optim, one_thread):
    """One engine: a student trained alone and the same student as a grid of one end with the
    same bytes in every checkpoint and the same metrics (Adam + extraction differed before)."""
    seed = 5 if optim["name"] == "sgd" else 6
    (cfg,) = grid_configs(teacher_exp, spec(methods=(method,), seeds=(seed,), optim=optim, steps=150))
    train_grid([cfg], teacher_exp / C.RUNS_DIR)
    t_dir = str((teacher_exp / C.RUNS_DIR / "teacher").resolve())
    alone = tmp_path / cfg.name
    train_run(cfg.replace(distill=replace(cfg.distill, teacher_dir=t_dir if cfg.distill.teacher_dir else "")), alone)
    grid_dir = teacher_exp / C.RUNS_DIR / cfg.name
    a, b = checkpoint_bytes(grid_dir), checkpoint_bytes(alone)
    assert sorted(a) == [0, 100, 150] and a == b
    assert rows_without_time(grid_dir) == rows_without_time(alone)


def test_grid_students_share_one_stream_and_record_it(grid_and_alone):
    _, _, cfgs = grid_and_alone
    assert {c.data_seed for c in cfgs} == {0}
    assert {c.stream_seed for c in cfgs if c.seed == 1} == {0} and {c.stream_seed for c in cfgs if c.seed == 0} == {
        None
    }


def test_seeds_set_the_initialisation(grid_and_alone):
    exp, _, _ = grid_and_alone
    a, b = weights(exp / C.RUNS_DIR / "ce-s0", 0), weights(exp / C.RUNS_DIR / "ce-s1", 0)
    assert not torch.equal(a["blocks.0.fc.weight"], b["blocks.0.fc.weight"])


def test_extraction_fits_the_hidden_projection_first(grid_and_alone):
    exp, _, _ = grid_and_alone
    run = exp / C.RUNS_DIR / "curriculum-extraction-s0"
    w0, w100, w200 = weights(run, 0), weights(run, 100), weights(run, 200)
    # phase 1 (100 steps) trains the hidden layer only; phase 2 distils the outputs
    assert torch.equal(w0["unembed.weight"], w100["unembed.weight"])
    assert not torch.equal(w0["blocks.0.fc.weight"], w100["blocks.0.fc.weight"])
    assert not torch.equal(w100["unembed.weight"], w200["unembed.weight"])
    rows = read_metrics(run)
    assert {r["teacher_step"] for r in rows} == {max(s for s, _ in list_checkpoints(exp / C.RUNS_DIR / "teacher"))}


def test_grid_resumes_bit_exact_after_a_crash(teacher_exp, tmp_path, monkeypatch, one_thread):
    import shutil

    import training.engine as grid

    s = spec(methods=("ce", "progressive", "two-shot"), seeds=(3,), steps=300)
    exp2 = tmp_path / "exp"
    shutil.copytree(teacher_exp / C.RUNS_DIR / "teacher", exp2 / C.RUNS_DIR / "teacher")
    shutil.copy(teacher_exp / C.EXPERIMENT_FILE, exp2 / C.EXPERIMENT_FILE)
    cfgs = grid_configs(exp2, s)
    full = tmp_path / "full"
    shutil.copytree(exp2, full)
    train_grid(grid_configs(full, s), full / C.RUNS_DIR)

    real, calls = grid.save_checkpoint, {"n": 0}

    def crash(*a, **k):  # dies after 3 students x step 0, then 2 of 3 students at step 100
        out = real(*a, **k)
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(grid, "save_checkpoint", crash)
    with pytest.raises(KeyboardInterrupt):
        train_grid(cfgs, exp2 / C.RUNS_DIR)
    monkeypatch.setattr(grid, "save_checkpoint", real)
    res = train_grid(cfgs, exp2 / C.RUNS_DIR)
    assert {r.resumed_from for r in res} == {0}  # step 100 was not saved by every student
    for c in cfgs:
        a, b = weights(full / C.RUNS_DIR / c.name), weights(exp2 / C.RUNS_DIR / c.name)
        assert all(torch.equal(a[k], b[k]) for k in a), c.name
        assert [r["step"] for r in read_metrics(exp2 / C.RUNS_DIR / c.name)] == [0, 50, 100, 150, 200, 250, 300]
    assert all(r.skipped for r in train_grid(cfgs, exp2 / C.RUNS_DIR))


def test_students_that_reach_the_target_leave_the_grid(teacher_exp, tmp_path, one_thread):
    import shutil

    exp2 = tmp_path / "exp"
    shutil.copytree(teacher_exp, exp2, ignore=shutil.ignore_patterns("*-s*"))
    s = spec(
        methods=("ce", "one-shot", "progressive"), seeds=(0,), widths=(32,), steps=1500, stop_at_acc=0.9, save_every=500
    )
    cfgs = grid_configs(exp2, s)
    res = train_grid(cfgs, exp2 / C.RUNS_DIR)
    assert any(r.steps < 1500 for r in res)
    alone = tmp_path / "alone"
    t_dir = str((exp2 / C.RUNS_DIR / "teacher").resolve())
    for c, r in zip(cfgs, res, strict=True):
        rows = read_metrics(exp2 / C.RUNS_DIR / c.name)
        assert rows[-1]["step"] == r.steps == max(s for s, _ in list_checkpoints(exp2 / C.RUNS_DIR / c.name))
        d = replace(c.distill, teacher_dir=t_dir if c.distill.teacher_dir else "")
        ra = train_run(c.replace(distill=d), alone / c.name)
        assert ra.steps == r.steps, c.name  # the same stopping step as alone, although others left the stack


def test_a_diverging_grid_stops_with_finite_checkpoints_and_no_done(teacher_exp, tmp_path, one_thread):
    import shutil

    from training.loop import TrainingDiverged

    exp2 = tmp_path / "exp"
    shutil.copytree(teacher_exp, exp2, ignore=shutil.ignore_patterns("*-s*"))
    cfgs = grid_configs(exp2, spec(methods=("ce", "one-shot"), seeds=(0,), optim={"lr": 1e6}, steps=200))
    with pytest.raises(TrainingDiverged, match="diverged: (training|held-out) loss"):
        train_grid(cfgs, exp2 / C.RUNS_DIR)
    for c in cfgs:
        run_dir = exp2 / C.RUNS_DIR / c.name
        assert not (run_dir / C.DONE_FILE).exists()
        for _, path in list_checkpoints(run_dir):
            model, _, _ = load_checkpoint(path)
            assert all(torch.isfinite(p).all() for p in model.parameters())


def test_divergence_is_detected_at_the_same_evaluation_alone_and_in_a_grid_of_one(teacher_exp, tmp_path, one_thread):
    from training.loop import TrainingDiverged

    (cfg,) = grid_configs(teacher_exp, spec(methods=("one-shot",), seeds=(9,), optim={"lr": 1e6}, steps=200))
    with pytest.raises(TrainingDiverged) as in_grid:
        train_grid([cfg], teacher_exp / C.RUNS_DIR)
    t_dir = str((teacher_exp / C.RUNS_DIR / "teacher").resolve())
    with pytest.raises(TrainingDiverged) as alone:
        train_run(cfg.replace(distill=replace(cfg.distill, teacher_dir=t_dir)), tmp_path / cfg.name)
    assert str(in_grid.value) == str(alone.value) and "at step 50" in str(alone.value)
    assert checkpoint_bytes(teacher_exp / C.RUNS_DIR / cfg.name) == checkpoint_bytes(tmp_path / cfg.name)


def test_bad_specs_write_nothing(teacher_exp):
    before = sorted(p.name for p in (teacher_exp / C.RUNS_DIR).iterdir())
    with pytest.raises(CurriculensError, match="unknown method"):
        GridSpec.from_dict({"methods": ["nope"]})
    with pytest.raises(CurriculensError, match="no checkpoint at step"):
        grid_configs(teacher_exp, spec(two_shot_steps=(123,)))
    with pytest.raises(CurriculensError, match="extract_steps"):
        GridSpec.from_dict({"methods": ["curriculum-extraction"]})
    with pytest.raises(CurriculensError, match="unknown config key"):
        GridSpec.from_dict({"widht": [3]})
    assert sorted(p.name for p in (teacher_exp / C.RUNS_DIR).iterdir()) == before


def test_two_shot_all_is_one_student_per_teacher_checkpoint(teacher_exp):
    cfgs = grid_configs(teacher_exp, spec(methods=("two-shot",), seeds=(0,), two_shot_steps="all"))
    t_steps = [s for s, _ in list_checkpoints(teacher_exp / C.RUNS_DIR / "teacher")]
    assert [c.distill.two_shot_step for c in cfgs] == t_steps[:-1]
    assert [c.name for c in cfgs] == [f"two-shot-ckpt{s}-T{cfgs[0].distill.two_shot_T}-s0" for s in t_steps[:-1]]


def test_varied_dimensions_are_named(teacher_exp):
    cfgs = grid_configs(
        teacher_exp, spec(methods=("ce", "progressive"), seeds=(0,), widths=(8, 16), taus=(1.0, 0.5), speeds=(1, 2))
    )
    names = [c.name for c in cfgs]
    assert "ce-w8-s0" in names and "progressive-w16-tau0.5-x2-s0" in names
    assert len(names) == len(set(names)) == 2 * (1 + 2 * 2)


def test_two_shot_mid_is_the_middle_of_the_teacher_transition(teacher_exp):
    from training.experiment import two_shot_checkpoint

    t_dir = teacher_exp / C.RUNS_DIR / "teacher"
    cfgs = grid_configs(teacher_exp, spec(methods=("two-shot",), seeds=(0,), two_shot_steps="mid"))
    assert [c.distill.two_shot_step for c in cfgs] == [two_shot_checkpoint(t_dir, "parity")]


def test_a_conflicting_run_refuses_the_grid_before_any_write(teacher_exp, tmp_path):
    import shutil

    exp2 = tmp_path / "exp"
    shutil.copytree(teacher_exp, exp2, ignore=shutil.ignore_patterns("*-s*"))
    cfgs = grid_configs(exp2, spec(methods=("ce", "progressive"), seeds=(7,), steps=100))
    train_grid(cfgs[1:], exp2 / C.RUNS_DIR)  # progressive-s7 exists ...
    other = grid_configs(exp2, spec(methods=("ce", "progressive"), seeds=(7,), steps=150))  # ... with other steps
    with pytest.raises(CurriculensError, match="different config"):
        train_grid(other, exp2 / C.RUNS_DIR)
    assert not (exp2 / C.RUNS_DIR / "ce-s7").exists()


@pytest.mark.slow  # building GPT-2 models (HF + the TransformerLens bridge) costs tens of seconds on a busy CPU
def test_transformer_students_run_side_by_side_and_equal_alone(tmp_path, one_thread):
    from training.config import CheckpointConfig, OptimConfig, RunConfig

    gpt = {"kind": "gpt2", "vocab_size": 2, "n_positions": 16, "n_layer": 1, "n_head": 2, "head_dim": 8}
    task = {"name": "parity", "n": 10, "k": 2, "n_eval": 256}
    exp = tmp_path / "exp"
    init_experiment(exp, task)
    teacher = RunConfig(
        name="teacher",
        role="teacher",
        task=task,
        model=gpt,
        optim=OptimConfig(name="adam", lr=1e-3),
        checkpoints=CheckpointConfig(save_every=20),
        steps=40,
        batch_size=16,
        device="cpu",
    )
    train_run(teacher, exp / C.RUNS_DIR / "teacher")
    student = {**gpt, "n_head": 1}
    cfgs = grid_configs(
        exp,
        GridSpec(
            methods=("ce", "one-shot", "progressive"),
            seeds=(0,),
            model=student,
            steps=30,
            save_every=30,
            eval_every=10,
            device="cpu",
        ),
    )
    train_grid(cfgs, exp / C.RUNS_DIR)
    t_dir = str((exp / C.RUNS_DIR / "teacher").resolve())
    for c in cfgs:
        d = replace(c.distill, teacher_dir=t_dir if c.distill.teacher_dir else "")
        train_run(c.replace(distill=d), tmp_path / "alone" / c.name)
        a, b = weights(exp / C.RUNS_DIR / c.name), weights(tmp_path / "alone" / c.name)
        assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a), c.name


def test_grid_stacks_step_through_the_hand_written_backward(teacher_exp, tmp_path, monkeypatch, one_thread):
    """Every step of a stack of MLP students, extraction included, runs StackedMLPGroup.ce_grads
    (no autograd graph); the engine falls back to autograd only where that does not apply."""
    from training.stacked import StackedMLPGroup

    calls = {"plain": 0, "extract": 0}
    real = StackedMLPGroup.ce_grads

    def counted(self, x, target_dist, extract=None):
        calls["extract" if extract is not None else "plain"] += 1
        return real(self, x, target_dist, extract)

    monkeypatch.setattr(StackedMLPGroup, "ce_grads", counted)
    exp = tmp_path / "exp"
    init_experiment(exp, parity_teacher_config(PARITY_SIZES["tiny"], device="cpu").task)
    (exp / C.RUNS_DIR).mkdir(parents=True, exist_ok=True)
    (exp / C.RUNS_DIR / "teacher").symlink_to(teacher_exp / C.RUNS_DIR / "teacher")
    cfgs = grid_configs(exp, spec(methods=("ce", "one-shot", "curriculum-extraction"), seeds=(0,), steps=150))
    train_grid(cfgs, exp / C.RUNS_DIR)
    assert calls == {"plain": 50, "extract": 100}
