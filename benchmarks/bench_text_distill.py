"""Real text at CPU scale: a small BERT teacher on the packaged ChatterBot corpus, its n-gram
curves (M_robust / M_close) over its trajectory, and CE, one-shot and progressive students.

Run: ``python -m benchmarks.bench_text_distill [--out DIR] [--seeds 0,1,2]``; writes
``benchmarks/results/text_distill.{json,txt}``. Resumable: finished runs are skipped.

Configuration (fixed before any result was seen): corpus = the English conversations of
``chatterbot-corpus`` (one per document), a word-level tokenizer over its 2000 most frequent
words (``write_word_tokenizer``), chunks of <= 63 tokens after [CLS], 128 chunks held out,
mask rate 0.15. Teacher: BERT ``demo-teacher`` (2 layers, hidden 32), AdamW lr 1e-3, cosine with
5% warmup, batch 32, a checkpoint every 50 steps. Students: BERT ``demo-student`` (2 layers,
hidden 8), the same optimizer, ``--student-steps`` steps, tau 1 (soft teacher labels), alpha 0,
progressive with speed 1 (student step t follows the teacher checkpoint at or after t).

"Faster" is read from the held-out masked-token loss (against the true tokens) every 50 steps:
its mean over the run (area under the curve) and its value at the end; per seed the
progressive - one-shot and progressive - CE differences, mean and a 95% t interval over seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def interval(values) -> dict:
    """Mean and the 95% t interval of ``values`` (n >= 2; else the interval is None)."""
    v = np.asarray(values, dtype=float)
    out = {"n": int(v.size), "mean": float(v.mean()), "values": [float(x) for x in v]}
    if v.size >= 2:
        half = T975.get(v.size - 1, 1.96) * float(v.std(ddof=1)) / math.sqrt(v.size)
        out["ci95"] = [out["mean"] - half, out["mean"] + half]
    else:
        out["ci95"] = None
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/curriculens_text_distill", help="experiment directory (scratch)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--teacher-steps", type=int, default=1500)
    ap.add_argument("--student-steps", type=int, default=800)
    ap.add_argument("--probe-every", type=int, default=3, help="n-gram probe every k-th teacher checkpoint")
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument(
        "--student-size", default="demo-student", help="a training.tasks.pcfg.SIZES key (default demo-student)"
    )
    ap.add_argument("--tag", default="", help="results file suffix: text_distill_TAG.{json,txt}")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from curriculens import constants as C
    from training.config import CheckpointConfig, OptimConfig, RunConfig
    from training.data.packaged_text import write_packaged_corpus
    from training.experiment import read_metrics
    from training.loop import train_run
    from training.plans.base import student_configs
    from training.tasks import build_task
    from training.tasks.configs import TextConfig
    from training.tasks.text import write_word_tokenizer

    t_start, load0 = time.time(), os.getloadavg()
    exp = Path(args.out)
    data = exp.parent / (exp.name + "_data")
    data.mkdir(parents=True, exist_ok=True)
    corpus = data / "chatterbot_english.jsonl"
    if not corpus.is_file():
        write_packaged_corpus(corpus)
    tok = data / "tokenizer"
    if not (tok / "tokenizer.json").is_file():
        write_word_tokenizer(TextConfig(corpus=str(corpus)), tok, 2000)
    task_cfg = TextConfig(corpus=str(corpus.resolve()), max_tokens=64, tokenizer=str(tok.resolve()))
    task = build_task(task_cfg)
    optim = OptimConfig(name="adamw", lr=1e-3, schedule="cosine", warmup_frac=0.05)
    teacher = RunConfig(
        name="teacher",
        role=C.ROLE_TEACHER,
        task=task_cfg,
        model=task.default_model("demo-teacher"),
        optim=optim,
        checkpoints=CheckpointConfig(save_every=50),
        steps=args.teacher_steps,
        batch_size=32,
        device="cpu",
    )
    t0 = time.time()
    train_run(teacher, exp / C.RUNS_DIR / "teacher", task=task)
    teacher_wall = time.time() - t0
    seeds = [int(s) for s in args.seeds.split(",")]
    student_model = task.default_model(args.student_size)
    cfgs = student_configs(
        teacher,
        student_model,
        steps=args.student_steps,
        save_every=args.student_steps,
        eval_every=50,
        seeds=seeds,
        methods=(C.METHOD_CE, C.METHOD_ONE_SHOT, C.METHOD_PROGRESSIVE),
        tau=1.0,
        optim=optim,
        exp_dir=exp,
    )
    walls = {}
    for cfg in cfgs:
        t0 = time.time()
        train_run(cfg, exp / C.RUNS_DIR / cfg.name, task=task)
        walls[cfg.name] = time.time() - t0
        print(f"{cfg.name}: {walls[cfg.name]:.0f}s", flush=True)

    curves = {}
    for cfg in cfgs:
        rows = read_metrics(exp / C.RUNS_DIR / cfg.name)
        curves[cfg.name] = {
            "method": cfg.method,
            "seed": cfg.seed,
            "steps": [r["step"] for r in rows],
            "eval_loss": [r["eval_loss"] for r in rows],
            "eval_acc": [r["eval_acc"] for r in rows],
        }
    by = {(c["method"], c["seed"]): c for c in curves.values()}
    summary = {}
    for m in (C.METHOD_CE, C.METHOD_ONE_SHOT, C.METHOD_PROGRESSIVE):
        summary[m] = {
            "auc_eval_loss": interval([np.mean(by[(m, s)]["eval_loss"][1:]) for s in seeds]),
            "final_eval_loss": interval([by[(m, s)]["eval_loss"][-1] for s in seeds]),
            "final_eval_acc": interval([by[(m, s)]["eval_acc"][-1] for s in seeds]),
        }
    diffs = {}
    for other in (C.METHOD_ONE_SHOT, C.METHOD_CE):
        p, o = C.METHOD_PROGRESSIVE, other
        diffs[f"progressive-{other}"] = {
            "auc_eval_loss": interval(
                [np.mean(by[(p, s)]["eval_loss"][1:]) - np.mean(by[(o, s)]["eval_loss"][1:]) for s in seeds]
            ),
            "final_eval_loss": interval([by[(p, s)]["eval_loss"][-1] - by[(o, s)]["eval_loss"][-1] for s in seeds]),
        }

    # the teacher's n-gram curves
    from probes.store import ResultsStore
    from probes.sweep import SweepConfig, run_sweep

    t0 = time.time()
    opts = {"n_sentences": 64, "ngram_sentences": 32, "batch_size": 32}
    res = run_sweep(
        exp,
        SweepConfig(probes=("ngram",), runs=("teacher",), device="cpu", every=args.probe_every, options=opts),
    )
    probe_wall = time.time() - t0
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        rows = store.query()
    ngram = rows[(rows.probe == "ngram") & (rows.run == "teacher") & (rows.metric == "mean")]
    ngram_curves = {
        feat: [[int(s), float(v)] for s, v in sorted(zip(g.step, g.value, strict=True))]
        for feat, g in ngram.groupby("feature")
    }
    t_rows = read_metrics(exp / C.RUNS_DIR / "teacher")
    result = {
        "config": {
            "task": task_cfg.__dict__ | {"corpus": "chatterbot-corpus english (packaged)"},
            "teacher": {"model": teacher.model.__dict__, "steps": teacher.steps, "optim": optim.__dict__},
            "students": {
                "size": args.student_size,
                "model": student_model.__dict__,
                "steps": args.student_steps,
                "tau": 1.0,
                "seeds": seeds,
            },
            "probe_options": opts,
            "probe_every": args.probe_every,
        },
        "teacher_curve": [[r["step"], r["eval_loss"], r["eval_acc"]] for r in t_rows],
        "teacher_ngram": ngram_curves,
        "probe_failures": res.n_failed,
        "students": summary,
        "differences": diffs,
        "curves": curves,
        "wall_s": {"teacher": teacher_wall, "students": walls, "probe": probe_wall, "total": time.time() - t_start},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch_threads": 1,
            "loadavg_start": load0,
            "loadavg_end": os.getloadavg(),
        },
    }
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stem = "text_distill" + (f"_{args.tag}" if args.tag else "")
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str))
    (out / f"{stem}.txt").write_text(report(result))
    print(report(result))
    return 0


def _ci(d: dict) -> str:
    ci = d["ci95"]
    return f"{d['mean']:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")


def report(r: dict) -> str:
    cfg = r["config"]
    lines = [
        "Real text (chatterbot-corpus English, word tokenizer 2000) at CPU scale, measured",
        f"teacher BERT {cfg['teacher']['model']['num_hidden_layers']} layers hidden "
        f"{cfg['teacher']['model']['hidden_size']}, {cfg['teacher']['steps']} steps; students hidden "
        f"{cfg['students']['model']['hidden_size']}, {cfg['students']['steps']} steps, tau 1, seeds {cfg['students']['seeds']}",
        "teacher held-out masked loss / acc: "
        + ", ".join(
            f"{s}: {loss:.2f}/{acc:.3f}" for s, loss, acc in r["teacher_curve"][:: max(1, len(r["teacher_curve"]) // 8)]
        ),
        "teacher n-gram curves (probe step: value):",
    ]
    for feat, pts in r["teacher_ngram"].items():
        lines.append(f"  {feat}: " + ", ".join(f"{s}: {v:.3f}" for s, v in pts))
    lines.append("students, held-out masked loss (mean [95% t interval] over seeds):")
    for m, s in r["students"].items():
        lines.append(
            f"  {m:12s} mean over run {_ci(s['auc_eval_loss'])}  final {_ci(s['final_eval_loss'])}  "
            f"final acc {_ci(s['final_eval_acc'])}"
        )
    lines.append("paired per seed (negative = progressive lower loss):")
    for k, d in r["differences"].items():
        lines.append(f"  {k:24s} mean over run {_ci(d['auc_eval_loss'])}  final {_ci(d['final_eval_loss'])}")
    w = r["wall_s"]
    m = r["machine"]
    lines.append(
        f"wall: teacher {w['teacher']:.0f}s, students {sum(w['students'].values()):.0f}s, probe {w['probe']:.0f}s; "
        f"{m['cpus']} CPUs shared, 1 torch thread, load average {m['loadavg_start'][0]:.1f} at start, "
        f"{m['loadavg_end'][0]:.1f} at end"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
