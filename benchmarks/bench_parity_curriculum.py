"""Benchmark: the paper's central parity claim at CPU scale, over several seeds.

For each seed: train an MLP teacher on (n, k)-sparse parity, then ce / one-shot / progressive /
two-shot students (two-shot: the teacher's mid-transition checkpoint for T steps, then the final
one). Measures the student steps to reach 95 % held-out accuracy (evaluated every 500 steps),
their ratios against the CE baseline trained in the same run, and, from the Fourier probe on
every teacher checkpoint, where the in-support degree-1 correlation peaks relative to the
teacher's accuracy transition (and its peak against the off-support level).

    python -m benchmarks.bench_parity_curriculum --seeds 0 1 2            # the calibrated (60, 5) setting
    python -m benchmarks.bench_parity_curriculum --size small --seeds 0   # minutes

Training is resumable: rerunning reuses finished runs. Results: benchmarks/results/parity_<size>.json.
"""

from __future__ import annotations

import argparse
import json
import os

# idle OpenMP threads sleep instead of spinning (matters on a shared 2-core machine); before torch
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import statistics
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from curriculens import constants as C  # noqa: E402
from curriculens.curves import first_crossing  # noqa: E402
from curriculens.io import read_json, write_json  # noqa: E402
from training.experiment import read_metrics, steps_to_acc  # noqa: E402
from training.plans import PARITY_SIZES, parity_students_for, parity_teacher_config, run_plan  # noqa: E402

TARGET = 0.95
METHODS = C.PAPER_METHODS


def fourier_analysis(exp: Path, teacher_rows: list[dict]) -> dict:
    """Per degree d: in-support vs off-support mean correlation over the teacher's checkpoints,
    where the in-support mean peaks, and where that lies relative to the accuracy transition."""
    from probes.store import ResultsStore
    from probes.sweep import SweepConfig, run_sweep

    run_sweep(exp, SweepConfig(probes=("fourier",), runs=("teacher",), device="cpu"), progress=False)
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        df = store.query("run = 'teacher' AND probe = 'fourier' AND metric = 'corr'")
    acc = {r["step"]: r["eval_acc"] for r in teacher_rows}
    steps, accs = list(acc), list(acc.values())
    out = {
        "transition_start": first_crossing(steps, accs, 0.6),
        "transition_end": first_crossing(steps, accs, 0.99),
        "degrees": {},
    }
    for d, sub in df.groupby("degree"):
        ins = sub[sub.in_support == 1].groupby("step").value.mean()
        off = sub[sub.in_support == 0].groupby("step").value.mean()
        peak = int(ins.idxmax())
        out["degrees"][int(d)] = {
            "in_support_peak_step": peak,
            "in_support_peak": float(ins.max()),
            "off_support_at_peak": float(off.loc[peak]),
            "off_support_max": float(off.max()),
            "in_support_at_step0": float(ins.iloc[0]),
            "in_support_final": float(ins.iloc[-1]),
            "teacher_acc_at_peak": acc.get(peak),
        }
    return out


def train_seed(out: Path, size_name: str, seed: int, max_student_steps: int | None) -> Path:
    size = PARITY_SIZES[size_name]
    if max_student_steps:
        size = replace(size, student_steps=max_student_steps)
    exp = out / f"seed{seed}"
    teacher = parity_teacher_config(size, seed=seed, device="cpu")

    def students_for(e, t):
        return [replace(s, stop_at_acc=0.99) for s in parity_students_for(e, size, t, seeds=(seed,))]

    def on_run(cfg, res):
        print(f"  seed {seed}: {cfg.name} {res.steps} steps, {res.wall_s:.0f}s", flush=True)

    run_plan(exp, teacher, students_for, progress=False, on_run=on_run)
    return exp


def run_seed(out: Path, size_name: str, seed: int, max_student_steps: int | None) -> dict:
    exp = out / f"seed{seed}"
    wall = sum(json.loads((p / C.DONE_FILE).read_text())["wall_s"] for p in (exp / C.RUNS_DIR).iterdir())
    t_rows = read_metrics(exp / C.RUNS_DIR / "teacher")
    result = {
        "seed": seed,
        "teacher_steps_to_95": steps_to_acc(t_rows, TARGET),
        "teacher_steps_to_99": steps_to_acc(t_rows, 0.99),
        "wall_s": wall,
    }
    for run_dir in sorted((exp / C.RUNS_DIR).iterdir()):
        if run_dir.name == "teacher":
            continue
        method = next(m for m in METHODS if run_dir.name.startswith(m))
        result[method] = steps_to_acc(read_metrics(run_dir), TARGET)
        if method == C.METHOD_TWO_SHOT:  # the checkpoint the student used, from its config
            result["two_shot_checkpoint"] = int(read_json(run_dir / C.RUN_CONFIG_FILE)["distill"]["two_shot_step"])
    result["fourier"] = fourier_analysis(exp, t_rows)
    return result


def fmt(v):
    return "not reached" if v is None else f"{v:,}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="bench", choices=sorted(PARITY_SIZES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "runs"))
    ap.add_argument("--max-student-steps", type=int, default=None)
    args = ap.parse_args()
    size = PARITY_SIZES[args.size]
    print(f"parity benchmark, size {args.size}: {size}")
    for seed in args.seeds:  # train everything first (resumable), then analyse
        train_seed(Path(args.out) / args.size, args.size, seed, args.max_student_steps)
    results = []
    for seed in args.seeds:
        r = run_seed(Path(args.out) / args.size, args.size, seed, args.max_student_steps)
        results.append(r)
        f = r["fourier"]
        print(
            f"seed {seed}: teacher 95% at {fmt(r['teacher_steps_to_95'])}, 99% at {fmt(r['teacher_steps_to_99'])}; "
            + ", ".join(f"{m} {fmt(r.get(m))}" for m in METHODS)
            + f" (two-shot ckpt {r.get('two_shot_checkpoint')}); wall {r['wall_s']:.0f}s"
        )
        print(f"  teacher transition (acc 0.6 -> 0.99): {fmt(f['transition_start'])} -> {fmt(f['transition_end'])}")
        for d, v in sorted(f["degrees"].items()):
            print(
                f"  degree {d}: in-support mean corr peaks at step {v['in_support_peak_step']:,} "
                f"(teacher acc {v['teacher_acc_at_peak']:.3f}): {v['in_support_peak']:.4f} vs off-support "
                f"{v['off_support_at_peak']:.4f} there (x{v['in_support_peak'] / max(v['off_support_at_peak'], 1e-12):.1f}); "
                f"in-support at step 0 {v['in_support_at_step0']:.4f}, final {v['in_support_final']:.4f}"
            )
    print("\nratios of steps to 95% against the CE student of the same seed (lower = faster):")
    summary = {}
    for m in (C.METHOD_ONE_SHOT, C.METHOD_PROGRESSIVE, C.METHOD_TWO_SHOT):
        ratios = [r[m] / r[C.METHOD_CE] for r in results if r.get(m) and r.get(C.METHOD_CE)]
        if ratios:
            sd = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
            summary[f"{m}/ce"] = {"mean": statistics.mean(ratios), "sd": sd, "n": len(ratios)}
            print(f"  {m:>12} / ce: {statistics.mean(ratios):.2f} +- {sd:.2f} over {len(ratios)} seed(s)")
    pr = [
        r[C.METHOD_PROGRESSIVE] / r[C.METHOD_ONE_SHOT]
        for r in results
        if r.get(C.METHOD_PROGRESSIVE) and r.get(C.METHOD_ONE_SHOT)
    ]
    if pr:
        summary["progressive/one-shot"] = {"mean": statistics.mean(pr), "n": len(pr)}
        print(f"  progressive / one-shot: {statistics.mean(pr):.2f} over {len(pr)} seed(s)")
    out = ROOT / "benchmarks" / "results" / f"parity_{args.size}.json"
    write_json(
        out, {"size": args.size, "config": size.__dict__, "target": TARGET, "seeds": results, "summary": summary}
    )
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
