"""Seeded random strictly layered grammars of the cfg3 family (Allen-Zhu & Li style)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from curriculens.errors import CurriculensError

from .grammar import SPECIAL_TOKENS, Grammar, grammar_from_dict

# Terminal characters of generated grammars; 's' is skipped because it names the root.
TERMINAL_LETTERS = "abcdefghijklmnopqrtuvwxyz"
_MAX_TRIES = 10_000


def _draw_level(
    rng: random.Random,
    parents: Sequence[str],
    children: Sequence[str],
    rules_per_symbol: int,
    rhs_lengths: Sequence[int],
) -> dict[str, list[tuple[str, ...]]]:
    """Distinct rules per parent, redrawn until every child symbol is used (so all are reachable)."""
    for _ in range(_MAX_TRIES):
        out: dict[str, list[tuple[str, ...]]] = {}
        for p in parents:
            seen: list[tuple[str, ...]] = []
            while len(seen) < rules_per_symbol:
                rhs = tuple(rng.choice(children) for _ in range(rng.choice(rhs_lengths)))
                if rhs not in seen:
                    seen.append(rhs)
            out[p] = seen
        if {c for rs in out.values() for rhs in rs for c in rhs} == set(children):
            return out
    raise CurriculensError(
        f"random_grammar: could not cover all {len(children)} symbols of a level with "
        f"{len(parents)} x {rules_per_symbol} rules of lengths {tuple(rhs_lengths)}; allow more or longer rules"
    )


def random_grammar(
    n_levels: int = 5,
    symbols_per_level: int = 3,
    rules_per_symbol: int = 2,
    rhs_lengths: Sequence[int] = (2, 3),
    n_terminals: int = 3,
    seed: int = 0,
    name: str | None = None,
) -> Grammar:
    """A strictly layered random PCFG, deterministic in ``seed`` (Python's ``random.Random``).

    Level 0 is the root ``s``; levels 1..n_levels-2 hold ``symbols_per_level`` nonterminals named
    ``n{level}_{k}``; level n_levels-1 holds one preterminal per terminal, named like its terminal
    (``a -> 'a'``, as in cfg3b). Every other nonterminal gets ``rules_per_symbol`` distinct rules whose
    rhs (length drawn from ``rhs_lengths``) are drawn uniformly from the next level, with uniform
    probabilities; levels are redrawn until every symbol is used. Token ids: terminals 0..T-1, then
    BOS, EOS, PAD, MASK; vocab_size T + 4; nt_ids enumerate the nonterminals root first.
    """
    if n_levels < 2:
        raise CurriculensError(f"random_grammar: n_levels must be >= 2 (root and preterminals), got {n_levels}")
    if not 1 <= n_terminals <= len(TERMINAL_LETTERS):
        raise CurriculensError(f"random_grammar: n_terminals must be in 1..{len(TERMINAL_LETTERS)}, got {n_terminals}")
    if symbols_per_level < 1 or rules_per_symbol < 1:
        raise CurriculensError("random_grammar: symbols_per_level and rules_per_symbol must be >= 1")
    rhs_lengths = tuple(int(k) for k in rhs_lengths)
    if not rhs_lengths or min(rhs_lengths) < 1:
        raise CurriculensError(f"random_grammar: rhs_lengths must be positive, got {rhs_lengths}")
    rng = random.Random(seed)
    terminals = list(TERMINAL_LETTERS[:n_terminals])
    levels = [["s"]] + [[f"n{lev}_{k}" for k in range(symbols_per_level)] for lev in range(1, n_levels - 1)]
    levels.append(list(terminals))
    rules = []
    for lev in range(n_levels - 1):
        drawn = _draw_level(rng, levels[lev], levels[lev + 1], rules_per_symbol, rhs_lengths)
        for p in levels[lev]:
            for rhs in drawn[p]:
                rules.append(
                    {"lhs": p, "rhs": list(rhs), "rhs_is_terminal": [False] * len(rhs), "prob": 1.0 / rules_per_symbol}
                )
    for t in terminals:
        rules.append({"lhs": t, "rhs": [t], "rhs_is_terminal": [True], "prob": 1.0})
    nonterminals = [s for lev in levels for s in lev]
    token_map = {t: k for k, t in enumerate(terminals)}
    token_map.update({sp: n_terminals + k for k, sp in enumerate(SPECIAL_TOKENS)})
    d = {
        "schema_version": 1,
        "name": name or f"random-L{n_levels}-S{symbols_per_level}-R{rules_per_symbol}-T{n_terminals}-seed{seed}",
        "start_symbol": "s",
        "terminals": terminals,
        "nonterminals": nonterminals,
        "levels": {str(lev): syms for lev, syms in enumerate(levels)},
        "rules": rules,
        "token_map": token_map,
        "vocab_size_used_by_models": len(token_map),
    }
    return grammar_from_dict(d, source=f"random_grammar(seed={seed})")
