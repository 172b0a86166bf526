"""The probe sweep: every probe on every checkpoint of every run, into ``results.sqlite``.

A *work unit* is (run, checkpoint step, probe). ``run_sweep`` plans the units, validates all
the input first, then runs the pending units checkpoint by checkpoint (each checkpoint is
loaded once for all its pending probes) and writes each finished unit in one SQLite
transaction (``ResultsStore.write_unit``). Hence:

- **resumable**: units already in the store's ``units`` table are skipped (unless
  ``force``); a sweep killed midway reruns only the missing units and ends with the same table;
- **keyed by what was measured**: a unit is done only for the checkpoint hash it measured
  (``probes.freshness``): a checkpoint that changed (its run was retrained or re-imported) is probed
  again, and the units of checkpoints (or runs) that are gone or changed are removed from the
  database before anything else is written (``stale_units``; ``SweepResult.n_stale``);
- **no partial results**: bad input (a missing or empty directory, no runs or checkpoints, an
  unknown probe or option, a config that does not match the run, weights whose sha256 does
  not match ``meta.json``) raises ``CurriculensError`` *before anything is written*;
- **failures are isolated**: a probe that raises on one checkpoint is recorded as one JSON
  line in ``failed.jsonl`` (run, step, probe, error) beside the database and the sweep goes
  on; ``SweepResult.n_failed`` counts them (the CLI then exits 1). A rerun retries them.

``PATH`` may be an experiment directory (all runs under ``EXP/runs``), one run directory, or a
run's ``checkpoints/`` directory. The database goes in the experiment directory (``EXP/
results.sqlite``) when the run lies inside one (``EXP/runs/<run>``), else in the run directory.
The ``SweepConfig`` is saved beside it as ``probe_config.json``. Probe values depend on
``seed`` and ``options``; a sweep with different values than the stored config is refused
unless ``force`` (which recomputes the selected units).

``probe_checkpoint`` is the work unit as a pure function of its arguments (it loads the
checkpoint itself and returns results), so it can run in another process or on a cluster:
``probe_block`` runs it over a block of checkpoints, and ``probes.dispatch`` sends the blocks
to the executor (this process, or Ray tasks; ``curriculens.executor``) while ``run_sweep``
stays the only writer.
Each checkpoint is hashed once per sweep (``plan_sweep`` validates it; the units then load it
with ``verified=True``). One ``SweepMemo`` per block of checkpoints carries the probe data,
computed once, and the linear probes' warm starts from one checkpoint of a run to the next.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from curriculens import constants as C
from curriculens.config import canonical_json
from curriculens.device import resolve_device
from curriculens.errors import CurriculensError
from curriculens.executor import LOCAL, ExecutorConfig, executor_session
from curriculens.io import append_jsonl, read_json, write_json
from curriculens.lock import exclusive_lock
from models.checkpoint import list_checkpoints, load_checkpoint, verify_checkpoint, weights_ref
from models.configs import ModelConfig
from probes import registry
from probes.base import ProbeContext
from probes.dispatch import dispatch_blocks
from probes.freshness import checkpoint_ids, runs_of, stale_units
from probes.memo import SweepMemo, decode_solution
from probes.store import DoneUnit, ResultRow, ResultsStore, UnitKey
from probes.sweep_config import SweepConfig
from training.experiment import RunInfo, is_experiment, is_run, list_runs, read_experiment, read_run
from training.tasks import Task, build_task
from training.tasks.configs import same_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedCheckpoint:
    """One checkpoint with the probes still to run on it; ``warm``: stored solver states
    ``(probe, site, step, data)`` its units start from (``attach_warm_starts``)."""

    run: RunInfo
    step: int
    ckpt_dir: Path
    probes: tuple[str, ...]
    warm: tuple = ()


@dataclass
class SweepPlan:
    """The validated unit grid of a sweep (what ``--dry-run`` prints)."""

    root: Path
    db_path: Path
    task_name: str
    runs: list[RunInfo]
    probe_names: tuple[str, ...]
    n_checkpoints: int
    n_units: int
    n_skipped: int
    pending: list[PlannedCheckpoint]
    current: dict = field(default_factory=dict)  # {(run, step): (sha256, saved_at)} of every checkpoint under root
    stale: list = field(default_factory=list)  # (run, step, probe) units whose checkpoint changed or is gone

    @property
    def n_pending(self) -> int:
        return sum(len(p.probes) for p in self.pending)


@dataclass(frozen=True)
class UnitOutcome:
    """A finished unit: rows (or None) and the error message if it raised."""

    key: UnitKey
    rows: list[ResultRow] | None
    wall_s: float
    error: str | None = None
    warm: dict = field(default_factory=dict)  # {(probe, site): solver state bytes} (``probes.memo``)


@dataclass
class SweepResult:
    n_units: int
    n_done: int
    n_skipped: int
    n_failed: int
    db_path: Path
    n_rows: int = 0
    wall_s: float = 0.0
    failures: list[dict] = field(default_factory=list)
    n_stale: int = 0  # units removed because their checkpoint changed or is gone


# --- locating the runs --------------------------------------------------------------------
def resolve_target(path: Path | str) -> tuple[Path, list[RunInfo]]:
    """``(directory that holds the database, runs)`` for an experiment, run or checkpoints dir."""
    path = Path(path)
    if not path.exists():
        raise CurriculensError(f"no such directory: {path}")
    if not path.is_dir():
        raise CurriculensError(f"{path} is not a directory (give an experiment, run or checkpoints directory)")
    if path.name == C.CHECKPOINTS_DIR and is_run(path.parent):
        path = path.parent
    if is_experiment(path) or (path / C.RUNS_DIR).is_dir():
        runs = list_runs(path)
        if not runs:
            raise CurriculensError(f"no runs under {path / C.RUNS_DIR} (train some first)")
        return path, runs
    if is_run(path):
        exp = path.parent.parent
        root = exp if path.parent.name == C.RUNS_DIR and is_experiment(exp) else path
        return root, [read_run(path)]
    raise CurriculensError(
        f"{path} is not an experiment, run or checkpoints directory "
        f"(expected {C.EXPERIMENT_FILE}, {C.RUNS_DIR}/, or {C.RUN_CONFIG_FILE} + {C.CHECKPOINTS_DIR}/)"
    )


def _task_name(root: Path, runs: list[RunInfo]) -> str:
    tasks = {r.name: r.config.task for r in runs}
    if is_experiment(root):
        exp_task = read_experiment(root).get("task")
        bad = [
            name
            for name, t in tasks.items()
            if exp_task is not None and not same_task(t, exp_task, str(root / C.EXPERIMENT_FILE))
        ]
        if bad:
            raise CurriculensError(f"run(s) {', '.join(bad)} have a different task than {root / C.EXPERIMENT_FILE}")
    names = {t.name for t in tasks.values()}
    if len(names) != 1:
        raise CurriculensError(f"runs of one sweep must share a task, found {sorted(map(str, names))}")
    return str(names.pop())


def _select(ckpts: list[tuple[int, Path]], every: int) -> list[tuple[int, Path]]:
    last = len(ckpts) - 1
    return [c for i, c in enumerate(ckpts) if i % every == 0 or i == last]


# --- validation ---------------------------------------------------------------------------
def validate_checkpoint(ckpt_dir: Path, expected: ModelConfig) -> None:
    """Raise CurriculensError unless ``models.checkpoint.verify_checkpoint`` passes (files
    present, config equal to ``expected``, weights' sha256 as in ``meta.json``) and the stored
    tensor shapes fit the config. The sweep's one hash of each checkpoint is taken here."""
    meta, cfg = verify_checkpoint(ckpt_dir, expected)
    weights, fmt, layout = weights_ref(ckpt_dir, meta)
    if fmt == "safetensors" and layout == "hf":  # imported .bin/.pt: shapes were checked at import (same sha256)
        _check_shapes(weights, cfg, ckpt_dir)


def _check_shapes(weights: Path, cfg: ModelConfig, ckpt_dir: Path) -> None:
    from safetensors import SafetensorError, safe_open

    from models.registry import build_model

    try:
        with torch.device("meta"):
            ref = {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items()}
    except Exception:  # noqa: BLE001 - a model that cannot be built on meta is checked at load time
        return
    try:
        with safe_open(str(weights), framework="pt") as fh:
            stored = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CurriculensError(f"unreadable weights in {ckpt_dir}: {exc}".splitlines()[0]) from None
    bad = [k for k, shape in stored.items() if k not in ref or ref[k] != shape]
    if bad:
        raise CurriculensError(f"weights in {ckpt_dir} do not fit {C.MODEL_CONFIG_FILE} (first: {bad[0]})")


def _done_units(db_path: Path) -> dict[tuple[str, int, str], DoneUnit]:
    if not db_path.is_file():
        return {}
    with ResultsStore(db_path, readonly=True) as store:
        store.check()  # a damaged file is refused before any unit counts as done (one read of every page)
        return store.done_units()


def plan_sweep(path: Path | str, cfg: SweepConfig) -> SweepPlan:
    """Resolve and validate everything a sweep needs; writes nothing."""
    root, runs = resolve_target(path)
    current = checkpoint_ids(runs_of(root) or [(r.name, r.path) for r in runs])
    if cfg.runs:
        names = [r.name for r in runs]
        unknown = [n for n in cfg.runs if n not in names]
        if unknown:
            raise CurriculensError(f"unknown run(s) {', '.join(unknown)} (known: {', '.join(names)})")
        runs = [r for r in runs if r.name in cfg.runs]
    task_name = _task_name(root, runs)
    probe_names = tuple(registry.resolve_probes(task_name, cfg.probes))
    registry.check_options(task_name, cfg.options)
    db_path = root / C.RESULTS_DB
    done = _done_units(db_path)
    stale = stale_units(done, current)
    gone = set(stale)
    done = {} if cfg.force else {k: d for k, d in done.items() if k not in gone}
    _check_settings(root, cfg, bool(done))

    pending: list[PlannedCheckpoint] = []
    n_ckpts = n_units = n_skipped = 0
    for run in runs:
        ckpts = list_checkpoints(run.path)
        if not ckpts:
            log.warning("run %s has no checkpoints; skipped", run.name)
            continue
        expected = run.config.model
        for step, ckpt_dir in _select(ckpts, cfg.every):
            n_ckpts += 1
            todo = tuple(p for p in probe_names if (run.name, step, p) not in done)
            n_units += len(probe_names)
            n_skipped += len(probe_names) - len(todo)
            if todo:
                validate_checkpoint(ckpt_dir, expected)
                pending.append(PlannedCheckpoint(run, step, ckpt_dir, todo))
    if n_ckpts == 0:
        raise CurriculensError(f"no checkpoints to probe under {path}")
    return SweepPlan(root, db_path, task_name, runs, probe_names, n_ckpts, n_units, n_skipped, pending, current, stale)


def _check_settings(root: Path, cfg: SweepConfig, have_results: bool) -> None:
    """Refuse to mix probe values computed with different seeds/options (unless ``force``)."""
    stored_path = root / C.PROBE_CONFIG_FILE
    if not stored_path.is_file():
        return
    stored = read_json(stored_path)
    old = {"seed": stored.get("seed"), "options": stored.get("options", {})}
    if canonical_json(old) == canonical_json(cfg.settings()):
        return
    if cfg.force:
        if cfg.runs or cfg.probes or cfg.every > 1:
            log.warning(
                "--force with new settings recomputes only the selected runs/probes; other units keep seed=%s options=%s",
                old["seed"],
                old["options"],
            )
        return
    if have_results:
        raise CurriculensError(
            f"{root / C.RESULTS_DB} holds results probed with seed={old['seed']} options={old['options']}; "
            "rerun with the same settings, or pass --force to recompute with the new ones"
        )


# --- the work unit ------------------------------------------------------------------------
def _check_rows(probe: str, rows: list) -> None:
    seen = set()
    for r in rows:
        if not isinstance(r, ResultRow):
            raise TypeError(f"probe {probe} returned {type(r).__name__}, not ResultRow")
        if r.probe != probe:
            raise ValueError(f"probe {probe} returned a row of probe {r.probe!r}")
        if r.value is None or not math.isfinite(r.value):
            raise ValueError(
                f"probe {probe} produced a non-finite value ({r.value}) for feature={r.feature} site={r.site} metric={r.metric}"
            )
        key = (r.feature, r.site, r.metric)
        if key in seen:
            raise ValueError(f"probe {probe} returned two rows for feature={r.feature} site={r.site} metric={r.metric}")
        seen.add(key)


def iter_probe_checkpoint(
    run: RunInfo,
    step: int,
    ckpt_dir: Path | str,
    probe_names: tuple[str, ...] | list[str],
    cfg: SweepConfig,
    *,
    task: Task | None = None,
    device: torch.device | None = None,
    memo: SweepMemo | None = None,
    verified: bool = False,
    opts: Any = None,
) -> Iterator[UnitOutcome]:
    """Load one checkpoint once and yield one ``UnitOutcome`` per probe, as each finishes.

    A probe that raises an ``Exception`` yields an outcome with ``error`` set (the others
    still run); ``KeyboardInterrupt`` propagates.

    ``memo``: the sweep's (or worker's) ``SweepMemo``; pass the same one to every unit so
    probe data are computed once and the linear probes warm-start from the previous
    checkpoint of the same run (call the units of a run in step order). ``verified``: the
    checkpoint's sha256 was already checked in this sweep (``plan_sweep``), so it is not hashed
    again. ``opts``: the task's typed probe options (``probes.registry.parse_options`` of
    ``cfg.options``), parsed once per block by ``probe_block``; None = parsed here.
    """
    ckpt_dir = Path(ckpt_dir)
    device = device or resolve_device(cfg.device)
    task = task or build_task(run.config.task)
    selected = registry.resolve_probes(task.name, tuple(probe_names))
    opts = opts if opts is not None else registry.parse_options(task.name, cfg.options)

    sha = ""

    def key(name: str) -> UnitKey:
        return UnitKey(run.name, run.role, run.method, run.seed, step, name, str(ckpt_dir), sha)

    t0 = time.perf_counter()
    try:
        model, model_cfg, meta = load_checkpoint(
            ckpt_dir, expected=run.config.model, device=device, verify=not verified
        )
        sha = str(meta.get("sha256", ""))
    except Exception as exc:  # noqa: BLE001 - every unit of this checkpoint fails, the sweep goes on
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
        for name in selected:
            yield UnitOutcome(key(name), None, time.perf_counter() - t0, msg)
        return
    ctx = ProbeContext(
        model=model,
        model_cfg=model_cfg,
        task=task,
        device=device,
        step=step,
        ckpt_dir=ckpt_dir,
        seed=cfg.seed,
        options=dict(cfg.options),
        opts=opts,
        run=run.name,
        memo=memo if memo is not None else SweepMemo(),
    )
    for name, probe in selected.items():
        ctx.options = dict(cfg.options)
        t0 = time.perf_counter()
        before = ctx.memo.solutions(run.name)
        try:
            rows = list(probe.run(ctx))
            _check_rows(name, rows)
        except Exception as exc:  # noqa: BLE001 - recorded as a failed unit
            log.warning("probe %s failed on %s step %d: %s", name, run.name, step, exc)
            log.debug("%s", traceback.format_exc())
            msg = f"{type(exc).__name__}: {exc}".strip().splitlines()
            yield UnitOutcome(key(name), None, time.perf_counter() - t0, msg[0] if msg else type(exc).__name__)
            continue
        yield UnitOutcome(
            key(name), rows, time.perf_counter() - t0, warm=ctx.memo.take_refitted(run.name, step, before)
        )


def probe_checkpoint(
    run: RunInfo,
    step: int,
    ckpt_dir: Path | str,
    probe_names: tuple[str, ...] | list[str],
    cfg: SweepConfig,
    *,
    task: Task | None = None,
    device: torch.device | None = None,
    memo: SweepMemo | None = None,
    verified: bool = False,
) -> list[UnitOutcome]:
    """The work unit as a function: all of ``probe_names`` on one checkpoint (see ``iter_probe_checkpoint``)."""
    return list(
        iter_probe_checkpoint(
            run, step, ckpt_dir, probe_names, cfg, task=task, device=device, memo=memo, verified=verified
        )
    )


def probe_block(
    items: list[PlannedCheckpoint], cfg: SweepConfig, device: torch.device | None = None, memo: SweepMemo | None = None
) -> Iterator[UnitOutcome]:
    """Every pending probe on a block of checkpoints, in order; yields one outcome per unit.

    The dispatch unit of the sweep (``probes.dispatch``): the local executor passes the whole
    plan, the Ray executor a contiguous block of one run's checkpoints per task. Tasks are
    built once per block; one ``SweepMemo`` per block (probe data once, warm starts along each
    run's checkpoints). The items come from ``plan_sweep``, which hashed every checkpoint, so
    the units load them with ``verified=True``."""
    device = device or resolve_device(cfg.device)
    memo = memo if memo is not None else SweepMemo()
    tasks: dict[str, Task] = {}
    opts: dict[str, Any] = {}  # task name -> typed probe options, parsed once per block
    for item in items:
        for probe, site, step, data in item.warm:
            memo.restore_warm((item.run.name, probe, site), step, decode_solution(data))
        task_key = canonical_json(item.run.config.task)
        if task_key not in tasks:
            tasks[task_key] = build_task(item.run.config.task)
        name = tasks[task_key].name
        if name not in opts:
            opts[name] = registry.parse_options(name, cfg.options)
        yield from iter_probe_checkpoint(
            item.run,
            item.step,
            item.ckpt_dir,
            item.probes,
            cfg,
            task=tasks[task_key],
            device=device,
            memo=memo,
            verified=True,
            opts=opts[name],
        )


# --- the sweep ----------------------------------------------------------------------------
def _recheck_in_lock(plan: SweepPlan, cfg: SweepConfig) -> None:
    """Inside the database lock: check the stored settings again, list the stale units again
    and drop units that another writer finished while this sweep was being planned."""
    done = _done_units(plan.db_path)
    plan.stale = stale_units(done, plan.current)
    gone = set(plan.stale)
    done = {} if cfg.force else {k: d for k, d in done.items() if k not in gone}
    _check_settings(plan.root, cfg, bool(done))
    if not done:
        return
    pending = []
    for item in plan.pending:
        todo = tuple(p for p in item.probes if (item.run.name, item.step, p) not in done)
        plan.n_skipped += len(item.probes) - len(todo)
        if todo:
            pending.append(PlannedCheckpoint(item.run, item.step, item.ckpt_dir, todo))
    plan.pending = pending


def attach_warm_starts(plan: SweepPlan, cfg: SweepConfig) -> None:
    """Give each pending checkpoint the stored solver states its units would have carried in
    from earlier checkpoints of its run in an uninterrupted sweep: per (run, probe, site), the
    latest state stored after the run's previous pending unit of that probe (or any earlier
    one, for the first) and before this step. Later units get theirs from the sweep's memo.
    Nothing with ``force`` (everything selected is recomputed from cold)."""
    if cfg.force or not plan.db_path.is_file() or not plan.pending:
        return
    stored: dict[tuple[str, str], list] = {}
    prev: dict[tuple[str, str], int] = {}
    with ResultsStore(plan.db_path, readonly=True) as store:
        for i, item in enumerate(plan.pending):
            warm = []
            for probe in item.probes:
                key = (item.run.name, probe)
                if key not in stored:
                    stored[key] = store.warm_starts(*key)
                lo = prev.get(key)
                latest = {}
                for site, step, data in stored[key]:  # by step: the last one per site wins
                    if (lo is None or step > lo) and step < item.step:
                        latest[site] = (probe, site, step, data)
                warm += latest.values()
                prev[key] = item.step
            if warm:
                plan.pending[i] = replace(item, warm=tuple(warm))


def run_sweep(
    path: Path | str, cfg: SweepConfig, progress: bool = False, executor: ExecutorConfig = LOCAL, wait: bool = False
) -> SweepResult:
    """Plan, validate, then run every pending unit under ``path``; see the module docstring.

    ``executor`` says where the units run (``curriculens.executor``); whatever it is, this
    process is the only writer of the database, one transaction per unit. The experiment's
    results database has one writer at a time: the sweep holds ``EXP/.results.sqlite.lock``
    (``curriculens.lock``) while it writes; a second sweep is refused with one line naming the
    holder, or queues with ``wait`` (and then checks the stored settings again)."""
    t_start = time.perf_counter()
    plan = plan_sweep(path, cfg)
    device = None if executor.is_ray else resolve_device(cfg.device)  # a bad --device writes nothing, not even the lock
    # connect to the executor before the lock and the first write: a bad --ray-address writes nothing
    with (
        executor_session(executor) if plan.pending else contextlib.nullcontext(),
        exclusive_lock(plan.root / C.RESULTS_LOCK_FILE, f"results database {plan.db_path}", wait=wait),
    ):
        _recheck_in_lock(plan, cfg)
        result = SweepResult(plan.n_units, 0, plan.n_skipped, 0, plan.db_path)
        if plan.stale:  # before anything else: no reader sees them as current from here on
            with ResultsStore(plan.db_path) as store:
                result.n_stale = store.remove_units(plan.stale)
            log.info("removed %d units whose checkpoint changed or is gone", result.n_stale)
        attach_warm_starts(plan, cfg)
        if not plan.pending and plan.db_path.is_file():
            result.wall_s = time.perf_counter() - t_start
            return result
        _run_pending(plan, cfg, executor, device, progress, result)
    result.wall_s = time.perf_counter() - t_start
    return result


def _run_pending(
    plan: SweepPlan, cfg: SweepConfig, executor: ExecutorConfig, device, progress: bool, result: SweepResult
) -> None:
    failed_path = plan.root / C.FAILED_FILE
    with ResultsStore(plan.db_path) as store:
        write_json(plan.root / C.PROBE_CONFIG_FILE, cfg.to_dict())
        for run in plan.runs:
            store.upsert_run(run.name, run.role, run.method, run.seed, str(run.path), run.config.to_dict())
        for task_name in sorted({run.config.task.name for run in plan.runs}):  # results describe themselves
            store.write_metric_specs(registry.metric_specs(task_name))
        bar = tqdm(
            total=plan.n_pending, disable=not progress, desc="probe", unit="unit", dynamic_ncols=True, leave=False
        )
        seen: set[tuple[str, int, str]] = set()
        try:
            for out in dispatch_blocks(plan.pending, probe_block, cfg, executor, device):
                unit = (out.key.run, out.key.step, out.key.probe)
                if unit in seen:  # a retried Ray task may deliver a unit twice; the first one counts
                    log.debug("unit %s delivered twice; kept the first", unit)
                    continue
                seen.add(unit)
                bar.set_postfix(run=out.key.run, step=out.key.step)
                if out.error is None:
                    result.n_rows += store.write_unit(out.key, out.rows, out.wall_s, out.warm)
                    result.n_done += 1
                else:
                    failure = {
                        "run": out.key.run,
                        "step": out.key.step,
                        "probe": out.key.probe,
                        "error": out.error,
                        "ckpt_path": out.key.ckpt_path,
                        "time": time.time(),
                    }
                    append_jsonl(failed_path, failure)
                    result.failures.append(failure)
                    result.n_failed += 1
                bar.update(1)
        finally:
            bar.close()
