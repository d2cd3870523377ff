"""Contrastive pretraining with Lightning: SemiSupCon, SimCLR/CLMR and SupCon in one module.

The data path is data → augment (on the device, batched, inside the training step) →
encoder → projection head → SemiSupCon loss on the *global* batch (z, sample ids and
labels gathered across devices with gradient).  ``pretrain(config)`` creates a new run
directory, or resumes an unfinished one from its last checkpoint.

    from workbench.config import resolve_config
    from workbench.train.pretrain import pretrain
    run_dir = pretrain(resolve_config("demo", "semisupcon", support="nsynth_pitch", b_s=0.5))
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader

from .. import runs, threads
from ..augment import build_chain
from ..config import PretrainConfig, load_config
from ..data.batches import PretrainDataset, SemiSupervisedBatchSampler, build_pool
from ..data.views import CachedReader, FileReader
from ..distributed import gather, global_sample_ids
from ..losses import semisupcon_loss, target_matrix
from ..models import build_encoder
from ..models.heads import ProjectionHead

__all__ = ["ContrastiveModule", "NonFiniteLossError", "pretrain", "build_dataloader", "build_trainer", "main"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the last good state was saved."""


def _precision(config: PretrainConfig) -> str:
    """``auto``: bf16-mixed on GPUs that support it, 16-mixed on older GPUs; on CPUs with
    native bf16 (AVX512-BF16/AMX) bf16-mixed (the SampleCNN step is 1.3-3x faster), else fp32.
    The loss is always computed in float32."""
    if config.precision != "auto":
        return config.precision
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if config.accelerator in ("auto", "cpu") and torch.backends.mkldnn.is_available() and \
            torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16-mixed"
    return "32-true"


class ContrastiveModule(L.LightningModule):
    """Encoder + projection head trained with the SemiSupCon loss (GUIDE 2.2)."""

    def __init__(self, config: dict):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.cfg = PretrainConfig(**config)
        enc_kwargs = dict(self.cfg.encoder)
        self.encoder = build_encoder(enc_kwargs.pop("name"), **enc_kwargs)
        self.head = ProjectionHead(self.encoder.out_dim, self.cfg.proj_hidden, self.cfg.proj_dim)
        self.augment = build_chain(self.cfg.preset, sample_rate=self.cfg.sample_rate, severity=self.cfg.severity,
                                   exclude=self.cfg.augment_exclude)
        # labelled rows may skip transforms that would contradict their labels (pitch shift vs pitch)
        extra = [n for n in self.cfg.labeled_augment_exclude if n not in self.cfg.augment_exclude]
        self.augment_labeled = build_chain(
            self.cfg.preset, sample_rate=self.cfg.sample_rate, severity=self.cfg.severity,
            exclude=[*self.cfg.augment_exclude, *extra]) if extra else None
        self.last_good_step = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms [B, 1, T] → projected embeddings [B, proj_dim]."""
        return self.head(self.encoder(x))

    def _rows(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Views as rows ``[B*N, 1, T]``, one id per draw (globally unique across devices), labels."""
        views = batch["views"]  # [B, N, T]
        b, n, t = views.shape
        x = views.reshape(b * n, 1, t)
        # ids per draw, not per clip: a clip drawn twice (or on two devices) is two samples
        draws = global_sample_ids(torch.arange(b, device=views.device))
        ids = draws.repeat_interleave(n)
        labels = batch["labels"].repeat_interleave(n, dim=0)
        return x, ids, labels

    @torch.no_grad()
    def _augment(self, x: torch.Tensor, batch: dict) -> torch.Tensor:
        """The chain on every row; labelled rows through their own chain when configured."""
        if self.augment_labeled is None or "labeled" not in batch:
            return self.augment(x)
        labeled = batch["labeled"].to(x.device).repeat_interleave(x.shape[0] // len(batch["labeled"]))
        out = torch.empty_like(x)
        for mask, chain in ((labeled, self.augment_labeled), (~labeled, self.augment)):
            if mask.any():
                out[mask] = chain(x[mask])
        return out

    def training_step(self, batch: dict, batch_idx: int):
        x, ids, labels = self._rows(batch)
        x = self._augment(x, batch)
        z = self(x)
        z_all, ids_all = gather(z), gather(ids)
        labels_all = gather(labels) if labels.shape[1] else None
        targets = target_matrix(ids_all, labels_all, criterion=self.cfg.criterion)
        loss = semisupcon_loss(z_all, targets, temperature=self.cfg.temperature)
        if not torch.isfinite(loss):
            self._on_non_finite(loss)
        if self.global_step % self.cfg.log_every == 0:
            self._log_parts(z_all.detach(), ids_all, labels_all, targets)
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(ids))
        return loss

    @torch.no_grad()
    def _log_parts(self, z, ids, labels, targets) -> None:
        """SSL-only and label-only parts of the loss, and the share of positive pairs."""
        def mean_over_anchors_with_positives(t):
            per_anchor = semisupcon_loss(z, t, temperature=self.cfg.temperature, reduction="none")
            has = t.sum(1) > 0
            return per_anchor[has].mean() if has.any() else None

        ssl_t = target_matrix(ids, None)
        parts = {"loss_ssl": mean_over_anchors_with_positives(ssl_t)}
        if labels is not None:
            parts["loss_label"] = mean_over_anchors_with_positives(torch.clamp(targets - ssl_t, min=0))
        parts["positive_fraction"] = (targets > 0).float().mean()
        parts = {k: v for k, v in parts.items() if v is not None}
        self.log_dict({k: v.float() for k, v in parts.items()}, on_step=True, on_epoch=False,
                      batch_size=len(ids))

    def _on_non_finite(self, loss: torch.Tensor) -> None:
        run_dir = Path(self.trainer.default_root_dir)
        params_ok = all(torch.isfinite(p).all() for p in self.parameters())
        where = ""
        if params_ok:
            path = run_dir / "checkpoints" / "last-good.ckpt"
            self.trainer.save_checkpoint(path)
            where = f" The last good state (weights before step {self.global_step}) is in {path}."
        else:
            where = f" Weights are already non-finite; resume from the last periodic checkpoint in {run_dir}/checkpoints."
        raise NonFiniteLossError(
            f"loss became {loss.item()} at step {self.global_step}.{where} Lower lr "
            f"(now {self.cfg.lr}), enable grad_clip, or use precision='32-true'."
        )

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)


class _Throughput(Callback):
    """Logs examples/s (clips × views per second) and remembers the wall time."""

    def __init__(self):
        self.t0, self.rows = None, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.t0 is None:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.rows += batch["views"].shape[0] * batch["views"].shape[1]
        if self.t0 is not None:
            dt = time.perf_counter() - self.t0
            if dt > 0:
                module.log("examples_per_s", self.rows / dt, on_step=True, on_epoch=False, prog_bar=True,
                           batch_size=1)


def build_dataloader(config: PretrainConfig, pool=None, splits_dir: Path | None = None,
                     start_step: int = 0) -> DataLoader:
    """The pretraining loader: semi-supervised batch sampler over the pool, views cropped in workers."""
    if pool is None:
        pool = build_pool(config.support, config.unlabeled, p=config.p, b_s=config.b_s, seed=config.seed,
                          support_root=config.support_root, unlabeled_root=config.unlabeled_root)
    if splits_dir is not None:
        pool.write(splits_dir)
    readers = _cached_readers(config)
    dataset = PretrainDataset(pool, FileReader(config.sample_rate), n_views=config.n_views,
                              clip_samples=config.clip_samples, strategy=config.view_strategy, readers=readers,
                              min_db=config.min_view_db)
    sampler = SemiSupervisedBatchSampler(pool.n_labeled, pool.n_unlabeled, config.batch_size, config.b_s,
                                         steps=config.steps, seed=config.seed, start_step=start_step)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=config.num_workers,
                      persistent_workers=config.num_workers > 0, pin_memory=torch.cuda.is_available())


def _cached_readers(config: PretrainConfig) -> dict:
    """Decoded-audio caches for the pool's tasks, where ``workbench data prepare`` made one."""
    try:
        from ..data.cache import reader_for
    except ImportError:
        return {}
    readers = {}
    for name, root in ((config.support, config.support_root), (config.unlabeled, config.unlabeled_root)):
        if name is not None:
            cache = reader_for(name, root, config.sample_rate)
            if cache is not None:
                readers[name] = CachedReader(cache, config.sample_rate)
    return readers


def _data_record(config: PretrainConfig) -> dict:
    from .. import data

    out = {}
    for role, name, root in (("support", config.support, config.support_root),
                             ("unlabeled", config.unlabeled, config.unlabeled_root)):
        if name is not None:
            out[role] = {"task": name, **data.data_root(name, root).to_dict()}
    return out


def pretrain(config: PretrainConfig | None = None, *, resume: str | Path | None = None,
             progress: bool = True) -> Path:
    """Train one model; returns its run directory.  ``resume`` = an unfinished run directory."""
    if resume is not None:
        run_dir = Path(resume)
        ckpt = runs.resume_checkpoint(run_dir)
        config = load_config(run_dir / "config.yaml")
    else:
        if config is None:
            raise ValueError("pretrain() needs a config or resume=RUN_DIR")
        config.validate()
        run_dir = runs.new_run_dir(config.runs_dir, config.name)
        config.save(run_dir / "config.yaml")
        ckpt = None
    runs.write_env(run_dir)
    runs.write_json(run_dir / "data.json", _data_record(config))
    start_step = _step_of(ckpt) if ckpt else 0
    # a resumed run reseeds crops and batches so that it does not replay its first steps
    L.seed_everything(config.seed + start_step, workers=True, verbose=False)
    loader = build_dataloader(config, splits_dir=run_dir / "splits", start_step=start_step)
    module = ContrastiveModule(config.to_dict())
    if config.compile:
        module.encoder = torch.compile(module.encoder)
    trainer = build_trainer(config, run_dir, _Throughput(), progress=progress)
    t0 = time.perf_counter()
    # torch threads: cores available minus loader workers that decode audio (workbench.threads)
    pool_tasks = [name for name in (config.support, config.unlabeled) if name is not None]
    busy = threads.busy_workers(config.num_workers, len(_cached_readers(config)) == len(pool_tasks))
    try:
        with threads.apply(workers=busy):
            trainer.fit(module, train_dataloaders=loader, ckpt_path=str(ckpt) if ckpt else None)
    finally:
        if trainer.is_global_zero:
            _merge_metrics(run_dir)
    wall = time.perf_counter() - t0
    if trainer.global_step >= config.steps and trainer.is_global_zero:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        steps_run = max(trainer.global_step - start_step, 1)
        summary = {
            "steps": trainer.global_step, "wall_s": wall, "steps_run": steps_run,
            "examples_per_s": steps_run * config.batch_size * config.n_views / wall,
            "final": metrics, "checkpoint": str(run_dir / "checkpoints" / "last.ckpt"),
            "precision": trainer.precision,
        }
        runs.write_json(run_dir / "metrics.json", summary)
        runs.mark_finished(run_dir, steps=trainer.global_step)
    return run_dir


def build_trainer(config, run_dir: Path, throughput: Callback, *, progress: bool = True) -> L.Trainer:
    """The step-based Lightning trainer shared by the contrastive trainers (SemiSupCon family and
    COLA): checkpoints every ``checkpoint_every`` steps plus ``last.ckpt``, per-attempt CSV and
    TensorBoard logs (a resumed run adds an attempt), DDP when more than one device or node."""
    checkpoints = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="step{step:07d}",
                                  every_n_train_steps=config.checkpoint_every, save_last=True, save_top_k=-1,
                                  auto_insert_metric_name=False)
    callbacks = [checkpoints, throughput]
    if progress:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, config.log_every // 2)))
    attempt = len(list((run_dir / "logs").glob("attempt*"))) if (run_dir / "logs").exists() else 0
    strategy = config.strategy
    if strategy == "auto" and (config.devices not in (1, "1") or config.num_nodes > 1):
        strategy = "ddp"
    return L.Trainer(
        default_root_dir=str(run_dir), max_steps=config.steps, max_epochs=-1, accelerator=config.accelerator,
        devices=config.devices, num_nodes=config.num_nodes, strategy=strategy,
        sync_batchnorm=config.sync_batchnorm, precision=_precision(config),
        gradient_clip_val=config.grad_clip, callbacks=callbacks, use_distributed_sampler=False,
        logger=[CSVLogger(run_dir, name="logs", version=f"attempt{attempt}"),
                TensorBoardLogger(run_dir, name="tensorboard", version=f"attempt{attempt}")],
        log_every_n_steps=config.log_every, enable_progress_bar=progress, enable_model_summary=False,
        num_sanity_val_steps=0, deterministic=False,
    )


def _merge_metrics(run_dir: Path) -> None:
    """``metrics.csv`` at the run's top: every attempt's CSV log (a resumed run has several), one
    row per step, later attempts winning where a step was logged twice."""
    import pandas as pd

    parts = [pd.read_csv(p) for p in sorted((run_dir / "logs").glob("attempt*/metrics.csv"),
                                             key=lambda p: int(p.parent.name[len("attempt"):]))]
    parts = [p for p in parts if len(p) and "step" in p.columns]
    if not parts:
        return
    merged = pd.concat(parts, ignore_index=True)
    merged = merged.groupby("step", as_index=False).last().sort_values("step")
    merged.to_csv(run_dir / "metrics.csv", index=False)


def _step_of(ckpt: Path) -> int:
    try:
        return int(torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"])
    except (OSError, KeyError, RuntimeError):
        return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench pretrain [--scale demo] [--method semisupcon] [key=value …] [--resume DIR]``."""
    import argparse

    import yaml

    from ..config import METHODS, SCALES, resolve_config

    ap = argparse.ArgumentParser(prog="workbench pretrain", description=main.__doc__)
    ap.add_argument("--scale", default="demo", choices=sorted(SCALES))
    ap.add_argument("--method", default="semisupcon", choices=sorted(METHODS))
    ap.add_argument("--resume", help="an unfinished run directory to continue from its last checkpoint")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("overrides", nargs="*", help="config overrides as key=value (YAML values), e.g. b_s=0.5")
    args = ap.parse_args(argv)
    if args.resume:
        run_dir = pretrain(resume=args.resume, progress=not args.no_progress)
    else:
        overrides = {}
        for item in args.overrides:
            if "=" not in item:
                ap.error(f"override {item!r} is not key=value")
            key, value = item.split("=", 1)
            overrides[key] = yaml.safe_load(value)
        run_dir = pretrain(resolve_config(args.scale, args.method, **overrides), progress=not args.no_progress)
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
