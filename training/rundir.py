"""What a writer may replace, and how it holds a run directory: one rule for every command.

``train-teacher``, ``distill``, ``grid``, ``demo`` and ``import`` all go through here:

- ``run_lock(run_dir)``: the run's exclusive lock (``curriculens.lock``) on ``EXP/.locks/<run>.lock``
  outside the directory (so a replaced directory keeps its lock), taken before anything in the
  directory is written or deleted;
- ``check_replaceable(run_dir, role)``: reads only; a directory holding anything but a
  curriculens run (no ``config.json``) is never replaced, not even with ``--force``; a
  ``config.json`` that is not a run config is its own one-line error; a student never replaces
  a teacher run. Temporary files and directories a killed writer left (``curriculens.io.
  TEMP_RE``) and the lock file do not count as content;
- ``sweep_run_dir(run_dir)``: inside the lock, undo a killed replacement of the directory
  itself and delete the temporary files a killed writer left in it.
"""

from __future__ import annotations

from pathlib import Path

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import is_temp_name, read_json, restore_dir, sweep_temps
from curriculens.layout import run_lock_path
from curriculens.lock import exclusive_lock
from training.config import RunConfig


def run_lock(run_dir: Path, wait: bool = False):
    """The exclusive lock of one run directory (``curriculens.lock``): one writer at a time."""
    return exclusive_lock(run_lock_path(run_dir), f"run directory {run_dir}", wait=wait)


def run_contents(run_dir: Path) -> list[Path]:
    """What ``run_dir`` holds besides its lock and the temporary files of killed writers."""
    return [p for p in Path(run_dir).iterdir() if p.name != C.OLD_RUN_LOCK_FILE and not is_temp_name(p.name)]


def stored_config(run_dir: Path) -> RunConfig:
    """The run's ``config.json`` as a RunConfig; one line naming the file if it is not one."""
    path = Path(run_dir) / C.RUN_CONFIG_FILE
    data = read_json(path)
    if not isinstance(data, dict):
        raise CurriculensError(f"{path} is not a run config (a JSON {type(data).__name__}); move it aside")
    try:
        return RunConfig.from_dict(data)
    except CurriculensError as exc:
        raise CurriculensError(f"{path} is not a valid run config ({exc}); move it aside") from None


def check_replaceable(run_dir: Path | str, role: str) -> RunConfig | None:
    """The stored config of the run in ``run_dir`` (None when there is nothing there yet), after
    checking that a writer of a ``role`` run may take the directory: raises a one-line
    CurriculensError for a file, a directory that is not a curriculens run, an unreadable
    run config, or a teacher run wanted by a student. Reads only; ``--force`` changes none of it."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise CurriculensError(f"run directory {run_dir} is a file")
    if not run_dir.is_dir() or not run_contents(run_dir):
        return None
    if not (run_dir / C.RUN_CONFIG_FILE).is_file():
        raise CurriculensError(
            f"{run_dir} exists and is not a curriculens run (no {C.RUN_CONFIG_FILE}); choose another name"
        )
    stored = stored_config(run_dir)
    if role == C.ROLE_STUDENT and stored.role == C.ROLE_TEACHER:
        raise CurriculensError(f"{run_dir} holds the teacher run; a student cannot replace it: choose another --name")
    return stored


def sweep_run_dir(run_dir: Path | str) -> list[Path]:
    """Inside the run's lock: restore or remove what a killed writer left of ``run_dir`` itself
    (``curriculens.io.restore_dir``) and the temporary files in it. Returns what was deleted."""
    run_dir = Path(run_dir)
    return restore_dir(run_dir) + sweep_temps(run_dir)
