"""Single runs through the training engine: teachers learn, students follow the schedule, runs resume exactly."""

import json

import pytest
import torch

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import read_jsonl
from models.checkpoint import list_checkpoints, load_checkpoint
from training.config import CheckpointConfig, DistillConfig, OptimConfig, RunConfig
from training.experiment import list_runs, read_metrics
from training.loop import train_run

TASK = {"name": "parity", "n": 10, "k": 2, "n_eval": 512}


def teacher_cfg(**kw):
    base = dict(
        name="teacher",
        role="teacher",
        task=TASK,
        model={"kind": "mlp", "d_in": 10, "width": 128},
        optim=OptimConfig(name="sgd", lr=0.1),
        checkpoints=CheckpointConfig(save_every=100),
        steps=400,
        batch_size=32,
        seed=0,
        device="cpu",
    )
    base.update(kw)
    return RunConfig(**base)


def test_teacher_learns_an_easy_parity(tmp_path):
    res = train_run(teacher_cfg(), tmp_path / "teacher")
    rows = read_metrics(tmp_path / "teacher")
    assert [r["step"] for r in rows] == [0, 100, 200, 300, 400]
    assert rows[0]["eval_acc"] < 0.7
    assert res.final_eval["eval_acc"] > 0.95
    assert [s for s, _ in list_checkpoints(tmp_path / "teacher")] == [0, 100, 200, 300, 400]
    meta = json.loads((tmp_path / "teacher" / "checkpoints" / "step_000000400" / "meta.json").read_text())
    assert meta["eval_acc"] == rows[-1]["eval_acc"] and meta["samples_seen"] == 400 * 32
    assert (tmp_path / "teacher" / C.DONE_FILE).is_file()


@pytest.mark.parametrize("optim", [{"name": "sgd", "momentum": 0.9}, {"name": "adam", "lr": 3e-3}], ids=["sgd", "adam"])
def test_the_hand_written_ce_step_trains_the_weights_autograd_does(tmp_path, monkeypatch, optim):
    """A lone MLP's cross-entropy step runs ParityMLP.ce_grads (reused buffers, no graph): the
    same checkpoints and metrics, bit for bit, as the autograd step it replaces."""
    from models.mlp import ParityMLP

    cfg = teacher_cfg(steps=200, optim=OptimConfig(**optim))
    calls = {"n": 0}
    real = ParityMLP.ce_grads

    def counted(self, *a, **k):
        calls["n"] += 1
        return real(self, *a, **k)

    monkeypatch.setattr(ParityMLP, "ce_grads", counted)
    train_run(cfg, tmp_path / "fast")
    assert calls["n"] == 200
    monkeypatch.setattr(ParityMLP, "ce_grads", None)  # the engine falls back to autograd
    train_run(cfg, tmp_path / "autograd")
    for (s1, p1), (s2, p2) in zip(
        list_checkpoints(tmp_path / "fast"), list_checkpoints(tmp_path / "autograd"), strict=True
    ):
        a, b = load_checkpoint(p1)[0].state_dict(), load_checkpoint(p2)[0].state_dict()
        assert s1 == s2 and all(torch.equal(a[k], b[k]) for k in a)
    drop = {"wall_s"}
    rows = [
        [{k: v for k, v in r.items() if k not in drop} for r in read_metrics(tmp_path / d)]
        for d in ("fast", "autograd")
    ]
    assert rows[0] == rows[1]


def test_a_plain_sgd_teacher_applies_its_step_inside_the_backward(tmp_path, monkeypatch):
    """A teacher with plain SGD (no momentum, weight decay or clipping) steps inside
    ParityMLP.ce_grads (``sgd_lr``); with momentum it does not, nor does a student alone (whose
    bits must equal a stack's: tests/training/test_grid.py)."""
    from models.mlp import ParityMLP

    seen = []
    real = ParityMLP.ce_grads

    def spy(self, *a, sgd_lr=None, **k):
        seen.append(sgd_lr)
        return real(self, *a, sgd_lr=sgd_lr, **k)

    monkeypatch.setattr(ParityMLP, "ce_grads", spy)
    train_run(teacher_cfg(steps=20, optim=OptimConfig(name="sgd", lr=0.1)), tmp_path / "plain")
    assert seen == [0.1] * 20
    seen.clear()
    train_run(teacher_cfg(steps=20, optim=OptimConfig(name="sgd", lr=0.1, momentum=0.9)), tmp_path / "momentum")
    train_run(teacher_cfg(steps=20, optim=OptimConfig(name="sgd", lr=0.1, grad_clip=1.0)), tmp_path / "clip")
    assert seen == [None] * 40
    seen.clear()
    student = teacher_cfg(name="ce-s0", role="student", steps=20, distill=DistillConfig(method="ce"))
    train_run(student, tmp_path / "student")
    assert seen == [None] * 20


@pytest.mark.parametrize(
    "optim",
    [
        OptimConfig(name="adam", lr=3e-3, schedule="cosine", warmup_frac=0.1),
        OptimConfig(name="sgd", lr=0.1, schedule="cosine", warmup_frac=0.1),  # the fused SGD step
    ],
    ids=["adam", "plain-sgd"],
)
def test_resume_is_bit_exact(tmp_path, monkeypatch, optim):
    cfg = teacher_cfg(optim=optim)
    train_run(cfg, tmp_path / "full")

    import training.engine as loop

    real = loop.save_checkpoint
    calls = {"n": 0}

    def crash_after_third(*a, **k):
        out = real(*a, **k)
        calls["n"] += 1
        if calls["n"] == 3:  # steps 0, 100, 200 saved, then the process "dies"
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(loop, "save_checkpoint", crash_after_third)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "resumed")
    monkeypatch.setattr(loop, "save_checkpoint", real)
    assert not (tmp_path / "resumed" / C.DONE_FILE).exists()
    res = train_run(cfg, tmp_path / "resumed")
    assert res.resumed_from == 200
    a, _, _ = load_checkpoint(tmp_path / "full" / "checkpoints" / "step_000000400")
    b, _, _ = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "step_000000400")
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    steps = [r["step"] for r in read_jsonl(tmp_path / "resumed" / C.METRICS_FILE)]
    assert steps == [0, 100, 200, 300, 400]  # no duplicate rows after the resume
    # optimizer state is kept only for resuming, and dropped when the run is done
    assert not any((p / C.OPTIM_STATE_FILE).exists() for _, p in list_checkpoints(tmp_path / "resumed"))


def test_finished_run_is_skipped_and_changed_config_refused(tmp_path):
    cfg = teacher_cfg(steps=100)
    train_run(cfg, tmp_path / "t")
    assert train_run(cfg, tmp_path / "t").skipped
    with pytest.raises(CurriculensError, match="different config"):
        train_run(cfg.replace(steps=200), tmp_path / "t")
    assert not train_run(cfg.replace(steps=200), tmp_path / "t", force=True).skipped


def test_students_record_the_teacher_checkpoint_they_used(tiny_parity_experiment):
    runs = {r.name: r for r in list_runs(tiny_parity_experiment)}
    assert set(runs) >= {"teacher", "ce-s0", "one-shot-s0", "progressive-s0"}
    two_shot = [n for n in runs if n.startswith("two-shot")]
    assert len(two_shot) == 1
    teacher_steps = [s for s, _ in list_checkpoints(runs["teacher"].path)]
    last = teacher_steps[-1]
    assert all(r["teacher_step"] is None for r in read_metrics(runs["ce-s0"].path))
    assert all(r["teacher_step"] == last for r in read_metrics(runs["one-shot-s0"].path))
    prog = read_metrics(runs["progressive-s0"].path)
    used = [r["teacher_step"] for r in prog]
    assert used == sorted(used) and len(set(used)) > 2 and used[-1] == last
    ts = read_metrics(runs[two_shot[0]].path)
    T = runs[two_shot[0]].config.distill.two_shot_T
    first = runs[two_shot[0]].config.distill.two_shot_step
    assert all(r["teacher_step"] == first for r in ts if r["step"] < T)
    assert all(r["teacher_step"] == last for r in ts if r["step"] > T)


def test_student_needs_a_finished_teacher(tmp_path):
    student = teacher_cfg(
        name="s", role="student", distill=DistillConfig(method="one-shot", teacher_dir=str(tmp_path / "missing"))
    )
    with pytest.raises(CurriculensError, match="teacher run not found"):
        train_run(student, tmp_path / "s")


def test_hard_label_student_trains(tmp_path):
    train_run(teacher_cfg(), tmp_path / "teacher")
    student = teacher_cfg(
        name="s",
        role="student",
        model={"kind": "mlp", "d_in": 10, "width": 32},
        distill=DistillConfig(method="progressive", teacher_dir="../teacher", tau=1e-20),
    )
    res = train_run(student, tmp_path / "s")
    assert res.final_eval["eval_acc"] > 0.9


def test_parity_transformer_trains_through_the_same_loop(tmp_path):
    cfg = teacher_cfg(
        model={"kind": "gpt2", "vocab_size": 2, "n_positions": 16, "n_layer": 1, "n_head": 2, "head_dim": 8},
        optim=OptimConfig(name="adam", lr=1e-3),
        steps=100,
    )
    res = train_run(cfg, tmp_path / "gpt")
    rows = read_metrics(tmp_path / "gpt")
    assert len(rows) == 2 and res.final_eval["eval_loss"] < 5
    m, mcfg, _ = load_checkpoint(tmp_path / "gpt" / "checkpoints" / "step_000000100")
    assert mcfg.kind == "gpt2"


@pytest.mark.gpu
def test_cuda_run_matches_cpu_accuracy(tmp_path):
    cpu = train_run(teacher_cfg(), tmp_path / "cpu")
    gpu = train_run(teacher_cfg(device="cuda"), tmp_path / "gpu")
    assert abs(cpu.final_eval["eval_acc"] - gpu.final_eval["eval_acc"]) < 0.05


def test_stop_at_acc_ends_with_a_checkpoint(tmp_path):
    cfg = teacher_cfg(steps=2000, stop_at_acc=0.9, checkpoints=CheckpointConfig(save_every=1000, eval_every=50))
    res = train_run(cfg, tmp_path / "t")
    assert res.steps < 2000 and res.final_eval["eval_acc"] >= 0.9
    steps = [s for s, _ in list_checkpoints(tmp_path / "t")]
    assert steps[-1] == res.steps
    assert read_metrics(tmp_path / "t")[-1]["step"] == res.steps


def test_resume_drops_a_torn_metrics_line(tmp_path, monkeypatch):
    cfg = teacher_cfg(steps=200)
    import training.engine as loop

    real = loop.save_checkpoint
    calls = {"n": 0}

    def crash_after_second(*a, **k):
        out = real(*a, **k)
        calls["n"] += 1
        if calls["n"] == 2:  # steps 0 and 100 saved, then the process dies...
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(loop, "save_checkpoint", crash_after_second)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "t")
    monkeypatch.setattr(loop, "save_checkpoint", real)
    with open(tmp_path / "t" / C.METRICS_FILE, "a") as fh:
        fh.write('{"step": 150, "eval_ac')  # ...in the middle of writing a row
    assert train_run(cfg, tmp_path / "t").resumed_from == 100
    rows = read_jsonl(tmp_path / "t" / C.METRICS_FILE)
    assert [r["step"] for r in rows] == [0, 100, 200]
    assert (tmp_path / "t" / C.METRICS_FILE).read_text().count('eval_ac"') == 0


def test_restart_without_a_resumable_checkpoint_starts_clean(tmp_path):
    import shutil

    cfg = teacher_cfg(steps=200)
    train_run(cfg, tmp_path / "t")
    (tmp_path / "t" / C.DONE_FILE).unlink()
    shutil.rmtree(tmp_path / "t" / C.CHECKPOINTS_DIR / "step_000000200")  # the rest carry no optimizer state
    assert train_run(cfg, tmp_path / "t").resumed_from is None
    assert [r["step"] for r in read_jsonl(tmp_path / "t" / C.METRICS_FILE)] == [0, 100, 200]


def test_finished_but_unmarked_run_is_completed_not_retrained(tmp_path, monkeypatch):
    """A kill after the final checkpoint lost its optimizer state but before done.json (the old
    order) must not retrain: the run is recognised as finished and marked done."""
    cfg = teacher_cfg(steps=200)
    first = train_run(cfg, tmp_path / "t")
    done = json.loads((tmp_path / "t" / C.DONE_FILE).read_text())
    metrics = (tmp_path / "t" / C.METRICS_FILE).read_text()
    (tmp_path / "t" / C.DONE_FILE).unlink()
    stale = tmp_path / "t" / C.CHECKPOINTS_DIR / ".step_000000300.tmp-999999"
    stale.mkdir()
    import training.engine as loop

    monkeypatch.setattr(loop, "save_checkpoint", lambda *a, **k: pytest.fail("retrained"))
    res = train_run(cfg, tmp_path / "t")
    assert res.resumed_from == 200 and res.final_eval == first.final_eval
    again = json.loads((tmp_path / "t" / C.DONE_FILE).read_text())
    assert again["steps"] == done["steps"] and again["final_eval"] == done["final_eval"]
    assert (tmp_path / "t" / C.METRICS_FILE).read_text() == metrics
    assert not stale.exists()  # a killed writer's temp directory is cleaned on resume
