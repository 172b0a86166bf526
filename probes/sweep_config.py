"""``SweepConfig``: what a probe sweep (``probes.sweep``) probes and how; torch-free, so the CLI
builds its flags from it without loading the sweep."""

from __future__ import annotations

from dataclasses import dataclass, field

from curriculens import constants as C
from curriculens.config import cli, csv_of, from_dict, to_dict
from curriculens.errors import CurriculensError


@dataclass(frozen=True)
class SweepConfig:
    """What to probe and how. Saved as ``probe_config.json`` beside the database.

    Args:
        probes: probe names; empty = all of the task's probes (``probes.registry``).
        seed: seeds probe data and splits; the same for every checkpoint and run.
        device: ``auto`` | ``cpu`` | ``cuda``.
        force: recompute units that are already in the database.
        runs: run names to probe; empty = all runs.
        every: probe every k-th checkpoint of each run (by index), always with the first
            and the last.
        options: probe options (sizes, sites, ...; each task documents its keys).
    """

    probes: tuple = field(
        default=(),
        metadata=cli(
            "comma-separated probe names",
            parse=csv_of(str),
            default="all probes of the task, e.g. model,fourier,linear",
        ),
    )
    seed: int = field(default=0, metadata=cli("seed of the probe data and splits, the same for every checkpoint"))
    device: str = C.DEVICE_AUTO
    force: bool = field(default=False, metadata=cli("recompute units already in the database", default=""))
    runs: tuple = field(
        default=(), metadata=cli("comma-separated run names to probe", parse=csv_of(str), default="all runs")
    )
    every: int = field(default=1, metadata=cli("probe every K-th checkpoint of each run, always the first and last"))
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.every < 1:
            raise CurriculensError("--every must be >= 1")
        if self.device not in C.DEVICES:
            raise CurriculensError(f"unknown device {self.device!r} (one of {', '.join(C.DEVICES)})")
        if not isinstance(self.options, dict):
            raise CurriculensError("probe options must be a JSON object")
        for name in (*self.probes, *self.runs):
            if not isinstance(name, str) or not name:
                raise CurriculensError(f"probe and run names must be non-empty strings, got {name!r}")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SweepConfig:
        return from_dict(cls, data, where="sweep config")

    def settings(self) -> dict:
        """The part of the config that changes probe values (seed and options)."""
        return {"seed": self.seed, "options": self.options}
