"""Which finished probe units still describe the checkpoints on disk (reads JSON only, no torch:
``summary`` uses it as well as the sweep).

A unit (run, step, probe) of ``results.sqlite`` records the sha256 of the weights it measured
(``units.ckpt_sha``; see ``probes.store``). It is *current* while the checkpoint of that run and
step exists and its ``meta.json`` names the same sha256; otherwise it is *stale*: the run was
retrained, re-imported or deleted behind the database's back. The sweep removes stale units and
re-probes what is there (``probes.sweep``); ``summary`` says how many it left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import read_json
from curriculens.layout import CKPT_RE
from probes.store import DoneUnit, ResultsStore
from training.experiment import is_run, list_runs


def checkpoint_ids(runs: Iterable[tuple[str, Path]]) -> dict[tuple[str, int], tuple]:
    """``{(run, step): (sha256, saved_at)}`` of every checkpoint of ``(run name, run directory)``,
    from its ``meta.json`` (``(None, None)`` for an unreadable one)."""
    out = {}
    for name, run_dir in runs:
        ckpts = Path(run_dir) / C.CHECKPOINTS_DIR
        for child in ckpts.iterdir() if ckpts.is_dir() else ():
            m = CKPT_RE.match(child.name)
            if not m or not child.is_dir():
                continue
            try:
                meta = read_json(child / C.META_FILE)
            except CurriculensError:
                meta = None
            ok = isinstance(meta, dict)
            out[(name, int(m.group(1)))] = (meta.get("sha256"), meta.get("saved_at")) if ok else (None, None)
    return out


def measured(done: DoneUnit | None, sha: str | None, saved_at: float | None) -> bool:
    """Whether a finished unit measured the checkpoint that is there now (sha256 ``sha``,
    saved at ``saved_at``). A unit of a schema-1 database has no hash: it counts when the
    checkpoint was saved before the unit finished (so it is the one it measured), else it is
    probed again."""
    if done is None or sha is None:
        return False
    if done.ckpt_sha is not None:
        return done.ckpt_sha == sha
    return saved_at is not None and done.finished_at is not None and float(saved_at) <= float(done.finished_at)


def stale_units(done: dict, current: dict) -> list[tuple[str, int, str]]:
    """The finished units whose checkpoint is gone (or its run) or is not the one they measured."""
    return sorted(k for k, d in done.items() if not measured(d, *current.get((k[0], k[1]), (None, None))))


def runs_of(root: Path | str) -> list[tuple[str, Path]]:
    """``(name, directory)`` of every run whose results ``root/results.sqlite`` may hold: the
    runs of the experiment ``root``, or ``root`` itself when it is one run directory."""
    root = Path(root)
    if (root / C.RUNS_DIR).is_dir():
        return [(r.name, r.path) for r in list_runs(root)]
    return [(root.name, root)] if is_run(root) else []


def stale_in(db_path: Path | str) -> list[tuple[str, int, str]]:
    """The stale units of the database ``db_path`` (beside its experiment or run directory)."""
    db_path = Path(db_path)
    with ResultsStore(db_path, readonly=True) as store:
        done = store.done_units()
    return stale_units(done, checkpoint_ids(runs_of(db_path.parent)))
