"""Benchmark: the (60, 5) three-seed parity benchmark with each seed's students trained as one grid.

Per seed: the teacher of ``bench_parity_curriculum.py`` (same config, resumable), then its
ce / one-shot / progressive / two-shot (mid-transition checkpoint) students, the same configs as
the per-run benchmark (stop at 99 %), plus a curriculum-extraction student, all in one
``train_grid``. Baseline measured in the same run: the progressive and two-shot students of
each seed trained again alone with ``train_run`` (the per-run loop): wall-clock ratio and
whether steps-to-95 % agree. The ce / one-shot students (150k steps each) are compared with
the committed per-run results in ``benchmarks/results/parity_bench.json`` (steps only).

    nice -n 5 python -m benchmarks.bench_parity_grid                 # 3 seeds
    nice -n 5 python -m benchmarks.bench_parity_grid --seeds 0 --no-baseline

Results: benchmarks/results/parity_grid.json and .txt (the printed report).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import sys  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

from curriculens import constants as C  # noqa: E402
from curriculens.io import read_json, write_json  # noqa: E402
from training.experiment import init_experiment, list_runs, read_metrics, steps_to_acc  # noqa: E402
from training.grid import train_grid  # noqa: E402
from training.loop import train_run  # noqa: E402
from training.plans import PARITY_SIZES, parity_students_for, parity_teacher_config  # noqa: E402

TARGET = 0.95
EXTRACT_STEPS = 10_000


def students(exp: Path, size, teacher, seed: int):
    cfgs = [replace(s, stop_at_acc=0.99) for s in parity_students_for(exp, size, teacher, seeds=(seed,))]
    one_shot = next(c for c in cfgs if c.distill.method == C.METHOD_ONE_SHOT)
    ext = replace(
        one_shot,
        name=f"curriculum-extraction-s{seed}",
        distill=replace(one_shot.distill, method=C.METHOD_CURRICULUM_EXTRACTION, extract_steps=EXTRACT_STEPS),
    )
    return cfgs + [ext]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "runs" / "grid"))
    ap.add_argument(
        "--no-baseline", action="store_true", help="skip the per-run re-training of progressive and two-shot"
    )
    ap.add_argument("--report-only", action="store_true", help="train nothing: report the finished runs under --out")
    args = ap.parse_args()
    size = PARITY_SIZES["bench"]
    ref_path = ROOT / "benchmarks" / "results" / "parity_bench.json"
    ref = {r["seed"]: r for r in read_json(ref_path)["seeds"]} if ref_path.is_file() else {}
    lines = [
        f"parity grid benchmark (60, 5), seeds {args.seeds}; machine: 2 shared CPU cores (nice -n 5, other jobs running)"
    ]

    def say(msg: str) -> None:
        print(msg, flush=True)
        lines.append(msg)

    out = {"config": size.__dict__, "extract_steps": EXTRACT_STEPS, "seeds": []}
    for seed in args.seeds:
        exp = Path(args.out) / f"seed{seed}"
        teacher = parity_teacher_config(size, seed=seed, device="cpu")
        init_experiment(exp, teacher.task)
        if args.report_only:
            cfgs = [r.config for r in list_runs(exp) if r.role == C.ROLE_STUDENT and r.done]
        else:
            train_run(teacher, exp / C.RUNS_DIR / "teacher")
            cfgs = students(exp, size, teacher, seed)
            train_grid(cfgs, exp / C.RUNS_DIR)
        t_wall = read_json(exp / C.RUNS_DIR / "teacher" / C.DONE_FILE)["wall_s"]
        # the grid's wall clock: done.json's wall_s is the time since the grid started (kept runs too)
        g_wall = max(read_json(exp / C.RUNS_DIR / c.name / C.DONE_FILE)["wall_s"] for c in cfgs)
        rec = {"seed": seed, "teacher_wall_s": t_wall, "grid_wall_s": g_wall, "students": {}}
        for c in cfgs:
            m = c.distill.method
            hit = steps_to_acc(read_metrics(exp / C.RUNS_DIR / c.name), TARGET)
            steps_run = read_json(exp / C.RUNS_DIR / c.name / C.DONE_FILE)["steps"]
            rec["students"][m] = {
                "run": c.name,
                "steps_to_95": hit,
                "steps_run": steps_run,
                "per_run_ref": ref.get(seed, {}).get(m, "n/a"),
            }
        say(f"seed {seed}: teacher {t_wall:.0f}s; grid of {len(cfgs)} students {g_wall:.0f}s")
        for m, s in rec["students"].items():
            say(
                f"  {m:<22} steps to 95%: {s['steps_to_95']}  (per-run loop, committed parity_bench.json: {s['per_run_ref']})"
            )
        if not args.no_baseline and (not args.report_only or (exp / "baseline").is_dir()):
            base_dir = exp / "baseline"
            init_experiment(base_dir, teacher.task)
            t_dir = str((exp / C.RUNS_DIR / "teacher").resolve())
            b_wall, b = 0.0, {}
            for c in cfgs:
                if c.distill.method not in (C.METHOD_PROGRESSIVE, C.METHOD_TWO_SHOT):
                    continue
                cb = c.replace(distill=replace(c.distill, teacher_dir=t_dir))
                if not args.report_only:
                    train_run(cb, base_dir / C.RUNS_DIR / c.name)
                elif not (base_dir / C.RUNS_DIR / c.name / C.DONE_FILE).is_file():
                    say(f"  per-run loop, same run: {c.name} did not finish (the run was stopped)")
                    continue
                b_wall += read_json(base_dir / C.RUNS_DIR / c.name / C.DONE_FILE)["wall_s"]
                b[c.distill.method] = steps_to_acc(read_metrics(base_dir / C.RUNS_DIR / c.name), TARGET)
            g_pt = {m: read_json(exp / C.RUNS_DIR / rec["students"][m]["run"] / C.DONE_FILE)["wall_s"] for m in b}
            rec["baseline"] = {"per_run_wall_s": b_wall, "steps_to_95": b, "grid_wall_at_their_stop_s": g_pt}
            same = all(b[m] == rec["students"][m]["steps_to_95"] for m in b)
            done_b = ", ".join(f"{m} {v}" for m, v in b.items())
            say(
                f"  per-run loop, same run: steps to 95% {done_b} ({'equal to' if same else 'DIFFERENT from'} the grid); "
                f"per-run wall {b_wall:.0f}s; the grid had finished {', '.join(b)} after "
                f"{max(g_pt.values(), default=0):.0f}s while training all {len(cfgs)} students"
            )
        out["seeds"].append(rec)
        say(f"  seed {seed} total (teacher + grid): {t_wall + g_wall:.0f}s")
    tot_teacher = sum(r["teacher_wall_s"] for r in out["seeds"])
    tot_grid = sum(r["grid_wall_s"] for r in out["seeds"])
    say(
        f"total: teachers {tot_teacher:.0f}s + student grids {tot_grid:.0f}s = {tot_teacher + tot_grid:.0f}s "
        f"(the committed per-run benchmark, teacher + 4 students: 504s, 551s, 585s for seeds 0, 1, 2 on a less loaded machine)"
    )
    res_dir = ROOT / "benchmarks" / "results"
    write_json(res_dir / "parity_grid.json", out)
    (res_dir / "parity_grid.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {res_dir / 'parity_grid.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
