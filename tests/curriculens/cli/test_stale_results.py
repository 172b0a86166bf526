"""Issue 22: probe results are keyed by the checkpoint hash they measured, so a replaced run
is probed again and its old numbers are never shown as current."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from curriculens import constants as C
from curriculens.cli import main
from curriculens.io import read_json, write_json
from models.checkpoint import list_checkpoints
from probes.store import ResultsStore

# the repro, smaller: a teacher that stays at chance with the default lr, and learns with --lr 0.5
TEACHER = ["--n", 10, "--k", 3, "--width", 32, "--steps", 300, "--save-every", 100, "--eval-every", 50]
TEACHER += ["--n-eval", 256, "--device", "cpu"]


def cli(capsys, *argv) -> tuple[int, str]:
    code = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out + err


def model_acc(exp: Path) -> dict[int, float]:
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        df = store.query("probe = 'model' AND metric = 'accuracy'")
    return dict(zip(df.step, df.value, strict=True))


def final_acc(exp: Path) -> dict[int, float]:
    return {s: read_json(p / C.META_FILE)["eval_acc"] for s, p in list_checkpoints(exp / "runs" / "teacher")}


@pytest.fixture(scope="module")
def replaced(tmp_path_factory):
    """The issue's CLI repro: train, probe, retrain with another lr and --force."""
    exp = tmp_path_factory.mktemp("stale") / "s"
    assert main(["-q", "train-teacher", "--out", str(exp), *map(str, TEACHER)]) == 0
    assert main(["-q", "probe", str(exp), "--probes", "model", "--device", "cpu"]) == 0
    before = model_acc(exp)
    assert main(["-q", "train-teacher", "--out", str(exp), *map(str, TEACHER), "--lr", "0.5", "--force"]) == 0
    return exp, before


def test_force_replaced_run_has_no_results_left_to_show(replaced):
    exp, before = replaced
    assert before, "the first sweep wrote model accuracies"
    assert model_acc(exp) == {}, "the replaced run's old numbers are still in the database"


def test_probe_after_force_reprobes_every_checkpoint(replaced, capsys):
    exp, _ = replaced
    code, out = cli(capsys, "probe", exp, "--probes", "model", "--device", "cpu")
    assert code == 0, out
    n = len(list_checkpoints(exp / "runs" / "teacher"))
    assert f"{n} units: {n} done, 0 skipped" in out
    acc = model_acc(exp)
    assert acc == pytest.approx(final_acc(exp), abs=0.05)  # the probe's accuracy is the retrained run's
    assert max(acc.values()) > 0.9


def _probed_copy(replaced, tmp_path, capsys) -> Path:
    exp = tmp_path / "s"
    shutil.copytree(replaced[0], exp)
    assert cli(capsys, "probe", exp, "--probes", "model", "--device", "cpu")[0] == 0
    return exp


def test_a_changed_checkpoint_is_reprobed_and_a_gone_one_removed(replaced, tmp_path, capsys):
    """Checkpoints replaced behind the database's back (no --force: a copy, a manual edit)."""
    exp = _probed_copy(replaced, tmp_path, capsys)
    ckpts = list_checkpoints(exp / "runs" / "teacher")
    (s_changed, changed), (s_gone, gone) = ckpts[1], ckpts[2]
    shutil.rmtree(gone)
    with sqlite3.connect(exp / C.RESULTS_DB) as conn:  # the unit measured other weights
        conn.execute("UPDATE units SET ckpt_sha = ? WHERE step = ?", ("f" * 64, s_changed))
    code, out = cli(capsys, "probe", exp, "--probes", "model", "--device", "cpu")
    assert code == 0, out
    assert "1 done" in out and "2 stale units removed" in out, out
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        steps = set(store.query(columns="step").step)
        shas = dict(store.conn.execute("SELECT step, ckpt_sha FROM units").fetchall())
    assert s_gone not in steps and s_changed in steps
    assert shas[s_changed] == read_json(changed / C.META_FILE)["sha256"]
    assert len(shas) == len(ckpts) - 1


def test_a_schema_1_database_is_migrated_and_trusted_only_for_checkpoints_saved_before(replaced, tmp_path, capsys):
    exp = _probed_copy(replaced, tmp_path, capsys)
    with sqlite3.connect(exp / C.RESULTS_DB) as conn:  # what an old database looks like
        conn.execute("ALTER TABLE units DROP COLUMN ckpt_sha")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    ckpts = list_checkpoints(exp / "runs" / "teacher")
    step, newer = ckpts[0]
    write_json(newer / C.META_FILE, {**read_json(newer / C.META_FILE), "saved_at": time.time() + 60})
    code, out = cli(capsys, "probe", exp, "--probes", "model", "--device", "cpu")
    assert code == 0, out
    assert f"{len(ckpts)} units: 1 done, {len(ckpts) - 1} skipped" in out, out
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        version = store.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        shas = dict(store.conn.execute("SELECT step, ckpt_sha FROM units").fetchall())
    assert version == "2" and shas[step] == read_json(newer / C.META_FILE)["sha256"]


def test_summary_flags_results_of_a_checkpoint_changed_behind_the_database(replaced, tmp_path, capsys):
    exp = _probed_copy(replaced, tmp_path, capsys)
    code, out = cli(capsys, "summary", exp)
    assert code == 0 and "stale" not in out
    step, last = list_checkpoints(exp / "runs" / "teacher")[-1]
    shutil.rmtree(last)
    code, out = cli(capsys, "summary", exp)
    assert code == 0 and "note: 1 probe units measured checkpoints that have changed or are gone" in out, out
