"""Every random stream of the suite, derived from one integer seed (numpy at import; torch lazily).

A run, a sweep or a task carries an integer seed; each random draw comes from a *stream* derived
from that seed and the stream's own constants, so streams are independent of each other and of
the order in which they are used, and every result is reproducible from its seeds. Every stream
is named here once; code elsewhere asks for a generator by stream, never spells a formula.

Derivation. A stream is a salt (plus, for the torch streams the parity task and its probes
started with, a multiplier); the seed and the salt give the generator:

- **keyed** (``Keyed(salt)``; PCFG data, PCFG and text probes; the rule for new streams): the
  ``SeedSequence`` of ``[salt, *keys]`` (``[*keys, salt]`` for ``Keyed(salt, last=True)``),
  every key taken mod 2**32, where ``keys`` are the seeds a call site passes (run seed, data
  seed, step, ... as listed with each stream below). ``numpy_rng(stream, *keys)`` is the numpy
  ``Generator`` on it; ``keyed_seed(stream, *keys)`` the 63-bit integer
  ``state[0] << 31 ^ state[1]`` of its first two 32-bit words (the PCFG sampler's seed);
  ``torch_generator(stream, *keys)`` a CPU ``torch.Generator`` seeded with that integer.
- **affine** (``Affine(multiplier, salt)``; the parity task, the Fourier and linear probes,
  curriculum extraction): ``torch_generator(stream, seed[, index])`` is a CPU
  ``torch.Generator`` seeded with ``seed * multiplier + salt + index``; ``index`` numbers the
  chunks of one stream (parity training data: the chunk of 64 steps).
- **model initialisation**: ``seed_init(seed)`` seeds torch's global generator with the run seed
  just before a model is built; initialisation and dropout draw from it.

Not streams of this module: the PCFG sampler's counter-based per-sentence hash
(``training.data.pcfg.sampler``, keyed by a ``keyed_seed``) and the generated grammars'
``random.Random(grammar seed)`` (``training.data.pcfg.generate``); both are algorithms of their
own, seeded from here or from a config field.

The two encodings are kept because they are what earlier results were drawn with: moving the
affine streams onto ``SeedSequence`` would change every parity batch, evaluation set and probe
sample (and so the demo's numbers). A new stream uses ``Keyed`` with an unused salt.

Traps: seeds may be any Python int for keyed streams (keys are reduced mod 2**32), but an affine
seed must keep ``seed * multiplier + salt + index`` inside torch's 64-bit seed range; a torch
generator from here lives on the CPU (draw there, then move the tensor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported only by the functions that build torch generators
    import torch


@dataclass(frozen=True)
class Keyed:
    """A keyed stream: ``SeedSequence([salt, *keys])`` (``[*keys, salt]`` when ``last``)."""

    salt: int
    last: bool = False

    def entropy(self, keys) -> list[int]:
        """The SeedSequence entropy of ``keys`` on this stream (each key mod 2**32)."""
        ordered = (*keys, self.salt) if self.last else (self.salt, *keys)
        return [int(k) & 0xFFFFFFFF for k in ordered]


@dataclass(frozen=True)
class Affine:
    """An affine torch stream: generator seed ``seed * multiplier + salt + index``."""

    multiplier: int
    salt: int

    def seed(self, seed: int, index: int = 0) -> int:
        """The torch seed of this stream for ``seed`` (and chunk ``index``)."""
        return int(seed) * self.multiplier + self.salt + int(index)


# --- the streams, with the keys their call sites pass ----------------------------------------
# PCFG task (training.tasks.pcfg)
PCFG_TRAIN = Keyed(101)  # training sentences: (run seed, data seed)
PCFG_MASK = Keyed(202)  # MLM masking per step: (run seed, data seed, step)
PCFG_EVAL = Keyed(303)  # evaluation sentences: (data seed,)
PCFG_EVAL_MASK = Keyed(404)  # evaluation masking: (data seed,)
PCFG_GENERATE = Keyed(505)  # sampled continuations: (data seed, seed)
PCFG_PROBE = Keyed(606)  # probe sentences: (data seed, sweep seed)
# probes and probe corpora (numpy): (sweep seed,), the salt last
PCFG_PROBE_TOKENS = Keyed(7, last=True)  # probes.tasks.pcfg.common.select_tokens
PCFG_PROBE_SPLIT = Keyed(11, last=True)  # probes.tasks.pcfg.common.fit_by_group: the sentence split
TEXT_PROBE_CORPUS = Keyed(13, last=True)  # training.tasks.text: the probe chunks
TEXT_LENS_MASK = Keyed(17, last=True)  # probes.tasks.text.logit_lens: the masked positions of masked LMs
# text task training (training.tasks.text)
TEXT_TRAIN = Keyed(707)  # the chunks of a training batch: (run seed, data seed, step)
TEXT_MASK = Keyed(808)  # MLM masking per step: (run seed, data seed, step)
TEXT_EVAL = Keyed(909)  # which chunks are held out: (data seed,)
TEXT_EVAL_MASK = Keyed(1010)  # held-out masking: (data seed,)
# parity task
PARITY_EVAL = Affine(7919, 1_000_003)  # the held-out evaluation set: (data seed,)
PARITY_TRAIN = Affine(1_000_000_007, 0)  # training data: (run seed, chunk of 64 steps)
# probes: (sweep seed,)
FOURIER_MONOMIALS = Affine(1_000_003, 7)  # probes.tasks.parity.maths.monomial_set: off-support monomials
PARITY_FOURIER_X = Affine(1_000_003, 101)  # parity fourier probe inputs
PARITY_LINEAR_X = Affine(1_000_003, 202)  # parity linear probe inputs
PARITY_LINEAR_MONOMIALS = Affine(1_000_003, 203)  # which monomials the linear probes fit
LINEAR_SPLIT = Affine(7_368_787, 11)  # probes.linear.split_indices: train/test permutation
LINEAR_TARGETS = Affine(104_729, 3)  # probes.linear: neuron subset and control-label shuffles
# training: (run seed,)
EXTRACTION_PROJECTION = Affine(1_000_003, 17)  # curriculum extraction's random projection
# test and benchmark fixtures (training.foreign.fixtures): (the given seed,)
FABRICATED_TEXT = Affine(1, 0)  # sample_text's sentences


def numpy_rng(stream: Keyed, *keys: int) -> np.random.Generator:
    """The numpy ``Generator`` of a keyed stream."""
    return np.random.default_rng(np.random.SeedSequence(stream.entropy(keys)))


def keyed_seed(stream: Keyed, *keys: int) -> int:
    """The 63-bit integer seed of a keyed stream: ``state[0] << 31 ^ state[1]``."""
    state = np.random.SeedSequence(stream.entropy(keys)).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def torch_generator(stream: Keyed | Affine, *keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` of a stream: keyed, seeded with ``keyed_seed(stream, *keys)``;
    affine, ``keys = (seed,)`` or ``(seed, index)``, seeded with ``stream.seed(seed, index)``."""
    import torch

    if isinstance(stream, Affine):
        if not 1 <= len(keys) <= 2:
            raise TypeError("an affine stream takes (seed,) or (seed, index)")
        return torch.Generator().manual_seed(stream.seed(*keys))
    return torch.Generator().manual_seed(keyed_seed(stream, *keys))


def seed_init(seed: int) -> None:
    """Seed torch's global generator (model initialisation draws from it) with the run seed."""
    import torch

    torch.manual_seed(int(seed))
