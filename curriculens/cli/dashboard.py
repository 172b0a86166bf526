"""``curriculens dashboard RUNS_DIR``: serve the dashboard over every experiment under RUNS_DIR."""

from __future__ import annotations

import logging
from pathlib import Path

from curriculens.errors import CurriculensError

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the dashboard: teacher transition, feature timelines, students, emergence table",
        description="Serve a local web page over every experiment found at or below RUNS_DIR (depth <= 3). "
        "It only reads: experiment.json, each run's metrics.jsonl and results.sqlite (opened read-only). "
        "Example: curriculens dashboard runs/ then open http://127.0.0.1:8050",
    )
    p.add_argument(
        "runs_dir", metavar="RUNS_DIR", help="a directory holding experiment directories (or one experiment)"
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    p.set_defaults(func=run)


def check_bind(host: str, port: int) -> None:
    """Raise CurriculensError (one line) unless ``host`` resolves and ``port`` is free on it
    (checked before the app is built; the server itself exits without a usable message)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CurriculensError(f"--host {host} does not resolve: {exc.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        try:
            sock.bind(addr)
        except OSError as exc:
            raise CurriculensError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


def run(args) -> int:
    root = Path(args.runs_dir)
    if not root.is_dir():
        raise CurriculensError(f"runs directory {root} does not exist or is not a directory")
    if not 0 < args.port < 65536:
        raise CurriculensError(f"--port must be in 1..65535, not {args.port}")
    check_bind(args.host, args.port)
    from dashboard.app import make_app

    app = make_app(root)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this address can read the results", args.host)
    print(f"curriculens dashboard: serving {root.resolve()} at http://{args.host}:{args.port} (Ctrl-C to stop)")
    try:
        app.run(host=args.host, port=args.port, debug=False)
    except OSError as exc:
        raise CurriculensError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
