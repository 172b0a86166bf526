"""The Bayes ceiling of held-out masked accuracy on cfg3b: how high can a teacher get at all?

For each root level, the masked-LM task's own held-out set (``n_eval`` sentences keyed by the data
seed, static masks, 30% selected, 80/10/10, hidden keys: exactly what ``eval_acc`` scores) is scored
by the Bayes-optimal predictor (``training.data.pcfg_ceiling``). Prints and writes
``benchmarks/results/pcfg_ceiling.txt``.

    python -m benchmarks.bench_pcfg_ceiling [--levels 2 3] [--n-eval 256] [--data-seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from training.data.pcfg_ceiling import bayes_masked_accuracy
from training.tasks import build_task

RESULTS = Path(__file__).resolve().parent / "results" / "pcfg_ceiling.txt"


def ceiling(level: int, n_eval: int, data_seed: int) -> dict:
    task = build_task(
        {"name": "pcfg", "grammar": "cfg3b", "objective": "mlm", "start_level": level, "n_eval": n_eval}
        | ({"data_seed": data_seed} if data_seed else {})
    )
    t0 = time.perf_counter()
    c = bayes_masked_accuracy(task.grammar, task.eval_batches(64), start_level=level)
    return {"level": level, "data_seed": data_seed, "acc": c.accuracy, "n": c.n_scored, "s": time.perf_counter() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--n-eval", type=int, default=256)
    ap.add_argument("--data-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    lines = [
        "Bayes ceiling of held-out masked accuracy, cfg3b (python -m benchmarks.bench_pcfg_ceiling)",
        f"held-out set: the masked-LM task's own (n_eval {args.n_eval}, 30% selected, 80/10/10, hidden keys)",
        "level  data_seed  ceiling  scored_positions  seconds",
    ]
    print("\n".join(lines), flush=True)
    for level in args.levels:
        for seed in args.data_seeds:
            r = ceiling(level, args.n_eval, seed)
            line = f"{r['level']:5d}  {r['data_seed']:9d}  {r['acc']:.4f}  {r['n']:16d}  {r['s']:7.1f}"
            print(line, flush=True)
            lines.append(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
