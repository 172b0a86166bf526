"""The best masked-LM accuracy any model can reach on a held-out set: the Bayes ceiling.

A masked-LM batch built with ``hide_masked_keys=True`` (the paper's convention,
``training.data.pcfg_mlm``) lets a model at a selected position see every unselected token, the
sentence length and its own corrupted input: MASK (prob ``MASK_PROB``), the true token (prob
``KEEP_PROB``) or a uniformly random terminal. The Bayes-optimal prediction is then

    argmax_a  P(x_i = a | unselected tokens) * P(observed input at i | x_i = a),

with the first factor exact from the grammar (``parser.masked_posteriors``: the other selected
positions summed over every terminal) and BOS (position 0) always known. Its accuracy, token-weighted
like the training loop's ``eval_acc``, is the ceiling a teacher's held-out accuracy can approach.

Trap: the ceiling is for that set and its masks; other sets of the same grammar differ by sampling
noise (about sqrt(a(1 - a) / n_selected)). Truncated sentences (``max_len`` below the longest
sentence) cannot be parsed and raise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from curriculens.errors import CurriculensError
from training.data.pcfg_mlm import IGNORE, KEEP_PROB, MASK_PROB, SpecialIds


@dataclass(frozen=True)
class Ceiling:
    """Bayes-optimal masked accuracy over ``n_scored`` scored positions (BOS included when selected)."""

    correct: int
    n_scored: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n_scored if self.n_scored else float("nan")


def observation_likelihood(observed: int, special: SpecialIds) -> np.ndarray:
    """[n_terminals] P(input ``observed`` at a selected position | true terminal), in the order of
    ``special.terminals``."""
    terms = np.asarray(special.terminals)
    if observed == special.mask:
        return np.full(terms.shape[0], MASK_PROB)
    rand = (1.0 - MASK_PROB - KEEP_PROB) / terms.shape[0] * float(observed in special.terminals)
    return KEEP_PROB * (terms == observed) + rand


def bayes_masked_accuracy(grammar, batches: Iterable[Mapping], start_level: int | None = None) -> Ceiling:
    """The Bayes ceiling of masked accuracy on ``batches`` (``pcfg_mlm.mlm_batch`` output with
    ``hide_masked_keys=True``: ``input_ids``, ``attention_mask``, ``labels`` [B, T]; e.g.
    ``PCFGTask.eval_batches``). ``start_level``: the sentences' root level (None = the grammar's
    start symbol). Cost: one inside pass per (selected position, terminal)."""
    from training.data.pcfg.parser import masked_posteriors

    special = SpecialIds.from_grammar(grammar)
    terms = np.asarray(special.terminals)
    correct = n = 0
    for batch in batches:
        ids = batch["input_ids"].numpy()
        labels = batch["labels"].numpy()
        visible = batch["attention_mask"].numpy().astype(bool)
        selected = labels != IGNORE
        if (visible & selected).any():
            raise CurriculensError("the Bayes ceiling needs batches built with hide_masked_keys=True")
        truth = np.where(selected, labels, ids)
        for row in range(ids.shape[0]):
            real = (ids[row] != special.pad) | selected[row]
            length = int(real.sum())
            if selected[row, 0]:  # position 0 is always BOS
                correct += int(labels[row, 0] == special.bos)
                n += 1
            sel = selected[row, 1:length]
            if not sel.any():
                continue
            post = masked_posteriors(grammar, truth[row, 1:length], sel, start_level=start_level)
            for h, i in enumerate(np.nonzero(sel)[0] + 1):
                score = post[h] * observation_likelihood(int(ids[row, i]), special)
                correct += int(terms[int(np.argmax(score))] == labels[row, i])
                n += 1
    return Ceiling(correct, n)
