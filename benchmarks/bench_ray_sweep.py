"""Probe-sweep throughput: the local executor vs Ray with 1 and 2 workers, and Ray's overhead.

::

    python -m benchmarks.bench_ray_sweep [--size tiny] [--n-probe 20000] [--repeats 1]

Trains (once, into a temp directory) the parity demo plan of ``--size`` (teacher + ce /
one-shot / progressive / two-shot students) and sweeps every probe over every checkpoint:

- **local**: ``run_sweep`` in this process, torch single-threaded (as a 1-CPU Ray worker);
- **ray-1 / ray-2**: a fresh local Ray instance with 1 / 2 CPUs (so 1 / 2 worker processes),
  one streaming task per run. The instance start and the workers' first import are timed
  apart ("startup": paid once per command) from the sweep itself (workers warm);
- **overhead per unit**: (ray-1 sweep - local sweep) / units: everything Ray adds per unit
  on one worker (shipping the block, streaming each outcome back, the driver's wait loop),
  and a no-op stream (a task yielding N small items) for the bare per-item cost.

Each configuration sweeps its own fresh copy of the experiment; the tables are checked to
be identical to the local one. Ratios are against the local executor measured in the same
run. The machine is shared with other jobs: the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from curriculens import constants as C  # noqa: E402
from curriculens.executor import ExecutorConfig, stream_tasks  # noqa: E402
from probes.store import ResultsStore  # noqa: E402
from probes.sweep import SweepConfig, run_sweep  # noqa: E402
from training.plans import PARITY_SIZES, parity_students_for, parity_teacher_config, run_plan  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _noop(n: int):
    yield from range(n)


def _warm() -> int:
    import probes.sweep  # noqa: F401 - what a sweep block imports first

    return os.getpid()


def table(exp: Path) -> pd.DataFrame:
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        return store.query()


def fresh(src: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json", "failed.jsonl"))
    return dst


def sweep(src: Path, dst: Path, cfg: SweepConfig, executor: ExecutorConfig) -> tuple[float, int, pd.DataFrame]:
    exp = fresh(src, dst)
    t0 = time.perf_counter()
    res = run_sweep(exp, cfg, executor=executor)
    wall = time.perf_counter() - t0
    assert res.n_failed == 0 and res.n_done == res.n_units
    return wall, res.n_units, table(exp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="tiny", choices=tuple(PARITY_SIZES))
    ap.add_argument("--n-probe", type=int, default=20000, help="probe inputs per checkpoint (parity option n_probe)")
    ap.add_argument("--noop-items", type=int, default=2000)
    args = ap.parse_args()
    import ray

    torch.set_num_threads(1)
    load0 = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    lines = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    try:
        size = PARITY_SIZES[args.size]
        exp = root / "exp"
        t0 = time.perf_counter()
        run_plan(exp, parity_teacher_config(size, device="cpu"), lambda e, t: parity_students_for(e, size, t))
        n_ckpt = sum(1 for _ in exp.glob("runs/*/checkpoints/step_*"))
        say(
            f"experiment: parity {args.size}, 5 runs, {n_ckpt} checkpoints (trained in {time.perf_counter() - t0:.0f} s)"
        )
        cfg = SweepConfig(device="cpu", options={"n_probe": args.n_probe})
        t_local, n_units, ref = sweep(exp, root / "local", cfg, ExecutorConfig())
        say(
            f"sweep: probes model, fourier, linear; n_probe {args.n_probe}; {n_units} units, 1 torch thread per process"
        )
        say("")
        say(f"{'executor':<10} {'startup s':>10} {'sweep s':>8} {'units/s':>8} {'vs local':>9}")
        say(f"{'local':<10} {'-':>10} {t_local:8.2f} {n_units / t_local:8.2f} {1.0:8.2f}x")
        walls = {}
        noop = {}
        for workers in (1, 2):
            t0 = time.perf_counter()
            ray.init(
                address="local",
                num_cpus=workers,
                object_store_memory=128 * 2**20,
                include_dashboard=False,
                logging_level="WARNING",
            )
            try:
                pids = set(ray.get([ray.remote(_warm).remote() for _ in range(4 * workers)]))
                startup = time.perf_counter() - t0
                wall, n, df = sweep(exp, root / f"ray{workers}", cfg, ExecutorConfig(kind="ray"))
                pd.testing.assert_frame_equal(df, ref)
                walls[workers] = wall
                t0 = time.perf_counter()
                assert (
                    sum(1 for _ in stream_tasks(ExecutorConfig(kind="ray"), _noop, [(args.noop_items,)]))
                    == args.noop_items
                )
                noop[workers] = (time.perf_counter() - t0) / args.noop_items
            finally:
                ray.shutdown()
            say(
                f"{f'ray-{workers}':<10} {startup:10.1f} {wall:8.2f} {n / wall:8.2f} {t_local / wall:8.2f}x   ({len(pids)} worker processes; table == local)"
            )
        say("")
        say(
            f"Ray overhead per unit (ray-1 sweep - local sweep) / units: {1000 * (walls[1] - t_local) / n_units:.1f} ms"
        )
        say(
            f"bare per-item cost of a streaming task ({args.noop_items} no-op items): {1000 * noop[1]:.2f} ms (ray-1), {1000 * noop[2]:.2f} ms (ray-2)"
        )
        load1 = os.getloadavg()
        say(
            f"machine: {os.cpu_count()} CPUs shared with other jobs; load average {load0[0]:.1f} at start, {load1[0]:.1f} at end"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray_sweep.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
