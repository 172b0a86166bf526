"""Which probes apply to which task, found by convention (no global registry state).

A task named ``T`` registers its probes by providing a module or package ``probes/tasks/T`` with

- ``def probes() -> dict[str, Probe]``: its probes by name, in default sweep order (the
  default probe list of a sweep is all of them);
- optionally ``def parse_options(options: dict) -> typed options``: the task's typed probe
  options (a frozen dataclass validated on construction), raising ``CurriculensError`` on an
  unknown key or a bad value, so a sweep fails before it writes anything; the sweep parses
  once and hands the result to every probe as ``ProbeContext.opts``. A task without the
  hook takes no options.

Each ``Probe`` may declare ``primary_metrics`` (``{metric: MetricSpec}``) for the summary.
``probes/tasks/parity/`` and ``probes/tasks/pcfg/`` are packages of this shape: ``__init__`` holds
``probes()`` and ``parse_options``, a ``common`` module what the task's probes share, and one
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
    mod_name = f"probes.tasks.{task_name}"
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
            raise CurriculensError(f"probes.tasks.{task_name}.probes(): entry {name!r} is not a Probe named {name!r}")
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


def parse_options(task_name: str, options: dict | None):
    """The task's typed probe options from a sweep's options dict (its ``parse_options`` hook);
    None for a task without the hook, which takes no options. CurriculensError on bad ones."""
    hook = getattr(_module(task_name), "parse_options", None)
    if callable(hook):
        return hook(dict(options or {}))
    if options:
        raise CurriculensError(f"task {task_name} takes no probe options, got {', '.join(sorted(options))}")
    return None


def check_options(task_name: str, options: dict | None) -> None:
    """Raise CurriculensError on bad sweep options (``parse_options``, result dropped)."""
    parse_options(task_name, options)


def metric_specs(task_name: str) -> dict[tuple[str, str], MetricSpec]:
    """``{(probe, metric): MetricSpec}`` declared by a task's probes (empty if it has none)."""
    try:
        found = probes_for_task(task_name)
    except CurriculensError:
        return {}
    return {(name, metric): spec for name, probe in found.items() for metric, spec in probe.primary_metrics.items()}
