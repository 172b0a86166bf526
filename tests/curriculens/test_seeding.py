"""The seeding helper reproduces, stream by stream, the seeds the suite drew with before it
existed (the formulas below are the old call sites', spelled out), so results do not change."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from curriculens import seeding as S

SEEDS = (0, 1, 7, 12345, 2**31 + 5)


def _old_keyed(*keys: int) -> int:  # training.data.pcfg_mlm.step_generator / tasks.pcfg.stream_seed
    state = np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


OLD_AFFINE = {  # stream: old torch seed as a function of (seed, index)
    S.PARITY_EVAL: lambda s, i: s * 7919 + 1_000_003,
    S.PARITY_TRAIN: lambda s, i: s * 1_000_000_007 + i,
    S.FOURIER_MONOMIALS: lambda s, i: s * 1_000_003 + 7,
    S.PARITY_FOURIER_X: lambda s, i: s * 1_000_003 + 101,
    S.PARITY_LINEAR_X: lambda s, i: s * 1_000_003 + 202,
    S.PARITY_LINEAR_MONOMIALS: lambda s, i: s * 1_000_003 + 202 + 1,
    S.LINEAR_SPLIT: lambda s, i: s * 7_368_787 + 11,
    S.LINEAR_TARGETS: lambda s, i: s * 104_729 + 3,
    S.EXTRACTION_PROJECTION: lambda s, i: int(s) * 1_000_003 + 17,
    S.FABRICATED_TEXT: lambda s, i: s,
}


@pytest.mark.parametrize("stream", list(OLD_AFFINE), ids=lambda s: f"{s.multiplier}x+{s.salt}")
def test_affine_streams_draw_what_the_old_formulas_drew(stream):
    for seed in SEEDS[:4]:
        for index in (0, 3, 64) if stream is S.PARITY_TRAIN else (0,):
            old = torch.Generator().manual_seed(OLD_AFFINE[stream](seed, index))
            keys = (seed, index) if stream is S.PARITY_TRAIN else (seed,)
            new = S.torch_generator(stream, *keys)
            assert new.initial_seed() == old.initial_seed()
            assert torch.equal(torch.rand(5, generator=new), torch.rand(5, generator=old))


def test_keyed_streams_draw_what_the_old_formulas_drew():
    salts = {S.PCFG_TRAIN: 101, S.PCFG_MASK: 202, S.PCFG_EVAL: 303, S.PCFG_EVAL_MASK: 404}
    salts |= {S.PCFG_GENERATE: 505, S.PCFG_PROBE: 606}
    for stream, salt in salts.items():
        for seed in SEEDS:
            keys = (seed, 3, 40)
            assert S.keyed_seed(stream, *keys) == _old_keyed(salt, *keys)
            old = torch.Generator().manual_seed(_old_keyed(salt, *keys))
            assert torch.equal(torch.rand(4, generator=S.torch_generator(stream, *keys)), torch.rand(4, generator=old))
    # numpy probe streams: default_rng([seed & 0xFFFFFFFF, salt])
    for stream, salt in ((S.PCFG_PROBE_TOKENS, 7), (S.PCFG_PROBE_SPLIT, 11), (S.TEXT_PROBE_CORPUS, 13)):
        for seed in (*SEEDS, -3):
            old = np.random.default_rng([int(seed) & 0xFFFFFFFF, salt])
            assert np.array_equal(S.numpy_rng(stream, seed).random(6), old.random(6))


def test_every_stream_is_distinct_and_named_once():
    streams = [v for v in vars(S).values() if isinstance(v, (S.Keyed, S.Affine))]
    assert len(streams) == len(set(streams)) >= 19
    # distinct streams give distinct draws for the same seed
    draws = {tuple(torch.rand(3, generator=S.torch_generator(s, 5)).tolist()) for s in streams}
    assert len(draws) == len(streams)


def test_seed_init_seeds_the_global_generator():
    S.seed_init(11)
    a = torch.rand(3)
    torch.manual_seed(11)
    assert torch.equal(a, torch.rand(3))


def test_affine_stream_takes_a_seed_and_an_optional_index():
    with pytest.raises(TypeError):
        S.torch_generator(S.PARITY_EVAL)


def test_import_does_not_import_torch():
    code = "import sys, curriculens.seeding; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
