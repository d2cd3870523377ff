"""CPU thread policy: how many torch threads, and how idle OpenMP threads wait.

On a shared CPU, torch's default (one OpenMP thread per core, spinning while it waits at
a barrier) collapses: each parallel region waits for its slowest thread, which another
process or our own loader workers have just descheduled, and spinning threads burn the
cycles the others need (demo pretraining fell to 29 % of its quiet rate beside one other
2-thread process). The policy here:

* **threads** = cores available to this process minus the loader workers that keep a core
  busy, at least 1. Cores available = ``os.sched_getaffinity(0)`` (taskset, cpusets),
  capped by the cgroup CPU quota (``cpu.max`` ``"150000 100000"`` = 1.5 cores, floored to
  1; ``"max ..."`` = no quota; cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``).
  A worker that reads the memory-mapped decoded cache is idle most of the time
  (``benchmarks/loader.py``: it produces views ~28x faster than the encoder uses them), so
  callers pass only the workers that decode audio (:func:`busy_workers`).
* **waiting**: ``OMP_WAIT_POLICY=PASSIVE`` (and ``KMP_BLOCKTIME=0`` for Intel OpenMP) so a
  thread with nothing to do sleeps instead of spinning. OpenMP reads these once, when
  torch loads its OpenMP runtime, so :func:`configure_openmp_env` must run before the
  first ``import torch``: ``import workbench`` does it (``workbench/__init__.py``), which
  covers ``python -m workbench …``, ``make demo`` and notebooks that import workbench
  before torch. A variable the user already set is never changed.

Knobs (environment): ``WORKBENCH_THREADS=N`` fixes the thread count (``0`` or unset:
the policy; an explicit ``threads=`` argument, e.g. ``train_probe(threads=1)``, wins over
both); ``WORKBENCH_WAIT_POLICY=passive|active|default`` (default ``passive``;
``default`` leaves the OpenMP runtime's own setting); ``OMP_WAIT_POLICY`` /
``KMP_BLOCKTIME`` set by the user win. Functions take explicit arguments so the
arithmetic is testable without touching the machine.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["ENV_THREADS", "ENV_WAIT", "WAIT_POLICIES", "apply", "available_cores", "busy_workers",
           "configure_openmp_env", "cgroup_quota", "parse_cpu_max", "policy_threads", "threads_for"]

ENV_THREADS = "WORKBENCH_THREADS"
ENV_WAIT = "WORKBENCH_WAIT_POLICY"
WAIT_POLICIES = ("passive", "active", "default")
DEFAULT_WAIT = "passive"
#: cgroup v2 / v1 files holding the CPU quota of the process's cgroup (inside a container: its own).
CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def parse_cpu_max(text: str) -> float | None:
    """Cores granted by a cgroup v2 ``cpu.max`` line (``"quota period"``); None = no quota.

    ``"max 100000"`` → None; ``"150000 100000"`` → 1.5; ``"50000"`` (period omitted: the
    kernel's default 100 000 µs) → 0.5.
    """
    parts = text.split()
    if not parts:
        raise ValueError("empty cpu.max: expected 'QUOTA PERIOD' or 'max PERIOD'.")
    if parts[0] == "max":
        return None
    quota = int(parts[0])
    period = int(parts[1]) if len(parts) > 1 else 100_000
    if quota <= 0 or period <= 0:
        raise ValueError(f"cpu.max {text!r}: quota and period must be positive.")
    return quota / period


def cgroup_quota(v2: Path = CGROUP_V2_CPU_MAX, v1_quota: Path = CGROUP_V1_QUOTA,
                 v1_period: Path = CGROUP_V1_PERIOD) -> float | None:
    """Cores granted by this process's cgroup CPU quota, or None (no quota / not readable)."""
    try:
        return parse_cpu_max(v2.read_text())
    except (OSError, ValueError):
        pass
    try:
        quota, period = int(v1_quota.read_text()), int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def available_cores(affinity: set[int] | None = None, quota: float | None = None, *,
                    probe: bool = True) -> int:
    """Whole cores this process may use: the affinity set's size, capped by the quota
    (floored: 1.5 cores of quota give 1 thread that is never throttled mid-region), at
    least 1. ``probe`` reads the machine for the arguments left None."""
    if affinity is None and probe:
        try:
            affinity = os.sched_getaffinity(0)
        except (AttributeError, OSError):  # not Linux
            affinity = set(range(os.cpu_count() or 1))
    if quota is None and probe:
        quota = cgroup_quota()
    cores = len(affinity) if affinity else (os.cpu_count() or 1)
    if quota is not None:
        cores = min(cores, math.floor(quota))
    return max(1, cores)


def busy_workers(num_workers: int, reads_decoded_cache: bool) -> int:
    """Loader workers that keep a core busy: none when they read the memory-mapped decoded
    cache (idle most of the time), all of them when they decode audio."""
    return 0 if reads_decoded_cache else max(0, int(num_workers))


def policy_threads(workers: int = 0, cores: int | None = None, env: Mapping[str, str] | None = None) -> int:
    """Torch threads: ``$WORKBENCH_THREADS`` if set to a positive integer, else
    ``cores - workers`` (at least 1), ``cores`` defaulting to :func:`available_cores`."""
    env = os.environ if env is None else env
    raw = env.get(ENV_THREADS, "").strip()
    if raw and raw != "0":
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"{ENV_THREADS}={raw!r}: expected a positive integer (or 0 / unset for the "
                             "policy).") from None
        if n < 0:
            raise ValueError(f"{ENV_THREADS}={raw!r}: expected a positive integer (or 0 / unset for the policy).")
        return n
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}.")
    cores = available_cores() if cores is None else int(cores)
    return max(1, cores - int(workers))


def openmp_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The OpenMP variables the wait policy adds (those the user has not set)."""
    env = os.environ if env is None else env
    wait = env.get(ENV_WAIT, DEFAULT_WAIT).strip().lower() or DEFAULT_WAIT
    if wait not in WAIT_POLICIES:
        raise ValueError(f"{ENV_WAIT}={wait!r}: choose one of {', '.join(WAIT_POLICIES)}.")
    if wait == "default":
        return {}
    wanted = {"OMP_WAIT_POLICY": wait.upper()}
    if wait == "passive":
        wanted["KMP_BLOCKTIME"] = "0"
    return {k: v for k, v in wanted.items() if k not in env}


def configure_openmp_env(env: dict | None = None, modules: Mapping | None = None) -> dict[str, str]:
    """Set the wait-policy variables in ``env`` (``os.environ``) if torch is not loaded yet
    (``modules``: ``sys.modules``); returns what was set ({} once torch is loaded: too late)."""
    env = os.environ if env is None else env
    modules = sys.modules if modules is None else modules
    if "torch" in modules:
        return {}
    added = openmp_env(env)
    env.update(added)
    return added


def threads_for(workers: int = 0) -> int:
    """:func:`policy_threads` for this process (``workers`` busy loader workers)."""
    return policy_threads(workers)


@contextlib.contextmanager
def apply(workers: int = 0, threads: int | None = None) -> Iterator[int]:
    """Set torch's intra-op threads to ``threads`` (None: the policy) for the block, then
    restore them; yields the count used."""
    import torch

    n = policy_threads(workers) if threads is None else int(threads)
    if n <= 0:
        raise ValueError(f"threads must be positive, got {n}.")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
