"""The ``curriculens`` command line: parse, then run.

Each subcommand lives in ``curriculens/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
Errors the user can fix (``CurriculensError``) print one line and exit 2; an unexpected
error prints one line too (``--debug`` shows the traceback) and exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from curriculens import __version__
from curriculens.errors import CurriculensError

# (module, subcommand) in the order --help lists them
SUBCOMMANDS = (
    "demo",
    "train",
    "grid",
    "importer",
    "recommend",
    "probe",
    "summary",
    "export",
    "dashboard",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curriculens",
        description=(
            "Progressive distillation and its implicit curriculum: train a teacher and its "
            "students, probe every checkpoint, see when each feature appears."
        ),
    )
    parser.add_argument("--version", action="version", version=f"curriculens {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors; no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the traceback of unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"curriculens.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"curriculens.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning. On a shared or oversubscribed CPU, spinning
    # threads made small-tensor work (probe fits) 10-100x slower. Must precede `import torch`,
    # which build_parser triggers; an explicit OMP_WAIT_POLICY in the environment wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "transformer_lens", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    if not args.verbose:
        warnings.filterwarnings("ignore")
    try:
        return int(args.func(args) or 0)
    except CurriculensError as exc:
        print(f"curriculens: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("curriculens: interrupted (finished work is kept; rerun to resume)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        if args.debug:
            raise
        msg = str(exc).strip().splitlines()
        print(f"curriculens: internal error: {type(exc).__name__}: {msg[0] if msg else ''} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
