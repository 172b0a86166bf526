"""The PCFG ``ngram`` probe per checkpoint: today's probe vs the one before the fast BERT path
(``probes/tasks/pcfg/ngram.py`` of commit ``PREVIOUS``, read from git), on the tiny cfg3b demo.

    python -m benchmarks.bench_ngram [--exp DIR] [--sentences 1024] [--checkpoints 0] [--size SIZE] [--out FILE]

``--exp``: an experiment (default: ``curriculens demo --task pcfg --size tiny --grammar cfg3b
--no-probe`` is run into ``benchmarks/runs/ngram_tiny_cfg3b``). Every checkpoint of every run
(or the first ``--checkpoints``) is probed by both sides with the paper's sizes (``--sentences``
sentences, stride auto = 30, at most 14 positions, windows 3 and 5), seed 0; both sides share
the probe corpus (sampled once, before timing), are warmed up on 4 sentences, run with one torch
thread, and alternate per checkpoint (``benchmarks.timing``). Reported per checkpoint: CPU
seconds of each side, their ratio and the largest difference between the two sides' rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import types
from pathlib import Path

import torch

from benchmarks.timing import interleaved, load, threads

REPO = Path(__file__).resolve().parents[1]
PREVIOUS = "3a44dce"  # main before the fast BERT path
DEFAULT_EXP = REPO / "benchmarks" / "runs" / "ngram_tiny_cfg3b"


def previous_ngram() -> types.ModuleType:
    """``probes.tasks.pcfg.ngram`` as of ``PREVIOUS`` (imports today's other modules)."""
    src = subprocess.run(
        ["git", "show", f"{PREVIOUS}:probes/tasks/pcfg/ngram.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    mod = types.ModuleType("previous_ngram")
    exec(compile(src, f"{PREVIOUS}:probes/tasks/pcfg/ngram.py", "exec"), mod.__dict__)  # noqa: S102 - our own history
    return mod


def ensure_demo(exp: Path) -> None:
    if (exp / "runs").is_dir():
        return
    cmd = [sys.executable, "-m", "curriculens.cli", "--quiet", "demo", "--task", "pcfg", "--size", "tiny"]
    subprocess.run([*cmd, "--grammar", "cfg3b", "--out", str(exp), "--no-probe", "--device", "cpu"], check=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exp", type=Path, default=DEFAULT_EXP)
    ap.add_argument("--sentences", type=int, default=1024)
    ap.add_argument("--checkpoints", type=int, default=0, help="at most this many checkpoints (0 = all)")
    ap.add_argument(
        "--size",
        default="",
        help="instead of the checkpoints: one freshly initialised BERT of this size (training.tasks.pcfg.SIZES, "
        "e.g. cpu-teacher: 4 layers, hidden 64), seed 0, on the experiment's task",
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ngram.json")
    args = ap.parse_args(argv)

    from models.checkpoint import list_checkpoints, load_checkpoint
    from probes.base import ProbeContext
    from probes.memo import SweepMemo
    from probes.tasks.pcfg.common import probe_corpus
    from probes.tasks.pcfg.ngram import NgramProbe
    from training.experiment import list_runs
    from training.tasks import build_task

    ensure_demo(args.exp)
    old_probe = previous_ngram().NgramProbe()
    new_probe = NgramProbe()
    runs = list_runs(args.exp)
    task = build_task(runs[0].config.task)
    memo = SweepMemo()
    ckpts = [(r.name, step, path) for r in runs for step, path in list_checkpoints(r.path / "checkpoints")]
    ckpts = ckpts[: args.checkpoints or None]
    if args.size:
        ckpts = [(f"random {args.size}", 0, args.size)]
    opts = {"ngram_sentences": args.sentences}
    print(f"ngram probe, previous ({PREVIOUS}) vs today, {len(ckpts)} checkpoints of {args.exp}, options {opts}")
    print(f"machine: {load()} at start; one torch thread per side, CPU time")
    rows = []

    def load_model(path):
        if not args.size:
            return load_checkpoint(path)
        from models.configs import model_config_from_dict
        from models.registry import build_model
        from training.tasks.pcfg import model_dict

        cfg = model_config_from_dict(model_dict("mlm", args.size, task.vocab_size, task.seq_len, task.special.pad))
        torch.manual_seed(0)
        return build_model(cfg).eval(), cfg, {}

    with threads(1):
        first = load_model(ckpts[0][2])
        print(f"model: {first[1]}")

        def ctx_of(model, cfg, n):
            return ProbeContext(
                model, cfg, task, torch.device("cpu"), 0, None, seed=0, options={"ngram_sentences": n}, memo=memo
            )

        probe_corpus(ctx_of(*first[:2], args.sentences), args.sentences)  # sampled once, before timing
        for probe in (old_probe, new_probe):
            probe.run(ctx_of(*first[:2], 4))  # warm-up
        for run, step, path in ckpts:
            model, cfg, _ = load_model(path)
            cmp = interleaved(
                {
                    "previous": lambda m=model, c=cfg: old_probe.run(ctx_of(m, c, args.sentences)),
                    "today": lambda m=model, c=cfg: new_probe.run(ctx_of(m, c, args.sentences)),
                },
                repeats=1,
                warm=False,
            )
            old = {(r.feature, r.metric): r.value for r in cmp.values["previous"]}
            new = {(r.feature, r.metric): r.value for r in cmp.values["today"]}
            assert old.keys() == new.keys(), "the two sides must give the same rows"
            diff = max(abs(old[k] - new[k]) for k in old)
            p50 = {k[0]: round(v, 4) for k, v in old.items() if k[1] == "p50"}
            row = {
                "run": run,
                "step": step,
                "previous_cpu_s": cmp.median("previous"),
                "today_cpu_s": cmp.median("today"),
                "ratio": cmp.ratio("previous", "today"),
                "max_abs_row_diff": diff,
                "p50_previous": p50,
                "load": cmp.load_end,
            }
            rows.append(row)
            print(
                f"  {run:<22} step {step:>5}: previous {row['previous_cpu_s']:7.2f} s, today {row['today_cpu_s']:6.2f} s"
                f"  {row['ratio']:5.2f}x   max |row diff| {diff:.1e}   ({cmp.load_end})",
                flush=True,
            )
    ratios = [r["ratio"] for r in rows]
    summary = {
        "checkpoints": len(rows),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "previous_cpu_s_median": statistics.median(r["previous_cpu_s"] for r in rows),
        "today_cpu_s_median": statistics.median(r["today_cpu_s"] for r in rows),
        "max_abs_row_diff": max(r["max_abs_row_diff"] for r in rows),
    }
    print(
        f"per checkpoint: {summary['ratio_median']:.2f}x median ({summary['ratio_min']:.2f}-{summary['ratio_max']:.2f}x), "
        f"previous {summary['previous_cpu_s_median']:.1f} s -> today {summary['today_cpu_s_median']:.2f} s CPU; "
        f"largest row difference {summary['max_abs_row_diff']:.1e}; machine: {load()} at end"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"exp": str(args.exp), "options": opts, "previous": PREVIOUS, "summary": summary, "rows": rows}, indent=1
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
