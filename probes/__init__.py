"""Probes over training checkpoints, the sweep that runs them, and the results they write.

Shared machinery (task-agnostic) lives here; each task's probe plug-in lives in ``probes.tasks``.

- ``base``: the ``Probe`` plug-in interface (``run(ctx) -> list[ResultRow]``) and ``MetricSpec``.
- ``registry``: which probes a task has (module or package ``probes/tasks/<task>`` with
  ``probes()``).
- ``activations``: activations at TransformerLens hook sites, batched.
- ``linear``, ``logreg``: generic linear-probe fitting (targets, splits, logistic regression).
- ``model_probe``: the ``model`` probe (held-out accuracy and loss, any task).
- ``memo``: per-sweep memo of shared probe inputs. ``dispatch``: probe work onto executors.
- ``freshness``: which finished probe units still describe the checkpoints on disk.
- ``sweep``: ``SweepConfig`` and ``run_sweep`` (resumable, one transaction per unit).
- ``store``: the SQLite results database. ``summary``: when each feature appears.
- ``tasks``: the task plug-ins, ``parity``, ``pcfg``, ``text`` (see ``probes.tasks``).

Nothing is imported here, so ``import probes`` stays cheap.
"""
