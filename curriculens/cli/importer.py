"""``curriculens import SRC --out EXP --task TASK``: a foreign checkpoint trajectory as a run."""

from __future__ import annotations

from curriculens import constants as C
from curriculens.errors import CurriculensError


def register(sub) -> None:
    p = sub.add_parser(
        "import",
        help="turn a foreign checkpoint trajectory (HF Trainer dir, hub cache, .pt files) into a run",
        description=(
            "Import checkpoints made elsewhere as one run of EXP, so that probe, summary, dashboard "
            "and export work on them. SRC: a Trainer output directory (checkpoint-N/), step "
            "directories (stepN, stepN-tokens...), a local hub cache of one model (refs/stepN "
            "revisions), or a directory of step-named .pt/.bin/.safetensors files. Weights are "
            "referenced in place with their sha256 (or copied with --copy); .bin/.pt files are read "
            "with torch.load(weights_only=True) and no code from the checkpoint runs. "
            "See docs/import.md. Example: curriculens import out/ --out exp/foreign --task text "
            "--task-set corpus=corpus.txt"
        ),
    )
    p.add_argument("src", metavar="SRC", help="the directory holding the foreign checkpoints")
    p.add_argument("--out", required=True, help="experiment directory (created if needed)")
    p.add_argument("--task", required=True, help="task name: text, pcfg or parity")
    p.add_argument("--task-json", help="full task config as JSON (string or file)")
    p.add_argument(
        "--task-set", action="append", metavar="KEY=VALUE", help="set one task config field (JSON value), repeatable"
    )
    p.add_argument("--role", choices=(C.ROLE_TEACHER, C.ROLE_STUDENT), default=C.ROLE_TEACHER, help="default teacher")
    p.add_argument("--method", default="", help="a student's method: " + " | ".join(C.METHODS))
    p.add_argument("--name", default="", help="run name (default: teacher, or <method>-s<seed>)")
    p.add_argument("--seed", type=int, default=0, help="the run's seed label (default 0)")
    p.add_argument("--two-shot-step", type=int, default=-1, help="two-shot students: the teacher checkpoint used first")
    p.add_argument("--two-shot-T", type=int, default=0, help="two-shot students: the step where they switched")
    p.add_argument(
        "--copy", action="store_true", help="copy the weights into the run as safetensors (default: reference in place)"
    )
    p.add_argument("--force", action="store_true", help="replace a run of the same name")
    p.add_argument(
        "--wait", action="store_true", help="if another process is writing this run, wait for it instead of refusing"
    )
    sel = p.add_argument_group("which checkpoints (default all; applied in this order)")
    sel.add_argument(
        "--revisions",
        default="",
        metavar="SPEC",
        help="names or steps (step1000,2000) | START:STOP[:STRIDE] (steps) | log:N | all",
    )
    sel.add_argument(
        "--steps", default="", metavar="LIST", help="exactly these steps, comma-separated (each must exist)"
    )
    sel.add_argument("--every", type=int, default=1, metavar="K", help="every K-th checkpoint, first and last kept")
    p.set_defaults(func=run)


def _steps(raw: str) -> tuple:
    if not raw.strip():
        return ()
    try:
        return tuple(int(s) for s in raw.split(","))
    except ValueError:
        raise CurriculensError(f"--steps must be comma-separated integers, got {raw!r}") from None


def task_config(args) -> dict:
    """The task dict from --task / --task-json / --task-set; text corpus and tokenizer paths are made absolute."""
    from curriculens.cli._common import load_json_arg
    from curriculens.cli.train import _parse_set, absolute_paths

    task = load_json_arg(args.task_json, "--task-json") or {}
    task.setdefault("name", args.task)
    if task["name"] != args.task:
        raise CurriculensError(f"--task {args.task} but --task-json names {task['name']!r}")
    task.update(_parse_set(args.task_set))
    return absolute_paths(task)


def run(args) -> int:
    from training.foreign.importer import ImportConfig, import_trajectory

    cfg = ImportConfig(
        src=args.src,
        out=args.out,
        task=task_config(args),
        role=args.role,
        method=args.method,
        name=args.name,
        seed=args.seed,
        copy=args.copy,
        force=args.force,
        two_shot_step=args.two_shot_step,
        two_shot_T=args.two_shot_T,
        revisions=args.revisions,
        steps=_steps(args.steps),
        every=args.every,
    )
    res = import_trajectory(cfg, wait=args.wait)
    print(
        f"imported {len(res.steps)} checkpoints ({res.layout}, {res.model}), steps {res.steps[0]}..{res.steps[-1]} -> {res.run_dir}"
    )
    if res.duplicates:
        pairs = ", ".join(f"{s}={first}" for s, first in sorted(res.duplicates.items()))
        print(f"{len(res.duplicates)} step(s) with byte-identical weights, marked duplicate_of: {pairs}")
    print(f"next: curriculens probe {args.out}")
    return 0
