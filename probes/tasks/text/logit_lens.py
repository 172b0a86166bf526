"""The logit lens of a masked or causal LM: how close each layer's residual stream, read out
through the model's own final norm and unembedding, already is to the model's output.

For layer ``l`` (site ``blocks.{l}.hook_in``: the residual stream entering block ``l``; ``l = 0``
is the embedding output) and every probed position, with ``p`` the model's output distribution
and ``q_l = softmax(head(h_l))``:

- ``kl``: KL(p || q_l) in nats, mean over positions (0 = the layer already says it all);
- ``top1_agree``: the share of positions where argmax q_l == argmax p.

``head``: masked LMs, the model's whole MLM head (BERT's ``cls``, RoBERTa-style ``lm_head``:
transform + norm + decoder); causal LMs, the final norm (``ln_f`` / ``final_layer_norm`` /
``norm``) then the output embedding. The block inputs are read by forward pre-hooks on the
blocks, one plain forward per batch (no ``output_hidden_states``: transformers 5 keeps capture
hooks, and GPT-2's last hidden state is already normed).

Positions: causal LMs, every real token of each chunk (LEAD included); masked LMs, a seeded
15% of the real tokens after LEAD (at least one per chunk), replaced by MASK as in training, so
the lens reads the model's predictions where it predicts. No labels and no training: it runs on
any imported trajectory. Rows: feature ``layer{l}`` (a layer x step heatmap in the dashboard's
feature heatmap), site ``blocks.{l}.hook_in``, metrics ``kl`` and ``top1_agree``; extra
``n_positions``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from curriculens.errors import CurriculensError
from curriculens.seeding import TEXT_LENS_MASK, numpy_rng
from models.configs import ModelConfig, n_layers
from models.registry import logits_of
from probes.store import ResultRow

MASK_SHARE = 0.15
FINAL_NORMS = (
    "transformer.ln_f",  # GPT-2, GPT-J, ...
    "gpt_neox.final_layer_norm",  # Pythia
    "model.norm",  # Llama, Mistral, Qwen, OLMo 2, ...
    "model.final_layernorm",
    "model.final_layer_norm",
    "model.decoder.final_layer_norm",  # OPT
    "model.transformer.ln_f",  # OLMo 1
    "transformer.norm_f",
)


def _get(model: nn.Module, path: str):
    obj = model
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def blocks_of(model: nn.Module, model_cfg: ModelConfig) -> nn.ModuleList:
    """The model's list of transformer blocks: the ``ModuleList`` of ``n_layers`` entries with
    the shortest name (one-line error if there is none)."""
    n = n_layers(model_cfg)
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m) == n]
    if not found:
        raise CurriculensError(f"logit lens: no list of {n} blocks in {type(model).__name__}")
    return min(found, key=lambda t: (t[0].count("."), t[0]))[1]


def lens_head(model: nn.Module, objective: str):
    """``h [.., d] -> logits [.., V]`` as the model reads out its last layer (module docstring)."""
    if objective == "mlm":
        head = next((h for h in (getattr(model, "cls", None), getattr(model, "lm_head", None)) if h is not None), None)
        if head is None:
            raise CurriculensError(f"logit lens: no MLM head (cls / lm_head) in {type(model).__name__}")
        return head
    out = model.get_output_embeddings()
    norm = next((m for m in (_get(model, p) for p in FINAL_NORMS) if isinstance(m, nn.Module)), None)
    if out is None or norm is None:
        raise CurriculensError(f"logit lens: cannot find the final norm and unembedding of {type(model).__name__}")
    return lambda h: out(norm(h))


def mask_positions(lengths: np.ndarray, seed: int) -> list[np.ndarray]:
    """Per chunk of ``lengths[i]`` real tokens after LEAD, the input positions (1-based, LEAD = 0)
    to mask: a seeded ``MASK_SHARE`` of them, at least one."""
    rng = numpy_rng(TEXT_LENS_MASK, seed)
    out = []
    for n in lengths:
        k = max(1, int(round(MASK_SHARE * n)))
        out.append(np.sort(rng.choice(np.arange(1, n + 1), size=k, replace=False)))
    return out


@torch.no_grad()
def lens_stats(model: nn.Module, model_cfg: ModelConfig, task, tokens, seed: int, batch_size: int, device):
    """``{layer: (kl_sum, agree_sum)}`` and the number of positions, over chunks ``tokens``
    (token-id arrays, LEAD excluded) of a bound text task."""
    objective = task.cfg.objective
    blocks = blocks_of(model, model_cfg)
    head = lens_head(model, objective)
    L = len(blocks)
    sums = {layer: [0.0, 0.0] for layer in range(L)}
    count = 0
    masks = mask_positions(np.asarray([len(t) for t in tokens]), seed) if objective == "mlm" else None
    captured: dict[int, torch.Tensor] = {}

    def pre_hook(i):
        def hook(_m, args, kwargs):
            captured[i] = (args[0] if args else kwargs["hidden_states"]).detach()

        return hook

    for start in range(0, len(tokens), batch_size):
        chunk = tokens[start : start + batch_size]
        batch = task.plain_batch(chunk)
        ids, attn = batch["input_ids"].clone(), batch["attention_mask"].bool()
        where = attn.clone()
        if masks is not None:
            where = torch.zeros_like(attn)
            for i, pos in enumerate(masks[start : start + batch_size]):
                pos = pos[pos < ids.shape[1]]
                where[i, pos] = True
                ids[i, pos] = task.special.mask
        captured.clear()
        handles = [b.register_forward_pre_hook(pre_hook(i), with_kwargs=True) for i, b in enumerate(blocks)]
        try:
            final = logits_of(model(ids.to(device), attention_mask=batch["attention_mask"].to(device)))
        finally:
            for h in handles:
                h.remove()
        sel = where.to(device)
        p_log = torch.log_softmax(final[sel].float(), dim=-1)
        top = p_log.argmax(-1)
        for layer in range(L):
            q_log = torch.log_softmax(head(captured[layer])[sel].float(), dim=-1)
            kl = (p_log.exp() * (p_log - q_log)).sum(-1)
            sums[layer][0] += float(kl.sum())
            sums[layer][1] += float((q_log.argmax(-1) == top).sum())
        count += int(sel.sum())
    return sums, count


def lens_rows(sums: dict, count: int) -> list[ResultRow]:
    rows = []
    for layer, (kl, agree) in sorted(sums.items()):
        extra = {"n_positions": count}
        for metric, value in (("kl", kl / max(count, 1)), ("top1_agree", agree / max(count, 1))):
            rows.append(ResultRow("logit_lens", f"layer{layer}", f"blocks.{layer}.hook_in", metric, value, extra=extra))
    return rows
