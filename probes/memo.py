"""Per-sweep memo: probe data computed once per sweep, warm starts carried across checkpoints.

Probe data (inputs, monomials, labels, their encodings, parity matrices) are functions of the
task, the sweep seed and the probe options only, identical for every checkpoint and run by
design; a ``SweepMemo`` computes each once and hands the same object to every later unit.
It also holds the linear probes' warm-start slots, keyed by (run, probe, site): a worker that
processes a run's checkpoints in order starts each fit from the previous checkpoint's solution.

One memo per sweep (or per worker of a distributed sweep); nothing is shared between processes.
Values must be treated as read-only by the probes. Keys are tuples of strings and numbers;
``key_of`` builds the canonical-JSON part of a key from configs and option dicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from curriculens.config import to_dict

T = TypeVar("T")


def key_of(*parts: Any) -> str:
    """Canonical JSON of configs / option dicts (dataclasses via ``to_dict``), for memo keys."""
    return json.dumps(
        [to_dict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts], sort_keys=True, default=str
    )


@dataclass
class SweepMemo:
    """Memoised probe data and warm-start slots of one sweep (see the module docstring)."""

    _values: dict = field(default_factory=dict)
    _warm: dict = field(default_factory=dict)

    def get(self, key: tuple, make: Callable[[], T]) -> T:
        """The value for ``key``, computed by ``make()`` the first time."""
        if key not in self._values:
            self._values[key] = make()
        return self._values[key]

    def warm_start(self, key: tuple):
        """The ``probes.linear.WarmStart`` slot for ``key`` (run, probe, site), created empty."""
        from probes.linear import WarmStart

        return self._warm.setdefault(key, WarmStart())
