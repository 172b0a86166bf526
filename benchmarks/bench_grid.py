"""Benchmark: student-steps per second of a grid of E students against E sequential runs.

Setting: (60, 5) parity, a width-8000 MLP teacher (trained briefly: only its cost matters),
width-50 students, batch 32, SGD. For E in (1, 4, 12, 32) and two student mixes,

- ``ce``: E cross-entropy students (no teacher);
- ``one-shot``: E one-shot students (one shared teacher forward per step);
- ``mixed``: ce / one-shot / progressive / two-shot in turn (up to 3 teacher checkpoints per step),

it trains the E students with ``train_grid`` and, as the baseline in the same run, the same E
configs one after the other with ``train_run`` (today's per-run loop), each for ``--steps``
steps with evaluation only at the start and the end, and prints student-steps/s and the ratio.
Both sides are timed the same way (``benchmarks.timing``): one torch thread, CPU time, after
one untimed warm-up of each (a grid and a run of 20 steps), ``--repeats`` interleaved repeats
(the first side alternates), the median kept; the load average is printed.

    nice -n 5 python -m benchmarks.bench_grid [--steps 600] [--sizes 1 4 12 32] [--repeats 1]

Results: benchmarks/results/grid_throughput.json and .txt.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402

from benchmarks.timing import load, timed  # noqa: E402
from curriculens import constants as C  # noqa: E402
from curriculens.io import write_json  # noqa: E402
from training.config import CheckpointConfig  # noqa: E402
from training.experiment import init_experiment  # noqa: E402
from training.grid import train_grid  # noqa: E402
from training.gridspec import GridSpec, grid_configs  # noqa: E402
from training.loop import train_run  # noqa: E402
from training.plans import ParityDemoSize, parity_teacher_config  # noqa: E402

MIXES = {
    "ce": ("ce",),
    "one-shot": ("one-shot",),
    "mixed": ("ce", "one-shot", "progressive", "two-shot"),
}


def configs(exp: Path, mix: str, e: int, steps: int, device: str):
    methods = MIXES[mix]
    seeds = tuple(range((e + len(methods) - 1) // len(methods)))
    spec = GridSpec(
        methods=methods,
        seeds=seeds,
        widths=(50,),
        steps=steps,
        save_every=steps,
        eval_every=0,
        two_shot_steps=(100,),
        two_shot_T=steps // 2,
        device=device,
        stream_seed=0,
    )
    return grid_configs(exp, spec)[:e]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 12, 32])
    ap.add_argument("--mixes", nargs="+", default=list(MIXES))
    ap.add_argument("--teacher-width", type=int, default=8000)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=None, help="results file stem (default benchmarks/results/grid_throughput)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench_grid_"))
    lines = [
        f"grid throughput: ({args.n}, 5) parity, teacher width {args.teacher_width}, students width 50, batch 32, "
        f"{args.steps} steps each, device {args.device}, one torch thread, CPU time, median of {args.repeats} "
        f"interleaved repeat(s) after a warm-up; machine: {load()} at start"
    ]

    def say(msg: str) -> None:
        print(msg, flush=True)
        lines.append(msg)

    try:
        size = ParityDemoSize(args.n, 5, args.teacher_width, 50, 300, args.steps, 100, args.steps, 0)
        teacher = parity_teacher_config(size, device=args.device)
        teacher = replace(teacher, checkpoints=CheckpointConfig(save_every=100))
        exp = work / "exp"
        init_experiment(exp, teacher.task)
        train_run(teacher, exp / C.RUNS_DIR / "teacher")
        rows = []

        def sides(cfgs):
            def clean():
                for c in cfgs:
                    shutil.rmtree(exp / C.RUNS_DIR / c.name)

            def grid():
                train_grid(cfgs, exp / C.RUNS_DIR)
                clean()

            def sequential():
                for c in cfgs:
                    train_run(c, exp / C.RUNS_DIR / c.name)
                clean()

            return {"grid": grid, "sequential": sequential}

        warm = sides(configs(exp, "mixed", 4, 20, args.device))
        warm["grid"](), warm["sequential"]()  # imports, first allocations: outside every timing
        for mix in args.mixes:
            for e in args.sizes:
                both = sides(configs(exp, mix, e, args.steps, args.device))
                cpu: dict[str, list[float]] = {"grid": [], "sequential": []}
                for r in range(args.repeats):
                    for name in ("grid", "sequential") if r % 2 == 0 else ("sequential", "grid"):
                        cpu[name].append(timed(both[name]).cpu)
                grid_s, seq_s = statistics.median(cpu["grid"]), statistics.median(cpu["sequential"])
                n = e * args.steps
                row = {
                    "mix": mix,
                    "E": e,
                    "grid_s": grid_s,
                    "sequential_s": seq_s,
                    "grid_student_steps_per_s": n / grid_s,
                    "sequential_student_steps_per_s": n / seq_s,
                    "speedup": seq_s / grid_s,
                    "clock": "cpu",
                    "load": load(),
                }
                rows.append(row)
                say(
                    f"  {mix:<9} E={e:>3}: grid {n / grid_s:8.0f} student-steps/s, {e} sequential runs "
                    f"{n / seq_s:7.0f}/s -> {seq_s / grid_s:5.2f}x   ({load()})"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stem = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / "grid_throughput"
    write_json(stem.with_suffix(".json"), {"args": vars(args), "rows": rows})
    stem.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
