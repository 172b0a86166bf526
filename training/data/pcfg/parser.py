"""Parsing strictly layered PCFGs: a banded, level-by-level inside chart (numpy) plus a naive CYK oracle.

Chart. In a strictly layered grammar a level-l node's children are all level-(l+1) nodes, so the chart
is built bottom-up one level at a time. Nonterminal X only spans lengths in [lo_X, hi_X]
(``Grammar.length_bounds``), so its chart row is a band ``B_X[i, w]`` = value of span
[i, i + lo_X + w), shape [L + 1, hi_X - lo_X + 1]. A rule X -> A B (C) is a chain of band products,
each a loop over A's width of vectorised [L, W_B] updates; cfg3b's widths are 1..147, so a 400-token
sentence parses in milliseconds. The root level only needs the single span [0, L].

Semirings: "bool" (recognition; values clipped to 1), "count" (number of derivations, float64,
exact below 2**53), "prob" (inside probability, float64; underflows to 0 below ~1e-308, far beyond
cfg3b's ~1e-40 sentences).

Ambiguity: ``parse`` returns one derivation: top-down, the first rule in file order, then the
smallest split points, that lead to a complete derivation. ``count_parses`` tells how many exist.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from curriculens.errors import CurriculensError

from .grammar import Grammar, LayeredTables, layered_tables
from .sampler import Derivation, _resolve_start

Band = tuple[np.ndarray, int]  # (values [L + 1, W], lo): values[i, w] is span [i, i + lo + w)


def _as_tokens(grammar: Grammar, tokens: Sequence[int] | np.ndarray | str) -> np.ndarray:
    if isinstance(tokens, str):
        return grammar.encode(tokens)
    return np.asarray(tokens, dtype=np.int64).reshape(-1)


def _band_product(a: Band, b: Band, n: int, clip: bool) -> Band:
    """(A o B)[i, k] = sum_j A[i, j] B[j, k] in band form; ``n`` = sentence length."""
    av, alo = a
    bv, blo = b
    wa, wb = av.shape[1], bv.shape[1]
    out = np.zeros((n + 1, wa + wb - 1))
    for w in range(wa):
        sh = alo + w
        if sh > n:
            break
        col = av[: n + 1 - sh, w]
        if not col.any():
            continue
        out[: n + 1 - sh, w : w + wb] += col[:, None] * bv[sh:, :]
    if clip:
        np.minimum(out, 1.0, out=out)
    return out, alo + blo


def _rule_weight(prob: float, mode: str) -> float:
    return prob if mode == "prob" else 1.0


def _emission(grammar: Grammar, tokens: np.ndarray) -> np.ndarray:
    """[L, V] one-hot of ``tokens`` over token ids (V = largest id + 1); ids out of range: zero rows."""
    vocab = max(grammar.token_map.values()) + 1
    out = np.zeros((tokens.shape[0], vocab))
    ok = (tokens >= 0) & (tokens < vocab)
    out[np.nonzero(ok)[0], tokens[ok]] = 1.0
    return out


def _chart(grammar: Grammar, tab: LayeredTables, emission: np.ndarray, top: int, mode: str) -> dict[int, Band]:
    """Bands of every NT at levels top+1 .. D-1 (NT index -> Band).

    ``emission`` [L, V]: the weight of token id v at position i (a one-hot row for an observed
    token; a row of ones marginalises a hidden position over every terminal)."""
    n = emission.shape[0]
    depth = grammar.n_levels
    clip = mode == "bool"
    chart: dict[int, Band] = {}
    pre = [k for k, lev in enumerate(tab.nt_level) if lev == depth - 1]
    term_rules = np.nonzero(tab.rule_term >= 0)[0]
    for k in pre:
        vals = np.zeros((n + 1, 1))
        for r in term_rules:
            if tab.rule_lhs[r] == k:
                vals[:n, 0] += emission[:, tab.rule_term[r]] * _rule_weight(grammar.rules[r].prob, mode)
        if clip:
            np.minimum(vals, 1.0, out=vals)
        chart[k] = (vals, 1)
    for lev in range(depth - 2, top, -1):
        for k in np.nonzero(tab.nt_level == lev)[0]:
            lo, hi = grammar.length_bounds(grammar.nonterminals[k])
            vals = np.zeros((n + 1, hi - lo + 1))
            for r in tab.nt_rules[k, : tab.nt_nrules[k]]:
                kids = tab.rule_rhs[r, : tab.rule_len[r]]
                band = chart[int(kids[0])]
                for c in kids[1:]:
                    band = _band_product(band, chart[int(c)], n, clip)
                bv, blo = band
                off = blo - lo
                vals[:, off : off + bv.shape[1]] += bv * _rule_weight(grammar.rules[r].prob, mode)
            if clip:
                np.minimum(vals, 1.0, out=vals)
            chart[int(k)] = (vals, lo)
    return chart


def _span_value(band: Band, i: int, k: int) -> float:
    vals, lo = band
    w = k - i - lo
    if i < 0 or i >= vals.shape[0] or not 0 <= w < vals.shape[1]:
        return 0.0
    return float(vals[i, w])


def _ends_at(band: Band, k: int) -> np.ndarray:
    """[L + 1] values of spans [i, k) for every start i (0 where out of band)."""
    vals, lo = band
    out = np.zeros(vals.shape[0])
    starts = k - lo - np.arange(vals.shape[1])
    ok = (starts >= 0) & (starts < vals.shape[0])
    out[starts[ok]] = vals[starts[ok], np.nonzero(ok)[0]]
    return out


def _starts_at(band: Band, i: int, size: int) -> np.ndarray:
    """[size] values of spans [i, k) for every end k (0 where out of band)."""
    vals, lo = band
    out = np.zeros(size)
    ends = i + lo + np.arange(vals.shape[1])
    ok = ends < size
    out[ends[ok]] = vals[i, ok]
    return out


def _rule_value(chart: dict[int, Band], kids: Sequence[int], i: int, k: int, n: int, mode: str) -> float:
    """Value (sum over split points) of the child sequence ``kids`` spanning [i, k)."""
    if len(kids) == 1:
        return _span_value(chart[kids[0]], i, k)
    vec = _starts_at(chart[kids[0]], i, n + 1)  # vec[j]: value of kids[0] over [i, j)
    for c in kids[1:-1]:
        nxt = np.zeros(n + 1)
        for j in np.nonzero(vec)[0]:
            nxt += vec[j] * _starts_at(chart[c], int(j), n + 1)
        vec = np.minimum(nxt, 1.0) if mode == "bool" else nxt
    return float(vec @ _ends_at(chart[kids[-1]], k))


def _root_values(
    grammar: Grammar, tab: LayeredTables, chart: dict[int, Band], cands: list[str], n: int, mode: str
) -> dict[str, float]:
    """Value of the whole span [0, n) for each candidate root symbol."""
    out = {}
    for sym in cands:
        k = tab.nt_index[sym]
        if grammar.is_preterminal(sym):  # a one-token sentence; the band holds the rule weights
            out[sym] = _span_value(chart[k], 0, n)
            continue
        total = 0.0
        for r in tab.nt_rules[k, : tab.nt_nrules[k]]:
            kids = [int(c) for c in tab.rule_rhs[r, : tab.rule_len[r]]]
            total += _rule_value(chart, kids, 0, n, n, mode) * _rule_weight(grammar.rules[r].prob, mode)
        out[sym] = total
    return out


def _inside(
    grammar: Grammar,
    tokens: Sequence[int] | np.ndarray | str,
    start: str | int | None,
    start_level: int | None,
    mode: str,
    emission: np.ndarray | None = None,
) -> tuple[dict[str, float], dict[int, Band], np.ndarray, int]:
    """Root values, chart, tokens and start level; ``emission`` [L, V] replaces the one-hot of
    ``tokens`` (see ``_chart``)."""
    tab = layered_tables(grammar)
    toks = _as_tokens(grammar, tokens)
    s, cands = _resolve_start(grammar, start, start_level)
    n = toks.shape[0]
    cands = [c for c in cands if grammar.length_bounds(c)[0] <= n <= grammar.length_bounds(c)[1]]
    if n == 0 or not cands:
        return {}, {}, toks, s
    chart = _chart(grammar, tab, _emission(grammar, toks) if emission is None else emission, s, mode)
    return _root_values(grammar, tab, chart, cands, n, mode), chart, toks, s


def accepts(
    grammar: Grammar,
    tokens: Sequence[int] | np.ndarray | str,
    *,
    start: str | int | None = None,
    start_level: int | None = None,
) -> bool:
    """Whether the grammar derives ``tokens`` (terminal ids, no BOS; a str is encoded char by char)
    from ``start`` (default: the start symbol) or from any nonterminal of ``start_level``."""
    roots, _, _, _ = _inside(grammar, tokens, start, start_level, "bool")
    return any(v > 0 for v in roots.values())


def count_parses(
    grammar: Grammar,
    tokens: Sequence[int] | np.ndarray | str,
    *,
    start: str | int | None = None,
    start_level: int | None = None,
) -> int:
    """Number of derivations of ``tokens`` (summed over the allowed roots); 0 if rejected."""
    roots, _, _, _ = _inside(grammar, tokens, start, start_level, "count")
    return int(round(sum(roots.values())))


def inside_logprob(
    grammar: Grammar,
    tokens: Sequence[int] | np.ndarray | str,
    *,
    start: str | int | None = None,
    start_level: int | None = None,
) -> float:
    """log P(tokens | root) in nats, summed over derivations (inside algorithm); ``-inf`` if rejected.

    With ``start_level`` the roots are weighted uniformly, as ``sample(start_level=...)`` draws them."""
    roots, _, _, _ = _inside(grammar, tokens, start, start_level, "prob")
    s, cands = _resolve_start(grammar, start, start_level)
    total = sum(roots.values()) / len(cands)
    return math.log(total) if total > 0 else -math.inf


def masked_posteriors(
    grammar: Grammar,
    tokens: Sequence[int] | np.ndarray | str,
    hidden: Sequence[bool] | np.ndarray,
    *,
    start: str | int | None = None,
    start_level: int | None = None,
) -> np.ndarray:
    """Exact posterior of every hidden token given the visible ones: [n_hidden, n_terminals].

    Row h, column t: P(token at the h-th hidden position = ``grammar.terminal_ids[t]`` | the tokens
    at every position not in ``hidden``, the sentence length, the root as in ``inside_logprob``),
    the other hidden positions summed over every terminal. ``hidden`` [L] bool; the tokens at hidden
    positions are ignored. One inside pass per (hidden position, terminal). Rows sum to 1; a
    ``CurriculensError`` if the visible tokens cannot occur at this length.

    This is the Bayes-optimal masked-LM predictor when other positions cannot see the masked ones
    (``pcfg_mlm.mlm_batch(hide_masked_keys=True)``); ``training.data.pcfg_ceiling`` uses it.
    """
    toks = _as_tokens(grammar, tokens)
    hid = np.asarray(hidden, dtype=bool).reshape(-1)
    if hid.shape != toks.shape:
        raise CurriculensError(f"hidden has {hid.shape[0]} flags for {toks.shape[0]} tokens")
    terms = list(grammar.terminal_ids)
    base = _emission(grammar, toks)
    base[hid] = 0.0
    base[np.ix_(hid, terms)] = 1.0
    rows = np.nonzero(hid)[0]
    out = np.zeros((rows.shape[0], len(terms)))
    for h, i in enumerate(rows):
        for t, tok in enumerate(terms):
            em = base.copy()
            em[i] = 0.0
            em[i, tok] = 1.0
            roots, _, _, _ = _inside(grammar, toks, start, start_level, "prob", emission=em)
            out[h, t] = sum(roots.values())
    z = out.sum(axis=1, keepdims=True)
    if rows.shape[0] and not (z > 0).all():
        raise CurriculensError("the visible tokens cannot occur in a sentence of this length from this root")
    return out / np.where(z > 0, z, 1.0)


def parse(
    grammar: Grammar,
    tokens: Sequence[int] | np.ndarray | str,
    *,
    start: str | int | None = None,
    start_level: int | None = None,
) -> Derivation | None:
    """One derivation of ``tokens`` as a ``Derivation`` (= ``Parse``: tokens, nt [L, D], ends [L, D],
    the sampler's format), or None if the grammar does not derive them. Ambiguous sentences: see the
    module docstring for which derivation is returned."""
    roots, chart, toks, s = _inside(grammar, tokens, start, start_level, "bool")
    root = next((sym for sym, v in roots.items() if v > 0), None)
    if root is None:
        return None
    tab = layered_tables(grammar)
    n = toks.shape[0]
    depth = grammar.n_levels
    nt = np.full((n, depth), -1, dtype=np.int64)
    ends = np.zeros((n, depth), dtype=bool)
    todo = [(tab.nt_index[root], 0, n)]
    while todo:
        k, i, j = todo.pop()
        lev = int(tab.nt_level[k])
        nt[i:j, lev] = tab.nt_numeric[k]
        ends[j - 1, lev] = True
        if lev == depth - 1:
            continue
        todo.extend(_split(tab, chart, k, i, j, n))
    return Derivation(toks.copy(), nt, ends)


def _split(tab: LayeredTables, chart: dict[int, Band], k: int, i: int, j: int, n: int) -> list[tuple[int, int, int]]:
    """Children (nt index, start, end) of node k over [i, j): first rule, then smallest split points."""
    for r in tab.nt_rules[k, : tab.nt_nrules[k]]:
        kids = [int(c) for c in tab.rule_rhs[r, : tab.rule_len[r]]]
        out = []
        pos = i
        for m, c in enumerate(kids):
            if m == len(kids) - 1:
                if _span_value(chart[c], pos, j) > 0:
                    out.append((c, pos, j))
                    return out
                break
            # smallest end e of child m such that the remaining children can span [e, j)
            cand = np.nonzero(_starts_at(chart[c], pos, n + 1))[0]
            nxt = next((int(e) for e in cand if _rule_value(chart, kids[m + 1 :], int(e), j, n, "bool") > 0), None)
            if nxt is None:
                break
            out.append((c, pos, nxt))
            pos = nxt
    raise AssertionError("chart said the span is derivable but no rule splits it")  # pragma: no cover


# ================================================================================ oracle
def cyk_reference(
    grammar: Grammar,
    tokens: Sequence[int] | np.ndarray | str,
    *,
    start: str | int | None = None,
    start_level: int | None = None,
) -> int:
    """Naive pure-Python CYK counting derivations (0 = rejected): ternary rules binarised with one
    fresh symbol per rule, triple loop over (length, start, split), unary X -> A closed per cell.
    Shares no code with the banded chart, so it is the oracle for ``accepts`` / ``count_parses``;
    O(L^3 |R|), for short sentences only."""
    toks = [int(t) for t in _as_tokens(grammar, tokens)]
    _, cands = _resolve_start(grammar, start, start_level)
    n = len(toks)
    if n == 0:
        return 0
    lexical: list[tuple[str, int]] = []  # (X, token id)
    unary: list[tuple[str, str]] = []  # (X, A): X -> A with A a nonterminal
    binary: list[tuple[str, str, str]] = []  # (X, A, B)
    for r_i, r in enumerate(grammar.rules):
        if r.is_terminal_rule:
            lexical.append((r.lhs, grammar.token_map[r.rhs[0]]))
            continue
        syms = list(r.rhs)
        lhs = r.lhs
        while len(syms) > 2:
            fresh = f"<{r_i}:{len(syms)}>"
            binary.append((lhs, syms[0], fresh))
            lhs, syms = fresh, syms[1:]
        if len(syms) == 1:
            unary.append((lhs, syms[0]))
        else:
            binary.append((lhs, syms[0], syms[1]))
    # unary closure deepest level first: exact for layered grammars (A is one level below X)
    unary.sort(key=lambda xa: -grammar.levels[xa[0]])

    def close(cell: dict[str, int]) -> dict[str, int]:
        for x, a in unary:
            if a in cell:
                cell[x] = cell.get(x, 0) + cell[a]
        return cell

    table: dict[tuple[int, int], dict[str, int]] = {}
    for i, t in enumerate(toks):
        cell: dict[str, int] = {}
        for x, tid in lexical:
            if tid == t:
                cell[x] = cell.get(x, 0) + 1
        table[(i, i + 1)] = close(cell)
    for length in range(2, n + 1):
        for i in range(0, n - length + 1):
            k = i + length
            cell = {}
            for j in range(i + 1, k):
                left, right = table[(i, j)], table[(j, k)]
                if not left or not right:
                    continue
                for x, a, b in binary:
                    if a in left and b in right:
                        cell[x] = cell.get(x, 0) + left[a] * right[b]
            table[(i, k)] = close(cell)
    return sum(table[(0, n)].get(c, 0) for c in cands)
