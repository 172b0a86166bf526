"""``--executor`` flags and ExecutorConfig: validation and one-line errors (no Ray cluster needed)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from curriculens import constants as C
from curriculens.cli import main
from curriculens.errors import CurriculensError
from curriculens.executor import ExecutorConfig
from probes.dispatch import split_blocks


@pytest.fixture
def exp(tiny_parity_experiment: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "exp"
    shutil.copytree(
        tiny_parity_experiment,
        dst,
        ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json", "failed.jsonl"),
    )
    return dst


def _one_line_error(capsys, code: int, *fragments: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("curriculens: error: "), err
    for frag in fragments:
        assert frag in err[0], err


def _nothing_written(exp: Path) -> None:
    assert not (exp / C.RESULTS_DB).exists() and not (exp / C.PROBE_CONFIG_FILE).exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "spark"}, "unknown executor"),
        ({"address": "auto"}, "needs --executor ray"),
        ({"kind": "ray", "cpus_per_task": 0}, "CPUs > 0"),
        ({"kind": "ray", "gpus_per_task": -0.5}, "GPUs >= 0"),
        ({"kind": "ray", "block": -1}, ">= 0"),
        ({"kind": "ray", "address": "nohost"}, "HOST:PORT"),
        ({"kind": "ray", "address": "host:port"}, "HOST:PORT"),
    ],
)
def test_executor_config_rejects_bad_values(kwargs, match):
    with pytest.raises(CurriculensError, match=match):
        ExecutorConfig(**kwargs)
    assert ExecutorConfig(kind="ray", address="10.0.0.1:6379", gpus_per_task=0.25).is_ray


def test_ray_flags_need_ray_executor(exp, capsys):
    _one_line_error(capsys, main(["probe", str(exp), "--ray-cpus", "2"]), "--ray-* flags need --executor ray")
    _nothing_written(exp)


def test_missing_ray_is_one_line(exp, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without the extra looks like
    _one_line_error(capsys, main(["probe", str(exp), "--executor", "ray"]), "needs Ray", "curriculens[ray]")
    _one_line_error(capsys, main(["demo", "--out", str(exp.parent / "d"), "--executor", "ray"]), "needs Ray")
    _nothing_written(exp)
    assert not (exp.parent / "d").exists()


def test_bad_address_is_one_line(exp, capsys):
    pytest.importorskip("ray")
    code = main(["probe", str(exp), "--executor", "ray", "--ray-address", "127.0.0.1:1", "--probes", "model"])
    _one_line_error(capsys, code, "no Ray cluster answers at 127.0.0.1:1")
    _one_line_error(capsys, main(["probe", str(exp), "--executor", "ray", "--ray-address", "nonsense"]), "HOST:PORT")
    _nothing_written(exp)


class _Run:
    def __init__(self, name):
        self.name = name


class _Item:
    def __init__(self, run, step):
        self.run, self.step = _Run(run), step


def test_split_blocks_keeps_runs_contiguous():
    items = [_Item("a", s) for s in (0, 1, 2, 3, 4)] + [_Item("b", s) for s in (0, 1)] + [_Item("a", 9)]
    whole = split_blocks(items)
    assert [[(i.run.name, i.step) for i in b] for b in whole] == [
        [("a", 0), ("a", 1), ("a", 2), ("a", 3), ("a", 4)],
        [("b", 0), ("b", 1)],
        [("a", 9)],
    ]
    two = split_blocks(items, 2)
    assert [len(b) for b in two] == [2, 2, 1, 2, 1]
    assert [i for b in two for i in b] == items  # order kept, nothing lost or repeated
