"""What the parity probes share: options, the support and degrees, seeded probe inputs, memo keys.

Probe data are fresh x ~ U{-1, +1}^n drawn from generators seeded by the sweep seed only, so
every checkpoint of every run sees the same inputs and the same monomials; they (and the
monomials' parity matrix, the linear labels and their encodings) are computed once per sweep
(``ctx.memo``). Linear probes warm-start from the same run's previous checkpoint.

Options (``SweepConfig.options`` / ``curriculens probe --option KEY=VALUE``), with defaults:

=================== ========= ==========================================================
key                 default   meaning
=================== ========= ==========================================================
n_probe             100000    fresh inputs for the Fourier correlations (the paper's; batched)
n_off               100       off-support monomials per degree (fewer if fewer exist)
max_degree          0         highest monomial degree; 0 = k - 1
n_linear            2048      fresh inputs for the linear probes (train + test)
test_frac           0.25      linear probes' held-out fraction
linear_per_degree   10        cap on in-support monomials per degree for linear probes
sites               []        hook names for linear probes; [] = every hidden layer output
position            "last"    Transformer sites: the last position or the mean over positions
C                   1.0       inverse L2 strength of the linear probes
max_iter            100       linear probe optimiser iterations
max_features        256       wider sites use a seeded subset of this many neurons; 0 = all
backend             "torch"   linear probe backend: torch (batched Newton-CG) | sklearn
batch_size          256       examples per forward pass (DEFAULT_PROBE_BATCH; narrow MLPs: a multiple)
=================== ========= ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from curriculens import seeding
from curriculens.config import from_dict
from curriculens.constants import DEFAULT_PROBE_BATCH
from curriculens.errors import CurriculensError
from probes.base import ProbeContext
from probes.linear import BACKENDS, LinearProbeConfig
from probes.memo import key_of
from training.data.parity import sample_pm1

_FOURIER_STREAM = seeding.PARITY_FOURIER_X
_LINEAR_STREAM = seeding.PARITY_LINEAR_X


@dataclass(frozen=True)
class ParityProbeOptions:
    """Parity probe options; see the module docstring for each key."""

    n_probe: int = 100_000
    n_off: int = 100
    max_degree: int = 0
    n_linear: int = 2048
    test_frac: float = 0.25
    linear_per_degree: int = 10
    sites: tuple = ()
    position: str = "last"
    C: float = 1.0
    max_iter: int = 100
    max_features: int = 256
    backend: str = "torch"
    batch_size: int = DEFAULT_PROBE_BATCH

    def __post_init__(self) -> None:
        for name in ("n_probe", "n_linear", "batch_size", "max_iter"):
            if getattr(self, name) <= 0:
                raise CurriculensError(f"parity probe option {name} must be positive")
        for name in ("n_off", "max_degree", "linear_per_degree", "max_features"):
            if getattr(self, name) < 0:
                raise CurriculensError(f"parity probe option {name} must be >= 0")
        if self.position not in ("last", "mean"):
            raise CurriculensError("parity probe option position must be 'last' or 'mean'")
        if self.backend not in BACKENDS:
            raise CurriculensError(f"parity probe option backend must be one of {', '.join(BACKENDS)}")
        if self.n_linear < 8:
            raise CurriculensError("parity probe option n_linear must be at least 8")
        LinearProbeConfig(C=self.C, test_frac=self.test_frac)  # checks the linear probe's part


def parse_options(options: dict | None) -> ParityProbeOptions:
    """Parity options from the sweep's options dict (unknown keys are an error); the registry's
    ``parse_options`` hook, called once per sweep."""
    return from_dict(ParityProbeOptions, dict(options or {}), where="probe options")  # validated on construction


def options_of(ctx: ProbeContext) -> ParityProbeOptions:
    """The context's typed options (parsed once by the sweep), else parsed from ``ctx.options``."""
    return ctx.opts if isinstance(ctx.opts, ParityProbeOptions) else parse_options(ctx.options)


def _support(ctx: ProbeContext) -> tuple[int, ...]:
    support = ctx.task.support  # declared on Task (None: not a parity task)
    if support is None:
        raise CurriculensError(f"task {ctx.task.name!r} has no parity support")
    return tuple(support)


def _degrees(opts: ParityProbeOptions, k: int) -> range:
    top = opts.max_degree or (k - 1)
    return range(1, min(top, k - 1) + 1)


def _probe_x(seed: int, stream: seeding.Affine, n_rows: int, n: int) -> torch.Tensor:
    g = seeding.torch_generator(stream, seed)
    return sample_pm1(n_rows, n, g)


def _data_key(ctx: ProbeContext, kind: str) -> tuple:
    """Memo key of probe data that depend only on the task, the seed and the options."""
    return (kind, key_of(ctx.task.cfg, ctx.seed, options_of(ctx)))
