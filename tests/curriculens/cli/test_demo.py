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


def _demo_args(*flags):
    from curriculens.cli.entry import build_parser

    return build_parser().parse_args(["demo", "--size", "tiny", *flags])


@pytest.mark.parametrize(
    ("flags", "replicates", "plans"),
    [  # (teacher seed or None = the plan's own, student seeds) per replicate
        ((), 1, [(None, [0])]),
        (("--student-seeds", "3"), 1, [(None, [0, 1, 2])]),
        (("--seeds", "3"), 3, [(0, [0]), (1, [1]), (2, [2])]),
        (("--seeds", "2", "--student-seeds", "2"), 2, [(0, [0, 1]), (1, [2, 3])]),
    ],
)
def test_seeds_replicate_teacher_and_students(monkeypatch, flags, replicates, plans):
    """Issue 24.2: --seeds N = N replicates, replicate k = teacher seed k and student seed k;
    --student-seeds M adds student seeds inside each (distinct across replicates)."""
    import training.plans as P
    from curriculens.cli import demo

    got, real = [], P.demo_plan

    def fake_plan(task, size, *, out, seeds, device, grammar):
        got.append(list(seeds))
        return real(task, size, out=out, seeds=seeds, device=device, grammar=grammar)

    monkeypatch.setattr(P, "demo_plan", fake_plan)
    args = _demo_args(*flags)
    n = demo.n_replicates(args)
    assert n == replicates
    seen = []
    for k in range(n):
        teacher, _ = demo._plan(args, "unused", None if n == 1 else k)
        seen.append((None if n == 1 else teacher.seed, got[-1]))
    assert seen == plans
    if n == 1:
        assert teacher.seed == real("parity", "tiny")[0].seed  # unchanged: the plan's own seed


def test_teacher_seeds_is_a_deprecated_alias_of_seeds(capsys):
    from curriculens.cli import demo
    from curriculens.cli.entry import build_parser

    assert demo.n_replicates(_demo_args("--teacher-seeds", "3")) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["curriculens: warning: --teacher-seeds is deprecated; use --seeds"]
    assert "--teacher-seeds" not in build_parser()._subparsers._group_actions[0].choices["demo"].format_help()
    assert demo.n_replicates(_demo_args("--teacher-seeds", "2", "--seeds", "2")) == 2


@pytest.mark.parametrize(
    "flags", [("--seeds", "0"), ("--student-seeds", "0"), ("--teacher-seeds", "2", "--seeds", "3")]
)
def test_bad_seed_counts_are_one_line_and_write_nothing(tmp_path, capsys, flags):
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--size", "tiny", "--out", str(out), "--device", "cpu", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("curriculens: error:")
    assert not out.exists()


@pytest.mark.slow
def test_seeds_replicate_the_whole_experiment_and_the_closing_lines_pool_them(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["-q", "demo", "--size", "tiny", "--out", str(out), "--device", "cpu", "--seeds", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (out / "seed0" / "runs" / "teacher").is_dir() and (out / "seed1" / "runs" / "teacher").is_dir()
    seeds = [json.loads((out / f"seed{k}" / "runs" / "teacher" / "config.json").read_text())["seed"] for k in (0, 1)]
    assert seeds == [0, 1]
    assert (out / "seed0" / "runs" / "ce-s0").is_dir() and (out / "seed1" / "runs" / "ce-s1").is_dir()
    assert not (out / "seed1" / "runs" / "ce-s0").exists()
    assert "2 run(s) per method, 2 teacher(s)" in printed and "(seed 1)" in printed
    assert f"curriculens compare {out} progressive one-shot" in printed


@pytest.mark.parametrize(("last_acc", "warned"), [(0.94, True), (0.99, False)])
def test_the_closing_lines_say_when_a_teacher_ends_below_the_target(tmp_path, last_acc, warned):
    """A teacher whose last held-out accuracy is below the students' target (the demo's late
    teacher seed 2 ended at 0.94) is named as such under its transition line."""
    from curriculens import constants as C
    from curriculens.cli.demo import _closing
    from training.plans.parity import PARITY_SIZES, parity_teacher_config

    cfg = parity_teacher_config(PARITY_SIZES["tiny"], seed=2, device="cpu")
    run = tmp_path / C.RUNS_DIR / "teacher"
    (run / C.CHECKPOINTS_DIR).mkdir(parents=True)
    (run / C.RUN_CONFIG_FILE).write_text(json.dumps(cfg.to_dict()))
    accs = [0.5] * 6 + [0.6, 0.8, 0.9, last_acc]
    rows = [{"step": 50 * i, "eval_acc": a, "eval_loss": 1.0 - a} for i, a in enumerate(accs)]
    (run / C.METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = "\n".join(_closing(tmp_path))
    assert ("It ended at 0.94 held-out accuracy, below the 95% target" in text) == warned
    assert "teacher" in text
