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


def test_fit_pair_records_its_device_and_agrees_with_sklearn():
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g)
    y = torch.stack([(x[:, 0] > 0), (x[:, 1] + x[:, 2] > 0)], dim=1).long()
    r = B._fit_pair(x, y, device="cpu")
    assert r["device"] == "cpu" and r["probes"] == 4
    assert r["max_test_acc_diff"] <= 0.02 and r["test_acc_torch"] > 0.9
    assert "torch (cpu)" in B._fit_text("planted", r)


def test_fit_device_cuda_without_cuda_is_one_line_error(tmp_path):
    import os
    import subprocess
    import sys

    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the flag would run the benchmark")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_probe_sweep",
            "--skip-sweep",
            "--fit-device",
            "cuda",
            "--out",
            str(tmp_path / "r.json"),
        ],
        cwd=Path(B.__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(B.__file__).resolve().parents[1])},
    )
    assert out.returncode != 0
    assert out.stderr.strip() == "error: --fit-device cuda but torch sees no CUDA device"
    assert not list(tmp_path.iterdir())  # nothing written
