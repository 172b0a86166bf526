"""TensorBoard event files: ``OUT/<run>/events.out.tfevents.*``, one scalar per key and step.

Written with tensorboard's own ``EventFileWriter`` and protos (no TensorFlow, no torch);
``tensorboard --logdir OUT`` shows the runs side by side. TensorBoard has no custom x-axis:
``axes/teacher_step`` is a curve of its own (see ``curriculens.trackers``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from curriculens.trackers.series import RunSeries


def write(series: Sequence[RunSeries], out: Path, experiment: str, final: Path) -> None:
    """One event file per run under ``out/<run>``, events in step order. ``experiment`` and
    ``final`` are unused (the runs are the directories)."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for s in series:
        writer = EventFileWriter(str(out / s.run))
        try:
            now = time.time()
            for step in s.steps:
                values = [Summary.Value(tag=k, simple_value=v) for k, v in s.row(step).items()]
                if values:
                    writer.add_event(Event(wall_time=now, step=step, summary=Summary(value=values)))
        finally:
            writer.close()
