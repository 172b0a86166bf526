"""The ``curriculens`` command line: ``main`` (``curriculens.cli.entry``) and one module per
command (``register(subparsers)`` + ``run(args)``); ``_common`` holds the flags several share.

Only this package prints; everything it runs is a library function that logs.
"""

from curriculens.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
