"""The ``text`` task trains: batches, the held-out split, LEAD fallbacks, teachers and students of
every method from a native or an imported teacher, on fabricated and packaged text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from curriculens import constants as C
from curriculens.errors import CurriculensError
from training.config import CheckpointConfig, OptimConfig, RunConfig
from training.data.pcfg_mlm import IGNORE
from training.foreign.fixtures import sample_text, write_trainer_dir
from training.tasks import build_task
from training.tasks.configs import TextConfig
from training.tasks.text import write_word_tokenizer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(sample_text(240, seed=3))
    return path


@pytest.fixture(scope="module")
def tok(corpus, tmp_path_factory) -> Path:
    return write_word_tokenizer(TextConfig(corpus=str(corpus)), tmp_path_factory.mktemp("tok"), 100)


def _cfg(corpus, tok, **kw) -> TextConfig:
    return TextConfig(corpus=str(corpus), tokenizer=str(tok), max_tokens=24, n_eval=8, **kw)


def test_batches_split_and_masking(corpus, tok):
    task = build_task(_cfg(corpus, tok))
    train, held = task.split()
    assert len(held) == 8 and len(train) + len(held) == len(task.trainer().chunks)
    ids = {id(c) for c in held}
    assert not any(id(c) in ids for c in train)  # disjoint: each chunk on one side
    a, b = task.train_batch(3, 16, seed=1), task.train_batch(3, 16, seed=1)
    assert all(torch.equal(a[k], b[k]) for k in a)  # a function of (step, seed)
    assert not torch.equal(a["input_ids"], task.train_batch(4, 16, seed=1)["input_ids"])
    special = task.trainer().special
    assert (a["input_ids"][:, 0] == special.bos).all() and (a["labels"][:, 0] == IGNORE).all()  # LEAD never masked
    real = a["attention_mask"].bool()
    rate = ((a["labels"] != IGNORE) & real).sum() / (real[:, 1:]).sum()
    assert 0.05 < rate < 0.35  # mask_rate 0.15 (plus one forced pick per row)
    ev = list(task.eval_batches(5))
    assert [e["input_ids"].shape[0] for e in ev] == [5, 3]
    nxt = build_task(_cfg(corpus, tok, objective="next"))
    b = nxt.train_batch(0, 4, seed=0)
    keep = b["labels"] != IGNORE
    assert torch.equal(b["labels"][:, :-1][keep[:, :-1]], b["input_ids"][:, 1:][keep[:, :-1]])


def test_refusals(corpus, tok, tmp_path):
    with pytest.raises(CurriculensError, match="objective must be"):
        TextConfig(corpus=str(corpus), objective="cls")
    with pytest.raises(CurriculensError, match="tokenizer directory not found"):
        build_task(TextConfig(corpus=str(corpus), tokenizer=str(tmp_path / "nope")))
    with pytest.raises(CurriculensError, match="set --task-set tokenizer=DIR"):
        build_task(TextConfig(corpus=str(corpus))).train_batch(0, 2, 0)
    with pytest.raises(CurriculensError, match="lower --task-set n_eval"):
        build_task(TextConfig(corpus=str(corpus), tokenizer=str(tok), max_tokens=24, n_eval=10_000)).split()
    task = build_task(_cfg(corpus, tok))
    gpt2 = build_task(_cfg(corpus, tok, objective="next")).default_model("tiny-teacher")
    with pytest.raises(CurriculensError, match="objective 'mlm'"):
        task.check_model(gpt2)
    small = task.default_model("tiny-teacher").__class__(vocab_size=5)
    with pytest.raises(CurriculensError, match="vocab_size 5"):
        task.check_model(small)


def test_lead_falls_back_to_eos(corpus, tmp_path):
    """A tokenizer with no CLS and no BOS starts each sequence with EOS (GPT-2 style)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from training.foreign.fixtures import WORDS

    vocab = {t: i for i, t in enumerate(["</s>", "<unk>", *WORDS, "."])}
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="</s>", unk_token="<unk>").save_pretrained(tmp_path)
    task = build_task(
        TextConfig(corpus=str(corpus), tokenizer=str(tmp_path), objective="next", max_tokens=24, n_eval=8)
    )
    batch = task.train_batch(0, 4, seed=0)
    assert (batch["input_ids"][:, 0] == vocab["</s>"]).all()


def _teacher(exp: Path, cfg: TextConfig, steps=40) -> RunConfig:
    from training.loop import train_run

    task = build_task(cfg)
    rc = RunConfig(
        name="teacher",
        role=C.ROLE_TEACHER,
        task=cfg,
        model=task.default_model("tiny-teacher"),
        optim=OptimConfig(name="adamw", lr=1e-2),
        checkpoints=CheckpointConfig(save_every=10),
        steps=steps,
        batch_size=16,
        device="cpu",
    )
    train_run(rc, exp / C.RUNS_DIR / "teacher", task=task)
    return rc


ALL = (C.METHOD_CE, C.METHOD_ONE_SHOT, C.METHOD_PROGRESSIVE, C.METHOD_TWO_SHOT)


def _students(exp: Path, teacher: RunConfig, model, methods=ALL):
    from training.loop import train_run
    from training.plans.base import student_configs

    cfgs = student_configs(
        teacher,
        model,
        steps=20,
        save_every=10,
        eval_every=10,
        methods=methods,
        two_shot_step=20,
        two_shot_T=10,
        exp_dir=exp,
    )
    task = build_task(teacher.task)
    return {c.method: train_run(c, exp / C.RUNS_DIR / c.name, task=task) for c in cfgs}


def test_native_teacher_and_every_student(corpus, tok, tmp_path, one_thread):
    from training.experiment import read_metrics

    exp = tmp_path / "exp"
    cfg = _cfg(corpus, tok)
    teacher = _teacher(exp, cfg)
    rows = read_metrics(exp / C.RUNS_DIR / "teacher")
    assert rows[-1]["eval_loss"] < rows[0]["eval_loss"] - 0.1  # it learns (the slow test: past the unigram plateau)
    results = _students(exp, teacher, build_task(cfg).default_model("tiny-student"))
    assert set(results) == {C.METHOD_CE, C.METHOD_ONE_SHOT, C.METHOD_PROGRESSIVE, C.METHOD_TWO_SHOT}
    for method, res in results.items():
        rows = read_metrics(res.run_dir)
        assert [r["step"] for r in rows] == [0, 10, 20] and all(np.isfinite(r["eval_loss"]) for r in rows)
        t_steps = [r["teacher_step"] for r in rows]
        if method == C.METHOD_PROGRESSIVE:
            assert t_steps == [10, 10, 10]  # intermediate checkpoints (parity rule: at or just ahead)
        elif method == C.METHOD_ONE_SHOT:
            assert set(t_steps) == {40}
        elif method == C.METHOD_CE:
            assert set(t_steps) == {None}
    # the probe sweep binds native text checkpoints to the task's tokenizer
    from probes.sweep import SweepConfig, run_sweep

    res = run_sweep(
        exp,
        SweepConfig(
            probes=("ngram",),
            runs=("teacher",),
            device="cpu",
            every=4,
            options={"n_sentences": 8, "ngram_sentences": 4},
        ),
    )
    assert res.n_failed == 0, res.failures


def test_students_from_an_imported_teacher(corpus, tmp_path, one_thread):
    """An imported BERT trajectory (fabricated Trainer dir) teaches progressive and one-shot
    students that share its tokenizer and vocabulary."""
    from models.configs import BertConfig
    from training.experiment import read_metrics, read_run
    from training.foreign.importer import ImportConfig, import_trajectory

    src = write_trainer_dir(tmp_path / "src", "bert", steps=(0, 5, 10), n_layer=1)
    task = {
        "name": "text",
        "corpus": str(corpus),
        "tokenizer": str(src / "checkpoint-0"),
        "max_tokens": 24,
        "n_eval": 8,
    }
    exp = tmp_path / "exp"
    import_trajectory(ImportConfig(src=str(src), out=str(exp), task=task))
    teacher = read_run(exp / C.RUNS_DIR / "teacher").config
    vocab = json.loads((src / "checkpoint-0" / "config.json").read_text())["vocab_size"]
    student = BertConfig(
        vocab_size=vocab,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=32,
        pad_token_id=0,
    )
    results = _students(exp, teacher, student, methods=(C.METHOD_ONE_SHOT, C.METHOD_PROGRESSIVE))
    prog = read_metrics(results[C.METHOD_PROGRESSIVE].run_dir)
    assert [r["teacher_step"] for r in prog] == [5, 5, 10]  # the imported trajectory, step by step
    assert {r["teacher_step"] for r in read_metrics(results[C.METHOD_ONE_SHOT].run_dir)} == {10}


@pytest.mark.slow
def test_packaged_corpus_leaves_the_unigram_plateau(tmp_path, one_thread):
    """On the packaged ChatterBot corpus a small BERT's held-out masked loss drops well below the
    unigram entropy of the training tokens (what a model that ignores context reaches)."""
    pytest.importorskip("chatterbot_corpus")
    from training.data.packaged_text import write_packaged_corpus
    from training.experiment import read_metrics

    corpus = write_packaged_corpus(tmp_path / "chat.jsonl")
    tok = write_word_tokenizer(TextConfig(corpus=str(corpus)), tmp_path / "tok", 1000)
    cfg = TextConfig(corpus=str(corpus), tokenizer=str(tok), max_tokens=48)
    train, _ = build_task(cfg).split()
    counts = np.bincount(np.concatenate(train))
    p = counts[counts > 0] / counts.sum()
    unigram = float(-(p * np.log(p)).sum())
    _teacher(tmp_path / "exp", cfg, steps=300)
    final = read_metrics(tmp_path / "exp" / C.RUNS_DIR / "teacher")[-1]["eval_loss"]
    assert final < unigram - 0.3, (final, unigram)


def test_make_text_corpus_script(tmp_path, capsys):
    """The packaged corpus + word tokenizer, ready for ``train-teacher --task text``; a rerun is refused."""
    pytest.importorskip("chatterbot_corpus")
    from scripts.make_text_corpus import main

    assert main([str(tmp_path / "d"), "--size", "500"]) == 0
    task = build_task(
        TextConfig(corpus=str(tmp_path / "d" / "chat.jsonl"), tokenizer=str(tmp_path / "d" / "tokenizer"))
    )
    assert len(task.trainer().tokenizer) == 505 and len(task.split()[0]) > 1000  # 500 words + 5 BERT specials
    assert main([str(tmp_path / "d")]) == 2
    assert "already holds" in capsys.readouterr().err
