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
