"""``curriculens train-teacher`` and ``curriculens distill``."""

from __future__ import annotations

import argparse
import os
import json
from dataclasses import asdict, replace
from pathlib import Path

from curriculens import constants as C
from curriculens.commands._common import (
    add_device,
    add_model_args,
    add_optim_args,
    checkpoints_from_args,
    load_json_arg,
    model_from_args,
    optim_from_args,
)
from curriculens.errors import CurriculensError
from curriculens.io import read_json
from training.config import DistillConfig, RunConfig
from training.experiment import init_experiment, is_experiment, read_run, student_run_name
from training.tasks import build_task


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


def _task_from_args(args: argparse.Namespace) -> dict:
    task = load_json_arg(args.task_json, "--task-json") or {"name": args.task}
    if task.get("name") == "parity":
        for flag, key in (("n", "n"), ("k", "k"), ("n_eval", "n_eval"), ("data_seed", "data_seed")):
            if getattr(args, flag) is not None:
                task[key] = getattr(args, flag)
        if args.support:
            try:
                task["support"] = [int(s) for s in args.support.split(",")]
            except ValueError:
                raise CurriculensError(f"--support must be comma-separated integers, got {args.support!r}") from None
    task.update(_parse_set(args.task_set))
    return task


def _common_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="a run config.json to start from (flags given here override it)")
    p.add_argument("--name", help="run name inside EXP/runs/")
    p.add_argument("--force", action="store_true", help="delete and retrain a run that exists (default: resume it)")
    add_device(p)
    add_model_args(p)
    add_optim_args(p)


def register(sub) -> None:
    p = sub.add_parser(
        "train-teacher",
        help="train a teacher with cross-entropy, saving checkpoints",
        description="Train a teacher (cross-entropy) into EXP/runs/<name>/, saving checkpoints and metrics. "
        "Rerunning the same command resumes an interrupted run. "
        "Example: curriculens train-teacher --out exp/parity --n 40 --k 4 --width 4000 --steps 8000 --save-every 500",
    )
    p.add_argument("--out", default="experiment", help="experiment directory (created if needed; default ./experiment)")
    p.add_argument("--task", default="parity", help="task name: parity or pcfg (default parity)")
    p.add_argument("--task-json", help="full task config as JSON (string or file)")
    p.add_argument("--task-set", action="append", metavar="KEY=VALUE", help="set one task config field (JSON value), repeatable")
    t = p.add_argument_group("sparse parity")
    t.add_argument("--n", type=int, help="input length n (default 100)")
    t.add_argument("--k", type=int, help="support size k (default 6)")
    t.add_argument("--support", help="support coordinates, comma-separated (default: the first k)")
    t.add_argument("--n-eval", dest="n_eval", type=int, help="held-out examples (default 4096)")
    t.add_argument("--data-seed", dest="data_seed", type=int, help="seed of the held-out set (default 0)")
    _common_flags(p)
    p.set_defaults(func=run_teacher)

    d = sub.add_parser(
        "distill",
        help="train a student: ce, one-shot, progressive or two-shot",
        description="Train a student beside its teacher (EXP/runs/<method>-s<seed>/). "
        "Example: curriculens distill --teacher exp/parity --method progressive --width 50 --steps 12000",
    )
    d.add_argument("--teacher", required=True, help="the teacher run directory, or the experiment directory holding it")
    d.add_argument("--method", required=True, help="ce | one-shot | progressive | two-shot")
    d.add_argument("--alpha", type=float, default=0.0, help="weight of the label CE term (default 0 = pure distillation)")
    d.add_argument("--tau", type=float, default=1.0, help="teacher temperature; <= 1e-6 means hard teacher labels (default 1)")
    d.add_argument("--speed", type=float, default=1.0, help="progressive: student step t uses teacher step t x speed (default 1)")
    d.add_argument("--interval", type=int, default=0, help="progressive: reselect the teacher every N steps (default: teacher save_every / speed; pcfg rule: R = save_every)")
    d.add_argument(
        "--progressive-rule",
        choices=("parity", "pcfg"),
        default="parity",
        help="progressive: parity = first checkpoint at or after t x speed (the parity scripts); pcfg = largest checkpoint "
        "at or below speed x (1 + floor(t / interval)) x interval (the official masked-LM trainer, one interval ahead)",
    )
    d.add_argument("--two-shot-step", type=int, default=-1, help="two-shot: the intermediate teacher checkpoint step")
    d.add_argument("--two-shot-T", type=int, default=0, help="two-shot: student steps on that checkpoint before switching to the final one")
    _common_flags(d)
    d.set_defaults(func=run_distill)


def _base_config(args) -> RunConfig | None:
    return RunConfig.from_dict(read_json(args.config)) if args.config else None


def _resolve(args, base: RunConfig | None, task: dict, role: str, name: str, default_model, teacher_kind=None) -> RunConfig:
    model = model_from_args(args, default_model)
    optim = optim_from_args(args, model.kind, base.optim if base else None)
    ckpts = checkpoints_from_args(args, base.checkpoints if base else None)
    cfg = base or RunConfig(name=name, role=role, task=task, model=asdict(model))
    return replace(
        cfg,
        name=args.name or (base.name if base else name),
        task=task,
        model=asdict(model),
        optim=optim,
        checkpoints=ckpts,
        steps=args.steps if args.steps is not None else cfg.steps,
        batch_size=args.batch_size if args.batch_size is not None else cfg.batch_size,
        seed=args.seed if args.seed is not None else cfg.seed,
        device=args.device,
        amp=args.amp or cfg.amp,
    )


def run_teacher(args) -> int:
    from models.configs import model_config_from_dict
    from training.loop import train_run

    base = _base_config(args)
    task = base.task if (base and not args.task_json and not args.task_set and args.task == "parity" and args.n is None) else _task_from_args(args)
    task_obj = build_task(task)
    task = asdict(task_obj.cfg)
    default_model = model_config_from_dict(base.model) if base else task_obj.default_model("teacher")
    cfg = _resolve(args, base, task, C.ROLE_TEACHER, "teacher", default_model).replace(role=C.ROLE_TEACHER, distill=None).validate()
    exp = init_experiment(args.out, task)
    run_dir = exp / C.RUNS_DIR / cfg.name
    print(f"teacher -> {run_dir}")
    result = train_run(cfg, run_dir, force=args.force, progress=not args.quiet)
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


def run_distill(args) -> int:
    from models.configs import model_config_from_dict
    from training.loop import train_run

    teacher_dir = _teacher_dir(args.teacher)
    teacher = read_run(teacher_dir)
    if args.method not in C.METHODS:
        raise CurriculensError(f"unknown method {args.method!r} (one of {', '.join(C.METHODS)})")
    base = _base_config(args)
    task_obj = build_task(teacher.config.task)
    t_model = model_config_from_dict(teacher.config.model)
    default_model = model_config_from_dict(base.model) if base else task_obj.default_model("student")
    if default_model.kind != t_model.kind and not args.model and not args.model_json:
        default_model = t_model
    name = student_run_name(args.method, args.seed if args.seed is not None else (base.seed if base else 0),
                            args.two_shot_step, two_shot_T=args.two_shot_T, exp_dir=teacher_dir.parent.parent)
    dist = DistillConfig(
        method=args.method,
        teacher_dir=os.path.relpath(teacher_dir.resolve(), (teacher_dir.parent / name).resolve()),
        alpha=args.alpha,
        tau=args.tau,
        speed=args.speed,
        interval=args.interval,
        progressive_rule=args.progressive_rule,
        two_shot_step=args.two_shot_step,
        two_shot_T=args.two_shot_T,
    )
    if base is None:
        base = RunConfig(
            name=name, role=C.ROLE_STUDENT, task=teacher.config.task, model={}, optim=teacher.config.optim,
            checkpoints=teacher.config.checkpoints, steps=teacher.config.steps, batch_size=teacher.config.batch_size,
        )
    cfg = _resolve(args, base, teacher.config.task, C.ROLE_STUDENT, name, default_model)
    if args.name and args.name != name:
        dist = replace(dist, teacher_dir=os.path.relpath(teacher_dir.resolve(), (teacher_dir.parent / args.name).resolve()))
    cfg = cfg.replace(role=C.ROLE_STUDENT, distill=dist, name=args.name or name).validate()
    run_dir = teacher_dir.parent / cfg.name
    print(f"{cfg.method} student -> {run_dir}")
    result = train_run(cfg, run_dir, force=args.force, progress=not args.quiet)
    _report(result)
    return 0


def _report(result) -> None:
    ev = ", ".join(f"{k}={v:.4f}" for k, v in result.final_eval.items() if isinstance(v, float))
    state = "already finished" if result.skipped else f"{result.steps} steps in {result.wall_s:.1f}s"
    if result.resumed_from is not None:
        state += f" (resumed from step {result.resumed_from})"
    print(f"  {state}; {ev}")
