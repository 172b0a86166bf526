"""Every model is hookable through TransformerLens, with exactly the requested sites."""

import torch

from models import BertConfig, GPT2Config, MLPConfig, build_model, hookable, logits_of


def test_mlp_hook_names_and_shapes():
    cfg = MLPConfig(d_in=10, width=7, depth=2, n_classes=2)
    model = build_model(cfg).eval()
    x = torch.randn(5, 10)
    names = model.site_names()
    assert names == [
        "blocks.0.hook_pre",
        "blocks.0.hook_post",
        "blocks.1.hook_pre",
        "blocks.1.hook_post",
        "hook_logits",
    ]
    assert set(names) <= set(model.hook_dict)
    out, cache = model.run_with_cache(x, names_filter=["blocks.1.hook_post", "hook_logits"])
    assert set(cache.keys()) == {"blocks.1.hook_post", "hook_logits"}
    assert cache["blocks.1.hook_post"].shape == (5, 7)
    assert torch.equal(cache["hook_logits"], out)
    # the hooks see what a manual forward computes
    pre0 = model.blocks[0].fc(x)
    post1 = torch.relu(model.blocks[1].fc(torch.relu(pre0)))
    assert torch.allclose(cache["blocks.1.hook_post"], post1)
    assert torch.allclose(out, model.unembed(post1))
    assert (cache["blocks.1.hook_post"] >= 0).all()


def test_gpt2_bridge_matches_hf_and_filters_sites():
    cfg = GPT2Config(vocab_size=2, n_positions=16, n_layer=2, n_head=2, head_dim=4)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    x = torch.randint(0, 2, (3, 12))
    hooked = hookable(model, cfg)
    out, cache = hooked.run_with_cache(x, names_filter=lambda n: n in ("blocks.0.hook_out", "blocks.1.hook_out"))
    assert set(cache.keys()) == {"blocks.0.hook_out", "blocks.1.hook_out"}
    assert cache["blocks.1.hook_out"].shape == (3, 12, 8)
    assert torch.allclose(logits_of(out), model(x).logits, atol=1e-6)
    hs = model(x, output_hidden_states=True).hidden_states
    assert torch.allclose(cache["blocks.0.hook_out"], hs[1], atol=1e-6)


def test_bert_bridge_matches_hf():
    cfg = BertConfig(
        vocab_size=8,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    x = torch.randint(0, 8, (2, 9))
    mask = torch.ones_like(x)
    mask[1, 6:] = 0
    out, cache = hookable(model, cfg).run_with_cache(x, attention_mask=mask, names_filter=["blocks.1.hook_out"])
    assert list(cache.keys()) == ["blocks.1.hook_out"]
    ref = model(x, attention_mask=mask, output_hidden_states=True)
    assert torch.allclose(logits_of(out), ref.logits, atol=1e-5)
    # the last layer's output (transformers 5 may list a layer twice in hidden_states)
    assert torch.allclose(cache["blocks.1.hook_out"], ref.hidden_states[-1], atol=1e-5)


def test_mlp_output_logits_equal_the_forward_bit_for_bit():
    """The output-only path (no hooks, in-place ReLU) gives the forward's numbers exactly
    (batch by batch, at several batch sizes), for one and two hidden layers; hooks on the
    model do not fire."""
    for depth in (1, 2):
        torch.manual_seed(depth)
        model = build_model(MLPConfig(d_in=20, width=300, depth=depth)).eval()
        x = (1 - 2 * torch.randint(0, 2, (777, 20), generator=torch.Generator().manual_seed(0))).float()
        fired: list[str] = []

        def record(t, hook, fired=fired):
            fired.append(hook.name)

        model.blocks[0].hook_post.add_hook(record)
        with torch.no_grad():
            for bs in (1, 100, 777):
                ref = torch.cat([model(x[i : i + bs]) for i in range(0, 777, bs)])
                fired.clear()
                fast = torch.cat([model.output_logits(x[i : i + bs]) for i in range(0, 777, bs)])
                assert torch.equal(fast, ref), bs
                work: list = []  # reused buffers, the last batch shorter than the rest
                reused = torch.cat([model.output_logits(x[i : i + bs], work=work) for i in range(0, 777, bs)])
                assert torch.equal(reused, ref), bs
                assert len(work) == 2 and work[0].shape == (bs, 300)
                assert not fired
        model.reset_hooks()
