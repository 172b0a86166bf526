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

from models.configs import BertConfig, GPT2Config

ARCHITECTURES = {"gpt2": "GPT2LMHeadModel", "bert": "BertForMaskedLM"}


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
        pad_token_id=0,
    )


def build_hf(cfg: GPT2Config | BertConfig) -> nn.Module:
    """A freshly initialised ``GPT2LMHeadModel`` or ``BertForMaskedLM`` (seed torch first)."""
    hcfg = hf_config(cfg)
    if isinstance(cfg, GPT2Config):
        return transformers.GPT2LMHeadModel(hcfg)
    return transformers.BertForMaskedLM(hcfg)


def bridge(model: nn.Module, kind: str):
    """Wrap a built HF model with the TransformerLens 4 bridge (hooks, ``run_with_cache``)."""
    from transformer_lens.model_bridge.sources import build_bridge_from_module

    return build_bridge_from_module(model, ARCHITECTURES[kind], hf_config=model.config)
