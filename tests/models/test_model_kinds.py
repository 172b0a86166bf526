"""Every model kind declares what callers need (``models.configs.ModelKind``), with the values
its own fields say, so no caller has to tell the kinds apart with ``isinstance``."""

from __future__ import annotations

import pytest

from models.configs import BertConfig, GPT2Config, HFConfig, MLPConfig, ModelConfig, ModelKind

HF_GPT_NEOX = HFConfig(
    architecture="GPTNeoXForCausalLM",
    config={
        "model_type": "gpt_neox",
        "vocab_size": 50304,
        "num_hidden_layers": 6,
        "hidden_size": 512,
        "max_position_embeddings": 2048,
    },
)
HF_CLS = HFConfig(architecture="BertForSequenceClassification", config={"model_type": "bert", "vocab_size": 30})

# kind -> (n_layers, d_model, n_outputs, takes_tokens, objective, max_positions, foreign, label)
EXPECTED = [
    (MLPConfig(d_in=7, width=11, depth=3, n_classes=5), (3, 11, 5, False, None, 0, False, "mlp")),
    (
        GPT2Config(vocab_size=9, n_positions=33, n_layer=2, n_head=3, head_dim=4),
        (2, 12, 9, True, "next", 33, False, "gpt2"),
    ),
    (
        BertConfig(
            vocab_size=13, hidden_size=8, num_hidden_layers=5, num_attention_heads=2, max_position_embeddings=40
        ),
        (5, 8, 13, True, "mlm", 40, False, "bert"),
    ),
    (HF_GPT_NEOX, (6, 512, 50304, True, "next", 2048, True, "GPTNeoXForCausalLM")),
    (HF_CLS, (0, 0, 30, True, None, 0, True, "BertForSequenceClassification")),
]
NAMES = ("n_layers", "d_model", "n_outputs", "takes_tokens", "objective", "max_positions", "foreign", "label")


@pytest.mark.parametrize(("cfg", "want"), EXPECTED, ids=lambda x: getattr(x, "kind", ""))
def test_every_kind_declares_the_capabilities(cfg, want):
    assert isinstance(cfg, ModelKind)
    assert tuple(getattr(cfg, n) for n in NAMES) == want


def test_every_kind_of_the_union_is_covered():
    assert {type(c) for c, _ in EXPECTED} == set(ModelConfig.__args__)


def test_declared_properties_are_not_fields():
    """They are derived: the saved config (``asdict``) and equality by value are unchanged."""
    from dataclasses import asdict

    for cfg, _ in EXPECTED:
        assert not set(NAMES) & set(asdict(cfg))
        assert type(cfg)(**asdict(cfg)) == cfg
