"""PCFG grammars as data: the ``Grammar`` type, the JSON loader and its validator.

The JSON format (``schema_version`` 1) is the one of ``shared/data/pcfg/cfg3b.json``; extra fields
(``stats``, ``source_*``, ``lhs_level`` ...) are ignored. The format: ``docs/formats.md``.

Terminals and nonterminals live in two separate namespaces. cfg3b's preterminals ``a, b, c`` share
their names with the terminal characters ``a, b, c``: the rule ``a -> 'a'`` is stored as
``Rule("a", ("a",), 1.0, rhs_is_terminal=(True,))``. A rule symbol is a terminal exactly when its
``rhs_is_terminal`` flag says so; files may omit the flags, and then a symbol is a terminal when it is
not a nonterminal name (a unary self rule ``x -> x`` with ``x`` in both lists is read as a terminal rule).
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from curriculens.errors import CurriculensError
from curriculens.io import write_json

SPECIAL_TOKENS = ("BOS", "EOS", "PAD", "MASK")
SCHEMA_VERSION = 1
PROB_TOL = 1e-6


class GrammarError(CurriculensError):
    """A grammar file or dict that fails validation.

    ``problems`` lists every problem found; the message is a summary line
    ``grammar SRC has N problem(s):`` followed by one ``  - problem`` line each.
    (A missing file is a one-line message with ``problems == [message]``.)
    """

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = list(problems) or [message]


@dataclass(frozen=True)
class Rule:
    """One production ``lhs -> rhs`` with probability ``prob``.

    ``rhs_is_terminal[k]`` says whether ``rhs[k]`` is a terminal character (True) or a nonterminal
    name (False); the two namespaces may share names (cfg3b: preterminal ``a`` -> terminal ``'a'``).
    """

    lhs: str
    rhs: tuple[str, ...]
    prob: float
    rhs_is_terminal: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rhs", tuple(self.rhs))
        flags = tuple(bool(f) for f in self.rhs_is_terminal)
        if not flags:
            flags = (False,) * len(self.rhs)
        object.__setattr__(self, "rhs_is_terminal", flags)

    @property
    def is_terminal_rule(self) -> bool:
        """True for ``X -> t`` with ``t`` one terminal (a preterminal rule)."""
        return len(self.rhs) == 1 and self.rhs_is_terminal[0]

    def __str__(self) -> str:
        rhs = " ".join(f"'{s}'" if t else s for s, t in zip(self.rhs, self.rhs_is_terminal, strict=True))
        return f"{self.lhs} -> {rhs} [{self.prob:g}]"


@dataclass(frozen=True)
class Grammar:
    """A validated PCFG. Build it with ``grammar_from_dict`` / ``load_grammar`` / ``random_grammar``.

    levels:   nonterminal -> level (root = 0), always each NT's minimal depth from ``start``; in a
              strictly layered grammar (cfg3 family) every rule maps level l to level l + 1 and the
              preterminals form the deepest level.
    token_map: terminal characters and the specials BOS/EOS/PAD/MASK -> model token ids.
    nt_ids:   nonterminal -> numeric id (probe class label; cfg3b: Allen-Zhu's numbers, s = 22 ... a = 1).
    vocab_size: the models' vocabulary size (cfg3b: 8, one more than the 7 ids used).
    """

    name: str
    start: str
    terminals: tuple[str, ...]
    nonterminals: tuple[str, ...]
    rules: tuple[Rule, ...]
    levels: dict[str, int]
    token_map: dict[str, int]
    nt_ids: dict[str, int]
    vocab_size: int

    def __hash__(self) -> int:  # the dict fields are unhashable; rules identify a grammar well enough
        return hash((self.name, self.start, self.rules))

    # ----------------------------------------------------------------------------- ids
    @property
    def bos_id(self) -> int:
        return self.token_map["BOS"]

    @property
    def eos_id(self) -> int:
        return self.token_map["EOS"]

    @property
    def pad_id(self) -> int:
        return self.token_map["PAD"]

    @property
    def mask_id(self) -> int:
        return self.token_map["MASK"]

    @cached_property
    def terminal_ids(self) -> tuple[int, ...]:
        """Sorted token ids of the terminal characters."""
        return tuple(sorted(self.token_map[t] for t in self.terminals))

    @cached_property
    def n_nt_classes(self) -> int:
        """``max(nt_ids) + 1``: the number of classes an NT probe needs."""
        return max(self.nt_ids.values()) + 1

    # --------------------------------------------------------------------------- structure
    @property
    def n_levels(self) -> int:
        """Number of levels, root and preterminals included (cfg3b: 7, levels 0..6)."""
        return max(self.levels.values()) + 1

    def level_symbols(self, level: int) -> tuple[str, ...]:
        """Nonterminals at ``level``, in ``nonterminals`` order."""
        return tuple(s for s in self.nonterminals if self.levels[s] == level)

    @cached_property
    def _rules_by_lhs(self) -> dict[str, tuple[Rule, ...]]:
        out: dict[str, list[Rule]] = {s: [] for s in self.nonterminals}
        for r in self.rules:
            out[r.lhs].append(r)
        return {k: tuple(v) for k, v in out.items()}

    def rules_of(self, lhs: str) -> tuple[Rule, ...]:
        """The rules of ``lhs`` in file order (unknown symbol -> ``()``)."""
        return self._rules_by_lhs.get(lhs, ())

    def is_preterminal(self, sym: str) -> bool:
        """True when ``sym`` is a nonterminal all of whose rules are ``sym -> terminal``."""
        rules = self.rules_of(sym)
        return bool(rules) and all(r.is_terminal_rule for r in rules)

    @cached_property
    def strictly_layered(self) -> bool:
        """Every NT at level l < deepest has only all-NT rules into level l + 1, and the deepest
        level holds exactly the preterminals. The sampler and parser need this."""
        deepest = self.n_levels - 1
        if self.levels[self.start] != 0:
            return False
        for nt in self.nonterminals:
            lev = self.levels[nt]
            if (lev == deepest) != self.is_preterminal(nt):
                return False
            if lev < deepest:
                for r in self.rules_of(nt):
                    if any(r.rhs_is_terminal) or any(self.levels[c] != lev + 1 for c in r.rhs):
                        return False
        return True

    def require_layered(self, what: str) -> None:
        """Raise ``GrammarError`` (one line) unless the grammar is strictly layered."""
        if not self.strictly_layered:
            raise GrammarError(f"{what} needs a strictly layered grammar (cfg3 family); grammar {self.name!r} is not")

    @cached_property
    def _length_bounds(self) -> dict[str, tuple[int, float]]:
        lo: dict[str, float] = {s: math.inf for s in self.nonterminals}
        changed = True
        while changed:  # Bellman-Ford style fixed point; terminates as all NTs are productive
            changed = False
            for r in self.rules:
                v = sum(1 if t else lo[c] for c, t in zip(r.rhs, r.rhs_is_terminal, strict=True))
                if v < lo[r.lhs]:
                    lo[r.lhs], changed = v, True
        hi: dict[str, float] = {}
        state: dict[str, int] = {}

        def visit(s: str) -> float:  # longest yield; inf on a cycle
            if state.get(s) == 1:
                return math.inf
            if s in hi:
                return hi[s]
            state[s] = 1
            best = 0.0
            for r in self.rules_of(s):
                best = max(best, sum(1 if t else visit(c) for c, t in zip(r.rhs, r.rhs_is_terminal, strict=True)))
            state[s] = 2
            hi[s] = best
            return best

        for s in self.nonterminals:
            visit(s)
        return {s: (int(lo[s]), hi[s] if math.isinf(hi[s]) else int(hi[s])) for s in self.nonterminals}

    def length_bounds(self, sym: str | None = None) -> tuple[int, float]:
        """(min, max) yield length of ``sym`` (default: start); max is ``inf`` for recursive NTs."""
        return self._length_bounds[sym or self.start]

    def expected_length(self, sym: str | None = None) -> float:
        """Expected yield length of ``sym`` (default: start), exact (linear system over NTs)."""
        idx = {s: k for k, s in enumerate(self.nonterminals)}
        n = len(idx)
        a = np.eye(n)
        b = np.zeros(n)
        for r in self.rules:
            i = idx[r.lhs]
            for c, t in zip(r.rhs, r.rhs_is_terminal, strict=True):
                if t:
                    b[i] += r.prob
                else:
                    a[i, idx[c]] -= r.prob
        return float(np.linalg.solve(a, b)[idx[sym or self.start]])

    @cached_property
    def _tables(self) -> LayeredTables:
        return _compile(self)

    # ------------------------------------------------------------------------ conversion
    def encode(self, symbols: Iterable[str]) -> np.ndarray:
        """Terminal characters / special names -> int64 token ids (a str is read char by char)."""
        try:
            return np.array([self.token_map[s] for s in symbols], dtype=np.int64)
        except KeyError as exc:
            raise CurriculensError(f"cannot encode {exc.args[0]!r}: not a token of grammar {self.name!r}") from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Token ids -> terminal characters / special names."""
        inv = self._inverse_token_map
        try:
            return [inv[int(i)] for i in ids]
        except KeyError as exc:
            raise CurriculensError(f"cannot decode id {exc.args[0]}: not a token of grammar {self.name!r}") from None

    @cached_property
    def _inverse_token_map(self) -> dict[int, str]:
        return {v: k for k, v in self.token_map.items()}

    def to_dict(self) -> dict[str, Any]:
        """The JSON format (``grammar_from_dict(g.to_dict()) == g``)."""
        levels: dict[str, list[str]] = {}
        for s in self.nonterminals:
            levels.setdefault(str(self.levels[s]), []).append(s)
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "start_symbol": self.start,
            "terminals": list(self.terminals),
            "nonterminals": list(self.nonterminals),
            "levels": dict(sorted(levels.items(), key=lambda kv: int(kv[0]))),
            "numeric_id_of_symbol": dict(self.nt_ids),
            "rules": [
                {"lhs": r.lhs, "rhs": list(r.rhs), "rhs_is_terminal": list(r.rhs_is_terminal), "prob": r.prob}
                for r in self.rules
            ],
            "token_map": dict(self.token_map),
            "vocab_size_used_by_models": self.vocab_size,
        }


# ================================================================================ loading
BUNDLED_GRAMMARS = ("cfg3b",)
"""Grammars shipped as package data (``training/data/pcfg/grammars/<name>.json``), loadable by name."""


def grammar_path(ref: Path | str) -> Path:
    """The file a grammar reference names: an existing file path as given, else a bundled
    grammar's name (``"cfg3b"``, the paper's grammar), else ``GrammarError``.

    Trap: a file in the working directory called ``cfg3b`` wins over the bundled grammar.
    """
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    name = str(ref)
    if name in BUNDLED_GRAMMARS:
        from importlib.resources import files

        return Path(str(files("training.data.pcfg").joinpath("grammars", f"{name}.json")))
    raise GrammarError(f"grammar file not found: {ref} (bundled grammars by name: {', '.join(BUNDLED_GRAMMARS)})")


def load_grammar(path: Path | str) -> Grammar:
    """Read and validate a JSON grammar: a file path, or the name of a bundled grammar
    (``BUNDLED_GRAMMARS``); ``GrammarError`` lists every problem found."""
    path = grammar_path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problem = f"malformed JSON: {exc}"
        raise GrammarError(f"grammar {path} has 1 problem(s):\n  - {problem}", [problem]) from None
    return grammar_from_dict(d, source=str(path))


def save_grammar(grammar: Grammar, path: Path | str) -> None:
    """Write ``grammar.to_dict()`` atomically as JSON."""
    write_json(path, grammar.to_dict())


def grammar_from_dict(d: Mapping[str, Any], source: str = "<dict>") -> Grammar:
    """Validate a grammar dict (the JSON format) and build a ``Grammar``.

    Checks: required fields and their types; no duplicate names; every rule's symbols known; each
    nonterminal has rules whose probabilities lie in [0, 1] and sum to 1 (tolerance 1e-6); no
    duplicate rules; every symbol reachable from the start symbol; every nonterminal productive;
    token ids unique non-negative ints covering the terminals and BOS/EOS/PAD/MASK; optional
    ``levels`` / ``numeric_id_of_symbol`` / ``vocab_size_used_by_models`` consistent.
    All problems are collected, then raised together as one ``GrammarError``.
    """
    problems: list[str] = []
    grammar = _build(d, problems)
    if problems or grammar is None:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise GrammarError(f"grammar {source} has {len(problems)} problem(s):\n{lines}", problems)
    return grammar


def _str_list(d: Mapping[str, Any], key: str, problems: list[str]) -> list[str] | None:
    v = d.get(key)
    if v is None:
        problems.append(f"missing field {key!r}")
        return None
    if not isinstance(v, list) or not all(isinstance(s, str) and s for s in v):
        problems.append(f"field {key!r} must be a list of non-empty strings")
        return None
    seen: set[str] = set()
    for s in v:
        if s in seen:
            problems.append(f"{key}: duplicate name {s!r}")
        seen.add(s)
    return list(dict.fromkeys(v))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _build(d: Mapping[str, Any], problems: list[str]) -> Grammar | None:
    if not isinstance(d, Mapping):
        problems.append(f"top level must be a JSON object, got {type(d).__name__}")
        return None
    if "schema_version" in d and d["schema_version"] != SCHEMA_VERSION:
        problems.append(f"unsupported schema_version {d['schema_version']!r} (expected {SCHEMA_VERSION})")
    name = d.get("name", "grammar")
    if not isinstance(name, str):
        problems.append("field 'name' must be a string")
        name = "grammar"
    terminals = _str_list(d, "terminals", problems)
    nonterminals = _str_list(d, "nonterminals", problems)
    start = d.get("start_symbol")
    if start is None:
        problems.append("missing field 'start_symbol'")
    elif nonterminals is not None and start not in nonterminals:
        problems.append(f"start_symbol {start!r} is not a nonterminal")
        start = None
    if terminals is None or nonterminals is None:
        _check_token_map(d, terminals or [], problems)
        return None
    t_set, nt_set = set(terminals), set(nonterminals)

    # ---------------------------------------------------------------------------- rules
    rules: list[Rule] = []
    raw_rules = d.get("rules")
    if raw_rules is None:
        problems.append("missing field 'rules'")
        raw_rules = []
    elif not isinstance(raw_rules, list):
        problems.append("field 'rules' must be a list")
        raw_rules = []
    tainted: set[str] = set()  # NTs with a malformed rule: skip the checks it would cascade into
    loose: list[tuple[str, list[str]]] = []  # (lhs, rhs names) of malformed rules, for reachability
    for k, rr in enumerate(raw_rules):
        rule = _parse_rule(k, rr, t_set, nt_set, problems)
        if rule is not None:
            rules.append(rule)
        elif isinstance(rr, Mapping) and isinstance(rr.get("lhs"), str):
            tainted.add(rr["lhs"])
            if isinstance(rr.get("rhs"), list):
                loose.append((rr["lhs"], [c for c in rr["rhs"] if isinstance(c, str)]))

    by_lhs: dict[str, list[Rule]] = {s: [] for s in nonterminals}
    for r in rules:
        by_lhs[r.lhs].append(r)
    for nt in nonterminals:
        rs = by_lhs[nt]
        if nt in tainted:
            continue
        if not rs:
            problems.append(f"nonterminal {nt!r} has no rules")
            continue
        total = sum(r.prob for r in rs)
        if abs(total - 1.0) > PROB_TOL:
            problems.append(f"probabilities of the rules of {nt!r} sum to {total:.9g}, not 1")
        seen: set[tuple[tuple[str, ...], tuple[bool, ...]]] = set()
        for r in rs:
            key = (r.rhs, r.rhs_is_terminal)
            if key in seen:
                problems.append(f"duplicate rule {r}")
            seen.add(key)

    # --------------------------------------------------------- reachability, productivity
    if start is not None:
        reach_nt, reach_t = {start}, set()
        todo = deque([start])
        edges: dict[str, list[tuple[str, bool]]] = {}
        for r in rules:
            edges.setdefault(r.lhs, []).extend(zip(r.rhs, r.rhs_is_terminal, strict=True))
        for lhs, rhs in loose:
            edges.setdefault(lhs, []).extend((c, c not in nt_set) for c in rhs)
        while todo:
            for c, t in edges.get(todo.popleft(), ()):
                if t:
                    reach_t.add(c)
                elif c not in reach_nt:
                    reach_nt.add(c)
                    todo.append(c)
        for nt in nonterminals:
            if nt not in reach_nt:
                problems.append(f"nonterminal {nt!r} is unreachable from start symbol {start!r}")
        for t in terminals:
            if t not in reach_t:
                problems.append(f"terminal {t!r} is unreachable from start symbol {start!r}")
    productive: set[str] = set(tainted)
    changed = True
    while changed:
        changed = False
        for r in rules:
            if r.lhs not in productive and all(
                t or c in productive for c, t in zip(r.rhs, r.rhs_is_terminal, strict=True)
            ):
                productive.add(r.lhs)
                changed = True
    for nt in nonterminals:
        if by_lhs[nt] and nt not in productive:
            problems.append(f"nonterminal {nt!r} is unproductive (derives no terminal string)")

    token_map = _check_token_map(d, terminals, problems)
    levels = _levels(d, nonterminals, start, by_lhs, problems)
    nt_ids = _nt_ids(d, nonterminals, problems)
    vocab_size = None
    if token_map is not None:
        vocab_size = d.get("vocab_size_used_by_models", max(token_map.values()) + 1)
        if not _is_int(vocab_size) or vocab_size < max(token_map.values()) + 1:
            problems.append(
                f"vocab_size_used_by_models {vocab_size!r} must be an int > the largest token id "
                f"{max(token_map.values())}"
            )
    if problems or start is None or token_map is None or levels is None or nt_ids is None:
        return None
    return Grammar(
        name=name,
        start=start,
        terminals=tuple(terminals),
        nonterminals=tuple(nonterminals),
        rules=tuple(rules),
        levels=levels,
        token_map=token_map,
        nt_ids=nt_ids,
        vocab_size=int(vocab_size),
    )


def _parse_rule(k: int, rr: Any, t_set: set[str], nt_set: set[str], problems: list[str]) -> Rule | None:
    where = f"rule {k}"
    if not isinstance(rr, Mapping):
        problems.append(f"{where}: must be an object with lhs, rhs, prob")
        return None
    lhs, rhs, prob, flags = rr.get("lhs"), rr.get("rhs"), rr.get("prob"), rr.get("rhs_is_terminal")
    ok = True
    if not isinstance(lhs, str):
        problems.append(f"{where}: missing or non-string 'lhs'")
        ok = False
    else:
        where = f"rule {k} ({lhs} -> {' '.join(map(str, rhs)) if isinstance(rhs, list) else '?'})"
        if lhs not in nt_set:
            problems.append(f"{where}: unknown lhs symbol {lhs!r} (not a nonterminal)")
            ok = False
    if not isinstance(rhs, list) or not rhs or not all(isinstance(s, str) for s in rhs):
        problems.append(f"{where}: 'rhs' must be a non-empty list of symbols")
        return None
    if not isinstance(prob, (int, float)) or isinstance(prob, bool) or not math.isfinite(prob):
        problems.append(f"{where}: 'prob' must be a number")
        ok = False
    elif not 0.0 <= prob <= 1.0:
        problems.append(f"{where}: probability {prob} outside [0, 1]")
        ok = False
    if flags is None:  # a name that is both kinds is the nonterminal, except in a unary self rule x -> x
        if len(rhs) == 1 and rhs[0] == lhs and lhs in t_set:
            flags = [True]
        else:
            flags = [s not in nt_set and s in t_set for s in rhs]
    elif not isinstance(flags, list) or len(flags) != len(rhs) or not all(isinstance(f, bool) for f in flags):
        problems.append(f"{where}: 'rhs_is_terminal' must be a list of {len(rhs)} booleans")
        return None
    for s, t in zip(rhs, flags, strict=True):
        if t and s not in t_set:
            problems.append(f"{where}: unknown terminal {s!r}")
            ok = False
        elif not t and s not in nt_set:
            problems.append(f"{where}: unknown symbol {s!r}")
            ok = False
    if not ok:
        return None
    return Rule(lhs, tuple(rhs), float(prob), tuple(flags))


def _check_token_map(d: Mapping[str, Any], terminals: list[str], problems: list[str]) -> dict[str, int] | None:
    tm = d.get("token_map")
    if tm is None:
        problems.append("missing field 'token_map'")
        return None
    if not isinstance(tm, Mapping) or not all(_is_int(v) and v >= 0 for v in tm.values()):
        problems.append("field 'token_map' must map names to non-negative integer ids")
        return None
    ok = True
    for s in list(terminals) + list(SPECIAL_TOKENS):
        if s not in tm:
            problems.append(f"token_map lacks {s!r}")
            ok = False
    for s in tm:
        if s not in terminals and s not in SPECIAL_TOKENS:
            problems.append(f"token_map has {s!r}, neither a terminal nor one of {'/'.join(SPECIAL_TOKENS)}")
            ok = False
    by_id: dict[int, list[str]] = {}
    for s, v in tm.items():
        by_id.setdefault(v, []).append(s)
    for v, names in sorted(by_id.items()):
        if len(names) > 1:
            problems.append(f"token_map: duplicate id {v} for {', '.join(map(repr, names))}")
            ok = False
    for key, special in (("bos_id", "BOS"), ("eos_id", "EOS"), ("pad_id", "PAD"), ("mask_id", "MASK")):
        if key in d and special in tm and d[key] != tm[special]:
            problems.append(f"{key} {d[key]!r} disagrees with token_map[{special!r}] = {tm[special]}")
            ok = False
    return dict(tm) if ok else None


def _levels(
    d: Mapping[str, Any],
    nonterminals: list[str],
    start: str | None,
    by_lhs: Mapping[str, list[Rule]],
    problems: list[str],
) -> dict[str, int] | None:
    if start is None:
        return None
    depth = {start: 0}
    todo = deque([start])
    while todo:
        s = todo.popleft()
        for r in by_lhs.get(s, ()):
            for c, t in zip(r.rhs, r.rhs_is_terminal, strict=True):
                if not t and c not in depth:
                    depth[c] = depth[s] + 1
                    todo.append(c)
    if any(nt not in depth for nt in nonterminals):
        return None  # unreachable NTs are already reported
    raw = d.get("levels")
    if raw is None:
        return {nt: depth[nt] for nt in nonterminals}
    if not isinstance(raw, Mapping):
        problems.append("field 'levels' must map level numbers to lists of nonterminals")
        return None
    given: dict[str, int] = {}
    for key, syms in raw.items():
        try:
            lev = int(key)
        except (TypeError, ValueError):
            problems.append(f"levels: key {key!r} is not an integer")
            continue
        if not isinstance(syms, list):
            problems.append(f"levels[{key!r}] must be a list of nonterminals")
            continue
        for s in syms:
            if s not in depth:
                problems.append(f"levels[{key!r}]: unknown nonterminal {s!r}")
            elif s in given:
                problems.append(f"levels: nonterminal {s!r} listed at levels {given[s]} and {lev}")
            else:
                given[s] = lev
    for nt in nonterminals:
        if nt not in given:
            problems.append(f"levels: nonterminal {nt!r} has no level")
        elif given[nt] != depth[nt]:
            problems.append(
                f"levels: {nt!r} is at level {given[nt]} but its depth from the start symbol is {depth[nt]}"
            )
    return {nt: depth[nt] for nt in nonterminals}


def _nt_ids(d: Mapping[str, Any], nonterminals: list[str], problems: list[str]) -> dict[str, int] | None:
    raw = d.get("numeric_id_of_symbol")
    if raw is None:
        return {nt: k for k, nt in enumerate(nonterminals)}
    if not isinstance(raw, Mapping) or not all(_is_int(v) and v >= 0 for v in raw.values()):
        problems.append("field 'numeric_id_of_symbol' must map nonterminals to non-negative integers")
        return None
    out: dict[str, int] = {}
    for nt in nonterminals:
        if nt not in raw:
            problems.append(f"numeric_id_of_symbol lacks {nt!r}")
        else:
            out[nt] = int(raw[nt])
    for s in raw:
        if s not in out and s not in nonterminals:
            problems.append(f"numeric_id_of_symbol has unknown nonterminal {s!r}")
    by_id: dict[int, list[str]] = {}
    for s, v in out.items():
        by_id.setdefault(v, []).append(s)
    for v, names in sorted(by_id.items()):
        if len(names) > 1:
            problems.append(f"numeric_id_of_symbol: duplicate id {v} for {', '.join(map(repr, names))}")
    return out


# ======================================================================== compiled tables
@dataclass(frozen=True)
class LayeredTables:
    """Integer tables of a strictly layered grammar, for the vectorised sampler and parser.

    NT index k = position in ``grammar.nonterminals``; rule index r = position in ``grammar.rules``.
    rule_rhs [R, W] child NT indices (-1 padding; W = longest rhs); rule_len [R];
    rule_term [R] token id of a terminal rule (-1 otherwise); nt_rules [N, K] rule indices of each NT in
    file order (-1 padding); nt_cum [N, K] cumulative normalised probabilities with the last positive
    rule and the padding set to +inf (rule k is chosen for u in [cum[k-1], cum[k])); nt_nrules [N].
    """

    nt_index: dict[str, int]
    nt_level: np.ndarray
    nt_numeric: np.ndarray
    rule_lhs: np.ndarray
    rule_rhs: np.ndarray
    rule_len: np.ndarray
    rule_term: np.ndarray
    nt_rules: np.ndarray
    nt_cum: np.ndarray
    nt_nrules: np.ndarray


def layered_tables(grammar: Grammar) -> LayeredTables:
    """The (cached) ``LayeredTables`` of ``grammar``; ``GrammarError`` unless strictly layered."""
    grammar.require_layered("the PCFG sampler/parser")
    return grammar._tables


def _compile(grammar: Grammar) -> LayeredTables:
    idx = {s: k for k, s in enumerate(grammar.nonterminals)}
    n_rules = len(grammar.rules)
    width = max(len(r.rhs) for r in grammar.rules)
    rule_rhs = np.full((n_rules, width), -1, dtype=np.int64)
    rule_len = np.zeros(n_rules, dtype=np.int64)
    rule_term = np.full(n_rules, -1, dtype=np.int64)
    rule_lhs = np.zeros(n_rules, dtype=np.int64)
    for r_i, r in enumerate(grammar.rules):
        rule_lhs[r_i] = idx[r.lhs]
        rule_len[r_i] = len(r.rhs)
        if r.is_terminal_rule:
            rule_term[r_i] = grammar.token_map[r.rhs[0]]
        else:
            rule_rhs[r_i, : len(r.rhs)] = [idx[c] for c in r.rhs]
    k_max = max(len(grammar.rules_of(s)) for s in grammar.nonterminals)
    nt_rules = np.full((len(idx), k_max), -1, dtype=np.int64)
    nt_cum = np.full((len(idx), k_max), np.inf)
    nt_nrules = np.zeros(len(idx), dtype=np.int64)
    rule_pos = {id(r): k for k, r in enumerate(grammar.rules)}
    for s, k in idx.items():
        rs = grammar.rules_of(s)
        probs = np.array([r.prob for r in rs], dtype=np.float64)
        cum = np.cumsum(probs) / probs.sum()
        last = int(np.nonzero(probs > 0)[0][-1])
        cum[last:] = np.inf
        nt_rules[k, : len(rs)] = [rule_pos[id(r)] for r in rs]
        nt_cum[k, : len(rs)] = cum
        nt_nrules[k] = len(rs)
    return LayeredTables(
        nt_index=idx,
        nt_level=np.array([grammar.levels[s] for s in grammar.nonterminals], dtype=np.int64),
        nt_numeric=np.array([grammar.nt_ids[s] for s in grammar.nonterminals], dtype=np.int64),
        rule_lhs=rule_lhs,
        rule_rhs=rule_rhs,
        rule_len=rule_len,
        rule_term=rule_term,
        nt_rules=nt_rules,
        nt_cum=nt_cum,
        nt_nrules=nt_nrules,
    )
