"""Start-up CPU time of the command line against ``python -c pass``.

::

    python -m benchmarks.bench_startup [--repeats 5]

Measures, in child processes, the CPU time (user + system) of:

- ``python -c pass``: the baseline, measured in the same run;
- ``curriculens --help``;
- ``curriculens summary EXP`` on a small synthetic results database (one parity teacher,
  20 checkpoints, 40 Fourier features and the model accuracy);
- ``curriculens dashboard EXP``: from launch until it prints its "serving" line (its CPU
  time is read from ``/proc/PID/stat`` at that moment, then the server is stopped).

Prints the median of ``--repeats`` runs of each, and each command's ratio to the baseline.
Goal (issue 7): ``--help``, ``summary`` and ``dashboard`` under 1 s of CPU each. CPU time, not
wall time, so a loaded machine inflates it less; say in results that the machine was shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "curriculens.cli"]
TICKS = os.sysconf("SC_CLK_TCK")


def child_cpu(cmd: list[str]) -> float:
    """CPU seconds (user + sys) of one child process run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_until_line(cmd: list[str], marker: str, timeout_s: float = 120.0) -> float:
    """CPU seconds a long-running child has used when it prints ``marker`` (then it is stopped)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.time() + timeout_s
        for line in proc.stdout:
            if marker in line:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
            if time.time() > deadline:
                break
        raise RuntimeError(f"{' '.join(cmd)} did not print {marker!r}")
    finally:
        proc.terminate()
        proc.wait()


def make_experiment(root: Path) -> Path:
    """A small parity experiment directory with a results database (no training)."""
    from probes import registry
    from probes.store import ResultRow, ResultsStore, UnitKey

    exp = root / "exp"
    task = {"name": "parity", "n": 10, "k": 3, "support": [], "n_eval": 512, "data_seed": 0}
    (exp / "runs").mkdir(parents=True)
    (exp / "experiment.json").write_text(json.dumps({"task": task}))
    with ResultsStore(exp / "results.sqlite") as store:
        store.upsert_run("teacher", "teacher", "teacher", 0, str(exp / "runs" / "teacher"), {"task": task})
        store.write_metric_specs(registry.metric_specs("parity"))  # as the sweep does
        for step in range(0, 2000, 100):
            rows = [ResultRow("model", "task", "output", "accuracy", min(1.0, 0.5 + step / 2000))]
            unit = UnitKey("teacher", "teacher", "teacher", 0, step, "model")
            store.write_unit(unit, rows)
            rows = [
                ResultRow(
                    "fourier", f"f{i}", "output", "corr", (i % 7) * step / 1e5, degree=1 + i % 2, in_support=i < 3
                )
                for i in range(40)
            ]
            store.write_unit(UnitKey("teacher", "teacher", "teacher", 0, step, "fourier"), rows)
    return exp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    try:
        exp = make_experiment(tmp)
        cases = {
            "python -c pass": lambda: child_cpu([sys.executable, "-c", "pass"]),
            "curriculens --help": lambda: child_cpu([*CLI, "--help"]),
            "curriculens summary EXP": lambda: child_cpu([*CLI, "summary", str(exp)]),
            "curriculens dashboard EXP": lambda: cpu_until_line(
                [*CLI, "dashboard", str(exp), "--port", str(free_port())], "serving"
            ),
        }
        results = {}
        for name, measure in cases.items():
            measure()  # warm the file cache
            results[name] = statistics.median(measure() for _ in range(args.repeats))
        base = results["python -c pass"]
        print(
            f"start-up CPU time (user + sys), median of {args.repeats}; machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
        )
        for name, cpu in results.items():
            goal = (
                "" if name == "python -c pass" else ("  (goal < 1 s: met)" if cpu < 1.0 else "  (goal < 1 s: NOT met)")
            )
            print(f"  {name:<28} {cpu:6.2f} s   {cpu / base:6.1f}x python -c pass{goal}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
