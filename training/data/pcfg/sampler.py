"""Seeded PCFG sampling with full derivations, vectorised level by level over all sentences.

Randomness is counter based: the uniform that picks the rule of the node at (level l, position p among
the sentence's level-l nodes) of sentence g (global index = offset + row) is a SplitMix64 hash of
(seed, g, l, p). Consequences (tested):

* ``sample(g, n, seed, offset=o)`` is sentences ``o .. o+n-1`` of one infinite stream per
  (grammar, seed, start): ``sample(g, 10, s)`` equals the first 10 of ``sample(g, 20, s)``, and
  ``sample(g, 10, s, offset=10)`` the last 10 -- batch splitting never changes the data.
* The naive recursive sampler ``sample_reference`` gives identical corpora (its benchmark baseline).
* Results do not depend on numpy's RNG algorithms (pure uint64 arithmetic).

Only strictly layered grammars (cfg3 family) are supported: every token then has exactly one ancestor
per level, so a derivation is two [L, D] arrays (D = ``grammar.n_levels``, levels 0..D-1 from the root
down to the preterminal):

* ``nt[i, d]``: numeric id (``grammar.nt_ids``) of the level-d ancestor of token i;
* ``ends[i, d]``: token i is the last token of that ancestor's span.

A sentence started at level s > 0 (``start_level=s`` or a level-s ``start`` symbol) has
``nt[:, :s] == -1`` and ``ends[:, :s] == False``.

Trap: ``ends`` are *span ends*, not the official code's ``end`` flags (``nt_classify.py``:
flag l = "the depth-(l + 1) node on the path is the last child of its parent"). Span ends
are the official flags AND-ed from the bottom: ``ends[:, d] == official[:, d:].all(1)``.
``official_end_flags`` converts; the official NT probe never reads its flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from curriculens.errors import CurriculensError

from .grammar import Grammar, LayeredTables, layered_tables

_M64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB
_START_SLOT = 0xFFFF  # the "level" code of the uniform that draws a sentence's root
_U53 = 2.0**-53


# ============================================================================ derivations
@dataclass(frozen=True, eq=False)
class Derivation:
    """One sentence and its derivation.

    tokens [L] int64 terminal token ids (no BOS); nt [L, D] int64 numeric NT id of each token's
    ancestor per level (-1 above the sentence's root level); ends [L, D] bool, token i is the last
    token of that ancestor's span. For an ambiguous sentence a parser returns one derivation.
    """

    tokens: np.ndarray
    nt: np.ndarray
    ends: np.ndarray

    @property
    def start_level(self) -> int:
        """Level of the sentence's root (first column of ``nt`` that is not -1)."""
        return int(np.argmax(self.nt[0] >= 0))

    @property
    def root(self) -> int:
        """Numeric id of the root nonterminal."""
        return int(self.nt[0, self.start_level])

    def spans(self, level: int) -> list[tuple[int, int, int]]:
        """``[(start, end_exclusive, nt_id), ...]`` of the level's nodes, left to right."""
        return spans(self, level)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Derivation):
            return NotImplemented
        return (
            np.array_equal(self.tokens, other.tokens)
            and np.array_equal(self.nt, other.nt)
            and np.array_equal(self.ends, other.ends)
        )

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


Parse = Derivation


def official_end_flags(ends: np.ndarray) -> np.ndarray:
    """The official ``end`` flags [L, D] bool from span ends ``ends`` [L, D] (one sentence).

    Flag l of token i is True iff the depth-(l + 1) node on its path (the terminal itself for
    l = D - 1) is the last child of its depth-l parent, i.e. iff the level-(l + 1) span holding
    i ends where the level-l span holding i ends. Levels above the sentence's root: False.
    """
    L, D = ends.shape
    # span end at each level: the first j >= i with ends[j, d] (L = none: a level above the root)
    idx = np.where(ends, np.arange(L)[:, None], L)
    span_end = np.minimum.accumulate(idx[::-1], axis=0)[::-1]  # [L, D]
    below = np.concatenate([span_end[:, 1:], np.arange(L)[:, None]], axis=1)  # level d + 1 (terminal: i)
    return (span_end == below) & (span_end < L)


def spans(derivation: Derivation | tuple[np.ndarray, np.ndarray], level: int) -> list[tuple[int, int, int]]:
    """Spans of the level-``level`` nodes of a derivation (or an ``(nt, ends)`` pair of [L, D] arrays).

    Returns ``[(start, end_exclusive, nt_id)]`` in order; ``[]`` for a level above the sentence's root.
    """
    nt, ends = (derivation.nt, derivation.ends) if isinstance(derivation, Derivation) else derivation
    col = nt[:, level]
    if col.size == 0 or col[0] < 0:
        return []
    stop = np.nonzero(ends[:, level])[0] + 1
    start = np.concatenate([[0], stop[:-1]])
    return [(int(a), int(b), int(col[a])) for a, b in zip(start, stop, strict=True)]


@dataclass(frozen=True, eq=False)
class Corpus:
    """``n`` sampled sentences with their derivations (see the module docstring for ``nt``/``ends``).

    tokens[i] [L_i] int64; nt[i] [L_i, D] int64; ends[i] [L_i, D] bool; lengths [n] int64;
    roots [n] int64 numeric id of each sentence's root; start_level: level of every root;
    n_levels = D. ``nt`` / ``ends`` / ``flat_nt`` / ``flat_ends`` are None when sampled with
    ``with_derivation=False``. The per-sentence arrays are views into one flat array per field
    (``flat_tokens`` [T], ``flat_nt`` [T, D], ``flat_ends`` [T, D], ``offsets`` [n + 1]).
    """

    tokens: list[np.ndarray]
    nt: list[np.ndarray] | None
    ends: list[np.ndarray] | None
    lengths: np.ndarray
    roots: np.ndarray
    start_level: int
    n_levels: int
    seed: int
    offset: int
    flat_tokens: np.ndarray
    flat_nt: np.ndarray | None
    flat_ends: np.ndarray | None
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> Derivation:
        return Derivation(self.tokens[i], self.nt[i], self.ends[i])

    def derivation(self, i: int) -> Derivation:
        return self[i]

    def padded_tokens(self, pad_id: int, bos_id: int | None = None) -> np.ndarray:
        """[n, max_len (+1 with BOS)] int64, right-padded with ``pad_id``; BOS prepended if given."""
        shift = 0 if bos_id is None else 1
        out = np.full((len(self), int(self.lengths.max(initial=0)) + shift), pad_id, dtype=np.int64)
        if bos_id is not None:
            out[:, 0] = bos_id
        rows, cols = self._grid()
        out[rows, cols + shift] = self.flat_tokens
        return out

    def padded_nt(self, fill: int = -100) -> tuple[np.ndarray, np.ndarray]:
        """(nt [n, max_len, D] int64 padded with ``fill``, ends [n, max_len, D] bool padded False).

        Entries above a sentence's root level keep -1."""
        shape = (len(self), int(self.lengths.max(initial=0)), self.n_levels)
        nt = np.full(shape, fill, dtype=np.int64)
        ends = np.zeros(shape, dtype=bool)
        rows, cols = self._grid()
        nt[rows, cols] = self.flat_nt
        ends[rows, cols] = self.flat_ends
        return nt, ends

    def _grid(self) -> tuple[np.ndarray, np.ndarray]:
        rows = np.repeat(np.arange(len(self)), self.lengths)
        cols = np.arange(self.flat_tokens.shape[0]) - self.offsets[:-1][rows]
        return rows, cols


# ================================================================================ hashing
def _mix64_int(z: int) -> int:
    z &= _M64
    z = ((z ^ (z >> 30)) * _C1) & _M64
    z = ((z ^ (z >> 27)) * _C2) & _M64
    return z ^ (z >> 31)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrap-around arithmetic)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(_C1)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(_C2)
    return z ^ (z >> np.uint64(31))


def _seed_key(seed: int) -> int:
    return _mix64_int(int(seed) + _GAMMA)


def _sentence_key_int(seed: int, g: int) -> int:
    return _mix64_int(_seed_key(seed) ^ _mix64_int((g + 1) * _GAMMA))


def _sentence_keys(seed: int, g: np.ndarray) -> np.ndarray:
    h = _mix64((g.astype(np.uint64) + np.uint64(1)) * np.uint64(_GAMMA))
    return _mix64(h ^ np.uint64(_seed_key(seed)))


def _uniform_int(key: int, level: int, pos: int) -> float:
    return (_mix64_int(key + ((level << 32) + pos + 1) * _GAMMA) >> 11) * _U53


def _uniform(keys: np.ndarray, level: int, pos: np.ndarray) -> np.ndarray:
    """[M] float64 in [0, 1): the uniform of node (level, pos) of the sentences with ``keys``."""
    ctr = (pos.astype(np.uint64) + np.uint64((level << 32) + 1)) * np.uint64(_GAMMA)
    return (_mix64(keys + ctr) >> np.uint64(11)).astype(np.float64) * _U53


# ================================================================================ sampling
def _resolve_start(grammar: Grammar, start: str | int | None, start_level: int | None) -> tuple[int, list[str]]:
    """(level, candidate root symbols) of the requested start."""
    if start is not None and start_level is not None:
        raise CurriculensError("give either start or start_level, not both")
    if isinstance(start, int) and not isinstance(start, bool):
        start_level, start = start, None
    if start is None and start_level is None:
        start = grammar.start
    if start is not None:
        if start not in grammar.levels:
            raise CurriculensError(f"start {start!r} is not a nonterminal of grammar {grammar.name!r}")
        return grammar.levels[start], [start]
    if not 0 <= start_level < grammar.n_levels:
        raise CurriculensError(
            f"start_level {start_level} outside 0..{grammar.n_levels - 1} of grammar {grammar.name!r}"
        )
    return start_level, list(grammar.level_symbols(start_level))


def _choose(tab: LayeredTables, nt: np.ndarray, keys: np.ndarray, level: int, pos: np.ndarray) -> np.ndarray:
    """Rule index for each node (NT index ``nt``); hashes only nodes whose NT has several rules."""
    rule = tab.nt_rules[nt, 0].copy()
    multi = np.nonzero(tab.nt_nrules[nt] > 1)[0]
    if multi.size:
        u = _uniform(keys[multi], level, pos[multi])
        nt_m = nt[multi]
        k = (u[:, None] >= tab.nt_cum[nt_m]).sum(axis=1)
        rule[multi] = tab.nt_rules[nt_m, k]
    return rule


def sample(
    grammar: Grammar,
    n: int,
    seed: int = 0,
    *,
    start: str | int | None = None,
    start_level: int | None = None,
    offset: int = 0,
    with_derivation: bool = True,
) -> Corpus:
    """Sample ``n`` sentences with derivations from a strictly layered PCFG.

    start: a nonterminal name to start every sentence from, or an int (same as ``start_level``).
    start_level: start each sentence at a nonterminal drawn uniformly among that level's symbols
    (calibration: cfg3b from level 1 gives ~150-token sentences). Default: the grammar's start symbol.
    offset: index of the first sentence in the seed's stream (see the module docstring).
    with_derivation: False skips ``nt`` / ``ends`` (then ``None``), for token-only data; same tokens.
    Per-sentence ``nt`` / ``ends`` are views (not C-contiguous) into level-major buffers.
    """
    tab = layered_tables(grammar)
    if n < 0:
        raise CurriculensError(f"n must be >= 0, got {n}")
    s, cands = _resolve_start(grammar, start, start_level)
    depth = grammar.n_levels
    keys = _sentence_keys(seed, np.arange(offset, offset + n, dtype=np.int64))
    cand_idx = np.array([tab.nt_index[c] for c in cands], dtype=np.int64)
    if len(cands) == 1:
        node_nt = np.full(n, cand_idx[0], dtype=np.int64)
    else:
        u = _uniform(keys, _START_SLOT, np.zeros(n, dtype=np.int64))
        node_nt = cand_idx[np.minimum((u * len(cands)).astype(np.int64), len(cands) - 1)]
    roots = tab.nt_numeric[node_nt]
    node_sent = np.arange(n, dtype=np.int64)
    node_pos = np.zeros(n, dtype=np.int64)
    level_nt = {s: node_nt}
    parents: dict[int, np.ndarray] = {}
    for lev in range(s, depth - 1):
        rule = _choose(tab, node_nt, keys[node_sent], lev, node_pos)
        rhs = tab.rule_rhs[rule]
        child_nt = rhs[rhs >= 0]
        parent = np.repeat(np.arange(node_nt.shape[0]), tab.rule_len[rule])
        child_sent = node_sent[parent]
        counts = np.bincount(child_sent, minlength=n)
        first = np.cumsum(counts) - counts
        node_pos = np.arange(child_nt.shape[0]) - first[child_sent]
        node_nt, node_sent = child_nt, child_sent
        level_nt[lev + 1] = node_nt
        parents[lev + 1] = parent
    rule = _choose(tab, node_nt, keys[node_sent], depth - 1, node_pos)
    flat_tokens = tab.rule_term[rule]
    n_tok = flat_tokens.shape[0]
    lengths = np.bincount(node_sent, minlength=n).astype(np.int64)
    flat_nt = flat_ends = None
    if with_derivation:
        # [D, T] level-major buffers (contiguous per level); flat_nt / flat_ends are their [T, D] views
        nt_dt = np.empty((depth, n_tok), dtype=np.int64)
        ends_dt = np.empty((depth, n_tok), dtype=bool)
        nt_dt[:s] = -1
        ends_dt[:s] = False
        node = np.arange(n_tok, dtype=np.int64)
        for lev in range(depth - 1, s - 1, -1):
            np.take(tab.nt_numeric, level_nt[lev][node], out=nt_dt[lev])
            if n_tok:
                np.not_equal(node[:-1], node[1:], out=ends_dt[lev, :-1])
                ends_dt[lev, -1] = True
            if lev > s:
                node = parents[lev][node]
        flat_nt, flat_ends = nt_dt.T, ends_dt.T
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return Corpus(
        tokens=_split(flat_tokens, offsets),
        nt=None if flat_nt is None else _split(flat_nt, offsets),
        ends=None if flat_ends is None else _split(flat_ends, offsets),
        lengths=lengths,
        roots=roots,
        start_level=s,
        n_levels=depth,
        seed=int(seed),
        offset=int(offset),
        flat_tokens=flat_tokens,
        flat_nt=flat_nt,
        flat_ends=flat_ends,
        offsets=offsets,
    )


def _split(flat: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """Views ``flat[offsets[i]:offsets[i + 1]]`` for each sentence."""
    bounds = offsets.tolist()
    return [flat[a:b] for a, b in pairwise(bounds)]


def corpus_from_derivations(
    derivations: Sequence[Derivation], start_level: int, n_levels: int, seed: int = 0, offset: int = 0
) -> Corpus:
    """Assemble a ``Corpus`` from per-sentence derivations (copies into flat arrays)."""
    lengths = np.array([len(d) for d in derivations], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat_tokens = np.concatenate([d.tokens for d in derivations]) if derivations else np.zeros(0, np.int64)
    flat_nt = np.concatenate([d.nt for d in derivations]) if derivations else np.zeros((0, n_levels), np.int64)
    flat_ends = np.concatenate([d.ends for d in derivations]) if derivations else np.zeros((0, n_levels), bool)
    return Corpus(
        tokens=_split(flat_tokens, offsets),
        nt=_split(flat_nt, offsets),
        ends=_split(flat_ends, offsets),
        lengths=lengths,
        roots=np.array([d.root for d in derivations], dtype=np.int64),
        start_level=start_level,
        n_levels=n_levels,
        seed=int(seed),
        offset=int(offset),
        flat_tokens=flat_tokens,
        flat_nt=flat_nt,
        flat_ends=flat_ends,
        offsets=offsets,
    )


def sample_reference(
    grammar: Grammar,
    n: int,
    seed: int = 0,
    *,
    start: str | int | None = None,
    start_level: int | None = None,
    offset: int = 0,
) -> Corpus:
    """Naive recursive sampler (one Python call per node, paper style: expand children left to right).

    Same random numbers as ``sample``, so the corpora are identical; it exists as the test oracle and
    the benchmark baseline. Slow (pure Python); use ``sample``.
    """
    grammar.require_layered("sample_reference")
    s, cands = _resolve_start(grammar, start, start_level)
    depth = grammar.n_levels
    cum = {sym: layered_tables(grammar).nt_cum[k] for sym, k in layered_tables(grammar).nt_index.items()}
    out = []
    for g in range(offset, offset + n):
        key = _sentence_key_int(seed, g)
        if len(cands) == 1:
            root = cands[0]
        else:
            root = cands[min(int(_uniform_int(key, _START_SLOT, 0) * len(cands)), len(cands) - 1)]
        out.append(_reference_derivation(grammar, cum, key, root, s, depth))
    return corpus_from_derivations(out, s, depth, seed, offset)


def _reference_derivation(grammar: Grammar, cum: dict, key: int, root: str, s: int, depth: int) -> Derivation:
    """One sentence of ``sample_reference``: expand ``root`` (at level ``s``) recursively, the
    rule of each node drawn with the sentence ``key`` at (level, position in level)."""
    counters = [0] * depth
    leaves: list[tuple[int, list[tuple[str, int]]]] = []  # (token, [(nt, node uid)] per level)

    def expand(sym: str, level: int, path: list[tuple[str, int]]) -> None:
        pos = counters[level]
        counters[level] += 1
        rules = grammar.rules_of(sym)
        rule = rules[0]
        if len(rules) > 1:
            u = _uniform_int(key, level, pos)
            for r, c in zip(rules, cum[sym], strict=False):  # cum is padded (inf) to the widest symbol
                if u < c:
                    rule = r
                    break
        path = path + [(sym, pos)]
        if rule.is_terminal_rule:
            leaves.append((grammar.token_map[rule.rhs[0]], path))
            return
        for child in rule.rhs:
            expand(child, level + 1, path)

    expand(root, s, [])
    length = len(leaves)
    tokens = np.array([t for t, _ in leaves], dtype=np.int64)
    nt = np.full((length, depth), -1, dtype=np.int64)
    ends = np.zeros((length, depth), dtype=bool)
    for i, (_, path) in enumerate(leaves):
        nxt = leaves[i + 1][1] if i + 1 < length else None
        for k, (sym, uid) in enumerate(path):
            nt[i, s + k] = grammar.nt_ids[sym]
            ends[i, s + k] = nxt is None or nxt[k][1] != uid
    return Derivation(tokens, nt, ends)


def derivation_rules(grammar: Grammar, derivation: Derivation) -> list[int]:
    """Indices (into ``grammar.rules``) of the rules a derivation uses, level by level, left to right.

    Also validates it: raises ``CurriculensError`` unless every level-l span is tiled by level-(l+1)
    spans that spell one of its rules, ``nt`` is constant within each span and -1 above the root level,
    and every preterminal span is one token its terminal rule produces. Use it to count rule usage or
    to compute a derivation's log-probability (sum of the rules' log probs).
    """
    grammar.require_layered("derivation_rules")
    name_of = {v: k for k, v in grammar.nt_ids.items()}
    nt, ends, toks = derivation.nt, derivation.ends, derivation.tokens
    depth = grammar.n_levels
    if nt.shape != (toks.shape[0], depth) or ends.shape != nt.shape:
        raise CurriculensError(f"not a derivation: nt/ends shapes {nt.shape}/{ends.shape} for {toks.shape[0]} tokens")
    s = derivation.start_level
    if (nt[:, :s] != -1).any() or ends[:, :s].any():
        raise CurriculensError("not a derivation: entries above the root level must be -1 / False")
    by_rhs = {}
    for r_i, r in enumerate(grammar.rules):
        by_rhs[(r.lhs, r.rhs, r.rhs_is_terminal)] = r_i
    used: list[int] = []
    level_spans = [spans(derivation, lev) for lev in range(depth)]
    if len(level_spans[s]) != 1:
        raise CurriculensError(f"not a derivation: {len(level_spans[s])} root spans at level {s}")
    for lev in range(s, depth):
        for a, b, x in level_spans[lev]:
            if (nt[a:b, lev] != x).any() or x not in name_of or grammar.levels[name_of[x]] != lev:
                raise CurriculensError(f"not a derivation: level {lev} span [{a}, {b}) is not one level-{lev} NT")
    for lev in range(s, depth - 1):
        kids = iter(level_spans[lev + 1])
        for a, b, x in level_spans[lev]:
            rhs, pos = [], a
            while pos < b:
                c0, c1, c = next(kids)
                if c0 != pos or c1 > b:
                    raise CurriculensError(f"not a derivation: level {lev + 1} span [{c0}, {c1}) crosses its parent")
                rhs.append(name_of[c])
                pos = c1
            key = (name_of[x], tuple(rhs), (False,) * len(rhs))
            if key not in by_rhs:
                raise CurriculensError(f"not a derivation: no rule {key[0]} -> {' '.join(rhs)}")
            used.append(by_rhs[key])
    inv = {v: k for k, v in grammar.token_map.items()}
    for a, b, x in level_spans[depth - 1]:
        key = (name_of[x], (inv.get(int(toks[a]), "?"),), (True,))
        if b != a + 1 or key not in by_rhs:
            raise CurriculensError(f"not a derivation: preterminal span [{a}, {b}) does not produce its token")
        used.append(by_rhs[key])
    return used
