"""Atomic file writes and JSON helpers.

Every artifact is written to a temporary file in the same directory and renamed into place,
so a crash never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from curriculens.config import json_default
from curriculens.errors import CurriculensError


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=json_default)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artifacts are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path | str, obj: Any) -> None:
    atomic_write_text(path, dumps(obj) + "\n")


def read_json(path: Path | str) -> Any:
    """Read a JSON file; a missing or malformed file is a CurriculensError."""
    path = Path(path)
    if not path.is_file():
        raise CurriculensError(f"missing file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CurriculensError(f"malformed JSON in {path}: {exc}") from None


def append_jsonl(path: Path | str, row: dict) -> None:
    """Append one JSON line and fsync (a line is either whole or, if torn, skipped on read)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, sort_keys=True, default=json_default) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_jsonl(path: Path | str, rows: list[dict]) -> None:
    """Replace ``path`` with these rows, one JSON object a line, atomically."""
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True, default=json_default) + "\n" for r in rows))


def read_jsonl(path: Path | str) -> list[dict]:
    """Read a JSON-lines file; a torn last line (crash mid-write) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


# what a killed writer may leave beside a file or directory ``X``: ``.X.<random>.tmp`` (a file
# of ``atomic_write_bytes``), ``.X.tmp-PID`` (``atomic_dir``'s new directory) and ``.X.old-PID``
# (``atomic_dir``'s old directory, moved aside while the new one is renamed in)
TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?:[^.]+\.tmp|tmp-\d+|old-\d+)$")


def is_temp_name(name: str) -> bool:
    """True for the name of a temporary file or directory of this module (``TEMP_RE``)."""
    return bool(TEMP_RE.match(name))


@contextmanager
def atomic_dir(final: Path | str) -> Iterator[Path]:
    """Build a directory under a temporary name beside ``final`` (yielded); when the block ends
    without error it replaces ``final``, else it is deleted. An existing ``final`` is renamed
    aside first and removed only after the new one is in place, so a crash at any point leaves
    the old or the new directory (or, between the two renames, the old one aside, which
    ``restore_dir`` renames back). Hold the lock of whatever ``final`` belongs to."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    aside = final.parent / f".{final.name}.old-{os.getpid()}"
    for stale in (tmp, aside):
        if stale.exists():
            shutil.rmtree(stale)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            os.replace(final, aside)
        try:
            os.replace(tmp, final)
        except BaseException:
            if aside.exists() and not final.exists():
                os.replace(aside, final)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def restore_dir(final: Path | str) -> list[Path]:
    """Undo what a killed ``atomic_dir`` left for ``final``: if ``final`` is missing while its old
    copy is aside, rename that back; then delete the leftover new and old copies. Returns the
    paths deleted. Call it only while holding the lock of ``final`` (no writer is at work)."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    mine = sorted(p for p in final.parent.iterdir() if (m := TEMP_RE.match(p.name)) and m["name"] == final.name)
    asides = [p for p in mine if ".old-" in p.name and p.is_dir()]
    if asides and not final.exists():
        os.replace(asides[-1], final)
        mine.remove(asides[-1])
    for p in mine:
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
    return mine


def sweep_temps(directory: Path | str) -> list[Path]:
    """``restore_dir`` for everything in ``directory`` that a killed writer left there (temporary
    files and directories of this module); returns what was deleted. Hold the directory's lock."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    names = {m["name"] for p in directory.iterdir() if (m := TEMP_RE.match(p.name))}
    return [p for name in sorted(names) for p in restore_dir(directory / name)]
