"""benchmarks/gpu_pcfg.py, the GPU check, runs end to end on a CPU with ``--tiny`` (GPU-free)."""

from __future__ import annotations

import json

import pytest

from benchmarks import gpu_pcfg


def test_steps_per_second():
    rows = [{"step": 0, "wall_s": 1.0}, {"step": 10, "wall_s": 3.0}, {"step": 20, "wall_s": 6.0}]
    assert gpu_pcfg.steps_per_second(rows) == pytest.approx(4.0)
    assert gpu_pcfg.steps_per_second(rows[:1]) != gpu_pcfg.steps_per_second(rows[:1])  # nan: one row


@pytest.mark.slow
def test_tiny_on_cpu_end_to_end(tmp_path, one_thread):
    res = tmp_path / "res"
    argv = ["--device", "cpu", "--tiny", "--out", str(tmp_path / "runs"), "--results", str(res)]
    assert gpu_pcfg.main(argv) == 0
    out = json.loads(res.with_suffix(".json").read_text())
    assert [r["preset"] for r in out] == ["paper-bert", "paper-gpt2"]
    for r in out:
        assert [c[0] for c in r["teacher_curve"]] == [0, 2, 4] and r["batch_size"] == 4
        assert [c[0] for c in r["student_curve"]] == [0, 2] and r["student_curve"][-1][3] == 4  # teacher ckpt used
    assert "paper-gpt2 on cpu" in res.with_suffix(".txt").read_text()
