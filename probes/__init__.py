"""Probes over training checkpoints, the sweep that runs them, and the results they write.

- ``base``: the ``Probe`` plug-in interface (``run(ctx) -> list[ResultRow]``) and ``MetricSpec``.
- ``registry``: which probes a task has (module or package ``probes/<task>`` with ``probes()``).
- ``activations``: activations at TransformerLens hook sites, batched.
- ``fourier``, ``linear``: Fourier correlations and logistic-regression probes.
- ``model_probe``: the ``model`` probe (held-out accuracy and loss).
- ``parity``, ``pcfg``: each task's probe package, one module per probe kind (parity
  ``fourier`` and ``linear``; PCFG ``nt_span``, ``ngram``, ``context``).
- ``sweep``: ``SweepConfig`` and ``run_sweep`` (resumable, one transaction per unit).
- ``store``: the SQLite results database. ``summary``: when each feature appears.

Nothing is imported here, so ``import probes`` stays cheap.
"""
