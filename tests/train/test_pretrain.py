"""Smoke-scale pretraining: a run directory with everything in it, resume after SIGKILL,
NaN handling, and label visibility (no label outside the p-subset is ever seen)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from workbench import runs
from workbench.config import resolve_config
from workbench.train import pretrain as P
from workbench.train import semisupcon as S


@pytest.fixture(scope="module")
def embedded():
    """The tiny embedded benchmark (rendered once into the test cache)."""
    from workbench.data.roots import embedded_dir

    return embedded_dir("tiny", 0)


def _smoke(tmp_path, **over):
    base = dict(support="nsynth_pitch", b_s=0.5, p=0.5, steps=4, runs_dir=str(tmp_path / "runs"))
    base.update(over)
    return resolve_config("smoke", "semisupcon", **base)


def test_smoke_run_writes_a_complete_run_directory(tmp_path, embedded):
    run = P.pretrain(_smoke(tmp_path), progress=False)
    assert runs.is_finished(run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["support"] == "nsynth_pitch" and cfg["b_s"] == 0.5
    env = json.loads((run / "env.json").read_text())
    assert env["packages"]["torch"].startswith("2.9.1")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["examples_per_s"] > 0
    csv = pd.read_csv(run / "metrics.csv")
    assert {"loss", "loss_ssl", "loss_label"} <= set(csv.columns)
    assert np.isfinite(csv["loss"].dropna()).all()
    assert (run / "checkpoints" / "last.ckpt").exists()
    data = json.loads((run / "data.json").read_text())
    assert data["support"]["synthetic"] is True
    # the p-subset: half of the labelled training set, ids written next to the run
    pool = pd.read_csv(run / "splits" / "pretrain_pool.csv")
    labeled_ids = (run / "splits" / "labeled_ids.txt").read_text().split()
    from workbench import data as D

    train = D.manifest("nsynth_pitch")
    n_train = int((train["split"] == "train").sum())
    assert len(labeled_ids) == round(0.5 * n_train)
    assert set(pool.loc[pool.role == "labeled", "id"]) == set(labeled_ids)
    # the checkpoint loads back as a frozen encoder
    from workbench.models import load_encoder

    enc, meta = load_encoder(str(run / "checkpoints" / "last.ckpt"))
    assert enc(torch.zeros(2, 1, meta["clip_samples"])).shape == (2, meta["out_dim"])


def test_no_label_outside_the_subset_is_ever_seen(tmp_path, embedded):
    cfg = _smoke(tmp_path, p=0.3, steps=12, num_workers=0)
    pool = P.build_pool(cfg.support, cfg.unlabeled, p=cfg.p, b_s=cfg.b_s, seed=cfg.seed)
    subset = set(pool.frame["id"][: pool.n_labeled])
    loader = P.build_dataloader(cfg, pool=pool)
    seen_labeled = set()
    for batch in loader:
        ids = batch["sample_id"].tolist()
        labelled_rows = batch["labels"].sum(1) > 0
        assert int(labelled_rows.sum()) == int(cfg.batch_size * cfg.b_s)
        for i, has_label in zip(ids, labelled_rows.tolist()):
            if has_label:
                seen_labeled.add(pool.frame["id"][i])
            else:
                assert i >= pool.n_labeled
    assert seen_labeled <= subset


def test_labelled_rows_skip_the_transforms_excluded_for_them(tmp_path):
    # labelled rows: every transform excluded (identity); unlabelled rows: the full chain
    everything = P.build_chain("semisupcon", 16000).describe()
    names = list(dict.fromkeys(r["transform"] for r in everything))
    cfg = _smoke(tmp_path, labeled_augment_exclude=names, severity=3.0)  # p_chain = 1 at severity 3
    module = P.ContrastiveModule(cfg.to_dict())
    b, n, t = 16, 2, cfg.clip_samples
    views = 0.1 * torch.randn(b, n, t, generator=torch.Generator().manual_seed(0))
    labeled = torch.arange(b) < 6
    x, _, _ = module._rows({"views": views, "labels": torch.zeros(b, 3), "sample_id": torch.arange(b)})
    out = module._augment(x, {"labeled": labeled})
    changed = (out - x).flatten(1).abs().amax(1) > 0
    rows_labeled = labeled.repeat_interleave(n)
    assert not changed[rows_labeled].any()
    assert changed[~rows_labeled].all()
    # without the option one chain serves every row
    plain = P.ContrastiveModule(_smoke(tmp_path, severity=3.0).to_dict())
    assert plain.augment_labeled is None
    assert ((plain._augment(x, {"labeled": labeled}) - x).flatten(1).abs().amax(1) > 0).all()


def test_non_finite_loss_stops_with_clear_message(tmp_path, embedded, monkeypatch):
    cfg = _smoke(tmp_path, steps=3)
    monkeypatch.setattr(S, "semisupcon_loss_parts", lambda z, ids, labels, criterion, temperature:
                        {"loss": z.sum() * float("nan"), "ssl": z.sum(), "sl": z.sum()})
    with pytest.raises(P.NonFiniteLossError, match="last good state"):
        P.pretrain(cfg, progress=False)
    run = next((tmp_path / "runs").iterdir())
    assert (run / "checkpoints" / "last-good.ckpt").exists()
    assert not runs.is_finished(run)


def test_resume_after_sigkill_loses_at_most_one_interval(tmp_path, embedded):
    runs_dir = tmp_path / "runs"
    cmd = [sys.executable, "-m", "workbench", "pretrain", "--scale", "smoke", "--no-progress",
           "support=nsynth_pitch", "b_s=0.5", "steps=400", "checkpoint_every=3", f"runs_dir={runs_dir}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    ckpts = []
    while time.time() < deadline:
        ckpts = list(runs_dir.glob("*/checkpoints/step*.ckpt"))
        if len(ckpts) >= 2:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(ckpts) >= 2, "the run saved no periodic checkpoints before the deadline"
    run = ckpts[0].parents[1]
    assert not runs.is_finished(run)
    saved = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]
    assert saved >= 3
    # last.ckpt trails the newest periodic checkpoint by at most one interval (a kill can land
    # between writing step<k>.ckpt and updating last.ckpt), so a kill loses at most one interval
    newest = max(int(p.stem[4:]) for p in run.glob("checkpoints/step*.ckpt"))
    assert 0 <= newest - saved <= 3
    # shorten the run so the resumed part is quick, then resume
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["steps"] = saved + 3
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = P.pretrain(resume=run, progress=False)
    assert out == run and runs.is_finished(run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == saved + 3 and metrics["steps_run"] == 3
    # the loader reseeds its batches by the resumed step (by design, docs/reliability.md), so
    # Lightning's "your dataloader is not resumable ... unreliable results" is not shown
    assert not [w for w in caught if "dataloader is not resumable" in str(w.message)]
    # the training's CPU is counted over both attempts: the killed one's (up to its checkpoint,
    # carried in the checkpoint) plus the resumed one's
    assert metrics["cpu_s_complete"] is True
    assert metrics["cpu_s"] > metrics["cpu_s_attempt"] > 0
    with pytest.raises(runs.RunExistsError):
        P.pretrain(resume=run, progress=False)


_STEP_PRINTER = """
import sys
from workbench.train import run as R
original = R.Throughput.on_train_batch_end
def hook(self, trainer, module, outputs, batch, batch_idx):
    original(self, trainer, module, outputs, batch, batch_idx)
    print("step", trainer.global_step, flush=True)
R.Throughput.on_train_batch_end = hook
from workbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _as_from_a_terminal():
    """SIGINT at its default and not blocked in the child, as a command typed in a terminal has
    it, whatever the test worker passes on (an ignored or blocked SIGINT is inherited, and
    Python then never raises KeyboardInterrupt; ``make test &`` from a script starts with SIGINT
    ignored, since a shell without job control ignores it in background jobs)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


@pytest.mark.parametrize("how", ["ctrl-c to the process group", "sigterm to the process"])
def test_a_stopped_cli_run_saves_the_step_it_stopped_at_and_exits_130(tmp_path, embedded, how):
    """The real CLI with two loader workers: Ctrl-C in a terminal reaches the whole process group
    (the workers too); ``kill PID`` reaches the main process. Either stops at a step boundary with
    that step in last.ckpt (no periodic checkpoint exists), says how to resume, and exits 130."""
    runs_dir = tmp_path / "runs"
    args = ["pretrain", "--scale", "smoke", "--no-progress", "steps=400", "checkpoint_every=1000", "num_workers=2",
            f"runs_dir={runs_dir}"]
    proc = subprocess.Popen([sys.executable, "-c", _STEP_PRINTER, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_as_from_a_terminal)
    try:
        seen = 0
        for line in proc.stdout:
            if line.startswith("step "):
                seen = int(line.split()[1])
                if seen >= 5:
                    break
        assert seen >= 5, proc.stderr.read()[-2000:]
        if how.startswith("ctrl-c"):
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    run = next(runs_dir.iterdir())
    saved = int(torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"])
    last_printed = max([seen] + [int(x.split()[1]) for x in out.splitlines() if x.startswith("step ")])
    assert saved == last_printed >= seen  # the step it stopped at, nothing after it
    assert not list((run / "checkpoints").glob("step*.ckpt")) and not runs.is_finished(run)
    assert "interrupted:" in err and f"--resume {run}" in err
    assert "Traceback" not in err


def test_cpu_clock_continues_its_count_from_the_checkpoint_state():
    from workbench.train.run import CPUClock

    now = [100.0]
    first = CPUClock(clock=lambda: now[0])
    assert first.total == 0.0  # nothing counted before training starts
    first.on_train_start(None, None)
    now[0] += 7.5
    saved = first.state_dict()  # what a checkpoint holds at this point
    assert saved == {"cpu_s": 7.5}
    now[0] += 3.0  # spent after the checkpoint, lost with a kill
    second = CPUClock(clock=lambda: now[0])
    second.load_state_dict(saved)
    second.on_train_start(None, None)
    now[0] += 2.0
    assert second.restored and second.attempt == 2.0 and second.total == 9.5
    fresh = CPUClock(clock=lambda: now[0])
    assert not fresh.restored
