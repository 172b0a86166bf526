"""What a tracker run holds: ``RunSeries``, built from an experiment by ``collect`` (the keys
are listed in ``curriculens.trackers``)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from curriculens import constants as C
from curriculens.analysis import AXIS_COLUMNS as AXES
from curriculens.analysis import step_axes
from curriculens.errors import CurriculensError
from curriculens.io import read_json

# metrics.jsonl columns that are not curves: bookkeeping, or the axes written under axes/
_NOT_CURVES = {"step", "checkpoint", "wall_s", "seed", "two_shot_step", "two_shot_T", *AXES}
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.:/ \-]")


def tracker_key(*parts: object) -> str:
    """``a/b/c`` with characters MLflow refuses replaced by ``_``; an empty, ``.`` or ``..``
    part becomes ``_`` (MLflow's file store refuses keys that are not plain relative paths)."""
    clean = (_BAD_KEY_CHARS.sub("_", str(p)) for p in parts)
    return "/".join("_" if c in ("", ".", "..") else c for c in clean)


@dataclass
class RunSeries:
    """One run as a tracker sees it: its identity, config, and ``{step: {key: value}}``."""

    run: str
    role: str
    method: str
    seed: int
    config: dict
    values: dict[int, dict[str, float]] = field(default_factory=dict)
    axes: dict[int, dict[str, int]] = field(default_factory=dict)  # step -> {teacher_step, samples, tokens}

    @property
    def steps(self) -> list[int]:
        """Every step with a value, increasing."""
        return sorted(set(self.values) | set(self.axes))

    def add(self, step: int, key: str, value) -> None:
        v = float(value)
        if math.isfinite(v):
            self.values.setdefault(int(step), {})[key] = v

    def row(self, step: int) -> dict[str, float]:
        """Everything at ``step``: the values, then ``axes/<name>`` for the known axes."""
        out = dict(self.values.get(step, {}))
        for k, v in self.axes.get(step, {}).items():
            out[f"axes/{k}"] = float(v)
        return out

    @property
    def tags(self) -> dict[str, str]:
        return {"role": self.role, "method": self.method, "seed": str(self.seed)}


def collect(exp, probes: Iterable[str] | None = None) -> list[RunSeries]:
    """The ``RunSeries`` of every run of ``exp`` (a ``curriculens.analysis.Experiment``):
    its metrics, and its probe rows (of ``probes`` only, when given) if the experiment has any."""
    import pandas as pd  # noqa: PLC0415 - only when exporting

    runs = exp.runs()
    series = {
        r.run: RunSeries(
            run=r.run,
            role=r.role,
            method=r.method,
            seed=int(r.seed),
            config=read_json(Path(r.path) / C.RUN_CONFIG_FILE),
        )
        for r in runs.itertuples(index=False)
    }
    metrics = exp.metrics()
    curves = [c for c in metrics.columns if c not in _NOT_CURVES and _numeric(metrics[c])]
    for row in metrics[["run", "step", *curves]].itertuples(index=False):
        s = series[row[0]]
        for col, v in zip(curves, row[2:], strict=True):
            if not pd.isna(v):
                s.add(row[1], tracker_key("metrics", col), v)
    for row in step_axes(metrics).itertuples(index=False):
        known = {a: int(v) for a, v in zip(AXES, row[2:], strict=True) if not pd.isna(v)}
        if known:
            series[row[0]].axes[int(row[1])] = known
    if probes is not None and not exp.has_results:
        raise CurriculensError(f"--probes given, but {exp.name} has no probe results yet")
    if exp.has_results:
        wanted = None if probes is None else set(probes)
        if wanted is not None:
            known_probes = set(exp.catalog()["probe"])
            unknown = sorted(wanted - known_probes)
            if unknown:
                raise CurriculensError(
                    f"unknown probe {', '.join(unknown)} in {exp.name} (known: {', '.join(sorted(known_probes)) or 'none'})"
                )
        res = exp.results()
        if wanted is not None:
            res = res[res["probe"].isin(wanted)]
        cols = ["run", "step", "probe", "metric", "site", "feature", "value"]
        for run, step, probe, metric, site, feature, value in res[cols].itertuples(index=False):
            if run in series:
                series[run].add(step, tracker_key("probes", probe, metric, site, feature), value)
    return [series[r] for r in runs["run"]]


def _numeric(col) -> bool:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype  # noqa: PLC0415

    return is_numeric_dtype(col) and not is_bool_dtype(col)
