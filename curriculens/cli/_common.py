"""Flags shared by several subcommands, and how they map onto configs."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

from curriculens import constants as C
from curriculens.config import dataclass_default
from curriculens.errors import CurriculensError
from curriculens.io import read_json
from models.configs import BertConfig, GPT2Config, MLPConfig, ModelConfig, model_config_from_dict
from training.config import ADAM_DEFAULTS, CheckpointConfig, OptimConfig, RunConfig, default_optim, default_optimizer

_MODEL_CLASSES = {"mlp": MLPConfig, "gpt2": GPT2Config, "bert": BertConfig}

# flag -> (model kinds it applies to, config field)
_MODEL_FLAGS = {
    "width": (("mlp",), "width"),
    "depth": (("mlp",), "depth"),
    "n_layer": (("gpt2",), "n_layer"),
    "n_head": (("gpt2",), "n_head"),
    "head_dim": (("gpt2",), "head_dim"),
    "n_positions": (("gpt2",), "n_positions"),
    "num_hidden_layers": (("bert",), "num_hidden_layers"),
    "num_attention_heads": (("bert",), "num_attention_heads"),
    "hidden_size": (("bert",), "hidden_size"),
    "intermediate_size": (("bert",), "intermediate_size"),
    "dropout": (("gpt2", "bert"), "dropout"),
}


def default_help(cls, name: str, text: str) -> str:
    """Flag help quoting the default of field ``name`` of dataclass ``cls`` (one default per setting)."""
    return f"{text} (default {dataclass_default(cls, name)})"


def add_device(p: argparse.ArgumentParser, default: str | None = C.DEVICE_AUTO) -> None:
    """``--device``; ``default=None`` lets a ``--config`` file's device stand when the flag is absent."""
    where = C.DEVICE_AUTO if default else f"--config's device, else {C.DEVICE_AUTO}"
    p.add_argument(
        "--device",
        choices=C.DEVICES,
        default=default,
        help=f"where to compute (default: {where}; auto = cuda if available)",
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (defaults: the task's default for this role)")
    g.add_argument(
        "--model", choices=tuple(_MODEL_CLASSES), default=None, help="model family: mlp (parity), gpt2, bert"
    )
    g.add_argument(
        "--model-json", default=None, help="full model config as JSON (string or file); other model flags override it"
    )
    g.add_argument("--width", type=int, help="MLP hidden width")
    g.add_argument("--depth", type=int, help="MLP hidden layers")
    g.add_argument("--n-layer", dest="n_layer", type=int, help="GPT-2 layers")
    g.add_argument("--n-head", dest="n_head", type=int, help="GPT-2 attention heads")
    g.add_argument("--head-dim", dest="head_dim", type=int, help="GPT-2 width per head (width = heads x head_dim)")
    g.add_argument("--n-positions", dest="n_positions", type=int, help="GPT-2 learned positions")
    g.add_argument("--layers", dest="num_hidden_layers", type=int, help="BERT layers")
    g.add_argument("--heads", dest="num_attention_heads", type=int, help="BERT attention heads")
    g.add_argument("--hidden", dest="hidden_size", type=int, help="BERT hidden size")
    g.add_argument("--intermediate", dest="intermediate_size", type=int, help="BERT MLP size")
    g.add_argument("--dropout", type=float, help=default_help(GPT2Config, "dropout", "Transformer dropout"))


def _per_family(name: str) -> str:
    """``0.05 sgd, 0.001 adam/adamw``: an OptimConfig field's default per optimizer family."""
    sgd = dataclass_default(OptimConfig, name)
    return f"{sgd} sgd, {ADAM_DEFAULTS.get(name, sgd)} adam/adamw"


def add_optim_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimisation")
    g.add_argument(
        "--optimizer",
        choices=C.OPTIMIZERS,
        help=f"default: {default_optimizer('mlp')} for the MLP, {default_optimizer('gpt2')} for Transformers",
    )
    g.add_argument("--lr", type=float, help=f"peak learning rate (default: {_per_family('lr')})")
    g.add_argument("--weight-decay", type=float, help=default_help(OptimConfig, "weight_decay", "weight decay"))
    g.add_argument("--schedule", choices=C.LR_SCHEDULES, help=f"lr schedule (default: {_per_family('schedule')})")
    g.add_argument(
        "--warmup-frac",
        type=float,
        help=f"linear warmup as a fraction of the run (cosine only; default: {_per_family('warmup_frac')})",
    )
    g.add_argument("--grad-clip", type=float, help=default_help(OptimConfig, "grad_clip", "max grad norm, 0 = off"))
    g.add_argument("--batch-size", type=int, help=default_help(RunConfig, "batch_size", "examples per step"))
    g.add_argument("--steps", type=int, help=default_help(RunConfig, "steps", "optimizer steps"))
    g.add_argument(
        "--seed", type=int, help=default_help(RunConfig, "seed", "seed of the model init and the training stream")
    )
    g.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    c = p.add_argument_group("checkpoints")
    c.add_argument(
        "--save-every", type=int, help=default_help(CheckpointConfig, "save_every", "save a checkpoint every N steps")
    )
    c.add_argument(
        "--log-early",
        type=int,
        help=default_help(CheckpointConfig, "log_early", "extra log-spaced checkpoints before the first save"),
    )
    c.add_argument(
        "--eval-every", type=int, help="evaluate every N steps between checkpoints (default: only at checkpoints)"
    )
    c.add_argument(
        "--eval-log",
        type=int,
        help=default_help(CheckpointConfig, "eval_log", "also evaluate at N log-spaced steps in [1, steps], 0 = off"),
    )


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


def model_from_args(args: argparse.Namespace, default: ModelConfig) -> ModelConfig:
    """Start from ``--model-json`` or ``default`` (or the kind's defaults), then apply size flags."""
    base = load_json_arg(args.model_json, "--model-json")
    cfg = model_config_from_dict(base) if base else default
    if args.model and args.model != cfg.kind:
        cfg = _MODEL_CLASSES[args.model]()
        if isinstance(default, MLPConfig) and isinstance(cfg, MLPConfig):
            cfg = replace(cfg, d_in=default.d_in)
    changes = {}
    for flag, (kinds, field) in _MODEL_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if cfg.kind not in kinds:
            raise CurriculensError(f"--{flag.replace('_', '-')} does not apply to a {cfg.kind} model")
        changes[field] = value
    return replace(cfg, **changes) if changes else cfg


def optim_from_args(args: argparse.Namespace, kind: str, base: OptimConfig | None = None) -> OptimConfig:
    """``base`` (or the model kind's default optimizer, ``training.config.default_optim``) with
    the optimisation flags on top; a new ``--optimizer`` starts from its own defaults."""
    name = args.optimizer or (base.name if base else default_optimizer(kind))
    cfg = base if base is not None and base.name == name else default_optim(name)
    changes = {
        k: v
        for k, v in {
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "schedule": args.schedule,
            "warmup_frac": args.warmup_frac,
            "grad_clip": args.grad_clip,
        }.items()
        if v is not None
    }
    return replace(cfg, **changes)


def checkpoints_from_args(args: argparse.Namespace, base: CheckpointConfig | None = None) -> CheckpointConfig:
    cfg = base or CheckpointConfig()
    changes = {
        k: v
        for k, v in {
            "save_every": args.save_every,
            "log_early": args.log_early,
            "eval_every": args.eval_every,
            "eval_log": args.eval_log,
        }.items()
        if v is not None
    }
    return replace(cfg, **changes)


def describe(obj) -> str:
    return json.dumps(asdict(obj) if hasattr(obj, "__dataclass_fields__") else obj, sort_keys=True)


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
