"""Activation extraction through TransformerLens hooks matches a manual forward pass."""

from __future__ import annotations

import pytest
import torch

from curriculens.errors import CurriculensError
from models.configs import GPT2Config, MLPConfig
from models.registry import build_model
from probes.activations import available_sites, default_sites, extract_activations


def test_mlp_sites_match_manual_forward():
    cfg = MLPConfig(d_in=10, width=24, depth=2)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    x = (1 - 2 * torch.randint(0, 2, (53, 10))).float()
    sites = ["blocks.0.hook_pre", "blocks.1.hook_post", "hook_logits"]
    acts = extract_activations(model, cfg, x, sites, batch_size=16)  # 53 = 3 x 16 + 5
    assert list(acts) == sites
    with torch.no_grad():
        pre0 = model.blocks[0].fc(x)
        post0 = torch.relu(pre0)
        post1 = torch.relu(model.blocks[1].fc(post0))
        logits = model.unembed(post1)
    assert torch.allclose(acts["blocks.0.hook_pre"], pre0, atol=1e-6)
    assert torch.allclose(acts["blocks.1.hook_post"], post1, atol=1e-6)
    assert torch.allclose(acts["hook_logits"], logits, atol=1e-6)
    assert all(a.dtype == torch.float32 and a.device.type == "cpu" for a in acts.values())
    assert default_sites(cfg) == ["blocks.0.hook_post", "blocks.1.hook_post"]


def _gpt2_reference(model, tokens, layer, mask=None):
    """Residual stream after block ``layer`` of the HF model, via a plain forward hook."""
    got = {}
    handle = model.transformer.h[layer].register_forward_hook(
        lambda mod, inp, out: got.setdefault("h", out[0] if isinstance(out, tuple) else out)
    )
    with torch.no_grad():
        model(tokens, attention_mask=mask) if mask is not None else model(tokens)
    handle.remove()
    return got["h"]


def test_gpt2_bridge_sites_match_manual_forward():
    cfg = GPT2Config(n_positions=16, n_layer=2, n_head=2, head_dim=4)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    tokens = torch.randint(0, 2, (19, 10))
    sites = ["blocks.0.hook_out", "blocks.1.hook_out"]
    assert default_sites(cfg) == sites and set(sites) <= set(available_sites(model, cfg))
    full = extract_activations(model, cfg, tokens, sites, batch_size=8, position="all")
    last = extract_activations(model, cfg, tokens, sites, batch_size=8, position="last")
    mean = extract_activations(model, cfg, tokens, sites, batch_size=8, position="mean")
    for layer, site in enumerate(sites):
        ref = _gpt2_reference(model, tokens, layer)
        assert full[site].shape == (19, 10, 8)
        assert torch.allclose(full[site], ref, atol=1e-5)
        assert torch.allclose(last[site], ref[:, -1], atol=1e-5)
        assert torch.allclose(mean[site], ref.mean(1), atol=1e-5)


def test_attention_mask_positions():
    cfg = GPT2Config(n_positions=16, n_layer=1, n_head=2, head_dim=4)
    torch.manual_seed(1)
    model = build_model(cfg).eval()
    tokens = torch.randint(0, 2, (6, 9))
    mask = torch.ones(6, 9, dtype=torch.long)
    lengths = torch.tensor([9, 5, 7, 1, 3, 9])
    for i, n in enumerate(lengths.tolist()):
        mask[i, n:] = 0  # right padding
    kw = {"attention_mask": mask}
    site = "blocks.0.hook_out"
    full = extract_activations(model, cfg, tokens, [site], position="all", kwargs=kw, batch_size=4)[site]
    last = extract_activations(model, cfg, tokens, [site], position="last", kwargs=kw, batch_size=4)[site]
    mean = extract_activations(model, cfg, tokens, [site], position="mean", kwargs=kw, batch_size=4)[site]
    for i, n in enumerate(lengths.tolist()):
        assert torch.allclose(last[i], full[i, n - 1], atol=1e-6)
        assert torch.allclose(mean[i], full[i, :n].mean(0), atol=1e-5)


def test_bad_requests_are_user_errors():
    cfg = MLPConfig(d_in=4, width=8)
    model = build_model(cfg).eval()
    x = torch.ones(3, 4)
    with pytest.raises(CurriculensError, match="unknown activation site"):
        extract_activations(model, cfg, x, ["blocks.9.hook_post"])
    with pytest.raises(CurriculensError, match="position"):
        extract_activations(model, cfg, x, ["hook_logits"], position="first")
    with pytest.raises(CurriculensError):
        extract_activations(model, cfg, x[:0], ["hook_logits"])


def _footprint(model):
    return len(list(model.modules())), sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_extractor_matches_the_bridge_and_never_modifies_the_model(kind):
    from models.configs import BertConfig
    from models.registry import hookable
    from probes.activations import ActivationExtractor

    if kind == "gpt2":
        cfg = GPT2Config(vocab_size=7, n_positions=16, n_layer=2, n_head=2, head_dim=4)
    else:
        cfg = BertConfig(
            vocab_size=7,
            hidden_size=8,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=16,
            max_position_embeddings=16,
        )
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    tokens = torch.randint(1, 7, (9, 12))
    mask = torch.ones(9, 12, dtype=torch.long)
    mask[:4, 8:] = 0  # right padding
    before = _footprint(model)
    ex = ActivationExtractor(model, cfg)
    sites = ["blocks.0.hook_in", "blocks.0.hook_out", "blocks.1.hook_in", "blocks.1.hook_out"]
    fast = [
        ex.extract(tokens, sites, batch_size=4, position=p, kwargs={"attention_mask": mask}) for p in ("all", "last")
    ]
    assert _footprint(model) == before  # no hooks or modules left behind
    assert "blocks.0.attn.hook_pattern" in ex.sites() and _footprint(model) == before  # the bridge wraps a copy
    ref_model = build_model(cfg).eval()
    ref_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        _, cache = hookable(ref_model, cfg).run_with_cache(tokens, attention_mask=mask, names_filter=sites)
    keep = mask.bool()
    for site in sites:
        assert torch.allclose(fast[0][site][keep], cache[site][keep], atol=1e-5), site
        last = mask.sum(1) - 1
        assert torch.allclose(fast[1][site], cache[site][torch.arange(9), last], atol=1e-5), site


def test_extractor_keeps_only_the_requested_columns():
    from probes.activations import ActivationExtractor

    cfg = MLPConfig(d_in=10, width=24, depth=1)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    x = (1 - 2 * torch.randint(0, 2, (20, 10))).float()
    cols = torch.tensor([1, 5, 7])
    ex = ActivationExtractor(model, cfg)
    full = ex.extract(x, ["blocks.0.hook_post"])["blocks.0.hook_post"]
    part = ex.extract(x, ["blocks.0.hook_post"], columns={"blocks.0.hook_post": cols})["blocks.0.hook_post"]
    assert part.shape == (20, 3) and torch.equal(part, full[:, cols])


@pytest.mark.parametrize(
    "sites",
    [
        ["blocks.0.hook_post"],
        ["blocks.0.hook_pre", "blocks.0.hook_post"],
        ["blocks.1.hook_pre", "blocks.0.hook_post", "hook_logits"],
        ["hook_logits", "blocks.1.hook_post"],
    ],
)
def test_mlp_direct_path_equals_run_with_cache_bit_for_bit(sites):
    """The MLP's layer-by-layer path (no hooks, in-place ReLU, later layers skipped) gives the
    hooked forward's activations exactly; hooks on the model do not fire."""
    from probes.activations import ActivationExtractor

    cfg = MLPConfig(d_in=10, width=300, depth=2)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    x = (1 - 2 * torch.randint(0, 2, (70, 10), generator=torch.Generator().manual_seed(1))).float()
    ex = ActivationExtractor(model, cfg)
    assert ex._mlp_direct(sites)
    got = ex.extract(x, sites, batch_size=32)
    for start in range(0, 70, 32):
        with torch.no_grad():
            _, cache = model.run_with_cache(x[start : start + 32], names_filter=sites)
        for s in sites:
            assert torch.equal(got[s][start : start + 32], cache[s]), s
    fired = []
    model.hook_logits.add_hook(lambda t, hook: fired.append(1))
    ex.extract(x, sites, batch_size=32)
    model.reset_hooks()
    assert not fired
