"""The run-directory rule shared by ``make demo`` and the claims grid: the newest matching run
with a checkpoint, finished (reuse) or not (resume)."""

from __future__ import annotations

from workbench import runs


def _run(base, name, *, config="a", checkpoint=True, finished=False, with_config=True):
    run = base / name
    (run / "checkpoints").mkdir(parents=True)
    if with_config:
        (run / "config.yaml").write_text(f"name: {config}\n")
    if checkpoint:
        (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    if finished:
        runs.mark_finished(run)
    return run


def _is(config):
    return lambda run: (run / "config.yaml").read_text() == f"name: {config}\n"


def test_the_newest_matching_run_with_a_checkpoint_is_found_finished_or_not(tmp_path):
    assert runs.latest_run(tmp_path / "nothing-here", _is("a")) is None
    done = _run(tmp_path, "20261201-100000-a", finished=True)
    stopped = _run(tmp_path, "20261201-110000-a")
    _run(tmp_path, "20261201-120000-a", checkpoint=False)  # killed before its first checkpoint
    _run(tmp_path, "20261201-130000-b", config="b", finished=True)  # another configuration
    _run(tmp_path, "20261201-140000-a", with_config=False, finished=True)  # not a run directory
    assert runs.latest_run(tmp_path, _is("a")) == (stopped, False)
    assert runs.latest_run(tmp_path, _is("a"), resumable=False) == (done, True)
    assert runs.latest_run(tmp_path, _is("b")) == (tmp_path / "20261201-130000-b", True)
    assert runs.latest_run(tmp_path, _is("c")) is None


def test_a_finished_run_without_its_checkpoint_is_not_reused(tmp_path):
    older = _run(tmp_path, "20261201-100000-a", finished=True)
    _run(tmp_path, "20261201-110000-a", finished=True, checkpoint=False)
    assert runs.latest_run(tmp_path, _is("a")) == (older, True)


def test_names_order_the_runs_not_the_order_they_are_listed_in(tmp_path):
    late = _run(tmp_path, "20261202-000000-a")
    _run(tmp_path, "20261130-235959-a")
    assert runs.latest_run(tmp_path, _is("a")) == (late, False)
