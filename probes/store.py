"""The results database: ``EXP/results.sqlite``, one tidy row per measured value.

Table ``probe_results`` (primary key: run, step, probe, feature, site, metric):

=========== ======= ==============================================================
column      type    meaning
=========== ======= ==============================================================
run         TEXT    run directory name (``teacher``, ``progressive-s0``, ...)
role        TEXT    ``teacher`` | ``student``
method      TEXT    ``teacher`` | ``ce`` | ``one-shot`` | ``progressive`` | ``two-shot``
seed        INTEGER the run's training seed
step        INTEGER checkpoint step (optimizer updates)
probe       TEXT    probe family: ``model``, ``fourier``, ``linear``, ``nt_span``, ...
feature     TEXT    what is measured, e.g. ``0_3`` (monomial x0*x3), ``level2``
site        TEXT    hook name the activations came from, or ``output``
metric      TEXT    e.g. ``corr``, ``test_acc``, ``control_acc``, ``majority``
value       REAL    the number
degree      INTEGER monomial degree / level, when it applies (else NULL)
in_support  INTEGER 1/0 for parity monomials inside/outside the support (else NULL)
extra       TEXT    JSON with anything else (n_train, C, ...), or NULL
=========== ======= ==============================================================

Table ``units`` records each finished (run, step, probe) unit; its rows and its unit row are
written in one transaction, so a killed sweep leaves no half-written unit and a rerun skips
exactly the finished ones. Table ``runs`` holds each run's role, method, seed, path, config.

Journal mode: a writer works in WAL mode (readers see finished units while a sweep runs) and
switches the file back to a rollback journal when it closes (``ResultsStore.close``), so a
finished database is one self-contained file. Readers (``readonly=True``) open it with
``mode=ro``; where that cannot work because the directory is read-only (an archived or
read-only copy of a database left in WAL mode), ``open_readonly`` opens it ``immutable=1``,
or reads a private temporary copy when an unfolded ``-wal`` file holds data.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from curriculens.errors import CurriculensError
from curriculens.io import atomic_write_bytes

SCHEMA_VERSION = 1
COLUMNS = ("run", "role", "method", "seed", "step", "probe", "feature", "site", "metric", "value", "degree", "in_support", "extra")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY, role TEXT NOT NULL, method TEXT NOT NULL, seed INTEGER NOT NULL,
    path TEXT, config TEXT
);
CREATE TABLE IF NOT EXISTS units (
    run TEXT NOT NULL, step INTEGER NOT NULL, probe TEXT NOT NULL,
    ckpt_path TEXT, n_rows INTEGER, wall_s REAL, finished_at REAL,
    PRIMARY KEY (run, step, probe)
);
CREATE TABLE IF NOT EXISTS probe_results (
    run TEXT NOT NULL, role TEXT NOT NULL, method TEXT NOT NULL, seed INTEGER NOT NULL,
    step INTEGER NOT NULL, probe TEXT NOT NULL, feature TEXT NOT NULL, site TEXT NOT NULL,
    metric TEXT NOT NULL, value REAL, degree INTEGER, in_support INTEGER, extra TEXT,
    PRIMARY KEY (run, step, probe, feature, site, metric)
);
CREATE INDEX IF NOT EXISTS idx_results_probe_metric ON probe_results (probe, metric, run, step);
CREATE INDEX IF NOT EXISTS idx_results_run_step ON probe_results (run, step);
"""


@dataclass(frozen=True)
class ResultRow:
    """One measured value of one probe unit; the unit supplies run/role/method/seed/step."""

    probe: str
    feature: str
    site: str
    metric: str
    value: float
    degree: Optional[int] = None
    in_support: Optional[bool] = None
    extra: Optional[dict] = None


@dataclass(frozen=True)
class UnitKey:
    """One work unit of the sweep: one probe on one checkpoint of one run."""

    run: str
    role: str
    method: str
    seed: int
    step: int
    probe: str
    ckpt_path: str = ""


@dataclass
class ResultsStore:
    """SQLite results database. ``readonly=True`` never writes (the dashboard's mode)."""

    path: Path
    readonly: bool = False
    timeout_s: float = 30.0
    _conn: Optional[sqlite3.Connection] = field(default=None, init=False, repr=False)
    _tmp: Optional[Path] = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.readonly:
            if not self.path.is_file():
                raise CurriculensError(f"no results database at {self.path}; run `curriculens probe` first")
            self._conn, self._tmp = open_readonly(self.path, self.timeout_s)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=self.timeout_s)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._conn.commit()
        try:
            self._conn.execute("SELECT 1 FROM probe_results LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise CurriculensError(f"results database {self.path} is unreadable: {exc}") from None

    # --- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        """Close; a writer first folds its WAL into the file and leaves rollback-journal mode
        (best effort: while another connection reads, the file stays in WAL mode)."""
        if self._conn is not None:
            if not self.readonly:
                try:
                    self._conn.execute("PRAGMA busy_timeout = 200")
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._conn.execute("PRAGMA journal_mode=DELETE")
                except sqlite3.Error:
                    pass
            self._conn.close()
            self._conn = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CurriculensError(f"results database {self.path} is closed")
        return self._conn

    # --- writing ------------------------------------------------------------------------
    def upsert_run(self, run: str, role: str, method: str, seed: int, path: str = "", config: Optional[dict] = None) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO runs (run, role, method, seed, path, config) VALUES (?, ?, ?, ?, ?, ?)",
                (run, role, method, int(seed), str(path), json.dumps(config or {}, sort_keys=True)),
            )

    def write_unit(self, unit: UnitKey, rows: Iterable[ResultRow], wall_s: float = 0.0) -> int:
        """Replace the unit's rows and mark it done, in one transaction. Returns rows written."""
        rows = list(rows)
        payload = [
            (
                unit.run, unit.role, unit.method, int(unit.seed), int(unit.step),
                r.probe, r.feature, r.site, r.metric,
                None if r.value is None else float(r.value),
                None if r.degree is None else int(r.degree),
                None if r.in_support is None else int(bool(r.in_support)),
                None if r.extra is None else json.dumps(r.extra, sort_keys=True),
            )
            for r in rows
        ]
        with self.conn:
            self.conn.execute(
                "DELETE FROM probe_results WHERE run = ? AND step = ? AND probe = ?", (unit.run, unit.step, unit.probe)
            )
            self.conn.executemany(
                f"INSERT OR REPLACE INTO probe_results ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                payload,
            )
            self.conn.execute(
                "INSERT OR REPLACE INTO units (run, step, probe, ckpt_path, n_rows, wall_s, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (unit.run, unit.step, unit.probe, unit.ckpt_path, len(payload), wall_s, time.time()),
            )
        return len(payload)

    # --- reading ------------------------------------------------------------------------
    def done_units(self) -> set[tuple[str, int, str]]:
        return {(r, int(s), p) for r, s, p in self.conn.execute("SELECT run, step, probe FROM units")}

    def units(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM units ORDER BY run, step, probe", self.conn)

    def runs(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM runs ORDER BY run", self.conn)

    def query(self, where: str = "", params: tuple = (), columns: str = "*") -> pd.DataFrame:
        """Rows of ``probe_results``; ``where`` is an SQL condition with ``?`` placeholders."""
        sql = f"SELECT {columns} FROM probe_results" + (f" WHERE {where}" if where else "")
        return pd.read_sql_query(sql + " ORDER BY run, step, probe, feature, site, metric", self.conn, params=params)

    def check(self) -> None:
        """Raise ``CurriculensError`` unless SQLite's ``quick_check`` finds the file intact
        (it reads every page: about a second per few hundred MB)."""
        try:
            problems = [r[0] for r in self.conn.execute("PRAGMA quick_check(5)").fetchall()]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            first = " ".join(" ".join(problems).split())[:200]  # quick_check's lines, as one line
            raise CurriculensError(f"results database {self.path} is damaged ({first}); "
                                   "re-run `curriculens probe` into a fresh file")

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM probe_results").fetchone()[0])

    def export(self, out: Path | str) -> Path:
        """Write every row to ``out`` (``.csv`` or ``.parquet``), atomically."""
        out = Path(out)
        df = self.query()
        if out.suffix == ".csv":
            data = df.to_csv(index=False).encode()
        elif out.suffix == ".parquet":
            import io

            buf = io.BytesIO()
            df.to_parquet(buf, index=False)
            data = buf.getvalue()
        else:
            raise CurriculensError(f"export format of {out.name} not known: use .csv or .parquet")
        atomic_write_bytes(out, data)
        return out


def _connect(path: Path, timeout_s: float, query: str = "") -> sqlite3.Connection:
    uri = f"file:{path.resolve()}?mode=ro{query}"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, check_same_thread=False)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the file (and its WAL) now
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def open_readonly(path: Path | str, timeout_s: float = 30.0) -> tuple[sqlite3.Connection, Optional[Path]]:
    """A read-only connection to ``path`` that works on read-only directories too.

    Returns ``(connection, temp_dir)``; ``temp_dir`` (remove it after closing) is set only
    when the database had to be copied.

    ``mode=ro`` first (it sees a running writer's WAL). A database in WAL mode needs its
    ``-shm`` file, which a read-only directory cannot get: then, if no ``-wal`` file holds
    data, ``immutable=1`` (no locks, no companions; nothing can be writing in a read-only
    directory); if one does, a private copy of the file and its WAL in a temporary directory.
    """
    path = Path(path)
    try:
        return _connect(path, timeout_s), None
    except sqlite3.OperationalError as exc:
        if "unable to open" not in str(exc) or not path.is_file():
            raise
    wal = Path(f"{path}-wal")
    if not wal.is_file() or wal.stat().st_size == 0:
        return _connect(path, timeout_s, "&immutable=1"), None
    tmp = Path(tempfile.mkdtemp(prefix="curriculens-db-"))
    try:
        shutil.copyfile(path, tmp / path.name)
        shutil.copyfile(wal, tmp / wal.name)
        return _connect(tmp / path.name, timeout_s), tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
