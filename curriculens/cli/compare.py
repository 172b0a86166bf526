"""``curriculens compare EXP A B``: method A against method B across seeds (``curriculens.compare``)."""

from __future__ import annotations

import json
from pathlib import Path

from curriculens import constants as C
from curriculens.errors import CurriculensError


def register(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="method A against method B across seeds: steps to target and feature appearance, with 95% intervals",
        description="Compare two student methods over the seeds of an experiment (or a directory of replicate "
        "experiments, one per teacher seed), paired where they share a teacher: the steps to a held-out accuracy "
        "target and the step each feature appears (features that pass the summary's null), as the mean paired "
        "difference A - B with a Student-t 95%% interval and a verdict (A earlier / B earlier / not established). "
        "Example: curriculens compare demo_out progressive one-shot",
    )
    p.add_argument("exp", metavar="EXP", help="an experiment directory, or a directory of replicate experiments")
    p.add_argument("a", metavar="A", help="a student method (ce, one-shot, progressive, two-shot, ...)")
    p.add_argument("b", metavar="B", help="the method to compare it with")
    p.add_argument(
        "--target", type=float, default=C.TARGET_ACC, help=f"held-out accuracy target (default {C.TARGET_ACC})"
    )
    p.add_argument("--no-features", action="store_true", help="only the steps to target (skip the results database)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from curriculens.compare import compare, format_comparison

    if not 0 < args.target <= 1:
        raise CurriculensError("--target must be in (0, 1]")
    if args.a == args.b:
        raise CurriculensError("A and B must be different methods")
    exp = Path(args.exp)
    if not exp.is_dir():
        raise CurriculensError(f"{exp} is not a directory")
    res = compare(exp, args.a, args.b, target=args.target, features=not args.no_features)
    print(json.dumps(res, indent=2) if args.json else format_comparison(res))
    return 0
