"""Fixture generator: fabricate small foreign checkpoint trajectories on disk (tests,
benchmarks, the quickstart; the text task borrows its word-level tokenizer builder).

Everything is built from local configs and a word-level tokenizer made here; nothing is
downloaded. Layouts (see ``training.foreign.sources``):

- ``write_trainer_dir``: a Hugging Face Trainer output directory, ``checkpoint-N/`` with
  ``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, ``trainer_state.json`` and
  the tokenizer files;
- ``write_hub_cache``: a local hub cache of one model, ``models--org--name/`` with
  ``refs/step{N}`` revisions, ``snapshots/<commit>/`` symlinked into ``blobs/``;
- ``write_mlp_pt``: the paper's parity MLP as ``nn.Sequential`` state dicts, ``step{N}.pt``.

Weights of step ``s`` are a fresh initialisation seeded ``seed + s`` unless ``models`` are given
(e.g. the states of a real training run, ``benchmarks.bench_import``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from curriculens.seeding import FABRICATED_TEXT, seed_init, torch_generator

KINDS = {"gpt2": "GPT2LMHeadModel", "bert": "BertForMaskedLM"}
BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
GPT2_SPECIALS = ("<|endoftext|>", "<unk>")
WORDS = (
    "the a one some every cat dog bird fish tree river stone hill sun moon runs sees eats finds "
    "likes jumps sleeps near under over by with and but then red small big old green fast slow"
).split()


def sample_text(n_sentences: int = 200, seed: int = 0) -> str:
    """Sentences over ``WORDS`` with a little structure (det noun verb det noun [prep det noun])."""
    g = torch_generator(FABRICATED_TEXT, seed)

    def pick(options: Sequence[str]) -> str:
        return options[int(torch.randint(len(options), (1,), generator=g))]

    dets, nouns = WORDS[:5], WORDS[5:13]
    verbs, preps, adjs = WORDS[13:20], WORDS[20:25], WORDS[28:]
    lines = []
    for _ in range(n_sentences):
        s = [pick(dets), pick(adjs), pick(nouns), pick(verbs), pick(dets), pick(nouns)]
        if int(torch.randint(2, (1,), generator=g)):
            s += [pick(preps), pick(dets), pick(nouns)]
        lines.append(" ".join(s) + " .")
    return "\n\n".join(" ".join(lines[i : i + 4]) for i in range(0, len(lines), 4)) + "\n"


def corpus_words(text: str, size: int) -> list[str]:
    """The ``size`` most frequent words / punctuation runs of ``text`` (lowercased), as
    ``make_tokenizer`` splits it."""
    from collections import Counter

    found = Counter(re.findall(r"\w+|[^\w\s]+", text.lower()))
    return [w for w, _ in found.most_common(size)]


def make_tokenizer(kind: str, words: Sequence[str] = WORDS):
    """A word-level ``PreTrainedTokenizerFast`` over ``words`` + ``.`` (BERT or GPT-2 specials);
    text is lowercased and split into words and punctuation runs, unknown words map to UNK."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = BERT_SPECIALS if kind == "bert" else GPT2_SPECIALS
    vocab = {t: i for i, t in enumerate([*specials, *dict.fromkeys([*words, "."])])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials[1]))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if kind == "bert":
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            pad_token="[PAD]",
            unk_token="[UNK]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<unk>",
        pad_token="<|endoftext|>",
    )


def make_model(
    kind: str, vocab_size: int, seed: int = 0, n_layer: int = 2, width: int = 32, n_positions: int = 64
) -> nn.Module:
    """A small ``GPT2LMHeadModel`` or ``BertForMaskedLM`` (eval mode), seeded."""
    import transformers

    seed_init(seed)
    if kind == "gpt2":
        cfg = transformers.GPT2Config(
            vocab_size=vocab_size,
            n_embd=width,
            n_layer=n_layer,
            n_head=4,
            n_positions=n_positions,
            bos_token_id=0,
            eos_token_id=0,
        )
    elif kind == "bert":
        cfg = transformers.BertConfig(
            vocab_size=vocab_size,
            hidden_size=width,
            num_hidden_layers=n_layer,
            num_attention_heads=4,
            intermediate_size=2 * width,
            max_position_embeddings=n_positions,
            pad_token_id=0,
        )
    else:
        raise ValueError(f"unknown kind {kind!r} (gpt2 or bert)")
    cfg.architectures = [KINDS[kind]]
    return getattr(transformers, KINDS[kind])(cfg).eval()


def _trainer_state(step: int, steps: Sequence[int]) -> dict:
    history = []
    for s in steps:
        if s > step:
            break
        history.append({"step": s, "loss": 3.0 / (1 + s / 10), "learning_rate": 1e-3, "epoch": s / 100})
        history.append({"step": s, "eval_loss": 3.2 / (1 + s / 10), "eval_accuracy": min(1.0, 0.1 + s / 200)})
    return {"global_step": step, "log_history": history, "epoch": step / 100}


def save_checkpoint_dir(
    d: Path, model: nn.Module, tokenizer=None, fmt: str = "safetensors", trainer_state: dict | None = None
) -> Path:
    """``model.save_pretrained`` (+ tokenizer, trainer_state.json) into ``d``; ``fmt='bin'``
    writes ``pytorch_model.bin`` with ``torch.save`` (as older Trainers did)."""
    d.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        model.save_pretrained(str(d))
    elif fmt == "bin":
        model.config.save_pretrained(str(d))
        torch.save(model.state_dict(), d / "pytorch_model.bin")
    else:
        raise ValueError(f"unknown format {fmt!r} (safetensors or bin)")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(d))
    if trainer_state is not None:
        (d / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2))
    return d


def write_trainer_dir(
    out: Path | str,
    kind: str = "gpt2",
    steps: Sequence[int] = (0, 10, 20),
    fmt: str = "safetensors",
    seed: int = 0,
    tokenizer: bool = True,
    models: Mapping[int, nn.Module] | None = None,
    **model_kw,
) -> Path:
    """A Trainer output directory ``out/checkpoint-N/`` for each step (see the module docstring)."""
    out = Path(out)
    tok = make_tokenizer(kind)
    for s in steps:
        model = models[s] if models is not None else make_model(kind, len(tok), seed + s, **model_kw)
        save_checkpoint_dir(out / f"checkpoint-{s}", model, tok if tokenizer else None, fmt, _trainer_state(s, steps))
    return out


def write_hub_cache(
    root: Path | str,
    kind: str = "gpt2",
    steps: Sequence[int] = (0, 10, 20),
    repo: str = "fake/tiny-lm",
    seed: int = 0,
    same_as: Mapping[int, int] | None = None,
    revision: str = "step{}",
) -> Path:
    """A local hub cache ``root/models--org--name`` with a ``refs/<revision>`` per step.

    ``same_as = {b: a}`` gives step b byte-identical weights to step a in a separate commit (the
    trap of public step branches); ``refs/main`` points to the last step.
    """
    import tempfile

    repo_dir = Path(root) / ("models--" + repo.replace("/", "--"))
    for sub in ("refs", "snapshots", "blobs"):
        (repo_dir / sub).mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(kind)
    weights: dict[int, nn.Module] = {}
    commit = ""
    for s in steps:
        src = (same_as or {}).get(s, s)
        model = weights.setdefault(src, make_model(kind, len(tok), seed + src))
        commit = hashlib.sha1(f"{repo}@{s}".encode()).hexdigest()
        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint_dir(Path(tmp), model, tok)
            snap = repo_dir / "snapshots" / commit
            snap.mkdir(parents=True, exist_ok=True)
            for f in sorted(Path(tmp).iterdir()):
                data = f.read_bytes()
                blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
                if not blob.exists():
                    blob.write_bytes(data)
                link = snap / f.name
                if not link.exists():
                    os.symlink(os.path.relpath(blob, snap), link)
        ref = repo_dir / "refs" / revision.format(s)
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
    (repo_dir / "refs" / "main").write_text(commit)
    return repo_dir


def write_mlp_pt(
    out: Path | str,
    steps: Sequence[int] = (0, 100, 200),
    d_in: int = 12,
    width: int = 16,
    seed: int = 0,
    name: str = "step{}.pt",
) -> Path:
    """The paper's parity MLP checkpoints: ``nn.Sequential(Linear, ReLU, Linear)`` state dicts."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for s in steps:
        seed_init(seed + s)
        net = nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, 2))
        torch.save(net.state_dict(), out / name.format(s))
    return out
