"""Flags generated from config-field metadata (``curriculens.cli.fields``, issue 23 item 7)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import pytest

from curriculens.cli.entry import build_parser
from curriculens.cli.fields import add_config_args, apply_args, config_flags, flag_of
from curriculens.config import CliFlag, cli, csv_of
from curriculens.errors import CurriculensError
from models.configs import BertConfig, GPT2Config, MLPConfig
from probes.sweep_config import SweepConfig
from training.config import CheckpointConfig, DistillConfig, OptimConfig, RunConfig, default_optim
from training.foreign.config import FetchConfig, ImportConfig
from training.gridspec import GridSpec
from training.tasks.configs import ParityConfig

# Every flag of every command, recorded once from the CLI before the flags were generated
# (main at d64b449 plus `demo --student-seeds`; `--teacher-seeds` is hidden but still accepted).
FLAGS_BEFORE = {
    "demo": (
        "device executor grammar no-probe out ray-address ray-cpus ray-gpus seeds size student-seeds task "
        "teacher-seeds wait"
    ),
    "train-teacher": (
        "amp batch-size config data-seed depth device dropout eval-every eval-log force grad-clip "
        "head-dim heads hidden intermediate k layers log-early lr model model-json n n-eval n-head n-layer "
        "n-positions name optimizer out save-every schedule seed steps support task task-json task-set "
        "wait warmup-frac weight-decay width"
    ),
    "distill": (
        "alpha amp batch-size config depth device dropout eval-every eval-log extract-seed extract-steps "
        "force grad-clip head-dim heads hidden intermediate interval layers log-early lr method model "
        "model-json n-head n-layer n-positions name optimizer progressive-rule save-every schedule seed "
        "speed steps tau teacher two-shot-T two-shot-step wait warmup-frac weight-decay width"
    ),
    "grid": (
        "alpha alphas batch-size device dry-run eval-every executor extract-seed extract-steps force lr "
        "methods ray-address ray-block ray-cpus ray-gpus save-every seeds spec speed speeds steps "
        "stop-at-acc stream-seed tau taus teacher two-shot-T two-shot-steps wait width widths"
    ),
    "fetch": "endpoint out revisions timeout",
    "import": (
        "copy every force method name out revisions role seed steps task task-json task-set two-shot-T "
        "two-shot-step wait"
    ),
    "recommend": "json target teacher top",
    "probe": (
        "config device dry-run every executor export force n-probe option probes ray-address ray-block "
        "ray-cpus ray-gpus runs seed wait"
    ),
    "summary": "by-method json metric off-support pooled probe runs",
    "compare": "json no-features target",
    "export": "format log-steps out probes to",
    "dashboard": "host port",
}


# the config classes whose fields each command exposes
CONFIG_CLASSES = {
    "train-teacher": (MLPConfig, GPT2Config, BertConfig, OptimConfig, RunConfig, CheckpointConfig, ParityConfig),
    "distill": (MLPConfig, GPT2Config, BertConfig, OptimConfig, RunConfig, CheckpointConfig, DistillConfig),
    "grid": (GridSpec,),
    "probe": (SweepConfig,),
    "import": (ImportConfig,),
    "fetch": (FetchConfig,),
}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _flags(p: argparse.ArgumentParser) -> list[str]:
    return sorted(o for a in p._actions for o in a.option_strings if o not in ("-h", "--help"))


def test_every_command_keeps_its_flags():
    subs = _subparsers()
    assert {name: _flags(p) for name, p in subs.items()} == {
        k: sorted("--" + f for f in v.split()) for k, v in FLAGS_BEFORE.items()
    }


@pytest.mark.parametrize("command", sorted(CONFIG_CLASSES))
def test_every_config_flag_has_its_help_from_the_field(command):
    p = _subparsers()[command]
    actions = {o: a for a in p._actions for o in a.option_strings}
    n = 0
    for cls in CONFIG_CLASSES[command]:
        for f, meta in config_flags(cls, command):
            assert meta.help.strip(), (cls.__name__, f.name)
            action = actions[flag_of(f, meta)]
            assert action.help.startswith(meta.help), (cls.__name__, f.name, action.help)
            n += 1
    assert n >= {"train-teacher": 29, "distill": 33, "grid": 17, "probe": 5, "import": 11, "fetch": 2}[command]


def _args(*argv):
    return build_parser().parse_args([str(a) for a in argv])


def test_train_teacher_flags_give_the_config_built_directly(tmp_path):
    from curriculens.cli.train import teacher_config_from_args

    args = _args(
        "train-teacher", "--out", tmp_path, "--name", "t1", "--n", 9, "--k", 3, "--support", "0,2,4",
        "--n-eval", 64, "--data-seed", 5, "--width", 16, "--depth", 2, "--optimizer", "adam", "--lr", 0.01,
        "--weight-decay", 0.1, "--schedule", "constant", "--warmup-frac", 0.2, "--grad-clip", 1.5,
        "--steps", 77, "--batch-size", 8, "--seed", 4, "--amp", "--save-every", 11, "--log-early", 2,
        "--eval-every", 5, "--eval-log", 3, "--device", "cpu",
    )  # fmt: skip
    want = RunConfig(
        name="t1",
        role="teacher",
        task=ParityConfig(n=9, k=3, support=(0, 2, 4), n_eval=64, data_seed=5),
        model=MLPConfig(d_in=9, width=16, depth=2),
        optim=replace(
            default_optim("adam"), lr=0.01, weight_decay=0.1, schedule="constant", warmup_frac=0.2, grad_clip=1.5
        ),
        checkpoints=CheckpointConfig(save_every=11, log_early=2, eval_every=5, eval_log=3),
        steps=77,
        batch_size=8,
        seed=4,
        device="cpu",
        amp=True,
    )
    assert teacher_config_from_args(args) == want
    assert not tmp_path.joinpath("runs").exists()  # building the config writes nothing


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        (
            ["--model", "bert", "--layers", 2, "--heads", 2, "--hidden", 32, "--intermediate", 48, "--dropout", 0.1],
            BertConfig(num_hidden_layers=2, num_attention_heads=2, hidden_size=32, intermediate_size=48, dropout=0.1),
        ),
        (
            ["--model", "gpt2", "--n-layer", 3, "--n-head", 2, "--head-dim", 4, "--n-positions", 16, "--dropout", 0.2],
            GPT2Config(n_layer=3, n_head=2, head_dim=4, n_positions=16, dropout=0.2),
        ),
    ],
)
def test_model_flags_give_the_model_config_built_directly(flags, want):
    from curriculens.cli._common import model_from_args

    args = _args("train-teacher", *flags)
    assert model_from_args(args, MLPConfig(), "train-teacher") == want


@pytest.mark.parametrize(
    ("method", "planted"),
    [
        ("progressive", dict(alpha=0.25, tau=2.0, speed=1.5, interval=7, progressive_rule="pcfg")),
        ("two-shot", dict(alpha=0.5, tau=0.5, two_shot_step=10, two_shot_T=4)),
        ("curriculum-extraction", dict(tau=3.0, extract_steps=3, extract_seed=9)),
    ],
)
def test_distill_flags_give_the_config_built_directly(tiny_teacher, method, planted):
    from curriculens.cli.train import student_config_from_args

    teacher = tiny_teacher / "runs" / "teacher"
    flags = [x for k, v in planted.items() for x in ("--" + k.replace("_", "-"), v)]
    args = _args("distill", "--teacher", tiny_teacher, "--method", method, *flags, "--width", 5, "--steps", 12,
                 "--seed", 2, "--lr", 0.3)  # fmt: skip
    cfg = student_config_from_args(args, teacher)
    assert cfg.distill == DistillConfig(method=method, teacher_dir=cfg.distill.teacher_dir, **planted)
    assert cfg.distill.teacher_dir and (cfg.model.width, cfg.steps, cfg.seed, cfg.optim.lr) == (5, 12, 2, 0.3)


def test_a_student_takes_the_teachers_training_settings_as_distill_help_says(tiny_teacher):
    from curriculens.cli.train import student_config_from_args
    from training.experiment import read_run

    teacher = read_run(tiny_teacher / "runs" / "teacher").config
    cfg = student_config_from_args(
        _args("distill", "--teacher", tiny_teacher, "--method", "ce"), tiny_teacher / "runs" / "teacher"
    )
    assert (cfg.optim, cfg.checkpoints, cfg.steps, cfg.batch_size) == (
        teacher.optim,
        teacher.checkpoints,
        teacher.steps,
        teacher.batch_size,
    )
    help_text = _subparsers()["distill"].format_help()
    assert "optimizer steps (default the teacher's)" in " ".join(help_text.split())


def test_grid_flags_give_the_spec_built_directly():
    from curriculens.cli.grid import spec_from_args

    args = _args(
        "grid", "EXP", "--methods", "ce,two-shot", "--seeds", "1,2", "--width", "8,16", "--tau", 0.5,
        "--alphas", "0.1,0.2", "--speed", 2, "--two-shot-steps", "10,20", "--two-shot-T", 5, "--extract-steps", 3,
        "--extract-seed", 7, "--steps", 50, "--batch-size", 4, "--save-every", 10, "--eval-every", 5,
        "--stream-seed", 9, "--stop-at-acc", 0.9, "--teacher", "t", "--lr", 0.2, "--device", "cpu",
    )  # fmt: skip
    want = GridSpec(
        methods=("ce", "two-shot"), seeds=(1, 2), widths=(8, 16), taus=(0.5,), alphas=(0.1, 0.2), speeds=(2.0,),
        two_shot_steps=(10, 20), two_shot_T=5, extract_steps=3, extract_seed=7, steps=50, batch_size=4,
        save_every=10, eval_every=5, stream_seed=9, stop_at_acc=0.9, teacher="t", optim={"lr": 0.2}, device="cpu",
    )  # fmt: skip
    assert spec_from_args(args) == want
    mid = spec_from_args(_args("grid", "EXP", "--two-shot-steps", "mid", "--two-shot-T", 5))
    assert mid.two_shot_steps == "mid" and mid.methods == ("two-shot",)


def test_probe_flags_give_the_sweep_config_built_directly():
    from curriculens.cli.probe import config_from_args

    args = _args(
        "probe", "EXP", "--probes", "model,fourier", "--seed", 3, "--every", 2, "--runs", "teacher,ce-s0",
        "--force", "--device", "cpu", "--n-probe", 100, "--option", "n_off=5",
    )  # fmt: skip
    want = SweepConfig(
        probes=("model", "fourier"), seed=3, every=2, runs=("teacher", "ce-s0"), force=True, device="cpu",
        options={"n_off": 5, "n_probe": 100},
    )  # fmt: skip
    assert config_from_args(args) == want
    assert config_from_args(_args("probe", "EXP")) == SweepConfig()


def test_import_flags_give_the_import_config_built_directly(tmp_path):
    args = _args(
        "import", "SRC", "--out", tmp_path, "--task", "parity", "--role", "student", "--method", "two-shot",
        "--name", "x", "--seed", 3, "--copy", "--force", "--two-shot-step", 10, "--two-shot-T", 4,
        "--revisions", "0:20", "--steps", "0,10", "--every", 2,
    )  # fmt: skip
    want = ImportConfig(
        src="SRC", out=str(tmp_path), task={"name": "parity"}, role="student", method="two-shot", name="x", seed=3,
        copy=True, force=True, two_shot_step=10, two_shot_T=4, revisions="0:20", steps=(0, 10), every=2,
    )  # fmt: skip
    assert apply_args(ImportConfig, args, "import", src="SRC", out=str(tmp_path), task={"name": "parity"}) == want


def test_fetch_flags_give_the_fetch_config_built_directly():
    args = _args(
        "fetch", "org/m", "--revisions", "log:3", "--out", "hub", "--endpoint", "http://127.0.0.1:9", "--timeout", 5
    )
    want = FetchConfig("org/m", "log:3", "hub", endpoint="http://127.0.0.1:9", timeout_s=5.0)
    assert apply_args(FetchConfig, args, "fetch", repo="org/m", revisions="log:3", out="hub") == want


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train-teacher", "--out", "{tmp}/x", "--support", "0,y"], "--support must be comma-separated int values"),
        (["train-teacher", "--out", "{tmp}/x", "--lr", "-1"], "lr must be a positive number"),
        (["train-teacher", "--out", "{tmp}/x", "--n", 5, "--k", 2, "--heads", 2], "--heads does not apply"),
        (["grid", "{exp}", "--seeds", "1,a"], "--seeds must be comma-separated int values"),
        (["grid", "{exp}", "--widths", "0"], "widths must be positive"),
        (["import", "{tmp}", "--out", "{tmp}/x", "--task", "parity", "--steps", "1,b"], "--steps must be comma"),
        (["probe", "{exp}", "--every", 0], "--every must be >= 1"),
        (["fetch", "org/m", "--revisions", "all", "--out", "{tmp}/x", "--timeout", 0], "timeout must be positive"),
    ],
)
def test_bad_values_are_one_line_and_write_nothing(teacher_copy, tmp_path, cli, argv, message):
    before = sorted(p.relative_to(teacher_copy) for p in teacher_copy.rglob("*"))
    code, out = cli(*[str(a).format(tmp=tmp_path, exp=teacher_copy) for a in argv])
    assert code == 2 and out.count("\n") == 1 and out.startswith("curriculens: error: ") and message in out, out
    assert not (tmp_path / "x").exists()
    assert sorted(p.relative_to(teacher_copy) for p in teacher_copy.rglob("*")) == before


def test_a_new_field_with_metadata_is_a_flag_and_applies():
    """The whole recipe for a new flag: one field with ``cli`` metadata."""
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class Toy:
        size: int = field(default=3, metadata=cli("how big"))
        tags: tuple = field(default=(), metadata=cli("labels", parse=csv_of(str), commands=("toy",)))
        on: bool = field(default=False, metadata=cli("switch", flag="--enable"))
        ids: tuple = field(default=(), metadata=cli("numbers", parse=csv_of(int), default=""))
        hidden: int = 0

    p = argparse.ArgumentParser()
    add_config_args(p, Toy, command="toy")
    assert _flags(p) == ["--enable", "--ids", "--size", "--tags"]
    assert "how big (default 3)" in p.format_help().replace("\n", " ").replace("  ", " ")
    args = p.parse_args(["--size", "5", "--tags", "a,b", "--enable"])
    assert apply_args(Toy, args, "toy") == Toy(size=5, tags=("a", "b"), on=True)
    assert apply_args(Toy(size=9, hidden=1), p.parse_args([]), "toy") == Toy(size=9, hidden=1)
    other = argparse.ArgumentParser()
    add_config_args(other, Toy, command="other")
    assert _flags(other) == ["--enable", "--ids", "--size"]  # tags only for "toy"
    with pytest.raises(CurriculensError, match="^--ids must be comma-separated int values, got '1,x'$"):
        apply_args(Toy, p.parse_args(["--ids", "1,x"]), "toy")
    assert isinstance(Toy.__dataclass_fields__["size"].metadata["curriculens.cli"], CliFlag)


def test_config_files_still_read_the_same():
    """Metadata is not data: a config's dict and identity do not change."""
    cfg = RunConfig(name="t", role="teacher", task={"name": "parity"}, model={"kind": "mlp"})
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert "curriculens.cli" not in json.dumps(cfg.to_dict()) and "help" not in json.dumps(cfg.to_dict())
