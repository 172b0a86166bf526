"""The teacher side of distillation: checkpoints loaded on demand and their outputs per step.

- ``TeacherProvider``: the teacher run's checkpoints, loaded when first used, the last few kept.
- ``teacher_outputs``: one batch's scored teacher logits (and, for curriculum extraction, the
  last hidden layer).
- ``TeacherOutputs``: what the engine asks for, ``(checkpoint, step) -> outputs``. On CPU, for
  an MLP teacher on 2-D inputs whose scored logits are its raw logits (parity), it runs one
  forward for ``TEACHER_BLOCK`` consecutive steps' batches ([block * B, d_in]) and hands out
  each step's rows: the GEMM runs nearer the machine's peak on more rows and the per-forward
  overhead is paid once per block. Blocks are aligned to multiples of ``TEACHER_BLOCK`` steps
  whatever steps a run covers (a resumed or shorter run computes the same block calls), so a
  row's numbers never depend on where a run starts or stops.
  A two-class MLP teacher there gives its margin (``ParityMLP.class1_margin``: the hidden
  layer 2000 units at a time, no output layer) as the logits ``[0, margin]``: the same soft
  targets as its logits up to float32 rounding (softmax is shift-invariant; the argmax of
  ``[0, m]`` is class 1 iff m > 0), at 0.67-0.80x the forward's time. Since 2026-12-06 the
  students of such teachers train on these targets (docs/grids.md). Elsewhere (CUDA,
  Transformers, masked positions) one step at a time from the logits.
"""

from __future__ import annotations

from pathlib import Path

import torch

from curriculens import constants as C
from curriculens.io import read_json
from models.checkpoint import list_checkpoints, load_checkpoint, read_model_config
from models.configs import ModelConfig
from models.registry import output_logits
from training.extraction import mlp_forward_hidden
from training.losses import mix_targets, teacher_targets
from training.precision import autocast
from training.tasks import Task, to_device

# steps per blocked teacher forward (divides the parity task's 64-step data chunk). 16 rather
# than 8: each block's forwards empty the caches the students' small steps run from, so half as
# many blocks cost them less (the same numbers; docs/grids.md, "Third round").
TEACHER_BLOCK = 16


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
def teacher_outputs(
    t_model, t_cfg: ModelConfig, task: Task, batch, device, amp: bool = False, hidden: bool = False, work=None
):
    """``(scored teacher logits [N, C], last hidden post-ReLU [N, W] or None)`` for one batch;
    ``hidden`` needs an MLP teacher (curriculum extraction). ``work``: reused forward buffers
    (``output_logits``; the logits returned are fresh, the hidden layer is a view of ``work``,
    so a hidden forward needs a list of its own)."""
    t_inp, t_kw = task.model_input(batch, t_cfg)
    with autocast(device, amp):
        if hidden and work is not None and not t_kw and hasattr(t_model, "output_logits"):
            raw, h = t_model.output_logits(t_inp, work=work, hidden=True)  # h: a view of work
        elif hidden:
            raw, _, h = mlp_forward_hidden(t_model, t_inp)
        else:
            raw, h = output_logits(t_model, t_inp, t_kw, work=work), None
    logits, _ = task.scored(raw, batch, t_cfg)
    return logits, h


class TeacherOutputs:
    """``get(ts, step, batch, hidden)`` -> ``teacher_outputs`` of checkpoint ``ts`` on the
    engine's batch of ``step`` (``batch``), blocked as the module docstring says; the engine's
    steps run in order, from any step.
    Everything computed for a block (its batch, each checkpoint's forward, soft targets, a
    stack's targets, extraction's ``h @ P``) lives in one cache that is emptied when the steps
    leave the block. Returned tensors are views valid until then (a hidden layer: until its
    checkpoint's next hidden forward)."""

    def __init__(
        self,
        provider: TeacherProvider,
        task: Task,
        device,
        amp: bool,
        batch_size: int,
        data_seed: int,
    ) -> None:
        self.provider, self.task, self.device, self.amp = provider, task, device, amp
        self.batch_size, self.data_seed = batch_size, data_seed
        self._work: dict = {}  # forward buffers: one list for logits-only forwards, one per hidden checkpoint
        self._blockable: bool | None = None
        self._margin = False  # two-class MLP teacher, blocked: logits [0, class1_margin]
        self._hidden: dict = {}  # checkpoint -> hidden-layer buffer of margin forwards
        self._span = (0, 0)  # [start, stop) of the block whose results ``_cache`` holds
        # "batch": {"x", "y"}; ("fwd", ts, hidden): (logits, hidden or None); ("soft", ts, tau);
        # ("proj", ts, key); ("targets", spec): each over the block's rows
        self._cache: dict = {}

    def get(self, ts: int, step: int, batch, hidden: bool):
        t_model, t_cfg = self.provider.get(ts)
        if not self._can_block(t_model, t_cfg, batch):
            work = self._work.setdefault(ts if hidden else None, [])
            return teacher_outputs(t_model, t_cfg, self.task, batch, self.device, self.amp, hidden=hidden, work=work)
        cache = self._block(step)
        hit = cache.get(("fwd", ts, True))  # a hidden forward serves a logits-only request too
        if hit is None and not hidden:
            hit = cache.get(("fwd", ts, False))
        if hit is None:
            x = self._block_batch(step)["x"]
            with torch.no_grad():
                if self._margin:  # logits [0, margin]: the same soft targets, no output layer
                    h = self._hidden_buffer(ts, x.shape[0], t_cfg) if hidden else None
                    margin = t_model.class1_margin(x, work=self._work.setdefault("margin", []), hidden_out=h)
                    hit = (torch.stack([torch.zeros_like(margin), margin], dim=1), h)
                else:
                    work = self._work.setdefault(ts if hidden else None, [])
                    logits, h = t_model.output_logits(x, work=work, hidden=True)
                    hit = (logits, h if hidden else None)
            cache[("fwd", ts, hidden)] = hit
        return self._rows(hit[0], step), (self._rows(hit[1], step) if hidden else None)

    def soft_targets(self, ts: int, step: int, batch, tau: float) -> torch.Tensor:
        """``losses.teacher_targets(logits, tau)`` [B, C] of ``get(ts, step, batch, ...)``'s
        logits, computed once per block where the forward is blocked (a softmax is row by row,
        so the rows are the same numbers)."""
        cache, key = self._block(step), ("soft", ts, tau)
        if key not in cache:
            logits, _ = self.get(ts, step, batch, False)
            if not self._blockable:
                return teacher_targets(logits, tau)
            fwd = cache.get(("fwd", ts, True)) or cache[("fwd", ts, False)]
            cache[key] = teacher_targets(fwd[0], tau)
        return self._rows(cache[key], step)

    def projected(self, ts: int, step: int, batch, proj: torch.Tensor, key) -> torch.Tensor:
        """``hidden @ proj`` [B, W_s] of ``get(ts, step, batch, True)`` (curriculum extraction's
        target), one product per block where the forward is blocked (row by row the same
        numbers); ``key`` names ``proj`` (its seed and width)."""
        cache, ckey = self._block(step), ("proj", ts, key)
        if ckey not in cache:
            _, h = self.get(ts, step, batch, True)
            if not self._blockable:
                return h @ proj
            cache[ckey] = cache[("fwd", ts, True)][1] @ proj
        return self._rows(cache[ckey], step)

    def stacked_targets(self, step: int, batch, spec: tuple, n_classes: int) -> torch.Tensor | None:
        """``[E, B, C]``: the target distributions of a grid stack whose members want
        ``spec = ((teacher step or None, alpha, tau), ...)`` (``losses.target_distribution``),
        built once per block and membership and sliced per step (every op is row by row, so
        the rows are the same numbers); None where the forward is not blocked or the batches
        carry no labels ``y`` (the caller builds them per step)."""
        cache, key = self._block(step), ("targets", spec)
        if key not in cache:
            if self._blockable is False or "y" not in batch:
                return None
            for ts, _, tau in spec:  # each teacher's soft targets first (decides _blockable on first use)
                if ts is not None:
                    self.soft_targets(ts, step, batch, tau)
            if not self._blockable:
                return None
            y = self._block_batch(step)["y"]
            memo: dict[tuple, torch.Tensor] = {}
            for ts, alpha, tau in spec:
                if (ts, alpha, tau) not in memo:
                    p_t = None if ts is None else cache[("soft", ts, tau)]
                    memo[(ts, alpha, tau)] = mix_targets(y, n_classes, p_t, alpha)
            cache[key] = torch.stack([memo[k] for k in spec])
        return self._rows(cache[key], step, dim=1)

    def at(self, step: int, batch) -> StepTeacher:
        """This step's view: what the engine's loss helpers ask of the teacher."""
        return StepTeacher(self, step, batch)

    def _block(self, step: int) -> dict:
        """The cache of ``step``'s block: the ``TEACHER_BLOCK`` steps from the multiple of it
        at or below ``step``, whatever steps the run covers (a new block empties it)."""
        if not self._span[0] <= step < self._span[1]:
            start = step - step % TEACHER_BLOCK
            self._span = (start, start + TEACHER_BLOCK)
            self._cache = {}
        return self._cache

    def _hidden_buffer(self, ts: int, rows: int, t_cfg: ModelConfig) -> torch.Tensor:
        """Checkpoint ``ts``'s [rows, width] hidden-layer buffer for margin forwards (one per
        checkpoint, reused block after block; a view of it is valid until its next use)."""
        buf = self._hidden.get(ts)
        if buf is None or buf.shape[0] < rows:
            buf = self._hidden[ts] = torch.empty(rows, t_cfg.width, device=self.device)
        return buf[:rows]

    def _block_batch(self, step: int) -> dict:
        """The batches of the block's steps concatenated (``x``, and ``y`` when the task's
        batches have it), built once per block: one block's inputs serve every checkpoint."""
        cache = self._block(step)
        if "batch" not in cache:
            parts = [self.task.train_batch(s, self.batch_size, self.data_seed) for s in range(*self._span)]
            cat = {k: torch.cat([b[k] for b in parts]) for k in ("x", "y") if k in parts[0]}
            cache["batch"] = to_device(cat, self.device)
        return cache["batch"]

    def _rows(self, block: torch.Tensor, step: int, dim: int = 0) -> torch.Tensor:
        """``step``'s rows of a block result (rows along ``dim``)."""
        return block.narrow(dim, (step - self._span[0]) * self.batch_size, self.batch_size)

    def _can_block(self, t_model, t_cfg: ModelConfig, batch) -> bool:
        """CPU, float32, an ``output_logits`` with hidden rows, 2-D inputs, scored logits = raw."""
        if self._blockable is None:
            ok = self.device.type == "cpu" and not self.amp and hasattr(t_model, "output_logits")
            self._blockable = ok and self.task.scores_raw_rows(batch, t_cfg)
            self._margin = self._blockable and self.task.scores_by_margin(t_model, batch, t_cfg)
        return self._blockable


class StepTeacher:
    """``TeacherOutputs`` at one step: ``projected(ts, proj, key)`` (``projected``) and
    ``stacked_targets(spec, n_classes)``."""

    __slots__ = ("batch", "outs", "step")

    def __init__(self, outs: TeacherOutputs, step: int, batch) -> None:
        self.outs, self.step, self.batch = outs, step, batch

    def projected(self, ts: int, proj: torch.Tensor, key) -> torch.Tensor:
        return self.outs.projected(ts, self.step, self.batch, proj, key)

    def stacked_targets(self, spec: tuple, n_classes: int) -> torch.Tensor | None:
        return self.outs.stacked_targets(self.step, self.batch, spec, n_classes)
