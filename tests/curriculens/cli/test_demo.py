"""`curriculens demo` end to end at a tiny size: train, probe, summarise, rerun resumes."""

import json

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
