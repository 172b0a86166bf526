"""The checkpoint format: one directory per checkpoint.

::

    <run>/checkpoints/step_000001000/
        model.safetensors   weights (Hugging Face key names for GPT-2/BERT)
        config.json         model config; for GPT-2/BERT the HF config plus ``curriculens_model``
        meta.json           step, samples_seen, eval_loss, eval_acc, seed, wall_time_s, sha256, ...
                            (an imported checkpoint: ``weights`` = {path, format, layout} when its
                            weights are referenced in place, and ``source`` = its provenance)
        optim.safetensors   optimizer tensors   (optional, for resuming)
        optim.json          optimizer scalars   (optional, for resuming)

GPT-2/BERT checkpoints load with ``transformers.AutoModel*.from_pretrained(dir)``.
A checkpoint directory is written under a temporary name and renamed into place, so a
directory named ``step_*`` is always complete. Loading verifies the sha256 and the config.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file, save_model
from torch import nn

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import atomic_dir, read_json, sha256_file, sweep_temps, write_json
from curriculens.layout import CKPT_RE, ckpt_dirname
from models.configs import BertConfig, GPT2Config, HFConfig, ModelConfig, model_config_from_dict
from models.foreign import check_readable, load_foreign_torch, read_weights  # noqa: F401 - load_foreign_torch is re-exported
from models.registry import build_model

_STEP_RE = CKPT_RE


def _config_json(cfg: ModelConfig) -> dict:
    ours = asdict(cfg)
    if isinstance(cfg, HFConfig):
        return {**cfg.config, "curriculens_model": ours}
    if isinstance(cfg, (GPT2Config, BertConfig)):
        from models.hf import ARCHITECTURES, hf_config

        data = hf_config(cfg).to_dict()
        data["architectures"] = [ARCHITECTURES[cfg.kind]]
        data["curriculens_model"] = ours
        return data
    return ours


def write_model_config(ckpt_dir: Path | str, cfg: ModelConfig) -> None:
    """Write a checkpoint's ``config.json`` (the HF config plus ``curriculens_model`` for HF models)."""
    write_json(Path(ckpt_dir) / C.MODEL_CONFIG_FILE, _config_json(cfg))


def read_model_config(ckpt_dir: Path | str) -> ModelConfig:
    data = read_json(Path(ckpt_dir) / C.MODEL_CONFIG_FILE)
    return model_config_from_dict(data.get("curriculens_model", data))


def _flatten_optim(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, entry in state["state"].items():
        for key, val in entry.items():
            if isinstance(val, torch.Tensor):
                tensors[f"{pid}.{key}"] = val.detach().cpu().contiguous()
            else:
                scalars["state"].setdefault(str(pid), {})[key] = val
    return tensors, scalars


def _unflatten_optim(tensors: dict[str, torch.Tensor], scalars: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, val in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    for pid, entry in scalars["state"].items():
        state.setdefault(int(pid), {}).update(entry)
    return {"state": state, "param_groups": scalars["param_groups"]}


def save_checkpoint(
    root: Path | str,
    step: int,
    model: nn.Module,
    cfg: ModelConfig,
    meta: dict,
    optimizer: torch.optim.Optimizer | dict | None = None,
) -> Path:
    """Write ``root/step_<step>/`` atomically and return its path.

    ``meta`` is stored with ``step`` and ``sha256`` (of model.safetensors) filled in. An
    existing checkpoint of the same step is replaced. ``optimizer`` is an optimizer or its
    ``state_dict()`` (a grid passes each student's slice of a stacked optimizer's state).
    """
    final = Path(root) / ckpt_dirname(step)
    with atomic_dir(final) as tmp:
        weights = tmp / C.WEIGHTS_FILE
        model_cpu_state = model.training
        save_model(model, str(weights), metadata={"format": "pt"}, force_contiguous=True)
        os.chmod(weights, 0o644)  # like every other artifact (the writer may create it 0600)
        model.train(model_cpu_state)
        write_model_config(tmp, cfg)
        if optimizer is not None:
            tensors, scalars = _flatten_optim(optimizer if isinstance(optimizer, dict) else optimizer.state_dict())
            save_file(tensors, str(tmp / C.OPTIM_WEIGHTS_FILE))
            os.chmod(tmp / C.OPTIM_WEIGHTS_FILE, 0o644)
            write_json(tmp / C.OPTIM_STATE_FILE, scalars)
        full_meta = dict(meta)
        full_meta.update(step=int(step), sha256=sha256_file(weights), saved_at=time.time())
        write_json(tmp / C.META_FILE, full_meta)
    return final


def remove_stale_temp_dirs(root: Path | str) -> list[Path]:
    """Repair what a writer killed mid-save left in ``root`` (a run or its ``checkpoints/``):
    a checkpoint moved aside while its replacement was renamed in is renamed back, leftover
    temporary copies are deleted (``curriculens.io.sweep_temps``), and a ``step_*`` directory
    that is not whole (no ``meta.json``, or its own weights missing: left by older versions,
    which deleted the old directory before renaming the new one in) is discarded, so a resume
    starts from the last whole checkpoint. Call it only while holding the run's lock."""
    root = Path(root)
    if root.name != C.CHECKPOINTS_DIR and (root / C.CHECKPOINTS_DIR).is_dir():
        root = root / C.CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    gone = sweep_temps(root)
    for _, path in list_checkpoints(root):
        if not _is_whole(path):
            shutil.rmtree(path)
            gone.append(path)
    return gone


def _is_whole(ckpt_dir: Path) -> bool:
    try:
        meta = read_meta(ckpt_dir)
    except CurriculensError:
        return False
    if not isinstance(meta, dict):
        return False
    own = not isinstance(meta.get("weights"), dict)  # an imported checkpoint's weights live elsewhere
    return (ckpt_dir / C.MODEL_CONFIG_FILE).is_file() and (not own or (ckpt_dir / C.WEIGHTS_FILE).is_file())


def list_checkpoints(path: Path | str) -> list[tuple[int, Path]]:
    """``[(step, dir)]`` sorted by step, for a run dir, its ``checkpoints/`` dir, or one checkpoint."""
    path = Path(path)
    if _STEP_RE.match(path.name) and (path / C.META_FILE).is_file():
        return [(int(_STEP_RE.match(path.name).group(1)), path)]
    if (path / C.CHECKPOINTS_DIR).is_dir():
        path = path / C.CHECKPOINTS_DIR
    if not path.is_dir():
        return []
    found = []
    for child in path.iterdir():
        m = _STEP_RE.match(child.name)
        if m and child.is_dir():
            found.append((int(m.group(1)), child))
    return sorted(found)


def read_meta(ckpt_dir: Path | str) -> dict:
    return read_json(Path(ckpt_dir) / C.META_FILE)


def weights_ref(ckpt_dir: Path | str, meta: dict | None = None) -> tuple[Path, str, str]:
    """``(weights file, format, layout)`` of a checkpoint: its own ``model.safetensors``, or the
    foreign file an imported checkpoint references in place (``meta["weights"]``)."""
    ckpt_dir = Path(ckpt_dir)
    meta = read_meta(ckpt_dir) if meta is None else meta
    ref = meta.get("weights")
    if not isinstance(ref, dict):
        return ckpt_dir / C.WEIGHTS_FILE, "safetensors", "hf"
    path = Path(ref.get("path", ""))
    return (path if path.is_absolute() else ckpt_dir / path), str(ref.get("format", "")), str(ref.get("layout", "hf"))


def checked_weights_ref(ckpt_dir: Path, meta: dict) -> tuple[Path, str, str]:
    """``weights_ref``, raising a one-line CurriculensError when the weights file is missing."""
    weights, fmt, layout = weights_ref(ckpt_dir, meta)
    if not weights.is_file():
        if "weights" in meta:
            raise CurriculensError(
                f"imported checkpoint {ckpt_dir}: its weights {weights} are gone (moved or deleted?)"
            )
        raise CurriculensError(f"checkpoint {ckpt_dir} has no {C.WEIGHTS_FILE}")
    return weights, fmt, layout


def load_weights_into(model: nn.Module, state: dict, where: Path | str) -> None:
    """``model.load_state_dict(state)``, tolerating tied parameters the file leaves out and
    non-persistent buffers it still holds (older HF saves); anything else that does not fit is a
    one-line CurriculensError."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = next((ln.strip() for ln in first if "size mismatch" in ln), first[-1].strip())
        raise CurriculensError(f"weights in {where} do not fit config.json: {detail}") from None
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    buffers = {name for name, _ in model.named_buffers()}
    missing = [k for k in missing if k not in tied and not _is_tied(model, k)]
    unexpected = [k for k in unexpected if k not in buffers]
    if missing or unexpected:
        raise CurriculensError(
            f"weights in {where} do not fit config.json: missing {missing[:3]}, unexpected {list(unexpected)[:3]}"
        )


def verify_checkpoint(
    ckpt_dir: Path | str, expected: ModelConfig | None = None, hash_weights: bool = True
) -> tuple[dict, ModelConfig]:
    """``(meta, model config)`` of a checkpoint whose files are present, whose config equals
    ``expected`` (if given) and whose weights match the sha256 in meta.json; else one-line
    CurriculensError. Reads only."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise CurriculensError(f"checkpoint directory not found: {ckpt_dir}")
    meta = read_meta(ckpt_dir) if (ckpt_dir / C.META_FILE).is_file() else {}
    weights, fmt, layout = checked_weights_ref(ckpt_dir, meta)
    meta = read_meta(ckpt_dir)
    cfg = read_model_config(ckpt_dir)
    if expected is not None and cfg != expected:
        raise CurriculensError(f"config mismatch in {ckpt_dir}: stored {asdict(cfg)} != expected {asdict(expected)}")
    if hash_weights and meta.get("sha256") != sha256_file(weights):
        raise CurriculensError(f"corrupted weights in {ckpt_dir}: sha256 does not match meta.json")
    if fmt == "safetensors":
        check_safetensors(weights, ckpt_dir)
    return meta, cfg


def check_safetensors(weights: Path, where: Path | str) -> None:
    """Raise a one-line CurriculensError unless ``weights`` is a whole safetensors file (its header
    parses and covers the file: a truncated file whose sha256 was recorded after the truncation
    passes the hash but not this). Reads the header only."""
    from safetensors import SafetensorError, safe_open

    check_readable(weights)
    try:
        with safe_open(str(weights), framework="pt") as fh:
            fh.keys()
    except (SafetensorError, OSError, ValueError) as exc:
        raise CurriculensError(f"unreadable weights in {where}: {exc}".splitlines()[0]) from None


def load_checkpoint(
    ckpt_dir: Path | str,
    expected: ModelConfig | None = None,
    device: str | torch.device = "cpu",
    verify: bool = True,
) -> tuple[nn.Module, ModelConfig, dict]:
    """Load ``(model in eval mode, config, meta)`` from one checkpoint directory.

    Raises CurriculensError (one line) on a missing file, a sha256 mismatch, a config that
    differs from ``expected``, or weights that do not fit the config.
    """
    ckpt_dir = Path(ckpt_dir)
    meta, cfg = verify_checkpoint(ckpt_dir, expected, hash_weights=verify)
    weights, fmt, layout = weights_ref(ckpt_dir, meta)
    model = build_model(cfg)
    load_weights_into(model, read_weights(weights, fmt, layout), ckpt_dir)
    model.to(device).eval()
    return model, cfg, meta


def _is_tied(model: nn.Module, key: str) -> bool:
    """True if parameter ``key`` shares storage with another parameter (tied embeddings)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    if key not in params:
        return False
    ptr = params[key].data_ptr()
    return any(k != key and p.data_ptr() == ptr for k, p in params.items())


def read_optimizer_state(ckpt_dir: Path | str) -> dict | None:
    """The optimizer ``state_dict()`` saved beside a checkpoint (CPU tensors), or None."""
    ckpt_dir = Path(ckpt_dir)
    if not (ckpt_dir / C.OPTIM_STATE_FILE).is_file():
        return None
    tensors = load_file(str(ckpt_dir / C.OPTIM_WEIGHTS_FILE)) if (ckpt_dir / C.OPTIM_WEIGHTS_FILE).is_file() else {}
    return _unflatten_optim(tensors, read_json(ckpt_dir / C.OPTIM_STATE_FILE))


def load_optimizer_state(ckpt_dir: Path | str, optimizer: torch.optim.Optimizer) -> bool:
    """Restore optimizer state saved beside a checkpoint; False if none was saved."""
    state = read_optimizer_state(ckpt_dir)
    if state is None:
        return False
    optimizer.load_state_dict(state)
    return True


def strip_optimizer_state(ckpt_dir: Path | str) -> None:
    """Delete the resume-only optimizer files of a checkpoint (keeps disk use low)."""
    for name in (C.OPTIM_WEIGHTS_FILE, C.OPTIM_STATE_FILE):
        (Path(ckpt_dir) / name).unlink(missing_ok=True)
