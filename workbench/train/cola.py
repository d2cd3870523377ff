"""COLA with music source association (MSA): the multi-source contrastive baseline (paper 004).

Data path: MSA pairs (:mod:`workbench.data.msa`: a mix crop and a time-shifted stem crop
of the same piece) → optional augmentation on the device → one shared encoder (COLA's
EfficientNet-B0 on log-mel, max-pool, Linear to 512 by default) → head (COLA: LayerNorm →
tanh) → bilinear similarity ``s(a, p) = aᵀ W p`` (W ~ N(0, 0.05²) as in COLA) between every mix (anchor) and every
stem (positive) of the *global* batch (gathered across devices with gradient) →
cross-entropy with the matching stem on the diagonal (:func:`workbench.losses.
bilinear_contrastive_loss`); the other pairs are the negatives.

Checkpoints follow the pretraining convention: ``hyper_parameters.config.encoder`` =
``{"name", **kwargs}`` and encoder weights under ``encoder.``, so
:func:`workbench.models.load_encoder`, :func:`workbench.embed.extract` and
:func:`workbench.probe.probe_task` read them unchanged.

    from workbench.train.cola import resolve_cola_config, train_cola
    run_dir = train_cola(resolve_cola_config("demo"))

CLI: ``python -m workbench cola [--scale demo] [key=value …] [--resume DIR]``.

Paper setup (``paper`` scale): 16 kHz, 64-band log-mel (25 ms window, 10 ms hop), 1 s
segments from 4 s excerpts (stem shifted by up to 3 s), batch 128, Adam lr 1e-3 halved
at 5 000 of 10 000 steps.  The poster gives no temperature: we keep COLA's (1).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import lightning as L
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from ..augment import build_chain
from ..config import (BILINEAR_INIT_STD, COLA_SCALES, COLA_TEMPERATURE, HEADS, COLAConfig,  # noqa: F401
                      ConfigError, load_cola_config, resolve_cola_config)
from ..data.msa import MSABatchSampler, MSAPairDataset, MSAPool, stem_pool
from ..data.views import CachedReader, FileReader
from ..distributed import gather
from ..losses import bilinear_contrastive_loss, msa_candidates, msa_contrastive_loss
from ..models import build_encoder
from ..models.cola import BilinearSimilarity
# scale constants live in workbench.scales; these names stay importable from here
from ..scales import COLA_CLIP_SAMPLES, COLA_SAMPLE_RATE  # noqa: F401
from ..scales import COLA_DEMO_CLIP_SAMPLES as DEMO_CLIP_SAMPLES, COLA_DEMO_ENCODER as DEMO_ENCODER  # noqa: F401
from ..scales import COLA_LR_GAMMA as LR_GAMMA, COLA_PAPER_BATCH as PAPER_BATCH  # noqa: F401
from ..scales import COLA_PAPER_LR as PAPER_LR, COLA_PAPER_LR_MILESTONE as PAPER_LR_MILESTONE  # noqa: F401
from ..scales import COLA_PAPER_STEPS as PAPER_STEPS  # noqa: F401
from ..scales import COLA_SMOKE_CLIP_SAMPLES as SMOKE_CLIP_SAMPLES, COLA_SMOKE_ENCODER as SMOKE_ENCODER  # noqa: F401
from .run import Method, NonFiniteLossError, fit

__all__ = ["COLAConfig", "COLA_SCALES", "HEADS", "COLAModule", "NonFiniteLossError", "build_msa_dataloader",
           "calibrate_batchnorm", "load_cola_config", "projection_head", "random_init_checkpoint",
           "resolve_cola_config", "train_cola", "main", "METHOD"]

#: Batches run (no gradient) to set BatchNorm statistics of a random-init reference checkpoint.
CALIBRATION_BATCHES = 16

def projection_head(kind: str, in_dim: int, out_dim: int | None = None) -> nn.Module:
    """The head ``kind`` (:data:`HEADS`) from the encoder output to the similarity space.

    ``cola``: ``LayerNorm → tanh`` on the encoder output (the official COLA network: its
    Dense layer is the last layer of our encoder), ``out_dim`` must be None or ``in_dim``;
    ``msa``: ``Linear(in, out) → LayerNorm → tanh`` (the MSA poster's "linear projections"
    of the embeddings); ``linear``: ``Linear(in, out)`` only.
    """
    if kind == "cola":
        if out_dim not in (None, in_dim):
            raise ValueError(f"projection_head: the 'cola' head keeps the encoder's {in_dim} dims; got out_dim="
                             f"{out_dim}. Use proj_dim=None, or head='msa' for a projection to {out_dim}.")
        return nn.Sequential(nn.LayerNorm(in_dim), nn.Tanh())
    out_dim = in_dim if out_dim is None else out_dim
    if kind == "msa":
        return nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.Tanh())
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    raise ValueError(f"projection_head: unknown head {kind!r}; choose one of {HEADS}.")


# --------------------------------------------------------------------------- module
class COLAModule(L.LightningModule):
    """Shared encoder + projection head + bilinear similarity, trained on MSA pairs."""

    def __init__(self, config: dict):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.cfg = COLAConfig(**config)
        enc_kwargs = dict(self.cfg.encoder)
        self.encoder = build_encoder(enc_kwargs.pop("name"), **enc_kwargs)
        if int(self.encoder.clip_samples) != self.cfg.clip_samples:
            raise ConfigError(f"invalid encoder: it declares clip_samples={self.encoder.clip_samples} but the data "
                              f"crops {self.cfg.clip_samples} samples")
        self.head = projection_head(self.cfg.head, self.encoder.out_dim, self.cfg.proj_dim)
        self.similarity = BilinearSimilarity(self.cfg.proj_dim or self.encoder.out_dim)
        if self.cfg.bilinear_init_std is not None:
            nn.init.normal_(self.similarity.weight, mean=0.0, std=self.cfg.bilinear_init_std)
        self.augment = (build_chain(self.cfg.augment, sample_rate=self.cfg.sample_rate, severity=self.cfg.severity)
                        if self.cfg.augment else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, 1, T]`` → projected embeddings ``[B, proj_dim]`` (L2-normalised if ``normalize``)."""
        z = self.head(self.encoder(x))
        return nn.functional.normalize(z, dim=1) if self.cfg.normalize else z

    def pair_loss(self, anchor: torch.Tensor, positive: torch.Tensor,
                  silent: torch.Tensor | None = None) -> torch.Tensor:
        """The MSA loss over ``S_ij = a_i W z_j / τ``, ``z`` in ``S*`` (silent positives as their centroid).

        Nothing silent (or ``silent`` None): cross-entropy with the positives on the diagonal
        (:func:`workbench.losses.bilinear_contrastive_loss`).
        """
        if silent is None or not bool(silent.any()):
            return bilinear_contrastive_loss(anchor, positive, self.similarity, temperature=self.cfg.temperature)
        return msa_contrastive_loss(anchor, positive, self.similarity, silent, temperature=self.cfg.temperature,
                                    centroid=self.cfg.centroid)

    def embed_pairs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected mix (anchor) and stem (positive) embeddings of a batch, one encoder pass."""
        mix, stem = batch["mix"], batch["stem"]
        b = mix.shape[0]
        x = torch.cat([mix, stem]).unsqueeze(1)  # [2B, 1, T]
        if self.augment is not None:
            with torch.no_grad():
                x = self.augment(x)
        z = self(x)
        return z[:b], z[b:]

    def training_step(self, batch: dict, batch_idx: int):
        anchor, positive = self.embed_pairs(batch)
        anchor_all, positive_all = gather(anchor), gather(positive)
        silent = batch.get("silent")
        silent_all = gather(silent.to(anchor.device)).bool() if silent is not None else None
        loss = self.pair_loss(anchor_all, positive_all, silent_all)
        n = anchor_all.shape[0]
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=n)
        if self.global_step % self.cfg.log_every == 0:
            with torch.no_grad():
                cands, targets = msa_candidates(positive_all.detach(), silent_all,
                                                self.cfg.centroid and silent_all is not None)
                logits = self.similarity(anchor_all.detach(), cands)
                hits = (logits.argmax(1) == targets).float().mean()
                frac = silent_all.float().mean() if silent_all is not None else torch.tensor(0.0)
            self.log_dict({"pair_accuracy": hits, "chance_accuracy": torch.tensor(1.0 / cands.shape[0]),
                           "silent_fraction": frac,
                           "lr": torch.tensor(self.trainer.optimizers[0].param_groups[0]["lr"])},
                          on_step=True, on_epoch=False, batch_size=n)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        if not self.cfg.lr_milestones:
            return opt
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(self.cfg.lr_milestones),
                                                     gamma=self.cfg.lr_gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}


# --------------------------------------------------------------------------- data
def _pool(config: COLAConfig) -> MSAPool:
    return stem_pool(config.pool, config.pool_root, splits=config.pool_splits, stems=config.stems)


def _reader(config: COLAConfig):
    """The decoded cache of the pool (mixes and stems) when prepared at this rate, else the files."""
    from ..data.cache import reader_for

    cache = reader_for(config.pool, config.pool_root, config.sample_rate)
    return CachedReader(cache, config.sample_rate) if cache is not None else FileReader(config.sample_rate)


def build_msa_dataloader(config: COLAConfig, pool: MSAPool | None = None, splits_dir: Path | None = None,
                         start_step: int = 0) -> DataLoader:
    """The MSA loader: ``steps`` batches of ``batch_size`` pairs, crops read in the workers.

    ``start_step``: the step a resumed run continues from (it reseeds the batch draws).
    """
    if pool is None:
        pool = _pool(config)
    if splits_dir is not None:
        pool.write(splits_dir)
    sr = config.sample_rate
    dataset = MSAPairDataset(pool, _reader(config), clip_samples=config.clip_samples,
                             min_shift=int(round(config.min_shift_s * sr)),
                             max_shift=int(round(config.max_shift_s * sr)),
                             silence_db=config.silence_db, stem_tries=config.stem_tries, silence=config.silence,
                             pairs=config.pairs, time_shift=config.time_shift, mask_bands=config.mask_bands,
                             mask_frames=config.mask_frames)
    # only stem positives have a source kind to hold constant within a batch
    stem_sampling = config.stem_sampling if config.pairs == "source" else "example"
    sampler = MSABatchSampler(pool, config.batch_size, config.steps, seed=config.seed,
                              stem_sampling=stem_sampling, start_step=start_step)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=config.num_workers,
                      persistent_workers=config.num_workers > 0, pin_memory=torch.cuda.is_available(),
                      multiprocessing_context="spawn" if config.num_workers > 0 else None)


def _data_record(config: COLAConfig, pool: MSAPool) -> dict:
    from .. import data

    return {"pool": {"task": config.pool, "splits": list(config.pool_splits), "pieces": len(pool),
                     "stems": pool.stem_names, **data.data_root(config.pool, config.pool_root).to_dict()}}


METHOD = Method(
    name="cola", config=COLAConfig, load=load_cola_config, module=COLAModule, prepare=_pool,
    loader=lambda config, pool, splits_dir, start_step: build_msa_dataloader(config, pool, splits_dir, start_step),
    data_record=_data_record, rows=lambda config: config.batch_size,
    sources=lambda config: [(config.pool, config.pool_root)], unit="pairs",
)


# --------------------------------------------------------------------------- training
def train_cola(config: COLAConfig | None = None, *, resume: str | Path | None = None,
               progress: bool = True, overrides: dict | None = None) -> Path:
    """Train one COLA-MSA model; returns its run directory.  ``resume`` = an unfinished run directory.

    The run directory holds ``config.yaml``, ``splits/`` (the pool's ids and stems),
    ``data.json``, ``env.json``, ``metrics.csv`` (every logged step), ``metrics.json`` and
    ``FINISHED`` once done, and ``checkpoints/`` (every ``checkpoint_every`` steps and
    ``last.ckpt``); the lifecycle is :func:`workbench.train.run.fit`'s.
    """
    if resume is None and config is None:
        raise ValueError("train_cola() needs a config or resume=RUN_DIR")
    return fit(METHOD, config, resume=resume, overrides=overrides, progress=progress,
               hint="raise temperature, ")


def calibrate_batchnorm(module: nn.Module, batches) -> nn.Module:
    """Set every BatchNorm's running statistics to the cumulative average over ``batches``.

    ``batches`` yields waveform tensors ``[B, 1, T]`` (or MSA batches: their mix and stem
    crops are used).  No gradient, no parameter changes; ``module`` is left in eval mode.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    module.train()
    with torch.no_grad():
        for batch in batches:
            x = torch.cat([batch["mix"], batch["stem"]]).unsqueeze(1) if isinstance(batch, dict) else batch
            module(x)
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    return module.eval()


def random_init_checkpoint(config: COLAConfig, path: str | Path,
                           calibration_batches: int = CALIBRATION_BATCHES) -> Path:
    """A checkpoint of the untrained model of ``config`` (the random-init reference of the probes).

    EfficientNet-B0 at init has BatchNorm running statistics of 0 / 1 while its activations
    are far smaller (depthwise convolutions with Kaiming fan-out init), so in eval mode an
    untrained encoder maps every input to the same vector.  The statistics are therefore
    set, without any gradient step, from ``calibration_batches`` MSA batches
    (:func:`calibrate_batchnorm`), the data a trained model sees.  The file follows the
    training checkpoint layout (``hyper_parameters.config``, ``state_dict`` with
    ``encoder.``), so :func:`workbench.models.load_encoder` and
    :func:`workbench.probe.probe_task` read it.
    """
    config.validate()
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = COLAModule(config.to_dict())
    calib = dataclasses.replace(config, steps=int(calibration_batches), num_workers=0)
    calibrate_batchnorm(module, build_msa_dataloader(calib))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": {"config": config.to_dict()},
                "global_step": 0, "calibration_batches": int(calibration_batches)}, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench cola [--scale demo] [key=value …] [--resume DIR]``: COLA-MSA pretraining."""
    from .cli import run_cli, trainer_parser

    ap = trainer_parser("workbench cola", main.__doc__, COLAConfig, "cola")
    ap.add_argument("--scale", default="demo", choices=sorted(COLA_SCALES))
    args = ap.parse_args(argv)
    return run_cli(ap, args, cls=COLAConfig, load=load_cola_config, train=train_cola,
                   resolve=lambda a, overrides: resolve_cola_config(a.scale, **overrides))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
