"""Optimizers and learning-rate schedules from an OptimConfig.

The optimizers are our own SGD / Adam / AdamW steps, not ``torch.optim``: constructing the
first ``torch.optim`` optimizer in a process imports ``torch._dynamo`` (1.3-7 s on these
CPUs, ``benchmarks.bench_optim``), which every training process would pay. Each step is the
arithmetic of ``torch.optim``'s single-tensor implementation (its CPU default) written out op
for op, so the parameters are bit-for-bit the same (tested against ``torch.optim`` for every
optimizer and option of ``OptimConfig``). ``state_dict()`` / ``load_state_dict()`` use
``torch.optim``'s format (``{"state": {index: {...}}, "param_groups": [...]}``, Adam's
``step`` a float32 CPU tensor), so checkpoints written by either resume with either.

Supported: what ``OptimConfig`` exposes: SGD with momentum (dampening 0, no Nesterov) and
weight decay; Adam (L2 added to the gradient) and AdamW (decoupled decay), no amsgrad. On
CUDA the steps are the same single-tensor ops (``torch.optim`` would default to its foreach
kernels there, whose rounding may differ in the last bit).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import torch

from curriculens import constants as C
from training.config import OptimConfig


class _Optimizer:
    """``param_groups`` (dicts with ``params`` and hyperparameters), ``state`` (per parameter
    tensor), ``zero_grad``, ``step``, ``state_dict``, ``load_state_dict``: the parts of
    ``torch.optim.Optimizer`` the training loop and the grid use."""

    def __init__(self, params: Iterable[torch.Tensor], defaults: dict) -> None:
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = [dict(self.defaults, params=params)]
        self.state: defaultdict = defaultdict(dict)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    def step(self) -> None:
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, p.grad, self.state[p], group)

    def _update(self, p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    def plain_lr(self) -> float | None:
        """The lr of this step where the update is plain ``p -= lr * grad``, which a
        hand-written backward may apply itself (``ParityMLP.ce_grads(sgd_lr=...)``); None here
        (SGD without momentum or weight decay says otherwise)."""
        return None

    def state_dict(self) -> dict:
        index, groups, start = {}, [], 0
        for group in self.param_groups:
            ids = list(range(start, start + len(group["params"])))
            index.update({id(p): i for p, i in zip(group["params"], ids, strict=True)})
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
            start += len(ids)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index and s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a ``state_dict()`` (ours or ``torch.optim``'s): hyperparameters from the saved
        groups, state tensors cast to each parameter's dtype and device (``step`` kept as is)."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups) or any(
            len(g["params"]) != len(s["params"]) for g, s in zip(self.param_groups, saved, strict=True)
        ):
            raise ValueError("loaded optimizer state does not match the parameter groups")
        by_id = {}
        for group, sgroup in zip(self.param_groups, saved, strict=True):
            by_id.update(zip(sgroup["params"], group["params"], strict=True))
        self.state = defaultdict(dict)
        for pid, entry in state_dict["state"].items():
            p = by_id.get(int(pid))
            if p is None:
                continue
            self.state[p] = {k: _cast(p, k, v) for k, v in entry.items()}
        self.param_groups = [
            {**{k: v for k, v in s.items() if k != "params"}, "params": g["params"]}
            for g, s in zip(self.param_groups, saved, strict=True)
        ]


def _cast(p: torch.Tensor, key: str, value):
    if not isinstance(value, torch.Tensor) or key == "step":
        return value
    return value.to(dtype=p.dtype, device=p.device) if p.is_floating_point() else value.to(device=p.device)


class SGD(_Optimizer):
    """``torch.optim.SGD(params, lr, momentum, weight_decay)`` (dampening 0, no Nesterov)."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=0,
                weight_decay=weight_decay,
                nesterov=False,
                maximize=False,
                foreach=None,
                differentiable=False,
                fused=None,
            ),
        )

    def step(self) -> None:
        """Plain SGD (no momentum, no weight decay): one ``_foreach_add_`` over the parameters,
        the same ``add_(grad, alpha=-lr)`` per tensor (CPU runs it tensor by tensor) without a
        Python call per parameter; otherwise the general path."""
        plain = [g for g in self.param_groups if g["momentum"] == 0 and g["weight_decay"] == 0]
        if len(plain) != len(self.param_groups):
            return super().step()
        with torch.no_grad():
            for group in plain:
                ps = [p for p in group["params"] if p.grad is not None]
                if ps:
                    torch._foreach_add_(ps, [p.grad for p in ps], alpha=-group["lr"])
        return None

    def plain_lr(self) -> float | None:
        """One group, no momentum, no weight decay: its lr (``_Optimizer.plain_lr``)."""
        if len(self.param_groups) != 1:
            return None
        group = self.param_groups[0]
        return group["lr"] if group["momentum"] == 0 and group["weight_decay"] == 0 else None

    def _update(self, p, grad, state, group) -> None:
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = buf
        p.add_(grad, alpha=-group["lr"])


class Adam(_Optimizer):
    """``torch.optim.Adam`` (``decoupled=False``: L2 added to the gradient) or ``AdamW``
    (``decoupled=True``: the parameter decays by ``lr * weight_decay`` before the update)."""

    def __init__(
        self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, decoupled=False
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=False,
                maximize=False,
                foreach=None,
                capturable=False,
                differentiable=False,
                fused=None,
                decoupled_weight_decay=bool(decoupled),
            ),
        )

    def _update(self, p, grad, state, group) -> None:
        if group.get("amsgrad"):
            raise ValueError("amsgrad is not supported")
        if not state:
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        lr, (beta1, beta2), wd, eps = group["lr"], group["betas"], group["weight_decay"], group["eps"]
        exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        step_t += 1
        if wd != 0:
            if group["decoupled_weight_decay"]:
                p.mul_(1 - lr * wd)
            else:
                grad = grad.add(p, alpha=wd)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = step_t.item()
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(eps)
        p.addcdiv_(exp_avg, denom, value=-step_size)


def make_optimizer(params, cfg: OptimConfig) -> _Optimizer:
    if cfg.name == C.OPTIM_SGD:
        return SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    decoupled = cfg.name == C.OPTIM_ADAMW
    return Adam(
        params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay, decoupled=decoupled
    )


def lr_factor(step: int, total: int, cfg: OptimConfig) -> float:
    """Multiplier of ``cfg.lr`` at ``step`` (0-based update index)."""
    if cfg.schedule == "constant":
        return 1.0
    warm = int(round(cfg.warmup_frac * total))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    cos = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return cfg.min_lr_frac + (1.0 - cfg.min_lr_frac) * cos


def set_lr(optimizer: _Optimizer, step: int, total: int, cfg: OptimConfig) -> float:
    """Set every param group's lr for update ``step``; returns it (stateless, so resume is exact)."""
    lr = cfg.lr * lr_factor(step, total, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
