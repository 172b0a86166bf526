"""GPT-2 and BERT from local configs (no download), and their TransformerLens 4 bridge.

TransformerLens 4 removed ``HookedTransformer``; a Hugging Face model is made hookable with
``build_bridge_from_module``. Bridge hook names are the 4.x ones: ``blocks.{l}.hook_out``
(residual stream after block l, alias of ``hook_resid_post``), ``blocks.{l}.hook_in``,
``blocks.{l}.attn.hook_pattern``, ``embed.hook_out``, ...

Footgun: the bridge shares parameters with the HF model it wraps; build it after loading
weights, and do not train through it.
"""

from __future__ import annotations

import transformers
from torch import nn

from curriculens.errors import CurriculensError
from models.configs import BertConfig, GPT2Config, HFConfig, ModelConfig

ARCHITECTURES = {"gpt2": "GPT2LMHeadModel", "bert": "BertForMaskedLM"}


def architecture_of(cfg: ModelConfig) -> str:
    """The HF class name (and TransformerLens bridge adapter key) of a GPT-2 / BERT / hf config."""
    if isinstance(cfg, HFConfig):
        return cfg.architecture
    return ARCHITECTURES[cfg.kind]


def bridge_architectures() -> frozenset[str]:
    """Architectures the installed TransformerLens 4 bridge has an adapter for (imports TL, ~5 s)."""
    from transformer_lens.factories import architecture_adapter_factory

    return frozenset(architecture_adapter_factory.SUPPORTED_ARCHITECTURES)


def foreign_hf_config(cfg: HFConfig) -> transformers.PretrainedConfig:
    """The ``transformers`` config object of a foreign model (its class's own ``config_class``)."""
    klass = _hf_class(cfg.architecture)
    try:
        return klass.config_class.from_dict(dict(cfg.config))
    except Exception as exc:  # noqa: BLE001 - a bad foreign config is the user's input
        raise CurriculensError(
            f"config of {cfg.architecture} rejected by transformers: {exc}".splitlines()[0]
        ) from None


def _hf_class(architecture: str):
    """The ``transformers`` model class named ``architecture`` (library code only, no remote code)."""
    klass = getattr(transformers, architecture, None) if architecture.isidentifier() else None
    if klass is None or not isinstance(klass, type) or not issubclass(klass, nn.Module):
        raise CurriculensError(f"architecture {architecture!r} is not a model class of the installed transformers")
    return klass


def hf_config(cfg: GPT2Config | BertConfig) -> transformers.PretrainedConfig:
    """The Hugging Face config for ``cfg`` (``from_pretrained`` reads the same JSON)."""
    if isinstance(cfg, GPT2Config):
        return transformers.GPT2Config(
            vocab_size=cfg.vocab_size,
            n_positions=cfg.n_positions,
            n_embd=cfg.n_embd,
            n_layer=cfg.n_layer,
            n_head=cfg.n_head,
            resid_pdrop=cfg.dropout,
            embd_pdrop=cfg.dropout,
            attn_pdrop=cfg.dropout,
            tie_word_embeddings=cfg.tie_word_embeddings,
            bos_token_id=None,
            eos_token_id=None,
        )
    return transformers.BertConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
        type_vocab_size=1,
        pad_token_id=cfg.pad_token_id,  # the data's PAD (None: no padding row); never a literal
    )


def build_hf(cfg: GPT2Config | BertConfig | HFConfig) -> nn.Module:
    """A freshly initialised ``GPT2LMHeadModel`` / ``BertForMaskedLM`` / foreign class (seed torch first)."""
    if isinstance(cfg, HFConfig):
        return _hf_class(cfg.architecture)(foreign_hf_config(cfg))
    hcfg = hf_config(cfg)
    if isinstance(cfg, GPT2Config):
        return transformers.GPT2LMHeadModel(hcfg)
    return transformers.BertForMaskedLM(hcfg)


def bridge(model: nn.Module, architecture: str):
    """Wrap a built HF model with the TransformerLens 4 bridge (hooks, ``run_with_cache``);
    ``architecture`` is ``architecture_of(cfg)``."""
    from transformer_lens.model_bridge.sources import build_bridge_from_module

    return build_bridge_from_module(model, architecture, hf_config=model.config)
