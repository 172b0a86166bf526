"""``curriculens fetch``: download chosen revisions of a hub model into a local hub cache.

The one part of curriculens that uses the network, and only when asked. Through
``huggingface_hub`` it lists the repository's branches, picks revisions by a SPEC
(``resolve_revisions``), and downloads, per revision, only the files ``import`` and the text
task read: ``config.json``, one weights file (``model.safetensors``, else ``pytorch_model.bin``,
else the revision's only ``*.safetensors`` / ``*.bin``), the tokenizer files and
``trainer_state.json`` when present. Files land in the standard hub-cache layout
``OUT/models--org--name/{refs,snapshots,blobs}`` that ``curriculens import OUT`` reads.

- Everything is planned (refs, each revision's file list, a weights file each) before the
  first download; a bad SPEC fails before any network call.
- Resumable: only the planned files a revision's local snapshot lacks are requested (a complete
  revision costs no download request); a killed download resumes from its ``.incomplete`` file
  (``huggingface_hub``).
- Offline (``HF_HUB_OFFLINE=1``, or the hub unreachable): one-line ``CurriculensError``.
- ``endpoint``: another hub (a mirror, or a loopback fake in the tests); "" = ``HF_ENDPOINT``
  or huggingface.co. Tokens come from the usual ``HF_TOKEN`` / login; none are stored here.
- One writer per OUT (``OUT/.fetch.lock``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from curriculens.errors import CurriculensError
from curriculens.lock import exclusive_lock
from models.foreign import TOKENIZER_FILES
from training.foreign.config import FetchConfig
from training.foreign.revisions import resolve_revisions
from training.foreign.sources import HF_CONFIG, PREFERRED_WEIGHTS, TRAINER_STATE

log = logging.getLogger(__name__)

FETCH_LOCK = ".fetch.lock"


@dataclass
class FetchResult:
    repo_dir: Path
    revisions: list[str]
    downloaded: list[str] = field(default_factory=list)  # "revision/file"
    skipped: list[str] = field(default_factory=list)  # revisions already complete


def needed_files(files: list[str], where: str) -> list[str]:
    """The files of one revision to fetch: config, one weights file, tokenizer, trainer state."""
    top = [f for f in files if "/" not in f]
    if any(f.endswith(".index.json") for f in top):
        raise CurriculensError(f"{where}: sharded weights (*.index.json) are not supported by import")
    weights = next((w for w in PREFERRED_WEIGHTS if w in top), None)
    if weights is None:
        found = [f for f in top if f.endswith((".safetensors", ".bin"))]
        if len(found) != 1:
            raise CurriculensError(
                f"{where}: {'no' if not found else 'several'} weights files "
                f"({', '.join(found[:3]) or 'expected model.safetensors or pytorch_model.bin'})"
            )
        weights = found[0]
    wanted = [HF_CONFIG, weights, *TOKENIZER_FILES, TRAINER_STATE]
    if HF_CONFIG not in top:
        raise CurriculensError(f"{where}: no {HF_CONFIG}")
    return [f for f in wanted if f in top]


def _offline() -> bool:
    from huggingface_hub import constants

    raw = os.environ.get("HF_HUB_OFFLINE", "")
    return bool(constants.HF_HUB_OFFLINE) or raw.strip().lower() in ("1", "true", "yes", "on")


def _hub_error(exc: Exception, cfg: FetchConfig, what: str) -> CurriculensError:
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(exc, GatedRepoError):
        return CurriculensError(f"{cfg.repo} is gated: accept its terms on the hub and log in (HF_TOKEN)")
    if isinstance(exc, RepositoryNotFoundError):
        return CurriculensError(f"no model repository {cfg.repo} on {cfg.endpoint or 'the hub'} (or it is private)")
    if isinstance(exc, RevisionNotFoundError):
        return CurriculensError(f"{cfg.repo}: {what}: revision not found")
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return CurriculensError(
        f"cannot reach {cfg.endpoint or 'the hub'} ({what}: {type(exc).__name__}: {first[:160]}); "
        "curriculens fetch needs the network"
    )


def _missing(repo_dir: Path, revision: str, files: list[str]) -> list[str]:
    """The planned files that the revision's local snapshot lacks (all when it has none)."""
    ref = repo_dir / "refs" / revision
    if not ref.is_file():
        return list(files)
    snap = repo_dir / "snapshots" / ref.read_text(encoding="utf-8").strip()
    return [f for f in files if not (snap / f).is_file()]


def repo_cache_dir(out: Path | str, repo: str) -> Path:
    return Path(out) / ("models--" + repo.replace("/", "--"))


def fetch(cfg: FetchConfig) -> FetchResult:
    """Plan, then download (see the module docstring); one-line errors, nothing written before
    the plan has passed."""
    if _offline():
        raise CurriculensError("offline (HF_HUB_OFFLINE is set): curriculens fetch needs the network")
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi(endpoint=cfg.endpoint or None)
    try:
        refs = api.list_repo_refs(cfg.repo)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the hub is one line
        raise _hub_error(exc, cfg, "listing branches") from None
    branches = [b.name for b in refs.branches]
    revisions = resolve_revisions(cfg.revisions, branches)
    plan: dict[str, list[str]] = {}
    for rev in revisions:
        try:
            info = api.model_info(cfg.repo, revision=rev, timeout=cfg.timeout_s)
        except Exception as exc:  # noqa: BLE001
            raise _hub_error(exc, cfg, f"listing files of {rev}") from None
        plan[rev] = needed_files([s.rfilename for s in (info.siblings or [])], f"{cfg.repo}@{rev}")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise CurriculensError(f"--out {out} is a file")
    repo_dir = repo_cache_dir(out, cfg.repo)
    result = FetchResult(repo_dir, revisions)
    with exclusive_lock(out / FETCH_LOCK, f"fetch directory {out}"):
        for rev, files in plan.items():
            missing = _missing(repo_dir, rev, files)
            if not missing:
                result.skipped.append(rev)
                log.info("%s@%s: already complete", cfg.repo, rev)
                continue
            for f in missing:
                try:
                    hf_hub_download(
                        cfg.repo,
                        f,
                        revision=rev,
                        cache_dir=str(out),
                        endpoint=cfg.endpoint or None,
                        etag_timeout=cfg.timeout_s,
                    )
                except Exception as exc:  # noqa: BLE001
                    raise _hub_error(exc, cfg, f"downloading {rev}/{f}") from None
                result.downloaded.append(f"{rev}/{f}")
            log.info("%s@%s: %d file(s)", cfg.repo, rev, len(missing))
    return result


__all__ = ["FetchConfig", "FetchResult", "fetch", "needed_files"]
