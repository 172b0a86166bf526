"""``curriculens fetch REPO --revisions SPEC --out DIR``: chosen revisions of a hub model, for import."""

from __future__ import annotations

from curriculens.cli.fields import add_config_args, apply_args
from training.foreign.config import FetchConfig


def register(sub) -> None:
    p = sub.add_parser(
        "fetch",
        help="download chosen revisions of a hub model (opt-in network) into a local hub cache",
        description=(
            "Download, through huggingface_hub, only the files import needs (config.json, one weights "
            "file, the tokenizer, trainer_state.json) of the revisions SPEC picks, into DIR in the hub "
            "cache layout; then `curriculens import DIR/models--ORG--NAME ...`. Resumable: complete "
            "revisions are skipped. Offline (HF_HUB_OFFLINE=1 or no network) it exits 2. See docs/import.md. "
            "Example: curriculens fetch EleutherAI/pythia-14m --revisions log:8 --out hub/"
        ),
    )
    p.add_argument("repo", metavar="REPO", help="the model repository, org/name")
    p.add_argument(
        "--revisions",
        required=True,
        metavar="SPEC",
        help="step1000,step2000 (names or step numbers) | START:STOP[:STRIDE] (steps) | log:N | all",
    )
    p.add_argument("--out", required=True, help="hub-cache directory to fill (created if needed)")
    add_config_args(p, FetchConfig, command="fetch")
    p.set_defaults(func=run)


def run(args) -> int:
    from training.foreign.fetch import fetch

    cfg = apply_args(FetchConfig, args, "fetch", repo=args.repo, revisions=args.revisions, out=args.out)
    res = fetch(cfg)
    print(
        f"{args.repo}: {len(res.revisions)} revision(s) -> {res.repo_dir} "
        f"({len(res.downloaded)} file(s) downloaded, {len(res.skipped)} revision(s) already complete)"
    )
    print(f"next: curriculens import {res.repo_dir} --out EXP --task text --task-set corpus=FILE")
    return 0
