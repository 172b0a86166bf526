"""A student whose outputs (classes, vocabulary) differ from its teacher's is refused before
anything is written: one line, exit 2 (before: a shape error at the first distilled step, after
the student's run directory was made)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curriculens import constants as C
from tests.curriculens.cli.test_one_line_errors import one_error
from training.foreign.fixtures import make_model, make_tokenizer, sample_text, write_trainer_dir

STEPS = ["--steps", 10, "--save-every", 10, "--device", "cpu"]


def runs(exp: Path) -> list[str]:
    return sorted(p.name for p in (exp / C.RUNS_DIR).iterdir())


def test_a_parity_student_with_other_classes_is_one_line(teacher_copy, cli):
    three = json.dumps({"kind": "mlp", "d_in": 6, "width": 4, "n_classes": 3})
    for method in (C.METHOD_ONE_SHOT, C.METHOD_PROGRESSIVE):
        code, out = cli("distill", "--teacher", teacher_copy, "--method", method, "--model-json", three, *STEPS)
        assert code == 2 and one_error(out, "3 outputs", "has 2", "n_classes to 2"), out
    assert runs(teacher_copy) == ["teacher"]
    code, out = cli("distill", "--teacher", teacher_copy, "--method", C.METHOD_CE, "--model-json", three, *STEPS)
    assert code == 0, out  # a ce student has no teacher outputs to match


@pytest.fixture(scope="module")
def padded_teacher(tmp_path_factory) -> Path:
    """An imported BERT trajectory whose vocabulary is padded past its tokenizer's ids (as
    Pythia's 50,304 rows over 50,277 ids): the text task's default student gets the tokenizer's."""
    src = tmp_path_factory.mktemp("src") / "out"
    n_ids = len(make_tokenizer("bert"))
    write_trainer_dir(
        src, "bert", steps=(0, 5), models={s: make_model("bert", n_ids + 8, s, n_layer=1) for s in (0, 5)}
    )
    (src / "corpus.txt").write_text(sample_text(40))
    return src


def test_a_text_student_with_another_vocabulary_is_one_line(padded_teacher, cli, tmp_path, one_thread):
    exp = tmp_path / "exp"
    corpus = padded_teacher / "corpus.txt"
    task = [
        "--task",
        "text",
        "--task-set",
        f"corpus={corpus}",
        "--task-set",
        f"tokenizer={padded_teacher / 'checkpoint-0'}",
    ]
    task += ["--task-set", "max_tokens=24", "--task-set", "n_eval=8"]
    assert cli("import", padded_teacher, "--out", exp, *task)[0] == 0
    n_ids = len(make_tokenizer("bert"))
    student = {"kind": "bert", "vocab_size": n_ids, "hidden_size": 8, "num_hidden_layers": 1}
    student |= {"num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 32, "pad_token_id": 0}
    code, out = cli(
        "distill", "--teacher", exp, "--method", C.METHOD_ONE_SHOT, "--model-json", json.dumps(student), *STEPS
    )
    assert code == 2 and one_error(out, f"{n_ids} outputs", f"has {n_ids + 8}", f"vocab_size to {n_ids + 8}"), out
    spec = tmp_path / "grid.json"
    spec.write_text(json.dumps({"methods": ["ce", "progressive"], "model": student, "steps": 10, "save_every": 10}))
    code, out = cli("grid", exp, "--spec", spec, "--device", "cpu")
    assert code == 2 and one_error(out, f"{n_ids} outputs", f"has {n_ids + 8}"), out
    assert runs(exp) == ["teacher"]
    student["vocab_size"] = n_ids + 8  # the same student with the teacher's vocabulary trains
    code, out = cli(
        "distill", "--teacher", exp, "--method", C.METHOD_ONE_SHOT, "--model-json", json.dumps(student), *STEPS
    )
    assert code == 0, out
