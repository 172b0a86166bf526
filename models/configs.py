"""Frozen model configs. Each has a ``kind`` that selects its builder in ``models.registry``
and tags it in the ``ModelConfig`` union (``curriculens.config`` tagged unions). Every kind
declares what callers need (``ModelKind``: ``n_layers``, ``d_model``, ``n_outputs``,
``takes_tokens``, ``objective``, ``max_positions``, ``foreign``, ``label``), so callers ask
the config instead of telling the kinds apart with ``isinstance``; ``isinstance`` on a kind is
left to building and serialising a model (``models.registry``, ``models.hf``,
``models.checkpoint``) and to checks of one kind's own fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Protocol, runtime_checkable

from curriculens.config import Tag, cli, from_tagged
from curriculens.errors import CurriculensError


def _positive(cfg, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not isinstance(value, int) or value <= 0:
            raise CurriculensError(f"{cfg.kind} model: {name} must be a positive integer, got {value!r}")


def _dropout(cfg) -> None:
    if not isinstance(cfg.dropout, (int, float)) or not 0 <= cfg.dropout < 1:
        raise CurriculensError(f"{cfg.kind} model: dropout must be in [0, 1), got {cfg.dropout!r}")


@runtime_checkable
class ModelKind(Protocol):
    """What every model config declares (``tests/models/test_model_kinds.py`` checks each kind).

    ``n_layers``: blocks (the MLP's hidden layers). ``d_model``: residual width (the MLP's
    hidden width). ``n_outputs``: the last dim of the logits (MLP classes, an LM's vocabulary;
    0 = unknown). ``takes_tokens``: inputs are token ids ``[batch, pos]`` (Transformers), not
    feature vectors ``[batch, d_in]`` (the MLP). ``objective``: ``mlm`` (masked LM), ``next``
    (causal LM) or None (a classifier, or another head). ``max_positions``: longest input in
    tokens (0 = no limit known, or no sequence). ``foreign``: built from a checkpoint's own
    ``config.json`` (``curriculens import``), whose positions and heads are its own. ``label``:
    the kind, or the architecture of a foreign model, for messages.
    """

    kind: str

    @property
    def n_layers(self) -> int: ...
    @property
    def d_model(self) -> int: ...
    @property
    def n_outputs(self) -> int: ...
    @property
    def takes_tokens(self) -> bool: ...
    @property
    def objective(self) -> str | None: ...
    @property
    def max_positions(self) -> int: ...
    @property
    def foreign(self) -> bool: ...
    @property
    def label(self) -> str: ...


class _Native:
    """Shared declarations of the kinds curriculens builds itself (not ``HFConfig``)."""

    foreign = False

    @property
    def label(self) -> str:
        return self.kind


@dataclass(frozen=True)
class MLPConfig(_Native):
    """ReLU MLP: Linear(d_in->width) -> ReLU -> (depth-1) x [Linear(width->width) -> ReLU] -> Linear(width->n_classes).

    Args:
        d_in: input dimension (n of the (n, k)-parity); inputs are float in {-1, +1}.
        width: hidden width (paper: teacher 50,000, student 100).
        depth: number of hidden layers (paper: 1).
        n_classes: output classes (2 for parity).
    """

    kind: str = "mlp"
    d_in: int = 100
    width: int = field(default=1000, metadata=cli("MLP hidden width", default=""))
    depth: int = field(default=1, metadata=cli("MLP hidden layers", default=""))
    n_classes: int = 2

    def __post_init__(self) -> None:
        _positive(self, "d_in", "width", "depth", "n_classes")

    @property
    def n_layers(self) -> int:
        """Hidden layers."""
        return self.depth

    @property
    def d_model(self) -> int:
        """Hidden width."""
        return self.width

    takes_tokens = False
    objective = None
    max_positions = 0

    @property
    def n_outputs(self) -> int:
        return self.n_classes


@dataclass(frozen=True)
class GPT2Config(_Native):
    """A GPT-2 (causal) Transformer, built as Hugging Face ``GPT2LMHeadModel`` from this config.

    Args:
        vocab_size: token ids 0..vocab_size-1 (parity: 2, tokens (1-x)/2).
        n_positions: learned absolute positions.
        n_layer, n_head, head_dim: width is ``n_head * head_dim`` (paper parity: 8 per head).
        dropout: resid/embd/attn dropout (paper: GPT-2's 0.1; default 0 here, see docs/paper-differences.md).
        tie_word_embeddings: paper parity uses untied embeddings.
    """

    kind: str = "gpt2"
    vocab_size: int = 2
    n_positions: int = field(default=128, metadata=cli("GPT-2 learned positions", default=""))
    n_layer: int = field(default=2, metadata=cli("GPT-2 layers", default=""))
    n_head: int = field(default=4, metadata=cli("GPT-2 attention heads", default=""))
    head_dim: int = field(default=8, metadata=cli("GPT-2 width per head (width = heads x head_dim)", default=""))
    dropout: float = field(default=0.0, metadata=cli("Transformer dropout"))
    tie_word_embeddings: bool = False

    def __post_init__(self) -> None:
        _positive(self, "vocab_size", "n_positions", "n_layer", "n_head", "head_dim")
        _dropout(self)

    @property
    def n_embd(self) -> int:
        return self.n_head * self.head_dim

    @property
    def n_layers(self) -> int:
        return self.n_layer

    @property
    def d_model(self) -> int:
        return self.n_embd

    takes_tokens = True
    objective = "next"

    @property
    def n_outputs(self) -> int:
        return self.vocab_size

    @property
    def max_positions(self) -> int:
        return self.n_positions


@dataclass(frozen=True)
class BertConfig(_Native):
    """A BERT masked LM, built as Hugging Face ``BertForMaskedLM`` from this config.

    Args:
        vocab_size: token ids, including the specials (PAD, BOS, MASK, ...).
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: sizes.
        max_position_embeddings: longest sequence, BOS included.
        dropout: hidden and attention dropout.
        pad_token_id: the PAD id of the data (the grammar's, e.g. 5 in cfg3b), or None. It
            becomes the word embedding's ``padding_idx``: that row starts at zero and never
            gets a gradient. Trap: a real token's id here silently freezes that token's input
            embedding at zero (Hugging Face's default 0 is cfg3b's terminal ``a``).
    """

    kind: str = "bert"
    vocab_size: int = 8
    hidden_size: int = field(default=64, metadata=cli("BERT hidden size", flag="--hidden", default=""))
    num_hidden_layers: int = field(default=4, metadata=cli("BERT layers", flag="--layers", default=""))
    num_attention_heads: int = field(default=4, metadata=cli("BERT attention heads", flag="--heads", default=""))
    intermediate_size: int = field(default=256, metadata=cli("BERT MLP size", flag="--intermediate", default=""))
    max_position_embeddings: int = 512
    dropout: float = field(default=0.0, metadata=cli("Transformer dropout"))
    pad_token_id: int | None = None

    def __post_init__(self) -> None:
        _positive(
            self,
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
        )
        if self.hidden_size % self.num_attention_heads:
            raise CurriculensError(
                f"bert model: hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        _dropout(self)

    @property
    def n_layers(self) -> int:
        return self.num_hidden_layers

    @property
    def d_model(self) -> int:
        return self.hidden_size

    takes_tokens = True
    objective = "mlm"

    @property
    def n_outputs(self) -> int:
        return self.vocab_size

    @property
    def max_positions(self) -> int:
        return self.max_position_embeddings


@dataclass(frozen=True)
class HFConfig:
    """A foreign Hugging Face model (``curriculens import``): any architecture the TransformerLens 4
    bridge supports, built from its own ``config.json`` with the ``transformers`` class of that
    name (never remote code).

    Args:
        architecture: the HF class name (``GPT2LMHeadModel``, ``BertForMaskedLM``,
            ``GPTNeoXForCausalLM``, ...), also the bridge's adapter key.
        config: the checkpoint's HF ``config.json`` as a dict (``model_type`` included).
    """

    kind: str = "hf"
    architecture: str = ""
    config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.architecture or not isinstance(self.config, dict) or "model_type" not in self.config:
            raise CurriculensError("an hf model config needs an architecture and a config dict with model_type")

    @property
    def objective(self) -> str | None:
        """``mlm`` (masked LM), ``next`` (causal LM) or None (other heads)."""
        return lm_objective(self.architecture)

    def _get(self, *names: str, default=None):
        for name in names:
            if name in self.config:
                return self.config[name]
        text = self.config.get("text_config")
        if isinstance(text, dict):
            for name in names:
                if name in text:
                    return text[name]
        return default

    @property
    def vocab_size(self) -> int:
        return int(self._get("vocab_size", default=0))

    @property
    def n_layers(self) -> int:
        return int(self._get("num_hidden_layers", "n_layer", "num_layers", "n_layers", default=0))

    @property
    def d_model(self) -> int:
        return int(self._get("hidden_size", "n_embd", "d_model", "dim", default=0))

    @property
    def max_positions(self) -> int:
        """Longest input (0 = unknown, e.g. rotary models without a limit in their config)."""
        return int(self._get("max_position_embeddings", "n_positions", "n_ctx", default=0) or 0)

    @property
    def n_outputs(self) -> int:
        """The LM head's vocabulary (``vocab_size``; 0 = not in the config)."""
        return self.vocab_size

    takes_tokens = True
    foreign = True

    @property
    def label(self) -> str:
        return self.architecture


def lm_objective(architecture: str) -> str | None:
    """``mlm`` for ``*ForMaskedLM``, ``next`` for ``*ForCausalLM`` / ``*LMHeadModel``, else None."""
    if architecture.endswith("ForMaskedLM"):
        return "mlm"
    if architecture.endswith("ForCausalLM") or architecture.endswith("LMHeadModel"):
        return "next"
    return None


ModelConfig = MLPConfig | GPT2Config | BertConfig | HFConfig
MODEL_TAG = Tag("kind", "model kind", "model")
ModelField = Annotated[ModelConfig, MODEL_TAG]  # a config field holding any model config


def n_layers(cfg: ModelConfig) -> int:
    """Transformer blocks (hidden layers for the MLP): every model config's ``n_layers``."""
    return cfg.n_layers


def d_model(cfg: ModelConfig) -> int:
    """Residual-stream width (hidden width for the MLP): every model config's ``d_model``."""
    return cfg.d_model


def model_config_from_dict(data: dict) -> ModelConfig:
    """Parse a model config dict; its ``kind`` picks the class (one-line error if unknown)."""
    return from_tagged(ModelConfig, MODEL_TAG, data)
