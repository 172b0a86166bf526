"""``curriculens demo``: a whole small experiment end to end (train, probe, summarise)."""

from __future__ import annotations

import time
from pathlib import Path

from curriculens import constants as C
from curriculens.cli._common import add_device, add_executor_args, executor_from_args
from curriculens.errors import CurriculensError


PER_RUN = 6
NAME_WIDTH = 30  # run-name column: fits the demo's longest (two-shot-ckpt26000-T10000-s0)
TARGET_ACC = C.TARGET_ACC


def _print_students(out: Path) -> None:
    """Steps each run needed to reach TARGET_ACC held-out accuracy (from its metrics)."""
    from training.experiment import list_runs, read_metrics, steps_to_acc

    print(f"steps to {TARGET_ACC:.0%} held-out accuracy:")
    runs = list_runs(out)
    width = max([NAME_WIDTH] + [len(r.name) for r in runs])  # long two-shot names keep the columns aligned
    for run in runs:
        rows = read_metrics(run.path)
        hit = steps_to_acc(rows, TARGET_ACC)
        final = rows[-1]["eval_acc"] if rows else float("nan")
        print(f"  {run.name:<{width}} {'not reached' if hit is None else f'{hit:,}':>12}   (final {final:.3f})")
    print()


def _closing(out: Path) -> list[str]:
    """What the user is looking at, from the runs' own metrics (nothing assumed)."""
    from training.experiment import list_runs, read_metrics, steps_to_acc, teacher_run, teacher_transition_of

    t = teacher_run(out)
    if t is None:
        return []
    lines = ["What you are looking at:"]
    tr = teacher_transition_of(t.path, t.config.task.name)
    model = t.config.model
    what = f"a width-{model.width} MLP teacher" if model.kind == "mlp" else f"a {model.kind} teacher"
    if tr is not None:
        lines.append(
            f"- {what} learned the task through a transition: its held-out {tr.metric.removeprefix('eval_')} "
            f"moved from {tr.start_level:.2f} to {tr.end_level:.2f} between steps {tr.start:,} and {tr.end:,}."
        )
    reached, missed = [], []
    for run in list_runs(out):
        if run.role != C.ROLE_STUDENT:
            continue
        rows = read_metrics(run.path)
        hit = steps_to_acc(rows, TARGET_ACC)
        (reached if hit is not None else missed).append((hit, run.method, rows[-1]["step"] if rows else 0))
    if reached:
        order = ", then ".join(f"{m} ({h:,} steps)" for h, m, _ in sorted(reached))
        lines.append(f"- students reached {TARGET_ACC:.0%} in this order: {order}.")
    if missed:
        lines.append(
            "- "
            + ", ".join(f"{m}" for _, m, _ in missed)
            + f" did not reach {TARGET_ACC:.0%} within {max(n for _, _, n in missed):,} steps."
        )
    lines.append(
        "- the paper's claim: intermediate teacher checkpoints carry an implicit curriculum (low-degree "
        "in-support features spike during the teacher's transition), so progressive and two-shot students "
        "learn faster than one-shot and ce. The order above is measured on this run, one seed."
    )
    return lines


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run a small experiment end to end: teacher, its students, probe sweep, summary",
        description="Train a teacher and its ce / one-shot / progressive / two-shot (and, for parity, curriculum-extraction) "
        "students (parity: as one grid), sweep the probes "
        "over every checkpoint into DIR/results.sqlite, and print when each feature appears. "
        "Rerunning resumes. Example: curriculens demo --out demo_out",
    )
    p.add_argument("--task", choices=("parity", "pcfg"), default="parity", help="which sandbox (default parity)")
    p.add_argument("--out", default="demo_out", help="experiment directory to write (default ./demo_out)")
    p.add_argument(
        "--size", default="demo", help="parity: tiny | small | demo | bench; pcfg: tiny | demo (default demo)"
    )
    p.add_argument("--seeds", type=int, default=1, help="student seeds per method (default 1)")
    p.add_argument(
        "--grammar", help="pcfg: a grammar JSON file or a bundled grammar's name (cfg3b) instead of a generated grammar"
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another process is writing a run or the results database, wait for it instead of refusing",
    )
    p.add_argument("--no-probe", action="store_true", help="train only; skip the probe sweep and the summary")
    add_device(p)
    add_executor_args(p)
    p.set_defaults(func=run)


def _plan(args):
    """(teacher config, students_for(exp_dir, teacher) -> configs): ``training.plans.demo_plan``."""
    from training.plans import demo_plan

    return demo_plan(
        args.task, args.size, out=args.out, seeds=range(args.seeds), device=args.device, grammar=args.grammar
    )


def run(args) -> int:
    from curriculens.executor import executor_session

    if args.seeds < 1:
        raise CurriculensError("--seeds must be at least 1")
    executor = executor_from_args(args)
    with executor_session(executor):  # one Ray session for training and probing
        return _run(args, executor)


def _run(args, executor) -> int:
    from training.plans import DEMO_GRID_TASKS, run_plan

    t0 = time.time()
    out = Path(args.out)
    teacher, students_for = _plan(args)

    def on_run(cfg, res):
        acc = res.final_eval.get("eval_acc")
        state = "kept (already done)" if res.skipped else f"{res.wall_s:.0f}s"
        print(f"  trained {cfg.name:<{NAME_WIDTH}} final eval acc {acc:.3f}  [{state}]")

    print(f"curriculens demo ({args.task}, size {args.size}) -> {out}")
    run_plan(
        out,
        teacher,
        students_for,
        progress=not args.quiet,
        wait=args.wait,
        on_run=on_run,
        executor=executor,
        grid=args.task in DEMO_GRID_TASKS,
    )
    if args.no_probe:
        print(f"done in {time.time() - t0:.0f}s (probes skipped)")
        return 0
    from probes.summary import earliest, format_summary, summarize
    from probes.sweep import SweepConfig, run_sweep
    from training.experiment import list_runs

    options = {}
    if args.task == "pcfg":  # the preset's probe sizes (the defaults are the paper's 1,024 n-gram sentences)
        from training.plans.pcfg import demo_probe_options

        options = demo_probe_options(args.size)
    sweep = SweepConfig(device=args.device, options=options)
    res = run_sweep(out, sweep, progress=not args.quiet, executor=executor, wait=args.wait)
    print(f"  probed {res.n_done} units ({res.n_skipped} already done, {res.n_failed} failed) -> {res.db_path}")
    print()
    _print_students(out)
    table = summarize(out / C.RESULTS_DB)
    appeared = table[table["appear_step"].notna()]
    shown = earliest(table, PER_RUN, [r.name for r in list_runs(out)])  # the earliest few of each run, teacher first
    print(
        f"earliest features to appear, per run ({len(appeared)} of {len(table)} series appear and pass the null: "
        f"a held rise, Benjamini-Hochberg 5% per run; full table: curriculens summary {out}):"
    )
    print(format_summary(shown))
    print()
    for line in _closing(out):
        print(line)
    print()
    print(
        f"done in {time.time() - t0:.0f}s. Next: curriculens summary {out} --by-method, or curriculens dashboard {out}"
    )
    return 1 if res.n_failed else 0
