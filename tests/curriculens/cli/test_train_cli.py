"""The train-teacher / distill / demo commands: configs on disk, resuming, one-line errors."""

import json

import pytest

from curriculens.cli import build_parser, main


def run(capsys, *argv):
    code = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"demo", "train-teacher", "distill", "probe", "summary", "export", "dashboard"} <= set(sub.choices)
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest != "help" and action.option_strings:
                assert action.help, f"{name} {action.option_strings} has no help text"


def test_teacher_then_student_from_flags_and_from_config(tmp_path, capsys):
    exp = tmp_path / "exp"
    code, out, _ = run(
        capsys,
        "train-teacher",
        "--out",
        exp,
        "--n",
        8,
        "--k",
        2,
        "--width",
        32,
        "--steps",
        60,
        "--save-every",
        20,
        "--device",
        "cpu",
    )
    assert code == 0 and "teacher" in out
    cfg = json.loads((exp / "runs" / "teacher" / "config.json").read_text())
    assert cfg["task"]["n"] == 8 and cfg["model"]["width"] == 32 and cfg["steps"] == 60
    assert json.loads((exp / "experiment.json").read_text())["task"]["k"] == 2
    code, out, _ = run(capsys, "distill", "--teacher", exp, "--method", "progressive", "--width", 8, "--device", "cpu")
    assert code == 0
    student = json.loads((exp / "runs" / "progressive-s0" / "config.json").read_text())
    assert student["distill"]["method"] == "progressive" and student["model"]["width"] == 8
    assert student["distill"]["teacher_dir"] == "../teacher"
    # the saved config reruns the same run: finished, so it is kept
    code, out, _ = run(
        capsys,
        "distill",
        "--teacher",
        exp,
        "--method",
        "progressive",
        "--config",
        exp / "runs" / "progressive-s0" / "config.json",
        "--device",
        "cpu",
    )
    assert code == 0 and "already finished" in out
    # a config file with different flags on top is a different run: refused without --force
    code, _, err = run(capsys, "distill", "--teacher", exp, "--method", "progressive", "--width", 9, "--device", "cpu")
    assert code == 2 and "different config" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["distill", "--teacher", "{tmp}/nope", "--method", "progressive"], "neither a teacher run"),
        (["distill", "--teacher", "{exp}", "--method", "sideways"], "unknown method"),
        (["distill", "--teacher", "{exp}", "--method", "two-shot"], "two-shot needs"),
        (["distill", "--teacher", "{exp}", "--method", "curriculum-extraction"], "needs --extract-steps > 0"),
        (["train-teacher", "--out", "{tmp}/x", "--task", "chess"], "unknown task"),
        (["train-teacher", "--out", "{tmp}/x", "--n", "5", "--k", "9"], "support"),
        (["train-teacher", "--out", "{tmp}/x", "--model-json", "{{bad"], "neither a file nor valid JSON"),
        (["train-teacher", "--out", "{tmp}/x", "--n", "5", "--k", "2", "--n-layer", "2"], "does not apply"),
        (["train-teacher", "--out", "{tmp}/x", "--config", "{tmp}/missing.json"], "missing file"),
        (
            [
                "train-teacher",
                "--out",
                "{tmp}/x",
                "--device",
                "cuda",
                "--n",
                "5",
                "--k",
                "2",
                "--width",
                "4",
                "--steps",
                "1",
            ],
            None,
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    import torch

    exp = tmp_path / "exp"
    assert (
        run(
            capsys,
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
            10,
            "--save-every",
            5,
            "--device",
            "cpu",
        )[0]
        == 0
    )
    argv = [a.format(tmp=tmp_path, exp=exp) for a in argv]
    code, _, err = run(capsys, *argv)
    if message is None:  # --device cuda: works with a GPU, a clear error without one
        if torch.cuda.is_available():
            assert code == 0
            return
        message = "no CUDA device"
    assert code == 2, err
    assert err.startswith("curriculens: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_every_method_trains_through_distill(tmp_path, capsys):
    """Each of the five methods through ``distill``, curriculum extraction with its flags; the
    help lists them all."""
    from curriculens import constants as C

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    method_help = next(a.help for a in sub.choices["distill"]._actions if a.dest == "method")
    assert all(m in method_help for m in C.METHODS)
    exp = tmp_path / "exp"
    teacher = ["--n", 6, "--k", 2, "--width", 16, "--steps", 40, "--save-every", 10, "--device", "cpu"]
    assert run(capsys, "train-teacher", "--out", exp, *teacher)[0] == 0
    extra = {
        "two-shot": ["--two-shot-step", 20, "--two-shot-T", 10],
        "curriculum-extraction": ["--extract-steps", 10, "--extract-seed", 3],
    }
    for method in C.METHODS:
        argv = ["--method", method, "--width", 8, "--steps", 20, "--device", "cpu", *extra.get(method, [])]
        code, out, err = run(capsys, "distill", "--teacher", exp, *argv)
        assert code == 0, (method, err)
        name = "two-shot-ckpt20-T10-s0" if method == "two-shot" else f"{method}-s0"
        dist = json.loads((exp / "runs" / name / "config.json").read_text())["distill"]
        assert dist["method"] == method and dist["teacher_dir"] == "../teacher"
        assert (exp / "runs" / name / "done.json").is_file()
    dist = json.loads((exp / "runs" / "curriculum-extraction-s0" / "config.json").read_text())["distill"]
    assert (dist["extract_steps"], dist["extract_seed"]) == (10, 3)


def test_tiny_demo_without_probes(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--size", "tiny", "--out", tmp_path / "d", "--no-probe", "--device", "cpu")
    assert code == 0
    runs = sorted(p.name for p in (tmp_path / "d" / "runs").iterdir())
    assert runs[:3] == ["ce-s0", "one-shot-s0", "progressive-s0"] and "teacher" in runs
    assert any(r.startswith("two-shot-ckpt") for r in runs)
