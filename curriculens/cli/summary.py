"""``curriculens summary PATH``: when each probed feature appears, per run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from curriculens import constants as C
from curriculens.errors import CurriculensError


def register(sub) -> None:
    p = sub.add_parser(
        "summary",
        help="print when each feature appears (first step past half its rise), per run",
        description=(
            "Summarise results.sqlite: for every (run, probe, feature, site, metric) series of a "
            "primary metric, the step where it appears (the first step past half of its largest rise "
            "from the first checkpoint, if that rise reaches the threshold: the metric's minimum "
            "effect, and for parity monomials the 95th percentile of the off-support monomials' "
            "rises), its peak step and value. See probes/summary.py for the exact rule."
        ),
    )
    p.add_argument("path", metavar="PATH", help="experiment directory, run directory, or a results.sqlite file")
    p.add_argument(
        "--json", action="store_true", help="print JSON records (all series, off-support included) instead of a table"
    )
    p.add_argument("--probe", default=None, help="only these probes (comma-separated), e.g. fourier")
    p.add_argument(
        "--metric",
        default=None,
        help="only these metrics (comma-separated), e.g. corr; also summarises non-primary ones",
    )
    p.add_argument("--runs", default=None, help="only these runs (comma-separated)")
    p.add_argument(
        "--off-support", action="store_true", help="also list off-support series in the table (default: a count line)"
    )
    p.add_argument(
        "--by-method",
        action="store_true",
        help="pivot: one row per feature, one column per method (teacher, ce, one-shot, progressive, "
        "two-shot) holding its appearance step (median over seeds)",
    )
    p.add_argument(
        "--pooled",
        action="store_true",
        help="per feature and method over its runs (seeds): in how many it appears, the mean step and its "
        "Student-t 95%% interval",
    )
    p.set_defaults(func=run)


def find_db(path: str | Path) -> Path:
    """The results database for PATH: the file itself, PATH/results.sqlite, or where ``curriculens probe PATH`` writes."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CurriculensError(f"no such file or directory: {path}")
    if (path / C.RESULTS_DB).is_file():
        return path / C.RESULTS_DB
    from probes.sweep import resolve_target

    db = resolve_target(path)[0] / C.RESULTS_DB  # where `curriculens probe PATH` writes
    if db.is_file():
        return db
    raise CurriculensError(f"no {C.RESULTS_DB} at or above {path}; run `curriculens probe {path}` first")


def _note_stale(db: Path) -> None:
    """Flag results whose checkpoint changed or is gone since they were measured (on stderr)."""
    from probes.freshness import stale_in

    stale = stale_in(db)
    if stale:
        runs = sorted({run for run, _, _ in stale})
        print(
            f"note: {len(stale)} probe units measured checkpoints that have changed or are gone since "
            f"(runs: {', '.join(runs)}); their rows below are stale: rerun `curriculens probe` to refresh them",
            file=sys.stderr,
        )


def _csv(value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def run(args: argparse.Namespace) -> int:
    from probes.summary import (
        format_pivot,
        format_pooled,
        format_summary,
        pivot_by_method,
        pool_by_method,
        summarize,
        summary_records,
    )

    db = find_db(args.path)
    _note_stale(db)
    df = summarize(db, probes=_csv(args.probe), metrics=_csv(args.metric), runs=_csv(args.runs), check=True)
    if args.pooled:
        pooled = pool_by_method(df)
        print(json.dumps(summary_records(pooled), indent=1) if args.json else format_pooled(pooled))
        return 0
    if args.by_method:
        pivot = pivot_by_method(df, off_support=args.off_support or args.json)
        print(json.dumps(summary_records(pivot), indent=1) if args.json else format_pivot(pivot))
        return 0
    if args.json:
        print(json.dumps(summary_records(df), indent=1, sort_keys=False))
    else:
        print(format_summary(df, off_support=args.off_support))
    return 0
