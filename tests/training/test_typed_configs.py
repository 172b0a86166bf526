"""Typed task and model configs in RunConfig: parsed once, written back as before.

``old_configs/`` holds config.json files written by the code before the typed configs
(commit 812d8ff): a CLI teacher and students of a trained tiny run (full dicts), the parity
plan's teacher and a plan student (partial task dict), and the PCFG cpu-tiny plan (partial task).
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
from pathlib import Path

import pytest

from curriculens.config import canonical_json
from curriculens.errors import CurriculensError
from curriculens.io import dumps
from models.configs import BertConfig, GPT2Config, MLPConfig, model_config_from_dict
from training.config import ADAM_DEFAULTS, OptimConfig, RunConfig, default_optim, default_optimizer
from training.experiment import relative_teacher_dir, student_distill
from training.tasks import build_task
from training.tasks.configs import ParityConfig, PCFGConfig, TextConfig, task_config_from_dict

OLD = Path(__file__).parent / "old_configs"
OLD_RUNS = sorted(p for p in OLD.glob("*.json") if p.name != "experiment-task.json")


def test_the_old_config_files_are_there():
    assert {p.stem for p in OLD_RUNS} >= {
        "cli-teacher",
        "cli-progressive-s0",
        "plan-parity-teacher",
        "plan-pcfg-teacher",
    }


@pytest.mark.parametrize("path", OLD_RUNS, ids=lambda p: p.stem)
def test_old_config_files_read_into_typed_configs_equal_to_what_they_write_back(path):
    """Compared by value with defaults filled in (issue 22): an old file with fewer keys reads into
    the config it writes back in full, and that reads into an equal config."""
    text = path.read_text()
    cfg = RunConfig.from_dict(json.loads(text))
    assert isinstance(cfg.task, (ParityConfig, PCFGConfig)) and not isinstance(cfg.model, dict)
    again = RunConfig.from_dict(json.loads(dumps(cfg.to_dict())))
    assert again == cfg and canonical_json(again) == canonical_json(cfg)
    old = json.loads(text)
    assert all(cfg.to_dict()[k] == v or isinstance(v, dict) for k, v in old.items())  # every stored value kept
    assert pickle.loads(pickle.dumps(cfg)).to_dict() == cfg.to_dict()  # as Ray ships it to a worker


def test_the_plans_and_the_cli_build_the_configs_the_old_code_built(tmp_path):
    from curriculens.cli.entry import build_parser
    from curriculens.cli.train import student_config_from_args, teacher_config_from_args
    from training.plans import PARITY_SIZES, parity_teacher_config
    from training.plans.pcfg import get_preset, student_configs_for, teacher_config

    def old(name: str) -> str:
        return canonical_json(RunConfig.from_dict(json.loads((OLD / f"{name}.json").read_text())))  # by value

    assert canonical_json(parity_teacher_config(PARITY_SIZES["tiny"], device="cpu")) == old("plan-parity-teacher")
    pcfg_teacher = teacher_config(get_preset("cpu-tiny"), device="cpu")
    assert canonical_json(pcfg_teacher) == old("plan-pcfg-teacher")
    student = student_configs_for(get_preset("cpu-tiny"), "unused", pcfg_teacher, methods=("progressive",))[0]
    assert canonical_json(student) == old("plan-pcfg-progressive")

    def args(*argv) -> argparse.Namespace:
        return build_parser().parse_args([str(a) for a in argv])

    exp = tmp_path / "exp"
    teacher = teacher_config_from_args(
        args(
            "train-teacher",
            "--out",
            exp,
            "--n",
            6,
            "--k",
            2,
            "--width",
            8,
            "--steps",
            20,
            "--save-every",
            10,
            "--device",
            "cpu",
        )  # fmt: skip
    )
    assert canonical_json(teacher) == old("cli-teacher")
    (exp / "runs" / "teacher").mkdir(parents=True)
    shutil.copy(OLD / "cli-teacher.json", exp / "runs" / "teacher" / "config.json")
    common = ("--steps", 20, "--save-every", 10)
    cases = {
        "cli-progressive-s0": ("--method", "progressive", "--width", 4, "--tau", 0.5),
        "cli-two-shot-ckpt10-T5-s0": ("--method", "two-shot", "--two-shot-step", 10, "--two-shot-T", 5, "--width", 4),
        "cli-ce-s0": ("--method", "ce", "--model", "gpt2", "--n-layer", 1),
    }
    for name, flags in cases.items():
        cfg = student_config_from_args(args("distill", "--teacher", exp, *flags, *common), exp / "runs" / "teacher")
        assert canonical_json(cfg) == old(name), name


def test_task_and_model_are_parsed_once_and_the_task_is_built_from_the_typed_config():
    raw = json.loads((OLD / "plan-pcfg-teacher.json").read_text())
    cfg = RunConfig.from_dict(raw)
    assert isinstance(cfg.task, PCFGConfig) and isinstance(cfg.model, BertConfig)
    assert cfg.task.start_level == 0 and cfg.model.pad_token_id == 5
    task = build_task(cfg.task)
    assert task.cfg is cfg.task  # used as it is, not re-parsed
    assert RunConfig(**{**cfg.__dict__, "task": raw["task"]}).task == cfg.task  # a dict is parsed on construction


@pytest.mark.parametrize(
    "change, message",
    [
        ({"task": {"name": "chess"}}, "unknown task 'chess' (known: parity, pcfg, text)"),
        ({"task": {"n": 6}}, "task config has no 'name'"),
        ({"model": {"kind": "lstm"}}, "unknown model kind 'lstm' (known: bert, gpt2, hf, mlp)"),
        ({"model": {"width": 8}}, "model config has no 'kind'"),
        ({"task": {"name": "parity", "n": 6, "k": 9}}, "parity k (support size) must be in 1..n"),
        ({"task": {"name": "pcfg", "objective": "causal"}}, "unknown PCFG objective 'causal'"),
        ({"task": {"name": "text", "format": "xml"}}, "unknown text format 'xml'"),
        ({"task": {"name": "parity", "nn": 6}}, "unknown config key(s) nn for ParityConfig"),
    ],
)
def test_a_bad_task_or_model_config_is_a_one_line_error_when_the_run_config_is_read(change, message):
    raw = {**json.loads((OLD / "cli-teacher.json").read_text()), **change}
    with pytest.raises(CurriculensError) as exc:
        RunConfig.from_dict(raw)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_union_parsers_give_the_tagged_class():
    assert task_config_from_dict({"name": "text", "corpus": "c.txt"}) == TextConfig(corpus="c.txt")
    assert model_config_from_dict({"kind": "gpt2", "n_layer": 1}) == GPT2Config(n_layer=1)
    assert isinstance(model_config_from_dict({"kind": "mlp"}), MLPConfig)


def test_optimizer_defaults_per_model_kind_live_in_training():
    assert default_optimizer("mlp") == "sgd" and default_optimizer("gpt2") == default_optimizer("bert") == "adamw"
    assert default_optim("sgd") == OptimConfig()
    adam = default_optim("adam")
    assert (adam.lr, adam.schedule, adam.warmup_frac, adam.betas) == (1e-3, "cosine", 0.06, (0.9, 0.95))
    assert all(getattr(adam, k) == v for k, v in ADAM_DEFAULTS.items())


def test_student_naming_and_the_relative_teacher_path(tmp_path):
    runs = tmp_path / "exp" / "runs"
    (runs / "teacher").mkdir(parents=True)
    assert relative_teacher_dir(runs / "teacher", "ce-s0") == "../teacher"
    name, dist = student_distill("progressive", 2, runs / "teacher", tau=0.5)
    assert (name, dist.teacher_dir, dist.tau, dist.method) == ("progressive-s2", "../teacher", 0.5, "progressive")
    name, two = student_distill("two-shot", 0, runs / "teacher", two_shot_step=30, two_shot_T=10)
    assert name == "two-shot-ckpt30-T10-s0" and (two.two_shot_step, two.two_shot_T) == (30, 10)
    name, other = student_distill("one-shot", 0, runs / "teacher", base=two)  # two-shot fields do not carry over
    assert name == "one-shot-s0" and (other.two_shot_step, other.two_shot_T) == (-1, 0)
    assert student_distill("ce", 0, runs / "teacher", name="mine")[0] == "mine"
    with pytest.raises(CurriculensError, match="one path component"):
        student_distill("ce", 0, runs / "teacher", name="a/b")


def test_a_student_gets_the_tasks_student_model_unless_its_kind_differs_from_the_teachers():
    from training.plans.base import default_student_model

    task = build_task({"name": "parity", "n": 6, "k": 2, "n_eval": 8})
    mlp_teacher = MLPConfig(d_in=6, width=64)
    assert default_student_model(task, mlp_teacher) == task.default_model("student")
    gpt_teacher = GPT2Config(n_positions=8)
    assert default_student_model(task, gpt_teacher) == gpt_teacher
