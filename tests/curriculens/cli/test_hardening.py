"""Issue 7 (part A): every bad input is refused with one line before anything is written;
reruns resume or skip; one writer at a time; a diverging run stops; environment problems are
user errors."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from curriculens import constants as C
from curriculens.cli import build_parser, main

TEACHER = ["--n", 6, "--k", 2, "--width", 8, "--steps", 20, "--save-every", 10, "--n-eval", 64, "--device", "cpu"]
STUDENT = ["--width", 4, "--steps", 10, "--save-every", 10, "--device", "cpu"]


def run(capsys, *argv):
    code = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root: Path) -> dict:
    """Every path under ``root`` with its size and mtime: 'nothing was written' compares two.
    (SQLite's -wal/-shm files, which a reader of a WAL database may touch, are not ours.)"""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if not p.name.endswith(("-wal", "-shm"))
    }


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Path:
    """A finished tiny teacher, trained through the CLI."""
    exp = tmp_path_factory.mktemp("hard") / "exp"
    assert main(["-q", "train-teacher", "--out", str(exp), *map(str, TEACHER)]) == 0
    return exp


@pytest.fixture(scope="module")
def probed(exp, tmp_path_factory) -> Path:
    """A copy of the experiment with a results database (the model probe only)."""
    dst = tmp_path_factory.mktemp("probed") / "exp"
    shutil.copytree(exp, dst)
    assert main(["-q", "probe", str(dst), "--probes", "model", "--device", "cpu"]) == 0
    return dst


def _unfinished(exp: Path, tmp: Path) -> Path:
    dst = tmp / "unfinished"
    shutil.copytree(exp, dst)
    (dst / "runs" / "teacher" / C.DONE_FILE).unlink()
    return dst


def _corrupt(exp: Path, tmp: Path) -> Path:
    dst = tmp / "corrupt"
    shutil.copytree(exp, dst)
    weights = dst / "runs" / "teacher" / C.CHECKPOINTS_DIR / "step_000000010" / C.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    return dst


NEW = "{tmp}/new"
BAD_INPUTS = [
    # train-teacher: model, task, optimiser, checkpoints, names
    (["train-teacher", "--out", NEW, *TEACHER, "--width", 0], "width must be a positive integer"),
    (["train-teacher", "--out", NEW, *TEACHER, "--width", -3], "width must be a positive integer"),
    (["train-teacher", "--out", NEW, *TEACHER, "--depth", 0], "depth must be a positive integer"),
    (["train-teacher", "--out", NEW, *TEACHER, "--n", 0], "parity n must be a positive integer"),
    (["train-teacher", "--out", NEW, *TEACHER, "--n", 3, "--k", 5], "k (support size) must be in 1..n"),
    (["train-teacher", "--out", NEW, *TEACHER, "--n-eval", 0], "n_eval must be a positive"),
    (["train-teacher", "--out", NEW, *TEACHER, "--eval-every", -1], "eval every must be >= 0"),
    (["train-teacher", "--out", NEW, *TEACHER, "--warmup-frac", 1.5], "warmup fraction must be in [0, 1]"),
    (["train-teacher", "--out", NEW, *TEACHER, "--warmup-frac", -0.1], "warmup fraction must be in [0, 1]"),
    (["train-teacher", "--out", NEW, *TEACHER, "--log-early", -1], "log early must be >= 0"),
    (["train-teacher", "--out", NEW, *TEACHER, "--eval-log", -1], "eval log must be >= 0"),
    (["train-teacher", "--out", NEW, *TEACHER, "--lr", 0], "lr must be a positive number"),
    (["train-teacher", "--out", NEW, *TEACHER, "--lr", -0.1], "lr must be a positive number"),
    (["train-teacher", "--out", NEW, *TEACHER, "--weight-decay", -1], "weight decay must be >= 0"),
    (
        ["train-teacher", "--out", NEW, "--n", 6, "--k", 2, "--model", "gpt2", "--dropout", 1.0, "--device", "cpu"],
        "dropout must be in [0, 1)",
    ),
    (
        ["train-teacher", "--out", NEW, "--n", 6, "--k", 2, "--model", "gpt2", "--dropout", -0.5, "--device", "cpu"],
        "dropout must be in [0, 1)",
    ),
    (["train-teacher", "--out", NEW, *TEACHER, "--name", "{tmp}/elsewhere"], "not one path component"),
    (["train-teacher", "--out", NEW, *TEACHER, "--name", "../x", "--force"], "not one path component"),
    (["train-teacher", "--out", NEW, *TEACHER, "--name", "a/b"], "not one path component"),
    (["train-teacher", "--out", NEW, *TEACHER, "--name", ".."], "not one path component"),
    (["train-teacher", "--out", "{tmp}/afile", *TEACHER], "is a file"),
    (["train-teacher", "--out", "{exp}", *TEACHER, "--k", 3], "different task"),
    (["train-teacher", "--out", "{exp}", *TEACHER, "--lr", 0.5], "different config"),
    # distill: loss, schedule, names, teacher
    (
        ["distill", "--teacher", "{exp}", "--method", "progressive", *STUDENT, "--interval", 0],
        "--interval must be >= 1",
    ),
    (["distill", "--teacher", "{exp}", "--method", "progressive", *STUDENT, "--tau", -1], "tau must be >= 0"),
    (["distill", "--teacher", "{exp}", "--method", "progressive", *STUDENT, "--alpha", 1.5], "alpha must be in [0, 1]"),
    (
        ["distill", "--teacher", "{exp}", "--method", "progressive", *STUDENT, "--alpha", -0.1],
        "alpha must be in [0, 1]",
    ),
    (
        ["distill", "--teacher", "{exp}", "--method", "progressive", *STUDENT, "--lr", -1],
        "lr must be a positive number",
    ),
    (["distill", "--teacher", "{exp}", "--method", "progressive", *STUDENT, "--dropout", 0.1], "does not apply"),
    (
        ["distill", "--teacher", "{exp}", "--method", "two-shot", *STUDENT, "--two-shot-step", 500, "--two-shot-T", 5],
        "outside the teacher's checkpoints",
    ),
    (
        ["distill", "--teacher", "{exp}", "--method", "one-shot", *STUDENT, "--name", "teacher", "--force"],
        "cannot take its teacher's run directory",
    ),
    (
        ["distill", "--teacher", "{exp}", "--method", "one-shot", *STUDENT, "--name", "{tmp}/x", "--force"],
        "not one path component",
    ),
    (["distill", "--teacher", "{unfinished}", "--method", "one-shot", *STUDENT], "has not finished"),
    (["distill", "--teacher", "{corrupt}", "--method", "one-shot", *STUDENT], "corrupted weights"),
    # summary filters
    (["summary", "{probed}", "--probe", "nope"], "unknown probe nope"),
    (["summary", "{probed}", "--runs", "nope"], "unknown run nope"),
    (["summary", "{probed}", "--metric", "nope"], "unknown metric nope"),
    # dashboard: environment
    (["dashboard", "{exp}", "--host", "no-such-host.invalid"], "does not resolve"),
    (["dashboard", "{exp}", "--port", "{busy_port}"], "cannot serve on"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(map(str, a[:1] + a[-2:])) for a, _ in BAD_INPUTS])
def test_bad_input_is_refused_with_one_line_and_nothing_written(exp, probed, tmp_path, capsys, argv, message):
    (tmp_path / "afile").write_text("not a directory\n")
    unfinished, corrupt = _unfinished(exp, tmp_path), _corrupt(exp, tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        fill = dict(
            tmp=tmp_path,
            exp=exp,
            probed=probed,
            unfinished=unfinished,
            corrupt=corrupt,
            busy_port=busy.getsockname()[1],
        )
        argv = [str(a).format(**fill) for a in argv]
        before = {p: snapshot(p) for p in (tmp_path, exp, probed)}
        code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert err.startswith("curriculens: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert {p: snapshot(p) for p in (tmp_path, exp, probed)} == before, "something was written"


def test_an_output_path_the_user_may_not_write_is_a_user_error(tmp_path, capsys):
    if os.geteuid() == 0:  # root writes into read-only directories, but not into sysfs
        target = Path("/sys/curriculens-test/exp")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / "exp"
    try:
        code, _, err = run(capsys, "train-teacher", "--out", target, *TEACHER)
    finally:
        if os.geteuid() != 0:
            (tmp_path / "ro").chmod(0o755)
    assert code == 2 and ("not permitted" in err or "denied" in err), err
    assert err.count("\n") == 1 and "internal error" not in err and not target.exists()


def test_a_database_locked_past_its_timeout_is_a_user_error(capsys, monkeypatch):
    import sqlite3

    from curriculens.cli import summary

    def locked(args):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(summary, "run", locked)
    code, _, err = run(capsys, "summary", ".")
    assert code == 2 and "database is locked" in err and err.count("\n") == 1 and "internal error" not in err


def test_an_error_never_lands_on_an_unfinished_progress_bar_line(capsys, monkeypatch):
    from curriculens.cli import entry as cli

    class Tty:
        def __init__(self):
            self.text = ""

        def isatty(self):
            return True

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    cli._error("boom")
    assert tty.text == "\r\x1b[Kcurriculens: error: boom\n"  # the bar's line is cleared first


# --- reruns ---------------------------------------------------------------------------------
def test_every_command_run_twice_resumes_or_skips(tmp_path, capsys):
    exp = tmp_path / "exp"
    for _ in range(2):  # main: the second train-teacher said "different task" (tuple vs list)
        code, out, err = run(capsys, "train-teacher", "--out", exp, *TEACHER)
        assert code == 0, err
    assert "already finished" in out
    for _ in range(2):
        code, out, err = run(
            capsys,
            "distill",
            "--teacher",
            exp,
            "--method",
            "two-shot",
            "--two-shot-step",
            10,
            "--two-shot-T",
            5,
            *STUDENT,
        )
        assert code == 0, err
    assert "already finished" in out
    for _ in range(2):
        code, out, err = run(capsys, "probe", exp, "--probes", "model", "--device", "cpu")
        assert code == 0, err
    assert "0 done" in out and "skipped" in out
    # the saved config reruns the same run, with and without the flags it was made from
    code, out, err = run(capsys, "train-teacher", "--out", exp, "--config", exp / "runs/teacher/config.json")
    assert code == 0 and "already finished" in out, err


def test_force_replaces_only_a_curriculens_run(tmp_path, capsys):
    exp = tmp_path / "exp"
    assert run(capsys, "train-teacher", "--out", exp, *TEACHER)[0] == 0
    stranger = exp / "runs" / "notes"
    stranger.mkdir()
    (stranger / "mine.txt").write_text("keep me\n")
    code, _, err = run(capsys, "train-teacher", "--out", exp, *TEACHER, "--name", "notes", "--force")
    assert code == 2 and "not a curriculens run" in err
    assert (stranger / "mine.txt").read_text() == "keep me\n"
    code, _, err = run(capsys, "train-teacher", "--out", exp, *TEACHER, "--lr", 0.1, "--force")
    assert code == 0, err
    assert json.loads((exp / "runs/teacher/config.json").read_text())["optim"]["lr"] == 0.1


# --- config merge (issue 11 item 2) ---------------------------------------------------------
def _args(*argv):
    return build_parser().parse_args([str(a) for a in argv])


def test_teacher_config_merges_base_config_and_explicit_flags(exp):
    from curriculens.cli.train import teacher_config_from_args
    from curriculens.config import canonical_json

    base = exp / "runs/teacher/config.json"
    cfg = teacher_config_from_args(_args("train-teacher", "--config", base))
    assert canonical_json(cfg) == canonical_json(json.loads(base.read_text()))
    cfg = teacher_config_from_args(_args("train-teacher", "--config", base, "--k", 3))
    assert cfg.task.k == 3 and cfg.task.n == 6  # main ignored --k (only --n was looked at)
    cfg = teacher_config_from_args(_args("train-teacher", "--config", base, "--n", 9, "--lr", 0.2))
    assert cfg.task.n == 9 and cfg.model.d_in == 9 and cfg.model.width == 8 and cfg.optim.lr == 0.2
    assert cfg.steps == 20 and cfg.checkpoints.save_every == 10 and cfg.device == "cpu"


def test_teacher_config_keeps_the_pcfg_fields_of_its_base(tmp_path):
    from curriculens.cli.train import teacher_config_from_args
    from training.config import RunConfig

    fields = {
        "name": "pcfg",
        "gen_levels": 3,
        "gen_symbols": 2,
        "gen_rules": 2,
        "gen_seed": 7,
        "n_eval": 16,
        "mask_rate": 0.2,
    }
    base = teacher_config_from_args(
        _args("train-teacher", "--task", "pcfg", "--task-json", json.dumps(fields), "--device", "cpu")
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(base.to_dict()))
    cfg = teacher_config_from_args(_args("train-teacher", "--config", path, "--task", "pcfg", "--steps", 7))
    assert {k: getattr(cfg.task, k) for k in fields} == fields  # main kept only {"name": "pcfg"}
    assert cfg.steps == 7 and cfg.model == base.model
    assert isinstance(cfg, RunConfig)


def test_student_config_merges_base_and_flags_with_one_default(exp, tmp_path):
    from curriculens.cli.train import student_config_from_args
    from training.config import DistillConfig

    teacher = exp / "runs" / "teacher"
    cfg = student_config_from_args(_args("distill", "--teacher", exp, "--method", "progressive", *STUDENT), teacher)
    assert cfg.distill.tau == DistillConfig.tau and cfg.distill.alpha == DistillConfig.alpha
    assert cfg.name == "progressive-s0" and cfg.distill.teacher_dir == "../teacher"
    path = tmp_path / "student.json"
    path.write_text(json.dumps(cfg.to_dict()))
    again = student_config_from_args(
        _args("distill", "--teacher", exp, "--method", "progressive", "--config", path, "--tau", 2), teacher
    )
    assert again.distill.tau == 2.0 and again.model == cfg.model and again.steps == cfg.steps
    other = student_config_from_args(
        _args("distill", "--teacher", exp, "--method", "one-shot", "--config", path), teacher
    )
    assert other.name == "one-shot-s0" and other.distill.method == "one-shot"
    assert "(default 1.0)" in next(a.help for a in _subparser("distill")._actions if a.dest == "tau")


def _subparser(name):
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices[name]


# --- one writer at a time -------------------------------------------------------------------
HOLD = """
import sys, time
from curriculens.lock import exclusive_lock
with exclusive_lock(sys.argv[1], "test"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def _holder(lock: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_refuses_a_second_writer_naming_the_holder_and_wait_queues(tmp_path):
    from curriculens.errors import CurriculensError
    from curriculens.lock import exclusive_lock

    lock = tmp_path / ".lock"
    proc = _holder(lock, 1.5)
    try:
        with pytest.raises(CurriculensError, match=rf"pid {proc.pid}.*--wait"):
            with exclusive_lock(lock, "the thing"):
                pass
        with exclusive_lock(lock, "the thing", wait=True):  # queues until the holder is done
            assert proc.stdout.readline().strip() == "released"
            assert lock.read_text().strip() == str(os.getpid())
    finally:
        proc.wait()


def test_a_lock_left_by_a_dead_process_does_not_block(tmp_path):
    from curriculens.lock import exclusive_lock

    lock = tmp_path / ".lock"
    proc = _holder(lock, 0)
    proc.wait()
    lock.write_text("999999\n")  # a stale PID, as a kill -9 leaves it
    with exclusive_lock(lock, "the thing"):
        assert lock.read_text().strip() == str(os.getpid())


def test_a_second_trainer_or_prober_is_refused(exp, tmp_path, capsys):
    from curriculens.layout import run_lock_path
    from curriculens.lock import exclusive_lock

    run_dir = exp / "runs" / "teacher"
    with exclusive_lock(run_lock_path(run_dir), "held by the test"):
        code, _, err = run(capsys, "train-teacher", "--out", exp, *TEACHER)
    assert code == 2 and f"pid {os.getpid()}" in err and "--wait" in err and err.count("\n") == 1
    with exclusive_lock(exp / C.RESULTS_LOCK_FILE, "held by the test"):
        code, _, err = run(capsys, "probe", exp, "--probes", "model", "--device", "cpu")
    assert code == 2 and f"pid {os.getpid()}" in err and "results database" in err
    assert not (exp / C.RESULTS_DB).exists()


@pytest.mark.slow
def test_two_probe_sweeps_with_different_seeds_do_not_mix(exp, tmp_path):
    """Two sweeps at once with different seeds: the second queues (--wait), checks the stored
    settings inside the lock and refuses; main let both write (a database of mixed seeds)."""
    import time

    dst = tmp_path / "exp"
    shutil.copytree(exp, dst)
    probe = [sys.executable, "-m", "curriculens.cli", "-q", "probe", str(dst), "--device", "cpu"]
    first = subprocess.Popen([*probe, "--seed", "1"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while first.poll() is None and time.time() < deadline and not (dst / C.RESULTS_DB).exists():
        time.sleep(0.05)  # the first sweep is writing
    assert first.poll() is None, "the first sweep ended before the second could start"
    second = subprocess.run([*probe, "--seed", "2", "--wait"], capture_output=True, text=True)
    first.wait()
    assert first.returncode == 0, first.stderr.read()
    assert second.returncode == 2 and "seed=1" in second.stderr, second.stderr
    assert json.loads((dst / C.PROBE_CONFIG_FILE).read_text())["seed"] == 1


# --- divergence -----------------------------------------------------------------------------
def test_a_diverging_run_stops_keeps_finite_checkpoints_and_is_not_done(tmp_path, capsys):
    import torch

    from models.checkpoint import list_checkpoints, load_checkpoint

    exp = tmp_path / "exp"
    code, _, err = run(
        capsys,
        "train-teacher",
        "--out",
        exp,
        "--n",
        6,
        "--k",
        2,
        "--width",
        64,
        "--steps",
        200,
        "--save-every",
        5,
        "--lr",
        1e6,
        "--device",
        "cpu",
    )
    assert code == 2 and "diverged" in err and err.count("\n") == 1, err
    run_dir = exp / "runs" / "teacher"
    assert not (run_dir / C.DONE_FILE).exists()
    ckpts = list_checkpoints(run_dir)
    assert ckpts
    for _, path in ckpts:
        model, _, meta = load_checkpoint(path)
        assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_probe_producing_nan_is_a_failed_unit(exp, tmp_path, monkeypatch):
    from probes.model_probe import ModelProbe
    from probes.store import ResultRow, ResultsStore
    from probes.sweep import SweepConfig, run_sweep

    def nan_probe(self, ctx):
        return [ResultRow("model", "task", "output", "accuracy", float("nan"))]

    monkeypatch.setattr(ModelProbe, "run", nan_probe)
    dst = tmp_path / "exp"
    shutil.copytree(exp, dst)
    res = run_sweep(dst, SweepConfig(probes=("model",), device="cpu"))
    assert res.n_done == 0 and res.n_failed == res.n_units and "non-finite" in res.failures[0]["error"]
    with ResultsStore(dst / C.RESULTS_DB, readonly=True) as store:
        assert store.count() == 0


# --- rough edges ----------------------------------------------------------------------------
def test_weights_are_saved_0644(exp):
    weights = next((exp / "runs/teacher/checkpoints").glob(f"*/{C.WEIGHTS_FILE}"))
    assert weights.stat().st_mode & 0o777 == 0o644


def test_summary_into_a_closed_pipe_prints_no_traceback(probed):
    cmd = f"{sys.executable} -m curriculens.cli summary --off-support {probed} | head -c 1 >/dev/null"
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_grammar_errors_start_with_a_one_line_summary(tmp_path, capsys):
    bad = tmp_path / "g.json"
    bad.write_text(
        json.dumps(
            {
                "start_symbol": "s",
                "terminals": ["a"],
                "nonterminals": ["s", "t"],
                "rules": [{"lhs": "s", "rhs": ["u"], "prob": 0.5}],
                "token_map": {"a": 0},
            }
        )
    )
    code, _, err = run(
        capsys, "train-teacher", "--out", tmp_path / "e", "--task", "pcfg", "--task-set", f"grammar={bad}"
    )
    first = err.splitlines()[0]
    assert code == 2 and first.startswith("curriculens: error: grammar") and "problem(s); first: " in first
    assert not (tmp_path / "e").exists()


def test_cli_start_up_imports_neither_torch_nor_transformer_lens():
    code = (
        "import sys; from curriculens.cli import build_parser; build_parser();"
        "import curriculens.cli.summary, curriculens.cli.dashboard;"
        "print(sorted(m for m in ('torch', 'transformer_lens', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_make_test_waits_for_the_dpkg_lock():
    repo = Path(__file__).resolve().parents[3]
    recipe = subprocess.run(["make", "-n", "browser"], cwd=repo, capture_output=True, text=True, check=True).stdout
    assert recipe.count("DPkg::Lock::Timeout=") == 2  # apt-get update and install both wait


def test_summary_of_a_swept_database_imports_no_torch(probed):
    code = f"import sys; from curriculens.cli import main; main(['-q', 'summary', {str(probed)!r}]); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
