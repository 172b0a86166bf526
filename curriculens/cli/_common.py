"""Flags shared by several subcommands, and how they map onto configs."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from pathlib import Path

from curriculens import constants as C
from curriculens.cli.fields import add_config_args, apply_args, config_changes, given_flags
from curriculens.config import dataclass_default
from curriculens.errors import CurriculensError
from curriculens.io import read_json
from models.configs import BertConfig, GPT2Config, MLPConfig, ModelConfig, model_config_from_dict
from training.config import ADAM_DEFAULTS, CheckpointConfig, OptimConfig, RunConfig, default_optim, default_optimizer

_MODEL_CLASSES = {"mlp": MLPConfig, "gpt2": GPT2Config, "bert": BertConfig}


def add_device(p: argparse.ArgumentParser, default: str | None = C.DEVICE_AUTO) -> None:
    """``--device``; ``default=None`` lets a ``--config`` file's device stand when the flag is absent."""
    where = C.DEVICE_AUTO if default else f"--config's device, else {C.DEVICE_AUTO}"
    p.add_argument(
        "--device",
        choices=C.DEVICES,
        default=default,
        help=f"where to compute (default: {where}; auto = cuda if available)",
    )


def add_model_args(p: argparse.ArgumentParser, command: str) -> None:
    """``--model``, ``--model-json`` and every model config's size flags (``curriculens.cli.fields``)."""
    g = p.add_argument_group("model (defaults: the task's default for this role)")
    g.add_argument(
        "--model", choices=tuple(_MODEL_CLASSES), default=None, help="model family: mlp (parity), gpt2, bert"
    )
    g.add_argument(
        "--model-json", default=None, help="full model config as JSON (string or file); other model flags override it"
    )
    add_config_args(g, *_MODEL_CLASSES.values(), command=command)


def _per_family(name: str) -> str:
    """``0.05 sgd, 0.001 adam/adamw``: an OptimConfig field's default per optimizer family."""
    sgd = dataclass_default(OptimConfig, name)
    return f"{sgd} sgd, {ADAM_DEFAULTS.get(name, sgd)} adam/adamw"


def add_optim_args(p: argparse.ArgumentParser, command: str) -> None:
    """The optimiser, run-size and checkpoint flags of a training command; a student
    (``distill``) takes the teacher's values for those the flags and ``--config`` leave out."""
    g = p.add_argument_group("optimisation")
    family = f"{default_optimizer('mlp')} for the MLP, {default_optimizer('gpt2')} for Transformers"
    defaults = {"name": family, **{k: _per_family(k) for k in ("lr", "schedule", "warmup_frac")}}
    if command == "distill":
        teacher = ("name", "lr", "weight_decay", "schedule", "warmup_frac", "grad_clip", "steps", "batch_size")
        teacher += tuple(f.name for f in fields(CheckpointConfig))
        defaults = dict.fromkeys(teacher, "the teacher's")
    add_config_args(g, OptimConfig, command=command, defaults=defaults)
    add_config_args(g, RunConfig, command=command, defaults=defaults)
    add_config_args(p.add_argument_group("checkpoints"), CheckpointConfig, command=command, defaults=defaults)


def load_json_arg(value: str | None, what: str) -> dict | None:
    """A JSON object given inline or as a file path."""
    if value is None:
        return None
    if Path(value).is_file():
        data = read_json(value)
    else:
        try:
            data = json.loads(value)
        except json.JSONDecodeError:
            raise CurriculensError(f"{what} is neither a file nor valid JSON: {value[:60]}") from None
    if not isinstance(data, dict):
        raise CurriculensError(f"{what} must be a JSON object")
    return data


def model_from_args(args: argparse.Namespace, default: ModelConfig, command: str) -> ModelConfig:
    """Start from ``--model-json`` or ``default`` (or the kind's defaults), then apply size flags;
    a size flag of another model family is refused."""
    base = load_json_arg(args.model_json, "--model-json")
    cfg = model_config_from_dict(base) if base else default
    if args.model and args.model != cfg.kind:
        cfg = _MODEL_CLASSES[args.model]()
        if isinstance(default, MLPConfig) and isinstance(cfg, MLPConfig):
            cfg = replace(cfg, d_in=default.d_in)
    own = given_flags(type(cfg), args, command)
    for cls in _MODEL_CLASSES.values():
        stray = set(given_flags(cls, args, command).values()) - set(own.values())
        if stray:
            raise CurriculensError(f"{min(stray)} does not apply to a {cfg.kind} model")
    return apply_args(cfg, args, command)


def optim_from_args(args: argparse.Namespace, kind: str, base: OptimConfig | None, command: str) -> OptimConfig:
    """``base`` (or the model kind's default optimizer, ``training.config.default_optim``) with
    the optimisation flags on top; a new ``--optimizer`` starts from its own defaults."""
    changes = config_changes(OptimConfig, args, command)
    name = changes.pop("name", None) or (base.name if base else default_optimizer(kind))
    cfg = base if base is not None and base.name == name else default_optim(name)
    return replace(cfg, **changes)


def add_executor_args(p: argparse.ArgumentParser, block: str = "") -> None:
    """``--executor local|ray`` and the Ray flags (docs/cluster.md); ``block``: the help of
    ``--ray-block K`` (what a Ray task holds at most), for commands that have it."""
    g = p.add_argument_group("executor (where the work units run; docs/cluster.md)")
    from curriculens.executor import EXECUTORS

    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: this process (default); ray: Ray tasks (needs the ray extra)",
    )
    g.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="default: start a private local Ray instance; auto: join the cluster running on this machine; HOST:PORT or ray://HOST:PORT",
    )
    g.add_argument("--ray-cpus", type=float, default=None, metavar="N", help="CPUs Ray reserves per task (default 1)")
    g.add_argument(
        "--ray-gpus",
        type=float,
        default=None,
        metavar="F",
        help="GPUs Ray reserves per task; fractions share a GPU (default 0)",
    )
    if block:
        g.add_argument("--ray-block", type=int, default=None, metavar="K", help=block)


def executor_from_args(args: argparse.Namespace):
    """The ExecutorConfig of ``add_executor_args``' flags (Ray itself is not imported here)."""
    from curriculens.executor import ExecutorConfig, require_ray

    ray_flags = {
        "address": args.ray_address,
        "cpus_per_task": args.ray_cpus,
        "gpus_per_task": args.ray_gpus,
        "block": getattr(args, "ray_block", None),
    }
    given = {k: v for k, v in ray_flags.items() if v is not None}
    if given and args.executor != "ray":
        raise CurriculensError("--ray-* flags need --executor ray")
    cfg = ExecutorConfig(kind=args.executor, **given)
    if cfg.is_ray:
        require_ray()
    return cfg
