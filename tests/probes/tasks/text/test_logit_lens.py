"""The logit lens: against a hand computation from Hugging Face hidden states, on planted
identity blocks (KL 0, full agreement), and through the sweep on imported trajectories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from curriculens import constants as C
from curriculens.io import read_json
from models.foreign import hf_model_config
from probes.tasks.text.logit_lens import lens_stats, mask_positions
from training.foreign.fixtures import make_model, make_tokenizer, sample_text, save_checkpoint_dir
from training.tasks.configs import TextConfig
from training.tasks.text import TextTask


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(sample_text(40, seed=4))
    return path


def _bound(kind: str, corpus: Path, tmp: Path, n_layer: int = 3, edit=None):
    tok = make_tokenizer(kind)
    model = make_model(kind, len(tok), seed=1, n_layer=n_layer)
    if edit is not None:
        edit(model)
    d = save_checkpoint_dir(tmp / kind, model, tok)
    cfg = hf_model_config(read_json(d / "config.json"), d)
    task = TextTask(TextConfig(corpus=str(corpus)))
    return model.eval(), cfg, task.bind(d, cfg)


def test_matches_hidden_states_by_hand(corpus, tmp_path):
    """GPT-2: block l's input is HF's hidden_states[l] (l < L); the lens is lm_head(ln_f(h))."""
    model, cfg, task = _bound("gpt2", corpus, tmp_path)
    chunks = task.probe_corpus(6, seed=0).tokens
    sums, count = lens_stats(model, cfg, task, chunks, seed=0, batch_size=4, device=torch.device("cpu"))
    batch = task.plain_batch(chunks)
    with torch.no_grad():
        out = model(batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    real = batch["attention_mask"].bool()
    p = torch.log_softmax(out.logits[real], -1)
    assert count == int(real.sum())
    for layer in range(3):
        q = torch.log_softmax(model.lm_head(model.transformer.ln_f(out.hidden_states[layer]))[real], -1)
        kl = float((p.exp() * (p - q)).sum(-1).mean())
        agree = float((q.argmax(-1) == p.argmax(-1)).float().mean())
        assert sums[layer][0] / count == pytest.approx(kl, rel=1e-4, abs=1e-6)
        assert sums[layer][1] / count == pytest.approx(agree)


@torch.no_grad()
def _identity_gpt2(model):
    """Block 2 adds nothing; block 1 writes strongly; a sharp read-out (random init is near uniform)."""
    for name in ("attn.c_proj", "mlp.c_proj"):
        mod = model.transformer.h[2].get_submodule(name)
        torch.nn.init.zeros_(mod.weight)
        torch.nn.init.zeros_(mod.bias)
    model.transformer.h[1].mlp.c_proj.weight.mul_(100)
    model.transformer.ln_f.weight.mul_(20)


@torch.no_grad()
def _identity_bert(model):
    """Block 2 (post-LN) maps a normalised stream to itself; block 1 writes strongly."""
    layer = model.bert.encoder.layer[2]
    for mod in (layer.attention.output.dense, layer.output.dense):
        torch.nn.init.zeros_(mod.weight)
        torch.nn.init.zeros_(mod.bias)
    model.bert.encoder.layer[1].output.dense.weight.mul_(100)
    model.cls.predictions.transform.LayerNorm.weight.mul_(20)


@pytest.mark.parametrize("kind,edit", [("gpt2", _identity_gpt2), ("bert", _identity_bert)])
def test_planted_identity_last_block(kind, edit, corpus, tmp_path):
    """The last block made (near) identity: the lens at its input is the output (KL ~ 0, agree 1);
    earlier layers, with real blocks after them, are not."""
    model, cfg, task = _bound(kind, corpus, tmp_path, edit=edit)
    chunks = task.probe_corpus(8, seed=0).tokens
    sums, count = lens_stats(model, cfg, task, chunks, seed=0, batch_size=8, device=torch.device("cpu"))
    assert count > 0
    assert sums[2][0] / count < 1e-3 and sums[2][1] == count
    assert sums[0][0] / count > 0.01 and sums[1][0] / count > 0.01 and sums[0][1] < count


def test_mask_positions():
    a = mask_positions(np.array([1, 10, 40]), seed=3)
    assert [len(x) for x in a] == [1, 2, 6] and all(x.min() >= 1 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, mask_positions(np.array([1, 10, 40]), seed=3), strict=True))
    assert a[0].max() <= 1 and a[2].max() <= 40


def test_sweep_on_imported_trajectory(corpus, tmp_path, one_thread):
    from probes.store import ResultsStore
    from probes.sweep import SweepConfig, run_sweep
    from training.foreign.fixtures import write_trainer_dir
    from training.foreign.importer import ImportConfig, import_trajectory

    src = write_trainer_dir(tmp_path / "src", "bert", steps=(0, 5), n_layer=2)
    exp = tmp_path / "exp"
    import_trajectory(ImportConfig(src=str(src), out=str(exp), task={"name": "text", "corpus": str(corpus)}))
    res = run_sweep(exp, SweepConfig(probes=("logit_lens",), device="cpu", options={"n_sentences": 8}))
    assert res.n_failed == 0, res.failures
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        rows = store.query()
    assert set(rows.site) == {"blocks.0.hook_in", "blocks.1.hook_in"}
    assert set(rows.feature) == {"layer0", "layer1"} and set(rows.step) == {0, 5}
    kl, agree = rows[rows.metric == "kl"], rows[rows.metric == "top1_agree"]
    assert (kl.value >= 0).all() and ((agree.value >= 0) & (agree.value <= 1)).all()
    # the dashboard's feature heatmap draws it as layer x step
    from dashboard.figures import feature_heatmap

    fig = feature_heatmap(kl, title="logit lens KL")
    assert list(fig.data[0].y) == ["layer0", "layer1"] and list(fig.data[0].x) == [0, 5]
