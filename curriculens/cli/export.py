"""``curriculens export EXPERIMENT_DIR``: every figure as files (``--format``), or the curves
and probe results into an experiment tracker's offline files (``--to``)."""

from __future__ import annotations

from pathlib import Path

FIGURE_FORMATS = ("png", "svg", "pdf", "html")
TRACKERS = ("tensorboard", "mlflow", "wandb")  # curriculens.trackers.TRACKERS (not imported: keeps --help light)


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write every dashboard figure of one experiment as files, or its results into TensorBoard/MLflow/W&B",
        description="Figures (--format): write the dashboard's figures of EXPERIMENT_DIR (teacher accuracy with its "
        "transition window, feature timelines and heatmaps, students by method, two-shot students) into DIR with "
        "readable names, plus emergence.csv. PNG/SVG/PDF need a local Chromium (apt-get install chromium); HTML needs "
        "nothing. Trackers (--to): write every run's training metrics and probe results, in step order with the "
        "teacher step as a second axis, as TensorBoard event files, an MLflow file store or W&B offline runs "
        "(nothing is sent; needs pip install 'curriculens[trackers]'); DIR is replaced whole. "
        "Examples: curriculens export runs/parity --format pdf --out figures/ ; "
        "curriculens export runs/parity --to tensorboard --out tb/ && tensorboard --logdir tb/",
    )
    p.add_argument("experiment", metavar="EXPERIMENT_DIR", help="the experiment directory (holds experiment.json)")
    p.add_argument(
        "--format", dest="fmt", choices=FIGURE_FORMATS, default=None, help="figure file format (default png)"
    )
    p.add_argument(
        "--to",
        choices=TRACKERS,
        default=None,
        help="write the results for this tracker instead of figures (offline files)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="output directory; figures: required (created if missing); --to: default ./<experiment>-<tracker>, "
        "must be new, empty or an earlier export (it is replaced)",
    )
    p.add_argument("--probes", default=None, help="--to only: comma-separated probes to write (default all)")
    p.add_argument("--log-steps", action="store_true", help="figures only: log-scale step axes")
    p.set_defaults(func=run)


def run(args) -> int:
    from curriculens.errors import CurriculensError

    if args.to is not None:
        if args.fmt is not None or args.log_steps:
            raise CurriculensError("--to writes tracker files, not figures: leave out --format and --log-steps")
        return _to_tracker(args)
    if args.probes is not None:
        raise CurriculensError("--probes applies to --to only")
    if args.out is None:
        raise CurriculensError("figure export needs --out DIR (or --to TRACKER to write tracker files)")
    return _figures(args)


def _figures(args) -> int:
    import logging

    from dashboard.export import export_experiment

    for noisy in ("kaleido", "choreographer"):  # they log every tab at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)

    paths = export_experiment(Path(args.experiment), Path(args.out), args.fmt or "png", log_x=args.log_steps)
    for p in paths:
        print(p)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


def _to_tracker(args) -> int:
    from curriculens.trackers import export_to_tracker

    exp = Path(args.experiment)
    out = Path(args.out) if args.out is not None else Path(f"{exp.resolve().name}-{args.to}")
    probes = None if args.probes is None else [p.strip() for p in args.probes.split(",") if p.strip()]
    out, series = export_to_tracker(exp, args.to, out, probes=probes)
    n_values = sum(len(v) for s in series for v in s.values.values())
    print(f"wrote {len(series)} runs ({n_values:,} values) for {args.to} into {out}")
    hint = {
        "tensorboard": f"tensorboard --logdir {out}",
        "mlflow": f"MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {out}",
        "wandb": f"wandb sync {out}/wandb/offline-run-*  (uploads; optional)",
    }[args.to]
    print(f"view: {hint}")
    return 0
