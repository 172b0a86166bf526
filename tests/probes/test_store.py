"""``probes.store``: a finished database is one self-contained file, readable read-only."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from curriculens.errors import CurriculensError
from probes.store import ResultRow, ResultsStore, UnitKey


def _write(db, n_steps=3):
    with ResultsStore(db) as store:
        for s in range(n_steps):
            store.write_unit(
                UnitKey("teacher", "teacher", "teacher", 0, s * 10, "fourier"),
                [ResultRow("fourier", "0", "output", "corr", 0.1 * s, degree=1, in_support=True)],
            )


def _journal_byte(db) -> int:
    return db.read_bytes()[18]  # 1 = rollback journal, 2 = WAL (SQLite file format, header offset 18)


def test_a_closed_writer_leaves_one_rollback_journal_file(tmp_path):
    db = tmp_path / "results.sqlite"
    _write(db)
    assert _journal_byte(db) == 1
    with ResultsStore(db, readonly=True) as store:
        assert store.count() == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite"]  # the reader wrote no companions


def test_a_wal_database_in_a_readonly_directory_is_readable(tmp_path, readonly_view):
    src = tmp_path / "exp"
    src.mkdir()
    db = src / "results.sqlite"
    _write(db)
    conn = sqlite3.connect(db)  # left in WAL mode, as a sweep killed before it closed would leave it
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    assert _journal_byte(db) == 2 and not (src / "results.sqlite-wal").exists()
    ro = readonly_view(src)
    with ResultsStore(ro / "results.sqlite", readonly=True) as store:
        assert store.count() == 3 and store.query()["value"].tolist() == pytest.approx([0.0, 0.1, 0.2])


def test_an_unfolded_wal_in_a_readonly_directory_is_read_too(tmp_path, readonly_view):
    db = tmp_path / "live" / "results.sqlite"
    _write(db, n_steps=1)
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE probe_results SET value = 7.0")
    writer.commit()
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ("results.sqlite", "results.sqlite-wal"):  # a copy taken while the writer still ran
        shutil.copyfile(db.parent / name, archive / name)
    writer.close()
    assert (archive / "results.sqlite-wal").stat().st_size > 0
    ro = readonly_view(archive)
    with ResultsStore(ro / "results.sqlite", readonly=True) as store:
        assert store.query()["value"].tolist() == [7.0]  # the committed update lives only in the WAL
        tmp = store._tmp
        assert tmp is not None and tmp.exists()
    assert not tmp.exists()
    from probes.store import open_readonly

    conn, tmp = open_readonly(ro / "results.sqlite")
    conn.close()
    shutil.rmtree(tmp)


def test_check_reports_a_damaged_file(tmp_path):
    db = tmp_path / "results.sqlite"
    _write(db, n_steps=200)
    data = bytearray(db.read_bytes())
    page = 4096
    data[3 * page : 5 * page] = b"\x13" * (2 * page)
    db.write_bytes(bytes(data))
    with pytest.raises(CurriculensError, match="is damaged"):
        with ResultsStore(db, readonly=True) as store:
            store.check()
