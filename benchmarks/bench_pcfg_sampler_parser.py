"""Speed of the PCFG sampler and parser against naive baselines measured in the same run.

    python -m benchmarks.bench_pcfg_sampler_parser [--grammar PATH] [--n 4096] [--repeats 3]

Sampler: the vectorised level-by-level ``sample`` vs the naive recursive ``sample_reference``
(identical output, one Python call per node). Parser: the banded chart ``parse`` / ``accepts`` on
full cfg3b sentences, and against the naive pure-Python CYK ``cyk_reference`` on sentences from
levels 3 and 2 and one full sentence (the naive CYK needs about a second there).
Falls back to a random 7-level grammar when cfg3b.json is absent.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from training.data.pcfg import (
    accepts,
    count_parses,
    cyk_reference,
    load_grammar,
    parse,
    random_grammar,
    sample,
    sample_reference,
)

CFG3B = Path(__file__).resolve().parents[1] / "training" / "data" / "pcfg" / "grammars" / "cfg3b.json"


def best_of(fn, repeats: int) -> float:
    """Best wall time (s) of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grammar", type=Path, default=CFG3B)
    ap.add_argument("--n", type=int, default=4096, help="sentences per vectorised sampler call")
    ap.add_argument("--n-ref", type=int, default=200, help="sentences for the recursive sampler")
    ap.add_argument("--n-parse", type=int, default=20, help="full sentences to parse")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.grammar.is_file():
        g = load_grammar(args.grammar)
    else:
        print(f"{args.grammar} not found; using a random 7-level grammar")
        g = random_grammar(n_levels=7, seed=0)
    print(f"grammar {g.name}: {len(g.rules)} rules, {g.n_levels} levels, lengths {g.length_bounds()}")

    print("\n== sampler (sentences / s, best of", args.repeats, ")")
    for label, kw in (("full sentences", {}), ("from level 1", {"start_level": 1})):
        t_vec = best_of(lambda kw=kw: sample(g, args.n, seed=1, **kw), args.repeats)
        t_tok = best_of(lambda kw=kw: sample(g, args.n, seed=1, with_derivation=False, **kw), args.repeats)
        t_ref = best_of(lambda kw=kw: sample_reference(g, args.n_ref, seed=1, **kw), 1)
        v, v_tok, r = args.n / t_vec, args.n / t_tok, args.n_ref / t_ref
        mean_len = sample(g, 256, seed=1, with_derivation=False, **kw).lengths.mean()
        print(
            f"{label:15s} (mean length {mean_len:5.1f}): vectorised {v:9.0f}/s with derivations, "
            f"{v_tok:9.0f}/s tokens only; naive recursive {r:7.0f}/s; ratio {v / r:6.1f}x"
        )

    print("\n== parser")
    corpus = sample(g, args.n_parse, seed=2)
    t_parse, t_acc = [], []
    for i in range(len(corpus)):
        toks = corpus.tokens[i]
        t_parse.append(best_of(lambda toks=toks: parse(g, toks), 1))
        t_acc.append(best_of(lambda toks=toks: accepts(g, toks), 1))
        assert parse(g, toks) == corpus[i]
    print(
        f"full sentences (mean length {corpus.lengths.mean():.0f}, max {corpus.lengths.max()}): "
        f"parse {1e3 * statistics.mean(t_parse):.1f} ms (max {1e3 * max(t_parse):.1f}), "
        f"accepts {1e3 * statistics.mean(t_acc):.1f} ms per sentence"
    )
    for level in (3, 2, 0):
        if level >= g.n_levels - 1:
            continue
        short = sample(g, 5, seed=3, start_level=level)
        toks = short.tokens[int(short.lengths.argmax())] if level else corpus.tokens[0]
        t_naive = best_of(lambda toks=toks, level=level: cyk_reference(g, toks, start_level=level), 1)
        t_count = best_of(lambda toks=toks, level=level: count_parses(g, toks, start_level=level), args.repeats)
        t_p = best_of(lambda toks=toks, level=level: parse(g, toks, start_level=level), args.repeats)
        print(
            f"level-{level} sentence ({len(toks):3d} tokens): naive CYK {1e3 * t_naive:8.1f} ms; "
            f"chart count {1e3 * t_count:6.2f} ms (ratio {t_naive / t_count:6.0f}x); "
            f"parse {1e3 * t_p:6.2f} ms (ratio {t_naive / t_p:5.0f}x)"
        )


if __name__ == "__main__":
    main()
