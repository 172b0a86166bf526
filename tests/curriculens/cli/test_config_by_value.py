"""Issue 22: stored configs compare by value with their defaults filled in, so experiments and
runs written with fewer keys (by ``demo``, by older versions) resume; a garbage config gives its
own one-line message."""

from __future__ import annotations

from pathlib import Path

from curriculens import constants as C
from curriculens.io import read_json, write_json

TEACHER = ["--n", 6, "--k", 2, "--width", 8, "--steps", 20, "--save-every", 10, "--n-eval", 64, "--device", "cpu"]
# the settings of conftest.tiny_teacher: a rerun with them resumes it


def drop_default(path: Path) -> None:
    """Rewrite a stored file as a writer that leaves defaults out would have (demo's parity task)."""
    data = read_json(path)
    task = data["task"]
    assert task.get("support") in ([], ()), "the drill needs the default support"
    del task["support"]
    write_json(path, data)


def test_an_experiment_and_a_run_stored_without_defaults_resume(teacher_copy, cli):
    exp = teacher_copy
    drop_default(exp / C.EXPERIMENT_FILE)
    drop_default(exp / "runs" / "teacher" / C.RUN_CONFIG_FILE)
    code, out = cli("train-teacher", "--out", exp, "--config", exp / "runs" / "teacher" / C.RUN_CONFIG_FILE)
    assert code == 0 and "already finished" in out, out  # a demo teacher resumed with its own --config
    code, out = cli("train-teacher", "--out", exp, *TEACHER)
    assert code == 0 and "already finished" in out, out
    code, out = cli("probe", exp, "--probes", "model", "--device", "cpu", "--dry-run")
    assert code == 0, out


def test_a_garbage_task_in_experiment_json_has_its_own_message(teacher_copy, cli):
    exp = teacher_copy
    data = read_json(exp / C.EXPERIMENT_FILE)
    write_json(exp / C.EXPERIMENT_FILE, {**data, "task": {"name": "parity", "bogus": 1}})
    code, out = cli("train-teacher", "--out", exp, *TEACHER)
    assert code == 2 and "does not hold a valid task config" in out and "different task" not in out


def test_a_garbage_run_config_has_its_own_message(teacher_copy, cli):
    exp = teacher_copy
    write_json(exp / "runs" / "teacher" / C.RUN_CONFIG_FILE, [1, 2])
    code, out = cli("train-teacher", "--out", exp, *TEACHER, "--force")
    assert code == 2 and "is not a run config" in out
