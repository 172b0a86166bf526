"""Find the checkpoints of a foreign trajectory on disk (``curriculens import``); reads, never writes.

Layouts, tried in this order:

- **local hub cache** of one model (``models--org--name/`` with ``refs/`` and ``snapshots/``, or a
  hub cache root holding exactly one such directory): every file ``refs/<revision>`` holds a
  commit hash whose files are ``snapshots/<commit>/``. The step comes from the revision name;
  ``main`` is skipped (it aliases one of the step revisions). Nothing is fetched.
- **checkpoint directories**: subdirectories named ``checkpoint-N`` (Hugging Face Trainer),
  ``stepN``, ``stepN-tokens...`` (OLMo), ``step_N``, ``global_stepN``, each with a
  ``config.json`` (HF models) and one weights file. A subdirectory holding weights under any
  other name takes its step from its ``trainer_state.json`` (``global_step``).
- **one checkpoint directory**: SRC itself holds weights and a ``trainer_state.json``.
- **weight files**: ``*.safetensors`` / ``*.bin`` / ``*.pt`` / ``*.pth`` directly in SRC, the step
  in the file name (``step1000.pt``, ``model_step_1000.pt``, ``ckpt-1000.bin``, ``1000.pt``);
  an optional ``config.json`` beside them applies to all (the parity MLP needs none).

Weights inside a checkpoint directory: ``model.safetensors``, else ``pytorch_model.bin``, else
the directory's only weights file. Sharded weights (``*.index.json``) are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import read_json

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
PREFERRED_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
TRAINER_STATE = "trainer_state.json"
HF_CONFIG = "config.json"
HUB_DEFAULT_REF = "main"

_DIR_STEP = re.compile(r"^(?:stage\d+-)?(?:checkpoint-|global_step|step_?)(\d+)(?:-tokens[^/]*)?$")
_TOKENS = re.compile(r"-tokens(\d+(?:\.\d+)?)([KMBT]?)$", re.IGNORECASE)
_TOKEN_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
_FILE_STEP = re.compile(r"(?:^|[-_.])(?:checkpoint|step|ckpt|iter)[-_]?(\d+)$")


def parse_step(name: str, file: bool = False) -> int | None:
    """The step in a directory / revision name (``checkpoint-500``, ``step1000``,
    ``step1000-tokens4M``, ``stage1-step1000-tokens4B``, ``step_000001000``) or, with ``file``, a weights file's stem."""
    m = _DIR_STEP.match(name)
    if m:
        return _checked_step(int(m.group(1)), name)
    if file:
        if name.isdigit():
            return _checked_step(int(name), name)
        m = _FILE_STEP.search(name)
        if m:
            return _checked_step(int(m.group(1)), name)
    return None


def _checked_step(step: int, where: str) -> int:
    """``step`` if it fits the results database's integers (SQLite: below 2**63), else one line."""
    if step > C.MAX_STEP:
        raise CurriculensError(f"step {step} of {where} is too large (at most {C.MAX_STEP})")
    return step


def parse_tokens(name: str) -> int | None:
    """Training tokens stated in an OLMo-style revision / directory name (``step1000-tokens4B``
    -> 4_000_000_000, ``stage1-step500-tokens3M`` -> 3_000_000), else None."""
    m = _TOKENS.search(name)
    if not m:
        return None
    return int(round(float(m.group(1)) * _TOKEN_UNITS[m.group(2).upper()]))


@dataclass(frozen=True)
class ForeignCheckpoint:
    """One checkpoint of a foreign trajectory.

    Args:
        step: its training step.
        dir: the directory holding it (the snapshot for a hub cache; SRC for loose files).
        weights: the weights file (may be a hub-cache symlink into ``blobs/``).
        config: its HF ``config.json``, or None (a parity MLP).
        revision: the name it was found under (directory, revision or file name).
        commit: the hub commit hash ("" outside a hub cache).
        trainer_state: its ``trainer_state.json``, if any.
    """

    step: int
    dir: Path
    weights: Path
    config: Path | None
    revision: str
    commit: str = ""
    trainer_state: Path | None = None


def _weights_in(d: Path) -> Path | None:
    if any(p.name.endswith(".index.json") for p in d.iterdir()):
        raise CurriculensError(f"{d}: sharded weights (*.index.json) are not supported; merge them into one file")
    for name in PREFERRED_WEIGHTS:
        if (d / name).is_file():
            return d / name
    found = sorted(p for p in d.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if len(found) > 1:
        raise CurriculensError(f"{d}: several weights files ({', '.join(p.name for p in found[:3])}); keep one")
    return found[0] if found else None


def _optional(path: Path) -> Path | None:
    return path if path.is_file() else None


def _trainer_step(d: Path) -> int | None:
    state = d / TRAINER_STATE
    if not state.is_file():
        return None
    data = read_json(state)
    step = data.get("global_step") if isinstance(data, dict) else None
    return _checked_step(step, str(state)) if isinstance(step, int) and not isinstance(step, bool) else None


def _dir_checkpoint(d: Path, step: int, revision: str, commit: str = "") -> ForeignCheckpoint:
    weights = _weights_in(d)
    if weights is None:
        raise CurriculensError(
            f"{d}: no weights file ({', '.join(PREFERRED_WEIGHTS)}, or one *.safetensors/*.bin/*.pt)"
        )
    return ForeignCheckpoint(step, d, weights, _optional(d / HF_CONFIG), revision, commit, _optional(d / TRAINER_STATE))


def hub_repo_dir(src: Path) -> Path | None:
    """``src`` if it is one model of a hub cache, its single ``models--*`` child if it is a cache root."""
    if (src / "refs").is_dir() and (src / "snapshots").is_dir():
        return src
    repos = [p for p in src.glob("models--*") if (p / "refs").is_dir() and (p / "snapshots").is_dir()]
    if len(repos) > 1:
        raise CurriculensError(
            f"{src} is a hub cache with {len(repos)} models; give one models--<org>--<name> directory"
        )
    return repos[0] if repos else None


def _hub(repo: Path) -> list[ForeignCheckpoint]:
    out, bad = [], []
    for ref in sorted(p for p in (repo / "refs").rglob("*") if p.is_file()):
        name = ref.relative_to(repo / "refs").as_posix()
        if name == HUB_DEFAULT_REF:
            continue
        step = parse_step(name)
        if step is None:
            bad.append(name)
            continue
        commit = ref.read_text(encoding="utf-8", errors="replace").strip()
        snap = repo / "snapshots" / commit
        if not re.fullmatch(r"[0-9a-fA-F]{7,64}", commit) or not snap.is_dir():
            raise CurriculensError(
                f"{repo}: revision {name} points to commit {commit[:12]!r}, which has no snapshot here"
            )
        out.append(_dir_checkpoint(snap, step, name, commit))
    if bad:
        raise CurriculensError(
            f"{repo}: cannot read a step from revision name(s) {', '.join(bad[:5])} (expected stepN, stepN-tokens..., checkpoint-N)"
        )
    return out


def _subdirs(src: Path) -> list[ForeignCheckpoint]:
    out, bad = [], []
    for d in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
        step = parse_step(d.name)
        if step is None:
            try:
                has_weights = _weights_in(d) is not None
            except CurriculensError:
                has_weights = True
            if not has_weights:
                continue  # logs, runs/, ...: not a checkpoint
            step = _trainer_step(d)
            if step is None:
                bad.append(d.name)
                continue
        out.append(_dir_checkpoint(d, step, d.name))
    if bad:
        raise CurriculensError(
            f"{src}: cannot read a step from checkpoint directory name(s) {', '.join(bad[:5])} "
            f"(expected checkpoint-N, stepN, stepN-tokens..., or a {TRAINER_STATE} with global_step)"
        )
    return out


def _files(src: Path) -> list[ForeignCheckpoint]:
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    out, bad = [], []
    for f in files:
        step = parse_step(f.stem, file=True)
        if step is None:
            bad.append(f.name)
            continue
        out.append(ForeignCheckpoint(step, src, f, _optional(src / HF_CONFIG), f.name))
    if bad:
        raise CurriculensError(
            f"{src}: cannot read a step from weights file name(s) {', '.join(bad[:5])} (expected e.g. step1000.pt, checkpoint-500.bin)"
        )
    return out


def discover(src: Path | str) -> tuple[str, list[ForeignCheckpoint]]:
    """``(layout, checkpoints sorted by step)`` for a foreign trajectory; one-line errors on bad input.

    ``layout`` is ``hub``, ``dirs``, ``single`` or ``files``. Two checkpoints with the same step
    are an error.
    """
    src = Path(src)
    if not src.exists():
        raise CurriculensError(f"no such file or directory: {src}")
    if not src.is_dir():
        raise CurriculensError(f"{src} is not a directory (give the directory holding the checkpoints)")
    repo = hub_repo_dir(src)
    if repo is not None:
        layout, found = "hub", _hub(repo)
    else:
        layout, found = "dirs", _subdirs(src)
        if not found:
            own_step = _trainer_step(src)
            if own_step is not None and _weights_in(src) is not None:
                layout, found = "single", [_dir_checkpoint(src, own_step, src.name)]
            else:
                layout, found = "files", _files(src)
    if not found:
        raise CurriculensError(f"no checkpoints found in {src} (see docs/import.md for the layouts)")
    found.sort(key=lambda c: c.step)
    for a, b in pairwise(found):
        if a.step == b.step:
            raise CurriculensError(f"{src}: two checkpoints claim step {a.step} ({a.revision}, {b.revision})")
    return layout, found
