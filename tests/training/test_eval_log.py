"""Issue 24 item 4: teachers evaluate on a log-spaced schedule (``CheckpointConfig.eval_log``), so
a short early plateau gets several evaluations; the option draws no training randomness."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from curriculens.cli import main
from curriculens.config import from_dict, to_dict
from curriculens.curves import detect_phases
from curriculens.errors import CurriculensError
from models.checkpoint import load_checkpoint
from training.config import CheckpointConfig, OptimConfig, RunConfig
from training.experiment import read_metrics
from training.loop import train_run
from training.plans.parity import PARITY_SIZES, parity_teacher_config
from training.plans.pcfg import PRESETS, teacher_config
from training.schedule import eval_steps, log_steps


def test_log_steps_are_log_spaced_deduplicated_and_span_the_run():
    assert log_steps(1000, 4) == [1, 10, 100, 1000]  # 1000 ** (i / 3)
    assert log_steps(10_000, 5) == [1, 10, 100, 1000, 10_000]
    # 10 ** (i / 5) = 1, 1.58, 2.51, 3.98, 6.31, 10 -> rounding makes nothing collide here ...
    assert log_steps(10, 6) == [1, 2, 3, 4, 6, 10]
    # ... but 20 points in [1, 10] do: each step once, sorted, 1 and 10 kept
    many = log_steps(10, 20)
    assert many == list(range(1, 11))
    assert log_steps(500, 0) == [] and log_steps(500, 1) == [500]
    # consecutive ratios are constant (up to rounding) over the long end
    s = log_steps(100_000, 11)
    assert s == [1, 3, 10, 32, 100, 316, 1000, 3162, 10_000, 31_623, 100_000]


def test_eval_steps_merge_the_two_grids():
    assert eval_steps(1000, 400) == [400, 800]
    assert eval_steps(1000, 0, 4) == [1, 10, 100, 1000]
    assert eval_steps(1000, 400, 4) == [1, 10, 100, 400, 800, 1000]
    assert eval_steps(1000, 100, 4) == [1, 10, *range(100, 1001, 100)]  # 100 and 1000 only once
    assert eval_steps(1000, 0, 0) == []


def test_eval_log_is_validated_and_old_configs_read_as_off():
    with pytest.raises(CurriculensError, match="eval log must be >= 0"):
        CheckpointConfig(eval_log=-1)
    old = to_dict(CheckpointConfig(save_every=50, eval_every=10))
    del old["eval_log"]  # a config.json written before the option
    assert from_dict(CheckpointConfig, old) == CheckpointConfig(save_every=50, eval_every=10)


def test_presets_keep_their_defaults_and_carry_the_option():
    from dataclasses import replace

    assert all(p.eval_log == 0 for p in PRESETS.values())
    assert all(s.eval_log == 0 for s in PARITY_SIZES.values())
    cfg = parity_teacher_config(replace(PARITY_SIZES["tiny"], eval_log=7))
    assert cfg.checkpoints.eval_log == 7 and cfg.checkpoints.eval_every == PARITY_SIZES["tiny"].eval_every
    pcfg = teacher_config(replace(PRESETS["cpu-tiny"], eval_log=5), device="cpu")
    assert pcfg.checkpoints.eval_log == 5 and pcfg.checkpoints.eval_every == PRESETS["cpu-tiny"].eval_every
    assert teacher_config(PRESETS["cpu-tiny"], device="cpu").checkpoints.eval_log == 0


def _teacher(eval_log: int) -> RunConfig:
    return RunConfig(
        name="teacher",
        role="teacher",
        task={"name": "parity", "n": 8, "k": 2, "n_eval": 128},
        model={"kind": "mlp", "d_in": 8, "width": 32},
        optim=OptimConfig(name="sgd", lr=0.1),
        checkpoints=CheckpointConfig(save_every=100, eval_every=50, eval_log=eval_log),
        steps=200,
        batch_size=16,
        seed=3,
        device="cpu",
    )


def test_a_teacher_evaluates_at_the_log_steps_and_trains_the_same_weights(tmp_path):
    train_run(_teacher(0), tmp_path / "plain")
    train_run(_teacher(6), tmp_path / "log")
    plain = [r["step"] for r in read_metrics(tmp_path / "plain")]
    logged = [r["step"] for r in read_metrics(tmp_path / "log")]
    assert plain == [0, 50, 100, 150, 200]
    # 200 ** (i / 5) = 1, 2.88, 8.33, 24.0, 69.3, 200 -> 1, 3, 8, 24, 69 join the 50-grid
    assert logged == [0, 1, 3, 8, 24, 50, 69, 100, 150, 200]
    a, _, _ = load_checkpoint(tmp_path / "plain" / "checkpoints" / "step_000000200")
    b, _, _ = load_checkpoint(tmp_path / "log" / "checkpoints" / "step_000000200")
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    # the shared evaluations see the same model, so they agree exactly
    rows = {r["step"]: r["eval_loss"] for r in read_metrics(tmp_path / "log")}
    assert all(rows[r["step"]] == r["eval_loss"] for r in read_metrics(tmp_path / "plain"))


def test_train_teacher_flag(tmp_path, capsys):
    argv = ["--n", 6, "--k", 2, "--width", 8, "--steps", 40, "--save-every", 20, "--n-eval", 64, "--device", "cpu"]
    code = main(["-q", "train-teacher", "--out", str(tmp_path / "e"), *map(str, argv), "--eval-log", "4"])
    capsys.readouterr()
    assert code == 0
    run_dir = tmp_path / "e" / "runs" / "teacher"
    assert json.loads((run_dir / "config.json").read_text())["checkpoints"]["eval_log"] == 4
    # 40 ** (i / 3) = 1, 3.42, 11.7, 40; saves at 0, 20, 40
    assert [r["step"] for r in read_metrics(run_dir)] == [0, 1, 3, 12, 20, 40]


def _planted(x: np.ndarray, T: int, mid: float, w: float, seed: int) -> np.ndarray:
    """ln V at step 0, a fast transient (gone by step ~50), a plateau, a drop of 0.3 centred at
    ``mid`` (logistic in log step, width ``w``), a slow phase, noise (tests/curriculens/test_phases)."""
    t = np.maximum(x, 1.0)
    y = 0.6 + 0.3 / (1 + np.exp(-(math.log(mid) - np.log(t)) / w))
    y = y + 0.08 * (1 - np.log(t) / math.log(T)) + 1.2 * np.exp(-t / 8)
    y[x == 0] = 2.3
    return y + np.random.default_rng(seed).normal(0, 0.006, x.size)


@pytest.mark.parametrize("seed", range(5))
def test_a_short_plateau_gets_three_evaluations_on_the_log_grid(seed):
    T, mid, w = 5000, 280.0, 0.15
    plateau = (50, mid * math.exp(-2.2 * w))  # steps 50..201: 3% of the run
    assert 0.029 <= (plateau[1] - plateau[0]) / T <= 0.031
    linear = np.array([0, *eval_steps(T, 100)], float)
    logged = np.array([0, *eval_steps(T, 100, 40)], float)

    def on_plateau(x):
        return int(((x >= plateau[0]) & (x <= plateau[1])).sum())

    assert on_plateau(linear) < 3 and on_plateau(logged) >= 3
    ph = detect_phases(logged, _planted(logged, T, mid, w, seed))
    assert ph is not None and abs(ph.mid_step - mid) <= 0.25 * mid
    assert ph.clear and abs(ph.mid_step_alt - mid) <= 0.25 * mid  # both fits find it and agree
    assert ph.plateau_end <= ph.mid_step <= ph.drop_end
