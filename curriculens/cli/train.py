"""``curriculens train-teacher`` and ``curriculens distill``."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from curriculens import constants as C
from curriculens.cli._common import (
    add_device,
    add_model_args,
    add_optim_args,
    load_json_arg,
    model_from_args,
    optim_from_args,
)
from curriculens.cli.fields import add_config_args, apply_args, config_changes
from curriculens.config import to_dict
from curriculens.errors import CurriculensError
from curriculens.io import read_json
from training.experiment import is_experiment, read_run

if TYPE_CHECKING:
    from training.config import RunConfig


def _parse_set(items: list[str] | None) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise CurriculensError(f"--task-set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def merge_task(base: dict | None, args: argparse.Namespace) -> dict:
    """The task config dict: ``--task-json``, else the base config's task (when ``--task``
    names the same task or is not given), else ``{"name": --task}``; then the explicit task
    flags and ``--task-set`` on top. Not yet normalised (see ``teacher_config_from_args``)."""
    given = load_json_arg(args.task_json, "--task-json")
    name = args.task or (given or base or {}).get("name") or "parity"
    if given is not None:
        task = dict(given)
        task.setdefault("name", name)
    elif base is not None and base.get("name") == name:
        task = dict(base)
    else:
        task = {"name": name}
    from training.tasks.configs import ParityConfig

    parity = config_changes(ParityConfig, args, args.command)
    if parity and task["name"] != "parity":
        raise CurriculensError(
            f"--{next(iter(parity)).replace('_', '-')} applies to the parity task only, not {task['name']}"
        )
    if "k" in parity and "support" not in parity:
        task.pop("support", None)  # a new k with the base's support of another size: the first k again
    task.update(parity)
    task.update(_parse_set(args.task_set))
    return absolute_paths(task)


def absolute_paths(task: dict) -> dict:
    """The text task's corpus and tokenizer paths made absolute (its runs are read from anywhere)."""
    if task.get("name") == "text":
        for key in ("corpus", "tokenizer"):
            if isinstance(task.get(key), str) and task[key]:
                task[key] = str(Path(task[key]).absolute())
    return task


def _common_flags(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--config", help="a run config.json to start from (flags given here override it)")
    p.add_argument("--name", help="run name inside EXP/runs/: one path component of letters, digits, '.', '_', '-'")
    p.add_argument(
        "--force",
        action="store_true",
        help="delete and retrain a run that exists with another config (default: resume or skip it; refuse a different config)",
    )
    p.add_argument(
        "--wait", action="store_true", help="if another process is writing this run, wait for it instead of refusing"
    )
    add_device(p, default=None)
    add_model_args(p, command)
    add_optim_args(p, command)


def register(sub) -> None:
    from training.config import DistillConfig
    from training.tasks.configs import ParityConfig

    p = sub.add_parser(
        "train-teacher",
        help="train a teacher with cross-entropy, saving checkpoints",
        description="Train a teacher (cross-entropy) into EXP/runs/<name>/, saving checkpoints and metrics. "
        "Rerunning the same command resumes an interrupted run and skips a finished one. "
        "Example: curriculens train-teacher --out exp/parity --n 40 --k 4 --width 4000 --steps 8000 --save-every 500",
    )
    p.add_argument("--out", default="experiment", help="experiment directory (created if needed; default ./experiment)")
    p.add_argument("--task", default=None, help="task name: parity or pcfg (default: --config's task, else parity)")
    p.add_argument("--task-json", help="full task config as JSON (string or file)")
    p.add_argument(
        "--task-set", action="append", metavar="KEY=VALUE", help="set one task config field (JSON value), repeatable"
    )
    add_config_args(p.add_argument_group("sparse parity"), ParityConfig, command="train-teacher")
    _common_flags(p, "train-teacher")
    p.set_defaults(func=run_teacher)

    d = sub.add_parser(
        "distill",
        help=f"train a student: {', '.join(C.METHODS)}",
        description="Train a student beside its teacher (EXP/runs/<method>-s<seed>/). "
        "Rerunning the same command resumes an interrupted run and skips a finished one. "
        "Example: curriculens distill --teacher exp/parity --method progressive --width 50 --steps 12000",
    )
    d.add_argument("--teacher", required=True, help="the teacher run directory, or the experiment directory holding it")
    d.add_argument("--method", required=True, help=" | ".join(C.METHODS))
    add_config_args(d, DistillConfig, command="distill")
    _common_flags(d, "distill")
    d.set_defaults(func=run_distill)


def _base_config(args) -> RunConfig | None:
    from training.config import RunConfig

    return RunConfig.from_dict(read_json(args.config)) if args.config else None


def _training_fields(args, base: RunConfig, model, kind_changed: bool) -> dict:
    """The fields every run takes from (base, flags): model, optim, checkpoints, sizes, device."""
    from training.config import RunConfig

    return dict(
        model=model,
        optim=optim_from_args(args, model.kind, None if kind_changed else base.optim, args.command),
        checkpoints=apply_args(base.checkpoints, args, args.command),
        device=args.device or base.device,
        **config_changes(RunConfig, args, args.command),
    )


def _follow_task(model, task_obj):
    """An MLP's input width follows the parity task's n (a base config's n may have changed)."""
    from models.configs import MLPConfig

    default = task_obj.default_model("teacher")
    if isinstance(model, MLPConfig) and isinstance(default, MLPConfig) and model.d_in != default.d_in:
        return replace(model, d_in=default.d_in)
    return model


def teacher_config_from_args(args: argparse.Namespace) -> RunConfig:
    """The teacher's RunConfig: the ``--config`` file (if any) with every explicit flag on top.
    Validated (configs check themselves on construction); writes nothing."""
    return _teacher_config_and_task(args)[0]


def _teacher_config_and_task(args: argparse.Namespace):
    """``(teacher RunConfig, its built task)``: the task is built once, here (``train_run`` takes it)."""
    from training.config import RunConfig
    from training.tasks import build_task, task_config_from_dict

    base = _base_config(args)
    task = task_config_from_dict(merge_task(to_dict(base.task) if base else None, args))
    built = build_task(task)
    if base is not None and base.task.name == task.name:
        default_model = _follow_task(base.model, built)
    else:
        default_model = built.default_model("teacher")
    model = model_from_args(args, default_model, args.command)
    if base is None:
        base = RunConfig(name="teacher", role=C.ROLE_TEACHER, task=task, model=model)
    kind_changed = model.kind != base.model.kind
    cfg = replace(
        base,
        name=args.name or base.name,
        role=C.ROLE_TEACHER,
        task=task,
        distill=None,
        **_training_fields(args, base, model, kind_changed),
    )
    return cfg, built


def run_teacher(args) -> int:
    from training.loop import train_run

    cfg, task = _teacher_config_and_task(args)
    run_dir = Path(args.out) / C.RUNS_DIR / cfg.name
    print(f"teacher -> {run_dir}")
    result = train_run(cfg, run_dir, force=args.force, progress=not args.quiet, wait=args.wait, task=task)
    _report(result)
    return 0


def _teacher_dir(path: str) -> Path:
    p = Path(path)
    if is_experiment(p):
        from training.experiment import teacher_run

        t = teacher_run(p)
        if t is None:
            raise CurriculensError(f"experiment {p} has no teacher run; train one with `curriculens train-teacher`")
        return t.path
    if not (p / C.RUN_CONFIG_FILE).is_file():
        raise CurriculensError(f"--teacher {p} is neither a teacher run nor an experiment directory")
    return p


def student_config_from_args(args: argparse.Namespace, teacher_dir: Path) -> RunConfig:
    """A student's RunConfig: the ``--config`` file (if any; else the teacher's task, optimiser,
    checkpoints and budget with the task's student model) with every explicit flag on top.
    Validated; writes nothing. Naming and the teacher's relative path: ``student_distill``."""
    return _student_config_and_task(args, teacher_dir)[0]


def _student_config_and_task(args: argparse.Namespace, teacher_dir: Path):
    """``(student RunConfig, its built task)``."""
    from training.experiment import student_distill
    from training.plans.base import default_student_model
    from training.tasks import build_task

    teacher = read_run(teacher_dir).config
    if args.method not in C.METHODS:
        raise CurriculensError(f"unknown method {args.method!r} (one of {', '.join(C.METHODS)})")
    if args.interval is not None and args.interval < 1:
        raise CurriculensError(f"--interval must be >= 1 step, got {args.interval}")
    base = _base_config(args)
    built = build_task(teacher.task)
    default_model = base.model if base is not None else default_student_model(built, teacher.model)
    model = model_from_args(args, default_model, args.command)
    from training.config import DistillConfig

    given = config_changes(DistillConfig, args, args.command)
    seed = args.seed if args.seed is not None else (base.seed if base else 0)
    name, dist = student_distill(
        args.method, seed, teacher_dir, base.distill if base is not None else None, args.name or "", **given
    )
    if base is None:
        base = replace(teacher, name=name, role=C.ROLE_STUDENT, distill=dist, model=model)
    kind_changed = model.kind != base.model.kind
    cfg = replace(
        base,
        name=name,
        role=C.ROLE_STUDENT,
        task=teacher.task,
        distill=dist,
        **_training_fields(args, base, model, kind_changed),
    )
    return cfg, built


def run_distill(args) -> int:
    from training.loop import train_run

    teacher_dir = _teacher_dir(args.teacher)
    cfg, task = _student_config_and_task(args, teacher_dir)
    run_dir = teacher_dir.parent / cfg.name
    print(f"{cfg.method} student -> {run_dir}")
    result = train_run(cfg, run_dir, force=args.force, progress=not args.quiet, wait=args.wait, task=task)
    _report(result)
    return 0


def _report(result) -> None:
    ev = ", ".join(f"{k}={v:.4f}" for k, v in result.final_eval.items() if isinstance(v, float))
    state = "already finished" if result.skipped else f"{result.steps} steps in {result.wall_s:.1f}s"
    if result.resumed_from is not None:
        state += f" (resumed from step {result.resumed_from})"
    print(f"  {state}; {ev}")
