"""M_robust / M_close for a Hugging Face ``BertForMaskedLM`` whose masked positions are hidden
as attention keys: the numbers of ``probes.tasks.pcfg.ngram.ngram_distances`` (the definition) at a
fraction of its cost.

Three facts of such a model make it exact and cheap:

1. A hidden position never feeds another: only the visible tokens and the query at p matter.
   The close variant's visible tokens are the window's n - 1 neighbours, so it runs as a
   sequence of n tokens at their own positions (``position_ids`` = the window).
2. Only the output at p is read: the last layer computes keys and values for every row but a
   query for p alone, and the MLM head runs on p alone.
3. The first layer's inputs (the plain sentence's embeddings) are the same in every variant of
   a sentence: its attention scores are computed once per sentence in float64, and a variant's
   softmax over its visible keys is the shared sums minus the hidden keys' terms. Rows whose
   visible mass is under ``RECOMPUTE_BELOW`` of the total are recomputed directly (no
   cancellation).

Trap: the arithmetic differs from the padded full forward (summation order, float64 in the first
layer), so values agree with ``ngram_distances`` to float32 rounding, not bit for bit: tested to be
as close to the float64 definition as the float32 reference itself (differences 1e-8 on the
cfg3b demo's checkpoints, up to 1e-5 on a deliberately large-weight random BERT).
Only for ``hide_masked_keys`` and windows n >= 3 (``supports``); anything else takes the
reference path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from probes.tasks.pcfg.ngram_windows import KINDS, probe_positions, window

RECOMPUTE_BELOW = 1e-6  # visible / total attention mass under which a first-layer row is recomputed


def supports(model, hide_masked_keys: bool, windows: Sequence[int]) -> bool:
    """True if ``bert_ngram_distances`` computes the definition for this model and options."""
    cfg = getattr(model, "config", None)
    return (
        hide_masked_keys
        and type(model).__name__ == "BertForMaskedLM"
        and not model.training
        and not getattr(cfg, "is_decoder", False)
        and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
        and all(int(n) >= 3 for n in windows)
    )


def _heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """[B, T, H * dh] -> [B, H, T, dh]."""
    B, T, D = x.shape
    return x.view(B, T, n_heads, D // n_heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """[B, H, T, dh] -> [B, T, H * dh]."""
    B, H, T, dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * dh)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, vis: torch.Tensor, scale: float) -> torch.Tensor:
    """Softmax attention of q [B, H, Tq, dh] over the keys visible in ``vis`` [B, T] (bool), as
    Hugging Face's BERT masks them (the dtype's minimum added to hidden keys' scores)."""
    bias = torch.zeros(vis.shape, dtype=q.dtype, device=q.device).masked_fill(~vis, torch.finfo(q.dtype).min)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias[:, None, None, :], scale=scale)


def _finish(layer, ctx: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The rest of a ``BertLayer`` after self-attention (output projection, residual LayerNorms,
    feed-forward): row by row, so any rows of [..., D]."""
    a = layer.attention.output(ctx, h)
    return layer.output(layer.intermediate(a), a)


def _through(layers, h: torch.Tensor, vis: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Hidden state [B, D] at row ``q`` [B] after ``layers``, from inputs h [B, T, D] with keys
    ``vis`` [B, T]; the last layer computes only row q."""
    rows = torch.arange(h.shape[0], device=h.device)
    for i, layer in enumerate(layers):
        att = layer.attention.self
        H = att.num_attention_heads
        k, v = _heads(att.key(h), H), _heads(att.value(h), H)
        hq = h[rows, q][:, None] if i == len(layers) - 1 else h
        ctx = _attend(_heads(att.query(hq), H), k, v, vis, att.scaling)
        h = _finish(layer, _merge(ctx), hq)
    return h[:, 0]


def _direct(model, ids: torch.Tensor, pos: torch.Tensor, vis: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Logits [B, V] at row q [B] of sequences ids [B, t] at positions pos [B, t], keys vis."""
    h = model.bert.embeddings(input_ids=ids, position_ids=pos)
    return model.cls(_through(model.bert.encoder.layer, h, vis, q))


def _first_layer_shared(
    layer, plain: torch.Tensor, h0: torch.Tensor, vis: torch.Tensor, ps: torch.Tensor
) -> torch.Tensor:
    """The first layer's output [J, T, D] for J variants of one sentence (fact 3).

    plain [T, D]: the plain sentence's embeddings; h0 [J, T, D]: each variant's (the MASK
    embedding at its p); vis [J, T]: visible keys; ps [J]: each variant's p.
    """
    att = layer.attention.self
    H, scale = att.num_attention_heads, att.scaling
    J, T = vis.shape
    q = _heads(att.query(plain[None]), H)[0].double()  # [H, T, dh]
    k = _heads(att.key(plain[None]), H)[0]
    v = _heads(att.value(plain[None]), H)[0]
    k64, v64 = k.double(), v.double()
    s = (q @ k64.transpose(-1, -2)) * scale  # [H, T, T]
    e = torch.exp(s - s.amax(-1, keepdim=True))
    num, tot = e @ v64, e.sum(-1)  # [H, T, dh], [H, T]
    hidden = [torch.nonzero(~vis[j]).flatten() for j in range(J)]
    width = max(int(h.numel()) for h in hidden)
    idx = torch.zeros(J, width, dtype=torch.long, device=vis.device)
    w = torch.zeros(J, width, dtype=torch.float64, device=vis.device)
    for j, hid in enumerate(hidden):
        idx[j, : hid.numel()], w[j, : hid.numel()] = hid, 1.0
    eg = e[:, :, idx] * w  # [H, T, J, width]
    num_v = num[:, :, None] - torch.einsum("htjk,hjkd->htjd", eg, v64[:, idx])  # [H, T, J, dh]
    tot_v = tot[:, :, None] - eg.sum(-1)  # [H, T, J]
    ctx = num_v / tot_v[..., None]
    bad = torch.nonzero(tot_v < RECOMPUTE_BELOW * tot[:, :, None])  # (h, t, j): cancellation risk
    if bad.numel():
        hh, tt, jj = bad.unbind(1)
        sr = s[hh, tt].masked_fill(~vis[jj], float("-inf"))
        ctx[hh, tt, jj] = torch.softmax(sr, -1)[:, None, :].matmul(v64[hh]).squeeze(1)
    ctx = ctx.permute(2, 0, 1, 3).to(plain.dtype)  # [J, H, T, dh]
    rows = torch.arange(J, device=vis.device)
    qp = _heads(att.query(h0[rows, ps][:, None]), H)  # [J, H, 1, dh]: the MASK query at p
    ctx[rows, :, ps] = _attend(qp, k[None].expand(J, -1, -1, -1), v[None].expand(J, -1, -1, -1), vis, scale)[:, :, 0]
    return _finish(layer, _merge(ctx), h0)


def _masked_at_p(model, x: torch.Tensor, jobs: list[tuple[int, list[int]]], mask_id: int) -> torch.Tensor:
    """Logits [J, V] at p for the variants ``jobs`` = [(p, masked positions incl. p)] of the
    sentence x [T]: the masked positions hold MASK and are hidden as keys."""
    T, J = x.numel(), len(jobs)
    dev = x.device
    pos = torch.arange(T, device=dev)
    emb = model.bert.embeddings(input_ids=torch.stack([x, torch.full_like(x, mask_id)]), position_ids=pos.expand(2, T))
    plain, masked = emb[0], emb[1]  # [T, D] each: embeddings are per token
    vis = torch.ones(J, T, dtype=torch.bool, device=dev)
    for j, (_, m) in enumerate(jobs):
        vis[j, m] = False
    ps = torch.as_tensor([p for p, _ in jobs], device=dev)
    rows = torch.arange(J, device=dev)
    h0 = plain.expand(J, T, -1).clone()
    h0[rows, ps] = masked[ps]  # other masked rows keep the plain token: hidden, never read
    layers = model.bert.encoder.layer
    if len(layers) == 1:
        return model.cls(_through(layers, h0, vis, ps))
    h1 = _first_layer_shared(layers[0], plain, h0, vis, ps)
    return model.cls(_through(layers[1:], h1, vis, ps))


def _close_at_p(model, x: torch.Tensor, jobs: list[tuple[int, list[int]]], mask_id: int) -> torch.Tensor:
    """Logits [J, V] at p for close variants ``jobs`` = [(p, window)] of x [T], each run as
    the window alone (fact 1): MASK at p, hidden; the neighbours visible at their positions."""
    J, t = len(jobs), max(len(w) for _, w in jobs)
    dev = x.device
    ids = torch.full((J, t), mask_id, dtype=torch.long, device=dev)
    pos = torch.zeros((J, t), dtype=torch.long, device=dev)
    vis = torch.zeros((J, t), dtype=torch.bool, device=dev)
    q = torch.zeros(J, dtype=torch.long, device=dev)
    for j, (p, w) in enumerate(jobs):
        wt = torch.as_tensor(w, device=dev)
        ids[j, : len(w)], pos[j, : len(w)], vis[j, : len(w)] = x[wt], wt, wt != p
        q[j] = w.index(p)
        ids[j, q[j]] = mask_id
    return _direct(model, ids, pos, vis, q)


@torch.no_grad()
def bert_ngram_distances(
    model,
    seqs: Sequence[torch.Tensor],
    *,
    mask_id: int,
    stride: int = 30,
    windows: Sequence[int] = (3, 5),
    max_positions: int = 0,
    device: torch.device | str = "cpu",
) -> dict[tuple[str, int], np.ndarray]:
    """``ngram_distances`` (hidden masked keys) for a ``BertForMaskedLM`` (``supports``): L1
    distances per (kind, n), one per (sentence, p), in sentence then p order.

    Args:
        seqs: ``[BOS] + tokens`` per sentence (1-D int64, unpadded).
    """
    out: dict[tuple[str, int], list[np.ndarray]] = {(k, n): [] for k in KINDS for n in windows}
    for seq in seqs:
        x = seq.to(device)
        T = int(x.numel())
        ps = probe_positions(T, stride, max_positions)
        if not ps:
            continue
        masked = [(p, [p]) for p in ps] + [(p, window(p, n, T)) for n in windows for p in ps]
        q = torch.softmax(_masked_at_p(model, x, masked, mask_id).float(), dim=-1).cpu()
        close = [(p, window(p, n, T)) for n in windows for p in ps]
        qc = torch.softmax(_close_at_p(model, x, close, mask_id).float(), dim=-1).cpu()
        P = len(ps)
        base = q[:P]
        for i, n in enumerate(windows):
            for kind, qv in (("robust", q[P * (i + 1) : P * (i + 2)]), ("close", qc[P * i : P * (i + 1)])):
                out[(kind, n)].append((qv - base).abs().sum(-1).double().numpy())
    return {k: np.concatenate(v) if v else np.zeros(0, np.float64) for k, v in out.items()}
