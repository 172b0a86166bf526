"""The one training loop: teachers (cross-entropy) and every student method, every task.

``train_run(cfg, run_dir)`` is a work unit: a function of a config that writes a run
directory and returns a ``RunResult``, so it runs the same in a local loop or on a cluster.
It is resumable: rerun it on the same directory and it continues from the last checkpoint
(bit-exact on CPU, since the data stream and the lr are functions of the step).
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from tqdm.auto import tqdm

from curriculens import constants as C
from curriculens.config import canonical_json
from curriculens.device import resolve_device
from curriculens.errors import CurriculensError
from curriculens.io import append_jsonl, read_json, read_jsonl, write_json, write_jsonl
from curriculens.lock import exclusive_lock
from curriculens.seeding import seed_init
from models.checkpoint import (
    list_checkpoints,
    load_checkpoint,
    load_optimizer_state,
    read_meta,
    read_model_config,
    remove_stale_temp_dirs,
    save_checkpoint,
    strip_optimizer_state,
    verify_checkpoint,
)
from models.configs import ModelConfig
from models.registry import build_model, logits_of, output_logits
from training.config import RunConfig
from training.experiment import check_experiment, init_experiment
from training.extraction import check_models as check_extraction_models
from training.extraction import extraction_loss, mlp_forward_hidden, projection
from training.losses import distillation_loss
from training.optim import make_optimizer, set_lr
from training.schedule import check_progressive, save_steps, teacher_step_of
from training.tasks import Task, build_task, to_device

log = logging.getLogger(__name__)

EVAL_BATCH = 1024


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    final_eval: dict
    wall_s: float
    resumed_from: Optional[int] = None
    skipped: bool = False


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model, model_cfg: ModelConfig, task: Task, device: torch.device, amp: bool = False) -> dict:
    """Held-out loss (nats, mean over scored positions) and top-1 accuracy."""
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for batch in task.eval_batches(EVAL_BATCH):
        batch = to_device(batch, device)
        inp, kw = task.model_input(batch, model_cfg)
        with _autocast(device, amp):
            logits = output_logits(model, inp, kw)
        logits, targets = task.scored(logits, batch, model_cfg)
        total_loss += torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum").item()
        correct += (logits.argmax(-1) == targets).sum().item()
        count += targets.numel()
    model.train(was_training)
    out = {"eval_loss": total_loss / max(count, 1), "eval_acc": correct / max(count, 1)}
    out.update(task.extra_eval(model, model_cfg, device))
    return out


class TeacherProvider:
    """Loads teacher checkpoints on demand and keeps the last ``keep`` used ones in memory."""

    def __init__(self, teacher_dir: Path | str, device: torch.device, keep: int = 1) -> None:
        self.dir = Path(teacher_dir)  # checked by check_teacher before anything was written
        self.ckpts = dict(list_checkpoints(self.dir))
        self.steps = sorted(self.ckpts)
        self.save_every = read_json(self.dir / C.RUN_CONFIG_FILE)["checkpoints"]["save_every"]
        self.device = device
        self.keep = max(1, keep)
        self._cache: dict[int, tuple] = {}  # step -> (model, cfg), least recently used first

    def get(self, step: int):
        """``(model, model config)`` of the checkpoint at ``step`` (frozen, eval mode)."""
        hit = self._cache.pop(step, None)
        if hit is None:
            model, cfg, _ = load_checkpoint(self.ckpts[step], device=self.device)
            model.requires_grad_(False)
            hit = (model, cfg)
            while len(self._cache) >= self.keep:
                self._cache.pop(next(iter(self._cache)))
        self._cache[step] = hit
        return hit

    def model_config(self) -> ModelConfig:
        return read_model_config(self.ckpts[self.steps[-1]])


@torch.no_grad()
def teacher_outputs(t_model, t_cfg: ModelConfig, task: Task, batch, device, amp: bool = False, hidden: bool = False):
    """``(scored teacher logits [N, C], last hidden post-ReLU [N, W] or None)`` for one batch;
    ``hidden`` needs an MLP teacher (curriculum extraction)."""
    t_inp, t_kw = task.model_input(batch, t_cfg)
    with _autocast(device, amp):
        if hidden:
            raw, _, h = mlp_forward_hidden(t_model, t_inp)
        else:
            raw, h = output_logits(t_model, t_inp, t_kw), None
    logits, _ = task.scored(raw, batch, t_cfg)
    return logits, h


def resolve_teacher_dir(teacher_dir: str, run_dir: Path) -> Path:
    """A student's ``teacher_dir`` is stored relative to its own run directory when possible
    (so an experiment directory can be moved); absolute paths are used as they are."""
    p = Path(teacher_dir)
    return p if p.is_absolute() else (run_dir / p).resolve()


def check_teacher(cfg: RunConfig, run_dir: Path) -> Optional[Path]:
    """The teacher directory of a distilling student, after checking (reading only) that it is
    a finished run on the same task, distinct from ``run_dir``, whose checkpoints are intact,
    and that a two-shot checkpoint lies in its range. None for teachers and ``ce`` students."""
    dist = cfg.distill
    if cfg.role != C.ROLE_STUDENT or dist.method == C.METHOD_CE:
        return None
    tdir = resolve_teacher_dir(dist.teacher_dir, run_dir)
    if tdir == run_dir.resolve():
        raise CurriculensError(f"a student cannot take its teacher's run directory {tdir}; choose another --name")
    if not (tdir / C.RUN_CONFIG_FILE).is_file():
        raise CurriculensError(f"teacher run not found: {tdir} (no {C.RUN_CONFIG_FILE})")
    tcfg = RunConfig.from_dict(read_json(tdir / C.RUN_CONFIG_FILE))
    if not (tdir / C.DONE_FILE).is_file():
        raise CurriculensError(f"teacher run {tdir} has not finished (no {C.DONE_FILE}); train it first")
    if canonical_json(tcfg.task) != canonical_json(cfg.task):
        raise CurriculensError(f"teacher run {tdir} was trained on another task than this student's")
    ckpts = list_checkpoints(tdir)
    if not ckpts:
        raise CurriculensError(f"teacher run {tdir} has no checkpoints")
    expected = tcfg.model
    for _, path in ckpts:
        verify_checkpoint(path, expected)
    first, last = ckpts[0][0], ckpts[-1][0]
    check_progressive(dist, [s for s, _ in ckpts], read_json(tdir / C.RUN_CONFIG_FILE)["checkpoints"]["save_every"])
    if dist.method == C.METHOD_TWO_SHOT and not first <= dist.two_shot_step <= last:
        raise CurriculensError(
            f"two-shot step {dist.two_shot_step} is outside the teacher's checkpoints ({first}..{last})"
        )
    return tdir


def check_run_dir(cfg: RunConfig, run_dir: Path, force: bool) -> bool:
    """Whether ``run_dir`` already holds this run (False: nothing there yet, or ``force``);
    raises CurriculensError if it holds another config or is not a curriculens run directory
    (which ``force`` never deletes). Reads only."""
    if run_dir.exists() and not run_dir.is_dir():
        raise CurriculensError(f"run directory {run_dir} is a file")
    if not run_dir.is_dir() or not any(p.name != C.RUN_LOCK_FILE for p in run_dir.iterdir()):
        return False
    cfg_path = run_dir / C.RUN_CONFIG_FILE
    if not cfg_path.is_file():
        raise CurriculensError(
            f"{run_dir} exists and is not a curriculens run (no {C.RUN_CONFIG_FILE}); choose another name"
        )
    if force:  # deletes only a curriculens run (the CLI's run directories all lie in EXP/runs/)
        RunConfig.from_dict(read_json(cfg_path))
        return False
    if canonical_json(read_json(cfg_path)) != canonical_json(cfg.to_dict()):
        raise CurriculensError(
            f"{run_dir} holds a run with a different config; pass --force to overwrite it or choose another name"
        )
    return True


def run_lock(run_dir: Path, wait: bool = False):
    """The exclusive lock of one run directory (``curriculens.lock``): one writer at a time."""
    return exclusive_lock(run_dir / C.RUN_LOCK_FILE, f"run directory {run_dir}", wait=wait)


def prepare_run_dir(cfg: RunConfig, run_dir: Path, force: bool) -> None:
    """Inside the run's lock: check ``run_dir`` again (``check_run_dir``), then create it with
    its config.json (``force``: first delete what it holds, except the lock), and remove the
    temporary checkpoint directories a killed writer left."""
    exists = check_run_dir(cfg, run_dir, force)
    if force and run_dir.is_dir():
        for child in run_dir.iterdir():
            if child.name != C.RUN_LOCK_FILE:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    if not exists:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / C.RUN_CONFIG_FILE, cfg.to_dict())
    if remove_stale_temp_dirs(run_dir):
        log.info("removed unfinished checkpoint directories of a killed writer in %s", run_dir)


def finished_result(cfg: RunConfig, run_dir: Path) -> Optional[RunResult]:
    """The RunResult of a finished run, else None. A run whose last checkpoint ends it (its
    final step, or where ``stop_at_acc`` was reached) but that was killed before done.json is
    marked done here, not retrained. Call it inside the run's lock."""
    if (run_dir / C.DONE_FILE).is_file():
        done = read_json(run_dir / C.DONE_FILE)
        _strip_all(cfg, run_dir)  # a kill right after done.json leaves the last optimizer state
        return RunResult(run_dir, done.get("steps", cfg.steps), done.get("final_eval", {}), 0.0, skipped=True)
    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        return None
    step, path = ckpts[-1]
    meta = read_meta(path)
    stopped = bool(cfg.stop_at_acc) and 0 < step < cfg.steps and meta.get("eval_acc", 0.0) >= cfg.stop_at_acc
    if step < cfg.steps and not stopped:
        return None
    truncate_metrics(run_dir / C.METRICS_FILE, step)
    final_eval = write_done(run_dir, step, stopped, meta, meta.get("wall_time_s", 0.0))
    _strip_all(cfg, run_dir)
    log.info("run %s had finished at step %d without %s; marked done", run_dir, step, C.DONE_FILE)
    return RunResult(run_dir, step, final_eval, 0.0, resumed_from=step)


def _strip_all(cfg: RunConfig, run_dir: Path) -> None:
    if not cfg.checkpoints.keep_optimizer:
        for _, path in list_checkpoints(run_dir):
            strip_optimizer_state(path)


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop evaluation rows after ``last_step`` (left by a run that died before its next
    checkpoint) and any torn last line; the file is rewritten only when something goes."""
    if not path.is_file():
        return
    n_lines = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    kept = [r for r in read_jsonl(path) if r.get("step", 0) <= last_step]
    if len(kept) != n_lines:
        write_jsonl(path, kept)


def resumable_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``[(step, dir)]`` of the checkpoints that carry optimizer state (resume points)."""
    return [(s, p) for s, p in list_checkpoints(run_dir) if (p / C.OPTIM_STATE_FILE).is_file()]


def checkpoint_meta(cfg: RunConfig, step: int, teacher_step, wall_s: float, ev: dict) -> dict:
    """The ``meta.json`` fields of a checkpoint (``step`` and ``sha256`` are added on save)."""
    return {
        "samples_seen": step * cfg.batch_size,
        "seed": cfg.seed,
        "role": cfg.role,
        "method": cfg.method,
        "run": cfg.name,
        "teacher_step": teacher_step,
        "wall_time_s": wall_s,
        **{k: v for k, v in ev.items() if k.startswith("eval_")},
    }


def metrics_row(
    cfg: RunConfig, step: int, train_loss, lr: float, teacher_step, wall_s: float, save: bool, ev: dict
) -> dict:
    """One ``metrics.jsonl`` row."""
    return {
        "step": step,
        "samples": step * cfg.batch_size,
        "train_loss": train_loss,
        "lr": lr,
        "teacher_step": teacher_step,
        "wall_s": wall_s,
        "checkpoint": save,
        **ev,
    }


def write_done(run_dir: Path, steps_run: int, stopped: bool, last_row: dict, wall_s: float, **extra) -> dict:
    """Write ``done.json`` (it marks the run finished; drop the optimizer state after it, so a
    kill in between leaves only extra bytes); returns the final eval."""
    final_eval = {k: v for k, v in last_row.items() if k.startswith("eval_")}
    write_json(
        run_dir / C.DONE_FILE,
        {"steps": steps_run, "stopped_at_acc": stopped, "final_eval": final_eval, "wall_s": wall_s, **extra},
    )
    return final_eval


def train_run(
    cfg: RunConfig,
    run_dir: Path | str,
    *,
    force: bool = False,
    progress: bool = False,
    wait: bool = False,
    task: Optional[Task] = None,
) -> RunResult:
    """Train one run (teacher or student) into ``run_dir``; resume if it was interrupted.

    Everything is checked before the first write (task, model, teacher, the experiment's task,
    what ``run_dir`` holds). The run directory is then locked (``run_lock``: a second writer is
    refused, or queues with ``wait``) and checked again inside the lock. A run inside
    ``EXP/runs/`` creates ``EXP/experiment.json`` if needed. Raises ``TrainingDiverged`` (a
    CurriculensError) when the loss stops being finite; the last finite checkpoint is kept.
    ``task``: the task of ``cfg.task`` if the caller has built it (building a PCFG task loads
    its grammar); None = built here.
    """
    run_dir = Path(run_dir)
    t0 = time.time()
    exp_dir = run_dir.parent.parent if run_dir.parent.name == C.RUNS_DIR else None
    # --- validate: nothing is written before this block has passed
    task = task if task is not None else build_task(cfg.task)
    model_cfg = cfg.model
    if hasattr(task, "check_model"):
        task.check_model(model_cfg)
    teacher_dir = check_teacher(cfg, run_dir)
    if teacher_dir is not None and cfg.distill.method == C.METHOD_CURRICULUM_EXTRACTION:
        check_extraction_models(model_cfg, read_model_config(list_checkpoints(teacher_dir)[-1][1]))
    if exp_dir is not None:
        check_experiment(exp_dir, cfg.task)
    check_run_dir(cfg, run_dir, force)
    device = resolve_device(cfg.device)

    with run_lock(run_dir, wait):
        prepare_run_dir(cfg, run_dir, force)  # checks again: another writer may have finished meanwhile
        if exp_dir is not None:
            init_experiment(exp_dir, cfg.task)
        done = finished_result(cfg, run_dir)
        if done is not None:
            log.info("run %s already finished; skipping", run_dir)
            return done
        return _train(cfg, run_dir, task, model_cfg, teacher_dir, device, t0, progress)


def _train(cfg, run_dir, task, model_cfg, teacher_dir, device, t0, progress) -> RunResult:
    seed_init(cfg.seed)
    model = build_model(model_cfg).to(device)
    model.train()
    optimizer = make_optimizer(model.parameters(), cfg.optim)

    teacher = None
    dist = cfg.distill
    extract_target = None  # curriculum extraction: the random projection of the teacher's hidden layer
    if teacher_dir is not None:
        teacher = TeacherProvider(teacher_dir, device)
        if dist.method == C.METHOD_CURRICULUM_EXTRACTION:
            t_model_cfg = teacher.model_config()
            extract_target = projection(dist.extract_seed, t_model_cfg.width, model_cfg.width, device)

    start, resumed_from = 0, None
    ckpts = list_checkpoints(run_dir)
    resumable = resumable_checkpoints(run_dir)
    if resumable:
        step, path = resumable[-1]
        loaded, _, _ = load_checkpoint(path, expected=model_cfg, device=device)
        model.load_state_dict(loaded.state_dict())
        model.train()
        load_optimizer_state(path, optimizer)
        start = resumed_from = step
        log.info("resuming %s from step %d", run_dir, step)
    if not cfg.checkpoints.keep_optimizer:  # a crash can leave optimizer state on older checkpoints
        for step, path in ckpts:
            if step != resumed_from:
                strip_optimizer_state(path)
    metrics_path = run_dir / C.METRICS_FILE
    # resuming keeps the rows up to the checkpoint; a fresh start (no resumable checkpoint) keeps none
    truncate_metrics(metrics_path, start if resumed_from is not None else -1)

    saves = set(save_steps(cfg.steps, cfg.checkpoints.save_every, cfg.checkpoints.log_early))
    eval_every = cfg.checkpoints.eval_every
    last_ckpt: Optional[Path] = ckpts[-1][1] if resumed_from is not None else None
    running, n_running = 0.0, 0
    teacher_step = None

    def save_checkpoint_at(step: int, ev: dict) -> None:
        nonlocal last_ckpt
        meta = checkpoint_meta(cfg, step, teacher_step, time.time() - t0, ev)
        path = save_checkpoint(run_dir / C.CHECKPOINTS_DIR, step, model, model_cfg, meta, optimizer)
        if last_ckpt is not None and last_ckpt != path and not cfg.checkpoints.keep_optimizer:
            strip_optimizer_state(last_ckpt)
        last_ckpt = path

    def checkpoint_and_eval(step: int, save: bool) -> dict:
        nonlocal running, n_running
        ev = evaluate(model, model_cfg, task, device, cfg.amp)
        if not math.isfinite(ev["eval_loss"]):
            raise diverged(cfg, "held-out loss", ev["eval_loss"], step, last_ckpt)
        train_loss = running / n_running if n_running else None
        row = metrics_row(
            cfg, step, train_loss, optimizer.param_groups[0]["lr"], teacher_step, time.time() - t0, save, ev
        )
        running, n_running = 0.0, 0
        # metrics first: a crash while saving leaves a row that the resume truncates away
        append_jsonl(metrics_path, row)
        if save:
            save_checkpoint_at(step, ev)
        return row

    last_row: dict = {}
    stopped_at: Optional[int] = None
    if resumed_from is None:  # a resume from step 0 keeps its step-0 row and checkpoint
        if teacher is not None:
            teacher_step = teacher_step_of(dist, 0, teacher.steps, teacher.save_every)
        last_row = checkpoint_and_eval(0, save=True)

    bar = tqdm(
        total=cfg.steps,
        initial=start,
        disable=not progress,
        desc=cfg.name,
        unit="step",
        dynamic_ncols=True,
        leave=False,
    )
    try:  # the bar is closed (its line cleared) before any error reaches the terminal
        for step in range(start, cfg.steps):
            batch = to_device(task.train_batch(step, cfg.batch_size, cfg.data_seed), device)
            inp, kw = task.model_input(batch, model_cfg)
            teacher_logits = None
            extracting = extract_target is not None and step < dist.extract_steps
            if teacher is not None:
                teacher_step = teacher_step_of(dist, step, teacher.steps, teacher.save_every)
                t_model, t_cfg = teacher.get(teacher_step)
                teacher_logits, t_hidden = teacher_outputs(
                    t_model, t_cfg, task, batch, device, cfg.amp, hidden=extracting
                )
            set_lr(optimizer, step, cfg.steps, cfg.optim)
            if extracting:
                _, pre, _ = mlp_forward_hidden(model, inp)
                loss = extraction_loss(pre, t_hidden @ extract_target)
            else:
                with _autocast(device, cfg.amp):
                    logits, targets = task.scored(logits_of(model(inp, **kw)), batch, model_cfg)
                if dist is not None and teacher_logits is not None:
                    loss = distillation_loss(logits, targets, teacher_logits, alpha=dist.alpha, tau=dist.tau)
                else:
                    loss = distillation_loss(logits, targets)
            loss_value = loss.item()
            if not math.isfinite(loss_value):  # before the update: the weights stay as they were
                raise diverged(cfg, "training loss", loss_value, step, last_ckpt)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            running += loss_value
            n_running += 1
            done_steps = step + 1
            if done_steps in saves or (eval_every and done_steps % eval_every == 0):
                last_row = checkpoint_and_eval(done_steps, save=done_steps in saves)
                bar.set_postfix(acc=f"{last_row['eval_acc']:.3f}", loss=f"{last_row['eval_loss']:.3f}")
                log.debug("%s step %d: %s", cfg.name, done_steps, last_row)
                if cfg.stop_at_acc and last_row["eval_acc"] >= cfg.stop_at_acc:
                    if not last_row["checkpoint"]:
                        save_checkpoint_at(done_steps, last_row)
                    stopped_at = done_steps
                    bar.update(1)
                    break
            bar.update(1)
    finally:
        bar.close()
    wall = time.time() - t0
    steps_run = stopped_at if stopped_at is not None else cfg.steps
    final_eval = write_done(run_dir, steps_run, stopped_at is not None, last_row, wall)
    if last_ckpt is not None and not cfg.checkpoints.keep_optimizer:
        strip_optimizer_state(last_ckpt)
    return RunResult(run_dir, steps_run, final_eval, wall, resumed_from=resumed_from)


class TrainingDiverged(CurriculensError):
    """The loss stopped being finite: the run stops, keeps its checkpoints and is not marked done."""


def diverged(cfg: RunConfig, what: str, value: float, step: int, last_ckpt: Optional[Path]) -> TrainingDiverged:
    kept = (
        f"the last finite checkpoint {last_ckpt.name} is kept" if last_ckpt is not None else "no checkpoint was saved"
    )
    return TrainingDiverged(
        f"run {cfg.name} diverged: {what} is {value} at step {step}; {kept}, no {C.DONE_FILE} written "
        f"(lower the learning rate, now {cfg.optim.lr:g}, and rerun with --force)"
    )
