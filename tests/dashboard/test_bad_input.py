"""Bad input: the page says what is wrong in plain words, keeps working, never writes results."""

from __future__ import annotations

import hashlib
import sqlite3
import time

import pytest

from curriculens import constants as C
from curriculens.errors import CurriculensError
from dashboard import callbacks as cb
from dashboard import layout as L
from dashboard.app import make_app
from dashboard.data import DataSource, ResultsReader, ResultsUnavailable
from probes.store import ResultRow, ResultsStore, UnitKey


def all_views(src: DataSource, key: str) -> dict:
    """Every view through the same guard the app uses; returns the notes and figure messages."""
    g = lambda fn, n: cb.guarded(fn, lambda msg: (msg,) * n)  # noqa: E731
    ov = g(cb.experiment_overview, 6)(src, key)
    family = ov[2] or "fourier::corr"
    return {
        "overview": ov,
        "teacher": g(cb.teacher_view, 2)(src, key, "linear", L.TAB_TEACHER),
        "features": g(cb.features_view, 4)(src, key, "teacher", family, "output", "1", "log", [], L.TAB_FEATURES),
        "students": g(cb.students_view, 4)(src, key, family, "output", "1", "linear", [], L.TAB_STUDENTS),
        "emergence": g(cb.emergence_view, 3)(src, key, L.TAB_EMERGENCE),
        "rows": g(cb.download_rows, 2)(src, 1, key),
    }


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_empty_and_missing_runs_dir(tmp_path):
    options, value, note = cb.list_experiments(DataSource(tmp_path), 0, None)
    assert options == [] and value is None and note.startswith(f"No experiments found under {tmp_path}")
    missing = DataSource(tmp_path / "nope")
    guarded = cb.guarded(cb.list_experiments, lambda msg: ([], None, msg))
    assert guarded(missing, 0, None)[2] == f"runs directory {tmp_path / 'nope'} does not exist or is not a directory"
    fig, text = cb.teacher_view(DataSource(tmp_path), None, "linear", L.TAB_TEACHER)
    assert fig.layout.meta["empty"]


def test_experiment_without_results(fresh_copy, dash_fixture):
    root = fresh_copy()
    exp = root / dash_fixture.key
    for p in exp.glob(C.RESULTS_DB + "*"):
        p.unlink()
    src = DataSource(root)
    assert "no probe results" in cb.list_experiments(src, 0, None)[0][0]["label"]
    v = all_views(src, dash_fixture.key)
    summary = str(v["overview"][0])
    assert "No probe results yet" in summary and v["overview"][2] is None  # no probe family to pick
    assert "Transition window" in v["teacher"][1]  # the curves come from metrics.jsonl
    assert v["features"][3].startswith("No probe results yet")  # said in the features tab too
    assert "No probe results yet" in v["students"][1].layout.annotations[0].text
    assert "ce" in [t.name for t in v["students"][0].data]  # the accuracy panels still draw
    with pytest.raises(ResultsUnavailable, match="No probe results yet"):  # no family picked: still says why
        cb.features_view(src, dash_fixture.key, "teacher", None, None, None, "linear", [], L.TAB_FEATURES)
    assert "No probe results yet" in v["emergence"][2] and "curriculens probe" in v["emergence"][2]
    assert not list(exp.glob(C.RESULTS_DB + "*"))  # reading created nothing


def test_corrupt_database(fresh_copy, dash_fixture):
    root = fresh_copy()
    db = root / dash_fixture.key / C.RESULTS_DB
    for p in db.parent.glob(C.RESULTS_DB + "-*"):
        p.unlink()
    db.write_bytes(b"this is not a database" * 100)
    v = all_views(DataSource(root), dash_fixture.key)
    assert "cannot be read (it may be corrupt or not a SQLite file)" in str(v["overview"][0])
    assert "cannot be read" in v["emergence"][2] and "cannot be read" in v["rows"][1]
    assert "Transition window" in v["teacher"][1]
    assert db.read_bytes() == b"this is not a database" * 100


def test_truncated_database(fresh_copy, dash_fixture):
    root = fresh_copy()
    db = root / dash_fixture.key / C.RESULTS_DB
    with sqlite3.connect(db) as conn:  # fold the WAL in, then cut the file in half
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    for p in db.parent.glob(C.RESULTS_DB + "-*"):
        p.unlink()
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    v = all_views(DataSource(root), dash_fixture.key)
    messages = " ".join(str(x) for x in (v["overview"][0], v["emergence"][2], v["rows"][1]))
    assert "cannot be read" in messages or "malformed" in messages
    assert "Traceback" not in messages


def test_locked_database_says_so_quickly(fresh_copy, dash_fixture):
    root = fresh_copy()
    db = root / dash_fixture.key / C.RESULTS_DB
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")  # rollback journal: a writer's lock blocks readers
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        src = DataSource(root, db_timeout_s=0.2)
        t0 = time.perf_counter()
        v = all_views(src, dash_fixture.key)
        assert time.perf_counter() - t0 < 30  # each query gives up after 0.2 s, not the default 30 s
        assert "is locked by another process" in str(v["overview"][0])
        assert "is locked" in v["emergence"][2]
    finally:
        holder.rollback()
        holder.close()
    assert cb.emergence_view(DataSource(root), dash_fixture.key, L.TAB_EMERGENCE)[0]  # works once released


def test_running_sweep_is_seen_and_cache_refreshes(fresh_copy, dash_fixture):
    root = fresh_copy()
    db = root / dash_fixture.key / C.RESULTS_DB
    src = DataSource(root)
    before = src.rows(dash_fixture.key, "fourier", "corr", runs=["teacher"], site="output", degree=1)
    writer = ResultsStore(db)  # a sweep: WAL mode, one open writer
    try:
        writer.write_unit(
            UnitKey("teacher", "teacher", "teacher", 0, 999_999, "fourier"),
            [ResultRow("fourier", "0", "output", "corr", 0.5, degree=1, in_support=True)],
        )
        writer.conn.execute("BEGIN IMMEDIATE")  # and a unit in progress, not committed
        writer.conn.execute("DELETE FROM probe_results WHERE run = 'teacher'")
        after = src.rows(dash_fixture.key, "fourier", "corr", runs=["teacher"], site="output", degree=1)
        assert len(after) == len(before) + 1 and after["step"].max() == 999_999  # committed unit seen, the rest intact
        status = src.status(dash_fixture.key)
        assert status.writing and "a probe sweep seems to be running" in status.describe()
        assert "seems to be running" in str(cb.experiment_overview(src, dash_fixture.key)[0])
    finally:
        writer.conn.rollback()
        writer.close()
    assert not src.status(dash_fixture.key).writing  # the sweep closed cleanly: no longer "running"


def test_bad_experiment_files_are_reported_not_fatal(fresh_copy, dash_fixture):
    root = fresh_copy()
    exp = root / dash_fixture.key
    (exp / C.RUNS_DIR / "ce-s1" / C.RUN_CONFIG_FILE).write_text("{not json")
    (exp / C.RUNS_DIR / "half-made").mkdir()
    (exp / C.RUNS_DIR / "half-made" / C.RUN_CONFIG_FILE).write_text("{}")
    with open(exp / C.RUNS_DIR / "ce-s0" / C.METRICS_FILE, "a") as fh:
        fh.write('{"step": 9999, "eval_acc": 0.5')  # a torn last line
    broken = root / "broken-exp"
    broken.mkdir()
    (broken / C.EXPERIMENT_FILE).write_text("[1, 2")
    src = DataSource(root)
    options, value, _ = cb.list_experiments(src, 0, None)
    assert {o["value"] for o in options} == {"broken-exp", dash_fixture.key}
    note = cb.experiment_overview(src, dash_fixture.key)[5]
    assert "run ce-s1 could not be read" in note and "run half-made has no checkpoints yet" in note
    assert 9999 not in set(src.metrics(dash_fixture.key)["step"])
    ov = cb.experiment_overview(src, "broken-exp")
    assert "malformed JSON" in ov[5]
    assert "unknown task" in str(ov[0])


def test_keys_outside_the_root_are_refused(dash_fixture, tmp_path):
    src = DataSource(dash_fixture.root)
    for key in ("..", "../..", "/etc", f"{dash_fixture.key}/runs"):
        with pytest.raises(CurriculensError, match="no experiment"):
            src.experiment(key)


def test_reader_messages_for_missing_and_empty_databases(tmp_path):
    r = ResultsReader(tmp_path / C.RESULTS_DB)
    with pytest.raises(ResultsUnavailable, match="No probe results yet"):
        r.status()
    sqlite3.connect(tmp_path / C.RESULTS_DB).close()  # an empty SQLite file: no table
    with pytest.raises(ResultsUnavailable, match="holds no probe results yet"):
        r.catalog()


def test_the_app_never_writes_results(dash_fixture, fresh_copy):
    root = fresh_copy()
    exp = root / dash_fixture.key
    db = exp / C.RESULTS_DB
    with sqlite3.connect(db) as conn:  # a finished sweep: everything folded into the main file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before_db, before_mtime = digest(db), db.stat().st_mtime_ns
    before_files = {
        p: (p.stat().st_size, p.stat().st_mtime_ns)
        for p in exp.rglob("*")
        if p.is_file() and not p.name.startswith(C.RESULTS_DB + "-")
    }
    src = DataSource(root)
    all_views(src, dash_fixture.key)
    cb.download_emergence(src, 1, dash_fixture.key)
    app = make_app(root)
    app.server.test_client().get("/")
    assert digest(db) == before_db and db.stat().st_mtime_ns == before_mtime
    after_files = {
        p: (p.stat().st_size, p.stat().st_mtime_ns)
        for p in exp.rglob("*")
        if p.is_file() and not p.name.startswith(C.RESULTS_DB + "-")
    }
    assert after_files == before_files
    # SQLite's WAL companions may exist (readers of a WAL database need them) but stay empty
    assert all(p.stat().st_size == 0 for p in exp.glob(C.RESULTS_DB + "-wal"))


def test_a_symlinked_experiment_is_listed_and_hides_nothing(dash_fixture, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    (root / "group").mkdir(parents=True)
    (root / "linked").symlink_to(dash_fixture.exp, target_is_directory=True)  # an experiment kept elsewhere
    (root / "group" / "also-linked").symlink_to(dash_fixture.exp, target_is_directory=True)
    bad = root / "unreadable"
    bad.mkdir()
    (bad / C.EXPERIMENT_FILE).write_text('{"task": {"name": "parity"}}')
    src = DataSource(root)
    options, value, note = cb.list_experiments(src, 0, None)
    assert [o["value"] for o in options] == ["group/also-linked", "linked", "unreadable"] and note == ""
    assert str(tmp_path) not in str(options)
    ov = all_views(src, "linked")
    assert "Probe results: 2,520 probe values" in str(ov["overview"][0]) and ov["emergence"][0]
    for key in ("linked/..", "../runs/linked", str(root / "linked")):
        with pytest.raises(CurriculensError, match="no experiment"):
            src.experiment(key)

    import dashboard.data as D

    real = D.load_experiment

    def flaky(path, root_):  # an experiment whose reading fails in a way nobody foresaw
        if path.name == "unreadable":
            raise OSError(5, "Input/output error", str(path.resolve()))
        return real(path, root_)

    monkeypatch.setattr(D, "load_experiment", flaky)
    options, _, note = cb.list_experiments(DataSource(root), 0, None)
    assert [o["value"] for o in options] == ["group/also-linked", "linked", "unreadable"] and note == ""
    broken = next(e for e in DataSource(root).experiments() if e.key == "unreadable")
    assert broken.problems and "Input/output error" in broken.problems[0] and str(tmp_path) not in broken.problems[0]
