"""Which probes apply to which task, found by convention (no global registry state).

A task named ``T`` registers its probes by providing a module or package ``probes/T`` with

- ``def probes() -> dict[str, Probe]``: its probes by name, in default sweep order (the
  default probe list of a sweep is all of them);
- optionally ``def check_options(options: dict) -> None``: raise ``CurriculensError`` on bad
  probe options, so a sweep fails before it writes anything.

Each ``Probe`` may declare ``primary_metrics`` (``{metric: MetricSpec}``) for the summary.
``probes/parity/`` and ``probes/pcfg/`` are packages of this shape: ``__init__`` holds
``probes()`` and ``check_options``, a ``common`` module what the task's probes share, and one
module per probe kind.
"""

from __future__ import annotations

import importlib
import importlib.util

from curriculens.errors import CurriculensError
from probes.base import MetricSpec, Probe


def _module(task_name: str):
    if not task_name or not task_name.isidentifier():
        raise CurriculensError(f"no probes for task {task_name!r}")
    mod_name = f"probes.{task_name}"
    try:
        found = importlib.util.find_spec(mod_name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise CurriculensError(f"no probes registered for task {task_name!r} (expected module {mod_name})")
    module = importlib.import_module(mod_name)
    if not callable(getattr(module, "probes", None)):
        raise CurriculensError(f"module {mod_name} has no probes() function")
    return module


def probes_for_task(task_name: str) -> dict[str, Probe]:
    """``{name: Probe}`` for a task, in its default order (fresh instances per call)."""
    found = _module(task_name).probes()
    for name, probe in found.items():
        if not isinstance(probe, Probe) or probe.name != name:
            raise CurriculensError(f"probes.{task_name}.probes(): entry {name!r} is not a Probe named {name!r}")
    return dict(found)


def resolve_probes(task_name: str, names: tuple[str, ...] | list[str] = ()) -> dict[str, Probe]:
    """The named probes (all of the task's if ``names`` is empty); unknown names are an error."""
    available = probes_for_task(task_name)
    if not names:
        return available
    unknown = [n for n in names if n not in available]
    if unknown:
        raise CurriculensError(
            f"unknown probe(s) {', '.join(unknown)} for task {task_name} (known: {', '.join(available)})"
        )
    return {n: available[n] for n in dict.fromkeys(names)}


def check_options(task_name: str, options: dict | None) -> None:
    """Run the task's ``check_options`` on sweep options, if it has one."""
    hook = getattr(_module(task_name), "check_options", None)
    if callable(hook):
        hook(dict(options or {}))


def metric_specs(task_name: str) -> dict[tuple[str, str], MetricSpec]:
    """``{(probe, metric): MetricSpec}`` declared by a task's probes (empty if it has none)."""
    try:
        found = probes_for_task(task_name)
    except CurriculensError:
        return {}
    return {(name, metric): spec for name, probe in found.items() for metric, spec in probe.primary_metrics.items()}
