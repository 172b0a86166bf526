"""Training: tasks plug data into one engine for teachers and every student method.

- ``training.config``: ``RunConfig`` and its parts (frozen, saved as ``config.json``).
- ``training.engine.train_units``: the one training engine (every method, divergence,
  evaluation and checkpoints) for single runs and grids.
- ``training.loop.train_run``: the work unit that trains one run (a grid of one), resumable.
- ``training.grid.train_grid``: students of one teacher trained together (stacked MLPs);
  ``training.gridspec``: the grid's student specs. ``training.stacked``: stacked MLPs.
- ``training.schedule``: checkpoint save steps and teacher-checkpoint selection.
- ``training.losses``, ``training.optim``, ``training.extraction``: the distillation loss,
  optimizers, curriculum extraction.
- ``training.tasks``: task plug-ins (parity, pcfg, text); ``training.data``: their data.
- ``training.plans``: multi-run plans per task. ``training.recommend``: checkpoint advice.
- ``training.experiment``: the experiment directory layout; ``training.rundir``: one run's.
- ``training.foreign``: foreign checkpoints (fetch, find, import) and the fixture generator.
"""
