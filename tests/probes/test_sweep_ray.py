"""The probe sweep on a real local Ray instance (two worker processes): the local executor's
table, a worker killed mid-sweep, a driver killed mid-sweep."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from curriculens import constants as C
from curriculens.executor import ExecutorConfig
from probes.store import ResultsStore
from probes.sweep import run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # CI (`make test`) runs slow tests too
KEY = ["run", "step", "probe", "feature", "site", "metric"]


def table(exp: Path) -> pd.DataFrame:
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        return store.query()


def n_units_done(exp: Path) -> int:
    if not (exp / C.RESULTS_DB).is_file():
        return 0
    try:
        with ResultsStore(exp / C.RESULTS_DB, readonly=True, timeout_s=1) as store:
            return len(store.done_units())
    except Exception:  # noqa: BLE001 - the driver is creating the schema
        return 0


def copy_exp(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("results.sqlite*", "probe_config.json", "failed.jsonl"))
    return dst


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _busy_workers() -> list[int]:
    """Ray workers of this test session that are running a sweep block (title ``ray::_stream``)."""
    found = []
    for pid in _descendants(os.getpid()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title == b"ray::_stream":
            found.append(pid)
    return found


def test_ray_sweep_gives_the_local_table(ray_cluster, local_reference, tiny_parity_experiment, tmp_path):
    cfg, ref, n_units = local_reference
    exp = copy_exp(tiny_parity_experiment, tmp_path / "exp")
    res = run_sweep(exp, cfg, executor=ExecutorConfig(kind="ray"))
    assert (res.n_done, res.n_failed, res.n_units) == (n_units, 0, n_units)
    pd.testing.assert_frame_equal(table(exp), ref)
    with ResultsStore(exp / C.RESULTS_DB, readonly=True) as store:
        units = store.units()
    # the units table names checkpoints as the driver does (relative or absolute as given)
    assert len(units) == n_units and all(p.startswith(str(exp)) for p in units.ckpt_path)


def test_killed_worker_is_retried_without_duplicates(ray_cluster, local_reference, tiny_parity_experiment, tmp_path):
    cfg, ref, n_units = local_reference
    exp = copy_exp(tiny_parity_experiment, tmp_path / "exp")
    killed: dict = {}

    def kill_one_worker_mid_sweep():
        deadline = time.time() + 120
        while time.time() < deadline:
            done = n_units_done(exp)
            busy = _busy_workers()
            if done >= 2 and busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.update(pid=busy[0], done=done)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_one_worker_mid_sweep, daemon=True)
    watcher.start()
    res = run_sweep(exp, cfg, executor=ExecutorConfig(kind="ray", max_retries=3))
    watcher.join(5)
    assert killed and 2 <= killed["done"] < n_units, killed  # it died mid-sweep
    assert (res.n_done, res.n_failed) == (n_units, 0)
    df = table(exp)
    assert not df.duplicated(KEY).any()
    pd.testing.assert_frame_equal(df, ref)


def test_killed_driver_rerun_completes(ray_cluster, local_reference, tiny_parity_experiment, tmp_path):
    cfg, ref, n_units = local_reference
    exp = copy_exp(tiny_parity_experiment, tmp_path / "exp")
    argv = [
        "-q",
        "probe",
        str(exp),
        "--config",
        json.dumps(cfg.to_dict()),
        "--executor",
        "ray",
        "--ray-address",
        ray_cluster,
    ]
    driver = subprocess.Popen(
        [sys.executable, "-c", "import sys; from curriculens.cli import main; sys.exit(main(sys.argv[1:]))", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 180
        while n_units_done(exp) < 3 and driver.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]  # still sweeping
        driver.kill()
    finally:
        driver.kill()
        driver.wait(30)
    partial = n_units_done(exp)
    assert 3 <= partial < n_units
    res = run_sweep(exp, cfg, executor=ExecutorConfig(kind="ray"))
    assert res.n_skipped == partial and res.n_done == n_units - partial and res.n_failed == 0
    df = table(exp)
    assert not df.duplicated(KEY).any()
    # the rerun starts each resumed run's linear fits from the stored solver states: exact
    pd.testing.assert_frame_equal(df, ref)
