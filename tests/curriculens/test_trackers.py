"""``curriculens export --to tensorboard|mlflow|wandb``: the written files read back with each
tracker's own reader (TensorBoard's EventAccumulator, MLflow's client on the file store, W&B's
``wandb leet inspect --json`` on the offline run files) hold every run's metrics, the planted
probe values and the teacher-step axis, in step order; bad input writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curriculens import constants as C
from curriculens.cli import main
from curriculens.io import read_jsonl
from curriculens.trackers import MARKER

CURVE = "metrics/eval_acc"
AXIS = "axes/teacher_step"


def _export(planted, tracker: str, out: Path, capsys, *extra: str) -> None:
    assert main(["-q", "export", str(planted.exp), "--to", tracker, "--out", str(out), *extra]) == 0
    assert "wrote 8 runs" in capsys.readouterr().out
    assert json.loads((out / MARKER).read_text())["tracker"] == tracker


def _check(planted, got: dict[str, dict[str, list[tuple[int, float]]]]) -> None:
    """``got``: run -> key -> [(step, value)] as the tracker's reader returned them."""
    runs = sorted(p.name for p in (planted.exp / C.RUNS_DIR).iterdir())
    assert sorted(got) == runs
    for run in runs:
        rows = read_jsonl(planted.exp / C.RUNS_DIR / run / C.METRICS_FILE)
        steps = [s for s, _ in got[run][CURVE]]
        assert steps == sorted(steps) == [r["step"] for r in rows]  # every evaluation, in order
        assert [v for _, v in got[run][CURVE]] == pytest.approx([r["eval_acc"] for r in rows], rel=1e-6)
        axis = dict(got[run].get(AXIS, []))
        if run == "teacher":
            assert axis == {s: s for s in steps}
        elif run.startswith("ce-"):
            assert axis == {}  # ce students learn from labels: no teacher step
        else:
            assert axis == {r["step"]: r["teacher_step"] for r in rows if r["teacher_step"] is not None}
            assert axis
    planted_off = {}
    for (run, step, feature), v in planted.off_values.items():
        planted_off.setdefault((run, f"probes/fourier/corr/output/{feature}"), []).append((step, v))
    for (run, key), want in planted_off.items():
        want = sorted(want)
        assert [s for s, _ in got[run][key]] == [s for s, _ in want]
        assert [v for _, v in got[run][key]] == pytest.approx([v for _, v in want], rel=1e-6)


def test_tensorboard_event_files_read_back(planted, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    _export(planted, "tensorboard", out, capsys)
    got = {}
    for d in sorted(p for p in out.iterdir() if p.is_dir()):
        acc = EventAccumulator(str(d), size_guidance={"scalars": 0})
        acc.Reload()
        got[d.name] = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    _check(planted, got)
    _export(planted, "tensorboard", out, capsys)  # again: replaced, not appended to
    assert len(list((out / "teacher").iterdir())) == 1


def test_mlflow_file_store_reads_back(planted, tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    out = tmp_path / "mlruns"
    _export(planted, "mlflow", out, capsys)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads a file store only with it
    client = MlflowClient(tracking_uri=out.as_uri())
    exp = client.get_experiment_by_name(planted.exp.name)
    runs = client.search_runs([exp.experiment_id], max_results=100)
    got = {}
    for r in runs:
        name = r.info.run_name
        keys = list(r.data.metrics)
        got[name] = {
            k: [(m.step, m.value) for m in sorted(client.get_metric_history(r.info.run_id, k), key=lambda m: m.step)]
            for k in keys
        }
        assert r.data.tags["role"] in ("teacher", "student") and r.info.status == "FINISHED"
        assert float(r.data.params["optim.lr"]) > 0
    _check(planted, got)


def _wandb_records(path: Path) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(path)],
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.mark.slow  # ~30 s: a W&B offline run per curriculens run, and a reader process per run
def test_wandb_offline_runs_read_back(planted, tmp_path, capsys):
    pytest.importorskip("wandb")
    out = tmp_path / "wb"
    _export(planted, "wandb", out, capsys)
    got = {}
    for f in sorted(out.glob("wandb/offline-run-*/run-*.wandb")):
        records = _wandb_records(f)
        run = next(r["run"] for r in records if r["type"] == "run")
        assert run["run_group"] == planted.exp.name
        defined = {
            r["metric"].get("glob_name") or r["metric"].get("name"): r["metric"]
            for r in records
            if r["type"] == "metric"
        }
        assert defined["metrics/*"]["step_metric"] == "step" and "teacher_step" in defined
        series: dict[str, list] = {}
        for r in records:
            if r["type"] == "history":
                item = r["history"]["item"]
                assert item["step"] == item["_step"] == r["history"]["step"]["num"]
                if "teacher_step" in item:
                    assert item["teacher_step"] == item[AXIS]
                for k, v in item.items():
                    if k.startswith(("metrics/", "probes/", "axes/")):
                        series.setdefault(k, []).append((item["step"], v))
        got[run["display_name"]] = series
    _check(planted, got)


def test_probes_filter_and_bad_input_write_nothing(planted, tmp_path, capsys, monkeypatch):
    pytest.importorskip("tensorboard")
    out = tmp_path / "tb"
    assert main(["-q", "export", str(planted.exp), "--to", "tensorboard", "--out", str(out), "--probes", "linear"]) == 0
    capsys.readouterr()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "teacher"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert any(t.startswith("probes/linear/") for t in tags) and not any(t.startswith("probes/fourier/") for t in tags)

    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    bad = [
        (["--to", "tensorboard", "--out", str(keep)], "not an earlier curriculens tracker export"),
        (["--to", "tensorboard", "--out", str(tmp_path / "n"), "--probes", "nope"], "unknown probe nope"),
        (["--to", "tensorboard", "--out", str(tmp_path / "n"), "--format", "png"], "leave out --format"),
        (["--out", str(tmp_path / "n"), "--probes", "linear"], "--probes applies to --to only"),
        (["--format", "html"], "needs --out"),
    ]
    for args, msg in bad:
        assert main(["export", str(planted.exp), *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    assert [p.name for p in keep.iterdir()] == ["notes.txt"] and not (tmp_path / "n").exists()
    assert main(["export", str(tmp_path), "--to", "tensorboard", "--out", str(tmp_path / "n")]) == 2
    assert "not an experiment directory" in capsys.readouterr().err and not (tmp_path / "n").exists()


def test_a_missing_tracker_package_is_one_line(planted, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    assert main(["export", str(planted.exp), "--to", "mlflow", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'curriculens[trackers]'" in err[0]
    assert not (tmp_path / "m").exists()


def test_tracker_keys_are_plain_relative_paths():
    from curriculens.trackers.series import tracker_key

    assert (
        tracker_key("probes", "nt_span", "acc", "blocks.0.hook_out", "NT 3")
        == "probes/nt_span/acc/blocks.0.hook_out/NT 3"
    )
    assert tracker_key("probes", "p", "m", "", "..") == "probes/p/m/_/_"
    assert tracker_key("probes", "text", "acc", "site", "a\u00e9<b>|c") == "probes/text/acc/site/a__b__c"


def test_an_experiment_without_results_exports_its_curves_to_the_default_out(planted, tmp_path, capsys, monkeypatch):
    pytest.importorskip("tensorboard")
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    exp = tmp_path / "noresults"
    shutil.copytree(planted.exp, exp)
    (exp / C.RESULTS_DB).unlink()
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "export", str(exp), "--to", "tensorboard", "--probes", "fourier"]) == 2
    assert "no probe results yet" in capsys.readouterr().err
    assert main(["-q", "export", str(exp), "--to", "tensorboard"]) == 0
    out = tmp_path / "noresults-tensorboard"  # the default --out: ./<experiment>-<tracker>
    assert str(out.name) in capsys.readouterr().out
    acc = EventAccumulator(str(out / "teacher"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert CURVE in tags and AXIS in tags and not any(t.startswith("probes/") for t in tags)


def test_the_cli_offers_every_tracker():
    from curriculens.cli import export as cli_export
    from curriculens.trackers import TRACKERS

    assert cli_export.TRACKERS == tuple(TRACKERS)
