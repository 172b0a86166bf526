"""Training: tasks plug data into one shared loop for teachers and every student method.

- ``training.config``: ``RunConfig`` and its parts (frozen, saved as ``config.json``).
- ``training.loop.train_run``: the work unit that trains one run, resumable.
- ``training.schedule``: checkpoint save steps and teacher-checkpoint selection.
- ``training.losses``: the distillation loss.
- ``training.tasks``: task plug-ins (parity, pcfg).
- ``training.experiment``: the experiment directory layout.
"""
