"""Task registry: a task config dict's ``name`` picks the task class."""

from __future__ import annotations

from curriculens.errors import CurriculensError
from training.tasks.base import Batch, Task, to_device


def _registry() -> dict:
    from training.tasks.parity import ParityTask
    from training.tasks.pcfg import PCFGTask
    from training.tasks.text import TextTask

    return {"parity": ParityTask, "pcfg": PCFGTask, "text": TextTask}


def build_task(data: dict) -> Task:
    """Build a task from its config dict (``{"name": "parity", ...}``)."""
    if not isinstance(data, dict) or "name" not in data:
        raise CurriculensError("task config has no 'name'")
    tasks = _registry()
    if data["name"] not in tasks:
        raise CurriculensError(f"unknown task {data['name']!r} (known: {', '.join(sorted(tasks))})")
    task = tasks[data["name"]].from_config(data)
    return task


__all__ = ["Batch", "Task", "build_task", "to_device"]
