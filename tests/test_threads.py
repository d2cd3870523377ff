"""The CPU thread policy's arithmetic (workbench.threads): affinity, cgroup quotas, loader
workers, overrides and the OpenMP wait variables. Nothing here measures time."""

from __future__ import annotations

import pytest
import torch

from workbench import threads as T


@pytest.mark.parametrize("text, cores", [("max 100000", None), ("max", None), ("150000 100000", 1.5),
                                         ("200000 100000\n", 2.0), ("50000", 0.5), ("25000 50000", 0.5)])
def test_cgroup_v2_cpu_max_lines(text, cores):
    assert T.parse_cpu_max(text) == cores


@pytest.mark.parametrize("text", ["", "-1 100000", "abc 100000", "100000 0"])
def test_bad_cpu_max_lines_are_refused(text):
    with pytest.raises(ValueError):
        T.parse_cpu_max(text)


def test_cgroup_quota_reads_v2_then_v1(tmp_path):
    v2, q, p = tmp_path / "cpu.max", tmp_path / "cfs_quota_us", tmp_path / "cfs_period_us"
    v2.write_text("300000 100000\n")
    assert T.cgroup_quota(v2, q, p) == 3.0
    v2.unlink()
    q.write_text("-1\n"), p.write_text("100000\n")
    assert T.cgroup_quota(v2, q, p) is None  # v1 "no limit"
    q.write_text("250000\n")
    assert T.cgroup_quota(v2, q, p) == 2.5
    p.unlink()
    assert T.cgroup_quota(v2, q, p) is None


@pytest.mark.parametrize("affinity, quota, cores", [
    ({0, 1, 2, 3}, None, 4),     # taskset / cpuset only
    ({0, 1, 2, 3}, 1.5, 1),      # a 1.5-core quota: floored
    ({0, 1}, 8.0, 2),            # quota above the affinity set
    ({5}, None, 1),
    ({0, 1, 2, 3}, 0.5, 1),      # at least one
])
def test_available_cores_is_the_affinity_capped_by_the_quota(affinity, quota, cores):
    assert T.available_cores(affinity, quota, probe=False) == cores


@pytest.mark.parametrize("cores, workers, threads", [(8, 2, 6), (2, 2, 1), (2, 1, 1), (2, 0, 2), (1, 4, 1),
                                                     (16, 8, 8)])
def test_threads_are_cores_minus_busy_workers_at_least_one(cores, workers, threads):
    assert T.policy_threads(workers, cores=cores, env={}) == threads


def test_workers_reading_the_decoded_cache_do_not_take_a_core():
    assert T.busy_workers(2, reads_decoded_cache=True) == 0
    assert T.busy_workers(2, reads_decoded_cache=False) == 2
    assert T.policy_threads(T.busy_workers(2, True), cores=2, env={}) == 2


def test_the_environment_override_wins_and_is_checked():
    assert T.policy_threads(2, cores=8, env={T.ENV_THREADS: "3"}) == 3
    assert T.policy_threads(2, cores=8, env={T.ENV_THREADS: "0"}) == 6  # 0 = the policy
    assert T.policy_threads(2, cores=8, env={T.ENV_THREADS: " "}) == 6
    for bad in ("two", "-1", "1.5"):
        with pytest.raises(ValueError, match=T.ENV_THREADS):
            T.policy_threads(0, cores=2, env={T.ENV_THREADS: bad})
    with pytest.raises(ValueError, match="workers"):
        T.policy_threads(-1, cores=2, env={})


def test_wait_policy_variables_are_added_only_before_torch_and_never_overwrite():
    env: dict = {}
    assert T.configure_openmp_env(env, modules={}) == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}  # the user's choice stays
    assert T.configure_openmp_env(env, modules={}) == {"KMP_BLOCKTIME": "0"}
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"
    env = {}
    assert T.configure_openmp_env(env, modules={"torch": object()}) == {} and env == {}  # too late
    assert T.configure_openmp_env({T.ENV_WAIT: "default"}, modules={}) == {}
    assert T.openmp_env({T.ENV_WAIT: "active"}) == {"OMP_WAIT_POLICY": "ACTIVE"}
    with pytest.raises(ValueError, match=T.ENV_WAIT):
        T.openmp_env({T.ENV_WAIT: "spin"})


def test_apply_sets_and_restores_torch_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv(T.ENV_THREADS, "2")
    with T.apply(workers=0) as n:
        assert n == 2 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with T.apply(threads=1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
