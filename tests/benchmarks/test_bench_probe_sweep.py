"""The probe-sweep benchmark's report: a saved result re-renders with every ratio it holds."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bench_probe_sweep as B

RESULT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "probe_sweep.json"


def test_saved_result_renders_every_sweep_fit_and_extraction():
    result = json.loads(RESULT.read_text())
    text = B.render(result)
    for s in result["sweeps"]:
        assert f"options {s['options']}" in text
        assert f"speedup {s['speedup']:.2f}x" in text
        assert f"no exact sweep beats {s['best_possible_speedup']:.2f}x" in text
    for name, r in result["fit"].items():
        assert f"fitting, {name}:" in text and f"{r['ratio']:.1f}x" in text
    for name, r in result["extraction"].items():
        assert f"extraction, {name}:" in text and f"{r['ratio']:.2f}x" in text
    assert text.startswith(f"machine: {result['cpus']} CPUs")
    assert text.rstrip().splitlines()[-1].startswith(f"load average {result['load_end'][0]:.1f} at the end")
