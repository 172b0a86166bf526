"""Benchmark: the PCFG phenomenon of the paper (section 5, figure 3) at CPU scale, over seeds.

For each seed, on cfg3b sentences started below the root (so a 2-core CPU reaches the sharp
drop; see shared/research/calibration.md):

1. train a BERT teacher (masked LM) and detect its loss phases (``curriculens.curves.detect_phases``: plateau,
   sharp drop, slow phase);
2. measure M_robust / M_close (``probes.ngram``) on every teacher checkpoint through the probe
   sweep; report the 3-gram M_robust median curve, where it peaks, and where the peak falls
   relative to the drop (0 = drop start, 1 = drop end);
3. train ce / one-shot / progressive / two-shot students for a fixed step budget (two-shot: first
   stage on the teacher checkpoint where M_robust(3) peaks, then the final one) and report their
   final masked-token accuracy on the held-out set, with differences and ratios against the ce
   student of the same seed.

    python benchmarks/bench_pcfg_phenomenon.py --quick             # cfg3b from level 2, ~56 tokens
    python benchmarks/bench_pcfg_phenomenon.py                     # cfg3b from level 1, ~150 tokens
    python benchmarks/bench_pcfg_phenomenon.py --threads 1 --report benchmarks/results/pcfg_phenomenon.txt

Runs are resumable (rerun to continue). Without cfg3b (``--grammar``), a generated 6-level
grammar is used, for which no plateau is promised. ``--threads 1`` is much faster than torch's
default on a machine whose cores are busy with other work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from curriculens import constants as C  # noqa: E402
from curriculens.curves import half_rise  # noqa: E402
from training.experiment import init_experiment, read_metrics  # noqa: E402
from training.loop import train_run  # noqa: E402
from training.tasks.pcfg_presets import (  # noqa: E402
    detect_teacher_phases,
    get_preset,
    student_configs_for,
    teacher_config,
)

CFG3B = "cfg3b"  # bundled with the package (training/data/pcfg/grammars)
METHODS = ("ce", "one-shot", "progressive", "two-shot")


@dataclass(frozen=True)
class Setting:
    """One benchmark scale (the cpu-small preset with these changes)."""

    start_level: int
    teacher_steps: int
    student_steps: int
    batch_size: int
    save_every: int
    eval_every: int
    n_eval: int
    ngram_sentences: int


SETTINGS = {
    "full": Setting(1, 2000, 2000, 32, 100, 50, 512, 64),
    "quick": Setting(2, 1600, 800, 32, 50, 50, 256, 48),
}


def teacher_ngram_curve(exp: Path, n_sentences: int) -> dict:
    """M_robust/M_close medians over the teacher's checkpoints, via the probe sweep."""
    from probes.store import ResultsStore
    from probes.sweep import SweepConfig, run_sweep

    cfg = SweepConfig(probes=("ngram",), runs=("teacher",), device="cpu", options={"ngram_sentences": n_sentences})
    run_sweep(exp, cfg, progress=False)
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        df = store.query("run = 'teacher' AND probe = 'ngram' AND metric = 'p50'")
    return {f: {int(s): float(v) for s, v in zip(g.step, g.value)} for f, g in df.groupby("feature")}


def relative_in_drop(step: float, phases) -> float | None:
    if phases is None or phases.drop_end <= phases.drop_start:
        return None
    return (step - phases.drop_start) / (phases.drop_end - phases.drop_start)


def run_seed(seed: int, setting: Setting, grammar: str | None, out: Path, log) -> dict:
    preset = get_preset("cpu-small", grammar=grammar, start_level=setting.start_level, n_eval=setting.n_eval)
    preset = replace(
        preset,
        steps=setting.teacher_steps,
        student_steps=setting.student_steps,
        batch_size=setting.batch_size,
        save_every=setting.save_every,
        eval_every=setting.eval_every,
    )
    exp = out / f"seed{seed}"
    teacher = teacher_config(preset, seed=seed, device="cpu")
    init_experiment(exp, teacher.task)
    t0 = time.time()
    tres = train_run(teacher, exp / C.RUNS_DIR / teacher.name)
    log(f"[seed {seed}] teacher: final {tres.final_eval} ({tres.wall_s:.0f}s)")
    rows = read_metrics(exp / C.RUNS_DIR / teacher.name)
    phases = detect_teacher_phases(exp / C.RUNS_DIR / teacher.name)
    curves = teacher_ngram_curve(exp, setting.ngram_sentences)
    robust3 = curves.get("robust_n3", {})
    peak_step = max((s for s in robust3 if s > 0), key=lambda s: robust3[s])
    rise_step = half_rise(list(robust3), list(robust3.values()))["step"]  # the summary's "appears" rule
    log(f"[seed {seed}] M_robust(3) peaks at step {peak_step} ({robust3[peak_step]:.3f}); training students")
    students = student_configs_for(preset, exp, teacher, seeds=(seed,), methods=METHODS, two_shot_step=peak_step)
    finals = {}
    for cfg in students:
        res = train_run(cfg, exp / C.RUNS_DIR / cfg.name)
        finals[cfg.method] = res.final_eval
        log(f"[seed {seed}] {cfg.name}: final acc {res.final_eval['eval_acc']:.4f} ({res.wall_s:.0f}s)")
    from curriculens.io import read_json
    from probes.store import ResultsStore

    train_wall = sum(read_json(exp / C.RUNS_DIR / name / C.DONE_FILE)["wall_s"] for name in ["teacher"] + [c.name for c in students])
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        probe_wall = float(store.units()["wall_s"].sum())
    return {
        "seed": seed,
        "train_wall_s": train_wall,
        "probe_wall_s": probe_wall,
        "teacher_curve": [(r["step"], r["eval_loss"], r["eval_acc"]) for r in rows],
        "phases": phases.to_dict() if phases else None,
        "ngram_curves": curves,
        "peak_step": peak_step,
        "peak_phase": phases.phase_of(peak_step) if phases else None,
        "peak_relative_in_drop": relative_in_drop(peak_step, phases),
        "rise_step": rise_step,
        "rise_phase": phases.phase_of(rise_step) if phases else None,
        "rise_relative_in_drop": relative_in_drop(rise_step, phases),
        "students": finals,
        "wall_s": time.time() - t0,  # this invocation only (finished runs are reused)
    }


def _ms(vals) -> str:
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.4f}"
    return f"{statistics.mean(vals):.4f} +/- {statistics.stdev(vals):.4f}"


def report(results: list[dict], setting_name: str, setting: Setting, grammar: str) -> str:
    lines = [
        f"PCFG phenomenon benchmark ({setting_name}): grammar {grammar}, start level {setting.start_level}, "
        f"teacher {setting.teacher_steps} steps, students {setting.student_steps} steps, batch {setting.batch_size}, "
        f"seeds {[r['seed'] for r in results]}",
        "",
        "Teacher loss phases (curriculens.curves.detect_phases on the held-out loss):",
    ]
    for r in results:
        p = r["phases"]
        if p is None:
            lines.append(f"  seed {r['seed']}: too few evaluations")
            continue
        lines.append(
            f"  seed {r['seed']}: clear={p['clear']}  plateau {p['plateau_start']:.0f}-{p['plateau_end']:.0f} "
            f"(loss {p['plateau_loss']:.3f})  drop {p['drop_start']:.0f}-{p['drop_end']:.0f} "
            f"(-> {p['drop_end_loss']:.3f}, middle {p['mid_step']:.0f})  slow {p['slow_start']:.0f}-{p['slow_end']:.0f} "
            f"(final {p['final_loss']:.3f})  slopes plateau/drop/slow {p['plateau_slope']:.2e}/{p['drop_slope']:.2e}/{p['slow_slope']:.2e}"
        )
    lines += ["", "M_robust (3-gram) median over (sentence, position), per teacher checkpoint:"]
    for r in results:
        c = r["ngram_curves"].get("robust_n3", {})
        lines.append(f"  seed {r['seed']}: " + " ".join(f"{s}:{v:.3g}" for s, v in sorted(c.items())))
    lines += ["", "Where M_robust(3) peaks:"]
    for r in results:
        rel = r["peak_relative_in_drop"]
        c = r["ngram_curves"].get("robust_n3", {})
        lines.append(
            f"  seed {r['seed']}: step {r['peak_step']} (value {c.get(r['peak_step'], float('nan')):.3f}), phase "
            f"{r['peak_phase']}, position in the drop {'-' if rel is None else f'{rel:.2f}'} (0 = start, 1 = end)"
        )
    lines += ["", "Where M_robust(3) first reaches half its peak (its rise; the summary's 'appears' rule):"]
    for r in results:
        rel = r["rise_relative_in_drop"]
        lines.append(
            f"  seed {r['seed']}: step {r['rise_step']}, phase {r['rise_phase']}, position in the drop "
            f"{'-' if rel is None else f'{rel:.2f}'}"
        )
    lines += ["", "Other n-gram medians at the M_robust(3) peak and at the end:"]
    for r in results:
        curves = r["ngram_curves"]
        last = max(curves.get("robust_n3", {0: 0}))
        parts = [
            f"{f} {curves[f].get(r['peak_step'], float('nan')):.3g} -> {curves[f].get(last, float('nan')):.3g}"
            for f in sorted(curves)
        ]
        lines.append(f"  seed {r['seed']}: " + ", ".join(parts))
    lines += ["", f"Students: final masked-token accuracy after {setting.student_steps} steps "
              "(two-shot: first stage on the M_robust(3) peak checkpoint for half the steps):"]
    header = "  method        " + "  ".join(f"seed {r['seed']:<6}" for r in results) + "  mean +/- sd        diff vs ce (same seed)   ratio vs ce"
    lines.append(header)
    for m in METHODS:
        accs = [r["students"][m]["eval_acc"] for r in results]
        diffs = [r["students"][m]["eval_acc"] - r["students"]["ce"]["eval_acc"] for r in results]
        ratios = [r["students"][m]["eval_acc"] / r["students"]["ce"]["eval_acc"] for r in results]
        lines.append(
            f"  {m:<12}  " + "  ".join(f"{a:<11.4f}" for a in accs) + f"  {_ms(accs):<18} {_ms(diffs):<24} {_ms(ratios)}"
        )
    t_acc = [r["teacher_curve"][-1][2] for r in results]
    lines.append(f"  teacher       final acc {_ms(t_acc)}")
    lines.append("")
    lines.append(
        f"compute, as recorded when each piece ran (1 thread unless --threads): training "
        f"{sum(r['train_wall_s'] for r in results) / 60:.1f} min, n-gram sweep {sum(r['probe_wall_s'] for r in results) / 60:.1f} min"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the short version (cfg3b from level 2)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--grammar", default=CFG3B, help="grammar: a bundled name or a JSON file (default cfg3b)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "runs" / "pcfg_phenomenon"), help="experiment root")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--report", help="also write the report (and a .json beside it) here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = "quick" if args.quick else "full"
    setting = SETTINGS[name]
    out = Path(args.out) / name

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = [run_seed(s, setting, args.grammar, out, log) for s in args.seeds]
    text = report(results, name, setting, args.grammar or "generated (6 levels)")
    print(text)
    if args.report:
        path = Path(args.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        path.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
