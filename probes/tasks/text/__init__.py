"""Probes of the ``text`` task (imported LMs on a local corpus): the PCFG probes, rebound.

``probes() -> {"ngram", "context"}``. Each probe binds the task to the checkpoint's own tokenizer
(``training.tasks.text.TextTask.bind``) and runs the PCFG probe machinery on the bound task:

- ``ngram``: masked LMs get the paper's M_robust / M_close (``probes.tasks.pcfg.ngram.NgramProbe``, MASK
  from the tokenizer); causal LMs get the M_close analogue (``probes.tasks.pcfg.ngram.causal_close_distances``:
  the next-token distribution after the full prefix vs after only the last n - 1 tokens),
  rows ``close_n{n}`` only.
- ``context``: linear decoding of the token at offset +/-j from each layer
  (``probes.tasks.pcfg.context.ContextProbe``).
- ``logit_lens``: per layer, KL from the model's output distribution and top-1 agreement of
  the layer read out through the model's own head (``probes.tasks.text.logit_lens``; ``n_sentences``
  chunks). No labels, no fits.

Options are the PCFG probe options (``probes.tasks.pcfg.PCFGProbeOptions``; "sentences" are corpus
chunks). Rows have the same shape as the PCFG probes' rows.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from models.registry import logits_of
from probes.base import Probe, ProbeContext
from probes.store import ResultRow
from probes.tasks.pcfg import parse_options as parse_options  # noqa: F401 - the registry's options hook
from probes.tasks.pcfg.common import PCFGProbeOptions
from probes.tasks.pcfg.context import ContextProbe
from probes.tasks.pcfg.ngram import NgramProbe, auto_stride, causal_close_distances, ngram_rows


def _bind(ctx: ProbeContext) -> ProbeContext:
    return replace(ctx, task=ctx.task.bind(ctx.ckpt_dir, ctx.model_cfg))


class TextNgramProbe(NgramProbe):
    """M_robust / M_close on corpus chunks (masked LMs); the M_close analogue for causal LMs."""

    def run(self, ctx: ProbeContext) -> list[ResultRow]:
        ctx = _bind(ctx)
        task = ctx.task
        if task.cfg.objective == "mlm":
            return super().run(ctx)
        opts = PCFGProbeOptions.of(ctx)
        corpus = task.probe_corpus(opts.ngram_sentences, ctx.seed)
        seqs = [task.plain_batch([t])["input_ids"][0] for t in corpus.tokens]
        device = ctx.device

        def forward(ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
            return logits_of(ctx.model(ids.to(device), attention_mask=attn.to(device)))

        dist = causal_close_distances(
            forward,
            seqs,
            pad_id=task.special.pad,
            stride=opts.ngram_stride or auto_stride(task),
            windows=opts.ngram_windows,
            batch_size=max(opts.batch_size, 1),
        )
        return ngram_rows(dist) if any(v.size for v in dist.values()) else []


class TextContextProbe(ContextProbe):
    """Decode the token at offsets +/-1..J from each position's hidden state, on corpus chunks."""

    def run(self, ctx: ProbeContext) -> list[ResultRow]:
        return super().run(_bind(ctx))


class TextLogitLensProbe(Probe):
    """The logit lens on corpus chunks (``probes.tasks.text.logit_lens``)."""

    name = "logit_lens"

    def run(self, ctx: ProbeContext) -> list[ResultRow]:
        from probes.tasks.text.logit_lens import lens_rows, lens_stats

        ctx = _bind(ctx)
        opts = PCFGProbeOptions.from_options(ctx.options)
        corpus = ctx.task.probe_corpus(opts.n_sentences, ctx.seed)
        sums, count = lens_stats(
            ctx.model, ctx.model_cfg, ctx.task, corpus.tokens, ctx.seed, max(opts.batch_size, 1), ctx.device
        )
        return lens_rows(sums, count)


def probes() -> dict[str, Probe]:
    """The text probe families, by name (the ``probe`` column of their rows)."""
    return {"ngram": TextNgramProbe(), "context": TextContextProbe(), "logit_lens": TextLogitLensProbe()}
