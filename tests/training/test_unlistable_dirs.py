"""Issue 22: an experiment directory that cannot be listed is named in the dashboard's list of
experiments (with its problem), not left out without a word."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from curriculens import constants as C
from curriculens.io import write_json
from training.experiment import unlistable_dirs

ROOT = Path(__file__).resolve().parents[2]
LIST = (
    "import sys; from dashboard.data import discover; print([(e.key, bool(e.problems)) for e in discover(sys.argv[1])])"
)


def _experiment(path: Path) -> None:
    (path / C.RUNS_DIR).mkdir(parents=True)
    write_json(path / C.EXPERIMENT_FILE, {"task": {"name": "parity", "n": 6, "k": 2}})


def test_unlistable_experiment_is_listed_with_a_problem(tmp_path):
    _experiment(tmp_path / "a")
    _experiment(tmp_path / "group" / "b")
    (tmp_path / "group" / "b").chmod(0)
    argv = [sys.executable, "-c", LIST, str(tmp_path)]
    if os.geteuid() == 0:  # root lists any directory: run without the capabilities that allow it
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv")
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *argv]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
    finally:
        (tmp_path / "group" / "b").chmod(0o755)
    if proc.stderr.startswith("setpriv:"):
        pytest.skip(f"cannot drop capabilities here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[('a', False), ('group/b', True)]"


def test_unlistable_dirs_does_not_enter_experiments(tmp_path, monkeypatch):
    _experiment(tmp_path / "a")
    (tmp_path / "a" / C.RUNS_DIR / "teacher").mkdir()
    (tmp_path / "x" / "y").mkdir(parents=True)
    listed = []
    real = Path.iterdir

    def spy(self):
        listed.append(self.relative_to(tmp_path).as_posix())
        if self.name == "y":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "iterdir", spy)
    assert unlistable_dirs(tmp_path) == [tmp_path / "x" / "y"]
    assert "a/runs" not in listed
