"""The ``text`` task: imported masked and causal LMs probed on a local corpus with their own
tokenizer; the causal M_close analogue against planted models; the dashboard data layer reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from curriculens import constants as C
from curriculens.errors import CurriculensError
from probes.tasks.pcfg.ngram import causal_close_distances
from training.foreign.fixtures import sample_text, write_hub_cache, write_trainer_dir
from training.foreign.importer import ImportConfig, import_trajectory

SMALL = {"n_sentences": 8, "ngram_sentences": 4, "max_tokens": 200, "batch_size": 16, "offsets": 2}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    import json

    text = sample_text(60, seed=2).split("\n\n")
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in text if t.strip()))
    return path


def _sweep(exp: Path):
    from probes.store import ResultsStore
    from probes.sweep import SweepConfig, run_sweep

    res = run_sweep(exp, SweepConfig(device="cpu", options=SMALL))
    assert res.n_failed == 0, res.failures
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        return store.query()


@pytest.mark.parametrize("kind,fmt", [("gpt2", "safetensors"), ("bert", "bin")])
def test_import_probe_summary_dashboard(kind, fmt, corpus, tmp_path, one_thread):
    src = write_trainer_dir(tmp_path / "src", kind, steps=(0, 5), fmt=fmt, n_layer=2)
    exp = tmp_path / "exps" / kind
    import_trajectory(ImportConfig(src=str(src), out=str(exp), task={"name": "text", "corpus": str(corpus)}))
    rows = _sweep(exp)
    ngram = rows[rows.probe == "ngram"]
    expected = {"close_n3", "close_n5"} | ({"robust_n3", "robust_n5"} if kind == "bert" else set())
    assert set(ngram.feature) == expected
    assert set(ngram.step) == {0, 5} and (ngram.value >= 0).all() and (ngram.value <= 2).all()
    ctx = rows[rows.probe == "context"]
    assert set(ctx.site) == {"blocks.0.hook_in", "blocks.0.hook_out", "blocks.1.hook_out"}
    assert set(ctx.feature) == {"offset-2", "offset-1", "offset+1", "offset+2"}

    from probes.summary import summarize

    table = summarize(exp / C.RESULTS_DB)
    assert {"ngram", "context"} <= set(table["probe"])

    from dashboard.data import DataSource

    ds = DataSource(tmp_path / "exps", prefetch=False)
    (summary,) = ds.experiments()
    assert [r.name for r in summary.runs] == ["teacher"] and summary.has_results
    assert summary.runs[0].model.startswith("GPT2LMHeadModel n_layer=2" if kind == "gpt2" else "BertForMaskedLM")
    metrics = ds.metrics(summary.key)
    assert list(metrics["step"]) == [0, 5] and metrics["eval_acc"].notna().all()
    assert {"ngram", "context"} <= set(ds.catalog(summary.key)["probe"])
    assert len(ds.emergence(summary.key)) > 0


def test_hub_cache_probes_and_rerun_skips(corpus, tmp_path, one_thread):
    repo = write_hub_cache(tmp_path / "hub", "gpt2", steps=(0, 3))
    exp = tmp_path / "exp"
    import_trajectory(ImportConfig(src=str(repo), out=str(exp), task={"name": "text", "corpus": str(corpus)}))
    rows = _sweep(exp)
    assert set(rows.step) == {0, 3}
    from probes.sweep import SweepConfig, run_sweep

    again = run_sweep(exp, SweepConfig(device="cpu", options=SMALL))
    assert again.n_done == 0 and again.n_skipped == 6  # (ngram, context, logit_lens) x 2 checkpoints


def test_moved_weights_fail_before_writing(corpus, tmp_path):
    src = write_trainer_dir(tmp_path / "src", "gpt2", steps=(0, 5))
    exp = tmp_path / "exp"
    import_trajectory(ImportConfig(src=str(src), out=str(exp), task={"name": "text", "corpus": str(corpus)}))
    (src / "checkpoint-5" / "model.safetensors").write_bytes(b"changed")
    from probes.sweep import SweepConfig, plan_sweep

    with pytest.raises(CurriculensError, match="sha256"):
        plan_sweep(exp, SweepConfig(device="cpu"))
    (src / "checkpoint-5" / "model.safetensors").unlink()
    with pytest.raises(CurriculensError, match="are gone"):
        plan_sweep(exp, SweepConfig(device="cpu"))
    assert not (exp / C.RESULTS_DB).exists()


# --- the causal M_close analogue against planted models ------------------------------------
V = 16


def _last_token_model(ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """Predicts from the current token only: context beyond it never matters."""
    return 20.0 * torch.nn.functional.one_hot(ids, V).float()


def _prefix_length_model(ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """Predicts the prefix length mod V: depends on every earlier token being there."""
    n = torch.cumsum(attn, dim=1).clamp(max=V) - 1
    return 20.0 * torch.nn.functional.one_hot(n % V, V).float()


def test_causal_close_planted():
    seqs = [torch.tensor([0] + list(range(1, 13))), torch.tensor([0] + list(range(3, 12)))]
    zero = causal_close_distances(_last_token_model, seqs, pad_id=0, stride=2, windows=(3, 5), batch_size=3)
    assert set(zero) == {("close", 3), ("close", 5)}
    assert all(np.allclose(v, 0.0) for v in zero.values())
    full = causal_close_distances(_prefix_length_model, seqs, pad_id=0, stride=2, windows=(3, 5), batch_size=3)
    ps = [p for s in seqs for p in range(2, s.numel(), 2)]
    for n in (3, 5):
        # truncated input = lead + the last n-1 tokens: its length differs from p + 1 iff p > n - 1
        expected = [2.0 if p > n - 1 else 0.0 for p in ps]
        np.testing.assert_allclose(full[("close", n)], expected, atol=1e-6)


def test_bound_text_sample_is_seeded(corpus, tmp_path):
    from models.configs import HFConfig
    from training.tasks import build_task

    src = write_trainer_dir(tmp_path / "src", "gpt2", steps=(0,))
    task = build_task({"name": "text", "corpus": str(corpus), "max_tokens": 16, "min_tokens": 4})
    cfg = HFConfig(architecture="GPT2LMHeadModel", config={"model_type": "gpt2"})
    bound = task.bind(src / "checkpoint-0", cfg)
    assert task.bind(src / "checkpoint-0", cfg) is bound  # one tokenization per tokenizer
    a, b = bound.probe_corpus(5, seed=3), bound.probe_corpus(5, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a.tokens, b.tokens, strict=True)) and len(a.tokens) == 5
    assert all(4 <= len(t) <= 15 for t in a.tokens)
    batch = bound.plain_batch(a.tokens)
    assert (batch["input_ids"][:, 0] == bound.special.bos).all()
    assert batch["attention_mask"].sum(1).tolist() == [len(t) + 1 for t in a.tokens]
    with pytest.raises(CurriculensError, match="masked or causal LM"):
        task.check_model(HFConfig(architecture="BertModel", config={"model_type": "bert"}))


def test_chunks_fit_the_model_positions(tmp_path):
    """max_tokens (128) above the model's 32 positions: chunks are cut to 31 tokens + LEAD."""
    from models.configs import HFConfig
    from training.tasks import build_task

    src = write_trainer_dir(tmp_path / "src", "bert", steps=(0,), n_positions=32)
    corpus = tmp_path / "long.txt"
    corpus.write_text(" ".join(sample_text(40).split()) + "\n")  # one long document
    task = build_task({"name": "text", "corpus": str(corpus)})
    cfg = HFConfig(architecture="BertForMaskedLM", config={"model_type": "bert", "max_position_embeddings": 32})
    bound = task.bind(src / "checkpoint-0", cfg)
    chunks = bound.probe_corpus(100, seed=0).tokens
    assert max(len(c) for c in chunks) == 31
    roberta = HFConfig(
        architecture="RobertaForMaskedLM",
        config={"model_type": "roberta", "max_position_embeddings": 34, "pad_token_id": 1},
    )
    from training.tasks.text import usable_positions

    assert usable_positions(roberta) == 32 and usable_positions(cfg) == 32
