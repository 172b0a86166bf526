"""``curriculens demo``: a whole small experiment end to end (train, probe, summarise)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from curriculens import constants as C
from curriculens.cli._common import add_device, add_executor_args, executor_from_args
from curriculens.errors import CurriculensError

PER_RUN = 6
NAME_WIDTH = 30  # run-name column: fits the demo's longest (two-shot-ckpt26000-T10000-s0)


def _print_students(out: Path) -> None:
    """Steps each run needed to reach its task's target held-out accuracy (from its metrics;
    final accuracy only where the task has no target)."""
    from training.experiment import list_runs, read_metrics, steps_to_acc

    runs = list_runs(out)
    width = max([NAME_WIDTH] + [len(r.name) for r in runs])  # long two-shot names keep the columns aligned
    task = next((r.config.task.name for r in runs if r.role == C.ROLE_TEACHER), None)
    target = C.TASK_TARGETS.get(task or "")
    print(
        f"steps to {target:.0%} held-out accuracy (per run):" if target is not None else "held-out accuracy (per run):"
    )
    for run in runs:
        rows = read_metrics(run.path)
        final = rows[-1]["eval_acc"] if rows else float("nan")
        if target is None:
            print(f"  {run.name:<{width}} final {final:.3f}")
            continue
        hit = steps_to_acc(rows, target)
        print(f"  {run.name:<{width}} {'not reached' if hit is None else f'{hit:,}':>12}   (final {final:.3f})")
    print()


# each task's own target and its own reading of the result (what the paper claims there)
TASK_CLAIMS = {
    "parity": "the paper's claim (parity): intermediate teacher checkpoints carry an implicit curriculum (low-degree "
    "in-support features spike during the teacher's transition), so progressive and two-shot students reach "
    "the target in fewer steps than one-shot and ce.",
    "pcfg": "the paper's claim (PCFG): students distilled from intermediate checkpoints (progressive, two-shot) "
    "learn faster than ce and one-shot; read here as held-out masked-token accuracy at the end of the "
    "students' budget (no accuracy target: the demo's teachers stay far below any fixed one).",
}


def _closing(out: Path | list[Path]) -> list[str]:
    """What the user is looking at, from the runs' own metrics (nothing assumed): the teacher's
    transition, then per method over its seeds (n, Student-t 95% intervals) the steps to the
    task's target, or the final held-out accuracy where the task has no target."""
    from curriculens import findings as F
    from curriculens.compare import last_eval_acc
    from training.experiment import list_runs, read_metrics, steps_to_acc, teacher_transition_of

    exps = [out] if isinstance(out, Path) else list(out)
    runs = [r for e in exps for r in list_runs(e)]
    teachers = [r for r in runs if r.role == C.ROLE_TEACHER]
    if not teachers:
        return []
    task = teachers[0].config.task.name
    target = C.TASK_TARGETS.get(task)
    lines = ["What you are looking at:"]
    for t in teachers:
        tr = teacher_transition_of(t.path, task)
        model = t.config.model
        what = f"a width-{model.width} MLP teacher" if model.kind == "mlp" else f"a {model.kind} teacher"
        what += f" (seed {t.config.seed})" if len(teachers) > 1 else ""
        if tr is not None:
            lines.append(
                f"- {what} learned the task through a transition: its held-out {tr.metric.removeprefix('eval_')} "
                f"moved from {tr.start_level:.2f} to {tr.end_level:.2f} between steps {tr.start:,} and {tr.end:,}."
            )
        else:
            lines.append(f"- {what}: its held-out curves show no transition by the task's rule.")
        last = last_eval_acc(t.path)
        if target is not None and last is not None and last < target:
            lines.append(
                f"  It ended at {last:.2f} held-out accuracy, below the {target:.0%} target: its "
                "students' last teacher (one-shot's only one; progressive's and two-shot's last phase) misses the "
                "target, so their steps to it measure this teacher as much as their method."
            )
    steps: dict[str, list] = {}
    final: dict[str, list] = {}
    for run in runs:
        if run.role != C.ROLE_STUDENT:
            continue
        rows = read_metrics(run.path)
        steps.setdefault(run.method, []).append(steps_to_acc(rows, target) if target is not None else None)
        final.setdefault(run.method, []).append(rows[-1].get("eval_acc") if rows else None)
    if not final:
        return lines
    n_seeds = max(len(v) for v in final.values())
    per = (
        "per method over its seeds, mean [Student-t 95% interval]"
        if n_seeds > 1
        else "one seed per method (no interval)"
    )
    if target is not None:
        reached = {m: [h for h in v if h is not None] for m, v in steps.items()}
        lines.append(f"- target: {target:.0%} held-out accuracy; steps to reach it, {per}:")
        order = sorted(steps, key=lambda m: (-len(reached[m]) / len(steps[m]), F.t_interval(reached[m]).estimate))
        for m in order:
            iv = F.t_interval(reached[m])
            got = f"{len(reached[m])}/{len(steps[m])} reached"
            lines.append(f"    {m:<22} {got:<12} {iv.text() if iv.n else ''}")
    means = {m: F.t_interval(v) for m, v in final.items()}
    lines.append(f"- final held-out accuracy, {per}:")
    for m in sorted(means, key=lambda m: -means[m].estimate):
        lines.append(f"    {m:<22} {means[m].text('{:.3f}')}")
    ce = means.get(C.METHOD_CE)
    others = {m: iv for m, iv in means.items() if m != C.METHOD_CE}
    if ce is not None and others and all(ce.estimate > iv.estimate for iv in others.values()):
        lo, hi = min(iv.estimate for iv in others.values()), max(iv.estimate for iv in others.values())
        lines.append(
            f"- ce is ahead of every distilled student here ({ce.estimate:.3f} vs {lo:.3f}-{hi:.3f} final accuracy): "
            "at this size distillation did not help."
        )
    lines.append("- " + TASK_CLAIMS.get(task, "the paper's claim: distilling from intermediate checkpoints is faster."))
    lines.append(
        f"  Measured here: {n_seeds} run(s) per method, {len(teachers)} teacher(s); "
        + (
            "an order without overlapping intervals is evidence, anything else is not."
            if n_seeds > 1
            else "one seed is an anecdote, not a finding (--seeds N)."
        )
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
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="replicates of the whole experiment (default 1): replicate k is teacher seed k and its students "
        "(student seed k) in OUT/seed<k>; 1 = OUT itself; the closing lines pool them",
    )
    p.add_argument(
        "--student-seeds",
        type=int,
        default=1,
        help="student seeds per method inside each replicate (default 1; replicate k's are k*M .. k*M+M-1)",
    )
    p.add_argument("--teacher-seeds", type=int, default=None, help=argparse.SUPPRESS)  # deprecated alias of --seeds
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


def _plan(args, out: Path, replicate: int | None = None):
    """(teacher config, students_for(exp_dir, teacher) -> configs): ``training.plans.demo_plan``.
    ``replicate`` k (of several): teacher seed k, student seeds k*M .. k*M+M-1 (M = --student-seeds);
    None: the plan's own teacher seed and student seeds 0 .. M-1."""
    from dataclasses import replace

    from training.plans import demo_plan

    m = args.student_seeds
    first = 0 if replicate is None else replicate * m
    teacher, students_for = demo_plan(
        args.task, args.size, out=str(out), seeds=range(first, first + m), device=args.device, grammar=args.grammar
    )
    return (teacher if replicate is None else replace(teacher, seed=replicate)), students_for


def n_replicates(args) -> int:
    """--seeds, or its deprecated alias --teacher-seeds (one warning line on stderr)."""
    old = args.teacher_seeds
    if old is not None and args.seeds is not None and args.seeds != old:
        raise CurriculensError("--teacher-seeds is an old name of --seeds; give one of them")
    n = args.seeds if args.seeds is not None else old if old is not None else 1
    if n < 1 or args.student_seeds < 1:
        raise CurriculensError("--seeds and --student-seeds must be at least 1")
    if old is not None:
        print("curriculens: warning: --teacher-seeds is deprecated; use --seeds", file=sys.stderr)
    return n


def run(args) -> int:
    from curriculens.executor import executor_session

    args.seeds = n_replicates(args)
    executor = executor_from_args(args)
    with executor_session(executor):  # one Ray session for training and probing
        return _run(args, executor)


def _run(args, executor) -> int:
    t0 = time.time()
    out = Path(args.out)
    exps = [out] if args.seeds == 1 else [out / f"seed{k}" for k in range(args.seeds)]
    failed = 0
    for k, exp in enumerate(exps):
        failed += _run_one(args, executor, exp, None if args.seeds == 1 else k)
    if args.no_probe:
        print(f"done in {time.time() - t0:.0f}s (probes skipped)")
        return 0
    for line in _closing(exps):
        print(line)
    print()
    nxt = (
        f"curriculens compare {out} progressive one-shot" if len(exps) > 1 else f"curriculens summary {out} --by-method"
    )
    print(f"done in {time.time() - t0:.0f}s. Next: {nxt}, or curriculens dashboard {exps[0]}")
    return 1 if failed else 0


def _run_one(args, executor, out: Path, replicate: int | None) -> int:
    """Train, probe and summarise one experiment; the number of failed probe units."""
    from training.plans import DEMO_GRID_TASKS, run_plan

    teacher, students_for = _plan(args, out, replicate)

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
    return res.n_failed
