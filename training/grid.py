"""Student grids: many students of one teacher trained together, each written as a normal run.

``train_grid(cfgs, runs_dir)`` trains the student RunConfigs ``cfgs`` (one teacher, one data
stream) in one loop:

- every student sees the same training batches (``cfg.data_seed`` is the same for all; a
  student's ``seed`` sets its initialisation only);
- the teacher's outputs are computed once per (teacher checkpoint, step) and shared by every
  student that uses that checkpoint at that step;
- MLP students of one model and optimizer config are stacked into one batched model
  (``training.stacked.StackedMLPGroup``); other models run side by side (``SingleGroup``);
- losses are accumulated on the device and read only at evaluations (no host sync per step);
- each student is a normal run directory (config.json, metrics.jsonl, checkpoints/, done.json)
  written with the single-run loop's own pieces, so ``train_run(cfg)`` on the same config gives
  the same student (to float rounding: batched matmuls may round differently), and probe,
  summary, dashboard and export see no difference;
- resumable after kill -9, bit-exact on CPU: the optimizer state of a checkpoint is removed only
  after every student has saved the next one, and a rerun resumes all unfinished students from
  the latest step at which all of them have a resumable checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from tqdm.auto import tqdm

from curriculens import constants as C
from curriculens.config import canonical_json
from curriculens.device import resolve_device
from curriculens.errors import CurriculensError
from curriculens.io import append_jsonl
from curriculens.seeding import seed_init
from models.checkpoint import load_checkpoint, read_optimizer_state, save_checkpoint, strip_optimizer_state
from models.configs import MLPConfig
from models.registry import build_model
from training.config import RunConfig
from training.experiment import check_experiment, init_experiment
from training.extraction import check_models as check_extraction_models
from training.extraction import extraction_loss, projection
from training.loop import (
    RunResult,
    TeacherProvider,
    check_run_dir,
    check_teacher,
    checkpoint_meta,
    diverged,
    evaluate,
    finished_result,
    metrics_row,
    prepare_run_dir,
    resumable_checkpoints,
    run_lock,
    teacher_outputs,
    truncate_metrics,
    write_done,
)
from training.losses import stacked_cross_entropy, target_distribution
from training.optim import set_lr
from training.schedule import save_steps, teacher_step_of
from training.stacked import SingleGroup, StackedMLPGroup
from training.tasks import build_task, to_device

log = logging.getLogger(__name__)

# fields every student of a grid must share (they run in one loop over one data stream)
SHARED_FIELDS = ("task", "steps", "batch_size", "checkpoints", "device", "amp")


def check_grid(cfgs: list[RunConfig]) -> None:
    """Raise CurriculensError unless ``cfgs`` can be trained as one grid."""
    if not cfgs:
        raise CurriculensError("the grid has no students")
    names = [c.name for c in cfgs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise CurriculensError(f"two students of the grid have the same run name: {', '.join(dup)}")
    first = cfgs[0].to_dict()
    for cfg in cfgs:  # each config validated itself on construction
        if cfg.role != C.ROLE_STUDENT:
            raise CurriculensError(f"grid run {cfg.name} is not a student")
        d = cfg.to_dict()
        for key in SHARED_FIELDS:
            if canonical_json(d[key]) != canonical_json(first[key]):
                raise CurriculensError(f"grid students must share {key}; {cfg.name} differs from {cfgs[0].name}")
        if cfg.data_seed != cfgs[0].data_seed:
            raise CurriculensError(f"grid students share one data stream; {cfg.name} has stream seed {cfg.data_seed}")
    dirs = {c.distill.teacher_dir for c in cfgs if c.distill.method != C.METHOD_CE}
    if len(dirs) > 1:
        raise CurriculensError(f"grid students must follow one teacher, got {sorted(dirs)}")


@dataclass
class _Student:
    cfg: RunConfig
    run_dir: Path
    group: object = None
    index: int = 0
    teacher_step: Optional[int] = None
    last_ckpt: Optional[Path] = None
    prev_ckpt: Optional[Path] = None
    last_row: dict = field(default_factory=dict)
    stopped_at: Optional[int] = None
    resumed_from: Optional[int] = None


def _group_key(cfg: RunConfig) -> str:
    return canonical_json({"model": cfg.model, "optim": cfg.to_dict()["optim"]})


def train_grid(
    cfgs: list[RunConfig], runs_dir: Path | str, *, force: bool = False, progress: bool = False, wait: bool = False
) -> list[RunResult]:
    """Train the student configs ``cfgs`` together into ``runs_dir/<name>/``; returns one
    RunResult per config (in order). Finished students are skipped; rerunning resumes.
    Everything is checked before the first write; every student's run directory is then
    locked (``training.loop.run_lock``; ``wait`` queues behind another writer)."""
    check_grid(cfgs)
    runs_dir = Path(runs_dir)
    t0 = time.time()
    base = cfgs[0]
    device = resolve_device(base.device)
    task = build_task(base.task)
    teacher = None
    first = next((c for c in cfgs if c.distill.method != C.METHOD_CE), None)
    if first is not None:
        teacher = TeacherProvider(check_teacher(first, runs_dir / first.name), device, keep=64)
    model_cfgs = {c.name: c.model for c in cfgs}
    for c in cfgs:
        if hasattr(task, "check_model"):
            task.check_model(model_cfgs[c.name])
        if c.distill.method == C.METHOD_CURRICULUM_EXTRACTION:
            check_extraction_models(model_cfgs[c.name], teacher.model_config())
    exp_dir = runs_dir.parent if runs_dir.name == C.RUNS_DIR else None
    if exp_dir is not None:
        check_experiment(exp_dir, base.task)
    for c in cfgs:
        check_run_dir(c, runs_dir / c.name, force)
    with contextlib.ExitStack() as locks:
        for c in cfgs:
            locks.enter_context(run_lock(runs_dir / c.name, wait))
        if exp_dir is not None:
            init_experiment(exp_dir, base.task)
        return _train_grid(cfgs, runs_dir, force, progress, t0, base, device, task, teacher, model_cfgs)


def _train_grid(cfgs, runs_dir, force, progress, t0, base, device, task, teacher, model_cfgs) -> list[RunResult]:
    results: dict[str, RunResult] = {}
    students: list[_Student] = []
    for c in cfgs:  # everything is validated and locked: from here on the grid writes
        run_dir = runs_dir / c.name
        prepare_run_dir(c, run_dir, force)
        done = finished_result(c, run_dir)
        if done is not None:
            results[c.name] = done
        else:
            students.append(_Student(c, run_dir))
    if not students:
        return [results[c.name] for c in cfgs]

    # the common resume point: the latest step every unfinished student can resume from
    common = None
    for s in students:
        steps = {step for step, _ in resumable_checkpoints(s.run_dir)}
        common = steps if common is None else common & steps
    start = max(common) if common else 0
    resuming = bool(common)
    if resuming:
        log.info("resuming grid of %d students from step %d", len(students), start)

    # build every student exactly as train_run would (seeded init), then stack by config
    by_key: dict[str, list[_Student]] = {}
    for s in students:
        by_key.setdefault(_group_key(s.cfg), []).append(s)
    groups = []
    for members in by_key.values():
        mcfg = members[0].cfg.model
        models, states = [], []
        for s in members:
            seed_init(s.cfg.seed)
            m = build_model(mcfg)
            if resuming:
                path = dict(resumable_checkpoints(s.run_dir))[start]
                loaded, _, _ = load_checkpoint(path, expected=mcfg)
                m.load_state_dict(loaded.state_dict())
                states.append(read_optimizer_state(path))
                s.resumed_from, s.last_ckpt = start, path
            models.append(m)
        if isinstance(mcfg, MLPConfig):
            made = [(StackedMLPGroup(models, mcfg, members[0].cfg.optim, device), members)]
        else:
            made = [(SingleGroup(m, mcfg, s.cfg.optim, device), [s]) for m, s in zip(models, members, strict=True)]
        for g, mem in made:
            if resuming and any(st["state"] for st in states):
                g.load_optim_states([states[members.index(s)] for s in mem])
            for i, s in enumerate(mem):
                s.group, s.index = g, i
            groups.append(g)
    for s in students:
        truncate_metrics(s.run_dir / C.METRICS_FILE, start if resuming else -1)
        if not base.checkpoints.keep_optimizer:
            for step, path in resumable_checkpoints(s.run_dir):
                if step != start or not resuming:
                    strip_optimizer_state(path)

    projections: dict[tuple, torch.Tensor] = {}
    if teacher is not None:
        t_width = getattr(teacher.model_config(), "width", None)
        for s in students:
            if s.cfg.distill.method == C.METHOD_CURRICULUM_EXTRACTION:
                key = (s.cfg.distill.extract_seed, model_cfgs[s.cfg.name].width)
                if key not in projections:
                    projections[key] = projection(key[0], t_width, key[1], device)

    saves = set(save_steps(base.steps, base.checkpoints.save_every, base.checkpoints.log_early))
    eval_every = base.checkpoints.eval_every
    running = {id(g): torch.zeros(g.size, device=device) for g in groups}
    n_running = 0

    def pick(s: _Student, step: int) -> Optional[int]:
        if teacher is None or s.cfg.distill.method == C.METHOD_CE:
            return None
        return teacher_step_of(s.cfg.distill, step, teacher.steps, teacher.save_every)

    def evaluate_all(step: int, save: bool) -> list[_Student]:
        """Evaluate (and save) every active student; returns those that reached stop_at_acc."""
        nonlocal n_running
        losses = {gid: (r / n_running).tolist() if n_running else None for gid, r in running.items()}
        stopped = []
        for s in active:
            model = s.group.module(s.index)
            ev = evaluate(model, s.cfg.model, task, device, s.cfg.amp)
            if not math.isfinite(ev["eval_loss"]):  # before its checkpoint: the last saved one stays finite
                raise diverged(s.cfg, "held-out loss", ev["eval_loss"], step, s.last_ckpt)
            gl = losses[id(s.group)]
            lr = s.group.optimizer.param_groups[0]["lr"]
            row = metrics_row(s.cfg, step, gl[s.index] if gl else None, lr, s.teacher_step, time.time() - t0, save, ev)
            append_jsonl(s.run_dir / C.METRICS_FILE, row)
            s.last_row = row
            stop = bool(s.cfg.stop_at_acc and ev["eval_acc"] >= s.cfg.stop_at_acc)
            if save or stop:
                meta = checkpoint_meta(s.cfg, step, s.teacher_step, time.time() - t0, ev)
                path = save_checkpoint(
                    s.run_dir / C.CHECKPOINTS_DIR, step, model, s.group.model_cfg, meta, s.group.optim_state(s.index)
                )
                s.prev_ckpt, s.last_ckpt = s.last_ckpt, path
            if stop:
                s.stopped_at = step
                stopped.append(s)
        # only now that every student has saved may the older optimizer states go (kill -9 safe)
        if not base.checkpoints.keep_optimizer:
            for s in active:
                if s.prev_ckpt is not None and s.prev_ckpt != s.last_ckpt:
                    strip_optimizer_state(s.prev_ckpt)
                    s.prev_ckpt = None
        for gid in running:
            running[gid].zero_()
        n_running = 0
        return stopped

    def finish(s: _Student, steps_run: int) -> None:
        wall = time.time() - t0
        final = write_done(s.run_dir, steps_run, s.stopped_at is not None, s.last_row, wall, grid=len(cfgs))
        if s.last_ckpt is not None and not s.cfg.checkpoints.keep_optimizer:  # after done.json
            strip_optimizer_state(s.last_ckpt)
        results[s.cfg.name] = RunResult(s.run_dir, steps_run, final, wall, resumed_from=s.resumed_from)

    def drop(done: list[_Student]) -> None:
        nonlocal groups
        for s in done:
            finish(s, s.stopped_at)
            active.remove(s)
        for g in list(groups):
            members = sorted((s for s in active if s.group is g), key=lambda s: s.index)
            if not members:
                groups.remove(g)
                running.pop(id(g))
            elif len(members) < g.size:
                keep = [s.index for s in members]
                running[id(g)] = running[id(g)][torch.tensor(keep, device=device)]
                g.keep(keep)
                for i, s in enumerate(members):
                    s.index = i

    active = list(students)
    if not resuming:
        for s in active:
            s.teacher_step = pick(s, 0)
        drop(evaluate_all(0, save=True))

    ext_index: dict[tuple, tuple] = {}
    bar = tqdm(
        total=base.steps, initial=start, disable=not progress, desc=f"grid x{len(students)}", unit="step", leave=False
    )
    amp = base.amp
    for step in range(start, base.steps):
        if not active:
            break
        batch = to_device(task.train_batch(step, base.batch_size, base.data_seed), device)
        # the teacher outputs this step needs, each computed once
        need: dict[int, bool] = {}
        for s in active:
            s.teacher_step = pick(s, step)
            if s.teacher_step is not None:
                ext = s.cfg.distill.method == C.METHOD_CURRICULUM_EXTRACTION and step < s.cfg.distill.extract_steps
                need[s.teacher_step] = need.get(s.teacher_step, False) or ext
        t_out = {}
        for ts, hidden in need.items():
            t_model, t_cfg = teacher.get(ts)
            t_out[ts] = teacher_outputs(t_model, t_cfg, task, batch, device, amp, hidden=hidden)
        total = None
        for g in groups:
            members = sorted((s for s in active if s.group is g), key=lambda s: s.index)
            set_lr(g.optimizer, step, members[0].cfg.steps, members[0].cfg.optim)
            mcfg = g.model_cfg
            inp, kw = task.model_input(batch, mcfg)
            if isinstance(g, StackedMLPGroup):
                logits, pre = g.forward(inp)
                targets = batch["y"] if "y" in batch else task.scored(logits[0], batch, mcfg)[1]
            else:
                raw = g.run(inp, kw)
                lg, targets = task.scored(raw, batch, mcfg)
                logits, pre = lg.unsqueeze(0), None
            n_classes = logits.shape[-1]
            memo: dict[tuple, torch.Tensor] = {}
            dists = []
            for s in members:
                d = s.cfg.distill
                key = (s.teacher_step, d.alpha, d.tau)
                if key not in memo:
                    t_logits = t_out[s.teacher_step][0] if s.teacher_step is not None else None
                    memo[key] = target_distribution(targets, n_classes, t_logits, d.alpha, d.tau)
                dists.append(memo[key])
            losses = stacked_cross_entropy(logits, torch.stack(dists))
            ext = [
                s
                for s in members
                if s.cfg.distill.method == C.METHOD_CURRICULUM_EXTRACTION and step < s.cfg.distill.extract_steps
            ]
            if ext:
                key = (g.size, tuple(s.index for s in ext))
                if key not in ext_index:  # built once per membership, not per step (no host-to-device copy per step)
                    idx = torch.tensor(key[1], device=device)
                    mask = torch.zeros(g.size, dtype=torch.bool, device=device)
                    mask[idx] = True
                    ext_index[key] = (idx, mask)
                idx, mask = ext_index[key]
                tgt = torch.stack(
                    [t_out[s.teacher_step][1] @ projections[(s.cfg.distill.extract_seed, mcfg.width)] for s in ext]
                )
                ext_losses = extraction_loss(pre[idx], tgt)
                full = torch.zeros(g.size, device=device).index_put((idx,), ext_losses)
                losses = torch.where(mask, full, losses)
            running[id(g)] += losses.detach()
            total = losses.sum() if total is None else total + losses.sum()
        for g in groups:
            g.optimizer.zero_grad(set_to_none=True)
        total.backward()
        for g in groups:
            grad_clip = next(s for s in active if s.group is g).cfg.optim.grad_clip
            if grad_clip > 0:
                g.clip(grad_clip)
            g.optimizer.step()
        n_running += 1
        done_steps = step + 1
        if done_steps in saves or (eval_every and done_steps % eval_every == 0):
            drop(evaluate_all(done_steps, save=done_steps in saves))
            bar.set_postfix(active=len(active))
        bar.update(1)
    bar.close()
    for s in list(active):
        finish(s, base.steps)
    return [results[c.name] for c in cfgs]
