"""The sparse-parity probe set: ``model``, ``fourier``, ``linear``.

- ``model``: held-out accuracy and loss (``probes.model_probe``).
- ``fourier``: |mean_x chi_A(x) p(x)| for in- and off-support monomials of degree 1..k-1
  on ``n_probe`` fresh seeded inputs (``probes.fourier``; paper section 3.1).
- ``linear``: at each hooked site, a logistic-regression probe (``probes.linear``) predicting
  chi_A(x) (as the class chi_A(x) = -1) for in-support monomials A, a proper subset of S, of
  degree 1..k-1 (at most ``linear_per_degree`` per degree, a seeded sample when there are
  more) and the same number of off-support monomials of each degree (a seeded sample of the
  Fourier probe's off-support list, so the feature names match). Rows per (site, monomial):
  ``test_acc``, ``control_acc`` (shuffled labels), ``majority``, ``selectivity``.

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
batch_size          1024      examples per forward pass
=================== ========= ==========================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import torch

from curriculens.config import from_dict
from curriculens.errors import CurriculensError
from probes.activations import default_sites, site_width
from probes.base import MetricSpec, Probe, ProbeContext
from probes.fourier import (
    class1_probability,
    coefficients,
    correlation_rows,
    monomial_set,
    monomial_values,
    parity_matrix,
    sampling_noise,
)
from probes.linear import BACKENDS, LinearProbeConfig, ProbeTargets, fit_linear_probes, prepare_targets
from probes.memo import key_of
from probes.model_probe import ModelProbe
from probes.store import ResultRow
from training.data.parity import parity_labels, sample_pm1

_FOURIER_STREAM = 101
_LINEAR_STREAM = 202


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
    batch_size: int = 1024

    def validate(self) -> "ParityProbeOptions":
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
        LinearProbeConfig(C=self.C, test_frac=self.test_frac).validate()
        return self


def parse_options(options: dict | None) -> ParityProbeOptions:
    """Parity options from the sweep's options dict (unknown keys are an error)."""
    return from_dict(ParityProbeOptions, dict(options or {}), where="probe options").validate()


def check_options(options: dict | None) -> None:
    """Registry hook: raise CurriculensError on bad parity probe options (before a sweep)."""
    parse_options(options)


def _support(ctx: ProbeContext) -> tuple[int, ...]:
    support = getattr(ctx.task, "support", None)
    if support is None:
        raise CurriculensError(f"task {ctx.task.name!r} has no parity support")
    return tuple(support)


def _degrees(opts: ParityProbeOptions, k: int) -> range:
    top = opts.max_degree or (k - 1)
    return range(1, min(top, k - 1) + 1)


def _probe_x(seed: int, stream: int, n_rows: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + stream)
    return sample_pm1(n_rows, n, g)


def _data_key(ctx: ProbeContext, kind: str) -> tuple:
    """Memo key of probe data that depend only on the task, the seed and the options."""
    return (kind, key_of(ctx.task.cfg, ctx.seed, parse_options(ctx.options)))


@dataclass(frozen=True)
class FourierData:
    """The Fourier probe's inputs x [N, n] (±1), monomials and parity matrix chi [N, M] int8."""

    x: torch.Tensor
    monomials: list
    chi: torch.Tensor | None


def fourier_data(ctx: ProbeContext) -> FourierData:
    """Inputs, monomials and their parity matrix, computed once per sweep (``ctx.memo``)."""

    def make() -> FourierData:
        opts = parse_options(ctx.options)
        support = _support(ctx)
        n = ctx.task.cfg.n
        monomials = monomial_set(n, support, _degrees(opts, len(support)), opts.n_off, ctx.seed)
        x = _probe_x(ctx.seed, _FOURIER_STREAM, opts.n_probe, n)
        chi = parity_matrix(x, monomials) if monomials else None
        return FourierData(x, monomials, chi)

    return ctx.memo.get(_data_key(ctx, "parity.fourier"), make)


class FourierProbe(Probe):
    name = "fourier"
    primary_metrics = MappingProxyType({"corr": MetricSpec(min_effect=0.02, off_support_null=True)})

    def run(self, ctx: ProbeContext) -> list[ResultRow]:
        opts = parse_options(ctx.options)
        data = fourier_data(ctx)
        if not data.monomials:
            return []
        p = class1_probability(ctx.model, ctx.model_cfg, ctx.task, data.x, _support(ctx), opts.batch_size, ctx.device)
        return correlation_rows(
            coefficients(p, data.chi), data.monomials, data.x.shape[0], self.name, noise=sampling_noise(p)
        )


def linear_monomials(n: int, support, degrees, opts: ParityProbeOptions, seed: int):
    """In-support monomials (capped per degree) and as many off-support ones, per degree."""
    pool = monomial_set(n, support, degrees, opts.n_off, seed)
    g = torch.Generator().manual_seed(seed * 1_000_003 + _LINEAR_STREAM + 1)
    chosen = []
    for d in degrees:
        ins = [m for m in pool if m.degree == d and m.in_support]
        outs = [m for m in pool if m.degree == d and not m.in_support]
        cap = opts.linear_per_degree or len(ins)
        if len(ins) > cap:
            keep = sorted(torch.randperm(len(ins), generator=g)[:cap].tolist())
            ins = [ins[i] for i in keep]
        keep = sorted(torch.randperm(len(outs), generator=g)[: len(ins)].tolist())
        chosen += ins + [outs[i] for i in keep]
    return chosen


class LinearProbe(Probe):
    name = "linear"
    primary_metrics = MappingProxyType(
        {
            "test_acc": MetricSpec(min_effect=0.05, off_support_null=True),
            "selectivity": MetricSpec(min_effect=0.05, off_support_null=True),
        }
    )

    def run(self, ctx: ProbeContext) -> list[ResultRow]:
        opts = parse_options(ctx.options)
        data = linear_data(ctx)
        if not data.monomials:
            return []
        sites = list(opts.sites) or default_sites(ctx.model_cfg)
        cfg = _linear_cfg(opts, ctx)
        widths = {s: site_width(ctx.model_cfg, s) for s in sites}
        targets = {s: _targets(ctx, data, w, cfg) for s, w in widths.items() if w is not None}
        columns = {s: t.cols for s, t in targets.items() if t.cols is not None}
        acts = ctx.extractor().extract(
            data.inputs,
            sites,
            batch_size=opts.batch_size,
            position=opts.position,
            kwargs=data.kwargs,
            columns=columns,
            out_device=ctx.device,
        )
        rows: list[ResultRow] = []
        for site, feats in acts.items():
            feats = feats.reshape(feats.shape[0], -1)
            width = widths[site] if widths[site] is not None else int(feats.shape[1])
            tgt = targets.get(site) or _targets(ctx, data, width, cfg)
            warm = ctx.memo.warm_start((ctx.run, self.name, site))
            for m, fit in zip(data.monomials, fit_linear_probes(feats, tgt, cfg, warm=warm)):
                extra = {
                    "train_acc": fit.train_acc,
                    "control_train_acc": fit.control_train_acc,
                    "converged": fit.converged,
                    "control_converged": fit.control_converged,
                    "n_iter": fit.n_iter,
                    "control_n_iter": fit.control_n_iter,
                    "n_train": fit.n_train,
                    "n_test": fit.n_test,
                    "n_features": fit.n_features,
                    "n_features_total": width,
                    "disjoint": m.disjoint,
                    "C": opts.C,
                }
                for metric, value in fit.metric_values().items():
                    rows.append(
                        ResultRow(
                            probe=self.name,
                            feature=m.feature,
                            site=site,
                            metric=metric,
                            value=value,
                            degree=m.degree,
                            in_support=m.in_support,
                            extra=extra,
                        )
                    )
        return rows


@dataclass(frozen=True)
class LinearData:
    """The linear probe's monomials, labels [N, M] (class 1 where chi_A(x) = -1) and model input."""

    monomials: list
    labels: torch.Tensor
    inputs: torch.Tensor
    kwargs: dict


def linear_data(ctx: ProbeContext) -> LinearData:
    """Monomials, labels and model inputs of the linear probe, computed once per sweep."""

    def make() -> LinearData:
        opts = parse_options(ctx.options)
        support = _support(ctx)
        n = ctx.task.cfg.n
        monomials = linear_monomials(n, support, _degrees(opts, len(support)), opts, ctx.seed)
        x = _probe_x(ctx.seed, _LINEAR_STREAM, opts.n_linear, n)
        labels = (
            (monomial_values(x, monomials) < 0).long() if monomials else torch.zeros(x.shape[0], 0, dtype=torch.long)
        )
        inp, kw = ctx.task.model_input({"x": x, "y": parity_labels(x, support)}, ctx.model_cfg)
        return LinearData(monomials, labels, inp, dict(kw))

    return ctx.memo.get(_data_key(ctx, "parity.linear") + (key_of(ctx.model_cfg.kind),), make)


def _linear_cfg(opts: ParityProbeOptions, ctx: ProbeContext) -> LinearProbeConfig:
    return LinearProbeConfig(
        C=opts.C,
        test_frac=opts.test_frac,
        max_iter=opts.max_iter,
        seed=ctx.seed,
        backend=opts.backend,
        max_features=opts.max_features,
        device=str(ctx.device),
    )


def _targets(ctx: ProbeContext, data: LinearData, width: int, cfg: LinearProbeConfig) -> ProbeTargets:
    """Split, control labels, encodings and neuron subset for a site of ``width``, once per sweep."""
    key = _data_key(ctx, "parity.linear.targets") + (width, key_of(ctx.model_cfg.kind))
    return ctx.memo.get(key, lambda: prepare_targets(data.labels, width, cfg))


def probes() -> dict[str, Probe]:
    """The parity probes, by name, in their default sweep order."""
    return {"model": ModelProbe(), "fourier": FourierProbe(), "linear": LinearProbe()}


def expected_rows(n: int, k: int, options: dict | None = None) -> dict[str, int]:
    """Rows per checkpoint of ``fourier`` (and in-support count) for given (n, k): a sanity aid."""
    opts = parse_options(options)
    degrees = _degrees(opts, k)
    ins = sum(math.comb(k, d) for d in degrees)
    offs = sum(min(opts.n_off, math.comb(n, d) - math.comb(k, d)) for d in degrees)
    return {"fourier": ins + offs, "fourier_in_support": ins}
