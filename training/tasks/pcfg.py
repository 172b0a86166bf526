"""Language modelling on a PCFG (paper sections 4-6): masked LM (BERT) or next-token (GPT-2).

Data (see ``training.data.pcfg_mlm`` for the exact batch conventions):

- Training stream: fresh sentences every step. Batch ``step`` of a run seeded ``seed`` holds
  sentences ``step*B .. step*B+B-1`` of the sampler's counter-based stream keyed by
  ``(seed, data_seed)``; its masks come from a generator keyed by ``(seed, data_seed, step)``.
  So a batch is a pure function of (config, seed, step, B): resuming is exact, and no pool of
  sentences is stored.
- Held-out set: ``n_eval`` sentences keyed by ``data_seed`` only (shared by every run of an
  experiment), masked once (static masks, as in the paper), sorted by length and served in
  batches of at most ``eval_batch`` sequences padded to their own longest sentence.
- Next-token only: ``extra_eval`` samples ``n_generate`` sentences from BOS at temperature 1
  (seeded, the same every evaluation) and logs ``eval_accept`` = the fraction the grammar
  accepts (a sentence must end with EOS within ``max_len`` terminals).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from curriculens.errors import CurriculensError
from curriculens.seeding import (
    PCFG_EVAL,
    PCFG_EVAL_MASK,
    PCFG_GENERATE,
    PCFG_MASK,
    PCFG_PROBE,
    PCFG_TRAIN,
    keyed_seed,
    torch_generator,
)
from models.configs import ModelConfig
from models.registry import logits_of
from training.data.pcfg_mlm import IGNORE, SpecialIds, mlm_batch, next_token_batch, position_ids
from training.tasks.base import Batch, Task
from training.tasks.configs import PCFGConfig

log = logging.getLogger(__name__)


# (layers, heads, head_dim, dropout) of each size; BERT intermediate = 4 x hidden
SIZES = {
    "teacher": (4, 32, 8, 0.1),  # paper teacher: hidden 256
    "student": (4, 8, 8, 0.1),  # paper student: hidden 64
    "cpu-teacher": (4, 4, 16, 0.0),  # calibration: hidden 64
    "cpu-teacher-wide": (4, 8, 16, 0.0),  # hidden 128: held-out masked acc 0.947-0.951 after 5000 steps (docs/pcfg.md)
    "cpu-student": (4, 4, 8, 0.0),  # hidden 32: half the CPU teacher's width, same depth
    "demo-teacher": (2, 4, 8, 0.0),  # hidden 32
    "demo-student": (2, 2, 4, 0.0),  # hidden 8
    "tiny-teacher": (2, 2, 8, 0.0),  # hidden 16
    "tiny-student": (1, 2, 4, 0.0),  # hidden 8
}


OFFICIAL_BERT_PAD_ID = 0  # bert-base-uncased's pad_token_id, which the official masked-LM models keep


def model_dict(objective: str, size: str, vocab_size: int, seq_len: int, pad_id: int | None = None) -> dict:
    """A model config dict for ``size`` (a key of ``SIZES``): BERT for ``mlm``, GPT-2 for ``next``.

    Positions: 1024 for the paper sizes (as in the paper), else ``seq_len`` rounded up to 64.
    ``pad_id``: the grammar's PAD id, BERT's ``pad_token_id`` (its embedding's padding row).
    """
    if size not in SIZES:
        raise CurriculensError(f"unknown model size {size!r} (one of {', '.join(SIZES)})")
    layers, heads, head_dim, dropout = SIZES[size]
    pos = max(1024, seq_len) if size in ("teacher", "student") else -(-seq_len // 64) * 64
    if objective == "mlm":
        hidden = heads * head_dim
        return {
            "kind": "bert",
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "intermediate_size": 4 * hidden,
            "max_position_embeddings": pos,
            "dropout": dropout,
            "pad_token_id": pad_id,
        }
    return {
        "kind": "gpt2",
        "vocab_size": vocab_size,
        "n_positions": pos,
        "n_layer": layers,
        "n_head": heads,
        "head_dim": head_dim,
        "dropout": dropout,
        "tie_word_embeddings": False,
    }


def load_task_grammar(cfg: PCFGConfig):
    """The task's ``Grammar``: loaded from ``cfg.grammar`` or generated from ``gen_*``."""
    from training.data.pcfg import load_grammar, random_grammar

    if cfg.grammar:
        return load_grammar(cfg.grammar)
    return random_grammar(
        n_levels=cfg.gen_levels,
        symbols_per_level=cfg.gen_symbols,
        rules_per_symbol=cfg.gen_rules,
        rhs_lengths=tuple(cfg.gen_rhs),
        n_terminals=cfg.gen_terminals,
        seed=cfg.gen_seed,
    )


class PCFGTask(Task):
    """Masked-LM or next-token prediction on sentences of one grammar.

    Batches are dicts of [B, T] int64 tensors: ``input_ids``, ``attention_mask``, ``labels``
    (-100 where nothing is scored; see ``training.data.pcfg_mlm``).
    """

    name = "pcfg"

    def __init__(self, cfg: PCFGConfig) -> None:
        super().__init__(cfg)
        self.grammar = load_task_grammar(cfg)
        self.grammar.require_layered("the PCFG task")
        if not 0 <= cfg.start_level < self.grammar.n_levels - 1:
            raise CurriculensError(
                f"start_level {cfg.start_level} out of range: grammar {self.grammar.name!r} has levels "
                f"0..{self.grammar.n_levels - 1} (the last holds preterminals)"
            )
        if cfg.next_span_level >= 0 and (
            cfg.objective != "next" or not cfg.start_level <= cfg.next_span_level < self.grammar.n_levels
        ):
            raise CurriculensError(
                f"next_span_level {cfg.next_span_level} needs objective 'next' and a level in "
                f"{cfg.start_level}..{self.grammar.n_levels - 1} (start_level..preterminals)"
            )
        self.special = SpecialIds.from_grammar(self.grammar)
        longest = max(self.grammar.length_bounds(s)[1] for s in self.grammar.level_symbols(cfg.start_level))
        if not np.isfinite(longest) and not cfg.max_len:
            raise CurriculensError(f"grammar {self.grammar.name!r} has unbounded sentences; set max_len")
        self.max_terminals = int(min(longest, cfg.max_len) if cfg.max_len else longest)
        self._eval: Batch | None = None
        self._eval_len: np.ndarray | None = None

    # --- sizes ---------------------------------------------------------------------------
    @property
    def seq_len(self) -> int:
        """Longest model input: BOS + max_terminals (+ EOS)."""
        return self.max_terminals + 1 + int(self.cfg.use_eos)

    @property
    def vocab_size(self) -> int:
        return int(self.grammar.vocab_size)

    # --- data ------------------------------------------------------------------------------
    def sentences(self, n: int, seed: int, offset: int = 0):
        """``n`` sentences (a ``Corpus`` with derivations) of the stream keyed ``seed``."""
        from training.data.pcfg import sample

        return sample(self.grammar, n, seed=seed, start_level=self.cfg.start_level, offset=offset)

    def _build(self, seqs, generator: torch.Generator | None, ends=None) -> Batch:
        """A batch of ``seqs``; ``ends`` (per sentence [L, levels] bool) picks next-token targets."""
        c = self.cfg
        if c.objective == "mlm":
            return mlm_batch(
                seqs, self.special, generator, c.mask_rate, c.include_bos, c.hide_masked_keys, self.max_terminals
            )
        targets = None if c.next_span_level < 0 else [e[:, c.next_span_level] for e in ends]
        return next_token_batch(seqs, self.special, eos=c.use_eos, max_len=self.max_terminals, targets=targets)

    def train_batch(self, step: int, batch_size: int, seed: int) -> Batch:
        corpus = self.sentences(batch_size, keyed_seed(PCFG_TRAIN, seed, self.cfg.data_seed), offset=step * batch_size)
        gen = torch_generator(PCFG_MASK, seed, self.cfg.data_seed, step)
        return self._build(corpus.tokens, gen, corpus.ends)

    def _eval_set(self) -> tuple[Batch, np.ndarray]:
        if self._eval is None:
            corpus = self.sentences(self.cfg.n_eval, keyed_seed(PCFG_EVAL, self.cfg.data_seed))
            order = np.argsort(-corpus.lengths, kind="stable")
            seqs = [corpus.tokens[i] for i in order]
            gen = torch_generator(PCFG_EVAL_MASK, self.cfg.data_seed)
            self._eval = self._build(seqs, gen, [corpus.ends[i] for i in order])
            lens = np.minimum(corpus.lengths[order], self.max_terminals) + 1 + int(self.cfg.use_eos)
            self._eval_len = lens
        return self._eval, self._eval_len

    def eval_batches(self, batch_size: int) -> Iterator[Batch]:
        data, lens = self._eval_set()
        b = max(1, min(batch_size, self.cfg.eval_batch))
        for i in range(0, self.cfg.n_eval, b):
            T = int(lens[i : i + b].max())
            yield {k: v[i : i + b, :T] for k, v in data.items()}

    def plain_batch(self, seqs) -> Batch:
        """Unmasked ``[BOS] + tokens`` (no EOS): ``input_ids``, ``attention_mask`` (real tokens)."""
        from training.data.pcfg_mlm import pad_sequences

        ids, real = pad_sequences(seqs, self.special, eos=False, max_len=self.max_terminals)
        return {"input_ids": ids, "attention_mask": real.to(torch.int64)}

    def probe_corpus(self, n: int, seed: int):
        """Probe sentences (with derivations), keyed by ``(data_seed, seed)``; disjoint stream
        from training and held-out data."""
        return self.sentences(n, keyed_seed(PCFG_PROBE, self.cfg.data_seed, seed))

    # --- model interface -------------------------------------------------------------------
    def model_input(self, batch: Batch, model_cfg: ModelConfig) -> tuple[torch.Tensor, dict]:
        """``input_ids`` and kwargs ``attention_mask`` + explicit ``position_ids`` (the mask
        may hide real tokens; see ``training.data.pcfg_mlm.position_ids``)."""
        mask = batch["attention_mask"]
        return batch["input_ids"], {"attention_mask": mask, "position_ids": position_ids(mask)}

    def scored(self, logits: torch.Tensor, batch: Batch, model_cfg: ModelConfig):
        keep = batch["labels"] != IGNORE
        return logits[keep], batch["labels"][keep]

    @property
    def objective(self) -> str:
        return self.cfg.objective

    def expected_length(self) -> float:
        """Expected sentence length (terminals) of the start level, from the grammar."""
        syms = self.grammar.level_symbols(self.cfg.start_level)
        return float(sum(self.grammar.expected_length(s) for s in syms) / len(syms))

    def check_model(self, model_cfg: ModelConfig) -> None:
        if model_cfg.objective != self.cfg.objective:
            if model_cfg.foreign:  # an imported model (e.g. the paper's own Trainer checkpoints)
                raise CurriculensError(
                    f"objective {self.cfg.objective!r} needs a {'masked' if self.cfg.objective == 'mlm' else 'causal'} LM, "
                    f"got {model_cfg.architecture}"
                )
            raise CurriculensError(
                f"objective {self.cfg.objective!r} needs a {'BERT' if self.cfg.objective == 'mlm' else 'GPT2'} model, "
                f"got kind {model_cfg.kind!r}"
            )
        self._check_pad(model_cfg)
        vocab, pos = model_cfg.n_outputs, model_cfg.max_positions
        if vocab < self.vocab_size:
            raise CurriculensError(f"model vocab_size {vocab} < the grammar's {self.vocab_size} token ids")
        if pos and pos < self.seq_len:
            raise CurriculensError(
                f"model has {pos} positions but sentences need {self.seq_len} (BOS + {self.max_terminals} terminals"
                + (" + EOS)" if self.cfg.use_eos else ")")
                + "; raise the positions or set the task's max_len"
            )

    @property
    def model_pad_id(self) -> int:
        """BERT's ``pad_token_id`` for this task: the grammar's PAD id, or 0 with
        ``official_pad`` (the official models' ``bert-base-uncased`` value)."""
        return OFFICIAL_BERT_PAD_ID if self.cfg.official_pad else self.special.pad

    def _check_pad(self, model_cfg: ModelConfig) -> None:
        pad = getattr(model_cfg, "pad_token_id", None)  # a field of BertConfig only
        if pad is not None and pad != self.model_pad_id:
            raise CurriculensError(
                f"model pad_token_id {pad} is not the task's pad id {self.model_pad_id} (the grammar's PAD id, or 0 "
                "with official_pad): that token's input embedding would stay zero; set pad_token_id to it (or null)"
            )

    def default_model(self, size: str) -> ModelConfig:
        """``teacher`` / ``student``: the paper's sizes (4 layers; 32 x 8 = 256 / 8 x 8 = 64 wide,
        dropout 0.1); ``cpu-teacher`` / ``cpu-student``: the CPU sizes of the presets."""
        from models.configs import model_config_from_dict

        return model_config_from_dict(
            model_dict(self.cfg.objective, size, self.vocab_size, self.seq_len, self.model_pad_id)
        )

    # --- next-token extras -----------------------------------------------------------------
    def accepts(self, tokens: np.ndarray) -> bool:
        """True if ``tokens`` (terminal ids) derive from a symbol of the task's start level."""
        from training.data.pcfg import accepts

        return bool(accepts(self.grammar, tokens, start_level=self.cfg.start_level))

    @torch.no_grad()
    def generate(self, model: nn.Module, n: int, device: torch.device, seed: int = 0) -> list[np.ndarray | None]:
        """Sample ``n`` sentences from BOS at temperature 1 (next-token models).

        Returns the terminal ids before the first EOS, or None for a sentence that produced a
        special token or no EOS within ``max_terminals``.
        """
        gen = torch_generator(PCFG_GENERATE, self.cfg.data_seed, seed)
        ids = torch.full((n, 1), self.special.bos, dtype=torch.int64)
        done = torch.zeros(n, dtype=torch.bool)
        was = model.training
        model.eval()
        for _ in range(self.max_terminals + 1):
            logits = logits_of(model(ids.to(device)))[:, -1, :].float().cpu()
            nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)
            nxt[done] = self.special.pad
            ids = torch.cat([ids, nxt], dim=1)
            done |= nxt[:, 0] == self.special.eos
            if bool(done.all()):
                break
        model.train(was)
        terms = set(self.special.terminals)
        out: list[np.ndarray | None] = []
        for row in ids[:, 1:].numpy():
            hits = np.nonzero(row == self.special.eos)[0]
            body = row[: hits[0]] if hits.size else None
            out.append(body if body is not None and all(int(t) in terms for t in body) else None)
        return out

    def extra_eval(self, model: nn.Module, model_cfg: ModelConfig, device: torch.device) -> dict:
        if self.cfg.objective != "next" or not self.cfg.use_eos or self.cfg.n_generate <= 0:
            return {}
        sents = self.generate(model, self.cfg.n_generate, device)
        ok = [s is not None and len(s) > 0 and self.accepts(s) for s in sents]
        return {"eval_accept": float(np.mean(ok))}
