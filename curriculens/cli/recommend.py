"""``curriculens recommend``: rank a teacher's checkpoints for distillation (``training.recommend``)."""

from __future__ import annotations

import json
from pathlib import Path

from curriculens import constants as C
from curriculens.errors import CurriculensError


def register(sub) -> None:
    p = sub.add_parser(
        "recommend",
        help="rank the teacher's checkpoints to distil from (teacher-only rule), scored against a two-shot sweep if present",
        description="Rank the teacher's checkpoints by their distance to the middle of its transition (the rule of "
        "curriculens.curves), nearest first, and print the checkpoints within the middle's uncertainty, which the rule cannot "
        "tell apart from its pick (training.recommend). If EXP holds a two-shot sweep (curriculens grid EXP --two-shot-steps all), "
        "also say how the pick ranked among the measured student speeds. Example: curriculens recommend exp/parity",
    )
    p.add_argument("exp", metavar="EXP", help="the experiment directory")
    p.add_argument("--teacher", default="teacher", help="the teacher run's name (default teacher)")
    p.add_argument("--top", type=int, default=5, help="how many ranked checkpoints to print (default 5)")
    p.add_argument(
        "--target",
        type=float,
        default=C.TARGET_ACC,
        help=f"the sweep's speed: steps to this held-out accuracy (default {C.TARGET_ACC})",
    )
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from training.experiment import is_experiment
    from training.recommend import recommend, score_sweep

    exp = Path(args.exp)
    if not is_experiment(exp):
        raise CurriculensError(f"{exp} is not an experiment directory (no experiment.json)")
    if args.top < 1 or not 0 < args.target <= 1:
        raise CurriculensError("--top must be >= 1 and --target in (0, 1]")
    rec = recommend(exp, args.teacher)
    rec["sweep"] = score_sweep(exp, rec["pick"], args.target)
    if args.json:
        print(json.dumps(rec, indent=2))
        return 0
    print(rec["rule"])
    tr = rec["transition"]
    if tr:
        print(f"teacher transition ({tr['metric']}): {tr['start']:,} -> {tr['end']:,}, middle {tr['mid_step']:,.0f}")
    print(f"recommended checkpoint: {rec['pick']:,}")
    print(
        "cannot tell apart: "
        + ", ".join(str(s) for s in rec["indistinguishable"])
        + f" (middle {rec['target_step']:,.0f} +/- {rec['uncertainty']:,.0f})"
    )
    print("  rank  step        teacher acc  teacher loss")
    for r in rec["ranking"][: args.top]:
        acc = "-" if r["teacher_acc"] is None else f"{r['teacher_acc']:.3f}"
        loss = "-" if r["teacher_loss"] is None else f"{r['teacher_loss']:.4f}"
        print(f"  {r['rank']:>4}  {r['step']:<10,}  {acc:>11}  {loss:>12}")
    sweep = rec["sweep"]
    if sweep is None:
        print("no two-shot sweep here to score the pick: curriculens grid EXP --two-shot-steps all --two-shot-T T")
        return 0
    print(f"against the two-shot sweep (steps to {sweep['target']:.0%}):")
    for s in sweep["seeds"]:
        fmt = lambda v: "not reached" if v is None else f"{v:,}"  # noqa: E731
        ratio = "" if s["pick_over_best"] is None else f", {s['pick_over_best']:.2f}x the best's steps"
        print(
            f"  seed {s['seed']}: pick {s['pick']:,} ranks {s['rank']} of {s['n_checkpoints']} (steps: {fmt(s['pick_steps'])}); "
            f"best {s['best']:,} (steps: {fmt(s['best_steps'])}){ratio}"
        )
    return 0
