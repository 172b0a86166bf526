"""Task configs: frozen, validated on construction, read from a run's ``config.json``.

Torch-free (the dashboard, summary and store read run configs without torch); the tasks
themselves live beside this module (``training.tasks.parity`` / ``pcfg`` / ``text``). The
``name`` field is the tag of the ``TaskConfig`` union (``curriculens.config`` tagged unions):
``task_config_from_dict({"name": "pcfg", ...})`` gives a ``PCFGConfig``. Checks that need the
grammar or the corpus (I/O) run when the task is built (``training.tasks.build_task``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from curriculens.config import Tag, canonical_json, cli, csv_of, from_tagged
from curriculens.errors import CurriculensError

OBJECTIVES = ("mlm", "next")
TEXT_FORMATS = ("auto", "text", "jsonl")


@dataclass(frozen=True)
class ParityConfig:
    """(n, k)-sparse parity.

    Args:
        n: input length.
        k: support size.
        support: support coordinates; empty = the first k (the paper's choice).
        n_eval: held-out examples (paper: 4096 for students).
        data_seed: seeds the held-out set (shared by every run of an experiment).
    """

    name: str = "parity"
    n: int = field(default=100, metadata=cli("input length n"))
    k: int = field(default=6, metadata=cli("support size k"))
    support: tuple = field(
        default=(), metadata=cli("support coordinates, comma-separated", parse=csv_of(int), default="the first k")
    )
    n_eval: int = field(default=4096, metadata=cli("held-out examples"))
    data_seed: int = field(default=0, metadata=cli("seed of the held-out set"))

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n <= 0:
            raise CurriculensError(f"parity n must be a positive integer, got {self.n!r}")
        if not isinstance(self.k, int) or not 0 < self.k <= self.n:
            raise CurriculensError(f"parity k (support size) must be in 1..n = 1..{self.n}, got {self.k!r}")
        if not isinstance(self.n_eval, int) or self.n_eval <= 0:
            raise CurriculensError(f"parity n_eval must be a positive number of held-out examples, got {self.n_eval!r}")
        s = self.support_coords
        if len(s) != self.k or len(set(s)) != self.k or min(s) < 0 or max(s) >= self.n:
            raise CurriculensError(f"parity support {s} must be {self.k} distinct coordinates in [0, {self.n})")

    @property
    def support_coords(self) -> tuple[int, ...]:
        return tuple(sorted(self.support)) if self.support else tuple(range(self.k))


@dataclass(frozen=True)
class PCFGConfig:
    """A PCFG language-modelling task.

    Args:
        grammar: a bundled grammar's name (``cfg3b``, the paper's) or a path to a grammar JSON
            (the same format), relative to the working directory; ``""`` = a grammar generated from the ``gen_*`` fields.
        gen_levels, gen_symbols, gen_rules, gen_rhs, gen_terminals, gen_seed: arguments of
            ``training.data.pcfg.random_grammar`` (levels include root and preterminals; the
            mean sentence length is about mean(gen_rhs) ** (gen_levels - 1)).
        start_level: sentences start from a symbol drawn uniformly at this level (cfg3b from
            level 1: ~150 tokens, the CPU setting of the calibration notes).
        objective: ``mlm`` (BERT, masked tokens scored) | ``next`` (GPT-2, every next token).
        mask_rate, include_bos, hide_masked_keys: masked-LM options (paper: 0.3, True, True).
        eos: append EOS to each sentence; None = True for ``next``, False for ``mlm``.
        n_eval: held-out sentences (paper: 4096).
        max_len: truncate sentences to this many terminals; 0 = the grammar's longest sentence.
        data_seed: seeds the held-out set and the probe sentences.
        eval_batch: sequences per held-out batch (bounds the attention memory).
        next_span_level: ``next`` only: -1 = predict every next token (default); L >= 0 =
            predict only the last token of each level-L span (the paper's GPT-2 setting,
            ``create_ce.py --desired_level L``; cfg3b L = 3 labels ~16 of ~300 tokens); L must
            be at least ``start_level`` (spans above the start do not exist).
        n_generate: sentences generated for ``eval_accept`` (next-token only; 0 = off).
        official_pad: masked LM: BERT's ``pad_token_id`` = 0, as the official models (built
            from the ``bert-base-uncased`` config; their ``--pad_token_id`` reaches only the
            tokenizer), so the terminal with id 0 keeps a zero, untrained input embedding.
            Default False: the grammar's PAD id (a deliberate deviation, docs/pcfg.md).
    """

    name: str = "pcfg"
    grammar: str = ""
    gen_levels: int = 6
    gen_symbols: int = 3
    gen_rules: int = 2
    gen_rhs: tuple = (2, 3)
    gen_terminals: int = 3
    gen_seed: int = 0
    start_level: int = 0
    objective: str = "mlm"
    mask_rate: float = 0.3
    include_bos: bool = True
    hide_masked_keys: bool = True
    eos: bool | None = None
    n_eval: int = 512
    max_len: int = 0
    data_seed: int = 0
    eval_batch: int = 64
    n_generate: int = 32
    next_span_level: int = -1
    official_pad: bool = False

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise CurriculensError(f"unknown PCFG objective {self.objective!r} (mlm or next)")
        if not 0.0 < self.mask_rate <= 1.0:
            raise CurriculensError(f"mask_rate must be in (0, 1], got {self.mask_rate}")
        if self.n_eval <= 0 or self.eval_batch <= 0:
            raise CurriculensError("n_eval and eval_batch must be positive")

    @property
    def use_eos(self) -> bool:
        return (self.objective == "next") if self.eos is None else bool(self.eos)


@dataclass(frozen=True)
class TextConfig:
    """A local text corpus: probing imported checkpoints, and training teachers and students.

    Args:
        corpus: path of the text or JSONL file (``curriculens import`` / ``train-teacher`` make it absolute).
        format: ``auto`` (``.jsonl`` suffix = JSONL), ``text`` or ``jsonl``.
        field: the JSONL key holding each document's text.
        max_tokens: longest model input, LEAD included (capped by the model's positions).
        min_tokens: shortest chunk kept (tokens, LEAD excluded).
        hide_masked_keys: masked positions are also hidden as attention keys (the paper's PCFG
            convention); off by default, as standard masked LMs see MASK tokens as keys.
        tokenizer: training only: the directory of the tokenizer every run of the experiment
            shares (an imported checkpoint's, or one ``training.tasks.text.write_word_tokenizer``
            made); "" = the task only probes (each checkpoint brings its own tokenizer).
        objective: training only: ``mlm`` (BERT students and teachers) or ``next`` (GPT-2).
        mask_rate: training only: the share of real tokens a masked-LM batch selects.
        n_eval: training only: held-out chunks (a seeded sample, never trained on).
        data_seed: training only: picks the held-out chunks and their masking.
    """

    name: str = "text"
    corpus: str = ""
    format: str = "auto"
    field: str = "text"
    max_tokens: int = 128
    min_tokens: int = 8
    hide_masked_keys: bool = False
    tokenizer: str = ""
    objective: str = "mlm"
    mask_rate: float = 0.15
    n_eval: int = 128
    data_seed: int = 0

    def __post_init__(self) -> None:
        if self.format not in TEXT_FORMATS:
            raise CurriculensError(f"unknown text format {self.format!r} (one of {', '.join(TEXT_FORMATS)})")
        if self.max_tokens < 4 or self.min_tokens < 2 or self.min_tokens >= self.max_tokens:
            raise CurriculensError("text task: need max_tokens >= 4 and 2 <= min_tokens < max_tokens")
        if self.objective not in ("mlm", "next"):
            raise CurriculensError(f"text task: objective must be mlm or next, got {self.objective!r}")
        if not 0.0 < self.mask_rate < 1.0:
            raise CurriculensError(f"text task: mask_rate must lie in (0, 1), got {self.mask_rate}")
        if self.n_eval < 1:
            raise CurriculensError("text task: n_eval must be positive")


TaskConfig = ParityConfig | PCFGConfig | TextConfig
TASK_TAG = Tag("name", "task")
TaskField = Annotated[TaskConfig, TASK_TAG]  # a config field holding any task config


def task_config_from_dict(data: dict) -> TaskConfig:
    """Parse a task config dict; its ``name`` picks the class (one-line error if unknown)."""
    return from_tagged(TaskConfig, TASK_TAG, data)


def same_task(a: TaskConfig | dict | None, b: TaskConfig | dict | None, where: str = "") -> bool:
    """Whether two task configs (parsed, or dicts as stored in ``experiment.json`` and
    ``config.json``, with or without their defaults) are equal by value, defaults filled in.
    A stored dict that is not a task config is a one-line error naming ``where``."""

    def parsed(t):
        if t is None or not isinstance(t, dict):
            return t
        try:
            return task_config_from_dict(t)
        except CurriculensError as exc:
            raise CurriculensError(f"{where or 'stored task'} does not hold a valid task config ({exc})") from None

    return canonical_json(parsed(a)) == canonical_json(parsed(b))
