"""Training faults (issue 15, must-fix 1, 2, 3 and 6): a crafted checkpoint never runs code;
the NaN guard keeps a finite state (buffers included); one ``last.ckpt``, always the newest,
through kill → resume → kill → move → resume; a resume never silently ignores a changed
config; an unreadable ``last.ckpt`` is one clear message (or a fallback, said)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
import yaml

from workbench import runs
from workbench.config import ConfigError, resolve_cola_config, resolve_config
from workbench.train import cola as C
from workbench.train import pretrain as P
from workbench.train import run as R
from workbench.train import semisupcon as S


@pytest.fixture(scope="module")
def embedded():
    from workbench.data.roots import embedded_dir

    return embedded_dir("tiny", 0)


class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _crafted_run(tmp_path, config) -> tuple:
    run = runs.new_run_dir(tmp_path / "runs", "crafted")
    config.save(run / "config.yaml")
    marker = tmp_path / "PWNED"
    torch.save({"state_dict": {}, "global_step": 2, "hyper_parameters": {"config": config.to_dict()},
                "payload": _Payload(marker)}, run / "checkpoints" / "last.ckpt")
    return run, marker


def _payload_runs_when_unpickled(path, marker) -> bool:
    """Control: the payload is live (a plain torch.load would run it)."""
    torch.load(path, map_location="cpu", weights_only=False)
    ran = marker.exists()
    marker.unlink(missing_ok=True)
    return ran


def test_crafted_checkpoint_never_runs_on_pretrain_resume(tmp_path):
    run, marker = _crafted_run(tmp_path, resolve_config("smoke", "simclr"))
    assert _payload_runs_when_unpickled(run / "checkpoints" / "last.ckpt", marker)
    with pytest.raises(runs.CheckpointError, match=r"last.ckpt cannot be read"):
        P.main(["--resume", str(run), "--no-progress"])
    assert not marker.exists()


def test_crafted_checkpoint_never_runs_on_cola_resume(tmp_path):
    run, marker = _crafted_run(tmp_path, resolve_cola_config("smoke"))
    with pytest.raises(runs.CheckpointError, match=r"last.ckpt cannot be read"):
        C.main(["--resume", str(run), "--no-progress"])
    assert not marker.exists()


def test_crafted_checkpoint_never_runs_in_batch_similarity(tmp_path):
    from workbench.latent import batch_similarity

    run, marker = _crafted_run(tmp_path, resolve_config("smoke", "simclr"))
    with pytest.raises(runs.CheckpointError):
        batch_similarity(run)
    assert not marker.exists()


def _finite(path) -> bool:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    return all(torch.isfinite(v).all() for v in blob["state_dict"].values() if v.is_floating_point())


def test_nan_guard_keeps_finite_batchnorm_statistics(tmp_path, embedded, monkeypatch):
    """Views turn NaN at step 2: the forward pass moves BatchNorm's running statistics to NaN
    before the loss is seen; last-good.ckpt must hold the finite statistics of the step before."""
    original = S.ContrastiveModule._augment

    def poisoned(self, x, batch):
        out = original(self, x, batch)
        return out * float("nan") if self.global_step >= 2 else out

    monkeypatch.setattr(S.ContrastiveModule, "_augment", poisoned)
    cfg = resolve_config("smoke", "simclr", steps=4, num_workers=0, precision="32-true",
                         runs_dir=str(tmp_path / "runs"))
    with pytest.raises(R.NonFiniteLossError, match=r"at step 2.*last good state"):
        P.pretrain(cfg, progress=False)
    run = next((tmp_path / "runs").iterdir())
    good = run / "checkpoints" / "last-good.ckpt"
    blob = torch.load(good, map_location="cpu", weights_only=True)
    stats = [k for k in blob["state_dict"] if k.endswith("running_mean")]
    assert stats and _finite(good) and blob["global_step"] == 2
    assert not runs.is_finished(run)


class _Killed(Exception):
    """Stands in for SIGKILL: the process stops after a step, leaving the files as they are."""


def _kill_at(monkeypatch, step):
    original = R.Throughput.on_train_batch_end

    def hook(self, trainer, module, outputs, batch, batch_idx):
        original(self, trainer, module, outputs, batch, batch_idx)
        if trainer.global_step >= step:
            raise _Killed(step)

    monkeypatch.setattr(R.Throughput, "on_train_batch_end", hook)


def _step(path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def _assert_one_newest_last(run, killed_at, every):
    ckpts = run / "checkpoints"
    assert not list(ckpts.glob("last-v*.ckpt")), sorted(p.name for p in ckpts.iterdir())
    newest = max(int(p.stem[4:]) for p in ckpts.glob("step*.ckpt"))
    assert _step(ckpts / "last.ckpt") == newest == (killed_at // every) * every


def test_kill_resume_kill_move_resume_loses_at_most_one_interval(tmp_path, embedded, monkeypatch):
    every = 3
    cfg = resolve_config("smoke", "simclr", steps=12, checkpoint_every=every, num_workers=0,
                         precision="32-true", runs_dir=str(tmp_path / "runs"))
    _kill_at(monkeypatch, 7)
    with pytest.raises(_Killed):
        P.pretrain(cfg, progress=False)
    run = next((tmp_path / "runs").iterdir())
    _assert_one_newest_last(run, 7, every)
    monkeypatch.undo()
    _kill_at(monkeypatch, 10)
    with pytest.raises(_Killed):
        P.pretrain(resume=run, progress=False)
    _assert_one_newest_last(run, 10, every)
    moved = tmp_path / "elsewhere" / run.name
    moved.parent.mkdir()
    shutil.move(str(run), moved)
    monkeypatch.undo()
    assert P.pretrain(resume=moved, progress=False) == moved and runs.is_finished(moved)
    assert not list((moved / "checkpoints").glob("last-v*.ckpt"))
    assert _step(moved / "checkpoints" / "last.ckpt") == 12
    metrics = json.loads((moved / "metrics.json").read_text())
    assert metrics["steps"] == 12 and metrics["steps_run"] == 12 - 9


def test_resume_refuses_changes_it_would_ignore_and_falls_back_from_a_broken_last(tmp_path, embedded, monkeypatch):
    cfg = resolve_config("smoke", "simclr", steps=4, checkpoint_every=2, num_workers=0, precision="32-true",
                         runs_dir=str(tmp_path / "runs"))
    _kill_at(monkeypatch, 3)
    with pytest.raises(_Killed):
        P.pretrain(cfg, progress=False)
    monkeypatch.undo()
    run = next((tmp_path / "runs").iterdir())
    saved = yaml.safe_load((run / "config.yaml").read_text())
    # an override the optimizer state would ignore: refused, nothing written
    with pytest.raises(ConfigError, match=r"differs from the checkpoint's in lr: 0.0001 -> 1.0.*--config"):
        P.pretrain(resume=run, overrides={"lr": 1}, progress=False)
    # the same edit in config.yaml: refused too
    (run / "config.yaml").write_text(yaml.safe_dump({**saved, "lr": 1.0}))
    with pytest.raises(ConfigError, match=r"lr: 0.0001 -> 1.0"):
        P.pretrain(resume=run, progress=False)
    # steps below the checkpoint's step: refused, the run is not marked finished
    (run / "config.yaml").write_text(yaml.safe_dump({**saved, "steps": 1}))
    with pytest.raises(ConfigError, match=r"steps=1 is below the checkpoint's step 2"):
        P.pretrain(resume=run, progress=False)
    assert not runs.is_finished(run)
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    # an empty last.ckpt: resume falls back on the newest intact periodic checkpoint, and says so
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    broken_step = run / "checkpoints" / "step0000002.ckpt"
    with pytest.warns(UserWarning, match=r"last.ckpt cannot be read \(empty file\).*step0000002.ckpt"):
        assert P.pretrain(resume=run, overrides={"steps": 5}, progress=False) == run
    assert runs.is_finished(run) and json.loads((run / "metrics.json").read_text())["steps"] == 5
    record = json.loads((run / "resumed.json").read_text())
    assert record[-1]["changed"] == {"steps": [4, 5]}
    # nothing intact to fall back on: one message naming the file and the fix
    (run / runs.FINISHED_MARKER).unlink()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"\x80\x02trunc")
    for p in (run / "checkpoints").glob("step*.ckpt"):
        p.write_bytes(b"")
    assert broken_step.stat().st_size == 0
    with pytest.raises(runs.CheckpointError, match=r"last.ckpt cannot be read.*Delete it.*No intact periodic"):
        P.pretrain(resume=run, progress=False)


def _signal_at(monkeypatch, step, signum):
    """Sends ``signum`` to this process once, at the end of step ``step`` (as ``kill PID`` would)."""
    import signal as _signal

    original = R.Throughput.on_train_batch_end
    sent = []

    def hook(self, trainer, module, outputs, batch, batch_idx):
        original(self, trainer, module, outputs, batch, batch_idx)
        if trainer.global_step >= step and not sent:
            sent.append(trainer.global_step)
            _signal.raise_signal(signum)

    monkeypatch.setattr(R.Throughput, "on_train_batch_end", hook)
    return sent


def test_sigterm_stops_at_the_next_step_with_a_checkpoint_of_that_step(tmp_path, embedded, monkeypatch):
    import signal as _signal

    every = 5
    cfg = resolve_config("smoke", "simclr", steps=12, checkpoint_every=every, num_workers=0,
                         precision="32-true", runs_dir=str(tmp_path / "runs"))
    sent = _signal_at(monkeypatch, 7, _signal.SIGTERM)
    before = _signal.getsignal(_signal.SIGTERM)
    with pytest.raises(R.TrainingStopped) as stopped:
        P.pretrain(cfg, progress=False)
    run = next((tmp_path / "runs").iterdir())
    assert sent == [7] and stopped.value.step == 7 and stopped.value.why == "SIGTERM"
    assert isinstance(stopped.value, KeyboardInterrupt)  # an interruption (exit 130), not a failure
    assert f"--resume {run}" in str(stopped.value) and "pretrain" in str(stopped.value)
    # nothing finished is lost: last.ckpt is step 7, past the newest periodic checkpoint (5)
    assert _step(run / "checkpoints" / "last.ckpt") == 7
    assert sorted(p.name for p in (run / "checkpoints").glob("step*.ckpt")) == ["step0000005.ckpt"]
    assert not list((run / "checkpoints").glob(".*tmp")) and not runs.is_finished(run)
    assert _signal.getsignal(_signal.SIGTERM) is before
    monkeypatch.undo()
    assert P.pretrain(resume=run, progress=False) == run and runs.is_finished(run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 12 and metrics["steps_run"] == 12 - 7


@pytest.fixture
def terminal_sigint():
    """SIGINT as a process started from a terminal has it (Python's KeyboardInterrupt handler,
    not blocked), whatever this test worker inherited: ``make test &`` from a script starts
    with SIGINT ignored (a shell without job control ignores it in background jobs), and
    Python then keeps it ignored."""
    import signal as _signal

    before = _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    mask = _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [_signal.SIGINT])
    yield
    _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
    _signal.signal(_signal.SIGINT, before)


def test_a_first_ctrl_c_waits_for_the_step_and_a_second_stops_at_once(tmp_path, embedded, monkeypatch,
                                                                       terminal_sigint):
    import signal as _signal

    cfg = resolve_config("smoke", "simclr", steps=12, checkpoint_every=100, num_workers=0,
                         precision="32-true", runs_dir=str(tmp_path / "runs"))
    _signal_at(monkeypatch, 4, _signal.SIGINT)
    with pytest.raises(R.TrainingStopped) as stopped:
        P.pretrain(cfg, progress=False)
    run = next((tmp_path / "runs").iterdir())
    assert stopped.value.step == 4 and stopped.value.why == "Ctrl-C"
    assert _step(run / "checkpoints" / "last.ckpt") == 4 and not list((run / "checkpoints").glob("step*.ckpt"))
    assert _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler
    monkeypatch.undo()
    # a second Ctrl-C inside a step (after its backward pass, before the optimizer step)
    # interrupts there: that half-done state is not saved; the checkpoint before stays
    original = R.TrainingSignals.on_before_optimizer_step
    calls = []

    def twice(self, trainer, module, optimizer):
        original(self, trainer, module, optimizer)
        if trainer.global_step >= 6 and not calls:
            calls.append(trainer.global_step)
            _signal.raise_signal(_signal.SIGINT)  # asks for a stop after this step
            _signal.raise_signal(_signal.SIGINT)  # and now: KeyboardInterrupt inside the step

    monkeypatch.setattr(R.TrainingSignals, "on_before_optimizer_step", twice)
    with pytest.raises(R.TrainingStopped) as again:
        P.pretrain(resume=run, progress=False)
    assert calls == [6] and again.value.step is None and "mid-step" in str(again.value)
    assert _step(run / "checkpoints" / "last.ckpt") == 4
    assert _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler


def test_an_ignored_sigint_stays_ignored_during_training(tmp_path, embedded, monkeypatch):
    """A run started with SIGINT ignored (``nohup``, a background job of a script) is not stopped
    by one, and training leaves that disposition as it found it."""
    import signal as _signal

    before = _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    try:
        cfg = resolve_config("smoke", "simclr", steps=8, checkpoint_every=100, num_workers=0,
                             precision="32-true", runs_dir=str(tmp_path / "runs"))
        sent = _signal_at(monkeypatch, 3, _signal.SIGINT)
        run = P.pretrain(cfg, progress=False)
        assert sent == [3] and runs.is_finished(run) and _step(run / "checkpoints" / "last.ckpt") == 8
        assert _signal.getsignal(_signal.SIGINT) is _signal.SIG_IGN
    finally:
        _signal.signal(_signal.SIGINT, before)


def test_a_stop_handler_set_before_training_cannot_interrupt_a_step(tmp_path, embedded, monkeypatch):
    """The claims runner turns SIGTERM into an exception; while a cell trains, the training's
    own stop (at the step boundary, checkpoint saved) comes first, and the runner's handler is
    back afterwards."""
    import signal as _signal

    from workbench.claims.runner import _stop_on_sigterm

    cfg = resolve_config("smoke", "simclr", steps=12, checkpoint_every=100, num_workers=0,
                         precision="32-true", runs_dir=str(tmp_path / "runs"))
    _signal_at(monkeypatch, 5, _signal.SIGTERM)
    flag = {"stopped": False}
    with _stop_on_sigterm(flag):
        runner_handler = _signal.getsignal(_signal.SIGTERM)
        with pytest.raises(R.TrainingStopped) as stopped:
            P.pretrain(cfg, progress=False)
        assert _signal.getsignal(_signal.SIGTERM) is runner_handler
    assert stopped.value.step == 5 and not flag["stopped"]
    run = next((tmp_path / "runs").iterdir())
    assert _step(run / "checkpoints" / "last.ckpt") == 5
