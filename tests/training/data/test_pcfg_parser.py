"""The banded chart parser: sampled sentences parse back to their derivations; perturbed sentences are
accepted or rejected exactly as a naive CYK says; parse counts and inside probabilities on planted
ambiguous grammars."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from curriculens.errors import CurriculensError
from training.data.pcfg import (
    accepts,
    count_parses,
    cyk_reference,
    derivation_rules,
    grammar_from_dict,
    inside_logprob,
    load_grammar,
    masked_posteriors,
    parse,
    random_grammar,
    sample,
)

CFG3B = Path(__file__).resolve().parents[3] / "training" / "data" / "pcfg" / "grammars" / "cfg3b.json"


@pytest.fixture(scope="module")
def cfg3b():
    if not CFG3B.is_file():
        pytest.skip(f"{CFG3B} not present")
    return load_grammar(CFG3B)


def ambiguous_grammar():
    """s -> X Y [0.6] | Y X [0.4]; X -> a b [0.5] | a b a [0.5]; Y -> a b [0.3] | b a b [0.7].

    'abab' has two derivations (X Y and Y X, both halves 'ab'): P = 0.6*0.5*0.3 + 0.4*0.3*0.5 = 0.15.
    'ababab' has one (X = aba, Y = bab): P = 0.6*0.5*0.7 = 0.21; 'ababa' one (Y = ab, X = aba).
    """
    pre = lambda t: {"lhs": t, "rhs": [t], "rhs_is_terminal": [True], "prob": 1.0}  # noqa: E731
    return grammar_from_dict(
        {
            "name": "ambiguous",
            "start_symbol": "s",
            "terminals": ["a", "b"],
            "nonterminals": ["s", "X", "Y", "a", "b"],
            "rules": [
                {"lhs": "s", "rhs": ["X", "Y"], "prob": 0.6},
                {"lhs": "s", "rhs": ["Y", "X"], "prob": 0.4},
                {"lhs": "X", "rhs": ["a", "b"], "rhs_is_terminal": [False, False], "prob": 0.5},
                {"lhs": "X", "rhs": ["a", "b", "a"], "rhs_is_terminal": [False, False, False], "prob": 0.5},
                {"lhs": "Y", "rhs": ["a", "b"], "rhs_is_terminal": [False, False], "prob": 0.3},
                {"lhs": "Y", "rhs": ["b", "a", "b"], "rhs_is_terminal": [False, False, False], "prob": 0.7},
                pre("a"),
                pre("b"),
            ],
            "token_map": {"a": 0, "b": 1, "BOS": 2, "EOS": 3, "PAD": 4, "MASK": 5},
        }
    )


def derivation_logprob(grammar, der) -> float:
    return sum(math.log(grammar.rules[k].prob) for k in derivation_rules(grammar, der))


# ------------------------------------------------------------------ round trip on samples
def test_sampled_cfg3b_sentences_parse_to_their_derivation(cfg3b):
    full = sample(cfg3b, 3, seed=21)
    low = sample(cfg3b, 20, seed=22, start_level=2)
    for corpus, kw in ((full, {}), (low, {"start_level": 2})):
        for i in range(len(corpus)):
            p = parse(cfg3b, corpus.tokens[i], **kw)
            assert p is not None and count_parses(cfg3b, corpus.tokens[i], **kw) == 1
            assert p == corpus[i]
    # inside probability of an unambiguous sentence = its derivation's probability
    for i in range(3):
        assert inside_logprob(cfg3b, full.tokens[i]) == pytest.approx(derivation_logprob(cfg3b, full[i]), abs=1e-9)
    # with start_level the roots are weighted 1/3 each, as the sampler draws them
    der = low[0]
    assert inside_logprob(cfg3b, der.tokens, start_level=2) == pytest.approx(
        derivation_logprob(cfg3b, der) + math.log(1 / 3), abs=1e-9
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sampled_random_grammar_sentences_parse(seed):
    g = random_grammar(n_levels=5, symbols_per_level=3, rules_per_symbol=3, rhs_lengths=(1, 2, 3), seed=seed)
    c = sample(g, 15, seed=seed)
    for i in range(len(c)):
        p = parse(g, c.tokens[i])
        assert p is not None
        derivation_rules(g, p)  # a valid derivation of the same tokens
        n = count_parses(g, c.tokens[i])
        assert n >= 1
        if n == 1:
            assert p == c[i]
        if len(c.tokens[i]) <= 30:
            assert cyk_reference(g, c.tokens[i]) == n


# ------------------------------------------------------------------------- perturbations
def perturbations(tokens: np.ndarray, rng: np.random.Generator, terminals) -> list[np.ndarray]:
    t = tokens.tolist()
    out = []
    for _ in range(3):
        i = int(rng.integers(len(t) - 1))
        out.append(t[:i] + [t[i + 1], t[i]] + t[i + 2 :])  # swap neighbours
        j = int(rng.integers(len(t)))
        out.append(t[:j] + t[j + 1 :])  # delete
        out.append(t[:j] + [int(rng.choice(terminals))] + t[j:])  # insert
        out.append(t[:j] + [int(rng.choice([x for x in terminals if x != t[j]]))] + t[j + 1 :])  # substitute
    return [np.array(p, dtype=np.int64) for p in out]


def test_perturbed_sentences_agree_with_naive_cyk(cfg3b):
    rng = np.random.default_rng(0)
    c = sample(cfg3b, 12, seed=31, start_level=3)
    n_rejected = n_accepted = 0
    for i in range(len(c)):
        for p in perturbations(c.tokens[i], rng, cfg3b.terminal_ids):
            ref = cyk_reference(cfg3b, p, start_level=3)
            assert count_parses(cfg3b, p, start_level=3) == ref
            assert accepts(cfg3b, p, start_level=3) == (ref > 0)
            assert (parse(cfg3b, p, start_level=3) is not None) == (ref > 0)
            n_rejected += ref == 0
            n_accepted += ref > 0
    assert n_rejected > 50  # most single edits leave the language
    assert n_accepted > 0  # a few land on another sentence (e.g. swapping equal tokens)


def test_perturbed_random_grammar_sentences_agree_with_naive_cyk():
    g = random_grammar(n_levels=4, symbols_per_level=3, rules_per_symbol=3, seed=8)
    rng = np.random.default_rng(1)
    c = sample(g, 10, seed=8)
    for i in range(len(c)):
        for p in perturbations(c.tokens[i], rng, g.terminal_ids):
            ref = cyk_reference(g, p)
            assert count_parses(g, p) == ref
            assert accepts(g, p) == (ref > 0)


def test_every_edit_of_a_level5_sentence_is_rejected(cfg3b):
    # f -> c b a is f's only rule: 'cba' is the only sentence from f, so any edit is rejected
    assert accepts(cfg3b, "cba", start="f") and parse(cfg3b, "cba", start="f").nt[:, 5].tolist() == [9, 9, 9]
    for s in ["bca", "cb", "ba", "cbaa", "acba", "cca", "cbb", ""]:
        assert not accepts(cfg3b, s, start="f")
        assert parse(cfg3b, s, start="f") is None
        assert inside_logprob(cfg3b, s, start="f") == -math.inf


def test_rejects_specials_and_wrong_root(cfg3b):
    der = sample(cfg3b, 1, seed=3, start="k")[0]
    assert accepts(cfg3b, der.tokens, start="k")
    assert accepts(cfg3b, der.tokens, start="l") == (cyk_reference(cfg3b, der.tokens, start="l") > 0)
    with_bos = np.concatenate([[cfg3b.bos_id], der.tokens])
    assert not accepts(cfg3b, with_bos, start="k")
    assert not accepts(cfg3b, der.tokens)  # far too short for the root s (161..432)


# ---------------------------------------------------------------------- planted answers
def test_ambiguous_grammar_counts_and_inside_probability():
    g = ambiguous_grammar()
    assert count_parses(g, "abab") == 2 == cyk_reference(g, "abab")
    assert inside_logprob(g, "abab") == pytest.approx(math.log(0.6 * 0.5 * 0.3 + 0.4 * 0.3 * 0.5))
    assert count_parses(g, "ababab") == 1 == cyk_reference(g, "ababab")
    assert inside_logprob(g, "ababab") == pytest.approx(math.log(0.6 * 0.5 * 0.7))
    # documented choice: the first rule in file order (s -> X Y), then the smallest splits
    p = parse(g, "abab")
    assert p.spans(1) == [(0, 2, g.nt_ids["X"]), (2, 4, g.nt_ids["Y"])]
    q = parse(g, "ababab")
    assert q.spans(1) == [(0, 3, g.nt_ids["X"]), (3, 6, g.nt_ids["Y"])]
    # 'ababa' = Y(ab) X(aba) only: P = 0.4 * 0.3 * 0.5
    assert count_parses(g, "ababa") == 1 == cyk_reference(g, "ababa")
    assert inside_logprob(g, "ababa") == pytest.approx(math.log(0.4 * 0.3 * 0.5))
    assert parse(g, "ababa").spans(1) == [(0, 2, g.nt_ids["Y"]), (2, 5, g.nt_ids["X"])]
    for s in ["ab", "aba", "abba", "bab", "bbab", "baab"]:
        assert count_parses(g, s) == cyk_reference(g, s) == 0
    # sampling frequencies of 'abab' agree with its inside probability
    c = sample(g, 4000, seed=2, with_derivation=False)
    freq = np.mean([t.tolist() == [0, 1, 0, 1] for t in c.tokens])
    assert abs(freq - 0.15) < 4 * math.sqrt(0.15 * 0.85 / 4000)


def test_ternary_middle_split_choice():
    """The parser must pick a middle split that lets the last child finish."""
    pre = lambda t: {"lhs": t, "rhs": [t], "rhs_is_terminal": [True], "prob": 1.0}  # noqa: E731
    g = grammar_from_dict(
        {
            "start_symbol": "s",
            "terminals": ["a", "b"],
            "nonterminals": ["s", "A", "a", "b"],
            "rules": [
                {"lhs": "s", "rhs": ["A", "A", "A"], "prob": 1.0},
                {"lhs": "A", "rhs": ["a"], "rhs_is_terminal": [False], "prob": 0.5},
                {"lhs": "A", "rhs": ["a", "b"], "rhs_is_terminal": [False, False], "prob": 0.5},
                pre("a"),
                pre("b"),
            ],
            "token_map": {"a": 0, "b": 1, "BOS": 2, "EOS": 3, "PAD": 4, "MASK": 5},
        }
    )
    # 'a a b a': A(a) A(ab) A(a) is the only split
    p = parse(g, "aaba")
    assert p.spans(1) == [(0, 1, 1), (1, 3, 1), (3, 4, 1)]
    assert count_parses(g, "aaba") == 1 and parse(g, "aabb") is None


def test_ambiguous_split_takes_the_smallest_split_point():
    pre = {"lhs": "a", "rhs": ["a"], "rhs_is_terminal": [True], "prob": 1.0}
    g = grammar_from_dict(
        {
            "start_symbol": "s",
            "terminals": ["a"],
            "nonterminals": ["s", "A", "a"],
            "rules": [
                {"lhs": "s", "rhs": ["A", "A"], "prob": 1.0},
                {"lhs": "A", "rhs": ["a"], "rhs_is_terminal": [False], "prob": 0.5},
                {"lhs": "A", "rhs": ["a", "a"], "rhs_is_terminal": [False, False], "prob": 0.5},
                pre,
            ],
            "token_map": {"a": 0, "BOS": 1, "EOS": 2, "PAD": 3, "MASK": 4},
        }
    )
    # 'aaa' = A(a) A(aa) or A(aa) A(a), each with probability 1/4
    assert count_parses(g, "aaa") == 2 == cyk_reference(g, "aaa")
    assert inside_logprob(g, "aaa") == pytest.approx(math.log(0.5))
    assert parse(g, "aaa").spans(1) == [(0, 1, 1), (1, 3, 1)]


# ------------------------------------------------------------- posteriors of hidden tokens
def _enumerated_posteriors(grammar, tokens, hidden, **kw):
    """Reference: every completion of the hidden positions, weighted by its inside probability."""
    terms = list(grammar.terminal_ids)
    rows = np.nonzero(hidden)[0]
    out = np.zeros((len(rows), len(terms)))
    for fill in itertools.product(range(len(terms)), repeat=len(rows)):
        t = np.array(tokens)
        t[rows] = [terms[f] for f in fill]
        lp = inside_logprob(grammar, t, **kw)
        if lp == -math.inf:
            continue
        for h, f in enumerate(fill):
            out[h, f] += math.exp(lp)
    return out / out.sum(axis=1, keepdims=True)


def test_masked_posteriors_equal_enumeration_over_completions(cfg3b):
    corpus = sample(cfg3b, 6, seed=5, start_level=3)
    rng = np.random.default_rng(0)
    for i in range(len(corpus)):
        toks = corpus.tokens[i]
        hidden = np.zeros(len(toks), dtype=bool)
        hidden[rng.choice(len(toks), size=min(4, len(toks)), replace=False)] = True
        got = masked_posteriors(cfg3b, toks, hidden, start_level=3)
        want = _enumerated_posteriors(cfg3b, toks, hidden, start_level=3)
        np.testing.assert_allclose(got, want, atol=1e-12)
        np.testing.assert_allclose(got.sum(axis=1), 1.0)
    g = ambiguous_grammar()  # 'ab?b' with two derivations when ? = a
    got = masked_posteriors(g, "abab", np.array([False, False, True, False]))
    np.testing.assert_allclose(got, _enumerated_posteriors(g, g.encode("abab"), np.array([0, 0, 1, 0], bool)))


def test_masked_posteriors_refuse_impossible_visible_tokens(cfg3b):
    with pytest.raises(CurriculensError, match="cannot occur"):
        masked_posteriors(cfg3b, [0, 0, 0, 0], np.array([True, False, False, False]), start_level=3)
