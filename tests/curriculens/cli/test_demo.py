"""`curriculens demo` end to end at a tiny size: train, probe, summarise, rerun resumes."""

import json

import pytest

from curriculens.cli import main
from probes.store import ResultsStore


def test_parity_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--size", "tiny", "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "probed" in printed and "appear" in printed.lower()
    assert "What you are looking at:" in printed and "target: 95% held-out accuracy" in printed
    assert "one seed is an anecdote" in printed and "pass the null" in printed
    assert printed.rstrip().endswith(f"curriculens dashboard {out}")  # the experiment itself, not its parent
    runs = {p.name for p in (out / "runs").iterdir()}
    assert {"teacher", "ce-s0", "one-shot-s0", "progressive-s0"} <= runs
    with ResultsStore(out / "results.sqlite", readonly=True) as store:
        df = store.query()
        n_rows = store.count()
    assert set(df.run) == runs
    assert {"model", "fourier", "linear"} <= set(df.probe)
    assert set(df.method) == {"teacher", "ce", "one-shot", "progressive", "two-shot"}
    # the model probe agrees with the accuracy the run logged at each checkpoint
    acc = df[(df.probe == "model") & (df.metric == "accuracy") & (df.run == "teacher")].set_index("step").value
    logged = {
        json.loads(line)["step"]: json.loads(line)["eval_acc"]
        for line in (out / "runs/teacher/metrics.jsonl").read_text().splitlines()
    }
    assert all(abs(acc[s] - logged[s]) < 1e-9 for s in acc.index)
    # a rerun trains nothing and probes nothing new
    assert main(["-q", "demo", "--size", "tiny", "--out", str(out), "--device", "cpu"]) == 0
    assert "already done" in capsys.readouterr().out
    with ResultsStore(out / "results.sqlite", readonly=True) as store:
        assert store.count() == n_rows


def test_students_table_stays_aligned_for_long_run_names(monkeypatch, capsys):
    """Issue 25.9: the 'steps to 95%' table keeps its columns for long two-shot names."""
    from types import SimpleNamespace

    import training.experiment as E
    from curriculens.cli import demo

    parity = SimpleNamespace(task=SimpleNamespace(name="parity"))  # a task with a target: the steps column prints
    runs = [
        SimpleNamespace(name=n, path=n, role=role, config=parity)
        for n, role in (("teacher", "teacher"), ("two-shot-ckpt26000-T10000-s0", "student"), ("x" * 40, "student"))
    ]
    monkeypatch.setattr(E, "list_runs", lambda out: runs)
    monkeypatch.setattr(E, "read_metrics", lambda path: [{"step": 0, "eval_acc": 0.5}, {"step": 10, "eval_acc": 1.0}])
    demo._print_students("unused")
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "(final" in ln]
    assert len(lines) == 3 and len({ln.index("(final") for ln in lines}) == 1


def test_demo_students_save_at_least_as_often_as_the_teacher():
    """Issue 25.7: students' appear steps are no coarser than the teacher's checkpoints."""
    from training.plans import PARITY_SIZES

    for name, size in PARITY_SIZES.items():
        assert size.student_save_every <= size.save_every, name


@pytest.mark.slow
def test_teacher_seeds_replicate_the_whole_experiment_and_the_closing_lines_pool_them(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["-q", "demo", "--size", "tiny", "--out", str(out), "--device", "cpu", "--teacher-seeds", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (out / "seed0" / "runs" / "teacher").is_dir() and (out / "seed1" / "runs" / "teacher").is_dir()
    seeds = [json.loads((out / f"seed{k}" / "runs" / "teacher" / "config.json").read_text())["seed"] for k in (0, 1)]
    assert seeds == [0, 1]
    assert "2 run(s) per method, 2 teacher(s)" in printed and "(seed 1)" in printed
    assert f"curriculens compare {out} progressive one-shot" in printed
