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
"""

from __future__ import annotations

import contextlib
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from curriculens.errors import CurriculensError

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20  # a local instance's object store: rows are small, models never travel
CONNECT_TIMEOUT_S = 3.0
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
    local_cpus: Optional[int] = None

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
    ray = import_ray()
    _reachable(cfg.address)
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict = {"include_dashboard": False, "logging_level": logging.WARNING}
    if cfg.address in ("", "local"):
        kwargs.update(
            address="local",
            num_cpus=cfg.local_cpus,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        )
    else:
        kwargs["address"] = cfg.address
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = (
            "start a local Ray instance" if kwargs["address"] == "local" else f"join the Ray cluster at {cfg.address}"
        )
        raise CurriculensError(f"cannot {where}: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


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
