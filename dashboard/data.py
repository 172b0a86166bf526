"""Read-only loading for the dashboard and the export command.

Everything here reads; nothing writes. Experiments come from ``training.experiment``, the
evaluation curves from each run's ``metrics.jsonl`` (``read_metrics``), the probe rows from
``results.sqlite`` through ``probes.store.ResultsStore(readonly=True)`` (SQLite ``mode=ro``).

``DataSource`` is the one object the app holds: it finds experiments under a root directory
and caches query results keyed on the files' (mtime, size), so a finished sweep is read once
and a running one is re-read when it changes. The cache lives on the instance (one per app),
never in a module global.

Notes:
    Cached DataFrames are shared between callers: treat them as read-only.
    Bad input never raises anything but ``CurriculensError`` (``ResultsUnavailable`` for the
    database), whose message is one plain sentence the page can show as is.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from curriculens import constants as C
from curriculens.config import to_dict
from curriculens.errors import CurriculensError
from curriculens.layout import ckpt_dirname
from probes.store import COLUMNS, ResultsStore
from training.experiment import (
    find_experiments,
    is_experiment,
    is_run,
    read_experiment,
    read_metrics,
    read_run,
    two_shot_label,
    unlistable_dirs,
)

log = logging.getLogger(__name__)

TABLE_COLUMNS = tuple(c for c in COLUMNS if c != "extra")  # what the views read

ROOT_KEY = "."
SWEEP_ACTIVE_S = 120.0  # a unit finished this recently (and a non-empty WAL): a sweep is probably running
ROW_COLUMNS = ("run", "step", "feature", "site", "value", "degree", "in_support")
_MODEL_KEYS = (
    "width",
    "depth",
    "n_layer",
    "n_head",
    "n_embd",
    "num_hidden_layers",
    "num_attention_heads",
    "hidden_size",
)


class ResultsUnavailable(CurriculensError):
    """The results database cannot be read right now; the message says why in plain words."""


class NoResultsYet(ResultsUnavailable):
    """There is no results database, or it holds no ``probe_results`` table yet (not damage)."""


# --- experiments --------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSummary:
    """One run as the dashboard shows it. ``label`` names its curve group (``two-shot T=100``)."""

    name: str
    role: str
    method: str
    seed: int
    two_shot_step: int
    two_shot_T: int
    steps: int
    done: bool
    model: str
    path: Path
    label: str


@dataclass(frozen=True)
class ExperimentSummary:
    """An experiment directory: its task, its runs, and what could not be read."""

    key: str  # path relative to the runs root, posix; "." for the root itself
    path: Path
    task: dict
    runs: tuple[RunSummary, ...]
    problems: tuple[str, ...]
    has_results: bool

    @property
    def name(self) -> str:
        return self.path.name if self.key == ROOT_KEY else self.key

    @property
    def task_name(self) -> str | None:
        """The task's name (``parity``, ``pcfg``, ...); None when experiment.json names none."""
        return self.task.get("name")

    @property
    def task_label(self) -> str:
        return task_label(self.task)

    @property
    def db_path(self) -> Path:
        return self.path / C.RESULTS_DB

    def run(self, name: str) -> RunSummary:
        for r in self.runs:
            if r.name == name:
                return r
        raise CurriculensError(f"experiment {self.name} has no run named {name!r}")

    @property
    def teacher(self) -> RunSummary | None:
        return next((r for r in self.runs if r.role == C.ROLE_TEACHER), None)

    def ckpt_display(self, run: str, step: int | None = None) -> str:
        """The checkpoint path as shown in hovers, relative to the runs root."""
        base = f"{self.key}/" if self.key != ROOT_KEY else ""
        tail = ckpt_dirname(step) if step is not None else ""
        return f"{base}{C.RUNS_DIR}/{run}/{C.CHECKPOINTS_DIR}/{tail}"


def task_label(task: dict) -> str:
    """``parity n=10 k=3``: the task name and its scalar settings, compactly."""
    if not task:
        return "unknown task"
    parts = [str(task.get("name", "task"))]
    for k, v in task.items():
        if k == "name" or isinstance(v, (dict, list, tuple)) and len(v) > 6:
            continue
        parts.append(f"{k}={v}")
    return " ".join(parts)


def _model_label(model: dict) -> str:
    kind = str(model.get("kind", "model"))
    if kind == "hf":  # an imported model: its architecture and the sizes in its HF config
        kind, model = str(model.get("architecture", kind)), dict(model.get("config") or {})
    sizes = [f"{k}={model[k]}" for k in _MODEL_KEYS if k in model]
    return f"{kind} " + " ".join(sizes) if sizes else kind


def run_label(method: str, two_shot_step: int, two_shot_T: int = 0) -> str:
    """A run's curve group: its method; two-shot students by checkpoint and T (``two_shot_label``)."""
    return two_shot_label(two_shot_step, two_shot_T) if method == C.METHOD_TWO_SHOT else method


def load_experiment(path: Path | str, root: Path | str) -> ExperimentSummary:
    """Summarise one experiment directory; unreadable parts become ``problems``, not errors.

    ``path`` is ``root`` or a directory below it as found there (``experiment_key``): a
    symlinked experiment keeps the name of its link.
    """
    path, root = Path(path), Path(root)
    rel = experiment_key(path, root)
    problems: list[str] = []
    try:
        task = dict(read_experiment(path).get("task") or {})
    except CurriculensError as exc:
        task = {}
        problems.append(str(exc))
    runs: list[RunSummary] = []
    runs_dir = path / C.RUNS_DIR
    if runs_dir.is_dir():
        for p in sorted(runs_dir.iterdir()):
            if not p.is_dir():
                continue
            if not is_run(p):
                if (p / C.RUN_CONFIG_FILE).is_file() or (p / C.METRICS_FILE).is_file():
                    problems.append(f"run {p.name} has no checkpoints yet")
                continue
            try:
                info = read_run(p)
            except Exception as exc:  # noqa: BLE001 - a broken run must not hide the others
                problems.append(
                    f"run {p.name} could not be read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                )
                continue
            d = info.config.distill
            two = int(d.two_shot_step) if d is not None and info.method == C.METHOD_TWO_SHOT else -1
            two_T = int(d.two_shot_T) if d is not None and info.method == C.METHOD_TWO_SHOT else 0
            runs.append(
                RunSummary(
                    name=info.name,
                    role=info.role,
                    method=info.method,
                    seed=int(info.seed),
                    two_shot_step=two,
                    two_shot_T=two_T,
                    steps=int(info.config.steps),
                    done=info.done,
                    model=_model_label(to_dict(info.config.model)),
                    path=p,
                    label=run_label(info.method, two, two_T),
                )
            )
    runs.sort(key=lambda r: (r.role != C.ROLE_TEACHER, r.name))
    return ExperimentSummary(
        key=rel,
        path=path,
        task=task,
        runs=tuple(runs),
        problems=tuple(problems),
        has_results=(path / C.RESULTS_DB).is_file(),
    )


def experiment_key(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as spelled (symlinks not resolved), posix; ``.`` for the
    root itself. ``path`` must be ``root`` joined with relative parts (as ``find_experiments``
    returns them)."""
    rel = os.path.relpath(path, root)
    return ROOT_KEY if rel == "." else Path(rel).as_posix()


def _unreadable(path: Path, root: Path, exc: BaseException) -> ExperimentSummary:
    key = experiment_key(path, root)
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    first = first.replace(str(path.resolve()), key).replace(str(path), key)
    return ExperimentSummary(
        key=key,
        path=path,
        task={},
        runs=(),
        problems=(f"experiment {key} could not be read: {first}",),
        has_results=False,
    )


def discover(root: Path | str) -> list[ExperimentSummary]:
    """Every experiment at or below ``root`` (see ``training.experiment.find_experiments``).

    One that cannot be read is listed with its problem; it never hides the others.
    """
    root = Path(root)
    if not root.is_dir():
        raise CurriculensError(f"runs directory {root} does not exist or is not a directory")
    out = []
    for p in find_experiments(root):
        try:
            out.append(load_experiment(p, root))
        except Exception as exc:  # noqa: BLE001 - one broken experiment must not hide the others
            log.warning("experiment %s could not be read", p, exc_info=True)
            out.append(_unreadable(p, root, exc))
    for p in unlistable_dirs(root):  # an experiment in there would be missing without a word
        out.append(_unreadable(p, root, PermissionError(f"cannot list {p}; an experiment inside is not shown")))
    return out


# --- evaluation curves --------------------------------------------------------------------
def load_metrics(exp: ExperimentSummary) -> pd.DataFrame:
    """All runs' ``metrics.jsonl`` rows, one row per (run, evaluated step).

    Columns: run, role, method, label, seed, two_shot_step, two_shot_T, ckpt (display path, "" for an
    eval-only step), and every key of the rows (step, samples, eval_loss, eval_acc, ...).
    """
    frames = []
    for run in exp.runs:
        try:
            rows = read_metrics(run.path)
        except (KeyError, TypeError):  # a row without a step: keep the well-formed ones
            from curriculens.io import read_jsonl

            rows = sorted(
                (r for r in read_jsonl(run.path / C.METRICS_FILE) if isinstance(r.get("step"), (int, float))),
                key=lambda r: r["step"],
            )
        if not rows:
            continue
        df = pd.DataFrame.from_records(rows)
        df["step"] = df["step"].astype("int64")
        is_ckpt = df["checkpoint"].fillna(False).astype(bool) if "checkpoint" in df else pd.Series(True, index=df.index)
        df["ckpt"] = [exp.ckpt_display(run.name, s) if c else "" for s, c in zip(df["step"], is_ckpt, strict=True)]
        df.insert(0, "two_shot_T", run.two_shot_T)
        df.insert(0, "two_shot_step", run.two_shot_step)
        df.insert(0, "seed", run.seed)
        df.insert(0, "label", run.label)
        df.insert(0, "method", run.method)
        df.insert(0, "role", run.role)
        df.insert(0, "run", run.name)
        frames.append(df)
    if not frames:
        return pd.DataFrame(
            columns=["run", "role", "method", "label", "seed", "two_shot_step", "two_shot_T", "step", "ckpt"]
        )
    out = pd.concat(frames, ignore_index=True)
    for col in ("eval_acc", "eval_loss", "train_loss", "lr"):
        if col in out:
            out[col] = pd.to_numeric(out[col], errors="coerce")
    return out


# --- probe results ------------------------------------------------------------------------
@dataclass(frozen=True)
class ResultsStatus:
    """What the results database holds right now."""

    n_rows: int
    n_units: int
    last_finished: float | None
    writing: bool

    def describe(self, now: float | None = None) -> str:
        text = f"{self.n_rows:,} probe values from {self.n_units:,} finished units"
        if self.writing and self.last_finished:
            ago = max(0.0, (now or time.time()) - self.last_finished)
            text += (
                f"; a probe sweep seems to be running (last unit finished {ago:.0f} s ago): "
                "the figures show what is finished, press Reload for more"
            )
        return text


class ResultsReader:
    """Read-only queries on one ``results.sqlite``; a fresh read-only connection per call.

    Every failure is a ``ResultsUnavailable`` with a plain message: no file, not a database,
    corrupt, locked by a writer for longer than ``timeout_s``.
    """

    def __init__(self, db_path: Path | str, timeout_s: float = 2.0) -> None:
        self.path = Path(db_path)
        self.timeout_s = timeout_s

    # --- plumbing -----------------------------------------------------------------------
    def _translate(self, exc: BaseException) -> ResultsUnavailable:
        text = str(exc)
        low = text.lower()
        name = self.path.name
        if "locked" in low or "busy" in low:
            return ResultsUnavailable(
                f"The results database {name} is locked by another process (a probe sweep may be writing); "
                "try again in a moment."
            )
        if "no such table" in low:
            return NoResultsYet(f"The results database {name} holds no probe results yet.")
        return ResultsUnavailable(
            f"The results database {name} cannot be read (it may be corrupt or not a SQLite file): "
            f"{text.splitlines()[0] if text else type(exc).__name__}. Re-run the probe sweep into a fresh file."
        )

    def _run(self, fn: Callable[[ResultsStore], Any]) -> Any:
        if not self.path.is_file():
            raise NoResultsYet(
                f"No probe results yet: {self.path.parent.name}/{self.path.name} does not exist. "
                "Run the probe sweep (curriculens probe EXPERIMENT_DIR) to measure the checkpoints."
            )
        try:
            with ResultsStore(self.path, readonly=True, timeout_s=self.timeout_s) as store:
                return fn(store)
        except ResultsUnavailable:
            raise
        except CurriculensError as exc:
            raise self._translate(exc.__cause__ or exc) from None
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def fingerprint(self) -> tuple:
        """(mtime_ns, size) of the database and its WAL: changes whenever a writer commits."""
        out = []
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    # --- queries ------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ``ResultsUnavailable`` if the file is damaged (``ResultsStore.check``: reads
        every page); ``NoResultsYet`` if it holds no results table."""
        self._run(lambda store: None)
        try:
            with ResultsStore(self.path, readonly=True, timeout_s=self.timeout_s) as store:
                store.check()
        except CurriculensError as exc:
            raise ResultsUnavailable(str(exc)) from None

    def status(self, now: float | None = None) -> ResultsStatus:
        n_units, n_rows, last = self._run(lambda store: store.unit_totals())
        # a writer's open WAL holds data; a sweep that closed cleanly folds it back and removes it
        wal = _stat(Path(str(self.path) + "-wal"))
        recent = last is not None and (now or time.time()) - float(last) < SWEEP_ACTIVE_S
        return ResultsStatus(
            n_rows=n_rows, n_units=n_units, last_finished=last, writing=bool(recent and wal is not None and wal[1] > 0)
        )

    def catalog(self) -> pd.DataFrame:
        """One row per (probe, metric, site): n_features, degrees (sorted tuple), has_in_support,
        runs (sorted tuple of the runs with rows there).

        Read from one finished unit per (run, probe), the latest, through the primary key, so it
        costs a few index lookups however many checkpoints there are. Falls back to a full
        scan when the ``units`` table is empty.
        """

        cols = ["probe", "metric", "site", "n_features", "degrees", "has_in_support", "runs"]
        df = pd.DataFrame(
            self._run(lambda store: store.catalog_rows()),
            columns=["probe", "metric", "site", "feature", "degree", "in_support", "run"],
        )
        if df.empty:
            return pd.DataFrame(columns=cols)
        out = []
        for (probe, metric, site), g in df.groupby(["probe", "metric", "site"], sort=True):
            degs = tuple(sorted(int(d) for d in g["degree"].dropna().unique()))
            out.append(
                (
                    probe,
                    metric,
                    site,
                    int(g["feature"].nunique()),
                    degs,
                    bool(g["in_support"].notna().any()),
                    tuple(sorted(g["run"].unique())),
                )
            )
        return pd.DataFrame(out, columns=cols)

    def rows(
        self,
        probe: str,
        metric: str,
        *,
        runs: Sequence[str] | None = None,
        site: str | None = None,
        degree: int | None = None,
    ) -> pd.DataFrame:
        """Rows of one (probe, metric), optionally restricted; columns ``ROW_COLUMNS``.

        Uses the index ``(probe, metric, run, step)``. ``runs=[]`` returns no rows.
        """
        if runs is not None and not list(runs):
            return pd.DataFrame(columns=list(ROW_COLUMNS))
        data = self._run(
            lambda store: store.family_rows(probe, metric, ROW_COLUMNS, runs=runs, site=site, degree=degree)
        )
        df = pd.DataFrame.from_records(data, columns=list(ROW_COLUMNS))
        if not df.empty:
            df["step"] = df["step"].astype("int64")
            df["value"] = df["value"].astype("float64")
        return df

    def unit_fingerprints(self) -> dict[tuple[str, str], tuple]:
        """``{(run, probe): (units, rows, last finished_at)}`` from the ``units`` table: what
        changes when a sweep commits a unit of that run and probe (and nothing else does).
        Empty when the table is (rows written without ``write_unit``)."""
        return self._run(lambda store: store.unit_fingerprints())

    def unit_steps(self, run: str, probe: str) -> dict[int, float]:
        """``{step: finished_at}`` of the finished units of one (run, probe)."""
        return self._run(lambda store: store.unit_steps(run, probe))

    def unit_rows(
        self, run: str, probe: str, steps: Sequence[int] | None = None, with_extra: bool = False
    ) -> pd.DataFrame:
        """Every row of one (run, probe) (only of ``steps`` when given) with the columns ``table``
        has: without ``extra`` unless ``with_extra`` (the rows' sampling sd, which the emergence
        table's null reads)."""
        cols = list(TABLE_COLUMNS) + (["extra"] if with_extra else [])
        data = self._run(lambda store: store.unit_rows(run, probe, cols, steps))
        df = pd.DataFrame.from_records(data, columns=cols)
        for c in ("value", "degree", "in_support"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        return df

    def metric_specs(self) -> dict:
        """``{(probe, metric): MetricSpec}`` the sweep stored (``ResultsStore.metric_specs``)."""
        return self._run(lambda store: store.metric_specs())

    def all_rows(self) -> pd.DataFrame:
        """Every row of ``probe_results`` (the raw CSV download)."""
        return self._run(lambda store: store.all_rows())

    def table(self, with_extra: bool = False) -> pd.DataFrame:
        """Every row without ``extra`` (with it when ``with_extra``: the rows' sampling sd, which
        the emergence table's null reads), unsorted.

        Read one (probe, metric, site) family at a time with the columns that vary inside it,
        the constant ones filled in after: about half the Python objects of a plain
        ``SELECT *``, which is what reading 400k rows costs.
        """
        cols = list(TABLE_COLUMNS) + (["extra"] if with_extra else [])
        read = ["run", "step", "feature", "value", "degree", "in_support"] + (["extra"] if with_extra else [])

        def q(store):
            runs = store.run_identities()
            parts = []
            for probe, metric, site in store.families():
                d = pd.DataFrame.from_records(store.site_rows(probe, metric, site, with_extra), columns=read)
                d["probe"], d["metric"], d["site"] = probe, metric, site
                parts.append(d)
            return parts, runs

        parts, runs = self._run(q)
        if not parts:
            return pd.DataFrame(columns=cols)
        df = pd.concat(parts, ignore_index=True)
        missing = set(df["run"].unique()) - set(runs)
        if missing:  # rows without a units entry (written outside write_unit): look them up row by row
            runs.update(self._run(lambda store: store.run_identities(missing)))
        info = pd.DataFrame.from_dict(runs, orient="index", columns=["role", "method", "seed"])
        df = df.join(info, on="run")
        for c in ("value", "degree", "in_support"):  # as a whole-table read types them (NaN where missing)
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        return df[cols]


# --- emergence ----------------------------------------------------------------------------
def emergence_table(rows: pd.DataFrame, specs: Mapping) -> pd.DataFrame:
    """The emergence table of ``rows`` by ``probes.summary``'s rule (its docstring states it),
    with the metric specs stored in the database (``ResultsReader.metric_specs``). One row per
    (run, probe, feature, site, metric) of a primary metric: appear_step, peak_step, ..."""
    from probes.summary import summarize_frame  # noqa: PLC0415 - pandas/numpy only, but keep start-up light

    return summarize_frame(rows, specs)


def _stat(path: Path) -> tuple | None:
    try:
        st = path.stat()
        return (st.st_mtime_ns, st.st_size)
    except OSError:
        return None


def _experiment_fp(path: Path) -> tuple:
    """What ``load_experiment`` reads, as (mtime, size) stats: cheap to compare on every call."""
    runs = []
    runs_dir = path / C.RUNS_DIR
    if runs_dir.is_dir():
        for p in sorted(runs_dir.iterdir()):
            runs.append(
                (
                    p.name,
                    _stat(p / C.RUN_CONFIG_FILE),
                    _stat(p / C.DONE_FILE),
                    (p / C.CHECKPOINTS_DIR).is_dir(),
                    (p / C.METRICS_FILE).is_file(),
                )
            )
    return (_stat(path / C.EXPERIMENT_FILE), (path / C.RESULTS_DB).is_file(), tuple(runs))


# --- the app's data source ----------------------------------------------------------------
@dataclass(frozen=True)
class _Piece:
    """The emergence table of one (run, probe), with the rows and unit times it came from."""

    steps: dict
    rows: pd.DataFrame
    summary: pd.DataFrame


class DataSource:
    """What one dashboard instance reads, with an LRU cache of fingerprinted values.

    Args:
        root: the runs directory; experiments are found at or below it (depth <= 3).
        cache_size: how many values to keep (one per query, whatever its fingerprint).
        db_timeout_s: how long a query waits for a locked database before saying so.
        prefetch: compute an experiment's emergence table in a background thread when its
            overview is shown (``prefetch_emergence``), so the tab opens without waiting.

    Notes:
        Each cached value carries the fingerprint of what it was read from; a new
        fingerprint replaces the value (memory stays flat while a sweep writes). Probe rows
        are fingerprinted per (run, probe) from the ``units`` table, so a sweep committing a
        unit of one run invalidates only what reads that run and probe; the emergence table
        is cached per (run, probe) and recombined (``probes.summary``'s rule is per run).
        Concurrent requests for the same uncached value compute it once (the others wait).
    """

    def __init__(
        self, root: Path | str, cache_size: int = 64, db_timeout_s: float = 2.0, prefetch: bool = False
    ) -> None:
        self.root = Path(root)
        self.db_timeout_s = db_timeout_s
        self.prefetch = prefetch
        self._cache: OrderedDict[tuple, tuple[Any, Any]] = OrderedDict()
        self._parts: dict[tuple, tuple[Any, pd.DataFrame]] = {}  # emergence pieces, outside the LRU
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._inflight: dict[tuple, threading.Event] = {}
        self._prefetching: set[str] = set()

    # --- cache --------------------------------------------------------------------------
    def _cached(self, key: tuple, fp: Any, compute: Callable[[], Any], store: dict | None = None) -> Any:
        """The value of ``key`` read at fingerprint ``fp``: cached, or computed once (concurrent
        callers wait) and stored in place of any older fingerprint's value."""
        cache = self._cache if store is None else store
        while True:
            with self._lock:
                hit = cache.get(key)
                if hit is not None and hit[0] == fp:
                    if store is None:
                        self._cache.move_to_end(key)
                    return hit[1]
                event = self._inflight.get((key, fp))
                if event is None:
                    event = self._inflight[(key, fp)] = threading.Event()
                    break
            event.wait()  # another thread computes it; if that failed, the loop computes it here
        try:
            value = compute()
            with self._lock:
                cache[key] = (fp, value)
                if store is None:
                    self._cache.move_to_end(key)
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
            return value
        finally:
            with self._lock:
                self._inflight.pop((key, fp), None)
            event.set()

    # --- experiments --------------------------------------------------------------------
    def experiments(self) -> list[ExperimentSummary]:
        return discover(self.root)

    def experiment(self, key: str) -> ExperimentSummary:
        """The experiment ``key`` (relative to the root, as listed); a key that leaves the root
        (absolute, ``..``) is refused. A symlink placed below the root is followed: whoever
        serves the directory put it there."""
        if not key:
            raise CurriculensError("no experiment selected")
        parts = Path(key).parts
        if key != ROOT_KEY and (
            Path(key).is_absolute() or not parts or any(p in ("..", ".", "") for p in parts) or "\\" in key
        ):
            raise CurriculensError(f"no experiment {key!r} under {self.root}; press Reload")
        path = self.root if key == ROOT_KEY else self.root.joinpath(*parts)
        if not is_experiment(path):
            raise CurriculensError(f"no experiment {key!r} under {self.root}; press Reload")
        try:
            fp = _experiment_fp(path)
        except OSError as exc:
            raise CurriculensError(f"experiment {key} cannot be read: {exc.strerror or exc}") from None
        return self._cached(("experiment", key), fp, lambda: load_experiment(path, self.root))

    def _metrics_fp(self, exp: ExperimentSummary) -> tuple:
        fp = []
        for r in exp.runs:
            try:
                st = (r.path / C.METRICS_FILE).stat()
                fp.append((r.name, st.st_mtime_ns, st.st_size, r.done))
            except OSError:
                fp.append((r.name, None))
        return tuple(fp)

    def metrics(self, key: str) -> pd.DataFrame:
        exp = self.experiment(key)
        return self._cached(("metrics", key), self._metrics_fp(exp), lambda: load_metrics(exp))

    # --- results ------------------------------------------------------------------------
    def reader(self, key: str) -> ResultsReader:
        return ResultsReader(self.experiment(key).db_path, timeout_s=self.db_timeout_s)

    def _units(self, key: str, r: ResultsReader) -> dict[tuple[str, str], tuple]:
        """``r.unit_fingerprints()``, re-read only when the database files change."""
        return self._cached(("units", key), r.fingerprint(), r.unit_fingerprints)

    def _rows_fp(self, key: str, r: ResultsReader, probe: str, runs: Sequence[str] | None) -> tuple:
        units = self._units(key, r)
        if not units:  # no units table rows: only the files' fingerprint says what changed
            return ("file", r.fingerprint())
        if runs is None:
            return tuple(sorted((k, v) for k, v in units.items() if k[1] == probe))
        return tuple((run, units.get((run, probe))) for run in runs)

    def status(self, key: str) -> ResultsStatus:
        r = self.reader(key)
        return r.status()  # cheap (the units table); never cached so "running" stays fresh

    def catalog(self, key: str) -> pd.DataFrame:
        r = self.reader(key)
        units = self._units(key, r)
        fp = tuple(sorted(units.items())) if units else r.fingerprint()
        return self._cached(("catalog", key), fp, r.catalog)

    def rows(
        self,
        key: str,
        probe: str,
        metric: str,
        *,
        runs: Sequence[str] | None = None,
        site: str | None = None,
        degree: int | None = None,
    ) -> pd.DataFrame:
        r = self.reader(key)
        runs_t = None if runs is None else tuple(runs)
        return self._cached(
            ("rows", key, probe, metric, runs_t, site, degree),
            self._rows_fp(key, r, probe, runs_t),
            lambda: r.rows(probe, metric, runs=runs_t, site=site, degree=degree),
        )

    def emergence(self, key: str, probe: str | None = None, runs: Sequence[str] | None = None) -> pd.DataFrame:
        """The emergence table (``emergence_table``) of every row of the experiment, built
        from per-(run, probe) pieces that are recomputed only when their units change.

        ``probe`` / ``runs``: only those pieces (the findings panel needs one probe family;
        the pieces it computes are the full table's, so the tab reuses them)."""
        exp = self.experiment(key)
        r = ResultsReader(exp.db_path, timeout_s=self.db_timeout_s)
        specs = self._cached(("specs", key), r.fingerprint(), r.metric_specs)  # what the sweep stored
        units = self._units(key, r)
        if not units:
            full = self._cached(
                ("emergence", key), ("file", r.fingerprint()), lambda: emergence_table(r.table(with_extra=True), specs)
            )
            if probe is not None:
                full = full[full["probe"] == probe]
            return full if runs is None else full[full["run"].isin(list(runs))]
        whole = probe is None and runs is None
        want = {
            k: fp for k, fp in units.items() if (probe is None or k[1] == probe) and (runs is None or k[0] in set(runs))
        }

        def combine() -> pd.DataFrame:
            from probes.summary import SUMMARY_COLUMNS, sort_summary  # noqa: PLC0415

            parts = []
            for (run, prb), fp in sorted(want.items()):
                pkey = ("emergence-part", key, run, prb)
                with self._lock:
                    old = self._parts.get(pkey)
                part = self._cached(pkey, fp, partial(self._piece, r, run, prb, specs, old), store=self._parts)
                parts.append(part.summary)
            if whole:
                with self._lock:  # pieces of (run, probe) pairs that are gone
                    for k in [k for k in self._parts if k[1] == key and (k[2], k[3]) not in units]:
                        del self._parts[k]
            if not parts:
                return pd.DataFrame(columns=SUMMARY_COLUMNS)
            return sort_summary(pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True))

        if not whole:
            return combine()
        return self._cached(("emergence", key), tuple(sorted(units.items())), combine)

    @staticmethod
    def _piece(r: ResultsReader, run: str, probe: str, specs: Mapping, old: tuple | None) -> _Piece:
        """The emergence rows of one (run, probe). With the previous piece ``old`` (its
        fingerprint and value), only the units that were added or rewritten since are read."""
        steps = r.unit_steps(run, probe)
        rows = None
        if old is not None:
            prev: _Piece = old[1]
            changed = [s for s, at in steps.items() if prev.steps.get(s) != at]
            gone = set(prev.steps) - set(steps)
            if len(changed) <= 256:
                keep = prev.rows[~prev.rows["step"].isin(set(changed) | gone)]
                new = r.unit_rows(run, probe, changed, with_extra=True) if changed else keep.iloc[:0]
                rows = pd.concat([keep, new], ignore_index=True) if len(new) else keep
        if rows is None:
            rows = r.unit_rows(run, probe, with_extra=True)  # extra: the rows' sampling sd (the null)
        return _Piece(steps=steps, rows=rows, summary=emergence_table(rows, specs))

    def prefetch_emergence(self, key: str) -> threading.Thread | None:
        """Start computing ``emergence(key)`` in a daemon thread (if ``prefetch`` is on, the
        experiment has results and no prefetch of it runs); errors are left for the tab."""
        if not self.prefetch:
            return None
        exp = self.experiment(key)
        if not exp.has_results:
            return None
        with self._lock:
            if key in self._prefetching:
                return None
            self._prefetching.add(key)

        def work() -> None:
            try:
                self.emergence(key)
            except Exception:  # noqa: BLE001 - the emergence tab reports it when opened
                log.debug("emergence prefetch for %s failed", key, exc_info=True)
            finally:
                with self._lock:
                    self._prefetching.discard(key)

        thread = threading.Thread(target=work, name=f"emergence-{key}", daemon=True)
        thread.start()
        return thread

    def all_rows(self, key: str) -> pd.DataFrame:
        return self.reader(key).all_rows()


# --- findings -----------------------------------------------------------------------------
def appeared(summary: pd.DataFrame) -> pd.Series:
    """Which rows of an emergence table count as appeared: ``appear_step`` set (the move beat the
    series' noise threshold) and, when the table has it, ``passes_null`` True (the appearance
    passes its null with multiple-comparison control, ``probes.summary``)."""
    ok = summary["appear_step"].notna() if "appear_step" in summary else pd.Series(False, index=summary.index)
    if "passes_null" in summary:
        ok &= summary["passes_null"].fillna(False).astype(bool)
    return ok


COMPARISON_COLUMNS = (
    "method",
    "runs",
    "appeared",
    "median_appear_step",
    "final_acc",
    "final_acc_sd",
    "vs",
    "n_pairs",
    "diff_steps",
    "lo",
    "hi",
    "verdict",
)


def method_comparison(
    summary: pd.DataFrame, metrics: pd.DataFrame, reference: str = C.METHOD_CE, target: float = C.TARGET_ACC
) -> pd.DataFrame:
    """The findings panel's method comparison: one row per method (teacher first, then
    ``C.METHODS`` order, then any other), columns ``COMPARISON_COLUMNS``.

    Args:
        summary: an emergence table (``probes.summary.SUMMARY_COLUMNS``, optionally
            ``passes_null``), already restricted to what is compared (one probe and metric).
        metrics: the experiment's evaluation rows (``load_metrics``: run, method, seed, step, eval_acc).
        reference: the method B every other student method is compared with.
        target: the held-out accuracy of "steps to target".

    Returns:
        ``runs``: the method's runs (seeds); ``appeared``: ``"k/n"``, in-support series that
        appeared (``appeared``) over in-support series, pooled over runs; ``median_appear_step``:
        the median appear step of those (NaN when none); ``final_acc`` / ``final_acc_sd``: the
        mean and sd over runs of each run's last ``eval_acc`` (sd NaN for one run).
        ``vs`` .. ``verdict``: the steps-to-target comparison of the method (A) with
        ``reference`` (B) by ``curriculens.compare.compare_records``, the body of ``curriculens
        compare EXP A B``: ``n_pairs`` pairs sharing teacher and seed, the mean paired difference
        A - B in steps (``diff_steps``) with its Student-t 95% interval (``lo``, ``hi``; NaN for
        one pair) and the verdict ("A earlier", "B earlier", "not established"). ``vs`` is ""
        and the rest missing for the teacher, the reference itself and a method with no pair.
    """
    from curriculens.compare import compare_records, records_from_metrics  # noqa: PLC0415 - torch-free

    methods: list[str] = []
    for frame in (metrics, summary):
        if "method" in frame:
            methods += [m for m in frame["method"].dropna().unique() if m not in methods]
    order = [C.METHOD_TEACHER, *C.METHODS]
    methods.sort(key=lambda m: (order.index(m) if m in order else len(order), m))
    ins = summary[summary["in_support"].fillna(0).astype(bool)] if "in_support" in summary else summary.iloc[:0]
    hit = appeared(ins)
    records = records_from_metrics(metrics, target)
    none = {"vs": "", "n_pairs": 0, "diff_steps": float("nan"), "lo": float("nan"), "hi": float("nan"), "verdict": ""}

    def _versus(m: str) -> dict:
        if m in (C.METHOD_TEACHER, reference):
            return none
        try:
            res = compare_records(records, m, reference, target)
        except CurriculensError:  # no run of one of them, or no pair sharing teacher and seed
            return none
        iv = res["steps"]["interval"]
        num = [float("nan") if iv[k] is None else float(iv[k]) for k in ("estimate", "lo", "hi")]
        return {
            "vs": reference,
            "n_pairs": int(iv["n"]),
            "diff_steps": num[0],
            "lo": num[1],
            "hi": num[2],
            "verdict": res["steps"]["verdict"],
        }

    out = []
    for m in methods:
        mine = ins["method"] == m
        steps = ins.loc[mine & hit, "appear_step"].astype("float64")
        last = pd.Series(dtype="float64")
        runs = 0
        if "method" in metrics and "eval_acc" in metrics:
            mm = metrics[(metrics["method"] == m) & metrics["eval_acc"].notna()]
            last = mm.sort_values("step").groupby("run")["eval_acc"].last()
            runs = int(mm["run"].nunique())
        runs = max(runs, int(ins.loc[mine, "run"].nunique()) if mine.any() else 0)
        out.append(
            {
                "method": m,
                "runs": runs,
                "appeared": f"{int((mine & hit).sum())}/{int(mine.sum())}",
                "median_appear_step": float(steps.median()) if len(steps) else float("nan"),
                "final_acc": float(last.mean()) if len(last) else float("nan"),
                "final_acc_sd": float(last.std()) if len(last) > 1 else float("nan"),
                **_versus(m),
            }
        )
    return pd.DataFrame(out, columns=list(COMPARISON_COLUMNS))
