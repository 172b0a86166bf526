"""Benchmark: a grid of one student against the same student trained as a single run.

Both sides train one student config for ``--steps`` steps (evaluation only at the start and
the end, as ``benchmarks.bench_grid``): ``train_run(cfg)`` and ``train_grid([cfg])``. Each
measurement is a fresh worker process (imports, the teacher load and one warm-up run outside
the timing, one torch thread) that reports the CPU time (``time.process_time``) of one call;
the sides are interleaved within every repeat, so a change in machine load hits both. With
``--baseline-root DIR`` the same two sides also run from another checkout (e.g. the main branch
before the one-engine change), interleaved with this one. The load average is printed.

Setting: (60, 5) parity, width-2000 MLP teacher (300 SGD steps, only its cost matters),
width-50 students, batch 32, SGD; methods ce, one-shot, progressive (one student each).

    nice -n 5 python -m benchmarks.bench_grid_of_one [--steps 600] [--repeats 5] [--baseline-root /work/main]

Results: benchmarks/results/grid_of_one.json and .txt.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("ce", "one-shot", "progressive")
SIDES = ("single", "grid")


def _student(exp: Path, method: str, steps: int):
    from training.gridspec import GridSpec, grid_configs

    spec = GridSpec(
        methods=(method,),
        seeds=(0,),
        widths=(50,),
        steps=steps,
        save_every=steps,
        eval_every=0,
        device="cpu",
        stream_seed=0,
    )
    return grid_configs(exp, spec)[0]


def worker(exp: Path, method: str, side: str, steps: int) -> dict:
    """One measurement in this process: a warm-up run, then the timed one (CPU seconds)."""
    import shutil
    import time

    import torch

    torch.set_num_threads(1)
    import training
    from curriculens import constants as C
    from training.grid import train_grid
    from training.loop import train_run

    cfg = _student(exp, method, steps)
    runs = exp / C.RUNS_DIR
    train = (lambda c: train_run(c, runs / c.name)) if side == "single" else (lambda c: train_grid([c], runs))
    warm = cfg.replace(name=cfg.name + "-warm", steps=min(steps, 50))
    out = {"code": str(Path(training.__file__).resolve().parents[1])}
    for c, timed in ((warm, False), (cfg, True)):
        shutil.rmtree(runs / c.name, ignore_errors=True)
        t0 = time.process_time()
        train(c)
        if timed:
            out["cpu_s"] = time.process_time() - t0
        shutil.rmtree(runs / c.name, ignore_errors=True)
    return out


def _measure(root: Path, exp: Path, method: str, side: str, steps: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    # run as a script (not -m), so the code imported is the checkout on PYTHONPATH, not this one
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(exp), method, side, str(steps)]
    res = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if Path(out["code"]) != root:
        raise RuntimeError(f"worker imported {out['code']}, not {root}")
    return out["cpu_s"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--baseline-root", default=None, help="another checkout to run the same sides from")
    ap.add_argument("--out", default=None, help="results file stem (default benchmarks/results/grid_of_one)")
    ap.add_argument("--worker", nargs=4, metavar=("EXP", "METHOD", "SIDE", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        exp, method, side, steps = args.worker
        print(json.dumps(worker(Path(exp), method, side, int(steps))))
        return 0

    from dataclasses import replace

    import torch

    from curriculens import constants as C
    from curriculens.io import write_json
    from training.config import CheckpointConfig
    from training.experiment import init_experiment
    from training.loop import train_run
    from training.plans import ParityDemoSize, parity_teacher_config

    torch.set_num_threads(1)
    roots = {"this": ROOT}
    if args.baseline_root:
        roots["baseline"] = Path(args.baseline_root).resolve()
    work = Path(tempfile.mkdtemp(prefix="bench_grid_of_one_"))
    exp = work / "exp"
    teacher = parity_teacher_config(ParityDemoSize(60, 5, 2000, 50, 300, args.steps, 100, args.steps, 0), device="cpu")
    init_experiment(exp, teacher.task)
    train_run(replace(teacher, checkpoints=CheckpointConfig(save_every=100)), exp / C.RUNS_DIR / "teacher")
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {}
    for r in range(args.repeats):
        for method in args.methods:
            for label, root in roots.items():
                for side in SIDES:
                    key = f"{label}/{method}/{side}"
                    times.setdefault(key, []).append(_measure(root, exp, method, side, args.steps))
        print(f"repeat {r + 1}/{args.repeats} done, load {os.getloadavg()[0]:.2f}", flush=True)
    load_after = os.getloadavg()
    lines = [
        f"grid of one vs single run: (60, 5) parity, teacher width 2000, student width 50, batch 32, SGD, "
        f"{args.steps} steps, evaluation at start and end only; CPU seconds (process_time) of one call in a "
        f"fresh worker after a warm-up run, 1 torch thread, {args.repeats} interleaved repeats; "
        f"load average (1, 5, 15 min) before {load_before}, after {load_after}; checkouts {roots}",
        f"{'checkout':<9} {'method':<12} {'single s (median, min-max)':>28} {'grid s (median, min-max)':>28} "
        f"{'single/grid':>11}",
    ]
    rows = []
    for label in roots:
        for method in args.methods:
            s, g = times[f"{label}/{method}/single"], times[f"{label}/{method}/grid"]
            ratio = statistics.median(s) / statistics.median(g)
            rows.append({"checkout": label, "method": method, "single_cpu_s": s, "grid_cpu_s": g, "ratio": ratio})
            lines.append(
                f"{label:<9} {method:<12} {statistics.median(s):>12.3f} ({min(s):.3f}-{max(s):.3f})"
                f" {statistics.median(g):>14.3f} ({min(g):.3f}-{max(g):.3f}) {ratio:>11.2f}"
            )
    print("\n".join(lines))
    stem = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / "grid_of_one"
    write_json(stem.with_suffix(".json"), {"args": vars(args), "load": [load_before, load_after], "rows": rows})
    stem.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
