"""Our SGD / Adam / AdamW steps against torch.optim, bit for bit, and off torch._dynamo."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch

from training.config import OptimConfig
from training.optim import make_optimizer, set_lr

CASES = [
    OptimConfig(name="sgd", lr=0.05),
    OptimConfig(name="sgd", lr=0.05, momentum=0.9),
    OptimConfig(name="sgd", lr=0.05, momentum=0.9, weight_decay=0.01),
    OptimConfig(name="sgd", lr=0.05, weight_decay=0.01),
    OptimConfig(name="adam", lr=3e-3),
    OptimConfig(name="adam", lr=3e-3, weight_decay=0.01, betas=(0.8, 0.99), eps=1e-6),
    OptimConfig(name="adamw", lr=3e-3),
    OptimConfig(name="adamw", lr=3e-3, weight_decay=0.1, schedule="cosine", warmup_frac=0.2, min_lr_frac=0.1),
]


def _torch_optimizer(params, cfg: OptimConfig):
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    kind = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
    return kind(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))


def _train(model, opt, cfg: OptimConfig, steps: int, start: int = 0, total: int = 12) -> None:
    for step in range(start, start + steps):
        g = torch.Generator().manual_seed(step)
        x, y = torch.randn(16, 12, generator=g), torch.randint(0, 3, (16,), generator=g)
        set_lr(opt, step, total, cfg)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: f"{c.name}-m{c.momentum}-wd{c.weight_decay}-{c.schedule}")
def test_steps_equal_torch_optim_bit_for_bit(cfg):
    ours_m, ref_m = _model(), _model()
    ours, ref = make_optimizer(ours_m.parameters(), cfg), _torch_optimizer(ref_m.parameters(), cfg)
    _train(ours_m, ours, cfg, 12)
    _train(ref_m, ref, cfg, 12)
    assert _same(ours_m, ref_m)
    a, b = ours.state_dict(), ref.state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for pid in a["state"]:
        assert a["state"][pid].keys() == b["state"][pid].keys()
        for k, v in a["state"][pid].items():
            assert v.dtype == b["state"][pid][k].dtype and torch.equal(v, b["state"][pid][k]), (pid, k)


@pytest.mark.parametrize("cfg", [CASES[2], CASES[5], CASES[7]], ids=["sgd", "adam", "adamw"])
def test_resume_across_implementations(cfg):
    """A state_dict of torch.optim resumes ours (and ours torch.optim's) to the same parameters."""
    full_m = _model()
    full = _torch_optimizer(full_m.parameters(), cfg)
    _train(full_m, full, cfg, 10)
    for first, second in ((_torch_optimizer, make_optimizer), (make_optimizer, _torch_optimizer)):
        m = _model()
        opt = first(m.parameters(), cfg)
        _train(m, opt, cfg, 5)
        state = opt.state_dict()
        opt2 = second(m.parameters(), cfg)
        opt2.load_state_dict(state)
        _train(m, opt2, cfg, 5, start=5)
        assert _same(m, full_m), (first.__name__, second.__name__)


def test_training_step_does_not_import_dynamo():
    code = (
        "import sys, torch\n"
        "from training.config import OptimConfig\n"
        "from training.optim import make_optimizer\n"
        "m = torch.nn.Linear(4, 2)\n"
        "for name in ('sgd', 'adam', 'adamw'):\n"
        "    opt = make_optimizer(m.parameters(), OptimConfig(name=name, momentum=0.9 if name == 'sgd' else 0.0))\n"
        "    m(torch.randn(3, 4)).sum().backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()\n"
        "    opt.load_state_dict(opt.state_dict())\n"
        "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.gpu
@pytest.mark.parametrize("cfg", [CASES[2], CASES[5], CASES[7]], ids=["sgd", "adam", "adamw"])
def test_cuda_steps_equal_torch_optim_single_tensor(cfg):
    """On CUDA the same single-tensor ops as torch.optim with foreach=False (its CUDA default,
    foreach, may round differently)."""
    assert torch.cuda.is_available()
    ours_m, ref_m = _model().cuda(), _model().cuda()
    ours = make_optimizer(ours_m.parameters(), cfg)
    if cfg.name == "sgd":
        ref = torch.optim.SGD(
            ref_m.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, foreach=False
        )
    else:
        kind = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
        ref = kind(
            ref_m.parameters(),
            lr=cfg.lr,
            betas=tuple(cfg.betas),
            eps=cfg.eps,
            weight_decay=cfg.weight_decay,
            foreach=False,
        )
    for model, opt in ((ours_m, ours), (ref_m, ref)):
        for step in range(8):
            g = torch.Generator().manual_seed(step)
            x, y = torch.randn(16, 12, generator=g).cuda(), torch.randint(0, 3, (16,), generator=g).cuda()
            set_lr(opt, step, 8, cfg)
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    assert _same(ours_m, ref_m)


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: f"{c.name}-m{c.momentum}-wd{c.weight_decay}-{c.schedule}")
def test_plain_lr_names_only_plain_sgd_and_follows_the_schedule(cfg):
    """``SGD.plain_lr()``: this step's lr where the update is ``p -= lr * grad`` (what a
    hand-written backward may apply itself), None for momentum, weight decay or Adam."""
    sched = dataclasses.replace(cfg, schedule="cosine", warmup_frac=0.5)
    opt = make_optimizer(_model().parameters(), sched)
    plain = cfg.name == "sgd" and cfg.momentum == 0 and cfg.weight_decay == 0
    got = getattr(opt, "plain_lr", lambda: None)()
    assert got == (cfg.lr if plain else None)
    lr = set_lr(opt, 0, 10, sched)
    assert lr < cfg.lr and getattr(opt, "plain_lr", lambda: None)() == (lr if plain else None)
