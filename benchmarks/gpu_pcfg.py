"""GPU check: the paper's PCFG presets (paper-bert, paper-gpt2) on cfg3b for a bounded number of steps.

For each preset: train the teacher (the paper's model, batch, optimiser and lr schedule, but only
``--steps`` optimizer steps, so the cosine schedule is compressed into them) with a checkpoint
every ``--save-every`` steps, then a progressive student (official masked-LM rule, R =
``--save-every``) for ``--student-steps`` steps. Prints steps per second (wall clock from the
first to the last evaluation, evaluations included) and the teacher's held-out loss curve, and writes
``benchmarks/results/gpu_pcfg.json`` and ``.txt``.

    bash benchmarks/gpu_pcfg.sh                       # on a GPU machine: the one command (< 10 min on one GPU)
    bash benchmarks/gpu_pcfg.sh --device cpu --tiny --out /tmp/gpu_pcfg --results /tmp/gpu_pcfg/res   # the code path on a CPU

``--tiny`` = ``--steps 4 --student-steps 2 --save-every 2 --eval-every 2 --batch-size 4 --n-eval 8
--n-generate 0`` (the paper's models and data, a few steps). Trap: paper-gpt2's ``eval_accept``
samples sentences token by token without a KV cache (quadratic in the ~300-token length); on a
CPU keep ``--n-generate 0`` (on the loaded 2-core machine, nice 10, 2 sentences per evaluation:
the GPT-2 teacher did not get past step 2 in 28 minutes; py-spy showed it sampling).

Budget on one GPU (not measured here: no GPU was available when this was written): 2 presets x
(600 teacher + 200 student steps) at batch 512 of ~300-token cfg3b sentences.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from curriculens import constants as C  # noqa: E402
from training.experiment import init_experiment, read_metrics  # noqa: E402
from training.loop import train_run  # noqa: E402
from training.plans.pcfg import get_preset, student_configs_for, teacher_config  # noqa: E402

PRESETS = ("paper-bert", "paper-gpt2")


def steps_per_second(rows: list[dict]) -> float:
    """Optimizer steps per second between the first and the last evaluation (wall clock of the
    run, evaluations included: a lower bound on the training speed)."""
    if len(rows) < 2 or rows[-1]["wall_s"] <= rows[0]["wall_s"]:
        return float("nan")
    return (rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["wall_s"] - rows[0]["wall_s"])


def run_preset(name: str, args, log) -> dict:
    overrides = {"n_eval": args.n_eval} if args.n_eval else {}
    if name == "paper-gpt2" and args.n_generate >= 0:
        overrides["n_generate"] = args.n_generate
    preset = get_preset(name, grammar="cfg3b", **overrides)
    preset = replace(
        preset,
        steps=args.steps,
        student_steps=args.student_steps,
        save_every=args.save_every,
        eval_every=args.eval_every,
        refresh=args.save_every,
        batch_size=args.batch_size or preset.batch_size,
    )
    exp = Path(args.out) / name
    teacher = teacher_config(preset, seed=0, device=args.device).replace(amp=args.amp)
    init_experiment(exp, teacher.task)
    t0 = time.time()
    tres = train_run(teacher, exp / C.RUNS_DIR / teacher.name, force=True)
    rows = read_metrics(exp / C.RUNS_DIR / teacher.name)
    log(f"{name} teacher: {tres.final_eval} in {tres.wall_s:.0f}s")
    student = [s for s in student_configs_for(preset, exp, teacher, methods=(C.METHOD_PROGRESSIVE,))][0]
    student = student.replace(device=args.device, amp=args.amp)
    sres = train_run(student, exp / C.RUNS_DIR / student.name, force=True)
    srows = read_metrics(exp / C.RUNS_DIR / student.name)
    return {
        "preset": name,
        "device": args.device,
        "batch_size": teacher.batch_size,
        "teacher_steps": args.steps,
        "teacher_steps_per_s": steps_per_second(rows),
        "teacher_curve": [(r["step"], r["eval_loss"], r["eval_acc"]) for r in rows],
        "teacher_final": tres.final_eval,
        "student_steps": args.student_steps,
        "student_steps_per_s": steps_per_second(srows),
        "student_curve": [(r["step"], r["eval_loss"], r["eval_acc"], r.get("teacher_step")) for r in srows],
        "student_final": sres.final_eval,
        "wall_s": time.time() - t0,
    }


def report(results: list[dict]) -> str:
    lines = []
    for r in results:
        lines.append(
            f"{r['preset']} on {r['device']}, batch {r['batch_size']}: teacher {r['teacher_steps']} steps at "
            f"{r['teacher_steps_per_s']:.2f} steps/s (evaluations included), final {r['teacher_final']}; "
            f"progressive student {r['student_steps']} steps at {r['student_steps_per_s']:.2f} steps/s, final {r['student_final']}; "
            f"wall {r['wall_s']:.0f}s"
        )
        lines.append("  teacher held-out loss: " + " ".join(f"{s}:{loss:.3f}" for s, loss, _ in r["teacher_curve"]))
        lines.append("  teacher held-out acc:  " + " ".join(f"{s}:{acc:.3f}" for s, _, acc in r["teacher_curve"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    ap.add_argument("--steps", type=int, default=600, help="teacher optimizer steps (paper: 8000)")
    ap.add_argument("--student-steps", type=int, default=200)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=0, help="0 = the preset's (512)")
    ap.add_argument("--n-eval", type=int, default=0, help="held-out sentences; 0 = the preset's (4096)")
    ap.add_argument(
        "--n-generate",
        type=int,
        default=-1,
        help="paper-gpt2: sentences generated per evaluation for eval_accept; -1 = the task's default (32)",
    )
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    ap.add_argument("--tiny", action="store_true", help="a few steps at batch 4 (the code path, e.g. on a CPU)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "runs" / "gpu_pcfg"))
    ap.add_argument(
        "--results",
        default=str(ROOT / "benchmarks" / "results" / "gpu_pcfg"),
        help="writes RESULTS.json and RESULTS.txt",
    )
    args = ap.parse_args(argv)
    if args.tiny:
        args.steps, args.student_steps, args.save_every, args.eval_every = 4, 2, 2, 2
        args.batch_size, args.n_eval, args.n_generate = 4, 8, 0
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print(
                "no CUDA device: run with --device cpu (and small --steps/--batch-size) to check the code path",
                file=sys.stderr,
            )
            return 2

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = [run_preset(name, args, log) for name in args.presets]
    text = report(results)
    print(text)
    res = Path(args.results)
    res.parent.mkdir(parents=True, exist_ok=True)
    res.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    res.with_suffix(".txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
