"""Activations at named hook sites, through TransformerLens ``run_with_cache``.

``extract_activations`` runs the model in batches and keeps only the requested sites
(``names_filter``), so a full activation cache is never held: each batch's cache is reduced
over positions, moved to CPU as float32 and dropped before the next batch.

Sites are TransformerLens hook names:

- parity MLP (``models.mlp``): ``blocks.{d}.hook_pre``, ``blocks.{d}.hook_post`` [batch, width],
  ``hook_logits`` [batch, n_classes];
- GPT-2 / BERT (TransformerLens 4 bridge, ``models.hf``): ``blocks.{l}.hook_out``
  [batch, pos, d_model] (the residual stream after block l), ``embed.hook_out``, ...

``position`` reduces 3-D activations [batch, pos, d] over positions:

- ``"last"`` (default): the last position, [batch, d]. This is where the parity Transformer
  reads its class. With an ``attention_mask`` kwarg the last *unmasked* position is taken
  (right padding assumed).
- ``"mean"``: the mean over positions (over unmasked ones with an ``attention_mask``), [batch, d].
- ``"all"``: no reduction, [batch, pos, d] (memory grows with the sequence length).

2-D activations (the MLP's) are returned as they are for every ``position``. Activations with
4 or more dims (attention patterns [batch, head, q, k]) are only returned with ``"all"``.

Footgun: the bridge shares parameters with the HF model; it is built here per call (cheap) so
it always sees the loaded weights.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from curriculens import constants as C
from curriculens.errors import CurriculensError
from models.configs import BertConfig, GPT2Config, HFConfig, MLPConfig, ModelConfig, n_layers
from models.registry import hookable

POSITIONS = ("last", "all", "mean")


def default_sites(model_cfg: ModelConfig) -> list[str]:
    """The sites probed by default: each hidden layer's output.

    MLP: ``blocks.{d}.hook_post`` for every hidden layer. GPT-2/BERT: ``blocks.{l}.hook_out``
    (residual stream after block l) for every block.
    """
    if isinstance(model_cfg, MLPConfig):
        return [f"blocks.{d}.hook_post" for d in range(model_cfg.depth)]
    if isinstance(model_cfg, (GPT2Config, BertConfig, HFConfig)):
        return [f"blocks.{layer}.hook_out" for layer in range(n_layers(model_cfg))]
    raise TypeError(f"not a model config: {model_cfg!r}")


def available_sites(model: nn.Module, model_cfg: ModelConfig) -> list[str]:
    """Every hook name ``extract_activations`` accepts for this model."""
    return list(hookable(model, model_cfg).hook_dict)


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _reduce(act: torch.Tensor, position: str, mask: torch.Tensor | None, site: str) -> torch.Tensor:
    if act.dim() <= 2 or position == "all":
        return act
    if act.dim() > 3:
        raise CurriculensError(f"site {site} has shape {tuple(act.shape)}; only position='all' keeps it")
    if position == "last":
        if mask is None:
            return act[:, -1]
        last = mask.long().sum(dim=1).clamp(min=1) - 1  # right padding: last unmasked position
        return act[torch.arange(act.shape[0], device=act.device), last]
    # mean
    if mask is None:
        return act.mean(dim=1)
    m = mask.to(act.dtype).unsqueeze(-1)  # [batch, pos, 1]
    return (act * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def extract_activations(
    model: nn.Module,
    model_cfg: ModelConfig,
    inputs: torch.Tensor,
    sites: Sequence[str],
    *,
    batch_size: int = C.DEFAULT_PROBE_BATCH,
    position: str = "last",
    kwargs: Mapping[str, Any] | None = None,
) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``inputs`` and return ``{site: activations [N, ...] float32 on CPU}``.

    Args:
        model: the model (eval mode); its parameters' device is where the forward runs.
        model_cfg: its config (picks the hookable view: the MLP itself or the TL bridge).
        inputs: [N, ...] model input, e.g. float ±1 [N, n] (MLP) or token ids [N, T]
            (Transformer), as ``task.model_input`` returns it; sliced along dim 0.
        sites: hook names (see ``available_sites``); unknown names are a CurriculensError.
        batch_size: examples per forward.
        position: ``"last"`` | ``"mean"`` | ``"all"`` (see the module docstring).
        kwargs: extra forward kwargs; tensors whose dim 0 is N (``attention_mask``) are
            sliced per batch, anything else is passed unchanged.

    Returns:
        One tensor per site, concatenated over batches, in the order of ``sites``.
    """
    if position not in POSITIONS:
        raise CurriculensError(f"unknown position {position!r} (one of {', '.join(POSITIONS)})")
    if batch_size <= 0:
        raise CurriculensError("batch_size must be positive")
    names = list(dict.fromkeys(sites))
    if not names:
        raise CurriculensError("no activation sites requested")
    hooked = hookable(model, model_cfg)
    known = set(hooked.hook_dict)
    unknown = [s for s in names if s not in known]
    if unknown:
        example = ", ".join(sorted(known)[:6])
        raise CurriculensError(f"unknown activation site(s) {', '.join(unknown)} (e.g. {example}, ...)")
    device = _model_device(model)
    kwargs = dict(kwargs or {})
    n = inputs.shape[0]
    if n == 0:
        raise CurriculensError("no inputs to extract activations from")
    chunks: dict[str, list[torch.Tensor]] = {s: [] for s in names}
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            inp = inputs[start:stop].to(device)
            kw = {
                k: v[start:stop].to(device) if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == n else v
                for k, v in kwargs.items()
            }
            _, cache = hooked.run_with_cache(inp, names_filter=names, **kw)
            mask = kw.get("attention_mask")
            for site in names:
                act = _reduce(cache[site], position, mask, site)
                chunks[site].append(act.detach().to("cpu", torch.float32))
            del cache
    return {site: torch.cat(parts, dim=0) for site, parts in chunks.items()}
