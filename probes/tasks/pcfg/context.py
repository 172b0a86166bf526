"""Linear context probe: how far around a position a layer's hidden state carries tokens.

From the hidden state at token i (unmasked ``[BOS] + tokens`` input, each probed site), a linear
classifier decodes the token at i + j, for j = -J..-1 and +1..+J (``offsets`` = J; default auto, 8 for cfg3b).
Only positions with every offset inside the sentence are used (i - J >= 0 and i + J < length,
in terminal indices), so all offsets share the same rows and one batched fit covers a site.
The growth of decodable offsets over training shows how the usable context widens.

For a causal (GPT-2) model, positive offsets are predictions of future tokens and negative
ones memory of the past; for BERT both are read from a bidirectional state.

Rows: probe ``context``, feature ``offset{j:+d}`` (``offset-3``, ``offset+1``), site = hook
name, metrics ``test_acc`` (primary), ``control_acc``, ``majority``, ``selectivity``;
``degree`` = j (signed). Split by sentence, as every PCFG linear probe.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from probes.base import Probe, ProbeContext
from probes.store import ResultRow
from probes.tasks.pcfg.common import (
    LINEAR_PRIMARY,
    PCFGProbeOptions,
    expected_length,
    grouped_probe_rows,
    pcfg_sites,
    probe_corpus,
    select_tokens,
    token_activations,
    warm_slots,
)

log = logging.getLogger(__name__)

PROBE = "context"


def offset_feature(j: int) -> str:
    return f"offset{j:+d}"


def auto_offsets(task) -> int:
    """min(8, max(1, E // 4)) for the task's expected sentence length E."""
    return int(min(8, max(1, expected_length(task) // 4)))


def offsets_for(J: int) -> list[int]:
    """``[-J, ..., -1, 1, ..., J]``."""
    return list(range(-J, 0)) + list(range(1, J + 1))


def context_labels(seqs, sent: np.ndarray, tok: np.ndarray, offsets) -> np.ndarray:
    """[N, len(offsets)] token ids at ``tok + j`` of each selected sentence."""
    return np.stack([[int(seqs[s][t + j]) for j in offsets] for s, t in zip(sent, tok, strict=True)]).astype(np.int64)


def context_rows(
    acts: dict[str, torch.Tensor],
    labels: np.ndarray,
    offsets,
    groups: np.ndarray,
    opts: PCFGProbeOptions,
    seed: int,
    device: str = "cpu",
    warm=None,
) -> list[ResultRow]:
    """One batched fit per site over every offset column; rows per (site, offset, metric)."""
    columns = [(offset_feature(j), j, labels[:, i]) for i, j in enumerate(offsets)]
    return grouped_probe_rows(PROBE, acts, columns, groups, opts, seed, device, warm)


class ContextProbe(Probe):
    """Decode the token at offsets +/-1..J from each position's hidden state."""

    name = PROBE
    primary_metrics = LINEAR_PRIMARY

    def run(self, ctx: ProbeContext) -> list[ResultRow]:
        opts = PCFGProbeOptions.of(ctx)
        J = opts.offsets or auto_offsets(ctx.task)
        corpus = probe_corpus(ctx, opts.n_sentences)
        lengths = np.minimum(corpus.lengths, ctx.task.max_terminals)

        def valid(_s: int, n: int) -> np.ndarray:
            i = np.arange(n)
            return (i - J >= 0) & (i + J < n)

        sent, tok = select_tokens(lengths, opts.max_tokens, ctx.seed + 1, valid)
        if np.unique(sent).size < 2:
            log.info("context: fewer than 2 sentences longer than 2 x %d tokens; nothing to probe", J)
            return []
        offsets = offsets_for(J)
        labels = context_labels(corpus.tokens, sent, tok, offsets)
        sites = pcfg_sites(ctx.model_cfg, opts)
        acts = token_activations(
            ctx.model, ctx.model_cfg, ctx.task, corpus.tokens, sent, tok, sites, opts.batch_size, ctx.extractor()
        )
        return context_rows(
            acts, labels, offsets, sent, opts, ctx.seed, device=str(ctx.device), warm=warm_slots(ctx, PROBE)
        )
