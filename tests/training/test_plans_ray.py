"""Training runs as Ray tasks on a real local Ray instance: the local runs' results, and a
clear error when a worker cannot see the experiment directory."""

from __future__ import annotations

import pytest

from curriculens import constants as C
from curriculens.errors import CurriculensError
from curriculens.executor import ExecutorConfig
from models.checkpoint import list_checkpoints
from training.experiment import list_runs, read_metrics
from training.plans import PARITY_SIZES, parity_students_for, parity_teacher_config, run_plan, train_runs

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # CI (`make test`) runs slow tests too


def test_ray_plan_matches_the_local_plan(ray_cluster, tiny_parity_experiment, tmp_path):
    size = PARITY_SIZES["tiny"]
    teacher = parity_teacher_config(size, device="cpu")
    exp = tmp_path / "ray-exp"
    finished = []
    results = run_plan(
        exp,
        teacher,
        lambda e, t: parity_students_for(e, size, t),
        executor=ExecutorConfig(kind="ray"),
        on_run=lambda cfg, res: finished.append(cfg.name),
    )
    local = {r.name: r for r in list_runs(tiny_parity_experiment)}
    remote = {r.name: r for r in list_runs(exp)}
    assert set(remote) == set(local) == set(finished) and finished[0] == "teacher"
    planned = ["teacher", *(s.name for s in parity_students_for(exp, size, teacher))]
    assert [r.run_dir for r in results] == [exp / C.RUNS_DIR / name for name in planned]  # plan order, not finish order
    assert all(not r.skipped and (r.run_dir / C.DONE_FILE).is_file() for r in results)
    for name in local:
        a, b = read_metrics(local[name].path), read_metrics(remote[name].path)
        assert [r["step"] for r in a] == [r["step"] for r in b]
        # same seeds and data stream; the workers run torch single-threaded, so allow float noise
        for ra, rb in zip(a, b, strict=True):
            assert rb["eval_loss"] == pytest.approx(ra["eval_loss"], abs=1e-4), (name, ra["step"])
        assert [s for s, _ in list_checkpoints(local[name].path)] == [s for s, _ in list_checkpoints(remote[name].path)]
    # a rerun keeps every finished run
    again = run_plan(exp, teacher, lambda e, t: parity_students_for(e, size, t), executor=ExecutorConfig(kind="ray"))
    assert all(r.skipped for r in again)


def test_worker_that_cannot_see_the_experiment_fails_in_one_line(ray_cluster, tmp_path):
    teacher = parity_teacher_config(PARITY_SIZES["tiny"], device="cpu")
    unseen = tmp_path / "not-mounted-here"
    with pytest.raises(CurriculensError, match="cannot see .*not-mounted-here/experiment.json") as err:
        train_runs(unseen, [teacher], executor=ExecutorConfig(kind="ray"))
    assert "\n" not in str(err.value)
    assert not unseen.exists()


def test_grid_on_ray_matches_the_local_grid(ray_cluster, tmp_path):
    import shutil

    from training.experiment import init_experiment
    from training.gridspec import GridSpec, grid_configs
    from training.loop import train_run
    from training.plans import run_grid, split_grid

    teacher = parity_teacher_config(PARITY_SIZES["tiny"], device="cpu")
    local, remote = tmp_path / "local", tmp_path / "ray"
    init_experiment(local, teacher.task)
    train_run(teacher, local / C.RUNS_DIR / "teacher")
    shutil.copytree(local, remote)
    spec = GridSpec(
        methods=("ce", "progressive"),
        seeds=(0, 1),
        widths=(16, 24),
        steps=200,
        eval_every=50,
        save_every=100,
        device="cpu",
    )
    cfgs = grid_configs(local, spec)
    assert [len(c) for c in split_grid(cfgs, 3)] == [3, 1, 3, 1]  # two stacking groups (widths), cut at 3
    run_grid(cfgs, local / C.RUNS_DIR)
    results = run_grid(grid_configs(remote, spec), remote / C.RUNS_DIR, executor=ExecutorConfig(kind="ray", block=3))
    assert [r.run_dir for r in results] == [remote / C.RUNS_DIR / c.name for c in cfgs]
    for cfg in cfgs:
        a, b = read_metrics(local / C.RUNS_DIR / cfg.name), read_metrics(remote / C.RUNS_DIR / cfg.name)
        assert [r["step"] for r in a] == [r["step"] for r in b] and len(a) > 1
        for ra, rb in zip(a, b, strict=True):
            assert rb["eval_loss"] == pytest.approx(ra["eval_loss"], abs=1e-4), (cfg.name, ra["step"])
