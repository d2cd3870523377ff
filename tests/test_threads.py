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
    assert T.DEFAULT_WAIT == "default"  # the runtime's own spin-then-sleep; the governor handles load
    assert T.configure_openmp_env({}, modules={}) == {}
    env: dict = {T.ENV_WAIT: "passive"}
    assert T.configure_openmp_env(env, modules={}) == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    assert env == {T.ENV_WAIT: "passive", "OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    env = {T.ENV_WAIT: "passive", "OMP_WAIT_POLICY": "ACTIVE"}  # the user's choice stays
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


def test_bounded_waiting_sets_a_spin_count_and_leaves_the_wait_policy_to_libgomp():
    env = {T.ENV_WAIT: "bounded"}
    assert T.openmp_env(env) == {"GOMP_SPINCOUNT": str(T.DEFAULT_SPINCOUNT),
                                 "KMP_BLOCKTIME": T.BOUNDED_KMP_BLOCKTIME}
    assert T.openmp_env({T.ENV_WAIT: "bounded", T.ENV_SPIN: "2500"})["GOMP_SPINCOUNT"] == "2500"
    assert T.openmp_env({T.ENV_WAIT: "bounded", "GOMP_SPINCOUNT": "7"}) == {"KMP_BLOCKTIME": "1"}  # user's wins
    # an explicit OMP_WAIT_POLICY would override GOMP_SPINCOUNT's meaning: the user's choice stands alone
    assert T.openmp_env({T.ENV_WAIT: "bounded", "OMP_WAIT_POLICY": "PASSIVE"}) == {}
    for bad in ("-5", "many", "1e4"):
        with pytest.raises(ValueError, match=T.ENV_SPIN):
            T.openmp_env({T.ENV_WAIT: "bounded", T.ENV_SPIN: bad})
    with pytest.raises(ValueError, match="choose one of"):
        T.openmp_env({T.ENV_WAIT: "spinning"})


@pytest.mark.parametrize("ceiling, cores, others, threads", [
    (2, 2, 0.0, 2),    # quiet: every thread
    (2, 2, 0.03, 2),   # kernel housekeeping does not count
    (2, 2, 0.7, 1),    # most of a core taken by someone else
    (2, 2, 1.9, 1),    # a competitor on both cores: one thread, never zero
    (8, 8, 2.4, 6),    # the cores left idle
    (4, 8, 1.0, 4),    # never above the policy's ceiling
    (2, 2, -0.2, 2),   # accounting jitter below zero
])
def test_governed_threads_are_the_idle_cores_within_the_ceiling(ceiling, cores, others, threads):
    assert T.governed_threads(ceiling, cores, others) == threads


class _Machine:
    """Fake clock and CPU accounting: others use ``load`` cores, we use ``ours`` cores."""

    def __init__(self):
        self.t, self.busy, self.mine, self.load, self.ours_rate = 0.0, 0.0, 0.0, 0.0, 2.0

    def advance(self, dt):
        self.t += dt
        self.busy += (self.load + self.ours_rate) * dt
        self.mine += self.ours_rate * dt


def test_the_governor_follows_the_load_at_its_interval_and_comes_back():
    m, applied = _Machine(), []
    gov = T.ThreadGovernor(2, 2, interval_s=2.0, env={}, clock=lambda: m.t, busy=lambda: m.busy,
                           ours=lambda: m.mine, set_threads=applied.append)
    assert gov.enabled and gov.step() == 2  # first call: a reading, no decision
    m.advance(1.0)
    assert gov.step() == 2 and applied == []  # before the interval: nothing measured
    m.load = 1.6  # a competitor arrives
    m.advance(2.5)
    assert gov.step() == 1 and applied == [1]
    m.advance(2.5)
    assert gov.step() == 1 and applied == [1]  # unchanged: torch is not called again
    m.load = 0.0  # it leaves
    m.advance(2.5)
    assert gov.step() == 2 and applied == [1, 2]
    # the first window runs from the first reading (t = 0) to t = 3.5: 1.6 cores for 2.5 of 3.5 s
    assert [h[1:] for h in gov.history] == [(round(1.6 * 2.5 / 3.5, 3), 1), (1.6, 1), (0.0, 2)]


def test_a_fixed_thread_count_or_the_switch_turns_the_governor_off():
    m, applied = _Machine(), []
    for env in ({T.ENV_THREADS: "2"}, {T.ENV_GOVERNOR: "0"}):
        gov = T.ThreadGovernor(2, 2, env=env, clock=lambda: m.t, busy=lambda: m.busy, ours=lambda: m.mine,
                               set_threads=applied.append)
        m.load = 2.0
        gov.step(), m.advance(5.0), gov.step()
        assert not gov.enabled and gov.threads == 2 and applied == []
        assert gov.decide(sleep=lambda s: m.advance(s)) == 2


def test_decide_takes_one_look_over_its_window():
    m = _Machine()
    m.load = 1.2
    gov = T.ThreadGovernor(2, 2, env={}, clock=lambda: m.t, busy=lambda: m.busy, ours=lambda: m.mine,
                           set_threads=lambda n: pytest.fail("decide must not set threads"))
    assert gov.decide(window_s=0.25, sleep=lambda s: m.advance(s)) == 1
    m.load = 0.0
    assert gov.decide(window_s=0.25, sleep=lambda s: m.advance(s)) == 2


def test_governed_installs_the_governor_that_tick_steps_and_restores_the_previous_one():
    calls = []
    assert T._ACTIVE is None
    with T.governed(2, cores=2, env={}, set_threads=calls.append) as gov:
        assert T._ACTIVE is gov
        with T.governed(1, cores=2, env={T.ENV_GOVERNOR: "0"}):
            assert T._ACTIVE is None  # a disabled inner block: tick does nothing
            T.tick()
        assert T._ACTIVE is gov
    assert T._ACTIVE is None


def test_the_real_accounting_reads_this_process_and_the_machine():
    # psutil readings are monotone: our own CPU time is part of the machine's busy time
    ours0, busy0 = T.tree_cpu_seconds(), T._system_busy_s()
    sum(i * i for i in range(200_000))
    assert T.tree_cpu_seconds() >= ours0 and T._system_busy_s() >= busy0 > 0


def test_busy_time_counts_only_the_cpus_we_may_run_on():
    from collections import namedtuple

    Times = namedtuple("Times", "user nice system idle iowait irq softirq steal")
    per_cpu = [Times(10, 0, 5, 100, 7, 1, 0, 0), Times(2, 1, 1, 50, 0, 0, 0, 0), Times(40, 0, 20, 0, 0, 0, 0, 3)]
    assert T.busy_seconds(per_cpu, [0]) == 16  # idle and iowait excluded
    assert T.busy_seconds(per_cpu, [0, 1]) == 16 + 4
    assert T.busy_seconds(per_cpu, [0, 1, 2, 7]) == 16 + 4 + 63  # a CPU that went offline is skipped


def test_a_quota_job_on_a_busy_host_keeps_its_quota_share():
    # 4 cores of quota on a 64-CPU host where others keep 50 CPUs busy: 14 idle >= 4
    assert T.governed_threads(4, 64, 50.0) == 4
    # but a taskset of 4 CPUs on which others take 3: one thread
    assert T.governed_threads(4, 4, 3.0) == 1


@pytest.mark.parametrize("n, cores, share", [(2, 2, 1), (3, 16, 5), (4, 2, 1), (1, 8, 8)])
def test_an_equal_share_of_the_cores_is_the_floor_and_at_least_one(n, cores, share):
    assert T.cores_share(n, cores) == share
    with pytest.raises(ValueError):
        T.cores_share(0, cores)
