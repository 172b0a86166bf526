"""The PCFG phenomenon benchmark's own rules: the students' targets and the rise/fall verdict
(planted curves), and (slow) its smoke setting end to end, resumed and reported."""

from __future__ import annotations

import json

import pytest

from benchmarks import bench_pcfg_phenomenon as B
from curriculens.curves import Phases, Transition


def _rows(losses, accs, every=10):
    return [
        {"step": i * every, "eval_loss": lo, "eval_acc": a} for i, (lo, a) in enumerate(zip(losses, accs, strict=True))
    ]


def test_thresholds_are_fractions_of_the_teachers_drop():
    # plateau 1.0, drop to 0.2; the quarter level 0.8 is first reached at step 40, half (0.6) at 50
    rows = _rows([2.0, 1.0, 1.0, 1.0, 0.8, 0.6, 0.3, 0.2, 0.2], [0.1, 0.5, 0.5, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9])
    tr = Transition(start=30, mid=50, end=70, start_level=1.0, end_level=0.2, metric="eval_loss", mid_step=50)
    t = B.thresholds(rows, tr)
    assert t["q25"] == {"loss": pytest.approx(0.8), "acc": 0.6, "teacher_step": 40}
    assert t["q50"] == {"loss": pytest.approx(0.6), "acc": 0.7, "teacher_step": 50}
    assert (t["loss"], t["acc"], t["teacher_step"]) == (t["q50"]["loss"], 0.7, 50)


def test_thresholds_without_a_transition_span_first_to_last():
    rows = _rows([2.0, 1.2, 1.0, 0.8, 0.4], [0.1, 0.4, 0.5, 0.6, 0.8])
    t = B.thresholds(rows, None)
    assert t["q50"]["loss"] == pytest.approx(0.8)  # halfway between 1.2 (first after 0) and 0.4
    assert t["q50"]["teacher_step"] == 30


def _phases():
    return Phases(10, 30, 30, 60, 60, 100, 45, 1.0, 0.4, 0.3, 0.0, -0.02, -0.001, True)


def test_rise_and_fall_planted():
    ph = _phases()
    spike = {0: 0.0, 10: 0.01, 20: 0.01, 30: 0.02, 40: 0.2, 50: 0.3, 60: 0.1, 80: 0.02, 100: 0.01}
    v = B.rise_and_fall(spike, ph)
    assert v["rises_in_drop"] is True and v["falls_after"] is True
    assert (v["drop_max"], v["drop_max_step"], v["peak_phase"]) == (0.3, 50, "drop")
    climb = {0: 0.0, 10: 0.01, 20: 0.01, 30: 0.02, 40: 0.2, 50: 0.3, 60: 0.35, 80: 0.4, 100: 0.5}
    v = B.rise_and_fall(climb, ph)
    assert v["rises_in_drop"] is True and v["falls_after"] is False and v["peak_phase"] == "slow"
    flat = {s: 0.5 for s in range(0, 101, 10)}
    v = B.rise_and_fall(flat, ph)
    assert v["rises_in_drop"] is False and v["falls_after"] is False
    assert B.rise_and_fall({}, ph)["rises_in_drop"] is None


@pytest.mark.slow
def test_smoke_setting_end_to_end(tmp_path, one_thread):
    out, rep = tmp_path / "runs", tmp_path / "res" / "r.txt"
    argv = ["--setting", "smoke", "--out", str(out), "--seeds", "0", "--next-seeds", "0", "--jobs", "1"]
    assert B.main(argv + ["--report", str(rep)]) == 0
    res = json.loads(rep.with_suffix(".json").read_text())
    mlm, nxt = res["seeds"]
    assert set(mlm["students"]) == set(B.METHODS) == set(nxt["students"])
    assert mlm["ngram_curves"]["robust_n3"] and not nxt["ngram_curves"]
    ce = mlm["students"]["ce"]
    assert ce["teacher_steps_used"] == [] and len(ce["curve"]) == B.SETTINGS["smoke"].student_steps // 10 + 1
    assert mlm["students"]["progressive-x2"]["teacher_steps_used"][-1] == B.SETTINGS["smoke"].teacher_steps
    c1 = mlm["students"]["progressive-c1"]  # R = the mid-drop checkpoint: it is the first teacher
    assert c1["teacher_steps_used"][0] == mlm["students"]["two-shot"]["two_shot_step"]
    text = rep.read_text()
    assert "progressive-x2" in text and "q25" in text and "load average" in text
    before = {p: p.stat().st_mtime_ns for p in out.rglob("done.json")}
    assert B.main(argv + ["--report", str(rep), "--mode", "report"]) == 0  # finished runs are reused, not retrained
    assert {p: p.stat().st_mtime_ns for p in out.rglob("done.json")} == before


@pytest.mark.parametrize("name", sorted(B.SETTINGS))
def test_every_setting_names_known_model_sizes(name):
    from training.tasks.pcfg import model_dict

    s = B.SETTINGS[name]
    for size in (s.teacher_size, s.student_size):
        cfg = model_dict("mlm", size, vocab_size=8, seq_len=80, pad_id=5)
        assert cfg["kind"] == "bert" and cfg["pad_token_id"] == 5
    assert s.save_every <= s.teacher_steps and s.refresh <= s.teacher_steps and s.two_shot_T < s.student_steps


def test_pool_workers_end_when_the_benchmark_is_killed(tmp_path):
    # a SIGKILLed benchmark left its seeds training into the run directories; now they stop
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = (
        "import os, signal, multiprocessing\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from benchmarks.bench_pcfg_phenomenon import _exit_with_parent\n"
        "if __name__ == '__main__':\n"
        "    ex = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn'),\n"
        "                             initializer=_exit_with_parent, initargs=(os.getpid(),))\n"
        "    print(ex.submit(os.getpid).result(), flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    worker = int(proc.stdout.split()[0])

    def alive() -> bool:
        try:
            return Path(f"/proc/{worker}/stat").read_text().split(") ")[1][0] not in "ZX"
        except (FileNotFoundError, IndexError):
            return False

    deadline = time.time() + 30
    while alive() and time.time() < deadline:
        time.sleep(0.2)
    survived = alive()
    if survived:  # do not leave it running past a failing test
        os.kill(worker, 9)
    assert not survived, "the pool worker outlived its killed parent"


def test_mid_drop_checkpoint_of_a_teacher_with_a_two_evaluation_plateau(tmp_path):
    # the wide teacher's shape at evaluations every 100: plateau 100-200 (two evaluations, too
    # short for the phase rule), steep fall 200-300, then a long slow phase
    import numpy as np

    from curriculens import constants as C

    steps = np.arange(0, 3001, 100)
    loss = np.where(steps <= 200, 1.0 - 0.0004 * steps, 0.0)
    after = steps >= 300
    loss[after] = 0.3 + 0.35 * np.exp(-(steps[after] - 300) / 700.0)
    loss[0] = 2.1
    run = tmp_path / "teacher"
    (run / C.CHECKPOINTS_DIR).mkdir(parents=True)
    rows = [{"step": int(s), "eval_loss": float(v), "eval_acc": 0.5} for s, v in zip(steps, loss, strict=True)]
    (run / C.METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for s in steps:
        (run / C.CHECKPOINTS_DIR / f"step_{int(s):09d}").mkdir()
    assert B.mid_drop_checkpoint(run, "pcfg", "fallback") == 1500  # no clear drop: half of training
    assert B.mid_drop_checkpoint(run, "pcfg", "steepest") in (200, 300)  # the fall's middle (~250)
    with pytest.raises(ValueError, match="unclear_mid"):
        B.Setting("cfg3b", 2, 64, 5e-3, 10, 10, 1, 1, 8, 8, 1, 1, 1, unclear_mid="middle")
