"""``curriculens probe PATH``: run the probe sweep over every checkpoint into results.sqlite."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from curriculens import constants as C
from curriculens.cli._common import add_device, add_executor_args, executor_from_args, load_json_arg
from curriculens.cli.fields import add_config_args, config_changes
from curriculens.errors import CurriculensError
from probes.sweep_config import SweepConfig

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser(
        "probe",
        help="probe every checkpoint of an experiment (resumable) into EXP/results.sqlite",
        description=(
            "Run each probe on each checkpoint of each run under PATH and store one row per value "
            "in results.sqlite (beside experiment.json). Finished units are skipped on rerun; "
            "bad input fails before anything is written; a probe that raises is logged to "
            "failed.jsonl and the exit status is 1."
        ),
    )
    p.add_argument(
        "path", metavar="PATH", help="experiment directory, one run directory, or a run's checkpoints/ directory"
    )
    add_config_args(p, SweepConfig, command="probe")
    add_device(p, default=None)
    p.add_argument(
        "--n-probe",
        dest="n_probe",
        type=int,
        default=None,
        help="fresh probe inputs per checkpoint (option n_probe; default: the probe's, docs/parity.md)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a probe option (VALUE is JSON, else a string), e.g. --option n_off=50 --option 'sites=[\"blocks.0.hook_pre\"]'; repeatable",
    )
    p.add_argument(
        "--export", default=None, metavar="OUT", help="after the sweep, write every row to OUT (.csv or .parquet)"
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another process is writing this results database, wait for it instead of refusing",
    )
    p.add_argument("--dry-run", action="store_true", help="validate, print the unit grid size and exit without probing")
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="a JSON SweepConfig (file or inline); flags given on the command line override it",
    )
    add_executor_args(p, block="at most K checkpoints of one run per Ray task (default 0 = the whole run)")
    p.set_defaults(func=run)


def _parse_option(item: str) -> tuple[str, object]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise CurriculensError(f"--option expects KEY=VALUE, got {item!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def config_from_args(args: argparse.Namespace):
    """The SweepConfig: ``--config`` first, then every flag given explicitly."""
    data = load_json_arg(args.config, "--config") or {}
    data.update(config_changes(SweepConfig, args, "probe"))
    if args.device is not None:
        data["device"] = args.device
    options = dict(data.get("options") or {})
    for item in args.option:
        key, value = _parse_option(item)
        options[key] = value
    if args.n_probe is not None:
        options["n_probe"] = args.n_probe
    data["options"] = options
    return SweepConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    from probes.store import ResultsStore
    from probes.sweep import plan_sweep, run_sweep

    cfg = config_from_args(args)
    executor = executor_from_args(args)
    if args.export and not args.export.endswith((".csv", ".parquet")):
        raise CurriculensError(f"--export {args.export}: use a .csv or .parquet file name")
    if args.dry_run:
        plan = plan_sweep(args.path, cfg)
        print(
            f"{len(plan.runs)} runs, {plan.n_checkpoints} checkpoints, {len(plan.probe_names)} probes "
            f"({', '.join(plan.probe_names)}): {plan.n_units} units, {plan.n_skipped} already done, "
            f"{plan.n_pending} to run, {len(plan.stale)} stale (checkpoint changed or gone) -> {plan.db_path}"
        )
        return 0
    res = run_sweep(args.path, cfg, progress=not args.quiet and sys.stderr.isatty(), executor=executor, wait=args.wait)
    stale = f"; {res.n_stale} stale units removed (checkpoint changed or gone)" if res.n_stale else ""
    print(
        f"probe: {res.n_units} units: {res.n_done} done, {res.n_skipped} skipped, {res.n_failed} failed; "
        f"{res.n_rows} rows in {res.wall_s:.1f} s -> {res.db_path}{stale}"
    )
    for failure in res.failures[:5]:
        print(
            f"  failed: {failure['run']} step {failure['step']} {failure['probe']}: {failure['error']}", file=sys.stderr
        )
    if res.n_failed:
        print(
            f"  ({res.n_failed} failed units listed in {res.db_path.parent / C.FAILED_FILE}; rerun to retry them)",
            file=sys.stderr,
        )
    if args.export:
        with ResultsStore(res.db_path, readonly=True) as store:
            out = store.export(args.export)
        print(f"exported {out}")
    return 1 if res.n_failed else 0
