"""End-to-end supervised baseline at smoke scale: trains, restores the best validation
state, tests on whole tracks and writes the same kind of result as the probes."""

from __future__ import annotations

import json

import pytest
import torch

from workbench import runs
from workbench.train.supervised import SupervisedConfig, task_loss, train_supervised


@pytest.fixture(scope="module")
def embedded():
    from workbench.data.roots import embedded_dir

    return embedded_dir("tiny", 0)


def test_task_losses():
    assert isinstance(task_loss("multilabel"), torch.nn.BCEWithLogitsLoss)
    assert isinstance(task_loss("multiclass"), torch.nn.CrossEntropyLoss)
    assert isinstance(task_loss("regression"), torch.nn.MSELoss)
    with pytest.raises(ValueError, match="unlabelled"):
        task_loss("unlabeled")


def test_config_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown supervised config field"):
        SupervisedConfig.for_scale("smoke", task="nsynth_pitch", learning_rate=1.0)


@pytest.mark.parametrize("task", ["nsynth_pitch", "mtat_top50"])
def test_smoke_run(tmp_path, embedded, task):
    cfg = SupervisedConfig.for_scale("smoke", task=task, runs_dir=str(tmp_path), max_steps=6, val_every=2)
    run_dir, result = train_supervised(cfg, progress=False)
    assert runs.is_finished(run_dir)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["task"] == task and saved["aggregation"] == "logits" and saved["synthetic"] is True
    first_metric = {"nsynth_pitch": "accuracy", "mtat_top50": "roc_auc"}[task]
    assert 0.0 <= saved["metrics"][first_metric] <= 1.0
    # the restored state is the best validation checkpoint, not the last step
    best = torch.load(saved["checkpoint"], map_location="cpu", weights_only=False)
    assert best["callbacks"]  # a ModelCheckpoint-written file
    ckpt_cb = next(v for k, v in best["callbacks"].items() if "ModelCheckpoint" in k)
    assert saved["best_val_loss"] == pytest.approx(float(ckpt_cb["best_model_score"]))
    assert (run_dir / "splits" / f"{task}.csv").exists()


def test_ctrl_c_during_training_is_a_keyboard_interrupt_and_leaves_sigint_working(tmp_path, embedded, monkeypatch):
    """Lightning turns a KeyboardInterrupt inside ``fit`` into ``sys.exit(1)`` and ignores SIGINT
    from then on; the supervised trainer gives the interrupt back (the CLI exits 130) and leaves
    Ctrl-C working in the process."""
    import signal

    from lightning.pytorch.callbacks import Callback

    from workbench.train import supervised as S

    class CtrlC(Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step >= 2:
                raise KeyboardInterrupt

    real_trainer = S.L.Trainer

    def trainer_with_ctrl_c(*args, callbacks=(), **kwargs):
        return real_trainer(*args, callbacks=[*callbacks, CtrlC()], **kwargs)

    monkeypatch.setattr(S.L, "Trainer", trainer_with_ctrl_c)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cfg = SupervisedConfig.for_scale("smoke", task="nsynth_pitch", runs_dir=str(tmp_path), max_steps=8,
                                         val_every=4)
        with pytest.raises(KeyboardInterrupt):
            train_supervised(cfg, progress=False)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        run = next(tmp_path.iterdir())
        assert not runs.is_finished(run)
    finally:
        signal.signal(signal.SIGINT, before)
