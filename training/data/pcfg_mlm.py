"""Batches for PCFG language models: padding, BERT masking (80/10/10), next-token targets.

Pure functions of token arrays and a ``torch.Generator``; no grammar knowledge beyond the
special ids in ``SpecialIds``. Conventions (paper section 5.1, documented choices marked *):

- A sequence is ``[BOS] + terminal ids`` (``+ [EOS]`` when asked), right-padded with PAD to
  the longest sequence of the batch.
- Masked LM: every real position, BOS included (the paper's code selects BOS too; set
  ``include_bos=False`` to exclude it), is *selected* independently with prob ``mask_rate``.
  A selected position becomes MASK with prob 0.8, keeps its token with prob 0.1, or becomes a
  uniformly random terminal with prob 0.1 (which may equal the original, as in BERT).
  ``labels`` hold the original token at selected positions and -100 elsewhere.
  * A sequence that drew no position gets one, chosen uniformly, so every row is scored
    (affects only very short sentences: P = 0.7^len).
- ``attention_mask`` is 1 on real tokens, 0 on PAD; with ``hide_masked_keys=True`` (the
  paper's convention, default) selected positions are 0 too: no other position can read them,
  only their own residual stream sees their (masked / kept / random) input token.
- Next-token: ``labels[t] = ids[t + 1]`` for every real ``t + 1`` (so logits at t predict
  token t + 1, BOS predicts the first terminal), -100 at the last real position and on PAD.
  With ``targets`` (the paper's GPT-2 setting, ``PCFG_autoregressive/create_ce.py``) only the
  terminals flagged there are predicted, e.g. the last token of every level-L span; EOS is
  then never a target.

Trap: ``labels`` are aligned with the *input* positions in both objectives, so the scored
logits are always ``logits[labels != -100]``; no shifting happens downstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

IGNORE = -100
MASK_PROB = 0.8  # a selected position becomes MASK with this probability,
KEEP_PROB = 0.1  # keeps its token with this one, and otherwise becomes a uniformly random terminal


@dataclass(frozen=True)
class SpecialIds:
    """Token ids a batch builder needs: specials and the terminal ids random replacement uses."""

    bos: int
    eos: int
    pad: int
    mask: int
    terminals: tuple

    @classmethod
    def from_grammar(cls, grammar) -> SpecialIds:
        return cls(
            bos=int(grammar.bos_id),
            eos=int(grammar.eos_id),
            pad=int(grammar.pad_id),
            mask=int(grammar.mask_id),
            terminals=tuple(int(t) for t in grammar.terminal_ids),
        )


def pad_sequences(
    seqs: Sequence[np.ndarray], ids: SpecialIds, eos: bool = False, max_len: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[BOS] + seq (+ [EOS])`` for each terminal-id array, right-padded.

    Args:
        seqs: terminal ids per sentence (no BOS).
        eos: append EOS.
        max_len: truncate each sentence to this many terminals first (0 = no limit).

    Returns:
        ids [B, T] int64 and real [B, T] bool (True on BOS/terminals/EOS, False on PAD), with
        T the longest sequence of the batch.
    """
    extra = 1 + int(eos)
    lens = [min(len(s), max_len) if max_len else len(s) for s in seqs]
    T = max(lens) + extra if lens else extra
    out = np.full((len(seqs), T), ids.pad, dtype=np.int64)
    for i, (s, n) in enumerate(zip(seqs, lens, strict=True)):
        out[i, 0] = ids.bos
        out[i, 1 : 1 + n] = np.asarray(s[:n], dtype=np.int64)
        if eos:
            out[i, 1 + n] = ids.eos
    real = np.arange(T)[None, :] < (np.asarray(lens, dtype=np.int64)[:, None] + extra)
    return torch.from_numpy(out), torch.from_numpy(real)


def mlm_mask(
    ids: torch.Tensor,
    real: torch.Tensor,
    special: SpecialIds,
    generator: torch.Generator,
    mask_rate: float = 0.3,
    include_bos: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BERT masking of a padded batch.

    Args:
        ids: [B, T] int64 from ``pad_sequences``.
        real: [B, T] bool.

    Returns:
        (input_ids [B, T], labels [B, T] with -100 off the selection, selected [B, T] bool).
    """
    B, T = ids.shape
    eligible = real.clone()
    if not include_bos:
        eligible[:, 0] = False
    u = torch.rand((B, T), generator=generator)
    selected = (u < mask_rate) & eligible
    # rows that drew nothing get one eligible position, uniformly
    scores = torch.rand((B, T), generator=generator).masked_fill(~eligible, -1.0)
    empty = ~selected.any(dim=1) & eligible.any(dim=1)
    rows = torch.nonzero(empty).flatten()
    selected[rows, scores.argmax(dim=1)[rows]] = True
    v = torch.rand((B, T), generator=generator)
    terms = torch.tensor(special.terminals, dtype=torch.int64)
    rnd = terms[torch.randint(0, len(terms), (B, T), generator=generator)]
    inp = ids.clone()
    to_mask = selected & (v < MASK_PROB)
    to_rand = selected & (v >= MASK_PROB + KEEP_PROB)
    inp[to_mask] = special.mask
    inp[to_rand] = rnd[to_rand]
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE))
    return inp, labels, selected


def mlm_batch(
    seqs: Sequence[np.ndarray],
    special: SpecialIds,
    generator: torch.Generator,
    mask_rate: float = 0.3,
    include_bos: bool = True,
    hide_masked_keys: bool = True,
    max_len: int = 0,
) -> dict[str, torch.Tensor]:
    """A masked-LM batch: ``input_ids``, ``attention_mask`` (int64), ``labels`` (all [B, T])."""
    ids, real = pad_sequences(seqs, special, eos=False, max_len=max_len)
    inp, labels, selected = mlm_mask(ids, real, special, generator, mask_rate, include_bos)
    visible = real & ~selected if hide_masked_keys else real
    return {"input_ids": inp, "attention_mask": visible.to(torch.int64), "labels": labels}


def next_token_batch(
    seqs: Sequence[np.ndarray],
    special: SpecialIds,
    eos: bool = True,
    max_len: int = 0,
    targets: Sequence[np.ndarray] | None = None,
) -> dict[str, torch.Tensor]:
    """A next-token batch: ``labels[t] = input_ids[t + 1]`` on real positions (all [B, T]).

    ``targets``: per sentence a bool array over its terminals (e.g. ``corpus.ends[i][:, L]``,
    the last token of each level-L span); only those terminals are predicted (from the
    position before them), everything else, EOS included, is -100.
    """
    ids, real = pad_sequences(seqs, special, eos=eos, max_len=max_len)
    labels = torch.full_like(ids, IGNORE)
    nxt_real = torch.zeros_like(real)
    nxt_real[:, :-1] = real[:, 1:]
    if targets is not None:
        keep = np.zeros(tuple(ids.shape), dtype=bool)
        for i, (s, f) in enumerate(zip(seqs, targets, strict=True)):
            n = min(len(s), max_len) if max_len else len(s)
            keep[i, :n] = np.asarray(f[:n], dtype=bool)  # position t predicts terminal t (input t + 1)
        nxt_real &= torch.from_numpy(keep)
    labels[:, :-1] = ids[:, 1:]
    labels[~nxt_real] = IGNORE
    return {"input_ids": ids, "attention_mask": real.to(torch.int64), "labels": labels}


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Explicit positions 0..T-1 for every row of a right-padded batch: [B, T] int64, on the
    mask's device.

    Trap: given only an ``attention_mask``, the TransformerLens bridge derives positions from
    it, so a hidden *non-pad* token (``hide_masked_keys``, the n-gram maskings) shifts every
    later position by one (measured: 1.78 at the embeddings, 1.13 in the logits); plain
    Hugging Face models use 0..T-1. Pass these whenever a mask hides a real token.
    """
    B, T = attention_mask.shape
    return torch.arange(T, device=attention_mask.device).expand(B, T)
