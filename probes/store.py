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
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
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

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.readonly:
            if not self.path.is_file():
                raise CurriculensError(f"no results database at {self.path}; run `curriculens probe` first")
            uri = f"file:{self.path.resolve()}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=self.timeout_s, check_same_thread=False)
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
        if self._conn is not None:
            self._conn.close()
            self._conn = None

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


def open_store(path: Path | str, readonly: bool = False) -> ResultsStore:
    return ResultsStore(Path(path), readonly=readonly)


def table_exists(path: Path | str) -> bool:
    path = Path(path)
    if not path.is_file():
        return False
    with closing(sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)) as conn:
        try:
            conn.execute("SELECT 1 FROM probe_results LIMIT 1")
            return True
        except sqlite3.DatabaseError:
            return False
