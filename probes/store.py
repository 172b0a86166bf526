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

Table ``units`` records each finished (run, step, probe) unit with ``ckpt_sha``, the sha256 of
the checkpoint's weights it measured (``meta.json``'s ``sha256``); its rows and its unit row are
written in one transaction, so a killed sweep leaves no half-written unit and a rerun skips
exactly the finished ones. A unit counts as done only for the checkpoint it measured: a rerun
re-probes a checkpoint whose hash changed and removes the units of checkpoints that are gone
(``probes.sweep``); a run replaced with ``--force`` loses its units at once (``forget_run``).
Databases written before ``ckpt_sha`` (schema 1) get the column on their next write, NULL in
old rows (see ``probes.freshness.measured``). Table ``runs`` holds each run's role, method, seed,
path, config.

Table ``metric_specs`` (probe, metric, min_effect, direction, off_support_null) holds the
appearance rule's parameters of every primary metric the sweep's probes declare
(``MetricSpec``), written at sweep time, so a database says itself which of its metrics
``probes.summary`` reports and how.

Table ``warm_starts`` (run, step, probe, site, data) holds the solver state a unit ends with
(the linear probes' solution (w, b) per site, safetensors bytes: ``probes.memo``), written in
the unit's transaction; a resumed sweep starts each run's first pending fit from it, so its
rows equal an uninterrupted sweep's. Databases written before it simply lack it (cold starts).

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import atomic_write_bytes
from curriculens.lock import exclusive_lock

SCHEMA_VERSION = 2  # 2: units.ckpt_sha
COLUMNS = (
    "run",
    "role",
    "method",
    "seed",
    "step",
    "probe",
    "feature",
    "site",
    "metric",
    "value",
    "degree",
    "in_support",
    "extra",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY, role TEXT NOT NULL, method TEXT NOT NULL, seed INTEGER NOT NULL,
    path TEXT, config TEXT
);
CREATE TABLE IF NOT EXISTS units (
    run TEXT NOT NULL, step INTEGER NOT NULL, probe TEXT NOT NULL,
    ckpt_path TEXT, n_rows INTEGER, wall_s REAL, finished_at REAL, ckpt_sha TEXT,
    PRIMARY KEY (run, step, probe)
);
CREATE TABLE IF NOT EXISTS probe_results (
    run TEXT NOT NULL, role TEXT NOT NULL, method TEXT NOT NULL, seed INTEGER NOT NULL,
    step INTEGER NOT NULL, probe TEXT NOT NULL, feature TEXT NOT NULL, site TEXT NOT NULL,
    metric TEXT NOT NULL, value REAL, degree INTEGER, in_support INTEGER, extra TEXT,
    PRIMARY KEY (run, step, probe, feature, site, metric)
);
CREATE TABLE IF NOT EXISTS metric_specs (
    probe TEXT NOT NULL, metric TEXT NOT NULL, min_effect REAL NOT NULL, direction INTEGER NOT NULL,
    off_support_null INTEGER NOT NULL, PRIMARY KEY (probe, metric)
);
CREATE TABLE IF NOT EXISTS warm_starts (
    run TEXT NOT NULL, step INTEGER NOT NULL, probe TEXT NOT NULL, site TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (run, probe, site, step)
);
CREATE INDEX IF NOT EXISTS idx_results_probe_metric ON probe_results (probe, metric, run, step);
CREATE INDEX IF NOT EXISTS idx_results_run_step ON probe_results (run, step);
"""


@dataclass(frozen=True)
class MetricSpec:
    """How ``probes.summary`` decides when a metric's feature *appears* (see its docstring).

    Probes declare one per primary metric (``Probe.primary_metrics``); the sweep stores them in
    the ``metric_specs`` table.

    Args:
        min_effect: the smallest rise (peak - baseline, in the metric's units) that counts.
        direction: +1 if the feature appears as the value rises (accuracy, |corr|), -1 if
            it appears as the value falls (a loss).
        off_support_null: for rows with ``in_support`` set (parity monomials): the rise must
            also reach the 95th percentile of the rises of the off-support series of the same
            (run, probe, site, metric, degree), which serve as the null distribution.
    """

    min_effect: float = 0.05
    direction: int = 1
    off_support_null: bool = False


@dataclass(frozen=True)
class ResultRow:
    """One measured value of one probe unit; the unit supplies run/role/method/seed/step."""

    probe: str
    feature: str
    site: str
    metric: str
    value: float
    degree: int | None = None
    in_support: bool | None = None
    extra: dict | None = None


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
    ckpt_sha: str = ""  # meta.json's sha256 of the checkpoint measured


@dataclass(frozen=True)
class DoneUnit:
    """What the ``units`` table says about one finished unit: the checkpoint hash it measured
    (None in a schema-1 database) and when it finished (``time.time()``)."""

    ckpt_sha: str | None
    finished_at: float | None


@dataclass
class ResultsStore:
    """SQLite results database. ``readonly=True`` never writes (the dashboard's mode)."""

    path: Path
    readonly: bool = False
    timeout_s: float = 30.0
    _conn: sqlite3.Connection | None = field(default=None, init=False, repr=False)
    _tmp: Path | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.readonly:
            if not self.path.is_file():
                raise CurriculensError(f"no results database at {self.path}; run `curriculens probe` first")
            try:
                self._conn, self._tmp = open_readonly(self.path, self.timeout_s)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "not a database" not in str(exc):
                    raise  # locked, unreadable directory: the CLI's environment errors
                raise CurriculensError(_unreadable(self.path, exc)) from None
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=self.timeout_s)
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.executescript(_SCHEMA)
                _migrate(self._conn)
                self._conn.commit()
            except sqlite3.DatabaseError as exc:
                self.close()
                raise CurriculensError(_unreadable(self.path, exc)) from None
        try:
            self._conn.execute("SELECT 1 FROM probe_results LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise CurriculensError(_unreadable(self.path, exc)) from None

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

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CurriculensError(f"results database {self.path} is closed")
        return self._conn

    # --- writing ------------------------------------------------------------------------
    def upsert_run(
        self, run: str, role: str, method: str, seed: int, path: str = "", config: dict | None = None
    ) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO runs (run, role, method, seed, path, config) VALUES (?, ?, ?, ?, ?, ?)",
                (run, role, method, int(seed), str(path), json.dumps(config or {}, sort_keys=True)),
            )

    def write_metric_specs(self, specs: Mapping[tuple[str, str], MetricSpec]) -> None:
        """Record ``{(probe, metric): MetricSpec}`` (replacing a probe's earlier specs), in one
        transaction: the database then says itself which metrics are primary."""
        probes = sorted({probe for probe, _ in specs})
        with self.conn:
            self.conn.executemany("DELETE FROM metric_specs WHERE probe = ?", [(p,) for p in probes])
            self.conn.executemany(
                "INSERT INTO metric_specs (probe, metric, min_effect, direction, off_support_null) VALUES (?, ?, ?, ?, ?)",
                [
                    (probe, metric, float(s.min_effect), int(s.direction), int(bool(s.off_support_null)))
                    for (probe, metric), s in sorted(specs.items())
                ],
            )

    def write_unit(
        self,
        unit: UnitKey,
        rows: Iterable[ResultRow],
        wall_s: float = 0.0,
        warm: Mapping[tuple[str, str], bytes] | None = None,
    ) -> int:
        """Replace the unit's rows and mark it done, in one transaction, with the solver state
        it ended with (``warm``: ``{(probe, site): bytes}``, see ``warm_starts``). Returns rows written."""
        rows = list(rows)
        payload = [
            (
                unit.run,
                unit.role,
                unit.method,
                int(unit.seed),
                int(unit.step),
                r.probe,
                r.feature,
                r.site,
                r.metric,
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
                "INSERT OR REPLACE INTO units (run, step, probe, ckpt_path, n_rows, wall_s, finished_at, ckpt_sha) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    unit.run,
                    unit.step,
                    unit.probe,
                    unit.ckpt_path,
                    len(payload),
                    wall_s,
                    time.time(),
                    unit.ckpt_sha or None,
                ),
            )
            self.conn.execute(
                "DELETE FROM warm_starts WHERE run = ? AND step = ? AND probe = ?", (unit.run, unit.step, unit.probe)
            )
            self.conn.executemany(
                "INSERT OR REPLACE INTO warm_starts (run, step, probe, site, data) VALUES (?, ?, ?, ?, ?)",
                [
                    (unit.run, int(unit.step), probe, site, sqlite3.Binary(data))
                    for (probe, site), data in (warm or {}).items()
                ],
            )
        return len(payload)

    def remove_units(self, units: Iterable[tuple[str, int, str]]) -> int:
        """Delete the rows, unit records and solver states of these (run, step, probe) units,
        in one transaction (stale results: their checkpoint changed or is gone). Returns how many."""
        keys = [(r, int(s), p) for r, s, p in units]
        with self.conn:
            for table in ("probe_results", "units", "warm_starts"):
                self.conn.executemany(f"DELETE FROM {table} WHERE run = ? AND step = ? AND probe = ?", keys)
        return len(keys)

    def remove_run(self, run: str) -> int:
        """Delete everything recorded about ``run`` (it was replaced), in one transaction;
        returns the number of units it had."""
        with self.conn:
            n = self.conn.execute("SELECT COUNT(*) FROM units WHERE run = ?", (run,)).fetchone()[0]
            for table in ("probe_results", "units", "warm_starts", "runs"):
                self.conn.execute(f"DELETE FROM {table} WHERE run = ?", (run,))
        return int(n)

    # --- reading ------------------------------------------------------------------------
    def done_units(self) -> dict[tuple[str, int, str], DoneUnit]:
        """``{(run, step, probe): DoneUnit}`` of the finished units (``ckpt_sha`` None in a
        schema-1 database)."""
        has_sha = "ckpt_sha" in _columns(self.conn, "units")
        sql = f"SELECT run, step, probe, {'ckpt_sha' if has_sha else 'NULL'}, finished_at FROM units"
        return {(r, int(s), p): DoneUnit(sha, at) for r, s, p, sha, at in self.conn.execute(sql)}

    def warm_starts(self, run: str, probe: str) -> list[tuple[str, int, bytes]]:
        """``(site, step, data)`` of the solver states stored for ``run``'s ``probe`` units, by
        step (empty for a database without the ``warm_starts`` table)."""
        try:
            got = self.conn.execute(
                "SELECT site, step, data FROM warm_starts WHERE run = ? AND probe = ? ORDER BY step, site", (run, probe)
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        return [(site, int(step), bytes(data)) for site, step, data in got]

    def units(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM units ORDER BY run, step, probe", self.conn)

    def runs(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM runs ORDER BY run", self.conn)

    def query(self, where: str = "", params: tuple = (), columns: str = "*") -> pd.DataFrame:
        """Rows of ``probe_results``; ``where`` is an SQL condition with ``?`` placeholders."""
        sql = f"SELECT {columns} FROM probe_results" + (f" WHERE {where}" if where else "")
        return pd.read_sql_query(sql + " ORDER BY run, step, probe, feature, site, metric", self.conn, params=params)

    def metric_specs(self) -> dict[tuple[str, str], MetricSpec]:
        """``{(probe, metric): MetricSpec}`` the sweep recorded; empty for a database written
        before specs were stored (no ``metric_specs`` table in a read-only file)."""
        try:
            data = self.conn.execute(
                "SELECT probe, metric, min_effect, direction, off_support_null FROM metric_specs"
            ).fetchall()
        except sqlite3.OperationalError:
            return {}
        return {(p, m): MetricSpec(float(e), int(d), bool(n)) for p, m, e, d, n in data}

    # --- the dashboard's reads (each a few index lookups; see ``dashboard.data``) ---------------
    def unit_totals(self) -> tuple[int, int, float | None]:
        """(finished units, rows they wrote, last ``finished_at``) over the ``units`` table."""
        n_units, n_rows, last = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(n_rows), 0), MAX(finished_at) FROM units"
        ).fetchone()
        return int(n_units), int(n_rows), last

    def catalog_rows(self) -> list[tuple]:
        """``(probe, metric, site, feature, degree, in_support, run)`` of the latest finished unit
        of every (run, probe), through the primary key (a full scan when ``units`` is empty)."""
        reps = self.conn.execute("SELECT run, probe, MAX(step) FROM units GROUP BY run, probe").fetchall()
        if not reps:
            return self.conn.execute(
                "SELECT DISTINCT probe, metric, site, feature, degree, in_support, run FROM probe_results"
            ).fetchall()
        rows: list[tuple] = []
        for run, probe, step in reps:
            rows += [
                (probe, *r, run)
                for r in self.conn.execute(
                    "SELECT metric, site, feature, degree, in_support FROM probe_results WHERE run = ? AND step = ? AND probe = ?",
                    (run, step, probe),
                )
            ]
        return rows

    def family_rows(
        self,
        probe: str,
        metric: str,
        columns: Sequence[str],
        *,
        runs: Sequence[str] | None = None,
        site: str | None = None,
        degree: int | None = None,
    ) -> list[tuple]:
        """``columns`` of the rows of one (probe, metric), optionally of some runs, one site, one
        degree (index ``(probe, metric, run, step)``). ``runs=[]`` gives no rows."""
        where, params = ["probe = ?", "metric = ?"], [probe, metric]
        if runs is not None:
            runs = list(runs)
            if not runs:
                return []
            where.append(f"run IN ({', '.join('?' * len(runs))})")
            params += runs
        if site is not None:
            where.append("site = ?")
            params.append(site)
        if degree is not None:
            where.append("degree = ?")
            params.append(int(degree))
        return self.conn.execute(
            f"SELECT {', '.join(_checked(columns))} FROM probe_results WHERE {' AND '.join(where)}", params
        ).fetchall()

    def unit_fingerprints(self) -> dict[tuple[str, str], tuple]:
        """``{(run, probe): (units, rows, last finished_at)}``: what changes when a sweep commits a
        unit of that run and probe (and nothing else does). Empty without ``units`` rows."""
        data = self.conn.execute(
            "SELECT run, probe, COUNT(*), COALESCE(SUM(n_rows), 0), MAX(finished_at) FROM units GROUP BY run, probe"
        ).fetchall()
        return {(run, probe): (n, rows, last) for run, probe, n, rows, last in data}

    def unit_steps(self, run: str, probe: str) -> dict[int, float]:
        """``{step: finished_at}`` of the finished units of one (run, probe)."""
        data = self.conn.execute("SELECT step, finished_at FROM units WHERE run = ? AND probe = ?", (run, probe))
        return {int(step): at for step, at in data.fetchall()}

    def unit_rows(
        self, run: str, probe: str, columns: Sequence[str], steps: Sequence[int] | None = None
    ) -> list[tuple]:
        """``columns`` of every row of one (run, probe), only of ``steps`` when given."""
        sql = f"SELECT {', '.join(_checked(columns))} FROM probe_results WHERE run = ? AND probe = ?"
        params: list = [run, probe]
        if steps is not None:
            steps = [int(x) for x in steps]
            sql += f" AND step IN ({', '.join('?' * len(steps))})"
            params += steps
        return self.conn.execute(sql, params).fetchall()

    def all_rows(self) -> pd.DataFrame:
        """Every row of ``probe_results``, sorted by its key (the raw download)."""
        return pd.read_sql_query(
            "SELECT * FROM probe_results ORDER BY run, step, probe, feature, site, metric", self.conn
        )

    def families(self) -> list[tuple[str, str, str]]:
        """The distinct (probe, metric, site) of ``probe_results``."""
        return self.conn.execute("SELECT DISTINCT probe, metric, site FROM probe_results").fetchall()

    def site_rows(self, probe: str, metric: str, site: str, with_extra: bool = False) -> list[tuple]:
        """``(run, step, feature, value, degree, in_support)`` of one (probe, metric, site), and
        ``extra`` last when ``with_extra`` (the rows' sampling sd, for the summary's null)."""
        return self.conn.execute(
            f"SELECT run, step, feature, value, degree, in_support{', extra' if with_extra else ''} FROM probe_results "
            "WHERE probe = ? AND metric = ? AND site = ?",
            (probe, metric, site),
        ).fetchall()

    def run_identities(self, runs: Iterable[str] | None = None) -> dict[str, tuple]:
        """``{run: (role, method, seed)}`` of the runs with finished units (or of ``runs``), from
        one of their rows."""
        if runs is None:
            runs = [r for (r,) in self.conn.execute("SELECT DISTINCT run FROM units").fetchall()]
        out = {}
        for run in runs:
            row = self.conn.execute(
                "SELECT role, method, seed FROM probe_results WHERE run = ? LIMIT 1", (run,)
            ).fetchone()
            if row is not None:
                out[run] = row
        return out

    def check(self) -> None:
        """Raise ``CurriculensError`` unless SQLite's ``quick_check`` finds the file intact
        (it reads every page: about a second per few hundred MB)."""
        try:
            problems = [r[0] for r in self.conn.execute("PRAGMA quick_check(5)").fetchall()]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            first = " ".join(" ".join(problems).split())[:200]  # quick_check's lines, as one line
            raise CurriculensError(
                f"results database {self.path} is damaged ({first}); re-run `curriculens probe` into a fresh file"
            )

    def distinct(self, column: str) -> list:
        """The distinct values of one ``probe_results`` column, sorted."""
        if column not in COLUMNS:
            raise ValueError(f"unknown column {column!r}")
        return [v for (v,) in self.conn.execute(f"SELECT DISTINCT {column} FROM probe_results ORDER BY {column}")]

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


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a writer's database to ``SCHEMA_VERSION``: schema 1 lacks ``units.ckpt_sha``
    (added, NULL in the old rows)."""
    if "ckpt_sha" not in _columns(conn, "units"):
        conn.execute("ALTER TABLE units ADD COLUMN ckpt_sha TEXT")
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def _unreadable(path: Path, exc: Exception) -> str:
    return f"results database {path} is unreadable ({exc}); move it aside and re-run `curriculens probe`"


def _checked(columns: Sequence[str]) -> list[str]:
    """``columns`` if each is a ``probe_results`` column (they are spliced into SQL)."""
    bad = [c for c in columns if c not in COLUMNS]
    if bad:
        raise ValueError(f"not probe_results columns: {bad}")
    return list(columns)


def _connect(path: Path, timeout_s: float, query: str = "") -> sqlite3.Connection:
    uri = f"file:{path.resolve()}?mode=ro{query}"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, check_same_thread=False)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the file (and its WAL) now
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def open_readonly(path: Path | str, timeout_s: float = 30.0) -> tuple[sqlite3.Connection, Path | None]:
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


def forget_run(root: Path | str, run: str, *, wait: bool = False) -> int:
    """Delete ``run``'s results from ``root/results.sqlite`` (if there is one) under the
    database's writer lock: call it before a run is replaced (``--force``), so no reader ever
    shows the old run's numbers as the new one's. Returns the units removed."""
    db = Path(root) / C.RESULTS_DB
    if not db.is_file():
        return 0
    with exclusive_lock(Path(root) / C.RESULTS_LOCK_FILE, f"results database {db}", wait=wait):
        with ResultsStore(db) as store:
            return store.remove_run(run)
