"""Issue 22: the private local Ray instance (``--executor ray`` without an address) listens on
loopback only, shows no token-auth notice, and leaves no process behind a SIGKILLed driver."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DRIVER = """
import sys, time
from curriculens.executor import ExecutorConfig, ray_session
with ray_session(ExecutorConfig(kind="ray", local_cpus=1)) as ray:
    ray.get(ray.remote(lambda: 1).remote())  # a worker process too
    print("READY", flush=True)
    time.sleep(300)
"""


def test_private_instance_is_loopback_only_quiet_and_dies_with_its_driver(tmp_path):
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("ray")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for var in ("RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS"):
        env.pop(var, None)
    with open(tmp_path / "stderr", "w") as err:
        driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, stderr=err, env=env, text=True
        )
    procs = []
    try:
        assert driver.stdout.readline().strip() == "READY", (tmp_path / "stderr").read_text()
        procs = psutil.Process(driver.pid).children(recursive=True)
        assert len(procs) >= 3  # GCS, raylet, agents, a worker
        listening = [
            (p.name(), c.laddr.ip)
            for p in procs
            for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening, "the instance listens somewhere"
        outside = [(name, ip) for name, ip in listening if not _loopback(ip)]
        assert not outside, f"listening beyond loopback: {outside}"
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in procs):
            time.sleep(0.2)
        left = [p.pid for p in procs if _alive(p)]
        assert not left, f"processes of the instance outlived the SIGKILLed driver by 10 s: {left}"
        assert "Token authentication" not in (tmp_path / "stderr").read_text()
    finally:  # never leave the instance to the machine, whatever happened
        driver.kill()
        driver.wait()
        for p in procs:
            if _alive(p):
                p.kill()


def _loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
