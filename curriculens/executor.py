"""Where work units run: in this process (``local``) or as tasks on a Ray cluster (``ray``).

The work units (``training.loop.train_run``, ``probes.sweep.probe_block``) are plain functions
of configs; this module only ships them to Ray workers and brings their results back, so that
callers keep one code path for the results (the driver stays the single writer of every
database). Ray is an optional extra (``pip install "curriculens[ray]"``), imported only when
``kind == "ray"``.

Traps:
- Workers run the functions on *their* filesystem: every path sent to them must be absolute
  and on a filesystem that all nodes mount at the same path (each task first checks that it
  can see a file the driver names, and fails with one line if not).
- Arguments and results travel through Ray's object store (Ray serialises them with
  cloudpickle): pass configs and rows, never models; nothing pickled is written to disk.
- ``ray_session`` joins an already initialised Ray (and then leaves it running); otherwise it
  starts a private local instance (``address=""``) or connects to a cluster, and shuts down
  what it started.
- A private local instance is this machine's alone (``LOCAL_RAY_ENV``): every server of it
  (GCS, raylet, workers, agents) binds the loopback address, its web dashboard is off, and its
  token authentication (Ray's default for a new local instance; the token in
  ``~/.ray/auth_token``) is chosen explicitly, so Ray prints no notice about it (when Ray was
  imported before the session, Ray chooses and the notice is filtered). The variables are set
  in this process's environment for the session (Ray's processes inherit them) and restored
  after it. A watchdog process (``_WATCHDOG``) ends the instance's node agents when the driver
  dies, even by SIGKILL (they used to linger a minute or more); it lists every descendant of
  the driver at ``ray.init``, so start other child processes after the session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curriculens.errors import CurriculensError

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20  # a local instance's object store: rows are small, models never travel
CONNECT_TIMEOUT_S = 3.0
LOCAL_RAY_ENV = {
    # the node's address is the loopback one (Ray does so on macOS/Windows), so nothing listens outside
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "token",  # Ray's default for a new local instance, set explicitly: no notice
}
MISSING_RAY = '--executor ray needs Ray, which is not installed: pip install "curriculens[ray]"'


@dataclass(frozen=True)
class ExecutorConfig:
    """How to run a batch of work units.

    Args:
        kind: ``local`` (this process, in order) or ``ray``.
        address: Ray only. ``""`` starts a private local Ray instance; ``auto`` joins the
            cluster running on this machine (``ray start``); ``HOST:PORT`` or
            ``ray://HOST:PORT`` joins that cluster.
        cpus_per_task: CPUs Ray reserves for each task (a training run, a block of probe units).
        gpus_per_task: GPUs Ray reserves for each task; fractions share a GPU (e.g. 0.25 for
            four small students per GPU). 0 = CPU-only scheduling.
        block: sweeps only: at most this many checkpoints of one run per Ray task
            (0 = all of a run's pending checkpoints in one task, so warm starts across a
            run's checkpoints see the same sequence as a local sweep).
        max_retries: how often Ray reruns a task whose worker process died.
        local_cpus: CPUs of a local instance started here (None = all of this machine's).
    """

    kind: str = "local"
    address: str = ""
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    block: int = 0
    max_retries: int = 3
    local_cpus: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise CurriculensError(f"unknown executor {self.kind!r} (one of {', '.join(EXECUTORS)})")
        if self.kind == "local" and self.address:
            raise CurriculensError("--ray-address needs --executor ray")
        if self.cpus_per_task <= 0 or self.gpus_per_task < 0:
            raise CurriculensError("Ray task resources must be CPUs > 0 and GPUs >= 0")
        if self.block < 0 or self.max_retries < 0:
            raise CurriculensError("executor block and max_retries must be >= 0")
        if self.local_cpus is not None and self.local_cpus < 1:
            raise CurriculensError("local Ray CPUs must be >= 1")
        _check_address(self.address)

    @property
    def is_ray(self) -> bool:
        return self.kind == "ray"


def _is_host_port(address: str) -> bool:
    return address not in ("", "auto", "local") and not address.startswith("ray://")


def _check_address(address: str) -> None:
    if not _is_host_port(address):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise CurriculensError(f"--ray-address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")


LOCAL = ExecutorConfig()


def require_ray() -> None:
    """Fail with one line unless Ray is installed (without importing it: that takes seconds)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise CurriculensError(MISSING_RAY)


def import_ray():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise CurriculensError(MISSING_RAY) from None
    return ray


def _reachable(address: str) -> None:
    """Fail fast on a HOST:PORT nobody listens on (Ray itself retries for a minute)."""
    if not _is_host_port(address):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CurriculensError(
            f"no Ray cluster answers at {address} ({reason}); start one with `ray start --head` (docs/cluster.md)"
        ) from None


@contextlib.contextmanager
def ray_session(cfg: ExecutorConfig) -> Iterator[Any]:
    """Yield the connected ``ray`` module; see the module docstring for who starts/stops what."""
    private = cfg.address in ("", "local")
    env = dict(LOCAL_RAY_ENV) if private else {}
    if "ray" in sys.modules:  # Ray read its auth mode when it was imported: leave it to Ray (its notice is filtered)
        env.pop("RAY_AUTH_MODE", None)
    with _environment(env):
        ray = import_ray()
        _reachable(cfg.address)
        if ray.is_initialized():
            yield ray
            return
        yield from _start(ray, cfg, private)


def _start(ray, cfg: ExecutorConfig, private: bool) -> Iterator[Any]:
    kwargs: dict = {"include_dashboard": False, "logging_level": logging.WARNING}
    if private:
        kwargs.update(
            address="local",
            num_cpus=cfg.local_cpus,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            dashboard_host="127.0.0.1",
        )
    else:
        kwargs["address"] = cfg.address
    if private:
        _loopback_node(ray)
    auth_log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    auth_log.addFilter(_token_notice)
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = "start a local Ray instance" if private else f"join the Ray cluster at {cfg.address}"
        raise CurriculensError(f"cannot {where}: {first}") from None
    finally:
        auth_log.removeFilter(_token_notice)
    watchdog = _start_watchdog() if private else None
    try:
        yield ray
    finally:
        ray.shutdown()
        if watchdog is not None:
            watchdog.kill()  # a clean shutdown stopped every process; the watchdog is for a killed driver
            watchdog.wait()


# A killed driver takes its private instance's GCS and raylet with it (Ray's kernel fate-sharing),
# but the node agents, on finding the raylet dead, first try to report it to the dead GCS and
# linger for a minute or more. This watchdog, started after ``ray.init``, reads the processes of
# the instance (pid and start time, so a reused pid is never hit) from its stdin and SIGKILLs
# those still alive once stdin ends: when the driver dies (or closes it). Linux only (/proc).
_WATCHDOG = """
import os, signal, sys
def started(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None
procs = [item.split(":") for line in sys.stdin for item in line.split()]
for pid, start in procs:
    if started(pid) == start:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
"""


def _proc_stat(pid: int | str) -> tuple[int, str] | None:
    """(parent pid, start time in clock ticks) of a process, from /proc; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[19]


def _descendants(root: int) -> list[tuple[int, str]]:
    """(pid, start time) of every descendant of process ``root`` (Linux /proc)."""
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(entry.name)) is not None:
            parent[int(entry.name)] = stat
    out, frontier = [], {root}
    while frontier:
        kids = [(pid, start) for pid, (ppid, start) in parent.items() if ppid in frontier]
        out += kids
        frontier = {pid for pid, _ in kids}
    return out


def _start_watchdog():
    """The watchdog process of a private instance (see ``_WATCHDOG``), or None off Linux."""
    import subprocess

    if not sys.platform.startswith("linux"):
        return None
    procs = _descendants(os.getpid())  # the instance's processes, before the watchdog exists
    dog = subprocess.Popen([sys.executable, "-c", _WATCHDOG], stdin=subprocess.PIPE, start_new_session=True, text=True)
    dog.stdin.write(" ".join(f"{pid}:{start}" for pid, start in procs) + "\n")
    dog.stdin.flush()  # kept open: it closes when this process ends, however it ends
    return dog


def _token_notice(record: logging.LogRecord) -> bool:
    """Drop Ray's notice that token authentication is on (the private instance's chosen mode)."""
    return "Token authentication is enabled" not in record.getMessage()


@contextlib.contextmanager
def _environment(updates: dict) -> Iterator[None]:
    """Set the variables of ``updates`` that the user has not set, for the block (Ray's
    processes inherit them); restore the environment after it."""
    added = {k: v for k, v in updates.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _loopback_node(ray) -> None:
    """Make this driver resolve the node's address to the loopback one, as ``LOCAL_RAY_ENV`` does
    for Ray's processes (Ray reads the variable once, when it is imported: the driver may have
    imported it before the session). Unless the user enabled clusters explicitly."""
    from ray._private import ray_constants

    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == LOCAL_RAY_ENV["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"]:
        ray_constants.ENABLE_RAY_CLUSTER = False


def executor_session(cfg: ExecutorConfig):
    """A context manager: nothing for ``local``, ``ray_session`` for ``ray`` (connect early,
    before anything is written, so that a bad address or a missing Ray writes nothing)."""
    return ray_session(cfg) if cfg.is_ray else contextlib.nullcontext()


# --- what runs on a worker ------------------------------------------------------------------
def _check_visible(must_see: str) -> None:
    if must_see and not Path(must_see).exists():
        raise CurriculensError(
            f"Ray worker on {socket.gethostname()} cannot see {must_see}: the experiment directory must be on a "
            "filesystem that every node mounts at the same path (docs/cluster.md)"
        )


def _call(fn: Callable, must_see: str, args: tuple):
    _check_visible(must_see)
    return fn(*args)


def _stream(fn: Callable, must_see: str, args: tuple):
    _check_visible(must_see)
    yield from fn(*args)


# --- the driver side ------------------------------------------------------------------------
def _translate(exc: BaseException, ray) -> BaseException:
    """A Ray failure as the one-line error the CLI prints."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and cause is not None:
        if isinstance(cause, CurriculensError):
            return CurriculensError(str(cause))
        first = (str(cause).strip().splitlines() or [""])[0]
        return RuntimeError(f"a Ray task failed: {type(cause).__name__}: {first}")
    first = (str(exc).strip().splitlines() or [""])[0]
    return RuntimeError(f"Ray: {type(exc).__name__}: {first}")


def _options(ray, cfg: ExecutorConfig, fn: Callable) -> Any:
    return ray.remote(fn).options(
        num_cpus=cfg.cpus_per_task, num_gpus=cfg.gpus_per_task, max_retries=cfg.max_retries, retry_exceptions=False
    )


def map_tasks(
    cfg: ExecutorConfig, fn: Callable, arg_tuples: Sequence[tuple], must_see: str = ""
) -> Iterator[tuple[int, Any]]:
    """Run ``fn(*args)`` for every tuple as one Ray task each; yield ``(index, result)`` as they
    finish. ``fn`` must be importable on the workers (a module-level function)."""
    with ray_session(cfg) as ray:
        remote = _options(ray, cfg, _call)
        refs = {remote.remote(fn, must_see, tuple(args)): i for i, args in enumerate(arg_tuples)}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                try:
                    value = ray.get(ready[0])
                except ray.exceptions.RayError as exc:
                    raise _translate(exc, ray) from None
                yield refs[ready[0]], value
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


def stream_tasks(
    cfg: ExecutorConfig, fn: Callable, arg_tuples: Sequence[tuple], must_see: Sequence[str] = ()
) -> Iterator[Any]:
    """Run the generator function ``fn(*args)`` for every tuple as one Ray streaming task; yield
    the items of all of them as each arrives (items of one task stay in order).

    A task whose worker dies is rerun by Ray (``max_retries``); Ray skips the items it had
    already delivered, and callers should still treat items as idempotent. ``must_see[i]``:
    a path task ``i`` checks first (see ``map_tasks``)."""
    with ray_session(cfg) as ray:
        remote = _options(ray, cfg, _stream)
        gens = [
            remote.remote(fn, must_see[i] if i < len(must_see) else "", tuple(args))
            for i, args in enumerate(arg_tuples)
        ]
        pending = list(gens)
        try:
            while pending:
                ready, _ = ray.wait(pending, num_returns=1)
                gen = ready[0]
                try:
                    item = ray.get(next(gen))
                except StopIteration:
                    pending.remove(gen)
                    continue
                except ray.exceptions.RayError as exc:
                    raise _translate(exc, ray) from None
                yield item
        finally:
            for gen in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(gen, force=True)
