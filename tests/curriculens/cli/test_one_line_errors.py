"""Issue 22: errors of the user's files and machine are one line and exit 2 (never an
"internal error"), and nothing is written before they are found."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import torch

from curriculens import constants as C
from curriculens.io import read_json, sha256_file, write_json
from models.checkpoint import list_checkpoints

STUDENT = ["--method", "ce", "--width", 4, "--steps", 10, "--save-every", 10, "--device", "cpu"]


def one_error(out: str, *words: str) -> bool:
    errors = [ln for ln in out.splitlines() if "error" in ln.lower() or "Traceback" in ln]
    return (
        len(errors) == 1
        and errors[0].startswith("curriculens: error: ")
        and "internal error" not in errors[0]
        and all(w in errors[0] for w in words)
    )


@pytest.fixture
def probed(teacher_copy, cli) -> Path:
    assert cli("probe", teacher_copy, "--probes", "model", "--device", "cpu")[0] == 0
    return teacher_copy


def test_a_results_file_that_is_not_a_database_is_one_line(probed, cli):
    (probed / C.RESULTS_DB).write_bytes(b"garbage, not SQLite")
    for argv in (["probe", probed, "--probes", "model", "--device", "cpu"], ["summary", probed]):
        code, out = cli(*argv)
        assert code == 2 and one_error(out, "not a database"), out


def test_a_truncated_or_damaged_database_is_one_line_and_never_counts_units_done(probed, cli):
    db = probed / C.RESULTS_DB
    size = db.stat().st_size
    with open(db, "r+b") as fh:  # damage every page after the first (the schema stays readable)
        for off in range(4096, size, 4096):
            fh.seek(off)  # the b-tree page header: its type byte and cell counts
            fh.write(b"\xff" * 12)
    for extra in ([], ["--force"]):
        code, out = cli("probe", probed, "--probes", "model", "--device", "cpu", *extra)
        assert code == 2 and one_error(out, "damaged"), out
    os.truncate(db, size // 2)
    code, out = cli("probe", probed, "--probes", "model", "--device", "cpu")
    assert code == 2 and one_error(out, "results database"), out


def test_disk_full_while_saving_safetensors_is_one_line(teacher_copy, cli, monkeypatch):
    from safetensors import SafetensorError

    import models.checkpoint as ckpt

    def full(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, message: "No space left on device" })')

    monkeypatch.setattr(ckpt, "save_model", full)
    code, out = cli("distill", "--teacher", teacher_copy, *STUDENT)
    assert code == 2 and one_error(out, "No space left on device"), out


def test_disk_full_while_probing_is_not_blamed_on_another_process(teacher_copy, cli, monkeypatch):
    from probes.store import ResultsStore

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ResultsStore, "write_unit", full)
    code, out = cli("probe", teacher_copy, "--probes", "model", "--device", "cpu")
    assert code == 2 and one_error(out, "no space left") and "another process" not in out, out


def test_distill_on_a_truncated_teacher_checkpoint_writes_no_student(teacher_copy, cli):
    step, last = list_checkpoints(teacher_copy / "runs" / "teacher")[-1]
    weights = last / C.WEIGHTS_FILE
    os.truncate(weights, weights.stat().st_size - 16)
    write_json(last / C.META_FILE, {**read_json(last / C.META_FILE), "sha256": sha256_file(weights)})
    code, out = cli("distill", "--teacher", teacher_copy, *STUDENT[2:], "--method", "one-shot")
    assert code == 2 and one_error(out, "unreadable weights"), out
    assert sorted(p.name for p in (teacher_copy / "runs").iterdir()) == ["teacher"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_no_results_lock_is_created_before_the_device_check(teacher_copy, cli):
    code, out = cli("probe", teacher_copy, "--probes", "model", "--device", "cuda")
    assert code == 2 and one_error(out, "CUDA"), out
    assert not (teacher_copy / C.RESULTS_LOCK_FILE).exists() and not (teacher_copy / C.RESULTS_DB).exists()
