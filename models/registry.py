"""Build a model from its config; get a view of it that TransformerLens can hook."""

from __future__ import annotations

import torch
from torch import nn
from transformer_lens import HookedRootModule

from models.configs import BertConfig, GPT2Config, HFConfig, MLPConfig, ModelConfig


def build_model(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised model for ``cfg`` (seed torch before calling for reproducibility)."""
    if isinstance(cfg, MLPConfig):
        from models.mlp import ParityMLP

        return ParityMLP(cfg)
    if isinstance(cfg, (GPT2Config, BertConfig, HFConfig)):
        from models.hf import build_hf

        return build_hf(cfg)
    raise TypeError(f"not a model config: {cfg!r}")


def hookable(model: nn.Module, cfg: ModelConfig):
    """An object with ``run_with_cache(input, names_filter=..., **kwargs)`` over ``model``.

    The MLP is its own hookable root; HF models get a TransformerLens 4 bridge.
    """
    if isinstance(model, HookedRootModule):
        return model
    from models.hf import architecture_of, bridge

    return bridge(model, architecture_of(cfg))


def logits_of(output) -> torch.Tensor:
    """Logits from a raw model output (tensor, HF ``ModelOutput``, or bridge output)."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, (tuple, list)):
        return output[0]
    raise TypeError(f"cannot read logits from {type(output).__name__}")


def output_logits(model, inp, kwargs: dict | None = None, work: list | None = None) -> torch.Tensor:
    """``logits_of(model(inp, **kwargs))`` for callers that need only the output (no grad):
    through the model's ``output_logits`` when it has one and takes no keyword inputs (the
    parity MLP: no hooks, ReLU in place, the same numbers), else the plain forward.
    ``work``: a list kept across batches for the model's reused buffers (``ParityMLP.output_logits``)."""
    fast = getattr(model, "output_logits", None)
    if fast is not None and not kwargs and not torch.is_grad_enabled():
        return fast(inp) if work is None else fast(inp, work=work)
    return logits_of(model(inp, **(kwargs or {})))
