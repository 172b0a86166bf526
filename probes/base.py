"""The probe plug-in interface used by the sweep runner.

A probe measures one family of features on one checkpoint and returns ``ResultRow``s. Tasks
register the probes that apply to them in ``probes.registry``; the sweep, the store, the
summary and the dashboard are shared by every task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from models.configs import ModelConfig
from probes.activations import ActivationExtractor
from probes.memo import SweepMemo
from probes.store import MetricSpec, ResultRow  # noqa: F401 - MetricSpec: probes declare theirs here
from training.tasks import Task


@dataclass
class ProbeContext:
    """Everything a probe may use for one checkpoint.

    Args:
        model: the loaded model, eval mode, on ``device``.
        model_cfg: its config.
        task: the experiment's task (held-out data, model inputs).
        device: where to compute.
        step: checkpoint step.
        ckpt_dir: the checkpoint directory.
        seed: seed for probe data and splits (the same for every checkpoint, so values are
            comparable along a trajectory).
        options: probe options from the sweep config (sizes, sites, ...), as given.
        opts: the task's typed probe options, parsed from ``options`` once per sweep
            (``probes.registry.parse_options``); None = probes parse ``options`` themselves
            (a context built by hand).
        run: the run's name (keys warm starts: the same run, probe and site).
        memo: the sweep's ``SweepMemo`` (probe data computed once per sweep, warm starts);
            a fresh one by default (nothing reused).
    """

    model: nn.Module
    model_cfg: ModelConfig
    task: Task
    device: torch.device
    step: int
    ckpt_dir: Path
    seed: int = 0
    options: dict[str, Any] | None = None
    opts: Any = None
    run: str = ""
    memo: SweepMemo = field(default_factory=SweepMemo)
    _extractor: ActivationExtractor | None = field(default=None, repr=False)

    def extractor(self) -> ActivationExtractor:
        """The loaded model's ``ActivationExtractor``, built once per context (checkpoint)."""
        if self._extractor is None:
            self._extractor = ActivationExtractor(self.model, self.model_cfg)
        return self._extractor


class Probe(ABC):
    """One probe family. ``name`` is the ``probe`` column of its rows.

    ``primary_metrics`` names the metrics the summary reports "appears at" for, with the
    rule's parameters; other metrics are stored but not summarised unless asked for.
    """

    name: str = ""
    primary_metrics: Mapping[str, MetricSpec] = MappingProxyType({})

    @abstractmethod
    def run(self, ctx: ProbeContext) -> list[ResultRow]:
        """Measure this probe on one checkpoint."""
