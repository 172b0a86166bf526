"""``curriculens export EXPERIMENT_DIR --format png|svg|pdf|html --out DIR``: every figure as files."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write every dashboard figure of one experiment as PNG, SVG, PDF or HTML files",
        description="Write the dashboard's figures of EXPERIMENT_DIR (teacher accuracy with its transition window, "
        "feature timelines and heatmaps, students by method, two-shot students) into DIR with readable names, "
        "plus emergence.csv. PNG/SVG/PDF need a local Chromium (apt-get install chromium); HTML needs nothing. "
        "Example: curriculens export runs/parity --format pdf --out figures/",
    )
    p.add_argument("experiment", metavar="EXPERIMENT_DIR", help="the experiment directory (holds experiment.json)")
    p.add_argument(
        "--format", dest="fmt", choices=("png", "svg", "pdf", "html"), default="png", help="file format (default png)"
    )
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--log-steps", action="store_true", help="log-scale step axes")
    p.set_defaults(func=run)


def run(args) -> int:
    import logging

    from dashboard.export import export_experiment

    for noisy in ("kaleido", "choreographer"):  # they log every tab at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)

    paths = export_experiment(Path(args.experiment), Path(args.out), args.fmt, log_x=args.log_steps)
    for p in paths:
        print(p)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0
