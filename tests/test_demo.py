"""The `make demo` pipeline (render → pretrain ssl + SemiSupCon → probe 4 tasks → summary +
figure). A slow path: CI runs it in smoke form on the tiny benchmark; `--run-slow` runs the
real demo scale."""

from __future__ import annotations

import json
import os

import pytest
import torch

from workbench.demo import DEMO_TASKS, run_demo


@pytest.mark.slow
def test_demo_pipeline_writes_summary_and_figure(tmp_path, run_slow, monkeypatch, request):
    scale, seeds = ("demo", (0, 1, 2)) if run_slow else ("smoke", (0, 1))
    if run_slow:  # exactly what `make demo` runs: the demo-scale benchmark, all cores
        monkeypatch.setenv("WORKBENCH_EMBEDDED_SCALE", "demo")
        threads = torch.get_num_threads()
        request.addfinalizer(lambda: torch.set_num_threads(threads))
        torch.set_num_threads(os.cpu_count() or 1)
    out = tmp_path / "demo"
    summary = run_demo(out, scale=scale, seeds=seeds, progress=False, figures_dir=tmp_path / "figures")
    saved = json.loads((out / "summary.json").read_text())
    assert saved == json.loads(json.dumps(summary, default=str))
    rows = saved["results"]
    assert {r["model"] for r in rows} == {"ssl", "semisupcon"}
    assert {r["task"] for r in rows} == set(DEMO_TASKS)
    for r in rows:
        assert {"model", "support", "task", "metric", "mean", "std", "seeds"} <= set(r)
        assert r["support"] == (None if r["model"] == "ssl" else "nsynth_pitch")
        assert r["seeds"] == list(seeds) and r["synthetic"] is True
        assert 0.0 <= r["mean"] <= 1.0 or r["metric"].startswith("r2")
    assert set(saved["data"]) >= set(DEMO_TASKS) and all(d["synthetic"] for d in saved["data"].values())
    assert (tmp_path / "figures" / "summary.png").stat().st_size > 0
    if run_slow:
        # the headline (paper Table 3): pitch labels lift pitch probing above self-supervision.
        # One pretraining seed (the demo's) on benchmark v6 gives +0.046 (2 threads) and +0.068
        # (side by side, 1 thread each), probe-seed std <= 0.007; benchmark v1 gave +0.100 to
        # +0.155 over seeds 0-2 (README). "Costs little on the other tasks" is not testable on
        # one seed here (instrument moved +0.019 and -0.095 with the thread count alone): the
        # claims grid tests it over three seeds (T3-noharm), as it tests T3-pitch.
        score = {(r["model"], r["task"], r["metric"]): r["mean"] for r in rows}
        gain = {key[1:]: score[("semisupcon", *key[1:])] - score[key] for key in score if key[0] == "ssl"}
        assert gain[("nsynth_pitch", "accuracy")] > 0.02
    # a second run reuses the finished pretraining runs
    again = run_demo(out, scale=scale, seeds=seeds[:1], progress=False, figures_dir=tmp_path / "figures")
    assert again["runs"] == summary["runs"]


@pytest.mark.parametrize("n, device, mode, cores, workers", [
    (2, "cpu", "side-by-side", 2, 2),
    (2, "cpu", "side-by-side", 1, 1),    # one core: one after the other
    (2, "cpu", "side-by-side", 16, 2),   # never more processes than models
    (1, "cpu", "side-by-side", 8, 1),    # one model left to train (the other reused)
    (2, "cuda", "side-by-side", 8, 1),   # a GPU trains them in turn
    (2, "cpu", "sequential", 8, 1),
])
def test_models_are_pretrained_side_by_side_on_the_cpu_only(n, device, mode, cores, workers):
    from workbench.demo import side_by_side_workers

    assert side_by_side_workers(n, device, mode, cores=cores) == workers


def test_progress_reads_the_step_column_of_the_newest_run(tmp_path):
    import time as _time

    from workbench.config import resolve_config
    from workbench.demo import _latest_step

    cfg = resolve_config("smoke", "simclr", name="demo-ssl", runs_dir=str(tmp_path))
    since = _time.time() - 1.0
    assert _latest_step(cfg, since) is None  # nothing started yet
    logs = tmp_path / "20261201-120000-demo-ssl" / "logs" / "attempt0"
    logs.mkdir(parents=True)
    (logs / "metrics.csv").write_text("epoch,loss,step,torch_threads\n0,3.1,9,1.0\n0,2.9,19,1.0\n")
    assert _latest_step(cfg, since) == 19
    (logs / "metrics.csv").write_text("epoch,loss,step,torch_threads\n")
    assert _latest_step(cfg, since) is None
    # a resumed run started before ``since``: its own newest attempt's log is read
    old = tmp_path / "20261130-090000-demo-ssl"
    (old / "logs" / "attempt0").mkdir(parents=True)
    (old / "logs" / "attempt0" / "metrics.csv").write_text("epoch,loss,step\n0,3.0,40\n")
    (old / "logs" / "attempt1").mkdir()
    (old / "logs" / "attempt1" / "metrics.csv").write_text("epoch,loss,step\n0,2.5,59\n")
    os.utime(old, (since - 3600, since - 3600))
    assert _latest_step(cfg, since) is None  # not a run started after ``since``
    assert _latest_step(cfg, since, resumed=old) == 59


def test_a_stopped_demo_model_is_resumed_and_a_finished_one_reused(tmp_path, monkeypatch):
    """``make demo`` run again after a stop (Ctrl-C, SIGTERM, a kill) continues the unfinished
    pretraining run of the same configuration instead of starting it over."""
    import signal

    from workbench import runs
    from workbench.data.roots import embedded_dir
    from workbench.demo import _pretrain, _reusable_run, demo_configs
    from workbench.train import run as R

    embedded_dir("tiny", 0)
    cfg = demo_configs(tmp_path, "smoke", steps=6, num_workers=0, precision="32-true")["ssl"]
    assert _reusable_run(cfg) is None
    original = R.Throughput.on_train_batch_end

    def stop_at_3(self, trainer, module, outputs, batch, batch_idx):
        original(self, trainer, module, outputs, batch, batch_idx)
        if trainer.global_step == 3:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(R.Throughput, "on_train_batch_end", stop_at_3)
    with pytest.raises(R.TrainingStopped):
        _pretrain(cfg, None, False)
    monkeypatch.undo()
    run, finished = _reusable_run(cfg)
    assert not finished and R.checkpoint_step(run / "checkpoints" / "last.ckpt") == 3
    other = demo_configs(tmp_path, "smoke", steps=7, num_workers=0, precision="32-true")["ssl"]
    assert _reusable_run(other) is None  # another configuration is never resumed
    assert _pretrain(cfg, run, False) == run  # the same run directory, continued
    assert _reusable_run(cfg) == (run, True) and runs.is_finished(run)
    assert json.loads((run / "metrics.json").read_text())["steps_run"] == 3
