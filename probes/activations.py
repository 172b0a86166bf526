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

How (``ActivationExtractor``, built once per loaded checkpoint and reused for every probe):

- MLP: its layers run directly up to the deepest requested site (the forward's ``F.linear``
  calls and ReLU, in place where the pre-activation is not asked for: bit for bit the hooked
  forward's activations, tested), so no hook fires and later layers (the unembedding) are
  skipped; a model without that structure goes through ``run_with_cache``.
- GPT-2 / BERT residual-stream sites (``blocks.{l}.hook_in``, ``blocks.{l}.hook_out``): one plain
  Hugging Face forward (the model's own attention implementation, SDPA by default), no
  TransformerLens bridge; the states are read by PyTorch hooks on the blocks (block 0's input,
  block l's output) that are removed right after the call. Not ``output_hidden_states``:
  transformers 5 installs permanent capture hooks on first use, and GPT-2's last hidden state
  is after ``ln_f``. Values equal the bridge's (tested).
- Any other site (attention patterns, MLP internals): a TransformerLens bridge, built once per
  extractor over a *copy* of the model, so the model itself is never modified (building a
  bridge adds modules to the model it wraps; rebuilding one per call made them pile up).

``columns={site: index tensor}`` keeps only those feature columns (last dim) of a site, per
batch, so a wide layer is never materialised whole when a probe uses a subset of its neurons.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from curriculens import constants as C
from curriculens.errors import CurriculensError
from models.configs import GPT2Config, ModelConfig
from models.registry import hookable

POSITIONS = ("last", "all", "mean")
_RESIDUAL = re.compile(r"^blocks\.(\d+)\.hook_(in|out)$")
_MLP_SITE = re.compile(r"^blocks\.(\d+)\.hook_(pre|post)$")


def default_sites(model_cfg: ModelConfig) -> list[str]:
    """The sites probed by default: each hidden layer's output.

    MLP: ``blocks.{d}.hook_post`` for every hidden layer. GPT-2/BERT: ``blocks.{l}.hook_out``
    (residual stream after block l) for every block.
    """
    hook = "hook_out" if model_cfg.takes_tokens else "hook_post"
    return [f"blocks.{layer}.{hook}" for layer in range(model_cfg.n_layers)]


def site_width(model_cfg: ModelConfig, site: str) -> int | None:
    """The last-dim width of a site's activations, where the config tells it (else None)."""
    if not model_cfg.takes_tokens:
        if site == "hook_logits":
            return model_cfg.n_outputs
        return model_cfg.d_model if re.match(r"^blocks\.\d+\.hook_(pre|post)$", site) else None
    if _RESIDUAL.match(site):
        return model_cfg.d_model
    return None


def available_sites(model: nn.Module, model_cfg: ModelConfig) -> list[str]:
    """Every hook name ``extract_activations`` accepts for this model."""
    return ActivationExtractor(model, model_cfg).sites()


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


class ActivationExtractor:
    """Activations of one loaded model at named sites (see the module docstring). Build one
    per loaded checkpoint; it never modifies ``model``."""

    def __init__(self, model: nn.Module, model_cfg: ModelConfig) -> None:
        self.model = model
        self.model_cfg = model_cfg
        self.is_hf = model_cfg.takes_tokens and not model_cfg.foreign  # GPT-2 / BERT built here: hidden_states
        self._bridge = None
        self._n_layers = model_cfg.n_layers if self.is_hf else 0

    def bridge(self):
        """The hookable view: the MLP itself, or a TransformerLens bridge over a copy of the HF model."""
        if not self.is_hf:
            return hookable(self.model, self.model_cfg)
        if self._bridge is None:
            self._bridge = hookable(copy.deepcopy(self.model), self.model_cfg)
        return self._bridge

    def sites(self) -> list[str]:
        """Every hook name ``extract`` accepts."""
        return list(self.bridge().hook_dict)

    def _hidden_index(self, site: str) -> int | None:
        """Index into HF ``hidden_states`` for a residual-stream site, or None."""
        found = _RESIDUAL.match(site) if self.is_hf else None
        if not found:
            return None
        layer = int(found.group(1)) + (found.group(2) == "out")
        return layer if layer <= self._n_layers else None

    def _check(self, names: list[str]) -> None:
        if all(self._hidden_index(s) is not None for s in names):
            return
        known = set(self.sites())
        unknown = [s for s in names if s not in known]
        if unknown:
            example = ", ".join(sorted(known)[:6])
            raise CurriculensError(f"unknown activation site(s) {', '.join(unknown)} (e.g. {example}, ...)")

    def _blocks(self) -> nn.ModuleList:
        if isinstance(self.model_cfg, GPT2Config):
            return self.model.transformer.h
        return self.model.bert.encoder.layer

    def _mlp_direct(self, names: list[str]) -> bool:
        """The parity MLP's sites can be computed layer by layer (``_forward_mlp``)."""
        blocks = getattr(self.model, "blocks", None)
        if self.is_hf or not hasattr(self.model, "output_logits") or blocks is None:
            return False
        return all(
            s == "hook_logits" or ((f := _MLP_SITE.match(s)) is not None and int(f.group(1)) < len(blocks))
            for s in names
        )

    def _forward_mlp(self, inp: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
        """MLP sites [batch, width] from its layers, up to the deepest requested one."""
        m, want, got = self.model, set(names), {}
        last = max(len(m.blocks) if s == "hook_logits" else int(_MLP_SITE.match(s).group(1)) for s in names)
        h = inp.to(m.unembed.weight.dtype)
        for d, block in enumerate(m.blocks):
            if d > last:
                break
            pre = nn.functional.linear(h, block.fc.weight, block.fc.bias)
            if f"blocks.{d}.hook_pre" in want:
                got[f"blocks.{d}.hook_pre"] = pre
                h = torch.relu(pre)
            else:
                h = pre.relu_()
            got[f"blocks.{d}.hook_post"] = h
        if "hook_logits" in want:
            got["hook_logits"] = nn.functional.linear(h, m.unembed.weight, m.unembed.bias)
        return got

    def _forward_hidden(self, inp: torch.Tensor, names: list[str], kw: dict) -> dict[str, torch.Tensor]:
        """Residual-stream sites from one plain HF forward: temporary hooks on the blocks
        (block 0's input, block l's output), removed before returning."""
        blocks = self._blocks()
        got: dict[int, torch.Tensor] = {}

        def first(x):
            return x[0] if isinstance(x, (tuple, list)) else x

        def pre_hook(_m, args, kwargs):
            got[0] = first(args) if args else kwargs["hidden_states"]

        def post_hook(i):
            return lambda _m, _i, out: got.setdefault(i, first(out))

        handles = []
        try:
            for i in sorted({self._hidden_index(s) for s in names}):
                if i == 0:
                    handles.append(blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
                else:
                    handles.append(blocks[i - 1].register_forward_hook(post_hook(i)))
            self.model(inp, **kw)
        finally:
            for h in handles:
                h.remove()
        return {s: got[self._hidden_index(s)] for s in names}

    def extract(
        self,
        inputs: torch.Tensor,
        sites: Sequence[str],
        *,
        batch_size: int = C.DEFAULT_PROBE_BATCH,
        position: str = "last",
        kwargs: Mapping[str, Any] | None = None,
        columns: Mapping[str, torch.Tensor] | None = None,
        out_device: str | torch.device = "cpu",
    ) -> dict[str, torch.Tensor]:
        """``{site: activations [N, ...] float32 on out_device}``; see ``extract_activations``."""
        if position not in POSITIONS:
            raise CurriculensError(f"unknown position {position!r} (one of {', '.join(POSITIONS)})")
        if batch_size <= 0:
            raise CurriculensError("batch_size must be positive")
        names = list(dict.fromkeys(sites))
        if not names:
            raise CurriculensError("no activation sites requested")
        self._check(names)
        hidden_path = all(self._hidden_index(s) is not None for s in names)
        mlp_path = not kwargs and self._mlp_direct(names)
        device = _model_device(self.model)
        kwargs = dict(kwargs or {})
        columns = {s: c.to(device) for s, c in (columns or {}).items()}
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
                if hidden_path:
                    cache = self._forward_hidden(inp, names, kw)
                elif mlp_path:
                    cache = self._forward_mlp(inp, names)
                else:
                    _, cache = self.bridge().run_with_cache(inp, names_filter=names, **kw)
                mask = kw.get("attention_mask")
                for site in names:
                    act = cache[site]
                    if site in columns:
                        act = act.index_select(-1, columns[site])
                    act = _reduce(act, position, mask, site)
                    chunks[site].append(act.detach().to(out_device, torch.float32))
                del cache
        return {site: torch.cat(parts, dim=0) for site, parts in chunks.items()}


def extract_activations(
    model: nn.Module,
    model_cfg: ModelConfig,
    inputs: torch.Tensor,
    sites: Sequence[str],
    *,
    batch_size: int = C.DEFAULT_PROBE_BATCH,
    position: str = "last",
    kwargs: Mapping[str, Any] | None = None,
    columns: Mapping[str, torch.Tensor] | None = None,
    extractor: ActivationExtractor | None = None,
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
        columns: optional ``{site: LongTensor}`` of feature columns (last dim) to keep.
        extractor: reuse this model's ``ActivationExtractor`` (one per loaded checkpoint).

    Returns:
        One tensor per site, concatenated over batches, in the order of ``sites``.
    """
    ex = extractor if extractor is not None else ActivationExtractor(model, model_cfg)
    return ex.extract(inputs, sites, batch_size=batch_size, position=position, kwargs=kwargs, columns=columns)
