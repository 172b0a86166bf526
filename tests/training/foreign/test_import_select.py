"""``import --every / --steps / --revisions`` pick checkpoints; a tokens axis is recorded where the
source states it (OLMo-style names, a Trainer's ``num_input_tokens_seen``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.io import read_json, read_jsonl
from training.foreign.fixtures import sample_text, write_hub_cache, write_trainer_dir
from training.foreign.importer import ImportConfig, import_trajectory, run_tokens
from training.foreign.sources import parse_step, parse_tokens


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(sample_text(40, seed=1))
    return path


@pytest.fixture(scope="module")
def trainer(tmp_path_factory) -> Path:
    """Steps 0..20 by 5; every trainer_state.json log entry states the tokens seen (1024 per step)."""
    src = write_trainer_dir(tmp_path_factory.mktemp("t") / "out", "gpt2", steps=(0, 5, 10, 15, 20), n_layer=1)
    for d in src.iterdir():
        state = json.loads((d / "trainer_state.json").read_text())
        for e in state["log_history"]:
            e["num_input_tokens_seen"] = 1024 * e["step"]
        (d / "trainer_state.json").write_text(json.dumps(state))
    return src


def _import(src, tmp_path, corpus, **kw):
    task = {"name": "text", "corpus": str(corpus)}
    return import_trajectory(ImportConfig(src=str(src), out=str(tmp_path / "exp"), task=task, **kw))


@pytest.mark.parametrize(
    "kw,steps",
    [
        ({"every": 2}, [0, 10, 20]),
        ({"every": 3}, [0, 15, 20]),  # the last is always kept
        ({"steps": (5, 15)}, [5, 15]),
        ({"revisions": "5:15"}, [5, 10, 15]),
        ({"revisions": "0:20:10"}, [0, 10, 20]),
        ({"revisions": "checkpoint-5,20"}, [5, 20]),
        ({"revisions": "5:20", "every": 2}, [5, 15, 20]),
    ],
)
def test_selection(kw, steps, trainer, corpus, tmp_path, one_thread):
    res = _import(trainer, tmp_path, corpus, **kw)
    assert res.steps == steps
    assert sorted(int(p.name.split("_")[1]) for p in (res.run_dir / C.CHECKPOINTS_DIR).iterdir()) == steps


def test_bad_selection_writes_nothing(trainer, corpus, tmp_path):
    for kw, msg in [
        ({"steps": (5, 7)}, "no checkpoint at step"),
        ({"revisions": "30:40"}, "no revision matches"),
        ({"revisions": "step7"}, "no revision 'step7'"),
        ({"every": 0}, "--every must be"),
    ]:
        with pytest.raises(CurriculensError, match=msg):
            _import(trainer, tmp_path, corpus, **kw)
    assert not (tmp_path / "exp").exists()


def test_tokens_from_trainer_state(trainer, corpus, tmp_path, one_thread):
    res = _import(trainer, tmp_path, corpus, steps=(0, 10, 20))
    assert run_tokens(res.run_dir) == {0: 0, 10: 10240, 20: 20480}
    rows = {r["step"]: r for r in read_jsonl(res.run_dir / C.METRICS_FILE)}
    assert rows[10][C.TOKENS_KEY] == 10240 and rows[5][C.TOKENS_KEY] == 5120  # every logged step
    prov = read_json(res.run_dir / "import.json")["checkpoints"]
    assert [p[C.TOKENS_KEY] for p in prov] == [0, 10240, 20480]


def test_tokens_from_olmo_names(corpus, tmp_path, one_thread):
    repo = write_hub_cache(tmp_path / "hub", "gpt2", steps=(0, 1000, 2000))
    for ref in (repo / "refs").glob("step*"):
        s = int(ref.name[4:])
        ref.rename(ref.with_name(f"step{s}-tokens{s * 4}M"))
    res = _import(repo, tmp_path, corpus, revisions="log:2")
    assert res.steps == [0, 2000]
    assert run_tokens(res.run_dir) == {0: 0, 2000: 8_000_000_000}
    assert not (res.run_dir / C.METRICS_FILE).exists()  # no trainer log: the tokens live in meta.json


def test_parse_names():
    assert parse_tokens("step1000-tokens4B") == 4_000_000_000
    assert parse_tokens("stage1-step500-tokens2.5M") == 2_500_000
    assert parse_tokens("step1000") is None
    assert parse_step("stage1-step500-tokens3B") == 500


def test_cli(trainer, corpus, tmp_path, capsys, one_thread):
    from curriculens.cli import main

    exp = tmp_path / "e"
    base = ["import", str(trainer), "--out", str(exp), "--task", "text", "--task-set", f"corpus={corpus}"]
    assert main([*base, "--steps", "5,x"]) == 2
    assert "--steps must be" in capsys.readouterr().err
    assert main([*base, "--every", "2", "--revisions", "0:15"]) == 0
    assert "imported 3 checkpoints" in capsys.readouterr().out  # 0, 5, 10, 15 -> every 2nd and the last: 0, 10, 15
