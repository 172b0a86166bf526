"""``curriculens probe`` and ``curriculens summary`` end to end on a tiny real experiment."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from curriculens import constants as C
from curriculens.cli import build_parser, main
from curriculens.io import read_json, write_json
from models.checkpoint import list_checkpoints
from probes.store import ResultsStore
from probes.tasks.parity.fourier import FourierProbe

SMALL = [
    "--n-probe",
    "2048",
    "--option",
    "n_linear=384",
    "--option",
    "n_off=8",
    "--option",
    "max_iter=40",
    "--device",
    "cpu",
]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Many small tensor ops: single-threaded is faster on a shared CPU (results unaffected)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def exp(tiny_parity_experiment: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "exp"
    shutil.copytree(
        tiny_parity_experiment,
        dst,
        ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json", "failed.jsonl"),
    )
    return dst


def rows(exp: Path) -> pd.DataFrame:
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        return store.query()


def test_probe_then_summary(exp, capsys):
    assert main(["-q", "probe", str(exp), *SMALL]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("probe: ") and "0 failed" in out[-1] and str(exp / C.RESULTS_DB) in out[-1]
    df = rows(exp)
    assert set(df.probe) == {"model", "fourier", "linear"}
    cfg = read_json(exp / C.PROBE_CONFIG_FILE)
    assert cfg["options"]["n_probe"] == 2048 and cfg["options"]["n_linear"] == 384

    assert main(["-q", "probe", str(exp), *SMALL]) == 0  # rerun: everything skipped
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert " 0 done" in last and len(rows(exp)) == len(df)

    assert main(["summary", str(exp)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:3] == ["run", "probe", "metric"]
    assert "teacher" in text and "accuracy" in text

    assert main(["summary", str(exp / C.RESULTS_DB), "--json", "--probe", "model"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert recs and {r["probe"] for r in recs} == {"model"}
    assert {"appear_step", "peak_step", "peak_value", "baseline", "final_value"} <= set(recs[0])


def test_dry_run_writes_nothing(exp, capsys):
    assert main(["probe", str(exp), "--dry-run", "--probes", "model,fourier", "--every", "2"]) == 0
    out = capsys.readouterr().out
    assert "units" in out and "2 probes" in out
    assert not (exp / C.RESULTS_DB).exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_round_trip(exp, tmp_path, suffix, capsys):
    out = tmp_path / f"rows{suffix}"
    assert main(["-q", "probe", str(exp), "--probes", "model,fourier", "--export", str(out), *SMALL]) == 0
    back = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    ref = rows(exp)
    assert len(back) == len(ref) and list(back.columns) == list(ref.columns)
    pd.testing.assert_series_equal(back["value"], ref["value"], check_exact=False, rtol=1e-12)
    assert (back["feature"].astype(str) == ref["feature"]).all()


def _corrupt_weights(exp: Path) -> None:
    weights = list_checkpoints(exp / C.RUNS_DIR / "teacher")[-1][1] / C.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-8] ^= 0x55
    weights.write_bytes(bytes(data))


def _mismatch_config(exp: Path) -> None:
    run_cfg = exp / C.RUNS_DIR / "teacher" / C.RUN_CONFIG_FILE
    data = read_json(run_cfg)
    data["model"]["width"] += 3
    write_json(run_cfg, data)


@pytest.mark.parametrize(
    "case",
    ["missing", "empty", "corrupted", "mismatch", "unknown-probe", "bad-option", "bad-export"],
)
def test_bad_input_exits_2_with_one_line_and_no_rows(exp, tmp_path, capsys, case):
    target = exp
    extra: list[str] = []
    if case == "missing":
        target = tmp_path / "nope"
    elif case == "empty":
        target = tmp_path / "empty"
        target.mkdir()
    elif case == "corrupted":
        _corrupt_weights(exp)
    elif case == "mismatch":
        _mismatch_config(exp)
    elif case == "unknown-probe":
        extra = ["--probes", "model,telepathy"]
    elif case == "bad-option":
        extra = ["--option", "n_off=-1"]
    elif case == "bad-export":
        extra = ["--export", str(tmp_path / "out.xlsx")]
    code = main(["probe", str(target), "--device", "cpu", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("curriculens: error:"), err
    assert "Traceback" not in err
    assert not (exp / C.RESULTS_DB).exists()


def test_failed_unit_gives_exit_1(exp, monkeypatch, capsys):
    def boom(self, ctx):
        raise ValueError("planted")

    monkeypatch.setattr(FourierProbe, "run", boom)
    code = main(["-q", "probe", str(exp), "--probes", "model,fourier", *SMALL])
    captured = capsys.readouterr()
    assert code == 1
    assert "failed" in captured.err and "planted" in captured.err
    assert (exp / C.FAILED_FILE).is_file()
    assert set(rows(exp).probe) == {"model"}


def test_config_file_and_flag_override(exp, tmp_path, capsys):
    conf = tmp_path / "sweep.json"
    write_json(conf, {"probes": ["model"], "seed": 3, "every": 2, "options": {"n_probe": 1000}})
    assert main(["-q", "probe", str(exp), "--config", str(conf), "--seed", "5", "--device", "cpu"]) == 0
    stored = read_json(exp / C.PROBE_CONFIG_FILE)
    assert stored["seed"] == 5 and stored["every"] == 2 and stored["probes"] == ["model"]
    assert stored["options"] == {"n_probe": 1000}
    write_json(conf, {"probes": ["model"], "sede": 3})
    assert main(["probe", str(exp), "--config", str(conf)]) == 2
    assert "sede" in capsys.readouterr().err


def test_summary_without_results_is_a_user_error(exp, capsys):
    assert main(["summary", str(exp)]) == 2
    assert "curriculens probe" in capsys.readouterr().err


def test_every_flag_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("probe", "summary"):
        for action in sub.choices[name]._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, (name, action.dest)
