"""n-gram dependence metrics M_robust and M_close (paper section 7.2), for masked LMs.

For a probe sentence ``x = [BOS] + tokens`` and a position p in {s, 2s, ...} (s = ``ngram_stride``, 0 = auto,
paper 30; p < len(x); at most ``ngram_max_positions`` of them, paper 14, so p <= 420), the model's output distribution at p is compared across maskings:

- baseline: only p is masked;
- robust, window n (odd; W = {p - (n-1)/2, ..., p + (n-1)/2} clipped to the sentence): every
  position of W is masked, so the local n-gram around p is removed and the rest stays;
- close, window n: every position *outside* W is masked (BOS included) and p too, so the model
  sees only the n-gram neighbours of p.

Score: ``|| softmax(z_variant[p]) - softmax(z_base[p]) ||_1`` over all vocabulary ids (the
paper's "TV", which is twice the total variation). High M_robust: the prediction depends on the
local n-gram; low M_close: the local n-gram alone nearly fixes the prediction.

Masked positions hold the MASK token; with the task's ``hide_masked_keys`` (the paper's
convention, default) they are also hidden as attention keys, exactly as in training.

For a ``BertForMaskedLM`` with hidden masked keys the probe takes ``probes.tasks.pcfg.bert_ngram``
(the same numbers to float32 rounding, 5-8x less CPU); ``ngram_distances`` is the definition
and serves every other model.

Next-token (GPT-2) models are skipped here (no rows): a causal model has no MASK token in training
and its prediction at p is about p + 1, so the paper's definition does not carry over. The
``text`` task measures causal LMs with ``causal_close_distances`` (the M_close analogue).

Rows: probe ``ngram``, feature ``robust_n{n}`` / ``close_n{n}``, site ``output``, metrics
``p50`` (primary, the paper's curve), ``p25``, ``p75``, ``p90``, ``mean``, ``std``; ``degree`` = n;
``extra`` = {"n_pairs": number of (sentence, p) pairs}.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import MappingProxyType

import numpy as np
import torch

from models.registry import logits_of
from probes.base import MetricSpec, Probe, ProbeContext
from probes.store import ResultRow
from probes.tasks.pcfg import bert_ngram
from probes.tasks.pcfg.common import PCFGProbeOptions, expected_length, probe_corpus
from probes.tasks.pcfg.ngram_windows import KINDS, probe_positions, variants, window  # noqa: F401 - the definition
from training.data.pcfg_mlm import position_ids

log = logging.getLogger(__name__)

PROBE = "ngram"
SITE = "output"


def auto_stride(task) -> int:
    """min(30, max(2, E // 5)) for the expected sentence length E of the task's start level."""
    return int(min(30, max(2, expected_length(task) // 5)))


@torch.no_grad()
def ngram_distances(
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    seqs: Sequence[torch.Tensor],
    *,
    mask_id: int,
    pad_id: int,
    stride: int = 30,
    windows: Sequence[int] = (3, 5),
    hide_masked_keys: bool = True,
    batch_size: int = 64,
    max_positions: int = 0,
) -> dict[tuple[str, int], np.ndarray]:
    """L1 distances per (kind, n), one value per (sentence, p) pair, in sentence then p order.

    Args:
        forward: ``forward(input_ids [B, T], attention_mask [B, T]) -> logits [B, T, V]``.
        seqs: model inputs ``[BOS] + tokens`` per sentence (1-D int64, unpadded).
    """
    out: dict[tuple[str, int], list[float]] = {(k, n): [] for k in KINDS for n in windows}
    pending: list[tuple[torch.Tensor, torch.Tensor, int, str, int]] = []  # (ids, attn, p, kind, n)
    base: list[torch.Tensor] = []  # the latest baseline distribution (rows arrive in order)

    def flush() -> None:
        T = max(r[0].numel() for r in pending)
        ids = torch.full((len(pending), T), pad_id, dtype=torch.int64)
        attn = torch.zeros((len(pending), T), dtype=torch.int64)
        for i, (x, a, *_rest) in enumerate(pending):
            ids[i, : x.numel()] = x
            attn[i, : a.numel()] = a
        logits = forward(ids, attn)
        ps = torch.as_tensor([r[2] for r in pending], device=logits.device)
        q = torch.softmax(logits[torch.arange(len(pending), device=logits.device), ps].float(), dim=-1).cpu()
        for i, (*_x, kind, n) in enumerate(pending):
            if kind == "base":
                base[:] = [q[i]]
            else:
                out[(kind, n)].append(float((q[i] - base[0]).abs().sum()))
        pending.clear()

    for seq in seqs:
        T = int(seq.numel())
        for p in probe_positions(T, stride, max_positions):
            for kind, n, masked in variants(p, T, windows):
                x = seq.clone()
                x[masked] = mask_id
                attn = torch.ones(T, dtype=torch.int64)
                if hide_masked_keys:
                    attn[masked] = 0
                pending.append((x, attn, p, kind, n))
            if len(pending) >= batch_size:
                flush()
    if pending:
        flush()
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


@torch.no_grad()
def causal_close_distances(
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    seqs: Sequence[torch.Tensor],
    *,
    pad_id: int,
    stride: int = 30,
    windows: Sequence[int] = (3, 5),
    batch_size: int = 64,
) -> dict[tuple[str, int], np.ndarray]:
    """The causal-LM analogue of M_close: L1 distances per ``("close", n)``, one value per
    (sentence, p) pair, in sentence then p order.

    A causal model has no MASK token, so only the *close* variant carries over: at position p the
    next-token distribution after the whole prefix ``x[0..p]`` is compared with the one after
    ``x[0]`` (the lead token) followed by only the last ``n - 1`` tokens ``x[p-n+2..p]``, i.e. the
    n-gram ending at the predicted token. Large: the prediction uses context beyond the n-gram.

    Args:
        forward: ``forward(input_ids [B, T], attention_mask [B, T]) -> logits [B, T, V]``.
        seqs: ``[LEAD] + tokens`` per sentence (1-D int64, unpadded).
    """
    out: dict[tuple[str, int], list[float]] = {("close", n): [] for n in windows}
    jobs: list[tuple[torch.Tensor, int, int, int]] = []  # (ids, sentence, p, n)
    base: dict[tuple[int, int], torch.Tensor] = {}

    def run(batch: list[torch.Tensor]) -> list[torch.Tensor]:
        T = max(x.numel() for x in batch)
        ids = torch.full((len(batch), T), pad_id, dtype=torch.int64)
        attn = torch.zeros((len(batch), T), dtype=torch.int64)
        for i, x in enumerate(batch):
            ids[i, : x.numel()], attn[i, : x.numel()] = x, 1
        logits = forward(ids, attn)
        return [logits[i, : x.numel()].float().cpu() for i, x in enumerate(batch)]

    for si, seq in enumerate(seqs):
        T = int(seq.numel())
        ps = probe_positions(T, stride)
        if not ps:
            continue
        full = torch.softmax(run([seq])[0], dim=-1)
        for p in ps:
            base[(si, p)] = full[p]
            for n in windows:
                start = max(1, p - n + 2)
                jobs.append((torch.cat([seq[:1], seq[start : p + 1]]), si, p, n))
    for i in range(0, len(jobs), batch_size):
        chunk = jobs[i : i + batch_size]
        for (x, si, p, n), logits in zip(chunk, run([j[0] for j in chunk]), strict=True):
            q = torch.softmax(logits[x.numel() - 1], dim=-1)
            out[("close", n)].append(float((q - base[(si, p)]).abs().sum()))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def summarize(values: np.ndarray) -> dict[str, float]:
    """Median, quartiles, 90th percentile, mean and std of a distance sample."""
    if values.size == 0:
        return {}
    p25, p50, p75, p90 = np.percentile(values, [25, 50, 75, 90])
    return {
        "p50": float(p50),
        "p25": float(p25),
        "p75": float(p75),
        "p90": float(p90),
        "mean": float(values.mean()),
        "std": float(values.std()),
    }


def ngram_rows(dist: dict[tuple[str, int], np.ndarray]) -> list[ResultRow]:
    rows = []
    for (kind, n), vals in sorted(dist.items()):
        stats = summarize(vals)
        rows += [
            ResultRow(PROBE, f"{kind}_n{n}", SITE, m, v, degree=n, extra={"n_pairs": int(vals.size)})
            for m, v in stats.items()
        ]
    return rows


class NgramProbe(Probe):
    """M_robust / M_close for windows ``ngram_windows`` at every ``ngram_stride``-th position."""

    name = PROBE
    primary_metrics = MappingProxyType({"p50": MetricSpec(min_effect=0.05)})

    def run(self, ctx: ProbeContext) -> list[ResultRow]:
        task = ctx.task
        if getattr(task.cfg, "objective", "mlm") != "mlm":
            log.info("ngram: skipped for a next-token model (defined for masked LMs only)")
            return []
        opts = PCFGProbeOptions.of(ctx)
        corpus = probe_corpus(ctx, opts.ngram_sentences)
        seqs = [task.plain_batch([t])["input_ids"][0] for t in corpus.tokens]
        stride = opts.ngram_stride or auto_stride(task)
        device = ctx.device

        kw = dict(
            mask_id=task.special.mask,
            pad_id=task.special.pad,
            stride=stride,
            windows=opts.ngram_windows,
            hide_masked_keys=task.cfg.hide_masked_keys,
            batch_size=max(opts.batch_size, 1),
            max_positions=opts.ngram_max_positions,
        )

        def forward(ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
            attn = attn.to(device)  # it hides real tokens: explicit positions (pcfg_mlm.position_ids)
            return logits_of(ctx.model(ids.to(device), attention_mask=attn, position_ids=position_ids(attn)))

        if bert_ngram.supports(ctx.model, task.cfg.hide_masked_keys, opts.ngram_windows):  # exact, 5-8x faster
            dist = bert_ngram.bert_ngram_distances(
                ctx.model,
                seqs,
                mask_id=task.special.mask,
                stride=stride,
                windows=opts.ngram_windows,
                max_positions=opts.ngram_max_positions,
                device=device,
            )
        else:
            dist = ngram_distances(forward, seqs, **kw)
        if not any(v.size for v in dist.values()):
            log.info("ngram: no sentence reaches position %d; nothing to measure", stride)
            return []
        return ngram_rows(dist)
