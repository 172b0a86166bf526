"""The two-shot sweep benchmark: its regret by kind (planted scores), a bad size, and the tiny
parity sweep end to end (results per seed, reused on a rerun with the first run's times)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from benchmarks import bench_two_shot_sweep as B
from curriculens import constants as C


def _score(pick, pick_steps, best, best_steps):
    ratio = pick_steps / best_steps if pick_steps is not None and best_steps is not None else None
    return {"pick": pick, "pick_steps": pick_steps, "best": best, "best_steps": best_steps, "pick_over_best": ratio}


def _student(exp, step, accs):
    run = exp / C.RUNS_DIR / f"s{step}"
    run.mkdir(parents=True)
    rows = [{"step": 100 * i, "eval_acc": a} for i, a in enumerate(accs)]
    (run / C.METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return SimpleNamespace(name=f"s{step}", distill=SimpleNamespace(two_shot_step=step))


def test_regret_is_steps_over_best_then_censored_then_final_accuracy(tmp_path):
    assert B.regret(tmp_path, [], _score(300, 1500, 200, 1000), 4000) == (1.5, "steps")
    assert B.regret(tmp_path, [], _score(300, None, 200, 1000), 4000) == (4.0, "censored")  # a lower bound
    cfgs = [_student(tmp_path, 200, [0.3, 0.6]), _student(tmp_path, 300, [0.3, 0.5])]
    value, kind = B.regret(tmp_path, cfgs, _score(300, None, 200, None), 4000)
    assert kind == "final" and value == pytest.approx(0.6 / 0.5)


def test_an_unknown_size_is_one_line_and_exit_2(tmp_path, capsys):
    code = B.main(["--size", "huge", "--out", str(tmp_path / "o"), "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "unknown parity size 'huge'" in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


def test_the_tiny_parity_sweep_end_to_end(tmp_path, capsys):
    argv = ["--size", "tiny", "--seeds", "0", "--out", str(tmp_path / "o"), "--results", str(tmp_path / "r")]
    assert B.main(argv) == 0
    first = json.loads((tmp_path / "r" / "two_shot_sweep_parity_tiny.json").read_text())
    (row,) = first["seeds"]
    assert row["n_students"] == 3 and set(row["speeds"]) == {"0", "100", "200"}  # every checkpoint before 300
    assert row["recommendation"]["pick"] in row["recommendation"]["indistinguishable"]
    assert B.main(argv) == 0  # reuses the runs and the first run's times
    again = json.loads((tmp_path / "r" / "two_shot_sweep_parity_tiny.json").read_text())["seeds"][0]
    assert (again["wall_s"], again["cpu_s"], again["speeds"]) == (row["wall_s"], row["cpu_s"], row["speeds"])
    text = (tmp_path / "r" / "two_shot_sweep_parity_tiny.txt").read_text()
    assert "seed 0: 3 two-shot students" in text and "mean regret" in text
    capsys.readouterr()
