"""The fast BERT n-gram path computes the definition (``ngram_distances``) on real BERTs."""

import copy

import numpy as np
import pytest
import torch

from models.configs import model_config_from_dict
from models.registry import build_model, logits_of
from probes.base import ProbeContext
from probes.tasks.pcfg import bert_ngram
from probes.tasks.pcfg.ngram import NgramProbe, ngram_distances
from training.data.pcfg_mlm import position_ids
from training.plans.pcfg import model_dict
from training.tasks import build_task

TASK = {"name": "pcfg", "gen_levels": 4, "gen_seed": 1, "n_eval": 16}

pytestmark = pytest.mark.usefixtures("one_thread")


def _bert(task, layers: int, seed: int = 0, std: float = 0.5):
    """A BERT whose weights are large enough that every masking moves its prediction."""
    d = model_dict("mlm", "tiny-teacher", task.vocab_size, task.seq_len, task.special.pad)
    cfg = model_config_from_dict({**d, "num_hidden_layers": layers})
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, std)
            elif "bias" in name:
                p.normal_(0.0, 0.1)
    return model


def _reference(model, task, seqs, **kw):
    def forward(ids, attn):
        return logits_of(model(ids, attention_mask=attn, position_ids=position_ids(attn)))

    return ngram_distances(forward, seqs, mask_id=task.special.mask, pad_id=task.special.pad, batch_size=16, **kw)


def _assert_as_exact_as_the_definition(got, want, truth):
    """``got`` (fast, float32) is as close to the float64 definition ``truth`` as the float32
    definition ``want`` is (the two float32 paths round differently, never by more)."""
    assert set(got) == set(want) == set(truth)
    for key in want:
        assert got[key].shape == want[key].shape == truth[key].shape
        own = np.abs(want[key] - truth[key]).max()
        assert np.abs(got[key] - truth[key]).max() <= 2 * own + 1e-6, key
        np.testing.assert_allclose(got[key], want[key], atol=2e-5, rtol=0)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_fast_path_matches_the_definition(layers):
    task = build_task(TASK)
    seqs = [task.plain_batch([t])["input_ids"][0] for t in task.probe_corpus(12, 0).tokens]
    model = _bert(task, layers)
    kw = {"stride": 3, "windows": (3, 5), "max_positions": 4}
    want = _reference(model, task, seqs, **kw)
    truth = _reference(copy.deepcopy(model).double(), task, seqs, **kw)
    got = bert_ngram.bert_ngram_distances(model, seqs, mask_id=task.special.mask, **kw)
    for key in want:
        assert want[key].size > 20 and np.median(want[key]) > 0.05, "every masking must move the prediction"
    _assert_as_exact_as_the_definition(got, want, truth)


def test_cancellation_rows_are_recomputed(monkeypatch):
    """Forcing every first-layer row down the direct path gives the same numbers."""
    task = build_task(TASK)
    seqs = [task.plain_batch([t])["input_ids"][0] for t in task.probe_corpus(4, 1).tokens]
    model = _bert(task, 2, seed=1, std=2.0)  # peaked attention: the subtraction is at its worst
    kw = {"mask_id": task.special.mask, "stride": 2, "windows": (3,)}
    shared = bert_ngram.bert_ngram_distances(model, seqs, **kw)
    monkeypatch.setattr(bert_ngram, "RECOMPUTE_BELOW", 2.0)
    direct = bert_ngram.bert_ngram_distances(model, seqs, **kw)
    want = _reference(model, task, seqs, stride=2, windows=(3,))
    truth = _reference(copy.deepcopy(model).double(), task, seqs, stride=2, windows=(3,))
    _assert_as_exact_as_the_definition(shared, want, truth)
    _assert_as_exact_as_the_definition(direct, want, truth)


def test_the_probe_takes_the_fast_path_only_where_it_is_exact(monkeypatch):
    task = build_task(TASK)
    model = _bert(task, 2)
    assert bert_ngram.supports(model, True, (3, 5))
    assert not bert_ngram.supports(model, False, (3, 5)), "visible masked keys: the reference path"
    assert not bert_ngram.supports(model, True, (1, 3)), "n = 1 leaves p no visible key"
    assert not bert_ngram.supports(model.train(), True, (3,))
    model.eval()
    calls = []
    real = bert_ngram.bert_ngram_distances
    monkeypatch.setattr(bert_ngram, "bert_ngram_distances", lambda *a, **k: calls.append(1) or real(*a, **k))
    opts = {"ngram_stride": 3, "ngram_sentences": 3}
    rows = NgramProbe().run(ProbeContext(model, None, task, torch.device("cpu"), 0, None, options=opts))
    assert calls and {r.feature for r in rows} == {"robust_n3", "robust_n5", "close_n3", "close_n5"}
