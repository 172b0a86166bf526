"""PCFG probes: planted signals are recovered, controls stay at chance, n-gram metrics behave."""

import numpy as np
import pytest
import torch
from torch import nn

from models.configs import model_config_from_dict
from models.registry import build_model
from probes.base import ProbeContext
from probes.linear import LinearProbeConfig, fit_linear_probes
from probes.registry import check_options, probes_for_task
from probes.store import ResultsStore, UnitKey
from probes.tasks.pcfg.common import (
    PCFGProbeOptions,
    fit_by_group,
    grouped_probe_rows,
    pcfg_sites,
    select_tokens,
    token_activations,
)
from probes.tasks.pcfg.context import context_rows, offsets_for
from probes.tasks.pcfg.ngram import NgramProbe, ngram_distances, variants, window
from probes.tasks.pcfg.spans import PROBE as SPAN_PROBE
from probes.tasks.pcfg.spans import informative_columns
from training.plans.pcfg import model_dict
from training.tasks import build_task

TINY = {"name": "pcfg", "gen_levels": 4, "gen_seed": 1, "n_eval": 16}
OPTS = PCFGProbeOptions(n_sentences=24, max_tokens=600, offsets=2, ngram_sentences=6, ngram_stride=4)
MASK, PAD, V = 6, 5, 8


pytestmark = pytest.mark.usefixtures("one_thread")


def _planted_sentences(n_sent=60, length=30, seed=0):
    """Per-token ancestor labels in {10, 11, 12}, constant over spans of 3-6 tokens."""
    rng = np.random.default_rng(seed)
    groups, labels = [], []
    for s in range(n_sent):
        i = 0
        while i < length:
            w = int(rng.integers(3, 7))
            labels += [int(rng.integers(10, 13))] * min(w, length - i)
            groups += [s] * min(w, length - i)
            i += w
    return np.array(groups), np.array(labels)


# --- NT span probes -----------------------------------------------------------------------------
def test_span_probe_recovers_a_planted_ancestor_and_its_control_stays_at_chance():
    groups, nt = _planted_sentences()
    rng = np.random.default_rng(1)
    onehot = np.eye(3)[nt - 10] * 3.0
    planted = torch.tensor(np.concatenate([onehot, rng.normal(size=(nt.size, 13))], axis=1), dtype=torch.float32)
    noise = torch.tensor(rng.normal(size=(nt.size, 16)), dtype=torch.float32)
    cols = [("level2", 2, nt)]
    rows = grouped_probe_rows(SPAN_PROBE, {"planted": planted, "noise": noise}, cols, groups, OPTS, seed=0)
    got = {(r.site, r.metric): r.value for r in rows}
    assert got[("planted", "test_acc")] > 0.95
    majority = got[("planted", "majority")]
    assert 0.25 < majority < 0.5
    assert got[("planted", "control_acc")] < majority + 0.1
    assert got[("noise", "test_acc")] < majority + 0.1
    assert (
        abs(got[("planted", "selectivity")] - (got[("planted", "test_acc")] - got[("planted", "control_acc")])) < 1e-9
    )
    assert {r.feature for r in rows} == {"level2"} and {r.degree for r in rows} == {2}


def test_probe_split_is_by_sentence_so_a_memorised_sentence_code_does_not_leak():
    rng = np.random.default_rng(0)
    n_sent, per = 40, 20
    groups = np.repeat(np.arange(n_sent), per)
    codes = rng.normal(size=(n_sent, 32))
    x = torch.tensor(codes[groups] + 0.01 * rng.normal(size=(groups.size, 32)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 2, n_sent)[groups])
    by_row = fit_linear_probes(x, y, LinearProbeConfig(seed=0))[0]
    by_sentence = fit_by_group(x, y, groups, OPTS, seed=0)[0]
    assert by_row.test_acc > 0.9, "a row split lets the probe memorise each sentence's label"
    assert by_sentence.test_acc < 0.8, "a sentence split cannot"
    assert by_sentence.n_test % per == 0


def test_informative_columns_skip_levels_above_the_root_and_token_determined_ones():
    tokens = np.array([0, 1, 2, 0, 2, 1])
    nt = np.array(
        [[-1, 20, 10, 1], [-1, 20, 10, 2], [-1, 20, 11, 3], [-1, 21, 11, 1], [-1, 21, 12, 3], [-1, 21, 12, 2]]
    )
    ends = np.zeros_like(nt, dtype=bool)
    ends[:, 3] = True
    ends[[2, 5], 1] = True
    ends[[1, 3, 5], 2] = True
    feats = [c[0] for c in informative_columns(nt, ends, tokens)]
    # level 0 unset, level 3 = a function of the token; level3_end constant
    assert feats == ["level1", "level2", "level1_end", "level2_end"]


# --- context probe ------------------------------------------------------------------------------
def test_context_probe_decodes_offset_plus_one_from_states_that_hold_the_next_token():
    rng = np.random.default_rng(2)
    seqs = [rng.integers(0, 3, 30) for _ in range(50)]
    J = 2
    sent, tok = select_tokens([30] * 50, 1200, 0, lambda s, n: (np.arange(n) >= J) & (np.arange(n) + J < n))
    nxt = np.array([seqs[s][t + 1] for s, t in zip(sent, tok, strict=True)])
    acts = np.concatenate([np.eye(3)[nxt] * 3.0, rng.normal(size=(nxt.size, 8))], axis=1)
    offsets = offsets_for(J)
    labels = np.stack([[seqs[s][t + j] for j in offsets] for s, t in zip(sent, tok, strict=True)])
    rows = context_rows({"h": torch.tensor(acts, dtype=torch.float32)}, labels, offsets, sent, OPTS, seed=0)
    acc = {r.feature: r.value for r in rows if r.metric == "test_acc"}
    maj = {r.feature: r.value for r in rows if r.metric == "majority"}
    assert set(acc) == {"offset-2", "offset-1", "offset+1", "offset+2"}
    assert acc["offset+1"] > 0.95
    for f in ("offset-2", "offset-1", "offset+2"):  # i.i.d. tokens: nothing else is decodable
        assert acc[f] < maj[f] + 0.12


def test_select_tokens_caps_spreads_and_is_deterministic():
    a = select_tokens([10, 20, 30], 25, seed=3)
    b = select_tokens([10, 20, 30], 25, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)) and a[0].size == 25
    assert set(a[0].tolist()) == {0, 1, 2} and (a[1] < np.array([10, 20, 30])[a[0]]).all()
    full = select_tokens([3, 4], 100, seed=0)
    assert full[0].tolist() == [0, 0, 0, 1, 1, 1, 1] and full[1].tolist() == [0, 1, 2, 0, 1, 2, 3]


# --- n-gram metrics -----------------------------------------------------------------------------
class _Constant(nn.Module):
    """Ignores its input: the same logits everywhere."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(V))

    def forward(self, ids, attention_mask=None):
        return self.bias.expand(*ids.shape, V)


class _LookBack(nn.Module):
    """Predicts the token ``k`` positions back (logit 5) when it is visible, else uniform."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, ids, attention_mask=None, position_ids=None):
        B, T = ids.shape
        out = torch.zeros(B, T, V)
        vis = ids != MASK
        if attention_mask is not None:
            vis &= attention_mask.bool()
        for t in range(self.k, T):
            src = ids[:, t - self.k]
            ok = vis[:, t - self.k]
            out[ok, t, src[ok]] = 5.0
        return out


def _seqs(n=5, length=25, seed=0):
    rng = np.random.default_rng(seed)
    return [torch.tensor([3] + rng.integers(0, 3, length).tolist()) for _ in range(n)]


def test_m_robust_and_m_close_of_a_model_that_ignores_its_input_are_exactly_zero():
    model = _Constant()
    dist = ngram_distances(lambda i, a: model(i, a), _seqs(), mask_id=MASK, pad_id=PAD, stride=4, windows=(3, 5))
    assert set(dist) == {("robust", 3), ("robust", 5), ("close", 3), ("close", 5)}
    for vals in dist.values():
        assert vals.size == 5 * 6 and np.all(vals == 0.0)


@pytest.mark.parametrize("hide", [True, False])
def test_ngram_metrics_of_planted_look_back_models(hide):
    peaked = torch.softmax(torch.tensor([5.0, 0, 0, 0, 0, 0, 0, 0]), 0)
    full = float((peaked - torch.full((V,), 1 / V)).abs().sum())  # peaked -> uniform
    expect = {
        1: {("robust", 3): full, ("robust", 5): full, ("close", 3): 0.0, ("close", 5): 0.0},
        2: {("robust", 3): 0.0, ("robust", 5): full, ("close", 3): full, ("close", 5): 0.0},
    }
    for k, want in expect.items():
        model = _LookBack(k)
        dist = ngram_distances(model, _seqs(), mask_id=MASK, pad_id=PAD, stride=4, hide_masked_keys=hide, batch_size=7)
        for key, value in want.items():
            assert np.allclose(dist[key], value, atol=1e-6), (k, key)


def test_ngram_windows_and_variants_follow_the_paper():
    assert window(30, 3, 100) == [29, 30, 31] and window(30, 5, 100) == [28, 29, 30, 31, 32]
    assert window(1, 5, 3) == [0, 1, 2]
    v = {(kind, n): m for kind, n, m in variants(4, 8, (3,))}
    assert v[("base", 1)] == [4] and v[("robust", 3)] == [3, 4, 5]
    assert v[("close", 3)] == [0, 1, 2, 4, 6, 7], "everything but the neighbours, BOS and p included"


def test_ngram_probe_rows_through_a_probe_context():
    task = build_task(TINY)
    ctx = ProbeContext(
        _LookBack(1),
        None,
        task,
        torch.device("cpu"),
        0,
        None,
        seed=0,
        options={"ngram_stride": 3, "ngram_sentences": 4},
    )
    rows = NgramProbe().run(ctx)
    feats = {r.feature for r in rows}
    assert feats == {"robust_n3", "robust_n5", "close_n3", "close_n5"}
    got = {(r.feature, r.metric): r.value for r in rows}
    assert got[("close_n3", "p50")] == 0.0 and got[("robust_n3", "p50")] > 0.5
    assert {r.metric for r in rows} == {"p50", "p25", "p75", "p90", "mean", "std"}
    assert all(r.site == "output" for r in rows) and {r.degree for r in rows} == {3, 5}
    nxt = build_task({**TINY, "objective": "next"})
    assert NgramProbe().run(ProbeContext(_LookBack(1), None, nxt, torch.device("cpu"), 0, None)) == []


# --- real models: sites, activations, rows ------------------------------------------------------
@pytest.mark.parametrize("objective", ["mlm", "next"])
def test_token_activations_are_the_models_hidden_states_at_the_chosen_tokens(objective):
    task = build_task({**TINY, "objective": objective})
    torch.manual_seed(0)
    cfg = model_config_from_dict(model_dict(objective, "tiny-teacher", task.vocab_size, task.seq_len))
    model = build_model(cfg).eval()
    sites = pcfg_sites(cfg)
    n_layers = cfg.num_hidden_layers if objective == "mlm" else cfg.n_layer
    assert sites == ["blocks.0.hook_in"] + [f"blocks.{i}.hook_out" for i in range(n_layers)]
    corpus = task.probe_corpus(10, seed=0)
    sent, tok = select_tokens(corpus.lengths, 40, seed=0)
    acts = token_activations(model, cfg, task, corpus.tokens, sent, tok, sites, batch_size=3)
    batch = task.plain_batch(corpus.tokens)
    with torch.no_grad():
        hs = model(batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True).hidden_states
    rows, cols = torch.as_tensor(sent), torch.as_tensor(tok + 1)
    assert torch.allclose(acts["blocks.0.hook_in"], hs[0][rows, cols], atol=1e-5)
    if objective == "mlm":  # GPT-2's last hidden state has ln_f applied; compare the first block
        assert torch.allclose(acts[sites[-1]], hs[-1][rows, cols], atol=1e-5)
    else:
        assert torch.allclose(acts["blocks.0.hook_out"], hs[1][rows, cols], atol=1e-5)


@pytest.mark.parametrize("objective", ["mlm", "next"])
def test_all_pcfg_probes_run_on_a_real_model_and_store_their_rows(objective, tmp_path):
    task = build_task({**TINY, "objective": objective})
    torch.manual_seed(0)
    cfg = model_config_from_dict(model_dict(objective, "tiny-teacher", task.vocab_size, task.seq_len))
    model = build_model(cfg).eval()
    opts = {"n_sentences": 16, "max_tokens": 300, "offsets": 2, "ngram_sentences": 3, "ngram_stride": 4}
    check_options("pcfg", opts)
    ctx = ProbeContext(model, cfg, task, torch.device("cpu"), 0, tmp_path, seed=0, options=opts)
    found = probes_for_task("pcfg")
    assert list(found) == ["nt_span", "ngram", "context"]
    with ResultsStore(tmp_path / "r.sqlite") as store:
        for name, probe in found.items():
            rows = probe.run(ctx)
            if name == "ngram" and objective == "next":
                assert rows == []
                continue
            assert rows and all(r.probe == name for r in rows)
            assert set(probe.primary_metrics) <= {r.metric for r in rows}
            if name != "ngram":
                assert {r.site for r in rows} == set(pcfg_sites(cfg))
                assert all(0.0 <= r.value <= 1.0 for r in rows if r.metric.endswith("acc"))
            store.write_unit(UnitKey("teacher", "teacher", "teacher", 0, 0, name), rows)
        df = store.query("probe = ?", ("nt_span",))
        assert {"level1", "level2"} <= set(df.feature) and "level0_end" in set(df.feature)


def test_bad_probe_options_are_refused():
    from curriculens.errors import CurriculensError

    with pytest.raises(CurriculensError, match="unknown PCFG probe option"):
        check_options("pcfg", {"n_sentence": 3})
    with pytest.raises(CurriculensError, match="odd"):
        check_options("pcfg", {"ngram_windows": [4]})


@pytest.mark.gpu
def test_pcfg_probes_and_training_run_on_cuda(tmp_path):
    from training.loop import train_run
    from training.plans.pcfg import get_preset, teacher_config

    cfg_run = teacher_config(get_preset("cpu-tiny"), device="cuda").replace(steps=10)
    res = train_run(cfg_run, tmp_path / "teacher")
    assert res.final_eval["eval_loss"] > 0
    task = build_task(cfg_run.task)
    cfg = cfg_run.model
    model = build_model(cfg).to("cuda").eval()
    ctx = ProbeContext(
        model, cfg, task, torch.device("cuda"), 0, tmp_path, seed=0, options={"n_sentences": 16, "max_tokens": 300}
    )
    for name, probe in probes_for_task("pcfg").items():
        assert probe.run(ctx), name


def test_ngram_positions_are_capped_and_the_default_sample_is_the_papers():
    """Paper: 1024 probe sentences, p in {30, 60, ..., 420} (14 positions) below the length."""
    from probes.tasks.pcfg.common import PCFGProbeOptions
    from probes.tasks.pcfg.ngram import probe_positions

    opts = PCFGProbeOptions()
    assert opts.ngram_sentences >= 1024 and opts.ngram_max_positions == 14
    assert probe_positions(433, 30, 14) == list(range(30, 421, 30))
    assert probe_positions(100, 30, 14) == [30, 60, 90] and len(probe_positions(433, 30, 0)) == 14
    assert len(probe_positions(1000, 30, 14)) == 14 and len(probe_positions(1000, 30, 0)) == 33
    n_long = ngram_distances(
        lambda i, a: _LookBack(1)(i, a),
        [torch.zeros(40, dtype=torch.int64)],
        mask_id=MASK,
        pad_id=PAD,
        stride=2,
        windows=(3,),
        max_positions=5,
    )
    assert n_long[("robust", 3)].size == 5
