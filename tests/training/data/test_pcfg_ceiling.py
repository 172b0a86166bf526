"""The Bayes ceiling of masked accuracy: planted grammars with known ceilings, the observation model
against the masking code, and the real task's held-out set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from curriculens.errors import CurriculensError
from training.data.pcfg import grammar_from_dict, load_grammar, sample
from training.data.pcfg_ceiling import bayes_masked_accuracy, observation_likelihood
from training.data.pcfg_mlm import SpecialIds, mlm_batch


def coin_grammar(n: int = 6, p_a: float = 0.5):
    """s -> P^n; P -> a [p_a] | b [1 - p_a]: every token an independent coin."""
    return grammar_from_dict(
        {
            "name": "coins",
            "start_symbol": "s",
            "terminals": ["a", "b"],
            "nonterminals": ["s", "P"],
            "rules": [
                {"lhs": "s", "rhs": ["P"] * n, "prob": 1.0},
                {"lhs": "P", "rhs": ["a"], "rhs_is_terminal": [True], "prob": p_a},
                {"lhs": "P", "rhs": ["b"], "rhs_is_terminal": [True], "prob": 1 - p_a},
            ],
            "token_map": {"a": 0, "b": 1, "BOS": 2, "EOS": 3, "PAD": 4, "MASK": 5},
        }
    )


def batches(grammar, n, seed, hide=True, **kw):
    corpus = sample(grammar, n, seed=seed, **kw)
    gen = torch.Generator().manual_seed(seed)
    special = SpecialIds.from_grammar(grammar)
    return [mlm_batch(corpus.tokens[i : i + 64], special, gen, hide_masked_keys=hide) for i in range(0, n, 64)]


def test_observation_likelihood_is_a_distribution_over_inputs():
    g = coin_grammar()
    special = SpecialIds.from_grammar(g)
    total = observation_likelihood(special.mask, special) + sum(
        observation_likelihood(t, special) for t in special.terminals
    )
    np.testing.assert_allclose(total, 1.0)


def test_independent_coins_have_the_planted_ceiling():
    """Fair coins: a masked token is a guess (1/2); a kept one is right; a random one is the observed
    token, right half the time: 0.8 * 0.5 + 0.1 + 0.1 * 0.5 = 0.55 on terminals; BOS always right."""
    g = coin_grammar()
    c = bayes_masked_accuracy(g, batches(g, 2000, seed=1))
    n_bos = sum(int((b["labels"][:, 0] != -100).sum()) for b in batches(g, 2000, seed=1))
    terminal_acc = (c.correct - n_bos) / (c.n_scored - n_bos)
    assert terminal_acc == pytest.approx(0.55, abs=3 * np.sqrt(0.25 / (c.n_scored - n_bos)))
    biased = coin_grammar(p_a=0.9)  # now a masked token is 'a' (0.9); a random 'b' input still says 'a'
    c = bayes_masked_accuracy(biased, batches(biased, 2000, seed=2))
    assert c.accuracy > 0.88


def test_cfg3b_ceiling_is_high_and_needs_hidden_keys():
    g = load_grammar("cfg3b")
    c = bayes_masked_accuracy(g, batches(g, 64, seed=3, start_level=3), start_level=3)
    assert c.n_scored > 100 and 0.9 < c.accuracy <= 1.0
    with pytest.raises(CurriculensError, match="hide_masked_keys"):
        bayes_masked_accuracy(g, batches(g, 8, seed=3, hide=False, start_level=3), start_level=3)
