"""GPU benchmark: the paper-scale parity teacher and grid throughput, in under 10 minutes on one GPU.

The one command to run whenever a GPU is available:

    python -m benchmarks.bench_gpu                  # CUDA: paper scale
    python -m benchmarks.bench_gpu --tiny --device cpu   # a seconds-long check of the script itself

Measures, each with the project's own training code (``train_run`` / ``train_grid``):

1. the paper's MLP teacher: (100, 6)-parity, width 50,000, batch 1, SGD: steps per second over
   ``--teacher-steps`` steps (after a warm-up run), hence hours per 20M steps (the paper's run);
2. a grid of width-100 students of that teacher (batch 1, one-shot and progressive in turn, the
   paper's setting) at E = 1, 16, 64, 256: student-steps per second over ``--student-steps``
   steps, and the ratio against E = 1.

Results: benchmarks/results/gpu.json and .txt (the device name is recorded).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402

from curriculens import constants as C  # noqa: E402
from curriculens.device import resolve_device  # noqa: E402
from curriculens.io import write_json  # noqa: E402
from training.config import CheckpointConfig, OptimConfig, RunConfig  # noqa: E402
from training.experiment import init_experiment  # noqa: E402
from training.grid import train_grid  # noqa: E402
from training.gridspec import GridSpec, grid_configs  # noqa: E402
from training.loop import train_run  # noqa: E402


def teacher_config(n: int, k: int, width: int, steps: int, device: str, name: str = "teacher") -> RunConfig:
    return RunConfig(
        name=name,
        role=C.ROLE_TEACHER,
        task={"name": "parity", "n": n, "k": k, "n_eval": 1024},
        model={"kind": "mlp", "d_in": n, "width": width, "depth": 1, "n_classes": 2},
        optim=OptimConfig(name="sgd", lr=1e-3),
        checkpoints=CheckpointConfig(save_every=max(1, steps // 4)),
        steps=steps,
        batch_size=1,
        seed=0,
        device=device,
    )


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (CPU check of the script)")
    ap.add_argument("--teacher-steps", type=int, default=20_000)
    ap.add_argument("--student-steps", type=int, default=2_000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--out", default=None, help="results file stem (default benchmarks/results/gpu)")
    args = ap.parse_args()
    device = str(resolve_device(args.device))
    n, k, t_width, s_width = (100, 6, 50_000, 100) if not args.tiny else (20, 3, 500, 16)
    t_steps, s_steps = (args.teacher_steps, args.student_steps) if not args.tiny else (200, 50)
    sizes = args.sizes if not args.tiny else [1, 4, 16]
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)"
    lines = [f"bench_gpu on {name}{' (tiny sizes: a check of the script, not a measurement)' if args.tiny else ''}"]

    def say(msg: str) -> None:
        print(msg, flush=True)
        lines.append(msg)

    work = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    out = {"device": name, "tiny": args.tiny, "teacher": {}, "grid": []}
    try:
        exp = work / "exp"
        init_experiment(exp, {"name": "parity", "n": n, "k": k, "n_eval": 1024})
        train_run(
            teacher_config(n, k, t_width, 20, device, "warmup"), exp / C.RUNS_DIR / "warmup"
        )  # CUDA init, kernels
        shutil.rmtree(exp / C.RUNS_DIR / "warmup")
        _sync(device)
        t0 = time.perf_counter()
        train_run(teacher_config(n, k, t_width, t_steps, device), exp / C.RUNS_DIR / "teacher")
        _sync(device)
        dt = time.perf_counter() - t0
        sps = t_steps / dt
        out["teacher"] = {
            "n": n,
            "k": k,
            "width": t_width,
            "batch": 1,
            "steps": t_steps,
            "wall_s": dt,
            "steps_per_s": sps,
            "hours_per_20M_steps": 20e6 / sps / 3600,
        }
        say(
            f"teacher ({n}, {k}) width {t_width:,} batch 1: {sps:,.0f} steps/s (incl. {4} checkpoints and evals) "
            f"-> {20e6 / sps / 3600:.1f} h per 20M steps"
        )
        base = None
        for e in sizes:
            methods = (C.METHOD_ONE_SHOT, C.METHOD_PROGRESSIVE)
            seeds = tuple(range((e + 1) // 2))
            spec = GridSpec(
                methods=methods,
                seeds=seeds,
                widths=(s_width,),
                steps=s_steps,
                save_every=s_steps,
                eval_every=0,
                batch_size=1,
                device=args.device,
                stream_seed=0,
            )
            cfgs = [replace(c, name=f"E{e}-{c.name}") for c in grid_configs(exp, spec)[:e]]
            cfgs = [replace(c, distill=replace(c.distill, teacher_dir="../teacher")) for c in cfgs]
            _sync(device)
            t0 = time.perf_counter()
            train_grid(cfgs, exp / C.RUNS_DIR)
            _sync(device)
            dt = time.perf_counter() - t0
            rate = e * s_steps / dt
            base = base or rate
            out["grid"].append(
                {"E": e, "steps": s_steps, "wall_s": dt, "student_steps_per_s": rate, "vs_E1": rate / base}
            )
            say(f"grid E={e:>4}: {rate:,.0f} student-steps/s ({rate / base:.1f}x E=1), {dt:.1f}s for {s_steps} steps")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stem = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / ("gpu_tiny_check" if args.tiny else "gpu")
    write_json(stem.with_suffix(".json"), out)
    stem.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
