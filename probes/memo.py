"""Per-sweep memo: probe data computed once per sweep, warm starts carried across checkpoints.

Probe data (inputs, monomials, labels, their encodings, parity matrices) are functions of the
task, the sweep seed and the probe options only, identical for every checkpoint and run by
design; a ``SweepMemo`` computes each once and hands the same object to every later unit.
It also holds the linear probes' warm-start slots, keyed by (run, probe, site): a worker that
processes a run's checkpoints in order starts each fit from the previous checkpoint's solution.

Warm starts outlive the process: after each unit the sweep takes the slots the unit refitted
(``take_refitted``), stores them with the unit (``encode_solution``: safetensors bytes, in the
results database's ``warm_starts`` table) and a resumed sweep puts them back
(``restore_warm``), so a resumed run continues from the same initial points as an
uninterrupted one and ends with the same rows.

One memo per sweep (or per worker of a distributed sweep); nothing is shared between processes.
Values must be treated as read-only by the probes. Keys are tuples of strings and numbers;
``key_of`` builds the canonical-JSON part of a key from configs and option dicts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from curriculens.config import to_dict

T = TypeVar("T")


def key_of(*parts: Any) -> str:
    """Canonical JSON of configs / option dicts (dataclasses via ``to_dict``), for memo keys."""
    return json.dumps(
        [to_dict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts], sort_keys=True, default=str
    )


def encode_solution(solution: tuple[torch.Tensor, torch.Tensor]) -> bytes:
    """A warm-start solution (w, b) as safetensors bytes (CPU, dtype kept: exact round trip)."""
    from safetensors.torch import save

    w, b = solution
    return save({"w": w.detach().cpu().contiguous(), "b": b.detach().cpu().contiguous()})


def decode_solution(data: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """The (w, b) that ``encode_solution`` wrote (CPU tensors)."""
    from safetensors.torch import load

    t = load(data)
    return t["w"], t["b"]


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

    def restore_warm(self, key: tuple, step: int, solution: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Put a stored solution fitted at ``step`` into the slot ``key``, unless the slot
        already holds one from a later (or the same) step of this sweep."""
        slot = self.warm_start(key)
        if slot.solution is None or slot.step is None or slot.step < step:
            slot.solution, slot.step = solution, int(step)

    def solutions(self, run: str) -> dict[tuple, tuple]:
        """``{key: solution}`` of ``run``'s slots: pass it to ``take_refitted`` after a unit."""
        return {k: s.solution for k, s in self._warm.items() if k[0] == run and s.solution is not None}

    def take_refitted(self, run: str, step: int, before: dict[tuple, tuple]) -> dict[tuple, bytes]:
        """``{(probe, site): encoded solution}`` of ``run``'s slots refitted since ``before``
        (``solutions(run)``), marking them as fitted at ``step``."""
        out = {}
        for key, slot in self._warm.items():
            if key[0] == run and slot.solution is not None and before.get(key) is not slot.solution:
                slot.step = int(step)
                out[(key[1], key[2])] = encode_solution(slot.solution)
        return out
