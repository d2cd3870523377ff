"""Semi-supervised batches (GUIDE 2.1): floor(B*b_s) labelled clips + the rest unlabelled.

* ``labeled_subset`` applies p ONCE: a seeded subset of the labelled training set whose
  ids are written next to the run (the reference code applied it twice, giving p^2).
* ``PretrainPool`` joins the labelled subset (rows ``0..n_labeled-1``) and the unlabelled
  pool (the rest).  When the support task and the pool share a data set, support rows
  outside the subset stay in the pool as unlabelled rows (and subset rows are removed
  from it, so no clip is both).
* ``SemiSupervisedBatchSampler`` yields index lists, one per step, drawing each part from
  its own reshuffled permutation; seeded by (seed, rank, epoch) so that each device of a
  multi-device run draws its own batch.
* ``PretrainDataset`` turns an index into ``{"views", "sample_id", "labels"}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from ..audio import AudioError, warn_skipped
from ..distributed import get_rank
from .views import ClipReader, crop_views

__all__ = ["labeled_subset", "PretrainPool", "build_pool", "SemiSupervisedBatchSampler", "PretrainDataset",
           "labels_to_multihot", "labeled_per_batch"]

#: How often a clip that fails to decode is replaced by another before giving up.
MAX_READ_RETRIES = 10


def labeled_per_batch(batch_size: int, b_s: float) -> int:
    """Labelled clips in a batch of ``batch_size``: ``floor(batch_size * b_s)`` (the one place it is computed)."""
    return int(math.floor(batch_size * b_s))


def labeled_subset(train: pd.DataFrame, p: float, seed: int) -> pd.DataFrame:
    """The seeded fraction ``p`` of the labelled training rows (at least one row)."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p}")
    n = len(train)
    if n == 0:
        raise ValueError("the support task has no training rows")
    k = n if p >= 1.0 else max(1, int(round(p * n)))
    order = np.random.default_rng(seed).permutation(n)[:k]
    return train.iloc[np.sort(order)].reset_index(drop=True)


def labels_to_multihot(targets, n_classes: int) -> np.ndarray:
    """Manifest targets (int or list of ints) → float32 multi-hot [n, n_classes]."""
    out = np.zeros((len(targets), n_classes), dtype=np.float32)
    for i, t in enumerate(targets):
        if t is None:
            continue
        idx = [t] if isinstance(t, (int, np.integer)) else list(t)
        out[i, idx] = 1.0
    return out


@dataclass
class PretrainPool:
    """Rows ``0..n_labeled-1`` are labelled (multi-hot ``labels``), the rest unlabelled."""

    frame: pd.DataFrame  # id, path, role, task
    labels: np.ndarray  # [n_rows, n_classes] float32; zero rows for unlabelled clips
    classes: list[str]
    n_labeled: int

    @property
    def n_unlabeled(self) -> int:
        return len(self.frame) - self.n_labeled

    def write(self, splits_dir: str | Path) -> None:
        """Write every clip the run may use, and the labelled subset's ids."""
        splits_dir = Path(splits_dir)
        splits_dir.mkdir(parents=True, exist_ok=True)
        self.frame.to_csv(splits_dir / "pretrain_pool.csv", index_label="index")
        labeled = self.frame.iloc[: self.n_labeled]
        (splits_dir / "labeled_ids.txt").write_text("".join(f"{i}\n" for i in labeled["id"]))


def build_pool(support: str | None, unlabeled: str | None, *, p: float, b_s: float, seed: int,
               support_root=None, unlabeled_root=None) -> PretrainPool:
    """Assemble the pretraining pool from the data API (training splits only)."""
    from .. import data

    frames, labels, classes = [], None, []
    n_labeled = 0
    labeled_paths: set[str] = set()
    if support is not None and b_s > 0:
        spec = data.task(support, support_root)
        if spec.kind not in ("multiclass", "multilabel"):
            raise ValueError(f"support task {support} under {data.data_root(support, support_root).path} is "
                             f"{spec.kind}: a support set needs labels (a folder task needs its labels CSV), "
                             "or set b_s=0 for self-supervision")
        train = data.manifest(support, support_root)
        train = train[train["split"] == "train"]
        subset = labeled_subset(train, p, seed)
        classes = list(spec.classes)
        labels = labels_to_multihot(list(subset["target"]), len(classes))
        n_labeled = len(subset)
        labeled_paths = set(subset["path"])
        frames.append(subset[["id", "path"]].assign(role="labeled", task=support))
    if unlabeled is not None and b_s < 1:
        pool = data.manifest(unlabeled, unlabeled_root)
        pool = pool[(pool["split"] == "train") & ~pool["path"].isin(labeled_paths)]
        frames.append(pool[["id", "path"]].assign(role="unlabeled", task=unlabeled))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["id", "path", "role", "task"])
    n_rows = len(frame)
    full = np.zeros((n_rows, len(classes)), dtype=np.float32)
    if labels is not None:
        full[:n_labeled] = labels
    return PretrainPool(frame, full, classes, n_labeled)


class SemiSupervisedBatchSampler(Sampler[list[int]]):
    """``steps`` batches of ``floor(B*b_s)`` labelled + ``B - floor(B*b_s)`` unlabelled indices."""

    def __init__(self, n_labeled: int, n_unlabeled: int, batch_size: int, b_s: float, steps: int,
                 seed: int = 0, rank: int | None = None, start_step: int = 0):
        self.n_lab_batch = labeled_per_batch(batch_size, b_s)
        self.n_unl_batch = batch_size - self.n_lab_batch
        if self.n_lab_batch and n_labeled == 0:
            raise ValueError("b_s > 0 but the labelled set is empty")
        if self.n_unl_batch and n_unlabeled == 0:
            raise ValueError(f"{self.n_unl_batch} unlabelled clips per batch requested but the unlabelled pool "
                             "is empty: set b_s=1 or give an unlabeled task")
        self.n_labeled, self.n_unlabeled = n_labeled, n_unlabeled
        self.batch_size, self.steps, self.seed = batch_size, steps, seed
        self._rank = rank
        self.start_step = int(start_step)  # a resumed run draws new batches, not its first ones again
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    @staticmethod
    def _stream(rng: np.random.Generator, n: int):
        while True:
            yield from rng.permutation(n)

    def __iter__(self):
        rank = get_rank() if self._rank is None else self._rank
        rng = np.random.default_rng([self.seed, rank, self.epoch, self.start_step])
        self.epoch += 1
        lab = self._stream(rng, self.n_labeled) if self.n_lab_batch else None
        unl = self._stream(rng, self.n_unlabeled) if self.n_unl_batch else None
        for _ in range(self.steps):
            batch = [int(next(lab)) for _ in range(self.n_lab_batch)]
            batch += [self.n_labeled + int(next(unl)) for _ in range(self.n_unl_batch)]
            yield batch


class PretrainDataset(Dataset):
    """Index → ``{"views": [N, T] float32, "sample_id": int, "labels": [C] float32, "labeled": bool}``."""

    def __init__(self, pool: PretrainPool, reader: ClipReader, *, n_views: int, clip_samples: int,
                 strategy: str, readers: dict[str, ClipReader] | None = None, min_db: float | None = None):
        self.pool, self.reader = pool, reader
        self.min_db = min_db  # views quieter than this (dBFS) are redrawn (crop_views)
        self.readers = readers or {}
        self.paths = pool.frame["path"].tolist()
        self.tasks = pool.frame["task"].tolist()
        self.n_views, self.clip_samples, self.strategy = n_views, clip_samples, strategy
        self.failures: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def _rng(self) -> np.random.Generator:
        # torch's per-worker RNG is seeded by Lightning's seed_everything(workers=True)
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def __getitem__(self, index: int) -> dict:
        rng = self._rng()
        tried = index
        for _ in range(MAX_READ_RETRIES):
            path = self.paths[tried]
            reader = self.readers.get(self.tasks[tried], self.reader)
            try:
                views = crop_views(reader, path, self.n_views, self.clip_samples, self.strategy, rng,
                                   min_db=self.min_db)
                break
            except AudioError as exc:
                if path not in self.failures:
                    self.failures[path] = str(exc)
                    warn_skipped(exc, "clip")
                lo, hi = (0, self.pool.n_labeled) if tried < self.pool.n_labeled else (self.pool.n_labeled,
                                                                                       len(self.paths))
                tried = int(rng.integers(lo, hi))
        else:
            raise AudioError(f"{MAX_READ_RETRIES} clips in a row failed to decode (last: {path}); "
                             "check the data set (see warnings above)")
        return {
            "views": torch.from_numpy(np.ascontiguousarray(views, dtype=np.float32)),
            "sample_id": tried,
            "labels": torch.from_numpy(self.pool.labels[tried]),
            "labeled": tried < self.pool.n_labeled,
        }
