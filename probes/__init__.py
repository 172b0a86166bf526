"""Probes over training checkpoints, the sweep that runs them, and the results they write.

- ``base``: the ``Probe`` plug-in interface (``run(ctx) -> list[ResultRow]``) and ``MetricSpec``.
- ``registry``: which probes a task has (module ``probes/<task>.py`` with ``probes()``).
- ``activations``: activations at TransformerLens hook sites, batched.
- ``fourier``, ``linear``: Fourier correlations and logistic-regression probes.
- ``model_probe``, ``parity``: the probe sets (``model``; parity ``fourier`` and ``linear``).
- ``sweep``: ``SweepConfig`` and ``run_sweep`` (resumable, one transaction per unit).
- ``store``: the SQLite results database. ``summary``: when each feature appears.

Nothing is imported here, so ``import probes`` stays cheap.
"""
