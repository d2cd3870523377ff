"""SemiSupCon, SimCLR/CLMR and SupCon: one LightningModule and its data loader.

The data path is data → augment (on the device, batched, inside the training step) →
encoder → projection head → SemiSupCon loss on the *global* batch (z, sample ids and
labels gathered across devices with gradient).  The run lifecycle (run directory, resume,
checkpoints, NaN guard, metrics) is :mod:`workbench.train.run`'s; :data:`METHOD` is this
method's entry in its registry.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from ..augment import build_chain
from ..config import PretrainConfig, load_config
from ..data.batches import PretrainDataset, SemiSupervisedBatchSampler, build_pool
from ..data.views import CachedReader, FileReader
from ..distributed import gather, global_sample_ids
from ..losses import semisupcon_loss_parts
from ..models import build_encoder
from ..models.heads import ProjectionHead
from .run import Method

__all__ = ["ContrastiveModule", "build_dataloader", "METHOD"]


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

    def step(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One batch through the chain, encoder, head and loss on the global batch.

        Returns ``(z, targets, loss, parts)``: the gathered projections ``z [M, D]``, the
        target matrix ``[M, M]``, the loss (with gradient) and its logged parts
        (:func:`workbench.losses.semisupcon_loss_parts`: ``ssl``, ``sl``; plus
        ``positive_fraction`` and the gathered ``sample_ids`` / ``labels``).
        """
        from ..losses import target_matrix

        x, ids, labels = self._rows(batch)
        x = self._augment(x, batch)
        z = self(x)
        z_all, ids_all = gather(z), gather(ids)
        labels_all = gather(labels) if labels.shape[1] else None
        parts = semisupcon_loss_parts(z_all, ids_all, labels_all, criterion=self.cfg.criterion,
                                      temperature=self.cfg.temperature)
        with torch.no_grad():
            targets = target_matrix(ids_all, labels_all, criterion=self.cfg.criterion)
        loss = parts.pop("loss")
        parts["positive_fraction"] = (targets > 0).float().mean()
        parts["sample_ids"], parts["labels"] = ids_all, labels_all
        return z_all, targets, loss, parts

    def training_step(self, batch: dict, batch_idx: int):
        _, _, loss, parts = self.step(batch)
        n = batch["views"].shape[0] * batch["views"].shape[1]  # this device's rows
        if self.global_step % self.cfg.log_every == 0:
            logged = {"loss_ssl": parts["ssl"], "positive_fraction": parts["positive_fraction"]}
            if parts["labels"] is not None:
                logged["loss_label"] = parts["sl"]
            self.log_dict({k: v.float() for k, v in logged.items()}, on_step=True, on_epoch=False, batch_size=n)
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=n)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)


def _pool(config: PretrainConfig):
    return build_pool(config.support, config.unlabeled, p=config.p, b_s=config.b_s, seed=config.seed,
                      support_root=config.support_root, unlabeled_root=config.unlabeled_root)


def build_dataloader(config: PretrainConfig, pool=None, splits_dir: Path | None = None,
                     start_step: int = 0) -> DataLoader:
    """The pretraining loader: semi-supervised batch sampler over the pool, views cropped in workers."""
    if pool is None:
        pool = _pool(config)
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


def _sources(config: PretrainConfig) -> list[tuple[str, str | None]]:
    """The tasks the pool draws clips from, with their roots: the support set when b_s > 0,
    the unlabelled pool when b_s < 1 (as :func:`workbench.data.batches.build_pool`)."""
    out = []
    if config.support is not None and config.b_s > 0:
        out.append((config.support, config.support_root))
    if config.unlabeled is not None and config.b_s < 1:
        out.append((config.unlabeled, config.unlabeled_root))
    return out


def _cached_readers(config: PretrainConfig) -> dict:
    """Decoded-audio caches for the pool's tasks, where ``workbench data prepare`` made one."""
    try:
        from ..data.cache import reader_for
    except ImportError:
        return {}
    readers = {}
    for name, root in _sources(config):
        cache = reader_for(name, root, config.sample_rate)
        if cache is not None:
            readers[name] = CachedReader(cache, config.sample_rate)
    return readers


def _data_record(config: PretrainConfig, pool=None) -> dict:
    from .. import data

    out = {}
    for role, name, root in (("support", config.support, config.support_root),
                             ("unlabeled", config.unlabeled, config.unlabeled_root)):
        if name is not None:
            out[role] = {"task": name, **data.data_root(name, root).to_dict()}
    return out


METHOD = Method(
    name="semisupcon", config=PretrainConfig, load=load_config, module=ContrastiveModule, prepare=_pool,
    loader=lambda config, pool, splits_dir, start_step: build_dataloader(config, pool, splits_dir, start_step),
    data_record=_data_record, rows=lambda config: config.batch_size * config.n_views, sources=_sources,
    unit="examples", command="pretrain",
)
