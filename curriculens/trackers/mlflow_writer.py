"""An MLflow file store at ``OUT``: one experiment (the experiment's name), one MLflow run per
curriculens run, metrics logged with their step, the run's config as flattened parameters.

MLflow 3 keeps the file store in maintenance mode and refuses it unless
``MLFLOW_ALLOW_FILE_STORE=true``: the export sets it for its own client only (restored after),
and reading the store needs it too (``MLFLOW_ALLOW_FILE_STORE=true mlflow ui
--backend-store-uri OUT``). Artifact locations point at the final ``OUT`` (nothing is logged
there), not at the temporary directory the store is built in.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from curriculens.config import flat_dict
from curriculens.trackers.series import RunSeries

ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"
BATCH = 1000  # MLflow's limit of metrics per log_batch
PARAM_BATCH = 100  # and of params
MAX_PARAM_VALUE = 6000  # characters


@contextmanager
def file_store_allowed() -> Iterator[None]:
    """``MLFLOW_ALLOW_FILE_STORE=true`` inside the block, the old value restored after."""
    old = os.environ.get(ALLOW_FILE_STORE)
    os.environ[ALLOW_FILE_STORE] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ALLOW_FILE_STORE, None)
        else:
            os.environ[ALLOW_FILE_STORE] = old


def flatten(cfg) -> dict[str, str]:
    """``{"optim.lr": "0.05", ...}``: nested dicts joined by ``.``, leaves as JSON text."""
    return {k: (v if isinstance(v, str) else json.dumps(v))[:MAX_PARAM_VALUE] for k, v in flat_dict(cfg).items()}


def write(series: Sequence[RunSeries], out: Path, experiment: str, final: Path) -> None:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    with file_store_allowed():
        client = MlflowClient(tracking_uri=out.resolve().as_uri())
        exp_id = client.create_experiment(experiment, artifact_location=(final / "artifacts").as_uri())
        for s in series:
            run = client.create_run(exp_id, run_name=s.run, tags=s.tags)
            rid = run.info.run_id
            ms = int(time.time() * 1000)
            metrics = [Metric(k, v, ms, step) for step in s.steps for k, v in s.row(step).items()]
            for i in range(0, len(metrics), BATCH):
                client.log_batch(rid, metrics=metrics[i : i + BATCH])
            params = [Param(k, v) for k, v in flatten(s.config).items()]
            for i in range(0, len(params), PARAM_BATCH):
                client.log_batch(rid, params=params[i : i + PARAM_BATCH])
            client.set_terminated(rid)
