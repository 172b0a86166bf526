"""The parity ``fourier`` probe (paper section 3.1).

|mean_x chi_A(x) p(x)| for in- and off-support monomials of degree 1..k-1 on ``n_probe`` fresh
seeded inputs (the maths in ``probes.tasks.parity.maths``); rows: feature = monomial, site ``output``,
metric ``corr``, ``degree``, ``in_support``, ``extra.noise``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import torch

from probes.base import MetricSpec, Probe, ProbeContext
from probes.store import ResultRow
from probes.tasks.parity.common import (
    _FOURIER_STREAM,
    _data_key,
    _degrees,
    _probe_x,
    _support,
    options_of,
    parse_options,
)
from probes.tasks.parity.maths import (
    class1_probability,
    coefficients,
    correlation_rows,
    monomial_set,
    parity_matrix,
    sampling_noise,
)
from training.data.parity import parity_labels


@dataclass(frozen=True)
class FourierData:
    """The Fourier probe's inputs x [N, n] (±1), their labels chi_S(x) [N], monomials and
    parity matrix chi [N, M] int8 (``coefficients`` converts it a cache-sized chunk at a time)."""

    x: torch.Tensor
    monomials: list
    chi: torch.Tensor | None
    labels: torch.Tensor | None = None


def fourier_data(ctx: ProbeContext) -> FourierData:
    """Inputs, monomials and their parity matrix, computed once per sweep (``ctx.memo``)."""

    def make() -> FourierData:
        opts = options_of(ctx)
        support = _support(ctx)
        n = ctx.task.cfg.n
        monomials = monomial_set(n, support, _degrees(opts, len(support)), opts.n_off, ctx.seed)
        x = _probe_x(ctx.seed, _FOURIER_STREAM, opts.n_probe, n)
        chi = parity_matrix(x, monomials) if monomials else None
        return FourierData(x, monomials, chi, parity_labels(x, support))

    return ctx.memo.get(_data_key(ctx, "parity.fourier"), make)


class FourierProbe(Probe):
    name = "fourier"
    primary_metrics = MappingProxyType({"corr": MetricSpec(min_effect=0.02, off_support_null=True)})

    def run(self, ctx: ProbeContext) -> list[ResultRow]:
        opts = options_of(ctx)
        data = fourier_data(ctx)
        if not data.monomials:
            return []
        p = class1_probability(
            ctx.model, ctx.model_cfg, ctx.task, data.x, _support(ctx), opts.batch_size, ctx.device, data.labels
        )
        return correlation_rows(
            coefficients(p, data.chi), data.monomials, data.x.shape[0], self.name, noise=sampling_noise(p)
        )


def expected_rows(n: int, k: int, options: dict | None = None) -> dict[str, int]:
    """Rows per checkpoint of ``fourier`` (and in-support count) for given (n, k): a sanity aid."""
    opts = parse_options(options)
    degrees = _degrees(opts, k)
    ins = sum(math.comb(k, d) for d in degrees)
    offs = sum(min(opts.n_off, math.comb(n, d) - math.comb(k, d)) for d in degrees)
    return {"fourier": ins + offs, "fourier_in_support": ins}
