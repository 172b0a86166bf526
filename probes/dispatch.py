"""Where the sweep's pending checkpoints are probed: in this process, or as Ray tasks.

``probes.sweep.run_sweep`` plans, validates and writes the results; this module only hands
the pending checkpoints to a block function (``probes.sweep.probe_block``) and returns its
``UnitOutcome``s as they come. With Ray, the checkpoints are cut into contiguous blocks of one
run (``ExecutorConfig.block`` checkpoints at most, 0 = the whole run), one streaming Ray task
per block, so whatever a block carries from one checkpoint to the next (tasks, probe data,
warm starts) sees the same sequence as in a local sweep. Outcomes stream back unit by unit,
so the driver writes each unit as soon as it is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from curriculens import constants as C
from curriculens.executor import ExecutorConfig, stream_tasks


def split_blocks(pending: Sequence, size: int = 0) -> list[list]:
    """Contiguous blocks of one run each, in plan order, of at most ``size`` items (0 = no limit).

    ``pending`` items have ``.run.name`` (``probes.sweep.PlannedCheckpoint``)."""
    blocks: list[list] = []
    for item in pending:
        last = blocks[-1] if blocks else None
        if last and last[-1].run.name == item.run.name and (size == 0 or len(last) < size):
            last.append(item)
        else:
            blocks.append([item])
    return blocks


def _absolute(item):
    """The item with absolute paths (workers do not share the driver's working directory)."""
    run = replace(item.run, path=Path(item.run.path).resolve())
    return replace(item, run=run, ckpt_dir=Path(item.ckpt_dir).resolve())


def dispatch_blocks(
    pending: Sequence, block_fn: Callable[..., Iterator], cfg, executor: ExecutorConfig, device=None
) -> Iterator:
    """Yield ``block_fn``'s outcomes for every pending item: ``block_fn(pending, cfg, device)``
    here, or ``block_fn(block, cfg)`` per block on Ray (the device is resolved on the worker)."""
    if not executor.is_ray:
        yield from block_fn(list(pending), cfg, device)
        return
    blocks = [[_absolute(item) for item in block] for block in split_blocks(pending, executor.block)]
    must_see = [str(block[0].run.path / C.RUN_CONFIG_FILE) for block in blocks]
    # the units table keeps the checkpoint path as the driver named it, as a local sweep does
    named = {(item.run.name, item.step): str(item.ckpt_dir) for item in pending}
    for out in stream_tasks(executor, block_fn, [(block, cfg) for block in blocks], must_see):
        yield replace(out, key=replace(out.key, ckpt_path=named[(out.key.run, out.key.step)]))
