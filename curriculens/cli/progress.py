"""Progress output of the CLI when stderr is a file or a pipe: plain lines, not ``\\r`` redraws.

Only stdlib imports: ``entry.main`` wraps every command in ``plain_progress_when_piped``.
"""

from __future__ import annotations

import contextlib
import os
import sys

PLAIN_PROGRESS_S = 30.0  # seconds between progress lines when stderr is a file or a pipe


class PlainProgress:
    """A stand-in for ``sys.stderr`` when it is not a terminal: each ``\\r`` redraw of a
    progress bar (tqdm) becomes a line of its own, blank clears and cursor-up codes are
    dropped; text without ``\\r`` passes through unchanged."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._after_bar = False  # the last write was a bar turned into a line: its closing "\n" is one too many

    def write(self, text: str) -> int:
        if "\r" not in text and "\x1b[A" not in text:
            if self._after_bar and text == "\n":
                self._after_bar = False
                return len(text)
            self._after_bar = False
            return self._stream.write(text)
        for piece in text.replace("\x1b[A", "").split("\r"):
            line = piece.rstrip()
            if line:
                self._stream.write(line + "\n")
                self._after_bar = True
        self._stream.flush()
        return len(text)

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def plain_progress_when_piped(interval_s: float = PLAIN_PROGRESS_S):
    """While active, if stderr is not a terminal, progress bars print plain lines (``PlainProgress``)
    at most every ``interval_s`` seconds (tqdm's ``TQDM_MININTERVAL`` / ``TQDM_MAXINTERVAL``,
    unless set already). Both are restored on exit."""
    stream = sys.stderr
    if stream is None or stream.isatty():
        yield
        return
    env = {"TQDM_MININTERVAL": str(interval_s), "TQDM_MAXINTERVAL": str(2 * interval_s)}
    before = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        os.environ.setdefault(k, v)
    sys.stderr = PlainProgress(stream)
    try:
        yield
    finally:
        sys.stderr = stream
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
