"""``curriculens grid``: many students of one teacher trained together (``training.grid``)."""

from __future__ import annotations

import time
from pathlib import Path

from curriculens import constants as C
from curriculens.cli._common import add_device, add_executor_args, executor_from_args
from curriculens.errors import CurriculensError


def _list(kind):
    def parse(text: str):
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise CurriculensError(f"expected comma-separated {kind.__name__} values, got {text!r}") from None

    return parse


# flag dest -> (GridSpec field, parser)
_FLAGS = {
    "methods": ("methods", _list(str)),
    "seeds": ("seeds", _list(int)),
    "widths": ("widths", _list(int)),
    "taus": ("taus", _list(float)),
    "alphas": ("alphas", _list(float)),
    "speeds": ("speeds", _list(float)),
}


def _default(name: str) -> str:
    """A GridSpec field's default as flag help quotes it (``1.0``, ``0,1``)."""
    from curriculens.config import dataclass_default
    from training.gridspec import GridSpec

    value = dataclass_default(GridSpec, name)
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def register(sub) -> None:
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
    p.add_argument("--methods", help="comma-separated: ce,one-shot,progressive,two-shot,curriculum-extraction")
    p.add_argument("--seeds", help=f"comma-separated initialisation seeds (default {_default('seeds')})")
    p.add_argument(
        "--widths", "--width", dest="widths", help="comma-separated MLP student widths (default: the task's student)"
    )
    p.add_argument(
        "--taus", "--tau", dest="taus", help=f"comma-separated teacher temperatures (default {_default('taus')})"
    )
    p.add_argument(
        "--alphas", "--alpha", dest="alphas", help=f"comma-separated label-CE weights (default {_default('alphas')})"
    )
    p.add_argument(
        "--speeds",
        "--speed",
        dest="speeds",
        help=f"comma-separated progressive speed factors (default {_default('speeds')})",
    )
    p.add_argument(
        "--two-shot-steps",
        help="two-shot teacher checkpoints: comma-separated steps, 'all' (the (2, T) sweep) or 'mid'",
    )
    p.add_argument("--two-shot-T", type=int, help="two-shot: student steps on the intermediate checkpoint")
    p.add_argument(
        "--extract-steps", type=int, help="curriculum-extraction: steps fitting the teacher's hidden-layer projection"
    )
    p.add_argument(
        "--extract-seed",
        type=int,
        help=f"curriculum-extraction: seed of the random projection (default {_default('extract_seed')})",
    )
    p.add_argument("--steps", type=int, help="student steps (default: the teacher's)")
    p.add_argument("--batch-size", type=int, help="default: the teacher's")
    p.add_argument("--save-every", type=int, help="checkpoint interval (default: the teacher's)")
    p.add_argument("--eval-every", type=int, help="evaluation interval (default: the teacher's)")
    p.add_argument("--stream-seed", type=int, help="seed of the shared training data stream (default: the first seed)")
    p.add_argument(
        "--stop-at-acc", type=float, help="end each student at its first evaluation at or above this accuracy"
    )
    p.add_argument("--lr", type=float, help="student learning rate (default: the teacher's)")
    p.add_argument("--teacher", help=f"the teacher run's name in EXP/runs/ (default {_default('teacher')})")
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
    from training.gridspec import GridSpec, read_spec

    data = {}
    if args.spec:
        spec = read_spec(args.spec)
        from dataclasses import asdict

        data = asdict(spec)
    for dest, (key, parse) in _FLAGS.items():
        if getattr(args, dest) is not None:
            data[key] = parse(getattr(args, dest))
    if args.two_shot_steps is not None:
        v = args.two_shot_steps.strip()
        data["two_shot_steps"] = v if v in ("all", "mid") else _list(int)(v)
        if "methods" not in data and not args.spec:
            data["methods"] = ["two-shot"]
    for dest in (
        "two_shot_T",
        "extract_steps",
        "extract_seed",
        "steps",
        "batch_size",
        "save_every",
        "eval_every",
        "stream_seed",
        "stop_at_acc",
        "teacher",
    ):
        if getattr(args, dest) is not None:
            data[dest] = getattr(args, dest)
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
