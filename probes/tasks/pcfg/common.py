"""PCFG probes for the registry: ``probes() -> {"nt_span", "ngram", "context"}``.

- ``nt_span`` (``probes.tasks.pcfg.spans``): linear probes for each token's ancestor non-terminal and
  its span ends, per level and layer.
- ``ngram`` (``probes.tasks.pcfg.ngram``): the paper's M_robust / M_close n-gram dependence (masked LM).
- ``context`` (``probes.tasks.pcfg.context``): linear decoding of the token at offset +/-j.

Shared here: the probe options (``PCFGProbeOptions``, parsed once per sweep into
``ProbeContext.opts``; an unknown key is an error), the probed sites, token-level activation
gathering and a linear probe fit whose train/test split is by sentence.

Sites: ``blocks.0.hook_in`` (the embedding output, i.e. the residual stream entering block 0)
and ``blocks.{l}.hook_out`` for every block (TransformerLens 4 bridge names; for GPT-2 the last
one is before the final LayerNorm).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch

from curriculens.errors import CurriculensError
from curriculens.seeding import PCFG_PROBE_SPLIT, PCFG_PROBE_TOKENS, numpy_rng
from models.configs import ModelConfig, d_model, n_layers
from probes.base import MetricSpec
from probes.store import ResultRow
from training.data.pcfg_mlm import position_ids

EMBED_SITE = "blocks.0.hook_in"


@dataclass(frozen=True)
class PCFGProbeOptions:
    """Sizes of the PCFG probes (defaults: CPU-small; every checkpoint sees the same data).

    Args:
        n_sentences: probe sentences for ``nt_span`` and ``context`` (alias ``n_probe``).
        max_tokens: at most this many token positions per linear probe (sampled by sentence).
        offsets: context offsets j = 1..offsets, both directions; 0 = auto: min(8, max(1, E // 4))
            for the task's expected sentence length E (8 for cfg3b).
        ngram_sentences: sentences for the n-gram metrics (paper: 1024, the default; each costs
            about 5 forward rows per probed position).
        ngram_stride: probed positions p = stride, 2 stride, ... (paper: 30); 0 = auto:
            min(30, max(2, E // 5)) for the task's expected sentence length E (about five
            positions per sentence, the paper's 30 for cfg3b).
        ngram_max_positions: at most this many positions per sentence (paper: 14, i.e.
            p <= 420 at stride 30); 0 = no cap.
        ngram_windows: window sizes n (odd; paper: 3 and 5).
        batch_size: sequences per forward pass.
        probe_C, probe_max_iter, test_frac: linear probe protocol (``probes.linear``).
        sites: hook names to probe; empty = embedding + every block output.
    """

    n_sentences: int = 64
    max_tokens: int = 3000
    offsets: int = 0
    ngram_sentences: int = 1024
    ngram_stride: int = 0
    ngram_max_positions: int = 14
    ngram_windows: tuple = (3, 5)
    batch_size: int = 32
    probe_C: float = 1.0
    probe_max_iter: int = 100
    test_frac: float = 0.25
    sites: tuple = ()

    # other names of options: the CLI's --n-probe (``n_probe``) sizes the probe sentences
    ALIASES: ClassVar[MappingProxyType] = MappingProxyType({"n_probe": "n_sentences"})

    @classmethod
    def from_options(cls, options: dict | None) -> PCFGProbeOptions:
        """Parse sweep options (the registry's ``parse_options`` hook, called once per sweep):
        an unknown key or a bad value is a CurriculensError; ``ALIASES`` map other names."""
        known = {f.name for f in fields(cls)}
        kw = {}
        for key, value in dict(options or {}).items():
            name = cls.ALIASES.get(key, key)
            if name not in known:
                allowed = ", ".join(sorted(known | set(cls.ALIASES)))
                raise CurriculensError(f"unknown PCFG probe option {key} (known: {allowed})")
            if name == key or name not in kw:  # the option's own name wins over an alias
                kw[name] = value
        for k in ("ngram_windows", "sites"):
            if k in kw:
                kw[k] = tuple(kw[k])
        try:
            return cls(**kw)  # validated on construction
        except (TypeError, ValueError) as exc:
            raise CurriculensError(f"bad PCFG probe options: {exc}") from None

    @classmethod
    def of(cls, ctx) -> PCFGProbeOptions:
        """A ``ProbeContext``'s typed options (parsed once by the sweep), else parsed from its dict."""
        return ctx.opts if isinstance(ctx.opts, cls) else cls.from_options(ctx.options)

    def __post_init__(self) -> None:
        if (
            self.n_sentences < 4
            or self.max_tokens < 8
            or min(self.offsets, self.ngram_stride, self.ngram_max_positions) < 0
            or self.ngram_sentences < 1
        ):
            raise CurriculensError(
                "PCFG probe options: n_sentences >= 4, max_tokens >= 8, ngram_sentences >= 1, "
                "offsets, ngram_stride, ngram_max_positions >= 0"
            )
        if any(int(n) < 1 or int(n) % 2 == 0 for n in self.ngram_windows):
            raise CurriculensError(f"ngram_windows must be odd positive sizes, got {self.ngram_windows}")


def expected_length(task) -> float:
    """Expected sentence length (tokens) of the probed task: its declared ``expected_length()``
    hook (``training.tasks.base.Task``; the PCFG task's comes from its grammar, the text task's
    ``BoundText`` from its corpus chunks)."""
    return float(task.expected_length())


def pcfg_sites(model_cfg: ModelConfig, opts: PCFGProbeOptions | None = None) -> list[str]:
    """The probed hook names of a BERT / GPT-2 model."""
    if opts is not None and opts.sites:
        return list(opts.sites)
    if not model_cfg.takes_tokens:
        raise CurriculensError(f"PCFG probes need a BERT or GPT-2 model, got kind {model_cfg.kind!r}")
    n = n_layers(model_cfg)
    return [EMBED_SITE] + [f"blocks.{layer}.hook_out" for layer in range(n)]


def select_tokens(lengths: Sequence[int], max_tokens: int, seed: int, valid=None) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subset of token positions, at most ``max_tokens``, spread evenly over sentences.

    Args:
        lengths: terminals per sentence; token i of a sentence sits at model position i + 1.
        valid: optional ``valid(sentence, length) -> bool [length]`` mask of usable tokens.

    Returns:
        (sentence index [N], token index [N]) int64, sorted by sentence.
    """
    rng = numpy_rng(PCFG_PROBE_TOKENS, seed)
    rows, toks = [], []
    for s, n in enumerate(lengths):
        idx = np.arange(int(n))
        if valid is not None:
            idx = idx[valid(s, int(n))]
        rows.append(np.full(idx.size, s, dtype=np.int64))
        toks.append(idx.astype(np.int64))
    sent = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    tok = np.concatenate(toks) if toks else np.zeros(0, np.int64)
    if sent.size > max_tokens:
        keep = np.sort(rng.choice(sent.size, size=max_tokens, replace=False))
        sent, tok = sent[keep], tok[keep]
    return sent, tok


ACT_BUDGET_BYTES = 256 * 2**20  # activations held at once by token_activations (all sites)


@torch.no_grad()
def token_activations(
    model,
    model_cfg: ModelConfig,
    task,
    seqs: Sequence[np.ndarray],
    sent: np.ndarray,
    tok: np.ndarray,
    sites: Sequence[str],
    batch_size: int = 32,
    extractor=None,
) -> dict[str, torch.Tensor]:
    """Activations [N, d] at model position ``tok + 1`` of sentence ``sent`` (unmasked input,
    ``[BOS] + tokens``, attention on every real token), for each site.

    Runs ``probes.activations.extract_activations`` (``position="all"``, forward batches of
    ``batch_size``) over the needed sentences and keeps only the selected positions. Sentences
    go in chunks whose full activations fit ``ACT_BUDGET_BYTES``; each chunk builds the
    TransformerLens bridge once, so small probe sets take a single chunk. Pass the
    checkpoint's ``ActivationExtractor`` (``ctx.extractor()``) to share it between probes.
    """
    from probes.activations import extract_activations

    out: dict[str, list[torch.Tensor]] = {s: [] for s in sites}
    order: list[np.ndarray] = []
    needed = np.unique(sent)
    width = int(d_model(model_cfg) or 1)
    longest = int(max(len(seqs[i]) for i in needed)) + 1 if needed.size else 1
    per_sentence = longest * width * 4 * max(len(sites), 1)
    chunk_size = max(batch_size, ACT_BUDGET_BYTES // per_sentence)
    for start in range(0, needed.size, chunk_size):
        chunk = needed[start : start + chunk_size]
        batch = task.plain_batch([seqs[i] for i in chunk])
        acts = extract_activations(
            model,
            model_cfg,
            batch["input_ids"],
            sites,
            batch_size=batch_size,
            position="all",
            kwargs={"attention_mask": batch["attention_mask"], "position_ids": position_ids(batch["attention_mask"])},
            extractor=extractor,
        )
        local = {int(s): r for r, s in enumerate(chunk)}
        pick = np.nonzero(np.isin(sent, chunk))[0]
        rows = torch.as_tensor([local[int(s)] for s in sent[pick]], dtype=torch.long)
        cols = torch.as_tensor(tok[pick] + 1, dtype=torch.long)
        for s in sites:
            out[s].append(acts[s][rows, cols])
        order.append(pick)
        del acts
    perm = np.argsort(np.concatenate(order), kind="stable")
    return {s: torch.cat(v)[torch.as_tensor(perm)] for s, v in out.items()}


LINEAR_PRIMARY = MappingProxyType({"test_acc": MetricSpec(min_effect=0.05), "selectivity": MetricSpec(min_effect=0.05)})
"""Primary metrics of the PCFG linear probes (``nt_span``, ``context``) for ``probes.summary``."""


def grouped_probe_rows(
    probe: str,
    acts: dict[str, torch.Tensor],
    columns: Sequence[tuple[str, int, np.ndarray]],
    groups: np.ndarray,
    opts: PCFGProbeOptions,
    seed: int,
    device: str = "cpu",
    warm: Callable[[str], Any] | None = None,
) -> list[ResultRow]:
    """Fit every label column ``(feature, degree, labels [N])`` on every site's activations
    [N, d] with a by-sentence split (``fit_by_group``); one row per (site, feature, metric).
    ``warm(site)`` gives the site's ``probes.linear.WarmStart`` slot (warm starts), if any."""
    rows: list[ResultRow] = []
    if not columns:
        return rows
    labels = torch.as_tensor(np.stack([c[2] for c in columns], axis=1))
    for site, x in acts.items():
        fits = fit_by_group(x, labels, groups, opts, seed, device, warm=warm(site) if warm else None)
        for (feature, degree, _), fit in zip(columns, fits, strict=True):
            extra = {
                "n_train": fit.n_train,
                "n_test": fit.n_test,
                "converged": fit.converged,
                "n_iter": fit.n_iter,
                "control_n_iter": fit.control_n_iter,
            }
            rows += [
                ResultRow(probe, feature, site, m, float(v), degree=degree, extra=extra)
                for m, v in fit.metric_values().items()
            ]
    return rows


def fit_by_group(
    features: torch.Tensor,
    labels: torch.Tensor,
    groups: np.ndarray,
    opts: PCFGProbeOptions,
    seed: int,
    device: str = "cpu",
    warm=None,
):
    """``probes.linear.fit_linear_probes`` with the train/test split made **by group** (sentence).

    Whole sentences (a seeded ``test_frac`` of them) go to the test split. The rows are arranged
    so that ``split_indices`` (the split ``fit_linear_probes`` draws) puts exactly the
    test-sentence rows in its test set: the same probe protocol, a grouped split.

    Returns a list of ``ProbeFit`` (one per label column).
    """
    from probes.linear import LinearProbeConfig, fit_linear_probes, split_indices

    n = features.shape[0]
    ug = np.unique(groups)
    if ug.size < 2:
        raise CurriculensError("a grouped probe split needs at least 2 sentences")
    rng = numpy_rng(PCFG_PROBE_SPLIT, seed)
    n_test_groups = min(max(1, int(round(ug.size * opts.test_frac))), ug.size - 1)
    test_groups = set(rng.permutation(ug)[:n_test_groups].tolist())
    is_test = np.array([g in test_groups for g in groups])
    n_test = int(is_test.sum())
    if n_test == 0 or n_test == n:
        raise CurriculensError("grouped probe split left one side empty")
    frac = n_test / n
    cfg = LinearProbeConfig(C=opts.probe_C, max_iter=opts.probe_max_iter, test_frac=frac, seed=seed, device=device)
    tr_idx, te_idx = split_indices(n, frac, seed)
    if te_idx.numel() != n_test:  # the split's size rule changed: fail loudly, never split by row
        raise CurriculensError("probes.linear.split_indices no longer matches the grouped split")
    arranged = torch.empty(n, dtype=torch.long)
    arranged[te_idx] = torch.as_tensor(np.nonzero(is_test)[0], dtype=torch.long)
    arranged[tr_idx] = torch.as_tensor(np.nonzero(~is_test)[0], dtype=torch.long)
    return fit_linear_probes(features[arranged], labels[arranged], cfg, warm=warm)


def probe_corpus(ctx, n_sentences: int):
    """``ctx.task.probe_corpus(n_sentences, ctx.seed)``, sampled once per sweep (``ctx.memo``)."""
    from probes.memo import key_of

    key = ("pcfg.corpus", key_of(ctx.task.cfg, n_sentences, ctx.seed))
    return ctx.memo.get(key, lambda: ctx.task.probe_corpus(n_sentences, ctx.seed))


def warm_slots(ctx, probe: str):
    """``site -> WarmStart`` of this run and probe (``ctx.memo``), for ``grouped_probe_rows``."""
    return lambda site: ctx.memo.warm_start((ctx.run, probe, site))
