"""An experiment's curves and probe results written into an experiment tracker, offline.

``export_to_tracker(EXP, "tensorboard" | "mlflow" | "wandb", OUT)``: one tracker run per
curriculens run, every value at its training step, steps in increasing order, the run's
``config.json`` as its parameters. What each run holds (``RunSeries``):

``metrics/<col>``                     each numeric ``metrics.jsonl`` column (eval_acc,
                                      eval_loss, train_loss, lr, ...), at its step
``probes/<probe>/<metric>/<site>/<feature>``  each probe value, at its checkpoint step
``axes/teacher_step``, ``axes/samples`` (``axes/tokens`` where recorded)  the second x-axes
                                      (``curriculens.analysis.step_axes``): the teacher
                                      checkpoint a student learned from at that step (a
                                      teacher's own step for a teacher; absent for ce)

Missing values (NaN) are not written. Key characters outside ``[A-Za-z0-9_.:/ -]`` become
``_`` (MLflow's rule, applied to every tracker so the keys match). Probe values are written
after the fact, at the steps they measure: each tracker run is written once, in step order,
merging training metrics and probe values step by step.

Where the files go (``OUT``, replaced as a whole, see ``export_to_tracker``):

* tensorboard: ``OUT/<run>/events.out.tfevents.*`` (``tensorboard --logdir OUT``); no custom
  x-axis in TensorBoard: plot ``axes/teacher_step`` beside the curves.
* mlflow: a file store at ``OUT`` (experiment = the experiment's name); MLflow 3 reads it with
  ``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri OUT``.
* wandb: offline runs ``OUT/wandb/offline-run-*`` (group = the experiment's name); upload with
  ``wandb sync``. ``step`` and ``teacher_step`` are logged as metrics and declared with
  ``define_metric``, so either can be the x-axis in the W&B UI.

The tracker packages are the ``trackers`` extra; a missing one is a one-line error before
anything is written.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable
from pathlib import Path

from curriculens.errors import CurriculensError
from curriculens.io import atomic_dir, write_json
from curriculens.trackers.series import RunSeries, collect

log = logging.getLogger(__name__)

TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}  # name -> import name
PIP_NAMES = {"tensorboard": "tensorboard", "mlflow": "mlflow-skinny", "wandb": "wandb"}
MARKER = "curriculens-export.json"  # written into every export: what may be replaced by the next one


def require(tracker: str) -> None:
    """A one-line ``CurriculensError`` when ``tracker`` is unknown or its package is missing."""
    if tracker not in TRACKERS:
        raise CurriculensError(f"unknown tracker {tracker!r} (one of {', '.join(TRACKERS)})")
    if importlib.util.find_spec(TRACKERS[tracker]) is None:
        raise CurriculensError(
            f"export --to {tracker} needs the {PIP_NAMES[tracker]} package: pip install 'curriculens[trackers]' "
            f"(or pip install {PIP_NAMES[tracker]})"
        )


def check_out(out: Path) -> None:
    """``out`` may be replaced: it does not exist, is an empty directory, or is an earlier
    export (it holds ``MARKER``). Anything else is refused, so ``--out ~`` deletes nothing."""
    if not out.exists():
        return
    if not out.is_dir():
        raise CurriculensError(f"--out {out} exists and is not a directory")
    if any(out.iterdir()) and not (out / MARKER).is_file():
        raise CurriculensError(
            f"--out {out} exists and is not an earlier curriculens tracker export (no {MARKER}); "
            "choose a new or empty directory"
        )


def export_to_tracker(
    exp_dir: Path | str, tracker: str, out: Path | str, probes: Iterable[str] | None = None
) -> tuple[Path, list[RunSeries]]:
    """Write experiment ``exp_dir`` for ``tracker`` into ``out``; returns (out, the series written).

    Everything is checked and read before the first write; ``out`` is built under a temporary
    name beside it and then replaces it whole (``curriculens.io.atomic_dir``), so an
    interrupted export leaves no half-written store.
    """
    from curriculens.analysis import Experiment  # noqa: PLC0415

    require(tracker)
    exp = Experiment(exp_dir)
    out = Path(out)
    check_out(out)
    series = collect(exp, probes)
    if not series:
        raise CurriculensError(f"experiment {exp.name} has no runs with checkpoints yet: nothing to export")
    if tracker == "tensorboard":
        from curriculens.trackers.tb_writer import write
    elif tracker == "mlflow":
        from curriculens.trackers.mlflow_writer import write
    else:
        from curriculens.trackers.wandb_writer import write
    with atomic_dir(out) as tmp:
        write(series, tmp, exp.name, final=out.resolve())
        write_json(
            tmp / MARKER,
            {"tracker": tracker, "experiment": str(exp.path.resolve()), "runs": [s.run for s in series]},
        )
    log.info("wrote %d runs for %s into %s", len(series), tracker, out)
    return out, series
