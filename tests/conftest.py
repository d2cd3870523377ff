"""Shared fixtures.  Tests never touch the user's cache: $WORKBENCH_CACHE points into a
session temp dir, and the embedded benchmark is rendered at the ``tiny`` scale."""

from __future__ import annotations

import os

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


@pytest.fixture
def run_slow(request) -> bool:
    return bool(request.config.getoption("--run-slow"))
