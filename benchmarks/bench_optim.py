"""First optimizer step of a training process: torch.optim vs training.optim, in fresh processes.

    python -m benchmarks.bench_optim [--repeats 3]

Each side runs in a new interpreter (after ``import torch``, not timed): build a small model,
construct the optimizer and take its first step (this is where ``torch.optim`` imports
``torch._dynamo``). Prints the median seconds of each and the ratio, for SGD, Adam and AdamW,
and whether ``torch._dynamo`` ended up imported. Results: ``benchmarks/results/optim.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_CODE = """
import json, sys, time, torch
from training.config import OptimConfig
name, impl = sys.argv[1], sys.argv[2]
model = torch.nn.Linear(64, 2)
model(torch.randn(8, 64)).sum().backward()
t0 = time.perf_counter()
cfg = OptimConfig(name=name)
if impl == "torch":
    opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name](model.parameters(), lr=cfg.lr)
else:
    from training.optim import make_optimizer
    opt = make_optimizer(model.parameters(), cfg)
opt.step()
print(json.dumps({"s": time.perf_counter() - t0, "dynamo": "torch._dynamo" in sys.modules}))
"""


def first_step(name: str, impl: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CODE, name, impl], capture_output=True, text=True, check=True, cwd=REPO
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "optim.txt")
    args = ap.parse_args()
    lines = [f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"]
    for name in ("sgd", "adam", "adamw"):
        res = {impl: [first_step(name, impl) for _ in range(args.repeats)] for impl in ("torch", "ours")}
        t = {impl: statistics.median(r["s"] for r in rs) for impl, rs in res.items()}
        dyn = {impl: any(r["dynamo"] for r in rs) for impl, rs in res.items()}
        lines.append(
            f"{name}: construct + first step, torch.optim {t['torch']:.3f} s (torch._dynamo imported: {dyn['torch']}), "
            f"training.optim {t['ours']:.4f} s (torch._dynamo imported: {dyn['ours']}): {t['torch'] / t['ours']:.0f}x "
            f"(median of {args.repeats} fresh processes)"
        )
        print(lines[-1], flush=True)
    lines.append(f"load average {os.getloadavg()[0]:.1f} at the end (shared machine)")
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
