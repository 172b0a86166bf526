"""Foreign weights and configs (``curriculens import``): read them safely, name their model.

- Weights: ``.safetensors`` (``safetensors.torch.load_file``) or ``.bin`` / ``.pt``
  (``torch.load(weights_only=True)``: tensors and containers only, no pickled code; a file that
  needs more is refused with one line).
- Layouts: ``hf`` (the HF model's own state-dict keys, as ``save_pretrained`` / the Trainer write
  them) or ``mlp`` (a parity MLP saved as an ``nn.Sequential`` state dict, a list of per-layer
  state dicts, or curriculens' own keys; mapped by layer order onto ``models.mlp.ParityMLP``).
- Configs: an HF ``config.json`` names its class in ``architectures``; it is accepted when the
  installed TransformerLens 4 bridge has an adapter for it and ``transformers`` has the class
  (``HFConfig``). ``auto_map`` (remote code) is never followed. An MLP needs no config: its sizes
  come from the weight shapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import read_json
from models.configs import HFConfig, MLPConfig, ModelConfig

FORMATS = ("safetensors", "torch")
LAYOUTS = ("hf", "mlp")
# config.json keys that change between saves of one model without changing the model
VOLATILE_CONFIG_KEYS = (
    "_name_or_path",
    "transformers_version",
    "_commit_hash",
    "torch_dtype",
    "dtype",
    "_attn_implementation_autoset",
    "auto_map",
)


def load_foreign_torch(path: Path | str) -> Any:
    """Load a foreign ``.pt``/``.bin`` file safely (``weights_only=True``; no pickle code runs)."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure is a bad file for the user
        raise CurriculensError(f"cannot load {path} with weights_only=True: {exc}".splitlines()[0]) from None


def weights_format(path: Path | str) -> str:
    """``safetensors`` for ``*.safetensors``, ``torch`` for ``*.bin`` / ``*.pt`` / ``*.pth``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".safetensors":
        return "safetensors"
    if suffix in (".bin", ".pt", ".pth"):
        return "torch"
    raise CurriculensError(f"{path}: unknown weights format {suffix!r} (.safetensors, .bin, .pt, .pth)")


def flat_state_dict(obj: Any, where: Path | str) -> dict[str, torch.Tensor]:
    """A ``{name: tensor}`` dict from what ``torch.load`` returned.

    Accepts a state dict, one nested under ``state_dict`` / ``model_state_dict`` / ``model``, or a
    list of per-layer state dicts (keys become ``{i}.{key}``).
    """
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(x, dict) for x in obj):
        obj = {f"{i}.{k}": v for i, layer in enumerate(obj) for k, v in layer.items()}
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CurriculensError(f"{where} does not hold a state dict of tensors")
    return {str(k): v for k, v in obj.items()}


def check_readable(path: Path | str) -> None:
    """Raise the OSError of opening ``path`` for reading, if any (safetensors reports a file it
    may not read as "No such file or directory"; this says "Permission denied")."""
    with open(path, "rb"):
        pass


def read_weights(path: Path | str, fmt: str, layout: str = "hf") -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (format ``fmt``), with ``layout``'s keys mapped to curriculens'."""
    if fmt == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        check_readable(path)
        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CurriculensError(f"unreadable weights {path}: {exc}".splitlines()[0]) from None
    elif fmt == "torch":
        state = flat_state_dict(load_foreign_torch(path), path)
    else:
        raise CurriculensError(f"unknown weights format {fmt!r} (one of {', '.join(FORMATS)})")
    if layout == "mlp":
        return mlp_state(state, path)[1]
    if layout != "hf":
        raise CurriculensError(f"unknown weights layout {layout!r} (one of {', '.join(LAYOUTS)})")
    return state


_INDEX = re.compile(r"(\d+)")


def _linear_layers(state: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """``[(weight [out, in], bias [out] or None)]`` of the 2-D weights, in layer order.

    Order: curriculens keys (``blocks.{d}.fc``, then ``unembed``) or the numeric indices in
    the key names (``0.weight``, ``2.weight``, ``layers.1.weight``).
    """
    native = [k for k in state if k.startswith("blocks.") and k.endswith(".fc.weight")]
    if native and "unembed.weight" in state:
        names = sorted((k[: -len(".weight")] for k in native), key=lambda k: int(k.split(".")[1])) + ["unembed"]
    else:
        names = [k[: -len(".weight")] for k in state if k.endswith(".weight") and state[k].dim() == 2]

        def order(name: str) -> tuple:
            return tuple(int(x) for x in _INDEX.findall(name)) or (0,)

        names.sort(key=order)
    return [(state[f"{n}.weight"], state.get(f"{n}.bias")) for n in names]


def mlp_state(state: dict[str, torch.Tensor], where: Path | str) -> tuple[MLPConfig, dict[str, torch.Tensor]]:
    """``(MLPConfig, state dict with ParityMLP keys)`` for a parity MLP's weights.

    The layers must chain (``in`` of layer i+1 = ``out`` of layer i), every hidden layer must have
    the same width and every layer a bias, as in the paper's ``Linear -> ReLU -> ... -> Linear``.
    """
    layers = _linear_layers(state)
    if len(layers) < 2:
        raise CurriculensError(f"{where}: an MLP needs at least 2 linear layers, found {len(layers)}")
    if any(b is None for _, b in layers):
        raise CurriculensError(f"{where}: every MLP layer needs a bias")
    for (w0, _), (w1, _) in pairwise(layers):
        if w1.shape[1] != w0.shape[0]:
            raise CurriculensError(f"{where}: MLP layers do not chain ({tuple(w0.shape)} then {tuple(w1.shape)})")
    widths = {int(w.shape[0]) for w, _ in layers[:-1]}
    if len(widths) != 1:
        raise CurriculensError(f"{where}: MLP hidden layers differ in width {sorted(widths)}")
    cfg = MLPConfig(
        d_in=int(layers[0][0].shape[1]),
        width=widths.pop(),
        depth=len(layers) - 1,
        n_classes=int(layers[-1][0].shape[0]),
    )
    out: dict[str, torch.Tensor] = {}
    for d, (w, b) in enumerate(layers[:-1]):
        out[f"blocks.{d}.fc.weight"], out[f"blocks.{d}.fc.bias"] = w, b
    out["unembed.weight"], out["unembed.bias"] = layers[-1]
    return cfg, out


def canonical_hf_config(config: dict) -> dict:
    """An HF ``config.json`` without the keys that change between saves of one model."""
    return {k: v for k, v in sorted(config.items()) if k not in VOLATILE_CONFIG_KEYS}


def hf_model_config(config: dict, where: Path | str, supported: Iterable[str] | None = None) -> HFConfig:
    """The ``HFConfig`` of a foreign HF ``config.json``, or a one-line error naming the architecture.

    Args:
        supported: architectures the bridge supports (default: ``models.hf.bridge_architectures()``).
    """
    from models.hf import _hf_class, bridge_architectures

    if not isinstance(config, dict):
        raise CurriculensError(f"{where}: config.json is not a JSON object")
    archs = config.get("architectures") or []
    if not archs or not isinstance(archs, list):
        raise CurriculensError(f"{where}: config.json names no architecture ('architectures' is missing)")
    arch = str(archs[0])
    known = frozenset(supported) if supported is not None else bridge_architectures()
    if arch not in known:
        raise CurriculensError(f"architecture {arch} ({where}) is not supported by the TransformerLens 4 bridge")
    if "model_type" not in config:
        raise CurriculensError(f"{where}: config.json has no model_type")
    _hf_class(arch)
    return HFConfig(architecture=arch, config=canonical_hf_config(config))


def describe_model(cfg: ModelConfig) -> str:
    """A short label: the architecture (or kind) and its size."""
    from models.configs import d_model, n_layers

    return f"{cfg.label} ({n_layers(cfg)} layers, width {d_model(cfg)})"


TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "tokenizer.model",
    "spiece.model",
)


def tokenizer_dir(ckpt_dir: Path | str) -> Path:
    """Where a checkpoint's tokenizer lives: the checkpoint directory itself (native or copied),
    else the foreign directory an imported checkpoint came from."""
    ckpt_dir = Path(ckpt_dir)
    if any((ckpt_dir / n).is_file() for n in TOKENIZER_FILES):
        return ckpt_dir
    meta_path = ckpt_dir / C.META_FILE
    if meta_path.is_file():
        src = read_json(meta_path).get("source", {}).get("dir")
        if src:
            return Path(src)
    return ckpt_dir
