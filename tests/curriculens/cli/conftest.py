"""Shared by the CLI drills: a tiny finished teacher (trained once), copies of it, and ``cli``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curriculens.cli import main

# the drills rerun train-teacher with these same flags (spelled out in each test file) to resume it
TINY_TEACHER = ["--n", 6, "--k", 2, "--width", 8, "--steps", 20, "--save-every", 10, "--n-eval", 64, "--device", "cpu"]


@pytest.fixture
def cli(capsys):
    """``cli(*argv) -> (exit status, stdout + stderr)`` of ``curriculens -q ARGV``."""

    def run(*argv) -> tuple[int, str]:
        code = main(["-q", *map(str, argv)])
        out, err = capsys.readouterr()
        return code, out + err

    return run


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    """An experiment with a finished tiny parity teacher, trained through the CLI (never modify it)."""
    exp = tmp_path_factory.mktemp("tiny-teacher") / "exp"
    assert main(["-q", "train-teacher", "--out", str(exp), *map(str, TINY_TEACHER)]) == 0
    return exp


@pytest.fixture
def teacher_copy(tiny_teacher, tmp_path) -> Path:
    """A private copy of ``tiny_teacher`` to damage."""
    shutil.copytree(tiny_teacher, tmp_path / "exp")
    return tmp_path / "exp"
