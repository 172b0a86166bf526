"""Benchmark: the (2, T) two-shot sweep and how well ``curriculens recommend`` picks a checkpoint.

For each seed: the parity teacher of size small ((50, 4), MLP width 4000, 10k steps, a checkpoint every
500), then one grid of two-shot students, one per teacher checkpoint before the final one
(width 100, T = 2000 steps on it, then the final teacher; up to 24k steps, stopping at 95 %;
student seed = teacher seed, its own data stream). The recommendation (``training.recommend``,
teacher-only) is scored against the measured speeds: the rank of its pick and its steps over
the best checkpoint's.

    nice -n 5 python -m benchmarks.bench_two_shot_sweep [--seeds 0 1 2]

Results: benchmarks/results/two_shot_sweep.json and .txt.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

from curriculens import constants as C  # noqa: E402
from curriculens.io import read_json, write_json  # noqa: E402
from training.experiment import init_experiment  # noqa: E402
from training.grid import train_grid  # noqa: E402
from training.gridspec import GridSpec, grid_configs  # noqa: E402
from training.loop import train_run  # noqa: E402
from training.plans import PARITY_SIZES, parity_teacher_config  # noqa: E402
from training.recommend import recommend, score_sweep, sweep_speeds  # noqa: E402

TARGET = 0.95


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--size", default="small")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "runs" / "sweep"))
    args = ap.parse_args()
    size = PARITY_SIZES[args.size]
    lines = [
        f"two-shot sweep, parity size {args.size} ({size.n}, {size.k}), teacher width {size.teacher_width}, "
        f"students width {size.student_width}, T = {size.two_shot_T}, up to {size.student_steps} steps, "
        f"target {TARGET:.0%}; machine: 2 shared CPU cores under heavy load (nice -n 5)"
    ]

    def say(msg: str) -> None:
        print(msg, flush=True)
        lines.append(msg)

    out = {"config": size.__dict__, "target": TARGET, "seeds": []}
    for seed in args.seeds:
        exp = Path(args.out) / args.size / f"seed{seed}"
        teacher = parity_teacher_config(size, seed=seed, device="cpu")
        init_experiment(exp, teacher.task)
        train_run(teacher, exp / C.RUNS_DIR / "teacher")
        spec = GridSpec(
            methods=(C.METHOD_TWO_SHOT,),
            seeds=(seed,),
            widths=(size.student_width,),
            two_shot_steps="all",
            two_shot_T=size.two_shot_T,
            steps=size.student_steps,
            save_every=size.student_save_every,
            eval_every=size.eval_every,
            stop_at_acc=TARGET,
            device="cpu",
        )
        cfgs = grid_configs(exp, spec)
        train_grid(cfgs, exp / C.RUNS_DIR)
        wall = max(read_json(exp / C.RUNS_DIR / c.name / C.DONE_FILE)["wall_s"] for c in cfgs)
        rec = recommend(exp)
        score = score_sweep(exp, rec["pick"], TARGET)
        speeds = sweep_speeds(exp, TARGET)[seed]
        s = score["seeds"][0]
        say(
            f"seed {seed}: {len(cfgs)} two-shot students in one grid, {wall:.0f}s; teacher transition "
            f"{rec['transition']}; pick {rec['pick']} ranks {s['rank']} of {s['n_checkpoints']} "
            f"(steps {s['pick_steps']}); best {s['best']} (steps {s['best_steps']}); pick/best "
            f"{s['pick_over_best'] if s['pick_over_best'] is None else round(s['pick_over_best'], 2)}"
        )
        say(
            "  steps to 95% by teacher checkpoint: "
            + ", ".join(f"{k}: {'-' if v[0] == float('inf') else v[0]}" for k, v in sorted(speeds.items()))
        )
        out["seeds"].append(
            {
                "seed": seed,
                "grid_wall_s": wall,
                "recommendation": rec,
                "score": s,
                "speeds": {str(k): (None if v[0] == float("inf") else v[0]) for k, v in speeds.items()},
            }
        )
    ranks = [r["score"]["rank"] for r in out["seeds"]]
    ratios = [r["score"]["pick_over_best"] for r in out["seeds"] if r["score"]["pick_over_best"] is not None]
    say(
        f"pick rank per seed {ranks} (1 = fastest of its sweep); pick steps / best steps: "
        + (
            f"mean {statistics.mean(ratios):.2f} over {len(ratios)} seed(s)"
            if ratios
            else "pick never reached the target"
        )
    )
    res = ROOT / "benchmarks" / "results"
    write_json(res / "two_shot_sweep.json", out)
    (res / "two_shot_sweep.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
