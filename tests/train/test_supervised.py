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
