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
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from curriculens.errors import CurriculensError
from curriculens.lock import exclusive_lock
from models.foreign import TOKENIZER_FILES
from training.sources import HF_CONFIG, PREFERRED_WEIGHTS, TRAINER_STATE, parse_step

log = logging.getLogger(__name__)

FETCH_LOCK = ".fetch.lock"
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RANGE = re.compile(r"^(\d+):(\d+)(?::(\d+))?$")
_LOG = re.compile(r"^log:(\d+)$")


@dataclass(frozen=True)
class FetchConfig:
    """What to fetch.

    Args:
        repo: ``org/name`` of a model repository.
        revisions: the SPEC (``resolve_revisions``).
        out: the hub-cache directory to fill (``import`` reads it).
        endpoint: the hub's URL; "" = ``HF_ENDPOINT`` or huggingface.co.
        timeout_s: per-request timeout.
    """

    repo: str
    revisions: str
    out: str
    endpoint: str = ""
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not _REPO.match(self.repo):
            raise CurriculensError(f"bad repository id {self.repo!r} (expected org/name)")
        parse_spec(self.revisions)  # raises on a bad SPEC
        if self.endpoint and not re.match(r"^https?://", self.endpoint):
            raise CurriculensError(f"bad --endpoint {self.endpoint!r} (expected http(s)://...)")
        if self.timeout_s <= 0:
            raise CurriculensError("timeout must be positive")


@dataclass
class FetchResult:
    repo_dir: Path
    revisions: list[str]
    downloaded: list[str] = field(default_factory=list)  # "revision/file"
    skipped: list[str] = field(default_factory=list)  # revisions already complete


def parse_spec(spec: str) -> tuple:
    """``("all",)``, ``("log", n)``, ``("range", start, stop, stride)`` or ``("list", items)``."""
    spec = spec.strip()
    if not spec:
        raise CurriculensError("--revisions is empty (e.g. step1000,step2000 | 0:10000:1000 | log:8 | all)")
    if spec == "all":
        return ("all",)
    m = _LOG.match(spec)
    if m:
        n = int(m.group(1))
        if n < 2:
            raise CurriculensError(f"--revisions log:N needs N >= 2, got {n}")
        return ("log", n)
    m = _RANGE.match(spec)
    if m:
        start, stop, stride = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if stop < start or (m.group(3) is not None and stride < 1):
            raise CurriculensError(f"bad revision range {spec!r} (START:STOP[:STRIDE], steps, STOP >= START)")
        return ("range", start, stop, stride)
    items = [s.strip() for s in spec.split(",")]
    if any(not s or ".." in s for s in items):
        raise CurriculensError(f"bad revision list {spec!r}")
    return ("list", tuple(items))


def resolve_revisions(spec: str, branches: list[str]) -> list[str]:
    """The branch names SPEC picks from ``branches``, ordered by step.

    SPEC is one of:

    - ``all``: every branch whose name holds a step (``stepN``, ``stepN-tokensM``, ``checkpoint-N``);
    - a comma list of branch names or step numbers (``step1000,step2000`` or ``1000,2000``; a
      number matches the branch of that step, e.g. OLMo's ``step1000-tokens4B``);
    - ``START:STOP[:STRIDE]``: the step branches with START <= step <= STOP (and, with STRIDE,
      ``(step - START) % STRIDE == 0``);
    - ``log:N``: N branches log-spaced in step (the first and the last included; the nearest
      branch to each of N points evenly spaced in log(1 + step); fewer if several coincide).

    A listed name or step that is not among the branches is a one-line error.
    """
    kind = parse_spec(spec)
    stepped = sorted(((parse_step(b), b) for b in branches if parse_step(b) is not None), key=lambda t: t[0])
    by_step: dict[int, str] = {}
    for s, b in stepped:
        by_step.setdefault(s, b)
    steps = sorted(by_step)
    if kind[0] == "list":
        out = []
        for item in kind[1]:
            if item in branches:
                out.append(item)
            elif item.isdigit() and int(item) in by_step:
                out.append(by_step[int(item)])
            else:
                near = ", ".join(by_step[s] for s in steps[:3]) or ", ".join(branches[:3]) or "none"
                raise CurriculensError(f"no revision {item!r} in the repository (it has e.g. {near})")
        return sorted(dict.fromkeys(out), key=lambda b: (parse_step(b) is None, parse_step(b) or 0, b))
    if not steps:
        raise CurriculensError(
            f"the repository has no step branches (stepN, stepN-tokens..., checkpoint-N) for {spec!r}; "
            f"its branches: {', '.join(branches[:5]) or 'none'}"
        )
    if kind[0] == "all":
        picked = steps
    elif kind[0] == "range":
        _, start, stop, stride = kind
        picked = [s for s in steps if start <= s <= stop and (not stride or (s - start) % stride == 0)]
    else:
        n = kind[1]
        lo, hi = math.log1p(steps[0]), math.log1p(steps[-1])
        picked = []
        for i in range(n):
            target = lo + (hi - lo) * i / (n - 1)
            picked.append(min(steps, key=lambda s: (abs(math.log1p(s) - target), s)))
        picked = sorted(set(picked))
    if not picked:
        raise CurriculensError(f"no step branch matches {spec!r} (steps {steps[0]}..{steps[-1]})")
    return [by_step[s] for s in picked]


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


__all__ = ["FetchConfig", "FetchResult", "fetch", "resolve_revisions", "parse_spec", "needed_files"]
