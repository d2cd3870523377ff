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
* **waiting**: the OpenMP runtime's own (libgomp: spin ~300 000 iterations, then sleep),
  the fastest on a quiet machine: passive waiting (``OMP_WAIT_POLICY=PASSIVE``, the
  previous default) made quiet demo pretraining 0.82x as fast, because threads fall asleep
  between the many small parallel regions of a step (``benchmarks/contention.py``). The
  variables are read once, when torch loads its OpenMP runtime, so :func:`configure_openmp_env`
  must run before the first ``import torch``: ``import workbench`` does it
  (``workbench/__init__.py``). A variable the user already set is never changed.
* **the governor** (:class:`ThreadGovernor`): spinning threads collapse beside other work
  (each parallel region waits for its slowest, descheduled thread). During training, every
  ``GOVERNOR_INTERVAL_S`` it measures the cores other processes keep busy and lowers torch's
  threads to the cores they leave idle (:func:`governed_threads`; one thread when all are
  taken), raising them again when the load leaves. Probes and embedding take one such look
  when they start (:func:`fair_threads`) and keep that count, so a probe's numbers do not
  change mid-training.

Knobs (environment): ``WORKBENCH_THREADS=N`` fixes the thread count and turns the governor
off (``0`` or unset: the policy; an explicit ``threads=`` argument, e.g.
``train_probe(threads=1)``, wins over both); ``WORKBENCH_GOVERNOR=0`` turns the governor off;
``WORKBENCH_WAIT_POLICY=default|passive|bounded|active`` (default ``default``: the runtime's
own setting; ``bounded`` sets ``GOMP_SPINCOUNT=$WORKBENCH_SPINCOUNT``, default
``DEFAULT_SPINCOUNT``); ``OMP_WAIT_POLICY`` / ``GOMP_SPINCOUNT`` / ``KMP_BLOCKTIME`` set by
the user win. Functions take explicit arguments so the arithmetic is testable without
touching the machine.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["ENV_GOVERNOR", "affinity_cpus", "busy_seconds", "ENV_SPIN", "ENV_THREADS", "ENV_WAIT", "ThreadGovernor", "WAIT_POLICIES", "governed_threads", "apply", "available_cores", "busy_workers",
           "configure_openmp_env", "cgroup_quota", "cores_share", "fair_threads", "governed", "parse_cpu_max", "policy_threads", "threads_for", "tick", "tree_cpu_seconds"]

ENV_THREADS = "WORKBENCH_THREADS"
ENV_WAIT = "WORKBENCH_WAIT_POLICY"
ENV_SPIN = "WORKBENCH_SPINCOUNT"
WAIT_POLICIES = ("passive", "bounded", "active", "default")
DEFAULT_WAIT = "default"
#: Busy-wait iterations of libgomp's ``bounded`` policy before a thread sleeps (``GOMP_SPINCOUNT``;
#: libgomp's own default is 300 000, ``passive`` is 0). One iteration is a few nanoseconds.
DEFAULT_SPINCOUNT = 10_000
#: Intel OpenMP's bounded wait (``KMP_BLOCKTIME``, milliseconds; its smallest nonzero value).
BOUNDED_KMP_BLOCKTIME = "1"
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
    if wait == "bounded":
        raw = env.get(ENV_SPIN, "").strip() or str(DEFAULT_SPINCOUNT)
        if not raw.isdigit():
            raise ValueError(f"{ENV_SPIN}={raw!r}: expected a non-negative integer (busy-wait iterations).")
        wanted = {"GOMP_SPINCOUNT": str(int(raw)), "KMP_BLOCKTIME": BOUNDED_KMP_BLOCKTIME}
        if "OMP_WAIT_POLICY" in env:  # the user's wait policy wins over a spin count
            return {}
    else:
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


def cores_share(n: int, cores: int | None = None) -> int:
    """Threads for each of ``n`` processes sharing this process's cores equally (``cores // n``,
    at least 1; ``cores`` defaulting to :func:`available_cores`)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    return max(1, (available_cores() if cores is None else int(cores)) // n)


def threads_for(workers: int = 0) -> int:
    """:func:`policy_threads` for this process (``workers`` busy loader workers)."""
    return policy_threads(workers)


def fair_threads(workers: int = 0) -> int:
    """:func:`threads_for`, lowered to the cores other processes leave idle right now (one
    :meth:`ThreadGovernor.decide` look; the policy's count when the governor is off)."""
    return ThreadGovernor(policy_threads(workers)).decide()


@contextlib.contextmanager
def apply(workers: int = 0, threads: int | None = None) -> Iterator[int]:
    """Set torch's intra-op threads to ``threads`` (None: the policy, lowered to the cores
    other processes leave idle: :func:`fair_threads`) for the block, then restore them;
    yields the count used."""
    import torch

    n = policy_threads(workers) if threads is None else int(threads)
    if threads is None:  # the policy's count, lowered to the cores other processes leave idle now
        n = ThreadGovernor(n).decide()
    if n <= 0:
        raise ValueError(f"threads must be positive, got {n}.")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- the governor
#: Seconds between two looks at the machine (a look costs about a millisecond: /proc/stat and a
#: scan of /proc for this process's workers).
GOVERNOR_INTERVAL_S = 2.0
#: Seconds of the one look that sizes a job about to start (:meth:`ThreadGovernor.decide`).
FAIR_WINDOW_S = 0.25
ENV_GOVERNOR = "WORKBENCH_GOVERNOR"


def governed_threads(ceiling: int, cores: int, others_cores: float) -> int:
    """Torch threads when other processes keep ``others_cores`` cores' worth busy: the cores
    left idle (``cores - round(others_cores)``), at most ``ceiling`` (the policy's count), at
    least 1. With other work on every core this is 1 thread: a single thread never waits at
    an OpenMP barrier, so it loses nothing to descheduled or spinning team-mates."""
    if ceiling < 1 or cores < 1:
        raise ValueError(f"ceiling and cores must be >= 1, got {ceiling} and {cores}.")
    if others_cores < 0:
        others_cores = 0.0  # accounting jitter: our own time read a little after the system's
    return max(1, min(ceiling, cores - int(math.floor(others_cores + 0.5))))


BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


def affinity_cpus() -> list[int]:
    """The CPUs this process may run on (``sched_getaffinity``; all of them where unknown)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def busy_seconds(per_cpu: list, cpus: list[int]) -> float:
    """Busy CPU seconds (every field but idle and iowait) of the CPUs ``cpus`` in a per-CPU
    ``psutil.cpu_times(percpu=True)`` list: other processes count only where they run on our
    CPUs (a taskset or cpuset job on a busy host is not throttled by the rest of the host)."""
    return sum(getattr(per_cpu[c], f, 0.0) for c in cpus if c < len(per_cpu) for f in BUSY_FIELDS)


def _system_busy_s(cpus: list[int] | None = None) -> float:
    import psutil

    return busy_seconds(psutil.cpu_times(percpu=True), affinity_cpus() if cpus is None else cpus)


def tree_cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds of this process and its live descendants (loader workers), all threads."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # a worker that just exited
            continue
    return total


def _others_cores(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """Cores' worth of CPU that other processes used between two ``(time, busy, ours)`` readings."""
    (t0, busy0, ours0), (t1, busy1, ours1) = before, after
    return ((busy1 - busy0) - (ours1 - ours0)) / max(t1 - t0, 1e-6)


class ThreadGovernor:
    """Adapts torch's intra-op threads to the load while a long job runs.

    Every ``interval_s`` it measures the CPU time other processes used since the last look
    (the busy time of the CPUs this process may run on minus this process's and its
    workers'), and sets
    ``torch.set_num_threads(governed_threads(...))``: all of the policy's threads on a quiet
    machine (where OpenMP's own spinning wait is fastest), fewer as other work arrives, and
    back when it leaves. Measured by ``benchmarks/contention.py``: spinning threads on a quiet
    machine are ~1.17x faster than passive ones, and one thread beside a competing process is
    ~2x faster than two spinning ones. Disabled (``enabled`` False) when the thread count is
    fixed (``WORKBENCH_THREADS``, an explicit ``threads=``) or ``WORKBENCH_GOVERNOR=0``.

    ``clock``, ``busy`` and ``ours`` (seconds) are injectable so the arithmetic is testable.
    """

    def __init__(self, ceiling: int | None = None, cores: int | None = None, *, interval_s: float = GOVERNOR_INTERVAL_S,
                 env: Mapping[str, str] | None = None, clock=None, busy=None, ours=None, set_threads=None):
        import time

        env = os.environ if env is None else env
        fixed = env.get(ENV_THREADS, "").strip() not in ("", "0")
        self.enabled = not fixed and env.get(ENV_GOVERNOR, "1").strip() != "0"
        # the CPUs we may run on (not capped by a cgroup quota: other work on the host counts only
        # where it leaves fewer of them idle than the ceiling, which the quota caps)
        cpus = affinity_cpus()
        self.cores = len(cpus) if cores is None else int(cores)
        self.ceiling = policy_threads(0, env=env) if ceiling is None else int(ceiling)
        self.interval_s = float(interval_s)
        self._clock = clock or time.monotonic
        self._busy, self._ours = busy or (lambda: _system_busy_s(cpus)), ours or tree_cpu_seconds
        self._set = set_threads
        self.threads = self.ceiling
        self.history: list[tuple[float, float, int]] = []  # (time, others' cores, threads)
        self._last = None

    def _apply(self, n: int) -> None:
        if self._set is not None:
            self._set(n)
            return
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    def decide(self, window_s: float = FAIR_WINDOW_S, sleep=None) -> int:
        """One look over ``window_s`` seconds: the thread count for a job about to start
        (probes, embedding) whose thread count then stays fixed. Sets nothing."""
        if not self.enabled:
            return self.threads
        import time

        first = self._read()
        (sleep or time.sleep)(window_s)
        return governed_threads(self.ceiling, self.cores, _others_cores(first, self._read()))

    def _read(self) -> tuple[float, float, float]:
        """(time, the machine's busy CPU seconds, ours) now."""
        return self._clock(), self._busy(), self._ours()

    def start(self) -> None:
        """Take the first reading (the next :meth:`step` after ``interval_s`` decides)."""
        if self.enabled:
            self._last = self._read()

    def step(self) -> int:
        """Call often (every training step); looks at the machine every ``interval_s``.
        Returns the thread count in force."""
        if not self.enabled:
            return self.threads
        if self._last is None:
            self.start()
            return self.threads
        if self._clock() - self._last[0] < self.interval_s:
            return self.threads
        reading = self._read()
        others = _others_cores(self._last, reading)
        now, self._last = reading[0], reading
        n = governed_threads(self.ceiling, self.cores, others)
        if n != self.threads:
            self._apply(n)
            self.threads = n
        self.history.append((round(now, 3), round(others, 3), n))
        return n


#: The governor of the innermost :func:`governed` block (stepped by :func:`tick`), or None.
_ACTIVE: ThreadGovernor | None = None


@contextlib.contextmanager
def governed(ceiling: int | None = None, **kwargs) -> Iterator[ThreadGovernor]:
    """Let a :class:`ThreadGovernor` adapt torch's threads during the block (``ceiling``: the
    most it may use; None = the count in force at entry, i.e. the policy's). Long loops call
    :func:`tick` once per step; torch's thread count is restored by the enclosing
    :func:`apply`. Must be entered on the thread that runs the torch ops (OpenMP's thread
    count is per calling thread)."""
    global _ACTIVE
    import torch

    gov = ThreadGovernor(torch.get_num_threads() if ceiling is None else ceiling, **kwargs)
    gov.threads = torch.get_num_threads()  # in force now (apply may have started below the ceiling)
    previous = _ACTIVE
    _ACTIVE = gov if gov.enabled else None
    gov.start()
    try:
        yield gov
    finally:
        _ACTIVE = previous


def tick() -> None:
    """Step the active governor (a no-op outside :func:`governed`; cheap: a clock read)."""
    if _ACTIVE is not None:
        _ACTIVE.step()
