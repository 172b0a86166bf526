"""Fabricate a small Hugging Face Trainer output directory (and a corpus) to try ``curriculens import``.

::

    python -m scripts.make_fake_trainer_dir OUT [--kind gpt2|bert] [--steps 0 50 100] [--format safetensors|bin]

writes ``OUT/checkpoint-N/`` (config.json, model.safetensors or pytorch_model.bin,
trainer_state.json, tokenizer files) for each step, and ``OUT/corpus.txt``, a small text in the
tokenizer's vocabulary. The models are random initialisations (seeded), built offline from local
configs (``training.foreign.fixtures``). Exits 2 with one line if OUT already holds checkpoints.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.make_fake_trainer_dir", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="directory to create")
    p.add_argument("--kind", choices=("gpt2", "bert"), default="gpt2")
    p.add_argument("--steps", type=int, nargs="+", default=[0, 50, 100])
    p.add_argument("--format", choices=("safetensors", "bin"), default="safetensors")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.glob("checkpoint-*")):
        print(f"make_fake_trainer_dir: error: {out} already holds checkpoints", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from training.foreign.fixtures import sample_text, write_trainer_dir

    write_trainer_dir(out, args.kind, steps=args.steps, fmt=args.format, seed=args.seed)
    (out / "corpus.txt").write_text(sample_text(200, seed=args.seed))
    print(f"wrote {len(args.steps)} {args.kind} checkpoints and corpus.txt to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
