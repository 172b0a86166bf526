"""The parity ``linear`` probe: logistic-regression probes for chi_A(x) at each hooked site.

At each hooked site, a logistic-regression probe (``probes.linear``) predicting chi_A(x) (as
the class chi_A(x) = -1) for in-support monomials A, a proper subset of S, of degree 1..k-1 (at
most ``linear_per_degree`` per degree, a seeded sample when there are more) and the same number
of off-support monomials of each degree (a seeded sample of the Fourier probe's off-support
list, so the feature names match). Rows per (site, monomial): ``test_acc``, ``control_acc``
(shuffled labels), ``majority``, ``selectivity``. Fits warm-start from the same run's previous
checkpoint (``ctx.memo.warm_start``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import torch

from curriculens.seeding import PARITY_LINEAR_MONOMIALS, torch_generator
from probes.activations import default_sites, site_width
from probes.base import MetricSpec, Probe, ProbeContext
from probes.linear import LinearProbeConfig, ProbeTargets, fit_linear_probes, prepare_targets
from probes.memo import key_of
from probes.store import ResultRow
from probes.tasks.parity.common import (
    _LINEAR_STREAM,
    ParityProbeOptions,
    _data_key,
    _degrees,
    _probe_x,
    _support,
    options_of,
)
from probes.tasks.parity.maths import monomial_set, monomial_values
from training.data.parity import parity_labels


def linear_monomials(n: int, support, degrees, opts: ParityProbeOptions, seed: int):
    """In-support monomials (capped per degree) and as many off-support ones, per degree."""
    pool = monomial_set(n, support, degrees, opts.n_off, seed)
    g = torch_generator(PARITY_LINEAR_MONOMIALS, seed)
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
        opts = options_of(ctx)
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
            for m, fit in zip(data.monomials, fit_linear_probes(feats, tgt, cfg, warm=warm), strict=True):
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
        opts = options_of(ctx)
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
