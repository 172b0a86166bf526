"""Issue 22: every destructive path takes the run's lock first and follows one rule about what
it may replace; directory replacement and killed writers never leave a run that cannot resume."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from curriculens import constants as C
from curriculens.io import atomic_dir, read_json
from curriculens.layout import run_lock_path
from curriculens.lock import exclusive_lock
from models.checkpoint import list_checkpoints
from training.foreign.fixtures import sample_text, write_trainer_dir

TEACHER = ["--n", 6, "--k", 2, "--width", 8, "--steps", 20, "--save-every", 10, "--n-eval", 64, "--device", "cpu"]
# the settings of conftest.tiny_teacher: a rerun with them resumes it


def one_line(text: str) -> bool:
    """Exactly one error line, and no traceback."""
    errors = [ln for ln in text.splitlines() if "error" in ln.lower() or "Traceback" in ln]
    return len(errors) == 1 and errors[0].startswith("curriculens: error: ")


@pytest.fixture(scope="module")
def trainer_dir(tmp_path_factory) -> Path:
    out = write_trainer_dir(tmp_path_factory.mktemp("src") / "out", "gpt2", steps=(0, 5))
    (out / "corpus.txt").write_text(sample_text(40))
    return out


def imp(trainer_dir: Path, exp: Path, *extra) -> list:
    return [
        "import",
        trainer_dir,
        "--out",
        exp,
        "--task",
        "text",
        "--task-set",
        f"corpus={trainer_dir / 'corpus.txt'}",
    ] + list(extra)


def test_import_force_never_deletes_a_directory_that_is_not_a_run(trainer_dir, tmp_path, cli):
    exp = tmp_path / "exp"
    (exp / "runs" / "precious").mkdir(parents=True)
    (exp / "runs" / "precious" / "thesis.tex").write_text("years of work")
    code, out = cli(*imp(trainer_dir, exp, "--name", "precious", "--force"))
    assert code == 2 and one_line(out) and "not a curriculens run" in out
    assert (exp / "runs" / "precious" / "thesis.tex").read_text() == "years of work"


def test_a_student_never_takes_the_teachers_directory(teacher_copy, trainer_dir, tmp_path, cli):
    exp = teacher_copy
    before = read_json(exp / "runs" / "teacher" / C.RUN_CONFIG_FILE)
    code, out = cli("distill", "--teacher", exp, "--method", "ce", "--name", "teacher", "--force",
                    "--width", 4, "--steps", 10, "--save-every", 10, "--device", "cpu")  # fmt: skip
    assert code == 2 and one_line(out) and "teacher" in out
    code, out = cli(*imp(trainer_dir, tmp_path / "text", "--name", "t"))
    assert code == 0, out
    code, out = cli(*imp(trainer_dir, tmp_path / "text", "--role", "student", "--method", "ce",
                                 "--name", "t", "--force"))  # fmt: skip
    assert code == 2 and one_line(out) and "a student cannot replace it" in out
    assert read_json(exp / "runs" / "teacher" / C.RUN_CONFIG_FILE) == before


def test_import_force_waits_for_the_run_lock_and_a_second_import_is_refused(trainer_dir, tmp_path, cli):
    exp = tmp_path / "exp"
    assert cli(*imp(trainer_dir, exp))[0] == 0
    run_dir = exp / "runs" / "teacher"
    files = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    with exclusive_lock(run_lock_path(run_dir), "held by the test"):  # a trainer or an import at work
        code, out = cli(*imp(trainer_dir, exp, "--force"))
        assert code == 2 and one_line(out) and f"pid {os.getpid()}" in out and "--wait" in out
        code, out = cli(*imp(trainer_dir, exp, "--name", "other"))  # other runs are not blocked
        assert code == 0, out
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == files
    code, out = cli(*imp(trainer_dir, exp, "--name", "other"))  # the second import of one name
    assert code == 2 and "already exists" in out


def test_a_bad_trainer_state_fails_before_anything_is_written(trainer_dir, tmp_path, cli):
    src = tmp_path / "src"
    shutil.copytree(trainer_dir, src)
    for state in src.rglob("trainer_state.json"):
        state.write_text("[1, 2]")
    code, out = cli(*imp(src, tmp_path / "exp"))
    assert code == 2 and one_line(out) and "trainer state" in out
    assert not (tmp_path / "exp").exists()


def test_a_step_too_large_for_the_database_is_refused(trainer_dir, tmp_path, cli):
    src = tmp_path / "src"
    shutil.copytree(trainer_dir, src)
    last = sorted(p for p in src.iterdir() if p.name.startswith("checkpoint-"))[-1]
    last.rename(src / ("checkpoint-" + "9" * 30))
    code, out = cli(*imp(src, tmp_path / "exp"))
    assert code == 2 and one_line(out) and "too large" in out
    assert not (tmp_path / "exp").exists()


def test_a_crash_while_replacing_a_checkpoint_leaves_the_old_one_and_a_rerun_resumes(teacher_copy, tmp_path, cli):
    exp = teacher_copy
    run_dir = exp / "runs" / "teacher"
    (run_dir / C.DONE_FILE).unlink()
    step, final = list_checkpoints(run_dir)[-1]
    files = sorted(p.name for p in final.iterdir())

    # what kill -9 leaves between atomic_dir's two renames: the old directory aside, the new one unfinished
    os.replace(final, final.parent / f".{final.name}.old-999999")
    (final.parent / f".{final.name}.tmp-999999").mkdir()
    (final.parent / f".{final.name}.tmp-999999" / "half").write_text("x")
    code, out = cli("train-teacher", "--out", exp, *TEACHER)
    assert code == 0, out
    assert sorted(p.name for p in final.iterdir()) == files
    assert not [p for p in final.parent.iterdir() if p.name.startswith(".")]


def test_a_half_deleted_checkpoint_of_an_older_version_is_discarded_on_resume(teacher_copy, tmp_path, cli):
    exp = teacher_copy
    run_dir = exp / "runs" / "teacher"
    (run_dir / C.DONE_FILE).unlink()
    step, last = list_checkpoints(run_dir)[-1]
    (last / C.META_FILE).unlink()  # what io.atomic_dir's rmtree-then-rename left after kill -9
    code, out = cli("train-teacher", "--out", exp, *TEACHER)
    assert code == 0, out
    assert (last / C.META_FILE).is_file() and (run_dir / C.DONE_FILE).is_file()


def test_temp_files_of_a_killed_force_are_swept_and_never_listed_as_runs(teacher_copy, tmp_path, cli):
    exp = teacher_copy
    run_dir = exp / "runs" / "teacher"
    ghost = exp / "runs" / ".teacher.tmp-999999"  # a killed import's nearly finished copy
    shutil.copytree(run_dir, ghost)
    shutil.rmtree(run_dir)
    run_dir.mkdir()
    (run_dir / ".config.json.k2j4x.tmp").write_text("{")  # a killed train-teacher --force
    code, out = cli("probe", exp, "--probes", "model", "--device", "cpu", "--dry-run")
    assert code == 2 and "no runs" in out, out  # the temporary copy is not a run
    code, out = cli("train-teacher", "--out", exp, *TEACHER)
    assert code == 0, out
    assert not ghost.exists() and not list(run_dir.glob(".*.tmp"))


def test_run_names_starting_with_a_dot_are_refused(teacher_copy, trainer_dir, tmp_path, cli):
    exp = teacher_copy
    code, out = cli("distill", "--teacher", exp, "--method", "ce", "--name", ".hidden",
                    "--width", 4, "--steps", 10, "--save-every", 10, "--device", "cpu")  # fmt: skip
    assert code == 2 and one_line(out) and "'.hidden'" in out
    assert not (exp / "runs" / ".hidden").exists()


def test_atomic_dir_keeps_the_old_directory_when_the_new_one_cannot_come_in(tmp_path, monkeypatch):
    final = tmp_path / "d"
    final.mkdir()
    (final / "old").write_text("old")
    real = os.replace

    def refuse_new(src, dst):
        if Path(src).name.startswith(".d.tmp-"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", refuse_new)
    with pytest.raises(OSError):
        with atomic_dir(final) as tmp:
            (tmp / "new").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"] and (final / "old").read_text() == "old"


@pytest.mark.slow  # a fresh interpreter imports transformers
def test_weights_the_user_may_not_read_say_permission_denied(trainer_dir, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(trainer_dir, src)
    next(src.glob("checkpoint-5/*.safetensors")).chmod(0)
    argv = [sys.executable, "-m", "curriculens.cli", "-q", *map(str, imp(src, tmp_path / "exp"))]
    if os.geteuid() == 0:  # root reads any file: run without the capabilities that allow it
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv")
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *argv]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    if proc.stderr.startswith("setpriv:"):
        pytest.skip(f"cannot drop capabilities here: {proc.stderr.strip()}")
    assert proc.returncode == 2 and "Permission denied" in proc.stderr and "No such file" not in proc.stderr
    assert one_line(proc.stderr) and not (tmp_path / "exp").exists()
