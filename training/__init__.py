"""Training: tasks plug data into one engine for teachers and every student method.

- ``training.config``: ``RunConfig`` and its parts (frozen, saved as ``config.json``).
- ``training.engine.train_units``: the one training engine (every method, divergence,
  evaluation and checkpoints) for single runs and grids.
- ``training.loop.train_run``: the work unit that trains one run (a grid of one), resumable.
- ``training.grid.train_grid``: students of one teacher trained together (stacked MLPs).
- ``training.schedule``: checkpoint save steps and teacher-checkpoint selection.
- ``training.losses``: the distillation loss.
- ``training.tasks``: task plug-ins (parity, pcfg).
- ``training.experiment``: the experiment directory layout.
"""
