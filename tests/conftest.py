"""Shared fixtures: tiny configs and a tiny trained parity experiment (built once per session)."""

from __future__ import annotations

import os
from pathlib import Path

# before torch is imported: idle OpenMP threads sleep instead of spinning (on a busy 2-core
# machine spinning threads made small-tensor work 10-100x slower)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CFG3B = REPO / "training" / "data" / "pcfg" / "grammars" / "cfg3b.json"  # package data: loads by name too


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: one torch thread avoids oversubscription on a busy 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_parity_experiment(tmp_path_factory) -> Path:
    """A real experiment: a tiny (10, 3)-parity teacher and one student per method (seconds)."""
    from training.plans import PARITY_SIZES, parity_students_for, parity_teacher_config, run_plan

    exp = tmp_path_factory.mktemp("exp") / "parity-tiny"
    size = PARITY_SIZES["tiny"]
    teacher = parity_teacher_config(size, device="cpu")
    run_plan(exp, teacher, lambda e, t: parity_students_for(e, size, t))
    return exp


@pytest.fixture
def readonly_view(tmp_path):
    """``make(dir) -> path``: ``dir`` seen read-only, as an archived copy would be.

    As root (who may write anywhere) a read-only bind mount of ``dir``; otherwise ``dir``
    itself with its write permission removed. Skips where neither is possible.
    """
    import shutil
    import stat
    import subprocess

    mounts, chmodded = [], []

    def make(src: Path) -> Path:
        src = Path(src)
        if os.geteuid() != 0:
            for p in [src, *src.rglob("*")]:
                if p.is_dir():
                    chmodded.append((p, p.stat().st_mode))
                    p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)
            return src
        if shutil.which("mount") is None:
            pytest.skip("needs mount(8) to make a read-only view as root")
        dst = tmp_path / f"ro-{len(mounts)}"
        dst.mkdir()
        for cmd in (["mount", "--bind", str(src), str(dst)], ["mount", "-o", "remount,bind,ro", str(dst)]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                if mounts or cmd[1] == "-o":
                    subprocess.run(["umount", str(dst)], capture_output=True)
                pytest.skip(f"cannot make a read-only bind mount here: {r.stderr.strip()}")
        mounts.append(dst)
        return dst

    yield make
    for dst in reversed(mounts):
        subprocess.run(["umount", str(dst)], capture_output=True)
    for p, mode in reversed(chmodded):
        p.chmod(mode)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray instance for the whole session: 2 CPUs (two worker processes for
    1-CPU tasks), a small object store, no dashboard. Yields its GCS address (HOST:PORT)
    for drivers in other processes; this process stays connected, so executors reuse it."""
    ray = pytest.importorskip("ray")
    ray.init(
        address="local", num_cpus=2, object_store_memory=96 * 2**20, include_dashboard=False, logging_level="WARNING"
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
