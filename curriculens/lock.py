"""One writer at a time: an exclusive advisory lock on a run directory or a results database.

``exclusive_lock(lock_file)`` takes ``flock(LOCK_EX)`` on ``lock_file`` (a run directory's
``.lock``, an experiment's ``.results.sqlite.lock``: names in ``curriculens.constants``) and
writes the owner's PID into it. A second writer is refused at once with one line naming the holder's
PID, or with ``wait=True`` queues until the holder finishes. The kernel drops the lock when its
process dies, so a lock file left behind by a killed process never blocks anyone (the stale PID
in it is just overwritten). The file itself is kept (unlinking a lock file races with the next
opener); a holder that replaces the whole directory (``import --force``, ``curriculens.io.
atomic_dir``) leaves a waiter holding the old file, so a waiter that gets the lock checks that
the path still names its file and else locks the new one. Advisory: only curriculens writers take it; readers (summary, dashboard) never do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from curriculens.errors import CurriculensError

log = logging.getLogger(__name__)


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="utf-8").strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"


def _acquire(path: Path, what: str, wait: bool) -> int:
    """An open descriptor of ``path`` holding its flock (refused at once unless ``wait``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise
        holder = _holder(path)
        if not wait:
            os.close(fd)
            raise CurriculensError(
                f"{what} is being written by {holder} (lock {path}); wait for it to finish or pass --wait to queue"
            ) from None
        log.warning("%s is being written by %s; waiting for it (--wait)", what, holder)
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file ``fd`` locks (a replaced run directory has a new one)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino)


@contextlib.contextmanager
def exclusive_lock(lock_file: Path | str, what: str, *, wait: bool = False) -> Iterator[Path]:
    """Hold the exclusive lock ``lock_file`` for the block (created with its parents if needed).

    ``what`` names what is locked in the refusal, e.g. ``"run directory E/runs/teacher"``.
    Raises CurriculensError (one line, naming the holder's PID and ``--wait``) if another
    process holds it and ``wait`` is False.
    """
    path = Path(lock_file)
    while True:
        fd = _acquire(path, what, wait)
        if _same_file(fd, path):
            break
        os.close(fd)  # the directory was replaced while we waited: lock the file there now
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock
