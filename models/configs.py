"""Frozen model configs. Each has a ``kind`` that selects its builder in ``models.registry``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from curriculens.config import from_dict
from curriculens.errors import CurriculensError


@dataclass(frozen=True)
class MLPConfig:
    """ReLU MLP: Linear(d_in->width) -> ReLU -> (depth-1) x [Linear(width->width) -> ReLU] -> Linear(width->n_classes).

    Args:
        d_in: input dimension (n of the (n, k)-parity); inputs are float in {-1, +1}.
        width: hidden width (paper: teacher 50,000, student 100).
        depth: number of hidden layers (paper: 1).
        n_classes: output classes (2 for parity).
    """

    kind: str = "mlp"
    d_in: int = 100
    width: int = 1000
    depth: int = 1
    n_classes: int = 2


@dataclass(frozen=True)
class GPT2Config:
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
    n_positions: int = 128
    n_layer: int = 2
    n_head: int = 4
    head_dim: int = 8
    dropout: float = 0.0
    tie_word_embeddings: bool = False

    @property
    def n_embd(self) -> int:
        return self.n_head * self.head_dim


@dataclass(frozen=True)
class BertConfig:
    """A BERT masked LM, built as Hugging Face ``BertForMaskedLM`` from this config.

    Args:
        vocab_size: token ids, including the specials (PAD, BOS, MASK, ...).
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: sizes.
        max_position_embeddings: longest sequence, BOS included.
        dropout: hidden and attention dropout.
    """

    kind: str = "bert"
    vocab_size: int = 8
    hidden_size: int = 64
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 256
    max_position_embeddings: int = 512
    dropout: float = 0.0


ModelConfig = Union[MLPConfig, GPT2Config, BertConfig]
_KINDS: dict[str, type] = {"mlp": MLPConfig, "gpt2": GPT2Config, "bert": BertConfig}


def model_config_from_dict(data: dict) -> ModelConfig:
    """Parse a model config dict; its ``kind`` picks the class."""
    if not isinstance(data, dict) or "kind" not in data:
        raise CurriculensError("model config has no 'kind' (one of: " + ", ".join(_KINDS) + ")")
    kind = data["kind"]
    if kind not in _KINDS:
        raise CurriculensError(f"unknown model kind {kind!r} (known: {', '.join(_KINDS)})")
    return from_dict(_KINDS[kind], data, where="model")
