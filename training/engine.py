"""The one training engine: teachers and every student method, alone or as a grid.

``train_units(units, ...)`` trains the runs ``units`` (one data stream, one teacher at most)
in one loop; ``training.loop.train_run`` calls it with one run, ``training.grid.train_grid``
with many, so a run trained alone and the same run as a grid of one take the same path and end
bit-identical. Each method lives here once:

- the loss: cross-entropy / distillation (``training.losses``; the teacher checkpoint a
  student uses at a step comes from ``training.schedule.teacher_step_of``), and curriculum
  extraction's hidden-layer fit for its first ``extract_steps`` steps (``training.extraction``),
  during which the output layer gets a zero gradient (so Adam counts those steps the same way
  for a student alone and one stacked with others);
- divergence: detected at evaluations, when the mean training loss since the last evaluation
  or the held-out loss is not finite; nothing of that evaluation is written, so the last
  checkpoint stays finite (no host sync per step);
- evaluation, metrics rows, checkpoints, ``stop_at_acc`` and ``done.json``.

Runs of one MLP config and one optimizer config are stacked into one batched model
(``training.stacked.StackedMLPGroup``); a run alone, and every other model, is a
``SingleGroup`` (the model itself). Teacher outputs are computed once per (teacher
checkpoint, step) and shared. Resumes are bit-exact on CPU: the data stream and the lr are
functions of the step, and the optimizer state of a checkpoint is removed only after every run
has saved the next one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from curriculens import constants as C
from curriculens.config import canonical_json
from curriculens.errors import CurriculensError
from curriculens.io import append_jsonl, read_jsonl, write_json, write_jsonl
from curriculens.seeding import seed_init
from models.checkpoint import (
    list_checkpoints,
    load_checkpoint,
    read_optimizer_state,
    save_checkpoint,
    strip_optimizer_state,
)
from models.configs import MLPConfig, ModelConfig
from models.registry import build_model, logits_of, output_logits
from training.config import RunConfig
from training.extraction import extraction_loss, mlp_forward_hidden, projection
from training.losses import distillation_loss, stacked_cross_entropy, target_distribution
from training.optim import set_lr
from training.precision import autocast
from training.schedule import eval_steps, save_steps, teacher_step_of
from training.stacked import SingleGroup, StackedMLPGroup
from training.tasks import Task, to_device
from training.teachers import TeacherOutputs, TeacherProvider, teacher_outputs  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

EVAL_BATCH = 1024
TEACHER_CACHE = 64  # teacher checkpoints kept in memory at most (a grid uses several per step)


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    final_eval: dict
    wall_s: float
    resumed_from: int | None = None
    skipped: bool = False


@torch.no_grad()
def evaluate(
    model, model_cfg: ModelConfig, task: Task, device: torch.device, amp: bool = False, work: list | None = None
) -> dict:
    """Held-out loss (nats, mean over scored positions) and top-1 accuracy. ``work``: a list
    kept across evaluations of one model for its reused forward buffers (``output_logits``)."""
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for batch in task.eval_batches(EVAL_BATCH):
        batch = to_device(batch, device)
        inp, kw = task.model_input(batch, model_cfg)
        with autocast(device, amp):
            logits = output_logits(model, inp, kw, work=work)
        logits, targets = task.scored(logits, batch, model_cfg)
        total_loss += torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum").item()
        correct += (logits.argmax(-1) == targets).sum().item()
        count += targets.numel()
    model.train(was_training)
    out = {"eval_loss": total_loss / max(count, 1), "eval_acc": correct / max(count, 1)}
    out.update(task.extra_eval(model, model_cfg, device))
    return out


# --- run directory files ----------------------------------------------------------------------
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


class TrainingDiverged(CurriculensError):
    """The loss stopped being finite: the run stops, keeps its checkpoints and is not marked done."""


def diverged(cfg: RunConfig, what: str, value: float, step: int, last_ckpt: Path | None) -> TrainingDiverged:
    kept = (
        f"the last finite checkpoint {last_ckpt.name} is kept" if last_ckpt is not None else "no checkpoint was saved"
    )
    return TrainingDiverged(
        f"run {cfg.name} diverged: {what} is {value} at step {step}; {kept}, no {C.DONE_FILE} written "
        f"(lower the learning rate, now {cfg.optim.lr:g}, and rerun with --force)"
    )


# --- the engine -------------------------------------------------------------------------------
@dataclass
class Unit:
    """One run being trained: its config, directory and place in a group."""

    cfg: RunConfig
    run_dir: Path
    group: object = None
    index: int = 0
    teacher_step: int | None = None
    last_ckpt: Path | None = None
    prev_ckpt: Path | None = None
    last_row: dict = field(default_factory=dict)
    stopped_at: int | None = None
    resumed_from: int | None = None


def group_key(cfg: RunConfig) -> str:
    """Runs with the same key stack into one batched model."""
    return canonical_json({"model": cfg.model, "optim": cfg.to_dict()["optim"]})


def _distils(cfg: RunConfig) -> bool:
    return cfg.role == C.ROLE_STUDENT and cfg.distill.method != C.METHOD_CE


def _extracting(cfg: RunConfig, step: int) -> bool:
    d = cfg.distill
    return d is not None and d.method == C.METHOD_CURRICULUM_EXTRACTION and step < d.extract_steps


def _resume_point(units: Sequence[Unit]) -> int | None:
    """The latest step every unit can resume from (None: start afresh)."""
    common = None
    for u in units:
        steps = {step for step, _ in resumable_checkpoints(u.run_dir)}
        common = steps if common is None else common & steps
    return max(common) if common else None


def _build_groups(units: list[Unit], start: int | None, device) -> list:
    """Every run built as it would be alone (seeded init, resumed weights and optimizer state),
    then stacked by ``group_key``: two or more MLPs of one key in a StackedMLPGroup, every other
    run in a SingleGroup."""
    by_key: dict[str, list[Unit]] = {}
    for u in units:
        by_key.setdefault(group_key(u.cfg), []).append(u)
    groups = []
    for members in by_key.values():
        mcfg = members[0].cfg.model
        models, states = [], []
        for u in members:
            seed_init(u.cfg.seed)
            m = build_model(mcfg)
            if start is not None:
                path = dict(resumable_checkpoints(u.run_dir))[start]
                loaded, _, _ = load_checkpoint(path, expected=mcfg)
                m.load_state_dict(loaded.state_dict())
                states.append(read_optimizer_state(path))
                u.resumed_from, u.last_ckpt = start, path
            models.append(m)
        if isinstance(mcfg, MLPConfig) and len(members) > 1:
            made = [(StackedMLPGroup(models, mcfg, members[0].cfg.optim, device), members)]
        else:
            made = [(SingleGroup(m, mcfg, u.cfg.optim, device), [u]) for m, u in zip(models, members, strict=True)]
        for g, mem in made:
            if start is not None:
                g.load_optim_states([states[members.index(u)] for u in mem])
            for i, u in enumerate(mem):
                u.group, u.index = g, i
            groups.append(g)
    return groups


def train_units(
    units: list[Unit],
    task: Task,
    device: torch.device,
    *,
    teacher_dir: Path | None = None,
    t0: float | None = None,
    progress: bool = False,
    desc: str = "",
    done_extra: dict | None = None,
) -> dict[str, RunResult]:
    """Train ``units`` (validated, locked, their directories prepared and not finished) together;
    returns ``{name: RunResult}``. They must share the task, data stream, steps, batch size,
    checkpoint schedule, device and amp (``training.grid.check_grid``); distilling students
    follow the teacher in ``teacher_dir``. Raises TrainingDiverged (module docstring)."""
    t0 = time.time() if t0 is None else t0
    base = units[0].cfg
    n_distil = sum(_distils(u.cfg) for u in units)
    teacher = None
    if teacher_dir is not None and n_distil:
        teacher = TeacherProvider(teacher_dir, device, keep=min(TEACHER_CACHE, n_distil))
    start = _resume_point(units)
    if start is not None:
        log.info("resuming %d run(s) from step %d", len(units), start)
    groups = _build_groups(units, start, device)
    for u in units:
        # resuming keeps the rows up to the checkpoint; a fresh start keeps none
        truncate_metrics(u.run_dir / C.METRICS_FILE, start if start is not None else -1)
        if not u.cfg.checkpoints.keep_optimizer:  # a crash can leave optimizer state on older checkpoints
            for step, path in resumable_checkpoints(u.run_dir):
                if step != start:
                    strip_optimizer_state(path)

    projections: dict[tuple, torch.Tensor] = {}  # curriculum extraction: (seed, width) -> P
    for u in units:
        if teacher is not None and _distils(u.cfg) and u.cfg.distill.method == C.METHOD_CURRICULUM_EXTRACTION:
            key = (u.cfg.distill.extract_seed, u.cfg.model.width)
            if key not in projections:
                projections[key] = projection(key[0], teacher.model_config().width, key[1], device)

    results: dict[str, RunResult] = {}
    active = list(units)
    saves = set(save_steps(base.steps, base.checkpoints.save_every, base.checkpoints.log_early))
    ck = base.checkpoints
    evals = set(eval_steps(base.steps, ck.eval_every, ck.eval_log))
    # the training loss summed since the last evaluation, in float64 (read only at evaluations)
    running = {id(g): torch.zeros(g.size, dtype=torch.float64, device=device) for g in groups}
    n_running = 0
    last_eval = start or 0
    eval_work: dict[int, list] = {}  # unit id -> its evaluation forward buffers
    ce_work: dict[int, dict] = {}  # group id -> ParityMLP.ce_grads buffers

    def pick(u: Unit, step: int) -> int | None:
        if teacher is None or not _distils(u.cfg):
            return None
        return teacher_step_of(u.cfg.distill, step, teacher.steps, teacher.save_every)

    def evaluate_all(step: int, save: bool) -> list[Unit]:
        """Evaluate (and save) every active run; returns those that reached stop_at_acc."""
        nonlocal n_running, last_eval
        losses = {gid: (r / n_running).tolist() if n_running else None for gid, r in running.items()}
        for u in active:  # divergence: before anything of this evaluation is written
            gl = losses[id(u.group)]
            if gl is not None and not math.isfinite(gl[u.index]):
                what = f"training loss (mean of steps {last_eval}..{step - 1})"
                raise diverged(u.cfg, what, gl[u.index], step, u.last_ckpt)
        evals = {}
        for u in active:
            work = eval_work.setdefault(id(u), [])
            evals[id(u)] = ev = evaluate(u.group.module(u.index), u.cfg.model, task, device, u.cfg.amp, work=work)
            if not math.isfinite(ev["eval_loss"]):
                raise diverged(u.cfg, "held-out loss", ev["eval_loss"], step, u.last_ckpt)
        stopped = []
        for u in active:
            ev, gl = evals[id(u)], losses[id(u.group)]
            lr = u.group.optimizer.param_groups[0]["lr"]
            row = metrics_row(u.cfg, step, gl[u.index] if gl else None, lr, u.teacher_step, time.time() - t0, save, ev)
            # metrics first: a crash while saving leaves a row that the resume truncates away
            append_jsonl(u.run_dir / C.METRICS_FILE, row)
            u.last_row = row
            stop = bool(u.cfg.stop_at_acc and ev["eval_acc"] >= u.cfg.stop_at_acc)
            if save or stop:
                meta = checkpoint_meta(u.cfg, step, u.teacher_step, time.time() - t0, ev)
                path = save_checkpoint(
                    u.run_dir / C.CHECKPOINTS_DIR,
                    step,
                    u.group.module(u.index),
                    u.cfg.model,
                    meta,
                    u.group.optim_state(u.index),
                )
                u.prev_ckpt, u.last_ckpt = u.last_ckpt, path
            if stop:
                u.stopped_at = step
                stopped.append(u)
        # only now that every run has saved may the older optimizer states go (kill -9 safe)
        for u in active:
            if not u.cfg.checkpoints.keep_optimizer and u.prev_ckpt is not None and u.prev_ckpt != u.last_ckpt:
                strip_optimizer_state(u.prev_ckpt)
                u.prev_ckpt = None
        for r in running.values():
            r.zero_()
        n_running, last_eval = 0, step
        return stopped

    def finish(u: Unit, steps_run: int) -> None:
        wall = time.time() - t0
        final = write_done(u.run_dir, steps_run, u.stopped_at is not None, u.last_row, wall, **(done_extra or {}))
        if u.last_ckpt is not None and not u.cfg.checkpoints.keep_optimizer:  # after done.json
            strip_optimizer_state(u.last_ckpt)
        results[u.cfg.name] = RunResult(u.run_dir, steps_run, final, wall, resumed_from=u.resumed_from)

    members_of: dict[int, list[Unit]] = {}  # group id -> its active runs, in stack order

    def drop(done: list[Unit]) -> None:
        for u in done:
            finish(u, u.stopped_at)
            active.remove(u)
        for g in list(groups):
            members = sorted((u for u in active if u.group is g), key=lambda u: u.index)
            if not members:
                groups.remove(g)
                running.pop(id(g))
            elif len(members) < g.size:
                keep = [u.index for u in members]
                running[id(g)] = running[id(g)][torch.tensor(keep, device=device)]
                g.keep(keep)
                for i, u in enumerate(members):
                    u.index = i
            if members:
                members_of[id(g)] = members

    drop([])
    if start is None:  # a resume keeps its rows and checkpoints up to the resume step
        for u in active:
            u.teacher_step = pick(u, 0)
        drop(evaluate_all(0, save=True))

    ext_index: dict[tuple, tuple] = {}
    first = start or 0
    t_outs = None
    if teacher is not None:
        t_outs = TeacherOutputs(teacher, task, device, base.amp, base.batch_size, base.data_seed)
    bar = tqdm(
        total=base.steps, initial=first, disable=not progress, desc=desc, unit="step", dynamic_ncols=True, leave=False
    )
    try:  # the bar is closed (its line cleared) before any error reaches the terminal
        for step in range(first, base.steps):
            if not active:
                break
            batch = to_device(task.train_batch(step, base.batch_size, base.data_seed), device)
            need: dict[int, bool] = {}  # the teacher outputs this step needs, each computed once
            for u in active:
                u.teacher_step = pick(u, step)
                if u.teacher_step is not None:
                    need[u.teacher_step] = need.get(u.teacher_step, False) or _extracting(u.cfg, step)
            t_out = _StepOutputs(t_outs, step, batch, need)
            teach = None if t_outs is None else t_outs.at(step, batch)
            total = None  # gradients: set whole by the hand-written steps; autograd's start from none
            for g in groups:
                members = members_of[id(g)]
                set_lr(g.optimizer, step, base.steps, members[0].cfg.optim)
                if isinstance(g, StackedMLPGroup):
                    losses = _stacked_ce_grads(
                        g, members, task, batch, t_out, projections, step, ext_index, device, teach=teach
                    )
                    if losses is None:
                        g.optimizer.zero_grad(set_to_none=True)
                        losses = _stacked_losses(g, members, task, batch, t_out, projections, step, ext_index, device)
                        loss = losses.sum()
                    else:
                        loss = None
                else:  # one run: its scalar loss, backpropagated as it is, or its gradients set directly
                    loss = _single_ce_grads(g, members[0], task, batch, step, device, ce_work)
                    if loss is None:
                        g.optimizer.zero_grad(set_to_none=True)
                        losses = loss = _single_loss(g, members[0], task, batch, t_out, projections, step, device)
                    else:
                        losses, loss = loss, None
                losses = losses.detach() if losses.requires_grad else losses
                running[id(g)].add_(losses)  # [E] (or a scalar) into float64 [E]
                if loss is not None:
                    total = loss if total is None else total + loss
            if total is not None:
                total.backward()
            for g in groups:
                members = members_of[id(g)]
                if isinstance(g, SingleGroup) and _extracting(members[0].cfg, step):
                    g.fill_missing_grads()  # the output layer: zero, as in a stack
                grad_clip = members[0].cfg.optim.grad_clip
                if grad_clip > 0:
                    g.clip(grad_clip)
                g.optimizer.step()
            n_running += 1
            done_steps = step + 1
            if done_steps in saves or done_steps in evals:
                drop(evaluate_all(done_steps, save=done_steps in saves))
                if len(units) == 1 and units[0].last_row:
                    row = units[0].last_row
                    bar.set_postfix(acc=f"{row['eval_acc']:.3f}", loss=f"{row['eval_loss']:.3f}")
                else:
                    bar.set_postfix(active=len(active))
            bar.update(1)
    finally:
        bar.close()
    for u in list(active):
        finish(u, base.steps)
    return results


class _StepOutputs(dict):
    """``{teacher checkpoint: TeacherOutputs.get(...)}`` of one step, each fetched when first
    read: where the teacher's forward is blocked, a stack's targets come per block
    (``StepTeacher``) and never read it. ``need``: checkpoint -> whether a hidden layer is
    needed; those are fetched at once, so a block's first forward of a checkpoint is the
    hidden one that also serves its logits."""

    def __init__(self, outs, step: int, batch, need: dict[int, bool]) -> None:
        super().__init__()
        self._outs, self._step, self._batch, self._need = outs, step, batch, need
        for ts, hidden in need.items():
            if hidden:
                self[ts] = outs.get(ts, step, batch, True)

    def __missing__(self, ts: int):
        out = self[ts] = self._outs.get(ts, self._step, self._batch, self._need[ts])
        return out


def _single_ce_grads(g: SingleGroup, u: Unit, task: Task, batch, step: int, device, work: dict):
    """The plain cross-entropy step of a lone model that has a hand-written backward
    (``ParityMLP.ce_grads``: the same numbers as autograd, bit for bit, in reused buffers):
    sets the gradients and returns the scalar loss; None where it does not apply (distilling,
    extracting, amp on CUDA, keyword inputs, or a task whose ``scored`` changes 2-D logits)."""
    fast = getattr(g.model, "ce_grads", None)
    if fast is None or u.teacher_step is not None or _extracting(u.cfg, step) or (u.cfg.amp and device.type == "cuda"):
        return None
    inp, kw = task.model_input(batch, u.cfg.model)
    if kw or inp.dim() != 2:
        return None
    probe = inp.new_empty(inp.shape[0], u.cfg.model.n_classes, dtype=torch.float32)
    scored, targets = task.scored(probe, batch, u.cfg.model)
    if scored is not probe:
        return None
    return fast(inp, targets, work.setdefault(id(g), {}), sgd_lr=_fused_sgd_lr(g, u))


def _fused_sgd_lr(g: SingleGroup, u: Unit) -> float | None:
    """The lr with which a teacher's plain-SGD step is applied inside its hand-written backward
    (``ParityMLP.ce_grads(sgd_lr=...)``); None: gradients, then the optimizer. Teachers only:
    a student alone must round as the same student in a stack does (grid == alone, bit for
    bit), and a stack's optimizer steps after its gradients."""
    if u.cfg.role != C.ROLE_TEACHER or u.cfg.optim.grad_clip > 0:
        return None
    return g.optimizer.plain_lr()


def _single_loss(g: SingleGroup, u: Unit, task: Task, batch, t_out, projections, step, device) -> torch.Tensor:
    """The (scalar) loss of the one run of a SingleGroup."""
    mcfg, d = u.cfg.model, u.cfg.distill
    inp, kw = task.model_input(batch, mcfg)
    if _extracting(u.cfg, step):
        _, pre, _ = mlp_forward_hidden(g.model, inp)
        target = t_out[u.teacher_step][1] @ projections[(d.extract_seed, mcfg.width)]
        return extraction_loss(pre, target)
    with autocast(device, u.cfg.amp):
        logits, targets = task.scored(logits_of(g.model(inp, **kw)), batch, mcfg)
    if u.teacher_step is None:
        return distillation_loss(logits, targets)
    t_logits = t_out[u.teacher_step][0]
    return distillation_loss(logits, targets, t_logits, alpha=d.alpha, tau=d.tau)


def _target_dists(members, targets: torch.Tensor, n_classes: int, t_out, teach=None) -> torch.Tensor:
    """Every member's target distribution, stacked ``[E, N, C]`` (one per distinct teacher
    checkpoint, alpha and tau). ``teach``: this step's ``training.teachers.StepTeacher``, which
    gives them computed once per block where the teacher's forward is blocked; else they are
    computed here from ``t_out``'s logits."""
    if teach is not None:  # per block, when the teacher's forward is blocked
        spec = tuple((u.teacher_step, u.cfg.distill.alpha, u.cfg.distill.tau) for u in members)
        block = teach.stacked_targets(spec, n_classes)
        if block is not None:
            return block
    memo: dict[tuple, torch.Tensor] = {}
    dists = []
    for u in members:
        d = u.cfg.distill
        key = (u.teacher_step, d.alpha, d.tau)
        if key not in memo:
            t_logits = t_out[u.teacher_step][0] if u.teacher_step is not None else None
            memo[key] = target_distribution(targets, n_classes, t_logits, d.alpha, d.tau)
        dists.append(memo[key])
    return torch.stack(dists)


def _stacked_ce_grads(
    g: StackedMLPGroup, members, task: Task, batch, t_out, projections, step, ext_index, device, teach=None
):
    """The losses ``[E]`` of a stack (``_stacked_losses``' numbers) with the gradients set by
    ``StackedMLPGroup.ce_grads`` (autograd's numbers, bit for bit, without the graph); None
    where that does not apply (amp on CUDA, keyword inputs, a batch without labels ``y``)."""
    if "y" not in batch or (members[0].cfg.amp and device.type == "cuda"):
        return None
    x, kw = task.model_input(batch, g.model_cfg)
    if kw or x.dim() != 2:
        return None
    dists = _target_dists(members, batch["y"], g.model_cfg.n_classes, t_out, teach)
    ext = [u for u in members if _extracting(u.cfg, step)]
    if not ext:
        return g.ce_grads(x, dists)
    idx, mask = _extraction_index(g, ext, ext_index, device)
    return g.ce_grads(x, dists, (idx, mask, _extraction_targets(g, ext, t_out, projections, teach)))


def _extraction_index(g: StackedMLPGroup, ext, ext_index: dict, device) -> tuple:
    """``(idx [X], mask [E])`` of the extracting members, built once per membership (no
    host-to-device copy per step)."""
    key = (g.size, tuple(u.index for u in ext))
    if key not in ext_index:
        idx = torch.tensor(key[1], device=device)
        mask = torch.zeros(g.size, dtype=torch.bool, device=device)
        mask[idx] = True
        ext_index[key] = (idx, mask)
    return ext_index[key]


def _extraction_targets(g: StackedMLPGroup, ext, t_out, projections, teach=None) -> torch.Tensor:
    """``[X, B, W]``: each extracting member's projected teacher hidden layer (per block through
    ``teach``, a ``StepTeacher``, when given)."""
    w = g.model_cfg.width
    out = []
    for u in ext:
        key = (u.cfg.distill.extract_seed, w)
        if teach is None:
            out.append(t_out[u.teacher_step][1] @ projections[key])
        else:
            out.append(teach.projected(u.teacher_step, projections[key], key))
    return torch.stack(out)


def _stacked_losses(g: StackedMLPGroup, members, task, batch, t_out, projections, step, ext_index, device):
    """The losses ``[E]`` of a stack of MLP runs (one batched forward)."""
    mcfg = g.model_cfg
    inp, _ = task.model_input(batch, mcfg)
    with autocast(device, members[0].cfg.amp):
        logits, pre = g.forward(inp)
    targets = batch["y"] if "y" in batch else task.scored(logits[0], batch, mcfg)[1]
    losses = stacked_cross_entropy(logits, _target_dists(members, targets, logits.shape[-1], t_out))
    ext = [u for u in members if _extracting(u.cfg, step)]
    if ext:
        idx, mask = _extraction_index(g, ext, ext_index, device)
        tgt = _extraction_targets(g, ext, t_out, projections)
        full = torch.zeros(g.size, device=device).index_put((idx,), extraction_loss(pre[idx], tgt))
        losses = torch.where(mask, full, losses)
    return losses
