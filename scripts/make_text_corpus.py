"""Write the packaged English corpus and a word-level tokenizer over it, to train on text.

::

    python -m scripts.make_text_corpus OUT [--size 2000] [--objective mlm|next]

writes ``OUT/chat.jsonl`` (the English conversations of PyPI ``chatterbot-corpus``, read from the
installed package, no network; ``training.data.packaged_text``) and ``OUT/tokenizer/`` (the
corpus's ``--size`` most frequent words, BERT specials for ``mlm``, GPT-2's for ``next``;
``training.tasks.text.write_word_tokenizer``). Then::

    curriculens train-teacher --out EXP --task text --task-set corpus=OUT/chat.jsonl --task-set tokenizer=OUT/tokenizer

Exits 2 with one line if OUT already holds them or the corpus package is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.make_text_corpus", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="directory to write into (created if needed)")
    p.add_argument("--size", type=int, default=2000, help="tokenizer words (default 2000)")
    p.add_argument("--objective", choices=("mlm", "next"), default="mlm")
    args = p.parse_args(argv)
    from curriculens.errors import CurriculensError
    from training.data.packaged_text import write_packaged_corpus
    from training.tasks.configs import TextConfig
    from training.tasks.text import write_word_tokenizer

    out = Path(args.out)
    corpus, tok = out / "chat.jsonl", out / "tokenizer"
    if corpus.exists() or tok.exists():
        print(f"make_text_corpus: error: {out} already holds chat.jsonl or tokenizer/", file=sys.stderr)
        return 2
    try:
        if args.size < 2:
            raise CurriculensError(f"--size must be >= 2, got {args.size}")
        out.mkdir(parents=True, exist_ok=True)
        write_packaged_corpus(corpus)
        write_word_tokenizer(TextConfig(corpus=str(corpus), objective=args.objective), tok, args.size)
    except CurriculensError as exc:
        print(f"make_text_corpus: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {corpus} and {tok}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
