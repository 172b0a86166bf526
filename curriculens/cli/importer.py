"""``curriculens import SRC --out EXP --task TASK``: a foreign checkpoint trajectory as a run."""

from __future__ import annotations

from curriculens.cli.fields import add_config_args, apply_args
from curriculens.errors import CurriculensError
from training.foreign.config import ImportConfig


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
    p.add_argument(
        "--wait", action="store_true", help="if another process is writing this run, wait for it instead of refusing"
    )
    add_config_args(p, ImportConfig, command="import")
    p.set_defaults(func=run)


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
    from training.foreign.importer import import_trajectory

    cfg = apply_args(ImportConfig, args, "import", src=args.src, out=args.out, task=task_config(args))
    res = import_trajectory(cfg, wait=args.wait)
    print(
        f"imported {len(res.steps)} checkpoints ({res.layout}, {res.model}), steps {res.steps[0]}..{res.steps[-1]} -> {res.run_dir}"
    )
    if res.duplicates:
        pairs = ", ".join(f"{s}={first}" for s, first in sorted(res.duplicates.items()))
        print(f"{len(res.duplicates)} step(s) with byte-identical weights, marked duplicate_of: {pairs}")
    print(f"next: curriculens probe {args.out}")
    return 0
