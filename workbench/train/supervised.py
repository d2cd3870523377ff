"""End-to-end supervised baseline (SemiSupCon Table 2 and Figure 3).

The same encoder as pretraining plus a classifier head, trained from scratch on one task
with the task's own loss (BCE for tagging, cross-entropy for classification, MSE for
regression), early stopping on validation loss with the best weights restored before the
test, and the same result rows as the probes.  Training reads random crops; validation
and test read whole tracks cut into clips (the test averages logits over a track's
chunks, recorded as ``aggregation="logits"``).

    python -m workbench supervised --task nsynth_pitch --scale demo
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .. import data, runs
from ..audio import AudioError
from ..augment import build_chain
from ..config import SupervisedConfig
from ..scales import SCALE_NAMES
from ..data.views import FileReader
from ..embed import segment_mean, target_array
from ..models import build_encoder
from ..models.heads import ClassifierHead

__all__ = ["SupervisedConfig", "SupervisedModule", "train_supervised", "task_loss", "main"]

#: Deterministic validation crops: this many evenly spaced crops per validation track.
VALID_CROPS_PER_TRACK = 2


def task_loss(kind: str) -> nn.Module:
    if kind == "multilabel":
        return nn.BCEWithLogitsLoss()
    if kind == "multiclass":
        return nn.CrossEntropyLoss()
    if kind == "regression":
        return nn.MSELoss()
    raise ValueError(f"task kind {kind!r} has no supervised loss (unlabelled data cannot train the baseline)")


class _Crops(Dataset):
    """Training: one random crop per track; validation: fixed evenly spaced crops."""

    def __init__(self, rows, targets: np.ndarray, reader: FileReader, clip: int, train: bool, seed: int):
        self.paths = rows["path"].tolist()
        self.targets, self.reader, self.clip, self.train = targets, reader, clip, train
        self.seed = seed
        self.index = [(i, k) for i in range(len(self.paths)) for k in range(1 if train else VALID_CROPS_PER_TRACK)]

    def __len__(self):
        return len(self.index)

    def __getitem__(self, j):
        i, k = self.index[j]
        path = self.paths[i]
        try:
            if self.train:
                rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
                x = self.reader.read(path, self.clip, rng=rng, pad=True)
            else:
                from ..audio import info

                dur = info(path).duration
                span = max(dur - self.clip / self.reader.sample_rate, 0.0)
                x = self.reader.read(path, self.clip, offset=span * (k + 0.5) / VALID_CROPS_PER_TRACK, pad=True)
        except AudioError as exc:
            raise AudioError(f"{exc} (while training the supervised baseline; remove the file from the data set)")
        return torch.from_numpy(x)[None], torch.as_tensor(self.targets[i])


class SupervisedModule(L.LightningModule):
    def __init__(self, config: dict, kind: str, n_out: int):
        super().__init__()
        self.save_hyperparameters({"config": config, "kind": kind, "n_out": n_out})
        self.cfg = SupervisedConfig(**config)
        enc = dict(self.cfg.encoder)
        self.encoder = build_encoder(enc.pop("name"), **enc)
        self.classifier = ClassifierHead(self.encoder.out_dim, n_out, hidden=self.cfg.hidden,
                                         dropout=self.cfg.dropout)
        self.loss_fn = task_loss(kind)
        self.augment = build_chain(self.cfg.preset, sample_rate=self.cfg.sample_rate) if self.cfg.preset else None

    def forward(self, x):
        return self.classifier(self.encoder(x))

    def _loss(self, batch):
        x, y = batch
        return self.loss_fn(self(x), y)

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.augment is not None:
            with torch.no_grad():
                x = self.augment(x)
        loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch), prog_bar=True, on_epoch=True, batch_size=len(batch[1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.cfg.lr)


class _Logits(nn.Module):
    """Encoder + classifier seen as an 'encoder' of logits, so embed.extract can chunk whole tracks."""

    def __init__(self, module: SupervisedModule):
        super().__init__()
        self.module = module
        self.sample_rate, self.clip_samples = module.cfg.sample_rate, module.cfg.clip_samples
        self.out_dim = module.hparams["n_out"]

    def forward(self, x):
        return self.module(x)


def train_supervised(config: SupervisedConfig, *, progress: bool = True) -> tuple[Path, dict]:
    """Train, restore the best validation state, test on whole tracks. Returns (run_dir, metrics)."""
    from .. import metrics as M
    from ..embed import extract

    spec = data.task(config.task, config.root)
    df = data.manifest(config.task, config.root)
    run_dir = runs.new_run_dir(config.runs_dir, config.name or f"supervised-{config.task}")
    (run_dir / "config.yaml").write_text(__import__("yaml").safe_dump(dataclasses.asdict(config), sort_keys=False))
    runs.write_env(run_dir)
    df[["id", "path", "split"]].to_csv(run_dir / "splits" / f"{config.task}.csv", index=False)
    L.seed_everything(config.seed, workers=True, verbose=False)
    reader = FileReader(config.sample_rate)

    def loader(split, train):
        rows = df[df["split"] == split].reset_index(drop=True)
        if rows.empty:
            raise ValueError(f"task {config.task}: no {split} rows under {data.data_root(config.task, config.root).path}")
        y = target_array(spec, rows["target"])
        if spec.kind == "multiclass":
            y = y.astype(np.int64)
        ds = _Crops(rows, y, reader, config.clip_samples, train, config.seed)
        return DataLoader(ds, batch_size=config.batch_size, shuffle=train, num_workers=config.num_workers,
                          drop_last=False, persistent_workers=config.num_workers > 0)

    n_out = len(spec.classes) if spec.kind != "regression" else target_array(spec, df["target"][:1]).shape[1]
    module = SupervisedModule(dataclasses.asdict(config), spec.kind, n_out)
    best = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val_loss", mode="min",
                           save_top_k=1, save_last=True)
    stop = EarlyStopping(monitor="val_loss", mode="min", patience=config.patience, check_finite=True)
    from ..progress import lightning_progress_bar  # text bars unless a Jupyter front end is attached

    trainer = L.Trainer(default_root_dir=str(run_dir), max_steps=config.max_steps, max_epochs=-1,
                        val_check_interval=config.val_every, check_val_every_n_epoch=None,
                        callbacks=[best, stop] + ([lightning_progress_bar()] if progress else []),
                        logger=CSVLogger(run_dir, name="logs", version=""),
                        enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
                        log_every_n_steps=max(1, config.val_every // 5), accelerator="auto", devices=1)
    t0 = time.perf_counter()
    from .run import interrupts_kept

    with interrupts_kept():  # Ctrl-C: KeyboardInterrupt (exit 130), not Lightning's exit 1
        trainer.fit(module, loader("train", True), loader("valid", False))
    if best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    module.eval()
    emb = extract(_Logits(module), spec, "test", root=config.root, use_cache=False, progress=progress)
    logits = segment_mean(emb.X, emb.track_index, len(emb.ids))
    if spec.kind == "multilabel":
        scores = torch.sigmoid(torch.from_numpy(logits)).numpy()
    else:
        scores = logits
    values = M.compute(spec, emb.targets, scores)
    droot = data.data_root(config.task, config.root)
    result = {"model": "supervised", "checkpoint": best.best_model_path or None, "task": config.task,
              "metrics": values, "aggregation": "logits", "seed": config.seed, "data_root": str(droot.path),
              "synthetic": droot.synthetic, "best_val_loss": float(best.best_model_score) if best.best_model_score
              is not None else None, "steps": trainer.global_step, "wall_s": time.perf_counter() - t0}
    runs.write_json(run_dir / "metrics.json", result)
    runs.mark_finished(run_dir)
    return run_dir, result


def main(argv: list[str] | None = None) -> int:
    import yaml

    ap = argparse.ArgumentParser(prog="workbench supervised", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--scale", default="demo", choices=sorted(SCALE_NAMES))
    ap.add_argument("--root")
    ap.add_argument("overrides", nargs="*", help="key=value overrides of SupervisedConfig")
    args = ap.parse_args(argv)
    over = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.overrides)}
    data.task(args.task, args.root)  # unknown task names fail here, before any work
    run_dir, result = train_supervised(SupervisedConfig.for_scale(args.scale, task=args.task, root=args.root, **over))
    print(f"run directory: {run_dir}\n{result['metrics']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
