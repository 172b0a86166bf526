"""Real text: a local corpus + a tokenizer, for probing imported language models and for training.

Probing: the probe sweep (``probes/tasks/text/__init__.py``) reads a masked or causal LM trajectory brought in
by ``curriculens import`` (or trained here) with each checkpoint's own tokenizer.

Training (``TextConfig.tokenizer`` set): teachers and students of every method train on the
corpus's chunks with that one tokenizer, through the same loop as the other tasks. A seeded
sample of ``n_eval`` chunks is held out; a training batch is ``batch_size`` chunks drawn with
replacement per step (keyed by run seed, data seed, step), masked BERT-style (``mask_rate`` of
the real tokens, LEAD never; 80/10/10 mask/random/keep) for ``mlm``, next-token for ``next``.

- Corpus: a UTF-8 text file (documents = paragraphs separated by blank lines) or a JSONL file
  (one document per line, its ``field`` key, default ``text``). Validated on construction: it
  must exist, be non-empty, valid UTF-8 without NUL bytes, and (JSONL) hold the field.
- Tokenizer: the checkpoint's own (``tokenizer.json`` / ``vocab.txt`` / ... in the checkpoint
  directory, or in the directory an imported checkpoint came from), loaded offline with
  ``transformers.AutoTokenizer(local_files_only=True)``, never remote code. None found: a
  one-line error.
- Probe sequences: each document is tokenized without special tokens and cut into chunks of at
  most ``max_tokens - 1`` tokens (chunks under ``min_tokens`` dropped); a probe set of ``n``
  chunks is a seeded sample, the same for every checkpoint that shares a tokenizer. Model
  inputs are ``[LEAD] + chunk`` with LEAD the tokenizer's CLS, else BOS, else EOS token (as
  Hugging Face starts GPT-2-style inputs), as the PCFG task puts BOS first, so the PCFG n-gram
  and context probes run unchanged on a ``BoundText``. A tokenizer with none of the three is
  refused (one line).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from curriculens.errors import CurriculensError
from curriculens.seeding import (
    TEXT_EVAL,
    TEXT_EVAL_MASK,
    TEXT_MASK,
    TEXT_PROBE_CORPUS,
    TEXT_TRAIN,
    numpy_rng,
    torch_generator,
)
from models.configs import ModelConfig
from training.data.pcfg_mlm import IGNORE, SpecialIds, mlm_batch, next_token_batch, pad_sequences, position_ids
from training.tasks.base import Batch, Task
from training.tasks.configs import TextConfig

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model")


def read_documents(cfg: TextConfig) -> list[str]:
    """The corpus's documents (non-empty strings); a one-line CurriculensError on bad input."""
    path = Path(cfg.corpus)
    if not cfg.corpus or not path.is_file():
        raise CurriculensError(f"text corpus not found: {cfg.corpus or '(none; set --task-set corpus=FILE)'}")
    raw = path.read_bytes()
    if not raw.strip():
        raise CurriculensError(f"text corpus {path} is empty")
    if b"\x00" in raw:
        raise CurriculensError(f"text corpus {path} is not text (it holds NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CurriculensError(f"text corpus {path} is not UTF-8 text (byte {exc.start})") from None
    fmt = cfg.format if cfg.format != "auto" else ("jsonl" if path.suffix.lower() == ".jsonl" else "text")
    if fmt == "text":
        docs = [" ".join(p.split()) for p in text.replace("\r\n", "\n").split("\n\n")]
    else:
        docs = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise CurriculensError(f"text corpus {path} line {i} is not JSON") from None
            if not isinstance(rec, dict) or not isinstance(rec.get(cfg.field), str):
                raise CurriculensError(f"text corpus {path} line {i} has no string field {cfg.field!r}")
            docs.append(rec[cfg.field])
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise CurriculensError(f"text corpus {path} holds no text")
    return docs


def load_tokenizer(directory: Path | str):
    """The tokenizer saved in ``directory`` (offline, no remote code); a one-line error if none."""
    directory = Path(directory)
    if not any((directory / n).is_file() for n in TOKENIZER_FILES):
        raise CurriculensError(
            f"no tokenizer in {directory} (expected one of {', '.join(TOKENIZER_FILES)}); "
            "the text task needs the checkpoint's own tokenizer"
        )
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - a broken tokenizer is the user's input
        raise CurriculensError(f"cannot load the tokenizer in {directory}: {exc}".splitlines()[0]) from None


def _fingerprint(directory: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(directory.iterdir()):
        if p.is_file() and (
            p.name.startswith(("tokenizer", "vocab", "merges", "special_tokens", "added_tokens", "spiece"))
        ):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class BoundTextConfig:
    """What the PCFG probes read from ``task.cfg``: the model's objective and the masking rule."""

    objective: str
    hide_masked_keys: bool


@dataclass
class ProbeChunks:
    """Probe sequences: token ids per chunk (LEAD excluded) and their lengths."""

    tokens: list[np.ndarray]
    lengths: np.ndarray


class BoundText:
    """The text task bound to one tokenizer: the interface ``probes.tasks.pcfg.ngram`` / ``probes.tasks.pcfg.context``
    read (``probe_corpus``, ``plain_batch``, ``special``, ``max_terminals``, ``cfg``,
    ``expected_length``)."""

    def __init__(self, task: TextTask, tokenizer, objective: str, max_positions: int = 0) -> None:
        self.task, self.tokenizer = task, tokenizer
        lead = next(
            (t for t in (tokenizer.cls_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) if t is not None),
            None,
        )
        if lead is None:
            raise CurriculensError("the tokenizer has no CLS, BOS or EOS token to start each sequence with")
        pad = next(t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id, lead) if t is not None)
        mask = tokenizer.mask_token_id
        if objective == "mlm" and mask is None:
            raise CurriculensError("the tokenizer of this masked LM has no mask token")
        eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        self.special = SpecialIds(
            bos=int(lead),
            eos=int(eos if eos is not None else pad),
            pad=int(pad),
            mask=int(mask if mask is not None else pad),
            terminals=tuple(sorted(set(range(len(tokenizer))) - set(tokenizer.all_special_ids))),
        )
        self.cfg = BoundTextConfig(objective, task.cfg.hide_masked_keys)
        longest = min(task.cfg.max_tokens, max_positions) if max_positions > 0 else task.cfg.max_tokens
        self.max_terminals = longest - 1
        self._chunks = self._tokenize()
        if len(self._chunks) < 2:
            raise CurriculensError(
                f"text corpus {task.cfg.corpus} gives {len(self._chunks)} chunk(s) of >= {task.cfg.min_tokens} tokens; need 2"
            )

    def _tokenize(self) -> list[np.ndarray]:
        size, out = self.max_terminals, []
        for doc in self.task.documents:
            ids = self.tokenizer(doc, add_special_tokens=False)["input_ids"]
            for i in range(0, len(ids), size):
                chunk = ids[i : i + size]
                if len(chunk) >= self.task.cfg.min_tokens:
                    out.append(np.asarray(chunk, dtype=np.int64))
        return out

    @property
    def chunks(self) -> list[np.ndarray]:
        """Every chunk of the corpus (token ids, LEAD excluded), in corpus order."""
        return self._chunks

    def expected_length(self) -> float:
        """Mean chunk length (tokens): sets the automatic n-gram stride and context offsets."""
        return float(np.mean([len(c) for c in self._chunks]))

    def probe_corpus(self, n: int, seed: int) -> ProbeChunks:
        """``n`` chunks (all if fewer), a seeded sample in corpus order."""
        rng = numpy_rng(TEXT_PROBE_CORPUS, seed)
        idx = np.arange(len(self._chunks))
        if len(idx) > n:
            idx = np.sort(rng.choice(idx, size=n, replace=False))
        tokens = [self._chunks[i] for i in idx]
        return ProbeChunks(tokens, np.asarray([len(t) for t in tokens], dtype=np.int64))

    def plain_batch(self, seqs) -> Batch:
        """Unmasked ``[LEAD] + tokens``: ``input_ids``, ``attention_mask`` (real tokens)."""
        ids, real = pad_sequences(seqs, self.special, eos=False, max_len=self.max_terminals)
        return {"input_ids": ids, "attention_mask": real.to(torch.int64)}


class TextTask(Task):
    """Probing and training on a local corpus; see the module docstring."""

    name = "text"

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__(cfg)
        self.documents = read_documents(cfg)
        if cfg.tokenizer and not Path(cfg.tokenizer).is_dir():
            raise CurriculensError(f"text task: tokenizer directory not found: {cfg.tokenizer}")
        self._bound: dict[tuple[str, str], BoundText] = {}
        self._train: BoundText | None = None
        self._split: tuple[list[np.ndarray], list[np.ndarray]] | None = None
        self._eval: Batch | None = None

    def bind(self, ckpt_dir: Path | str, model_cfg: ModelConfig) -> BoundText:
        """The task with the tokenizer of checkpoint ``ckpt_dir`` (cached per tokenizer content);
        a checkpoint without one (a run trained here) takes the task's ``tokenizer``."""
        from models.foreign import tokenizer_dir

        directory = tokenizer_dir(ckpt_dir)
        if self.cfg.tokenizer and not any((directory / n).is_file() for n in TOKENIZER_FILES):
            directory = Path(self.cfg.tokenizer)
        objective = self.objective_of(model_cfg)
        positions = usable_positions(model_cfg)
        key = (_fingerprint(directory) if directory.is_dir() else str(directory), objective, positions)
        if key not in self._bound:
            self._bound[key] = BoundText(self, load_tokenizer(directory), objective, positions)
        return self._bound[key]

    @staticmethod
    def objective_of(model_cfg: ModelConfig) -> str:
        if model_cfg.objective is None:
            raise CurriculensError(f"the text task needs a masked or causal LM, got {model_cfg.label}")
        return model_cfg.objective

    def check_model(self, model_cfg: ModelConfig) -> None:
        """The model is a masked or causal LM; when the task trains, of its objective, with a
        vocabulary that holds the tokenizer's ids and positions for ``max_tokens``."""
        objective = self.objective_of(model_cfg)
        if not self.cfg.tokenizer:
            return
        if objective != self.cfg.objective:
            raise CurriculensError(
                f"the text task trains objective {self.cfg.objective!r}, but the model is a "
                f"{'masked' if objective == 'mlm' else 'causal'} LM (set --task-set objective={objective})"
            )
        bound = self.trainer()
        vocab = model_cfg.n_outputs
        positions = usable_positions(model_cfg) if model_cfg.foreign else model_cfg.max_positions
        if vocab < len(bound.tokenizer):
            raise CurriculensError(f"model vocab_size {vocab} < the tokenizer's {len(bound.tokenizer)} ids")
        if positions and positions < bound.max_terminals + 1:
            raise CurriculensError(
                f"the model takes {positions} positions, the task's chunks need {bound.max_terminals + 1}; "
                "lower --task-set max_tokens"
            )

    def check_source(self, ckpt_dir: Path, model_cfg: ModelConfig) -> None:
        """Fail (one line) unless the checkpoint directory has a tokenizer fit for the model that
        cuts the corpus into at least two chunks (``curriculens import`` calls it before writing)."""
        directory = ckpt_dir
        if self.cfg.tokenizer and not any((Path(ckpt_dir) / n).is_file() for n in TOKENIZER_FILES):
            directory = Path(self.cfg.tokenizer)
        BoundText(self, load_tokenizer(directory), self.objective_of(model_cfg), usable_positions(model_cfg))

    # --- training -----------------------------------------------------------------------
    def trainer(self) -> BoundText:
        """The task bound to its training tokenizer (``cfg.tokenizer``); one-line error if unset."""
        if self._train is None:
            if not self.cfg.tokenizer:
                raise CurriculensError(
                    "the text task trains with one tokenizer for all runs: set --task-set tokenizer=DIR "
                    "(a checkpoint's tokenizer directory)"
                )
            self._train = BoundText(self, load_tokenizer(self.cfg.tokenizer), self.cfg.objective, self.cfg.max_tokens)
        return self._train

    def split(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``(training chunks, held-out chunks)``: ``n_eval`` chunks held out, a seeded sample."""
        if self._split is None:
            chunks = self.trainer().chunks
            if len(chunks) < self.cfg.n_eval + 2:
                raise CurriculensError(
                    f"text corpus {self.cfg.corpus} gives {len(chunks)} chunks; n_eval={self.cfg.n_eval} "
                    "held out leaves too few to train on (lower --task-set n_eval)"
                )
            held = set(numpy_rng(TEXT_EVAL, self.cfg.data_seed).choice(len(chunks), self.cfg.n_eval, replace=False))
            self._split = (
                [c for i, c in enumerate(chunks) if i not in held],
                [c for i, c in enumerate(chunks) if i in held],
            )
        return self._split

    def _build(self, seqs: list[np.ndarray], gen: torch.Generator) -> Batch:
        bound = self.trainer()
        if self.cfg.objective == "mlm":
            return mlm_batch(
                seqs,
                bound.special,
                gen,
                mask_rate=self.cfg.mask_rate,
                include_bos=False,
                hide_masked_keys=self.cfg.hide_masked_keys,
                max_len=bound.max_terminals,
            )
        return next_token_batch(seqs, bound.special, eos=False, max_len=bound.max_terminals)

    def train_batch(self, step: int, batch_size: int, seed: int) -> Batch:
        train, _ = self.split()
        idx = numpy_rng(TEXT_TRAIN, seed, self.cfg.data_seed, step).integers(0, len(train), batch_size)
        return self._build([train[i] for i in idx], torch_generator(TEXT_MASK, seed, self.cfg.data_seed, step))

    def eval_batches(self, batch_size: int) -> Iterator[Batch]:
        if self._eval is None:
            _, held = self.split()
            self._eval = self._build(held, torch_generator(TEXT_EVAL_MASK, self.cfg.data_seed))
        n = self._eval["input_ids"].shape[0]
        for i in range(0, n, max(1, batch_size)):
            yield {k: v[i : i + batch_size] for k, v in self._eval.items()}

    def default_model(self, size: str) -> ModelConfig:
        """The PCFG task's sizes (``training.tasks.pcfg.SIZES``: ``teacher``, ``student``,
        ``cpu-teacher``, ...) for the task's objective, over the training tokenizer's ids."""
        from models.configs import model_config_from_dict
        from training.tasks.pcfg import model_dict

        bound = self.trainer()
        return model_config_from_dict(
            model_dict(self.cfg.objective, size, len(bound.tokenizer), bound.max_terminals + 1, bound.special.pad)
        )

    def model_input(self, batch: Batch, model_cfg: ModelConfig) -> tuple[torch.Tensor, dict]:
        """``input_ids`` with ``attention_mask`` and explicit ``position_ids`` (the mask may hide
        masked keys; see ``training.data.pcfg_mlm.position_ids``)."""
        mask = batch["attention_mask"]
        if model_cfg.foreign and not self.cfg.hide_masked_keys:
            return batch["input_ids"], {"attention_mask": mask}  # rotary and other models: their own positions
        return batch["input_ids"], {"attention_mask": mask, "position_ids": position_ids(mask)}

    def scored(self, logits: torch.Tensor, batch: Batch, model_cfg: ModelConfig):
        """Logits [N, V] and targets [N] at the labelled positions (masked tokens / next tokens)."""
        keep = batch["labels"] != IGNORE
        return logits[keep], batch["labels"][keep]


def usable_positions(model_cfg: ModelConfig) -> int:
    """The longest input the model takes (0 = no limit in its config). RoBERTa-style models
    reserve ``pad_token_id + 1`` position ids, so they take that many fewer. 0 for the models
    curriculens builds (the task sizes them to its chunks)."""
    if not model_cfg.foreign:
        return 0
    n = model_cfg.max_positions
    model_type = str(model_cfg.config.get("model_type", ""))
    if n and ("roberta" in model_type or model_type == "camembert"):
        n -= int(model_cfg.config.get("pad_token_id") or 0) + 1
    return max(n, 0)


def write_word_tokenizer(cfg: TextConfig, out_dir: Path | str, size: int = 2000) -> Path:
    """Save a word-level tokenizer over the corpus's ``size`` most frequent words (lowercased;
    BERT specials for ``mlm``, GPT-2's for ``next``; other words map to UNK) into ``out_dir``,
    for a teacher trained from scratch. Returns ``out_dir``."""
    from training.foreign.fixtures import corpus_words, make_tokenizer

    if size < 2:
        raise CurriculensError(f"a word tokenizer needs size >= 2, got {size}")
    words = corpus_words("\n".join(read_documents(cfg)), size)
    out_dir = Path(out_dir)
    make_tokenizer("bert" if cfg.objective == "mlm" else "gpt2", words).save_pretrained(str(out_dir))
    return out_dir
