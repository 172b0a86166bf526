"""Foreign trajectories: import + probe cost per checkpoint, and the n-gram probe on a real LM.

    nice -n 5 python -m benchmarks.bench_import [--n-ckpts 50] [--train-steps 400] [--kinds bert gpt2]
                                                  [--corpus FILE] [--skip-speed] [--skip-science]

1. **Speed.** A fabricated 50-checkpoint GPT-2 Trainer trajectory (2 layers, width 32, word-level
   tokenizer) is imported (``training.foreign.importer``) and swept with the ``text`` probes at their
   default options. Baseline, measured in the same run: for every checkpoint, a bare
   ``transformers`` ``from_pretrained`` plus one forward over the same probe inputs (the
   context probe's chunks and the n-gram probe's chunks, one padded batch). Printed: seconds per
   checkpoint for import, sweep, each probe, the bare forward, and their ratios.
2. **Science.** A small LM (BERT masked LM and/or GPT-2, 2 layers, width 64) is trained here on
   a local English text (default: every file of ``/usr/share/common-licenses``, else this
   repository's Markdown) with a word-level tokenizer of the corpus's 2000 most frequent words,
   saved as a Trainer directory at log-spaced steps, imported, and probed with ``ngram``.
   Printed: held-out loss and the n-gram medians per checkpoint, and trained / untrained ratios.

Results go to ``benchmarks/results/import.{txt,json}``. Numbers depend on the machine's load
(this project's machine is shared: 2 cores, several agents); ratios are measured in one run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LICENSES = Path("/usr/share/common-licenses")


def _log(lines: list[str], text: str = "") -> None:
    print(text, flush=True)
    lines.append(text)


def local_corpus(path: str | None) -> tuple[str, str]:
    """``(text, description)`` of the training corpus."""
    if path:
        return Path(path).read_text(encoding="utf-8"), path
    files = sorted(p for p in LICENSES.glob("*") if p.is_file()) if LICENSES.is_dir() else []
    if not files:
        files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in files]
    return "\n\n".join(texts), f"{len(files)} files under {files[0].parent}"


# --- 1. speed -------------------------------------------------------------------------------
def bench_speed(n_ckpts: int, work: Path, lines: list[str]) -> dict:
    from probes.sweep import SweepConfig, run_sweep
    from training.foreign.fixtures import sample_text, write_trainer_dir
    from training.foreign.importer import ImportConfig, import_trajectory
    from training.tasks import build_task

    src = work / "trainer50"
    steps = [10 * i for i in range(n_ckpts)]
    t0 = time.perf_counter()
    write_trainer_dir(src, "gpt2", steps=steps)
    corpus = work / "corpus.txt"
    corpus.write_text(sample_text(400, seed=1))
    t_fab = time.perf_counter() - t0
    exp = work / "exp50"
    task = {"name": "text", "corpus": str(corpus)}

    t0 = time.perf_counter()
    import_trajectory(ImportConfig(src=str(src), out=str(exp), task=task))
    t_import = time.perf_counter() - t0

    t0 = time.perf_counter()
    res = run_sweep(exp, SweepConfig(device="cpu"))
    t_sweep = time.perf_counter() - t0
    assert res.n_failed == 0, res.failures
    import sqlite3

    with sqlite3.connect(f"file:{exp / 'results.sqlite'}?mode=ro", uri=True) as conn:
        per_probe = dict(conn.execute("SELECT probe, SUM(wall_s) FROM units GROUP BY probe").fetchall())

    # baseline: bare from_pretrained + one forward over the same probe inputs, per checkpoint
    from transformers import AutoModelForCausalLM

    from models.configs import HFConfig
    from probes.tasks.pcfg.common import PCFGProbeOptions

    text_task = build_task(task)
    opts = PCFGProbeOptions()
    model_cfg = HFConfig(architecture="GPT2LMHeadModel", config={"model_type": "gpt2"})
    bound = text_task.bind(src / f"checkpoint-{steps[0]}", model_cfg)
    chunks = bound.probe_corpus(opts.n_sentences, 0).tokens + bound.probe_corpus(opts.ngram_sentences, 0).tokens
    batch = bound.plain_batch(chunks)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in steps:
            model = AutoModelForCausalLM.from_pretrained(str(src / f"checkpoint-{s}"), local_files_only=True).eval()
            model(batch["input_ids"], attention_mask=batch["attention_mask"])
    t_bare = time.perf_counter() - t0

    n = len(steps)
    out = {
        "n_checkpoints": n,
        "fabricate_s": t_fab,
        "import_s": t_import,
        "sweep_s": t_sweep,
        "bare_s": t_bare,
        "per_probe_s": per_probe,
        "probe_inputs": {"sequences": len(chunks), "tokens": int(batch["attention_mask"].sum())},
    }
    _log(lines, f"== speed: {n} GPT-2 checkpoints (2 layers, width 32), text probes at default options, 1 process")
    _log(lines, f"probe inputs of the bare forward: {len(chunks)} sequences, {out['probe_inputs']['tokens']} tokens")
    _log(lines, f"{'step':<34}{'s / checkpoint':>16}{'x bare forward':>16}")
    bare = t_bare / n
    for label, total in [
        ("bare from_pretrained + forward", t_bare),
        ("import (load + check + sha256)", t_import),
        ("probe sweep (all units)", t_sweep),
    ] + [(f"  probe {k} (unit wall)", v) for k, v in sorted(per_probe.items())]:
        _log(lines, f"{label:<34}{total / n:>16.3f}{total / n / bare:>16.1f}")
    return out


# --- 2. science ------------------------------------------------------------------------------
def _chunks(ids: list[int], size: int) -> torch.Tensor:
    usable = len(ids) // size * size
    return torch.tensor(ids[:usable], dtype=torch.int64).view(-1, size)


def train_lm(kind: str, text: str, out: Path, steps: int, seed: int, lines: list[str]) -> list[int]:
    """Train a small LM on ``text`` and save a Trainer directory at log-spaced steps."""
    from training.foreign.fixtures import corpus_words, make_model, make_tokenizer, save_checkpoint_dir

    tok = make_tokenizer(kind, corpus_words(text, 2000))
    ids = tok(text, add_special_tokens=False)["input_ids"]
    seq = 63
    data = _chunks(ids, seq)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(data.shape[0], generator=g)
    n_eval = max(8, data.shape[0] // 10)
    eval_x, train_x = data[perm[:n_eval]], data[perm[n_eval:]]
    lead = tok.cls_token_id if kind == "bert" else tok.bos_token_id
    model = make_model(kind, len(tok), seed=seed, n_layer=2, width=64, n_positions=64).train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    save_at = sorted({0, *[int(round(steps * f)) for f in (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1)]})
    history: list[dict] = []
    mask_id = tok.mask_token_id

    def make_batch(x: torch.Tensor, gen: torch.Generator) -> dict:
        inp = torch.cat([torch.full((x.shape[0], 1), lead), x], dim=1)
        if kind == "gpt2":
            return {"input_ids": inp, "labels": inp}
        labels = torch.full_like(inp, -100)
        chosen = torch.rand(inp.shape, generator=gen) < 0.15
        chosen[:, 0] = False
        labels[chosen] = inp[chosen]
        masked = inp.clone()
        masked[chosen] = mask_id
        return {"input_ids": masked, "labels": labels}

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            loss = model(**make_batch(eval_x, torch.Generator().manual_seed(1))).loss.item()
        model.train()
        return loss

    t0 = time.perf_counter()
    for step in range(steps + 1):
        if step in save_at:
            ev = evaluate()
            history.append({"step": step, "eval_loss": ev})
            save_checkpoint_dir(
                out / f"checkpoint-{step}",
                model.eval(),
                tok,
                trainer_state={"global_step": step, "log_history": list(history)},
            )
            model.train()
            _log(lines, f"  {kind} step {step:>5}: held-out loss {ev:.3f} ({time.perf_counter() - t0:.0f} s)")
        if step == steps:
            break
        idx = torch.randint(train_x.shape[0], (32,), generator=g)
        loss = model(**make_batch(train_x[idx], g)).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return save_at


def bench_science(kinds: list[str], text: str, desc: str, train_steps: int, work: Path, lines: list[str]) -> dict:
    from probes.sweep import SweepConfig, run_sweep
    from training.foreign.importer import ImportConfig, import_trajectory

    corpus = work / "corpus_real.txt"
    corpus.write_text(text)
    _log(lines, f"\n== science: n-gram probe before and after training on {desc} ({len(text.split())} words)")
    out: dict = {"corpus": desc, "words": len(text.split()), "train_steps": train_steps, "seed": 0}
    for kind in kinds:
        src = work / f"real-{kind}"
        steps = train_lm(kind, text, src, train_steps, seed=0, lines=lines)
        exp = work / f"exp-real-{kind}"
        import_trajectory(ImportConfig(src=str(src), out=str(exp), task={"name": "text", "corpus": str(corpus)}))
        res = run_sweep(exp, SweepConfig(probes=("ngram",), device="cpu", options={"ngram_sentences": 64}))
        assert res.n_failed == 0, res.failures
        import sqlite3

        with sqlite3.connect(f"file:{exp / 'results.sqlite'}?mode=ro", uri=True) as conn:
            rows = conn.execute(
                "SELECT step, feature, value FROM probe_results WHERE metric='p50' ORDER BY step"
            ).fetchall()
        table: dict[str, dict[int, float]] = {}
        for step, feature, value in rows:
            table.setdefault(feature, {})[int(step)] = float(value)
        feats = sorted(table)
        _log(lines, f"{kind}: median n-gram distances (p50 over (chunk, position) pairs) per checkpoint")
        _log(lines, f"{'step':>7}" + "".join(f"{f:>12}" for f in feats))
        for s in steps:
            _log(lines, f"{s:>7}" + "".join(f"{table[f].get(s, math.nan):>12.4g}" for f in feats))
        ratios = {f: table[f][steps[-1]] / max(table[f][0], 1e-12) for f in feats}
        _log(lines, "trained / untrained: " + ", ".join(f"{f} x{r:.1f}" for f, r in ratios.items()))
        out[kind] = {
            "steps": steps,
            "p50": {f: {str(k): v for k, v in table[f].items()} for f in feats},
            "ratio": ratios,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-ckpts", type=int, default=50)
    ap.add_argument("--train-steps", type=int, default=400)
    ap.add_argument("--kinds", nargs="+", default=["bert", "gpt2"], choices=("bert", "gpt2"))
    ap.add_argument("--corpus", default=None, help="a local text file (default: /usr/share/common-licenses/*)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-science", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    torch.set_num_threads(args.threads)
    lines: list[str] = []
    load = os.getloadavg()[0]
    _log(
        lines, f"bench_import: torch threads {args.threads}, load average at start {load:.1f} on {os.cpu_count()} CPUs"
    )
    result: dict = {"load_at_start": load, "threads": args.threads}
    work = Path(tempfile.mkdtemp(prefix="bench_import_"))
    try:
        if not args.skip_speed:
            result["speed"] = bench_speed(args.n_ckpts, work, lines)
        if not args.skip_science:
            text, desc = local_corpus(args.corpus)
            result["science"] = bench_science(args.kinds, text, desc, args.train_steps, work, lines)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_at_end"] = os.getloadavg()[0]
    _log(lines, f"load average at end {result['load_at_end']:.1f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if not (args.skip_speed or args.skip_science) else ("_speed" if args.skip_science else "_science")
    (RESULTS / f"import{suffix}.txt").write_text("\n".join(lines) + "\n")
    (RESULTS / f"import{suffix}.json").write_text(json.dumps(result, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
