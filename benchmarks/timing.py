"""How every benchmark times both sides the same way (docs/development.md, "Benchmarks").

- Imports and a warm-up call happen before any timing (``interleaved`` warms each side once).
- Both sides run in the same process with the same torch thread count (``threads``).
- Time is CPU time of this process (``time.process_time``: user + system, all threads), so a
  shared, loaded machine slows wall time but hardly the measure; wall time is kept beside it.
- Repeats are interleaved (A B A B ...), so a load change hits both sides alike; the report
  gives each side's median and the ratio of medians, with the load average at start and end.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@contextmanager
def threads(n: int = 1) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (restored afterwards)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def load() -> str:
    """The machine's size and 1-minute load average, for the report."""
    return f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"


RESULTS = Path(__file__).resolve().parent / "results"


def write_results(stem: str, lines: list[str], report: dict) -> None:
    """``benchmarks/results/<stem>.txt`` (the printed report) and ``<stem>.json`` (its numbers)."""
    (RESULTS / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")


@dataclass
class Timed:
    """Seconds of one call: ``cpu`` (process CPU time) and ``wall``; ``value`` its result."""

    cpu: float
    wall: float
    value: Any = None


def timed(fn: Callable[[], Any]) -> Timed:
    """Call ``fn()`` once and time it (CPU and wall)."""
    c, w = time.process_time(), time.perf_counter()
    value = fn()
    return Timed(time.process_time() - c, time.perf_counter() - w, value)


@dataclass
class Comparison:
    """CPU seconds per repeat of each side, in call order; the load at start and end."""

    cpu: dict[str, list[float]] = field(default_factory=dict)
    wall: dict[str, list[float]] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    load_start: str = ""
    load_end: str = ""

    def median(self, name: str) -> float:
        return statistics.median(self.cpu[name])

    def ratio(self, slow: str, fast: str) -> float:
        """median CPU of ``slow`` / median CPU of ``fast``."""
        return self.median(slow) / self.median(fast)

    def to_dict(self) -> dict:
        return {
            "cpu_s": self.cpu,
            "wall_s": self.wall,
            "median_cpu_s": {k: self.median(k) for k in self.cpu},
            "load_start": self.load_start,
            "load_end": self.load_end,
        }


def interleaved(sides: dict[str, Callable[[], Any]], repeats: int = 3, warm: bool = True) -> Comparison:
    """Time every side ``repeats`` times, interleaved, after one untimed warm-up call each
    (``warm``); ``values`` keeps each side's last result."""
    out = Comparison(load_start=load())
    if warm:
        for fn in sides.values():
            fn()
    for _ in range(repeats):
        for name, fn in sides.items():
            t = timed(fn)
            out.cpu.setdefault(name, []).append(t.cpu)
            out.wall.setdefault(name, []).append(t.wall)
            out.values[name] = t.value
    out.load_end = load()
    return out
