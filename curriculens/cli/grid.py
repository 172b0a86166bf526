"""``curriculens grid``: many students of one teacher trained together (``training.grid``)."""

from __future__ import annotations

import time
from pathlib import Path

from curriculens import constants as C
from curriculens.cli._common import add_device, add_executor_args, executor_from_args
from curriculens.cli.fields import add_config_args, config_changes
from curriculens.errors import CurriculensError


def register(sub) -> None:
    from training.gridspec import GridSpec

    p = sub.add_parser(
        "grid",
        help="train many students of one teacher together (methods x seeds x widths x tau/alpha x two-shot checkpoints x speeds)",
        description="Train a grid of students of EXP's teacher in one batched loop: MLP students are stacked into one "
        "model, every student sees the same data stream (its seed sets its initialisation), and the teacher's outputs "
        "are computed once per checkpoint and step. Each student is written as a normal run in EXP/runs/. Flags override "
        "the spec file. Rerunning resumes. Example: curriculens grid exp/parity --methods ce,one-shot,progressive "
        "--seeds 0,1,2 --width 50",
    )
    p.add_argument("exp", metavar="EXP", help="the experiment directory (holding runs/teacher)")
    p.add_argument("--spec", help="a grid.json (fields of training.gridspec.GridSpec)")
    add_config_args(
        p, GridSpec, command="grid", defaults={"methods": "ce,one-shot,progressive; two-shot with --two-shot-steps"}
    )
    p.add_argument("--lr", type=float, help="student learning rate (default: the teacher's)")
    p.add_argument(
        "--force", action="store_true", help="delete and retrain the grid's runs that exist (default: resume)"
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another process is writing one of the grid's runs, wait for it instead of refusing",
    )
    p.add_argument("--dry-run", action="store_true", help="list the students and exit")
    add_device(p)
    add_executor_args(
        p,
        block="at most K students per Ray task (default 0 = one task per group of students that stack into one model)",
    )
    p.set_defaults(func=run)


def spec_from_args(args):
    """The GridSpec of ``--spec`` with the flags given on top."""
    from dataclasses import asdict

    from training.gridspec import GridSpec, read_spec

    data = asdict(read_spec(args.spec)) if args.spec else {}
    flags = config_changes(GridSpec, args, "grid")
    if "two_shot_steps" in flags and "methods" not in flags and not args.spec:
        flags["methods"] = ["two-shot"]
    data.update(flags)
    if args.lr is not None:
        data["optim"] = {**data.get("optim", {}), "lr": args.lr}
    if args.device != C.DEVICE_AUTO or "device" not in data:
        data["device"] = args.device
    return GridSpec.from_dict(data)


def run(args) -> int:
    from training.experiment import is_experiment
    from training.gridspec import grid_configs

    exp = Path(args.exp)
    if not is_experiment(exp):
        raise CurriculensError(f"{exp} is not an experiment directory (no experiment.json)")
    spec = spec_from_args(args)
    executor = executor_from_args(args)
    cfgs = grid_configs(exp, spec)
    print(f"grid: {len(cfgs)} students of {exp}/runs/{spec.teacher}")
    if args.dry_run:
        for c in cfgs:
            print(f"  {c.name}")
        return 0
    from training.plans import run_grid

    t0 = time.time()
    results = run_grid(cfgs, exp / "runs", executor=executor, force=args.force, progress=not args.quiet, wait=args.wait)
    for c, r in zip(cfgs, results, strict=True):
        acc = r.final_eval.get("eval_acc")
        state = "kept (already done)" if r.skipped else f"{r.steps} steps"
        print(f"  {c.name:<32} final eval acc {acc:.3f}  [{state}]" if acc is not None else f"  {c.name}  [{state}]")
    print(f"done in {time.time() - t0:.0f}s. Next: curriculens summary {exp} | curriculens probe {exp}")
    return 0
