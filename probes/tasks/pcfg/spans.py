"""Non-terminal span probes (paper section 7.1, with the boundary flags the paper's code skips).

For every probed site (embedding, each block output) and every informative level d, two linear
probes read each token's hidden state:

- ``level{d}``: the numeric id of the token's level-d ancestor non-terminal (multi-class);
- ``level{d}_end``: whether the token is the last one of that ancestor's span (binary).

Choices (documented, differ from the paper's probe):

- Inputs are unmasked ``[BOS] + tokens`` with attention on every real token (as the paper's
  probe); the BOS position is not probed.
- Every token is probed (the paper's code probes all tokens; Allen-Zhu's original probes only
  span boundaries); the probe is linear per token, not the paper's position-mixing probe.
- Levels are skipped when uninformative: above the sentences' start level, or where the label is
  a function of the token alone over the probe data (the preterminal level; and every
  ``_end`` flag that is constant). Rows carry ``degree = d``.
- Train/test split by sentence (``probes.tasks.pcfg.fit_by_group``); the shuffled-label control and the
  majority-class rate come from ``probes.linear``.

Rows: probe ``nt_span``, feature ``level{d}`` / ``level{d}_end``, site = hook name, metrics
``test_acc`` (primary), ``control_acc``, ``majority``, ``selectivity``; ``extra`` holds
n_train, n_test, converged.
"""

from __future__ import annotations

import logging

import numpy as np

from probes.base import Probe, ProbeContext
from probes.store import ResultRow
from probes.tasks.pcfg.common import (
    LINEAR_PRIMARY,
    PCFGProbeOptions,
    grouped_probe_rows,
    pcfg_sites,
    probe_corpus,
    select_tokens,
    token_activations,
    warm_slots,
)

log = logging.getLogger(__name__)

PROBE = "nt_span"


def _is_function_of(labels: np.ndarray, tokens: np.ndarray) -> bool:
    """True if every token value maps to a single label (the label adds nothing to the token)."""
    for t in np.unique(tokens):
        if np.unique(labels[tokens == t]).size > 1:
            return False
    return True


def informative_columns(nt: np.ndarray, ends: np.ndarray, tokens: np.ndarray) -> list[tuple[str, int, np.ndarray]]:
    """``[(feature, level, labels [N])]`` worth probing.

    Args:
        nt: [N, D] ancestor ids per token (-1 above the start level).
        ends: [N, D] bool span-end flags.
        tokens: [N] token ids.
    """
    cols = []
    for d in range(nt.shape[1]):
        y = nt[:, d]
        if (y < 0).any() or np.unique(y).size < 2 or _is_function_of(y, tokens):
            continue
        cols.append((f"level{d}", d, y.astype(np.int64)))
    for d in range(ends.shape[1]):
        if (nt[:, d] < 0).any():
            continue
        e = ends[:, d].astype(np.int64)
        if np.unique(e).size < 2 or _is_function_of(e, tokens):
            continue
        cols.append((f"level{d}_end", d, e))
    return cols


class NTSpanProbe(Probe):
    """Ancestor non-terminal and span-end linear probes, per level and site."""

    name = PROBE
    primary_metrics = LINEAR_PRIMARY

    def run(self, ctx: ProbeContext) -> list[ResultRow]:
        opts = PCFGProbeOptions.of(ctx)
        corpus = probe_corpus(ctx, opts.n_sentences)
        limit = ctx.task.max_terminals
        lengths = np.minimum(corpus.lengths, limit)
        sent, tok = select_tokens(lengths, opts.max_tokens, ctx.seed)
        nt = np.stack([corpus.nt[s][t] for s, t in zip(sent, tok, strict=True)])
        ends = np.stack([corpus.ends[s][t] for s, t in zip(sent, tok, strict=True)])
        tokens = np.array([corpus.tokens[s][t] for s, t in zip(sent, tok, strict=True)])
        columns = informative_columns(nt, ends, tokens)
        if not columns:
            log.info("nt_span: no informative level in the probe data")
            return []
        sites = pcfg_sites(ctx.model_cfg, opts)
        acts = token_activations(
            ctx.model, ctx.model_cfg, ctx.task, corpus.tokens, sent, tok, sites, opts.batch_size, ctx.extractor()
        )
        return grouped_probe_rows(
            PROBE, acts, columns, sent, opts, ctx.seed, device=str(ctx.device), warm=warm_slots(ctx, PROBE)
        )
