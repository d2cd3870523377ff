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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn as nn
import yaml
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from .. import runs
from ..augment import build_chain
from ..config import ConfigError
from ..data.msa import (DEFAULT_MASK_BANDS, DEFAULT_MASK_FRAMES, DEFAULT_MAX_SHIFT_S, DEFAULT_MIN_SHIFT_S,
                        DEFAULT_SILENCE_DB, DEFAULT_STEM_TRIES, PAIRS, SILENCE_MODES, STEM_SAMPLING,
                        MSABatchSampler, MSAPairDataset, MSAPool, stem_pool)
from ..data.views import CachedReader, FileReader
from ..distributed import gather
from ..losses import bilinear_contrastive_loss, msa_candidates, msa_contrastive_loss
from ..models import ENCODER_PRESETS, ENCODERS, build_encoder
from ..models.cola import BilinearSimilarity
from .pretrain import NonFiniteLossError, _merge_metrics, _step_of, build_trainer

__all__ = ["COLAConfig", "COLA_SCALES", "HEADS", "COLAModule", "NonFiniteLossError", "build_msa_dataloader",
           "load_cola_config", "projection_head", "random_init_checkpoint", "resolve_cola_config", "train_cola",
           "main"]

#: COLA/MSA audio: 16 kHz, 1 s training segments.
COLA_SAMPLE_RATE = 16000
COLA_CLIP_SAMPLES = COLA_SAMPLE_RATE  # 1 s
#: Smoke scale: 0.25 s crops, 32 mel bands, 20 ms hop (EfficientNet-B0 still sees a 32 x 13 image).
SMOKE_CLIP_SAMPLES = COLA_SAMPLE_RATE // 4
SMOKE_ENCODER = {"name": "cola", "n_mels": 32, "hop_s": 0.02, "out_dim": 32}
#: Demo scale: 0.5 s crops and 32 mel bands (10 ms hop): a 32 x 51 image, ~10x cheaper than the
#: paper's 64 x 101 on a CPU; the rest of the recipe is the paper's.
DEMO_CLIP_SAMPLES = COLA_SAMPLE_RATE // 2
DEMO_ENCODER = {"name": "cola", "n_mels": 32}
#: COLA uses no temperature (the bilinear scores are used as logits): the original COLA recipe
#: (head="cola", normalize=False, bilinear_init_std=0.05, temperature=1).
COLA_TEMPERATURE = 1.0
#: Our default on L2-normalised projections (identity-initialised W): the cosine scale of
#: NT-Xent.  The poster gives no temperature (docs/method.md, departures).
MSA_TEMPERATURE = 0.1
#: Batches run (no gradient) to set BatchNorm statistics of a random-init reference checkpoint.
CALIBRATION_BATCHES = 16
#: MSA: Adam lr 1e-3, halved at 5 000 of 10 000 steps, batch 128.
PAPER_LR = 1e-3
PAPER_STEPS = 10_000
PAPER_BATCH = 128
PAPER_LR_MILESTONE = 5_000
LR_GAMMA = 0.5
#: Heads between the encoder output and the bilinear similarity (:func:`projection_head`).
HEADS = ("cola", "msa", "linear")
#: COLA's bilinear weight initialiser: Keras ``random_normal`` (mean 0, std 0.05).
BILINEAR_INIT_STD = 0.05


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


@dataclass
class COLAConfig:
    """Configuration of a COLA-MSA pretraining run (every field can be overridden)."""

    name: str = "cola-msa"
    scale: str = "demo"
    # data
    pool: str = "fma_medium"  # any unlabelled task whose manifest has stems
    pool_root: str | None = None
    pool_splits: list = field(default_factory=lambda: ["train"])
    stems: list | None = None  # restrict to these stem names (e.g. ["drums"]); None = all
    pairs: str = "source"  # positive: "source" (MSA), "mix" (COLA: a second mix crop), "mask" (random soft mask)
    stem_sampling: str = "batch"  # "batch": one stem per batch (poster: homogeneity); "example": a stem per pair
    sample_rate: int = COLA_SAMPLE_RATE
    clip_samples: int = COLA_CLIP_SAMPLES
    min_shift_s: float = DEFAULT_MIN_SHIFT_S
    max_shift_s: float = DEFAULT_MAX_SHIFT_S  # the stem crop starts within ± this of the mix crop
    time_shift: bool = True  # False: the positive crop is aligned with the mix crop (ablation)
    silence_db: float | None = DEFAULT_SILENCE_DB  # stem crops below this RMS (dBFS) are silent
    silence: str = "replace"  # silent stem crops: "replace" (zeros, poster), "skip" (redraw), "keep"
    stem_tries: int = DEFAULT_STEM_TRIES
    mask_bands: int = DEFAULT_MASK_BANDS  # random soft masks (pairs="mask"): frequency bands ...
    mask_frames: int = DEFAULT_MASK_FRAMES  # ... x time cells of the uniform mask grid
    # model
    encoder: dict = field(default_factory=lambda: {"name": "cola"})
    head: str = "linear"  # "linear" (poster: linear projections), "msa", "cola" (COLA's LayerNorm + tanh)
    proj_dim: int | None = None  # similarity space size (None: the encoder's out_dim; "cola" head: None)
    normalize: bool = True  # L2-normalise the projections before the bilinear similarity
    bilinear_init_std: float | None = None  # None: W = identity; COLA: W ~ N(0, 0.05²)
    temperature: float = MSA_TEMPERATURE
    centroid: bool = True  # silent positives enter the loss as their centroid (poster); False: each one
    # augmentation (none in MSA: the pair itself is the view)
    augment: str | None = None  # an augment.PRESETS name, applied to mix and stem crops on the device
    severity: float = 1.0
    # optimisation
    batch_size: int = 64  # pairs per device per step
    steps: int = 600
    lr: float = PAPER_LR
    lr_milestones: list = field(default_factory=list)  # steps at which lr is multiplied by lr_gamma
    lr_gamma: float = LR_GAMMA
    weight_decay: float = 0.0
    grad_clip: float | None = None
    precision: str = "auto"
    # hardware
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    sync_batchnorm: bool = False
    num_workers: int = 2
    compile: bool = False
    # bookkeeping
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 100
    runs_dir: str = "runs"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def validate(self) -> "COLAConfig":
        """Check every field; raise :class:`ConfigError` naming the field and the allowed values."""
        from ..augment import PRESETS
        from ..data.tasks import TASKS

        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"invalid {name}={getattr(self, name)!r}: {why}")

        if self.scale not in COLA_SCALES:
            raise bad("scale", f"choose one of {sorted(COLA_SCALES)}")
        if self.pool not in TASKS:
            import difflib

            close = difflib.get_close_matches(str(self.pool), TASKS, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise bad("pool", f"unknown task{hint}; known: {', '.join(sorted(TASKS))}")
        if TASKS[self.pool].kind != "unlabeled":
            unl = sorted(n for n, t in TASKS.items() if t.kind == "unlabeled")
            raise bad("pool", f"MSA pretrains on an unlabelled pool with stems; choose one of {unl}")
        if not isinstance(self.pool_splits, (list, tuple)) or not self.pool_splits or \
                not set(self.pool_splits) <= {"train", "valid", "test"}:
            raise bad("pool_splits", "a non-empty list drawn from ['train', 'valid', 'test']")
        if self.stems is not None and (not isinstance(self.stems, (list, tuple)) or not self.stems
                                       or not all(isinstance(s, str) for s in self.stems)):
            raise bad("stems", "None (all stems) or a non-empty list of stem names, e.g. ['drums', 'bass']")
        if self.stem_sampling not in STEM_SAMPLING:
            raise bad("stem_sampling", f"choose one of {list(STEM_SAMPLING)}")
        if self.pairs not in PAIRS:
            raise bad("pairs", f"choose one of {list(PAIRS)} (source: MSA, mix: COLA, mask: random soft masking)")
        if self.silence not in SILENCE_MODES:
            raise bad("silence", f"choose one of {list(SILENCE_MODES)} (replace: poster, skip: redraw)")
        for key in ("time_shift", "normalize", "centroid"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, "true or false")
        if self.pairs == "mix" and not self.time_shift:
            raise bad("time_shift", "pairs='mix' without a shift makes the two crops identical")
        if self.proj_dim is not None and (isinstance(self.proj_dim, bool) or not isinstance(self.proj_dim, int)
                                          or self.proj_dim < 1):
            raise bad("proj_dim", "None (the encoder's out_dim) or a positive integer")
        if self.head == "cola" and self.proj_dim is not None:
            raise bad("proj_dim", "the 'cola' head (LayerNorm + tanh) keeps the encoder's out_dim: set proj_dim=None "
                                  "or head='msa' (Linear + LayerNorm + tanh)")
        if self.bilinear_init_std is not None and not self.bilinear_init_std > 0:
            raise bad("bilinear_init_std", "None (identity W) or a positive standard deviation")
        for key in ("batch_size", "steps", "sample_rate", "clip_samples", "log_every",
                    "checkpoint_every", "stem_tries", "mask_bands", "mask_frames"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(key, "must be a positive integer")
        if self.batch_size < 2:
            raise bad("batch_size", "in-batch negatives need at least 2 pairs per batch")
        if self.min_shift_s < 0 or self.max_shift_s < self.min_shift_s:
            raise ConfigError(f"invalid min_shift_s={self.min_shift_s!r}, max_shift_s={self.max_shift_s!r}: "
                              "need 0 <= min_shift_s <= max_shift_s (seconds)")
        if self.silence_db is not None and not isinstance(self.silence_db, (int, float)):
            raise bad("silence_db", "a level in dBFS (e.g. -50) or None to accept silent stem crops")
        if self.head not in HEADS:
            raise bad("head", f"choose one of {list(HEADS)}")
        if self.temperature <= 0:
            raise bad("temperature", "must be > 0")
        if self.lr <= 0:
            raise bad("lr", "must be > 0")
        if self.weight_decay < 0:
            raise bad("weight_decay", "must be >= 0")
        if not isinstance(self.lr_milestones, (list, tuple)) or \
                any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in self.lr_milestones):
            raise bad("lr_milestones", "a list of positive step numbers, e.g. [5000]")
        if not 0 < self.lr_gamma <= 1:
            raise bad("lr_gamma", "must be in (0, 1]")
        if self.augment is not None and self.augment not in PRESETS:
            raise bad("augment", f"None (MSA) or one of {sorted(PRESETS)}")
        if self.severity < 0:
            raise bad("severity", "must be >= 0")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise bad("grad_clip", "None or > 0")
        if not isinstance(self.encoder, dict) or "name" not in self.encoder:
            raise bad("encoder", "a dict with at least a 'name' (see workbench.models.ENCODERS)")
        if self.encoder["name"] not in ENCODERS and self.encoder["name"] not in ENCODER_PRESETS:
            raise bad("encoder", f"unknown encoder name; choose from {sorted(ENCODERS)} or "
                                 f"{sorted(ENCODER_PRESETS)}")
        for key in ("sample_rate", "clip_samples"):
            if key in self.encoder and int(self.encoder[key]) != int(getattr(self, key)):
                raise ConfigError(f"invalid encoder[{key!r}]={self.encoder[key]!r}: the encoder must run at the "
                                  f"data's {key}={getattr(self, key)}; drop it from encoder= or set {key}=")
        return self


#: Scale defaults.  ``smoke``: seconds on a CPU (tests); ``demo``: minutes on a laptop with
#: the embedded benchmark; ``paper``: the MSA paper's setup on a GPU.
COLA_SCALES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        sample_rate=COLA_SAMPLE_RATE, clip_samples=SMOKE_CLIP_SAMPLES, encoder=dict(SMOKE_ENCODER),
        max_shift_s=1.0, batch_size=4, steps=4, lr=PAPER_LR, log_every=1, checkpoint_every=2, num_workers=0,
    ),
    "demo": dict(
        sample_rate=COLA_SAMPLE_RATE, clip_samples=DEMO_CLIP_SAMPLES, encoder=dict(DEMO_ENCODER),
        max_shift_s=DEFAULT_MAX_SHIFT_S, batch_size=32, steps=400, lr=PAPER_LR,
        lr_milestones=[200], log_every=10, checkpoint_every=100, num_workers=2,
    ),
    "paper": dict(
        sample_rate=COLA_SAMPLE_RATE, clip_samples=COLA_CLIP_SAMPLES, encoder={"name": "cola"},
        max_shift_s=DEFAULT_MAX_SHIFT_S, batch_size=PAPER_BATCH, steps=PAPER_STEPS,
        lr=PAPER_LR, lr_milestones=[PAPER_LR_MILESTONE], lr_gamma=LR_GAMMA, log_every=50, checkpoint_every=1_000,
        num_workers=8,
    ),
}


def resolve_cola_config(scale: str = "demo", **overrides: Any) -> COLAConfig:
    """Dataclass defaults < scale < overrides, then validated.

    The encoder dict records the sample rate and clip length it is trained at (read back
    by :func:`workbench.models.load_encoder` and :func:`workbench.embed.extract`).
    """
    if scale not in COLA_SCALES:
        raise ConfigError(f"invalid scale={scale!r}: choose one of {sorted(COLA_SCALES)}")
    known = {f.name for f in dataclasses.fields(COLAConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        import difflib

        hints = []
        for u in unknown:
            close = difflib.get_close_matches(u, known, n=1)
            hints.append(f"{u} (did you mean {close[0]}?)" if close else u)
        raise ConfigError(f"unknown COLA config field(s): {', '.join(hints)}")
    values: dict[str, Any] = {**COLA_SCALES[scale], **overrides, "scale": scale}
    values["encoder"] = {**values.get("encoder", {"name": "cola"})}
    sample_rate = values.get("sample_rate", COLA_SAMPLE_RATE)
    clip_samples = values.get("clip_samples", COLA_CLIP_SAMPLES)
    values["encoder"].setdefault("sample_rate", sample_rate)
    values["encoder"].setdefault("clip_samples", clip_samples)
    if "name" not in overrides:
        targeted = values.get("stems")
        values["name"] = "cola-msa" if not targeted else f"cola-msa-{'+'.join(targeted)}"
    return COLAConfig(**values).validate()


def load_cola_config(path: str | Path) -> COLAConfig:
    """Read a saved ``config.yaml`` back (unknown keys are an error)."""
    data = yaml.safe_load(Path(path).read_text())
    known = {f.name for f in dataclasses.fields(COLAConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown COLA config field(s) {unknown}; was it written by another version?")
    return COLAConfig(**data).validate()


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
        if not torch.isfinite(loss):
            self._on_non_finite(loss)
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

    def _on_non_finite(self, loss: torch.Tensor) -> None:
        run_dir = Path(self.trainer.default_root_dir)
        if all(torch.isfinite(p).all() for p in self.parameters()):
            path = run_dir / "checkpoints" / "last-good.ckpt"
            self.trainer.save_checkpoint(path)
            where = f" The last good state (weights before step {self.global_step}) is in {path}."
        else:
            where = (f" Weights are already non-finite; resume from the last periodic checkpoint in "
                     f"{run_dir}/checkpoints.")
        raise NonFiniteLossError(
            f"loss became {loss.item()} at step {self.global_step}.{where} Lower lr (now {self.cfg.lr}), "
            "enable grad_clip, raise temperature, or use precision='32-true'.")

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        if not self.cfg.lr_milestones:
            return opt
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(self.cfg.lr_milestones),
                                                     gamma=self.cfg.lr_gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}


class _Throughput(Callback):
    """Logs pairs/s and the mean seconds per step since the first step of this attempt."""

    def __init__(self):
        self.t0, self.pairs, self.steps = None, 0, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.t0 is None:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.pairs += batch["mix"].shape[0]
        self.steps += 1
        dt = time.perf_counter() - self.t0
        if dt > 0:
            module.log_dict({"pairs_per_s": self.pairs / dt, "s_per_step": dt / self.steps}, on_step=True,
                            on_epoch=False, prog_bar=True, batch_size=1)


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


# --------------------------------------------------------------------------- training
def train_cola(config: COLAConfig | None = None, *, resume: str | Path | None = None,
               progress: bool = True) -> Path:
    """Train one COLA-MSA model; returns its run directory.  ``resume`` = an unfinished run directory.

    The run directory holds ``config.yaml``, ``splits/`` (the pool's ids and stems),
    ``data.json``, ``env.json``, ``metrics.csv`` (every logged step), ``metrics.json`` and
    ``FINISHED`` once done, and ``checkpoints/`` (every ``checkpoint_every`` steps and
    ``last.ckpt``).
    """
    if resume is not None:
        run_dir = Path(resume)
        ckpt = runs.resume_checkpoint(run_dir)
        config = load_cola_config(run_dir / "config.yaml")
        pool = _pool(config)
    else:
        if config is None:
            raise ValueError("train_cola() needs a config or resume=RUN_DIR")
        config.validate()
        pool = _pool(config)  # fails (no stems) before a run directory is made
        run_dir = runs.new_run_dir(config.runs_dir, config.name)
        config.save(run_dir / "config.yaml")
        ckpt = None
    runs.write_env(run_dir)
    runs.write_json(run_dir / "data.json", _data_record(config, pool))
    start_step = _step_of(ckpt) if ckpt else 0
    # a resumed run reseeds (crops and batches) so that it does not replay its first steps
    L.seed_everything(config.seed + start_step, workers=True, verbose=False)
    loader = build_msa_dataloader(config, pool=pool, splits_dir=run_dir / "splits", start_step=start_step)
    module = COLAModule(config.to_dict())
    if config.compile:
        module.encoder = torch.compile(module.encoder)
    trainer = build_trainer(config, run_dir, _Throughput(), progress=progress)
    t0 = time.perf_counter()
    try:
        trainer.fit(module, train_dataloaders=loader, ckpt_path=str(ckpt) if ckpt else None)
    finally:
        if trainer.is_global_zero:
            _merge_metrics(run_dir)
    wall = time.perf_counter() - t0
    if trainer.global_step >= config.steps and trainer.is_global_zero:
        steps_run = max(trainer.global_step - start_step, 1)
        summary = {
            "steps": trainer.global_step, "wall_s": wall, "steps_run": steps_run,
            "s_per_step": wall / steps_run, "pairs_per_s": steps_run * config.batch_size / wall,
            "final": {k: float(v) for k, v in trainer.callback_metrics.items()},
            "checkpoint": str(run_dir / "checkpoints" / "last.ckpt"),
        }
        runs.write_json(run_dir / "metrics.json", summary)
        runs.mark_finished(run_dir, steps=trainer.global_step)
    return run_dir


def random_init_checkpoint(config: COLAConfig, path: str | Path,
                           calibration_batches: int = CALIBRATION_BATCHES) -> Path:
    """A checkpoint of the untrained model of ``config`` (the random-init reference of the probes).

    EfficientNet-B0 at init has BatchNorm running statistics of 0 / 1 while its activations
    are far smaller (depthwise convolutions with Kaiming fan-out init), so in eval mode an
    untrained encoder maps every input to the same vector.  The statistics are therefore
    set, without any gradient step, from ``calibration_batches`` MSA batches (cumulative
    average), exactly the data a trained model sees.  The file follows the training
    checkpoint layout (``hyper_parameters.config``, ``state_dict`` with ``encoder.``), so
    :func:`workbench.models.load_encoder` and :func:`workbench.probe.probe_task` read it.
    """
    config.validate()
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = COLAModule(config.to_dict())
    calib = dataclasses.replace(config, steps=int(calibration_batches), num_workers=0)
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the calibration batches
    module.train()
    with torch.no_grad():
        for batch in build_msa_dataloader(calib):
            module.embed_pairs(batch)
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    module.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": {"config": config.to_dict()},
                "global_step": 0, "calibration_batches": int(calibration_batches)}, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench cola [--scale demo] [key=value …] [--resume DIR]``: COLA-MSA pretraining."""
    import argparse

    ap = argparse.ArgumentParser(prog="workbench cola", description=main.__doc__)
    ap.add_argument("--scale", default="demo", choices=sorted(COLA_SCALES))
    ap.add_argument("--resume", help="an unfinished run directory to continue from its last checkpoint")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("overrides", nargs="*", help="config overrides as key=value (YAML values), e.g. stems=[drums]")
    args = ap.parse_args(argv)
    if args.resume:
        if args.overrides:
            ap.error("--resume continues a run with its saved config.yaml; drop the overrides")
        run_dir = train_cola(resume=args.resume, progress=not args.no_progress)
    else:
        overrides = {}
        for item in args.overrides:
            if "=" not in item:
                ap.error(f"override {item!r} is not key=value")
            key, value = item.split("=", 1)
            overrides[key] = yaml.safe_load(value)
        run_dir = train_cola(resolve_cola_config(args.scale, **overrides), progress=not args.no_progress)
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
