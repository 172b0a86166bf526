"""The vectorised sampler: same corpora as the naive recursive sampler, rule frequencies match the
probabilities, derivations are valid, batch splitting does not change the data, hand-checked spans."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from curriculens.errors import CurriculensError
from training.data.pcfg import (
    Derivation,
    derivation_rules,
    grammar_from_dict,
    load_grammar,
    random_grammar,
    sample,
    sample_reference,
    spans,
)

CFG3B = Path(__file__).resolve().parents[3] / "training" / "data" / "pcfg" / "grammars" / "cfg3b.json"
needs_cfg3b = pytest.mark.skipif(not CFG3B.is_file(), reason=f"{CFG3B} not present")


@pytest.fixture(scope="module")
def cfg3b():
    if not CFG3B.is_file():
        pytest.skip(f"{CFG3B} not present")
    return load_grammar(CFG3B)


def skewed_grammar():
    """A 4-level layered grammar with unequal probabilities (0.2 / 0.3 / 0.5, 0.9 / 0.1)."""
    d = random_grammar(n_levels=4, symbols_per_level=2, rules_per_symbol=3, seed=5).to_dict()
    for r in d["rules"]:
        if not r["rhs_is_terminal"][0]:
            r["prob"] = None
    for lhs in {r["lhs"] for r in d["rules"] if r["prob"] is None}:
        rs = [r for r in d["rules"] if r["lhs"] == lhs]
        for r, p in zip(rs, (0.2, 0.3, 0.5) if lhs != "n1_0" else (0.9, 0.1, 0.0), strict=True):
            r["prob"] = p
    return grammar_from_dict(d)


def same_corpus(a, b) -> bool:
    return len(a) == len(b) and all(a[i] == b[i] for i in range(len(a))) and np.array_equal(a.roots, b.roots)


# ------------------------------------------------------------------- reference equality
def test_matches_naive_recursive_sampler_cfg3b(cfg3b):
    assert same_corpus(sample(cfg3b, 12, seed=7), sample_reference(cfg3b, 12, seed=7))
    assert same_corpus(sample(cfg3b, 40, seed=1, start_level=1), sample_reference(cfg3b, 40, seed=1, start_level=1))
    assert same_corpus(sample(cfg3b, 40, seed=2, start="k"), sample_reference(cfg3b, 40, seed=2, start="k"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_recursive_sampler_random_grammars(seed):
    g = random_grammar(n_levels=5, symbols_per_level=4, rules_per_symbol=3, rhs_lengths=(1, 2, 3), seed=seed)
    assert same_corpus(sample(g, 60, seed=seed), sample_reference(g, 60, seed=seed))
    assert same_corpus(sample(g, 60, seed=seed, start=2), sample_reference(g, 60, seed=seed, start_level=2))
    s = skewed_grammar()
    assert same_corpus(sample(s, 60, seed=seed), sample_reference(s, 60, seed=seed))


def test_deterministic_seeded_and_independent_of_batch_splitting(cfg3b):
    whole = sample(cfg3b, 20, seed=3, start_level=1)
    assert same_corpus(whole, sample(cfg3b, 20, seed=3, start_level=1))
    first, second = sample(cfg3b, 10, seed=3, start_level=1), sample(cfg3b, 10, seed=3, start_level=1, offset=10)
    for i in range(10):
        assert first[i] == whole[i] and second[i] == whole[10 + i]
    other = sample(cfg3b, 20, seed=4, start_level=1)
    assert sum(other[i] == whole[i] for i in range(20)) < 5
    assert whole.seed == 3 and second.offset == 10


def test_without_derivation_same_tokens(cfg3b):
    a = sample(cfg3b, 30, seed=9, start_level=2)
    b = sample(cfg3b, 30, seed=9, start_level=2, with_derivation=False)
    assert b.nt is None and b.ends is None and b.flat_nt is None
    assert all(np.array_equal(x, y) for x, y in zip(a.tokens, b.tokens, strict=True))


# ------------------------------------------------------------------ distribution checks
def rule_counts(grammar, corpus) -> np.ndarray:
    counts = np.zeros(len(grammar.rules), dtype=np.int64)
    for i in range(len(corpus)):
        np.add.at(counts, derivation_rules(grammar, corpus[i]), 1)
    return counts


def assert_rule_frequencies(grammar, counts):
    """Per NT with several rules: chi-square of rule counts against the rule probabilities."""
    tested = 0
    for nt in grammar.nonterminals:
        idx = [k for k, r in enumerate(grammar.rules) if r.lhs == nt]
        probs = np.array([grammar.rules[k].prob for k in idx])
        obs = counts[idx]
        if len(idx) < 2 or obs.sum() == 0:
            continue
        assert obs[probs == 0].sum() == 0, f"{nt}: a zero-probability rule was used"
        keep = probs > 0
        expected = probs[keep] / probs[keep].sum() * obs.sum()
        assert expected.min() >= 20, f"{nt}: too few samples for the test"
        p = stats.chisquare(obs[keep], expected).pvalue
        assert p > 1e-4, f"{nt}: counts {obs.tolist()} vs probs {probs.tolist()} (p={p:.2g})"
        tested += 1
    assert tested > 0


def test_rule_frequencies_match_probabilities_cfg3b(cfg3b):
    counts = rule_counts(cfg3b, sample(cfg3b, 300, seed=11))
    assert_rule_frequencies(cfg3b, counts)


def test_rule_frequencies_match_unequal_probabilities():
    g = skewed_grammar()
    counts = rule_counts(g, sample(g, 2000, seed=12))
    assert_rule_frequencies(g, counts)
    # the planted 0.9 / 0.1 / 0.0 split of n1_0
    idx = [k for k, r in enumerate(g.rules) if r.lhs == "n1_0"]
    frac = counts[idx] / counts[idx].sum()
    assert abs(frac[0] - 0.9) < 0.03 and counts[idx][2] == 0


def test_start_level_roots_are_uniform(cfg3b):
    c = sample(cfg3b, 3000, seed=13, start_level=1, with_derivation=False)
    assert c.start_level == 1
    ids, obs = np.unique(c.roots, return_counts=True)
    assert ids.tolist() == sorted(cfg3b.nt_ids[s] for s in ("p", "q", "r"))
    assert stats.chisquare(obs).pvalue > 1e-4


def test_cfg3b_lengths(cfg3b):
    c = sample(cfg3b, 2000, seed=0, with_derivation=False)
    assert c.lengths.min() >= 161 and c.lengths.max() <= 432
    sd = 45.2 / math.sqrt(len(c))  # the spec's sample sd over sqrt(n)
    assert abs(c.lengths.mean() - cfg3b.expected_length()) < 4 * sd
    assert [len(t) for t in c.tokens] == c.lengths.tolist()
    assert set(np.unique(c.flat_tokens)) <= set(cfg3b.terminal_ids)


# --------------------------------------------------------------------- derivation shape
def test_derivations_are_valid_and_consistent(cfg3b):
    c = sample(cfg3b, 25, seed=5, start_level=2)
    d = cfg3b.n_levels
    pre_of_token = {cfg3b.token_map[t]: cfg3b.nt_ids[t] for t in cfg3b.terminals}  # preterminal a -> 'a'
    for i in range(len(c)):
        der = c[i]
        assert der.nt.shape == der.ends.shape == (len(der.tokens), d)
        assert der.nt.dtype == np.int64 and der.ends.dtype == bool and der.tokens.dtype == np.int64
        assert (der.nt[:, :2] == -1).all() and not der.ends[:, :2].any()
        assert der.start_level == 2 and der.root == c.roots[i]
        assert [pre_of_token[int(t)] for t in der.tokens] == der.nt[:, d - 1].tolist()
        assert der.ends[:, d - 1].all() and der.ends[-1, 2:].all()
        # a boundary at level l is a boundary at every deeper level
        assert (der.ends[:, 2:-1] <= der.ends[:, 3:]).all()
        derivation_rules(cfg3b, der)  # raises unless every node spells a rule
        assert spans(der, 0) == [] and spans(der, 2) == [(0, len(der), int(c.roots[i]))]
    padded, pends = c.padded_nt(fill=-100)
    assert padded.shape == (25, c.lengths.max(), d) and (padded[0, c.lengths[0] :] == -100).all()
    assert np.array_equal(padded[3, : c.lengths[3]], c.nt[3]) and np.array_equal(pends[3, : c.lengths[3]], c.ends[3])
    tok = c.padded_tokens(cfg3b.pad_id, bos_id=cfg3b.bos_id)
    assert (tok[:, 0] == cfg3b.bos_id).all() and np.array_equal(tok[4, 1 : c.lengths[4] + 1], c.tokens[4])
    assert (tok[4, c.lengths[4] + 1 :] == cfg3b.pad_id).all()


def test_derivation_rules_rejects_broken_derivations(cfg3b):
    der = sample(cfg3b, 1, seed=1, start_level=3)[0]
    bad_nt = der.nt.copy()
    bad_nt[0, 4] = cfg3b.nt_ids["h"] if bad_nt[0, 4] != cfg3b.nt_ids["h"] else cfg3b.nt_ids["g"]
    with pytest.raises(CurriculensError, match="not a derivation"):
        derivation_rules(cfg3b, Derivation(der.tokens, bad_nt, der.ends))
    bad_tok = der.tokens.copy()
    bad_tok[0] = (bad_tok[0] + 1) % 3
    with pytest.raises(CurriculensError, match="does not produce its token"):
        derivation_rules(cfg3b, Derivation(bad_tok, der.nt, der.ends))


# ---------------------------------------------------------------- hand-checked sentence
# g -> d f e, d -> c a, f -> c b a, e -> c b   (cfg3b rules; g, d, f, e are levels 4, 5, 5, 5)
# sentence c a c b a c b ; ids a=0 b=1 c=2 ; numeric ids g=10, d=7, e=8, f=9, a=1, b=2, c=3
HAND_TOKENS = [2, 0, 2, 1, 0, 2, 1]
HAND_NT = [
    [-1, -1, -1, -1, 10, 7, 3],
    [-1, -1, -1, -1, 10, 7, 1],
    [-1, -1, -1, -1, 10, 9, 3],
    [-1, -1, -1, -1, 10, 9, 2],
    [-1, -1, -1, -1, 10, 9, 1],
    [-1, -1, -1, -1, 10, 8, 3],
    [-1, -1, -1, -1, 10, 8, 2],
]
F, T = False, True
HAND_ENDS = [
    [F, F, F, F, F, F, T],
    [F, F, F, F, F, T, T],
    [F, F, F, F, F, F, T],
    [F, F, F, F, F, F, T],
    [F, F, F, F, F, T, T],
    [F, F, F, F, F, F, T],
    [F, F, F, F, T, T, T],
]


def test_hand_checked_sentence_from_level_4(cfg3b):
    c = sample(cfg3b, 200, seed=0, start="g")
    hits = [i for i in range(len(c)) if c.tokens[i].tolist() == HAND_TOKENS]
    assert hits, "the sentence has probability 1/8 per draw"
    for i in hits:
        assert c.nt[i].tolist() == HAND_NT
        assert c.ends[i].tolist() == HAND_ENDS
        assert spans(c[i], 5) == [(0, 2, 7), (2, 5, 9), (5, 7, 8)]
        assert spans(c[i], 4) == [(0, 7, 10)]
    assert cfg3b.decode(HAND_TOKENS) == list("cacbacb")
    assert {len(t) for t in c.tokens} <= set(range(7, 10))


def test_hand_checked_level_5_sentences(cfg3b):
    c = sample(cfg3b, 100, seed=1, start_level=5)
    by_text = {}
    for i in range(len(c)):
        by_text.setdefault("".join(cfg3b.decode(c.tokens[i])), set()).add(int(c.roots[i]))
    # d -> c a | a b c ; e -> c b | c a b ; f -> c b a   (d = 7, e = 8, f = 9)
    assert by_text == {"ca": {7}, "abc": {7}, "cb": {8}, "cab": {8}, "cba": {9}}


def test_bad_start_arguments(cfg3b):
    with pytest.raises(CurriculensError, match="not a nonterminal"):
        sample(cfg3b, 2, 0, start="zz")
    with pytest.raises(CurriculensError, match="start_level 7 outside 0..6"):
        sample(cfg3b, 2, 0, start_level=7)
    with pytest.raises(CurriculensError, match="either start or start_level"):
        sample(cfg3b, 2, 0, start="g", start_level=4)
    assert len(sample(cfg3b, 0, 0)) == 0


def test_official_end_flags_differ_from_span_ends_and_convert():
    """nt_classify.py's flag l: 'the depth-(l+1) node is the last child of its parent'; ours:
    'the token ends its level-d span' = the official flags AND-ed from the bottom."""
    from training.data.pcfg import official_end_flags

    # s -> A B, A -> a b, B -> a b a: tokens a b | a b a (levels: s, A/B, preterminals)
    ours = np.array([[0, 0, 1], [0, 1, 1], [0, 0, 1], [0, 0, 1], [1, 1, 1]], dtype=bool)
    official = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 0, 1], [1, 1, 1]], dtype=bool)
    assert np.array_equal(official_end_flags(ours), official)
    c = sample(load_grammar(CFG3B), 20, seed=3)
    c2 = sample(load_grammar(CFG3B), 20, seed=3, start_level=2)
    for ends in list(c.ends) + list(c2.ends):
        off = official_end_flags(ends)
        assert off[:, -1].all()
        for d in range(ends.shape[1]):
            assert np.array_equal(ends[:, d], off[:, d:].all(axis=1) & ends[:, d])
            if ends[:, d].any():
                assert np.array_equal(ends[:, d], off[:, d:].all(axis=1))
            else:  # a level above the sentence's root
                assert not off[:, d].any()
    assert any(not np.array_equal(e, official_end_flags(e)) for e in c.ends)
