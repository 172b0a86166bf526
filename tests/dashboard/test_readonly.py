"""Reading results safely: read-only copies, archived experiments, damaged databases."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from curriculens import constants as C
from curriculens.cli import main
from dashboard.data import DataSource

from .test_bad_input import all_views


def _wal_copy(dash_fixture, dst):
    """A copy of the fixture experiment whose database was left in WAL mode (a sweep's)."""
    shutil.copytree(dash_fixture.exp, dst, symlinks=True)
    conn = sqlite3.connect(dst / C.RESULTS_DB)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    assert (dst / C.RESULTS_DB).read_bytes()[18] == 2  # WAL mode in the file header
    return dst


def _damage(db):
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 12 * page
    data[4 * page : 10 * page] = b"\x13" * (6 * page)
    db.write_bytes(bytes(data))


def test_summary_export_and_dashboard_read_a_readonly_experiment(dash_fixture, tmp_path, readonly_view, capsys):
    src = _wal_copy(dash_fixture, tmp_path / "runs" / dash_fixture.key)
    ro_root = readonly_view(tmp_path / "runs")
    exp = ro_root / dash_fixture.key
    assert main(["summary", str(exp)]) == 0
    out = capsys.readouterr().out
    assert "fourier" in out and "teacher" in out
    assert main(["export", str(exp), "--format", "html", "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "emergence.csv").stat().st_size > 100
    views = all_views(DataSource(ro_root), dash_fixture.key)
    assert "Probe results: 2,520 probe values" in str(views["overview"][0])
    assert len(views["emergence"][0]) > 10
    assert sorted(p.name for p in src.iterdir() if p.name.startswith(C.RESULTS_DB)) == [C.RESULTS_DB]


@pytest.mark.parametrize("command", ["summary", "export"])
def test_a_damaged_database_is_an_error_and_nothing_is_written(dash_fixture, tmp_path, capsys, command):
    exp = tmp_path / "exp"
    shutil.copytree(dash_fixture.exp, exp, symlinks=True)
    _damage(exp / C.RESULTS_DB)
    out_dir = tmp_path / "fig"
    argv = (
        ["summary", str(exp)]
        if command == "summary"
        else ["export", str(exp), "--format", "html", "--out", str(out_dir)]
    )
    assert main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "damaged" in err[0], err
    assert not out_dir.exists()
