"""Sparse parity data as the paper defines it."""

import itertools

import pytest
import torch

from curriculens.errors import CurriculensError
from training.data.parity import monomial, parity_labels, sample_pm1, to_tokens
from training.tasks import build_task


def test_labels_on_the_whole_cube():
    n, support = 5, (1, 3, 4)
    x = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=n)))
    y = parity_labels(x, support)
    for row, label in zip(x.tolist(), y.tolist(), strict=True):
        chi = row[1] * row[3] * row[4]
        assert label == (0 if chi == 1 else 1)
    # y is the XOR of the support tokens, tokens = (1 - x) / 2
    tok = to_tokens(x)
    assert torch.equal(y, tok[:, list(support)].sum(1) % 2)
    assert set(tok.unique().tolist()) == {0, 1}
    # balanced over the cube
    assert y.float().mean().item() == 0.5


def test_sampling_is_seeded_and_uniform():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = sample_pm1(20000, 8, g1), sample_pm1(20000, 8, g2)
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) == {-1.0, 1.0}
    assert abs(a.mean().item()) < 0.02
    assert abs(monomial(a, (0, 1)).mean().item()) < 0.03


def test_task_batches_are_a_function_of_seed_and_step():
    task = build_task({"name": "parity", "n": 12, "k": 3, "n_eval": 100})
    b1 = task.train_batch(70, 8, seed=1)
    other = build_task({"name": "parity", "n": 12, "k": 3, "n_eval": 100})
    other.train_batch(3, 8, seed=1)
    assert torch.equal(b1["x"], other.train_batch(70, 8, seed=1)["x"])
    assert not torch.equal(b1["x"], task.train_batch(71, 8, seed=1)["x"])
    assert not torch.equal(b1["x"], task.train_batch(70, 8, seed=2)["x"])
    assert torch.equal(b1["y"], parity_labels(b1["x"], (0, 1, 2)))
    ev = list(task.eval_batches(64))
    assert sum(len(b["y"]) for b in ev) == 100


def test_custom_support_and_bad_support():
    task = build_task({"name": "parity", "n": 12, "k": 2, "support": [7, 3], "n_eval": 16})
    b = task.train_batch(0, 4, 0)
    assert torch.equal(b["y"], parity_labels(b["x"], (3, 7)))
    with pytest.raises(CurriculensError, match="support"):
        build_task({"name": "parity", "n": 12, "k": 2, "support": [3, 12]})
    with pytest.raises(CurriculensError, match="unknown config key"):
        build_task({"name": "parity", "n": 12, "kk": 2})
    with pytest.raises(CurriculensError, match="unknown task"):
        build_task({"name": "sudoku"})
