"""benchmarks/gpu_checks.sh, the one prepared GPU command, in its CPU forms (``GPU_CHECKS_CPU=1``):
which carried wheels it installs, its steps' exit codes and files, and what it refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_checks.sh"


def _checks(tmp_path: Path, *steps: str, **env) -> tuple[subprocess.CompletedProcess, str]:
    out = tmp_path / "out"
    full = {
        **os.environ,
        "GPU_CHECKS_CPU": "1",
        "OUT": str(out),
        "PYTHON": sys.executable,
        "DEVICE_DIR": str(tmp_path / "device"),
        "OMP_NUM_THREADS": "1",
        "TMPDIR": str(tmp_path),
        **env,
    }
    proc = subprocess.run(["bash", str(SCRIPT), *steps], env=full, capture_output=True, text=True, timeout=300)
    log = (out / "gpu_checks.log").read_text() if (out / "gpu_checks.log").is_file() else ""
    return proc, log


def _wheel(dst: Path, name: str, version: str = "0.0.1") -> Path:
    """A minimal pure-Python wheel of package ``name`` (``name.VALUE`` = ``"planted"``)."""
    dst.mkdir(parents=True, exist_ok=True)
    path = dst / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": 'VALUE = "planted"\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{f},,\n" for f in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as z:
        for f, text in files.items():
            z.writestr(f, text)
    return path


def test_an_unknown_step_and_a_missing_fit_teacher_are_refused(tmp_path):
    proc, log = _checks(tmp_path, "nope")
    assert proc.returncode == 2 and "unknown step nope" in log
    proc, log = _checks(tmp_path, "fit", FIT_EXP=str(tmp_path / "absent"))
    assert proc.returncode == 1 and "== fit: rc 2: no teacher run in" in log
    assert "== fit (limit" not in log  # the fit never started (it would have trained the demo)


def test_env_installs_only_the_missing_wheels_and_bench_gpu_runs(tmp_path):
    """A carried wheel of a package this Python lacks is installed (the env step imports it
    through PYTHONPATH); one of a package it has (einops) is left out."""
    _wheel(tmp_path / "device" / "whl", "curriculens_planted_pkg")
    _wheel(tmp_path / "device" / "whl", "einops", "0.0.1")
    proc, log = _checks(tmp_path, "env", "bench_gpu")
    assert proc.returncode == 0, log
    assert "installing 1 carried wheel(s)" in log and "curriculens_planted_pkg-0.0.1" in log
    assert "einops-0.0.1" not in log.split("installing", 1)[1].splitlines()[0]
    site = tmp_path / "gpu_checks_site"
    assert (site / "curriculens_planted_pkg" / "__init__.py").is_file() and not (site / "einops").exists()
    assert "curriculens imports: ok" in log and "== env: rc 0" in log and "== bench_gpu: rc 0" in log
    assert json.loads((tmp_path / "out" / "gpu.json").read_text())["tiny"] is True
    assert "every step rc 0" in log


@pytest.mark.slow
def test_every_step_in_its_cpu_form(tmp_path):
    """All five steps, the fit on a tiny teacher's checkpoint: rc 0 each, the six files back."""
    exp = tmp_path / "fit_exp"
    subprocess.run(
        [sys.executable, "-m", "curriculens.cli", "-q", "train-teacher", "--out", str(exp), "--n", "10", "--k", "3"]
        + ["--width", "300", "--steps", "200", "--save-every", "100"],
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=ROOT,
        capture_output=True,
    )
    proc, log = _checks(tmp_path, FIT_EXP=str(exp))
    assert proc.returncode == 0, log
    for step in ("env", "pytest", "fit", "bench_gpu", "pcfg"):
        assert f"== {step}: rc 0" in log
    got = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert got == sorted(
        ["gpu.json", "gpu.txt", "gpu_checks.log", "gpu_pcfg.json", "gpu_pcfg.txt", "probe_fit_gpu.json"]
    )
    fit = json.loads((tmp_path / "out" / "probe_fit_gpu.json").read_text())["fit"]
    assert set(fit) == {"gaussian", "teacher_activations"} and fit["teacher_activations"]["device"] == "cpu"
