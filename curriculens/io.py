"""Atomic file writes and JSON helpers.

Every artifact is written to a temporary file in the same directory and renamed into place,
so a crash never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

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


@contextmanager
def atomic_dir(final: Path | str) -> Iterator[Path]:
    """Build a directory under a temporary name beside ``final`` (yielded); when the block ends
    without error it replaces ``final`` (an existing one is removed first), else it is deleted.
    So a directory named ``final`` is always complete."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
