"""The ``curriculens`` command line: parse, then run.

Each subcommand lives in ``curriculens/cli/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``. Flags that set a
config field are generated from the field's metadata (``curriculens.cli.fields``).
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

from curriculens.cli.progress import plain_progress_when_piped
from curriculens.errors import CurriculensError
from curriculens.version import __version__

# (module, subcommand) in the order --help lists them
SUBCOMMANDS = (
    "demo",
    "train",
    "grid",
    "fetch",
    "importer",
    "recommend",
    "probe",
    "summary",
    "compare",
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
            module = importlib.import_module(f"curriculens.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"curriculens.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


# sqlite3 errors that come from the user's setup, not from a bug
_ENV_SQLITE = (  # (what SQLite says, what the user is told besides it)
    ("database is locked", "another process may hold it; wait or retry"),
    ("readonly database", "the file or its directory is read-only"),
    ("unable to open database", "check the path and its permissions"),
    ("disk i/o error", "the disk failed or is full"),
    ("database or disk is full", "no space left on the device; free some and rerun"),
)


def _error(message: str, prefix: str = "error: ") -> None:
    """Print ``curriculens: error: ...`` on a line of its own (clearing an unfinished progress-bar line)."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")
    print(f"curriculens: {prefix}{message}", file=sys.stderr)


def _user_message(exc: CurriculensError) -> str:
    """One line; an error listing several problems (a grammar) names the first, then lists all below."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    problems = getattr(exc, "problems", None) or []
    if len(lines) == 1:
        return lines[0]
    head = lines[0].rstrip(":")
    if problems:
        head += f"; first: {problems[0]}"
    return head + "\n" + "\n".join(lines[1:])


def _environment_message(exc: Exception) -> str | None:
    """One line for an error of the user's environment (a path that is a file or read-only,
    permission denied, a port in use, a host that does not resolve, a locked database); None
    for anything else."""
    import sqlite3

    if isinstance(exc, OSError):
        what = exc.strerror or str(exc) or type(exc).__name__
        where = exc.filename
        return f"{what}: {where}" if where else what
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError):
        hint = next((h for k, h in _ENV_SQLITE if k in text.lower()), None)
        return f"results database: {text} ({hint})" if hint else None
    if isinstance(exc, sqlite3.DatabaseError):  # not a database, malformed: the file, not our code
        return f"results database: {text} (the file is damaged or not a database; move it aside and rerun `curriculens probe`)"
    if "No space left on device" in text:  # e.g. safetensors' SafetensorError, which is no OSError
        return f"No space left on device ({type(exc).__name__}: {text}); free some space and rerun to resume"
    return None


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning. On a shared or oversubscribed CPU, spinning
    # threads made small-tensor work (probe fits) 10-100x slower. Must precede `import torch`
    # (the commands import it lazily); an explicit OMP_WAIT_POLICY in the environment wins.
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
        with plain_progress_when_piped():  # progress lines, not one huge \r line, in a log file
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:  # `curriculens summary | head`: the reader stopped; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as other command-line tools
    except CurriculensError as exc:
        _error(_user_message(exc))
        return 2
    except KeyboardInterrupt:
        _error("interrupted (finished work is kept; rerun to resume)", prefix="")
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        if args.debug:
            raise
        env = _environment_message(exc)
        if env is not None:
            _error(env)
            return 2
        msg = str(exc).strip().splitlines()
        _error(f"internal error: {type(exc).__name__}: {msg[0] if msg else ''} (rerun with --debug for the traceback)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
