"""Student groups of a grid: E models trained as one.

- ``StackedMLPGroup``: E ``ParityMLP`` students of one config held as stacked parameters
  ``[E, ...]`` (same names and order as ``ParityMLP.parameters()``) and run as batched
  matmuls: the first layer is one GEMM over all students (they share the input), deeper
  layers and the output are ``baddbmm``. One optimizer steps all of them; SGD and Adam act
  elementwise, so each student's update equals its update alone.
- ``SingleGroup``: one model of any kind: a run alone, a Transformer, or the only MLP of its
  config in a grid; run side by side with the others.

Both expose the same small interface to ``training.engine``: ``optimizer``, ``size``,
``module(e)`` (a normal model holding student e's current weights, for evaluation and
checkpoints), ``optim_state(e)`` (student e's optimizer ``state_dict()`` in the single-run
format), ``keep(indices)`` (drop finished students) and ``clip(max_norm)``; a stack's ``forward(x)``
gives logits ``[E, N, C]`` and the last hidden pre-activation ``[E, N, W]``, a single group's
``model`` is called as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.configs import ModelConfig
from models.registry import build_model
from training.config import OptimConfig
from training.optim import make_optimizer


def _slice_state(state: dict, index, n: int) -> dict:
    """Slice every per-student tensor (leading dim ``n``) of an optimizer state entry."""
    out = {}
    for k, v in state.items():
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == n:
            out[k] = v[index].clone()
        else:
            out[k] = v.clone() if isinstance(v, torch.Tensor) else v
    return out


def _clip_rows(params: Sequence[torch.Tensor], max_norm: float, n: int) -> None:
    """Per-student ``clip_grad_norm_``: the norm of student e is taken over its rows ``p[e]``."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    sq = torch.stack([g.reshape(n, -1).float().pow(2).sum(1) for g in grads]).sum(0)  # [E]
    coef = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(n, *([1] * (g.dim() - 1))).to(g.dtype))


class StackedMLPGroup:
    """E MLP students of one model config and one optimizer config."""

    def __init__(self, models: list[nn.Module], model_cfg: ModelConfig, optim_cfg: OptimConfig, device) -> None:
        self.model_cfg, self.optim_cfg, self.device = model_cfg, optim_cfg, device
        self.names = [n for n, _ in models[0].named_parameters()]
        self.params = [
            nn.Parameter(torch.stack([dict(m.named_parameters())[n].detach() for m in models]).to(device))
            for n in self.names
        ]
        self.optimizer = make_optimizer(self.params, optim_cfg)
        self._modules: dict[int, nn.Module] = {}
        self._inv: dict[int, float] = {}  # batch size -> -1/n in float32 (``_minus_inv``)

    @property
    def size(self) -> int:
        return self.params[0].shape[0]

    def load_optim_states(self, states: list[dict]) -> None:
        """Stack per-student optimizer ``state_dict()``s (single-run format) into this group's."""
        stacked = {}
        for pid in states[0]["state"]:
            entry = {}
            for k, v in states[0]["state"][pid].items():
                if isinstance(v, torch.Tensor) and v.dim() > 0:
                    entry[k] = torch.stack([s["state"][pid][k] for s in states])
                else:
                    entry[k] = v
            stacked[pid] = entry
        groups = [dict(g, params=list(range(len(self.params)))) for g in states[0]["param_groups"]]
        self.optimizer.load_state_dict({"state": stacked, "param_groups": groups})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, d_in]`` (shared) -> ``(logits [E, B, C], last hidden pre-activation [E, B, W])``."""
        logits, pre, _ = self._layers(x)
        return logits, pre

    def _layers(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """The forward: ``(logits [E, B, C], last pre-activation [E, B, W], every hidden
        layer's output [E, B, W])`` (``ce_grads`` keeps the outputs for its backward)."""
        e = self.size
        p = self.params
        w0, b0 = p[0], p[1]  # [E, W, d], [E, W]
        if x.dtype != w0.dtype:
            x = x.to(w0.dtype)
        pre = torch.addmm(b0.reshape(-1), x, w0.reshape(-1, w0.shape[-1]).t())  # [B, E*W]
        pre = pre.view(x.shape[0], e, -1).transpose(0, 1)  # [E, B, W]
        h = torch.relu(pre)
        hs = [h]
        for i in range(2, len(p) - 2, 2):
            pre = torch.baddbmm(p[i + 1].unsqueeze(1), h, p[i].transpose(1, 2))
            h = torch.relu(pre)
            hs.append(h)
        logits = torch.baddbmm(p[-1].unsqueeze(1), h, p[-2].transpose(1, 2))
        return logits, pre, hs

    def ce_grads(self, x: torch.Tensor, target_dist: torch.Tensor, extract=None) -> torch.Tensor:
        """``losses = training.losses.stacked_cross_entropy(self.forward(x)[0], target_dist)``
        ``[E]`` and the backward of ``losses.sum()``, hand-written: returns the losses (no
        graph) and sets every stacked parameter's ``.grad`` to what autograd leaves after
        ``zero_grad(set_to_none=True)``, bit for bit (the same ATen ops in the same layouts:
        ``addmm``/``baddbmm`` forward, ``log_softmax`` and its backward, ``bmm``/``mm`` for the
        weight and input gradients, ``threshold_backward``, batch sums for the biases; tested).
        It skips the autograd graph's per-node bookkeeping, which dominates at student sizes.

        ``x [B, d_in]`` (shared), ``target_dist [E, B, C]``. ``extract``: ``(idx [X] int64,
        mask [E] bool, target [X, B, W])`` where students ``idx`` fit their last hidden
        pre-activation to ``target`` instead (curriculum extraction: their loss is
        ``training.extraction.extraction_loss`` and the cross-entropy's gradient is masked out,
        as ``torch.where(mask, extraction losses, cross-entropies)`` backpropagates)."""
        e, p = self.size, self.params
        with torch.no_grad():
            w0, b0 = p[0], p[1]
            if x.dtype != w0.dtype:
                x = x.to(w0.dtype)
            n = x.shape[0]
            logits, pre, hs = self._layers(x)
            if logits.dtype != torch.float32:
                logits = logits.float()
            lsm = torch.log_softmax(logits, dim=-1)
            losses = -(target_dist * lsm).sum(-1).mean(-1)
            d_pre = None
            if extract is None:  # every student's cross-entropy: d(sum of means)/d(lsm) = -target / n
                grad = target_dist * self._minus_inv(n)
            else:  # where(mask, full, losses) and its backward
                g_ce = torch.ones_like(losses)
                idx, mask, target = extract
                diff = pre[idx].float() - target.float()
                full = torch.zeros_like(losses).index_put((idx,), diff.pow(2).mean(dim=(-2, -1)))
                losses = torch.where(mask, full, losses)
                g_ce = torch.where(mask, 0, g_ce)
                g_ext = torch.ones_like(losses)[idx].view(-1, 1, 1).expand(diff.shape) / (
                    diff.shape[-2] * diff.shape[-1]
                )
                d_pre = torch.zeros_like(pre).index_put_((idx,), g_ext * (2.0 * diff.pow(1)), accumulate=True)
                # backward of the cross-entropies' sum: neg, mean(-1), sum(-1), mul by the targets
                grad = g_ce.neg().unsqueeze(-1).expand(e, n) / n
                grad = grad.unsqueeze(-1).expand(lsm.shape) * target_dist
            grad = torch.ops.aten._log_softmax_backward_data(grad, lsm, -1, logits.dtype)
            for i in range(len(p) - 2, 0, -2):  # weight p[i], bias p[i + 1], input hs[i // 2 - 1]
                w, inp = p[i], hs[i // 2 - 1]
                p[i + 1].grad = grad.sum(1)
                p[i].grad = torch.bmm(inp.transpose(1, 2), grad).transpose(1, 2).contiguous()
                grad = torch.ops.aten.threshold_backward(torch.bmm(grad, w), inp, 0)
                if d_pre is not None:  # the last hidden layer's pre-activation: both paths meet
                    grad, d_pre = grad + d_pre, None
            grad = grad.transpose(0, 1).reshape(n, -1)  # [B, E*W], the first layer's pre-activation
            p[0].grad = torch.mm(grad.t(), x).view(w0.shape)
            p[1].grad = grad.sum(0).view(b0.shape)
        return losses

    def _minus_inv(self, n: int) -> float:
        """``-1 / n`` rounded to float32 as autograd's ``ones.neg() / n`` is (a Python float
        holding that float32 value, so multiplying by it rounds once, the same way)."""
        c = self._inv.get(n)
        if c is None:
            c = self._inv[n] = float(torch.ones((), dtype=torch.float32).neg() / n)
        return c

    def module(self, e: int) -> nn.Module:
        """A ``ParityMLP`` holding student e's current weights (cached; eval/checkpoint only)."""
        m = self._modules.get(e)
        if m is None:
            m = self._modules[e] = build_model(self.model_cfg).to(self.device)
        with torch.no_grad():
            for name, param in m.named_parameters():
                param.copy_(self.params[self.names.index(name)][e])
        return m

    def optim_state(self, e: int) -> dict:
        sd = self.optimizer.state_dict()
        n = self.size
        return {
            "state": {pid: _slice_state(s, e, n) for pid, s in sd["state"].items()},
            "param_groups": sd["param_groups"],
        }

    def keep(self, indices: list[int]) -> None:
        """Keep only the students at ``indices`` (in that order), with their optimizer state."""
        n = self.size
        idx = torch.tensor(indices, device=self.params[0].device)
        old_state = {i: self.optimizer.state.get(p, {}) for i, p in enumerate(self.params)}
        self.params = [nn.Parameter(p.detach()[idx].clone()) for p in self.params]
        self.optimizer = make_optimizer(self.params, self.optim_cfg)
        for i, p in enumerate(self.params):
            if old_state[i]:
                self.optimizer.state[p] = _slice_state(old_state[i], idx, n)
        self._modules = {}

    def clip(self, max_norm: float) -> None:
        _clip_rows(self.params, max_norm, self.size)


class SingleGroup:
    """One student of any model kind, trained side by side with the grid's other groups."""

    size = 1

    def __init__(self, model: nn.Module, model_cfg: ModelConfig, optim_cfg: OptimConfig, device) -> None:
        self.model, self.model_cfg = model.to(device), model_cfg
        self.model.train()
        self.optimizer = make_optimizer(self.model.parameters(), optim_cfg)

    def load_optim_states(self, states: list[dict]) -> None:
        self.optimizer.load_state_dict(states[0])

    def module(self, e: int) -> nn.Module:
        return self.model

    def optim_state(self, e: int) -> dict:
        return self.optimizer.state_dict()

    def keep(self, indices: list[int]) -> None:
        if indices != [0]:
            raise ValueError("a single group keeps its one student or is dropped")

    def clip(self, max_norm: float) -> None:
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)

    def fill_missing_grads(self) -> None:
        """Give every parameter without a gradient a zero one (as a stack's rows get), so the
        optimizer steps it (Adam counts the step) exactly as it would a stacked student's."""
        for p in self.model.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
