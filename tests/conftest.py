"""Shared fixtures.  Tests never touch the user's cache: $WORKBENCH_CACHE points into a
session temp dir, and the embedded benchmark is rendered at the ``tiny`` scale."""

from __future__ import annotations

import os
import signal

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
# the thread governor would size probes and training to the other test worker's load, so that
# thread counts (and the last bits of results) would vary from run to run: off in tests
# (tests/test_threads.py tests it with injected readings)
os.environ.setdefault("WORKBENCH_GOVERNOR", "0")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run slow tests at full size, not smoke form")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp().parent / "workbench-test-cache"
    os.environ["WORKBENCH_CACHE"] = str(cache)
    os.environ["WORKBENCH_EMBEDDED_SCALE"] = "tiny"
    os.environ.pop("WORKBENCH_DATA", None)
    import torch

    torch.set_num_threads(1)
    yield


def _kernel_signal_state() -> dict[str, str]:
    """The kernel's view of this process's signals (Linux): which are ignored (``SigIgn``) and
    blocked in the main thread (``SigBlk``); a C library can change them behind Python's back."""
    try:
        lines = open("/proc/self/status").read().splitlines()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in lines if line.startswith(("SigIgn", "SigBlk")))


@pytest.fixture(autouse=True)
def _signal_handlers_left_as_found():
    """Every test leaves SIGINT and SIGTERM as it found them: their Python handlers and, in the
    kernel, which signals are ignored or blocked (both are inherited by the processes a later
    test starts). A handler left behind (Lightning ignores SIGINT for good after a
    KeyboardInterrupt in ``fit``) would change how later tests in the same worker take a
    Ctrl-C; this names the test that did it and puts the handlers and the mask back."""
    watched = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.getsignal(s) for s in watched}
    kernel, mask = _kernel_signal_state(), signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    changed = [f"{s.name}: {before[s]!r} -> {signal.getsignal(s)!r}" for s in watched if signal.getsignal(s) != before[s]]
    after = _kernel_signal_state()
    changed += [f"{k} {kernel[k]} -> {after.get(k)}" for k in kernel if after.get(k) != kernel[k]]
    for s, handler in before.items():
        signal.signal(s, handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    assert not changed, f"the test left signal handlers changed ({'; '.join(changed)})"


@pytest.fixture
def run_slow(request) -> bool:
    return bool(request.config.getoption("--run-slow"))
