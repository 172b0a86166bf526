"""The shared benchmark timing: warm-up outside the timing, interleaved repeats, CPU time."""

from __future__ import annotations

import time

import torch

from benchmarks.timing import interleaved, threads, timed


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_interleaved_warms_each_side_then_alternates_and_measures_cpu_time():
    calls: list[str] = []

    def side(name: str, seconds: float):
        def run():
            calls.append(name)
            _spin(seconds)
            return name

        return run

    cmp = interleaved({"slow": side("slow", 0.04), "fast": side("fast", 0.01)}, repeats=3)
    assert calls == ["slow", "fast"] + ["slow", "fast"] * 3, "one warm-up each, then A B A B ..."
    assert len(cmp.cpu["slow"]) == len(cmp.cpu["fast"]) == 3
    assert cmp.median("slow") >= 0.04 and 0.01 <= cmp.median("fast") < 0.04
    assert cmp.ratio("slow", "fast") > 1.0 and cmp.values == {"slow": "slow", "fast": "fast"}
    assert "load average" in cmp.load_start and "load average" in cmp.load_end


def test_sleeping_costs_no_cpu_time_and_threads_are_restored():
    assert timed(lambda: time.sleep(0.05)).cpu < 0.04
    n = torch.get_num_threads()
    with threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == n
