"""W&B offline runs: ``OUT/wandb/offline-run-*/run-*.wandb``, nothing sent anywhere.

One run per curriculens run (``group`` = the experiment, ``name`` = the run, ``config`` = its
``config.json``), one history row per step in step order holding that step's metrics, probe
values and axes, plus ``step`` and ``teacher_step`` as metrics declared with ``define_metric``
so either can be picked as the x-axis. ``wandb sync OUT/wandb/offline-run-*`` uploads them
later. System metrics, console capture, code and git state are off.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from curriculens.trackers.series import RunSeries


def write(series: Sequence[RunSeries], out: Path, experiment: str, final: Path) -> None:
    import wandb

    settings = wandb.Settings(
        mode="offline",
        silent=True,
        console="off",
        save_code=False,
        disable_git=True,
        x_disable_stats=True,
        x_disable_meta=True,
    )
    ours = wandb.run is None  # a session the caller already holds is left running
    try:
        for s in series:
            run = wandb.init(
                dir=str(out),
                project=experiment,
                group=experiment,
                name=s.run,
                job_type=s.role,
                tags=[s.role, s.method],
                config=s.config,
                settings=settings,
                reinit="create_new",
            )
            try:
                run.define_metric("step")
                run.define_metric("teacher_step")
                for prefix in ("metrics/*", "probes/*", "axes/*"):
                    run.define_metric(prefix, step_metric="step")
                for step in s.steps:
                    row = s.row(step)
                    row["step"] = step
                    if "axes/teacher_step" in row:
                        row["teacher_step"] = row["axes/teacher_step"]
                    run.log(row, step=step)
            finally:
                run.finish()
    finally:
        if ours:
            wandb.teardown()
