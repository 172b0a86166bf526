"""Task registry: a task config's class picks the task class.

Configs (torch-free) live in ``training.tasks.configs``; this package imports the torch-heavy
task modules only on first use, so reading a run's config never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.tasks.configs import TaskConfig, task_config_from_dict

if TYPE_CHECKING:
    from training.tasks.base import Task


def build_task(cfg: TaskConfig | dict) -> Task:
    """The task of a typed task config (a ``RunConfig.task``), used as it is; a dict
    (``{"name": "parity", ...}``, from a preset or a test) is parsed first.

    Loads what the task needs (a grammar, a corpus) and runs the checks that need it."""
    from training.tasks.parity import ParityTask
    from training.tasks.pcfg import PCFGTask
    from training.tasks.text import TextTask

    if isinstance(cfg, dict):
        cfg = task_config_from_dict(cfg)
    for task_cls in (ParityTask, PCFGTask, TextTask):
        if task_cls.name == cfg.name:
            return task_cls(cfg)
    raise TypeError(f"no task class for {type(cfg).__name__}")  # a TaskConfig member without a task


def __getattr__(name: str):
    # torch-heavy names are imported on first use, so `import training.tasks.configs` stays cheap
    if name in ("Batch", "Task", "to_device"):
        from training.tasks import base

        return getattr(base, name)
    raise AttributeError(f"module 'training.tasks' has no attribute {name!r}")


__all__ = ["Batch", "Task", "TaskConfig", "build_task", "task_config_from_dict", "to_device"]
