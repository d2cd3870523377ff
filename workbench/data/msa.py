"""Music source association (MSA) pairs: a mix excerpt and a time-shifted stem of the same piece.

Garoufis, Zlatintsi & Maragos, "Multi-source contrastive learning for musical audio"
(paper 004): each positive pair is an excerpt of a piece's mix and an excerpt of one of
its sources (bass, drums, vocals/melody, accompaniment), the source excerpt shifted in
time against the mix excerpt; the other pairs of the batch are the negatives.

For a row with mix ``m`` and a chosen stem ``s`` (both resampled to ``sample_rate``,
usable length ``L = min(len(m), len(s))`` samples) and a crop of ``T`` samples::

    delta ~ ± U{lo .. hi},  hi = min(max_shift, L - T),  lo = min(min_shift, hi)
    t     ~ U{max(0, -delta) .. L - T - max(0, delta)}     (both crops lie inside the piece)
    mix crop  = m[t : t + T]
    stem crop = s[t + delta : t + delta + T]

The paper crops 1 s segments out of 4 s excerpts, so the shift is at most 3 s
(:data:`DEFAULT_MAX_SHIFT_S`); ``time_shift=False`` (the poster's "no time shift"
ablation) aligns the two crops (``delta = 0``).

What the positive is (``pairs``, :data:`PAIRS`):

* ``"source"`` (MSA): the stem crop above;
* ``"mix"`` (COLA): a second crop of the mix itself, at ``t + delta``;
* ``"mask"`` (COLA + random soft masking): the mix crop at ``t + delta`` filtered by a
  random soft mask (:func:`random_soft_mask`): ``M`` is drawn uniform in [0, 1] on a coarse
  grid of ``mask_bands`` equal-width frequency bands x ``mask_frames`` time cells, bilinearly
  interpolated onto the STFT grid (512-point Hann window, hop 128) and applied as
  ``istft(M * stft(x))``: a "source" with no musical meaning, as the poster's control.

Silent stem crops (``silence``, :data:`SILENCE_MODES`; RMS below ``silence_db`` dBFS):

* ``"replace"`` (the poster): the crop becomes digital silence (zeros) and the item is
  marked ``silent``; the loss uses the centroid of the silent positives
  (:func:`workbench.losses.msa_contrastive_loss`);
* ``"skip"`` (our departure, kept as the "non-silent segments only" ablation): another
  stem and offset are drawn (up to ``stem_tries`` times, then another piece), so every
  positive carries signal;
* ``"keep"``: no check, quiet crops are used as they are.

Stem choice (``stem_sampling``): ``"example"`` draws a stem per pair; ``"batch"`` draws one
stem per batch (the poster's intra-batch source homogeneity) through
:class:`MSABatchSampler`, which then yields ``(row, stem)`` indices.  ``stems`` restricts
the stems used (e.g. ``["drums"]`` for a source-targeted model).

    pool = stem_pool("fma_medium")
    ds = MSAPairDataset(pool, FileReader(16000), clip_samples=16000, max_shift=48000)
    item = ds.pair(0, np.random.default_rng(0))   # mix, stem, mix_offset, stem_offset, ...
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from ..audio import AudioError
from ..audio import info as audio_info
from ..distributed import get_rank
from .views import ClipReader

__all__ = ["DEFAULT_MAX_SHIFT_S", "DEFAULT_MIN_SHIFT_S", "DEFAULT_SILENCE_DB", "DEFAULT_STEM_TRIES",
           "STEM_SAMPLING", "PAIRS", "SILENCE_MODES", "SOURCE_MIX", "SOURCE_MASK", "DEFAULT_MASK_BANDS",
           "DEFAULT_MASK_FRAMES", "random_soft_mask", "MSAPool", "MSAPairDataset", "MSABatchSampler", "stem_pool",
           "rms_db", "draw_offsets"]

#: The paper crops 1 s segments from 4 s excerpts: the stem moves at most 3 s against the mix.
DEFAULT_MAX_SHIFT_S = 3.0
#: Smallest |shift|; 0 allows aligned pairs.
DEFAULT_MIN_SHIFT_S = 0.0
#: Stem crops quieter than this RMS level (dBFS) are silent (replaced, skipped or kept: ``silence``).
DEFAULT_SILENCE_DB = -50.0
#: Stem/offset draws per piece before moving to another piece.
DEFAULT_STEM_TRIES = 8
#: Pieces tried (after a silent or unreadable one) before giving up.
MAX_ROW_RETRIES = 10
#: ``"example"``: a stem per pair; ``"batch"``: one stem for the whole batch.
STEM_SAMPLING = ("example", "batch")
#: What the positive of a mix crop is: a stem (MSA), the mix (COLA), a randomly masked mix.
PAIRS = ("source", "mix", "mask")
#: Silent stem crops: replaced by zeros and marked (poster), redrawn (departure), or kept.
SILENCE_MODES = ("replace", "skip", "keep")
#: ``stem_index`` of a positive that is not a stem: the mix itself, a masked mix.
SOURCE_MIX = -1
SOURCE_MASK = -2
#: Random soft masks: uniform values on this many frequency bands x time cells, interpolated.
DEFAULT_MASK_BANDS = 8
DEFAULT_MASK_FRAMES = 4
#: STFT of the soft masking (16 kHz: 32 ms window, 8 ms hop).
MASK_N_FFT = 512
MASK_HOP = 128
#: Floor added to the mean square before the log (dBFS of digital silence ≈ -200 dB).
_POWER_FLOOR = 1e-20


def rms_db(x: np.ndarray) -> float:
    """RMS level of ``x`` in dB relative to full scale (a full-scale sine is -3 dB)."""
    x = np.asarray(x, dtype=np.float64)
    return float(10.0 * np.log10(np.mean(x * x) + _POWER_FLOOR)) if x.size else float(10.0 * np.log10(_POWER_FLOOR))


def random_soft_mask(x: np.ndarray, rng: np.random.Generator, bands: int = DEFAULT_MASK_BANDS,
                     frames: int = DEFAULT_MASK_FRAMES) -> np.ndarray:
    """``x`` filtered by a random soft time-frequency mask (the "random soft masking" control).

    ``M ~ U[0, 1]`` on a ``bands x frames`` grid (equal-width frequency bands, equal time
    cells), bilinearly interpolated onto the STFT grid of ``x`` (:data:`MASK_N_FFT`-point Hann
    window, hop :data:`MASK_HOP`), then ``istft(M * stft(x))`` at the length of ``x``.
    """
    if bands < 1 or frames < 1:
        raise ValueError(f"random_soft_mask: bands and frames must be >= 1; got {bands}, {frames}.")
    wave = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    n_fft = min(MASK_N_FFT, max(16, 1 << (int(wave.numel()).bit_length() - 1)))
    hop = max(1, n_fft * MASK_HOP // MASK_N_FFT)
    window = torch.hann_window(n_fft)
    spec = torch.stft(wave, n_fft, hop_length=hop, window=window, return_complex=True)  # [F, N]
    grid = torch.from_numpy(rng.random((1, 1, bands, frames)).astype(np.float32))
    mask = torch.nn.functional.interpolate(grid, size=tuple(spec.shape), mode="bilinear", align_corners=True)[0, 0]
    out = torch.istft(spec * mask, n_fft, hop_length=hop, window=window, length=wave.numel())
    return out.numpy().astype(np.float32)


# --------------------------------------------------------------------------- pool
class MSAPool:
    """The pieces that have stems: ``frame`` with ``id``, ``path`` and ``stems`` (dict name → path)."""

    def __init__(self, frame: pd.DataFrame, task: str = "custom"):
        if frame.empty:
            raise ValueError("MSA needs stems: the pool is empty.")
        self.frame = frame.reset_index(drop=True)
        self.task = task
        self.stem_names: list[str] = sorted({s for d in self.frame["stems"] for s in d})

    def __len__(self) -> int:
        return len(self.frame)

    def rows_with(self, stem: str) -> np.ndarray:
        """Indices of the pieces that have ``stem``."""
        return np.array([i for i, d in enumerate(self.frame["stems"]) if stem in d], dtype=np.int64)

    def write(self, splits_dir: str | Path) -> None:
        """``msa_pool.csv`` (index, id, path, stems as JSON) and ``pool_ids.txt`` in ``splits_dir``."""
        splits_dir = Path(splits_dir)
        splits_dir.mkdir(parents=True, exist_ok=True)
        out = self.frame[["id", "path"]].copy()
        out["stems"] = [json.dumps(d, sort_keys=True) for d in self.frame["stems"]]
        out.to_csv(splits_dir / "msa_pool.csv", index_label="index")
        (splits_dir / "pool_ids.txt").write_text("".join(f"{i}\n" for i in self.frame["id"]))


def stem_pool(name: str, root: str | Path | None = None, splits: Sequence[str] = ("train",),
              stems: Sequence[str] | None = None) -> MSAPool:
    """The rows of task ``name`` (``splits`` only) that have stems, restricted to ``stems``.

    Raises ``ValueError("MSA needs stems: …")`` when the manifest has no ``stems`` column,
    when no row of the splits has stems, or when none has any of the requested stems.
    """
    from .. import data

    df = data.manifest(name, root)
    where = f"task {name!r} (data root {data.data_root(name, root).path})"
    if "stems" not in df.columns:
        raise ValueError(
            f"MSA needs stems: the manifest of {where} has no 'stems' column. Give each piece its stems "
            "(fma_medium layout: <3-digit folder>/<track id>.stems/{bass,drums,melody,accompaniment}.<ext>, "
            "e.g. separated with a source separation model) or use the embedded benchmark, which renders them.")
    bad = sorted(set(splits) - set(data.SPLITS))
    if bad:
        raise ValueError(f"MSA pool: unknown split(s) {bad}; choose from {data.SPLITS}.")
    df = df[df["split"].isin(list(splits))]
    has = df["stems"].map(lambda d: isinstance(d, dict) and len(d) > 0)
    if not has.any():
        raise ValueError(f"MSA needs stems: none of the {len(df)} pieces of {where} in split(s) {list(splits)} "
                         "has stems.")
    if (~has).any():
        warnings.warn(f"MSA pool: {int((~has).sum())} of {len(df)} pieces of {name} have no stems and are skipped.",
                      stacklevel=2)
    df = df[has]
    if stems is not None:
        wanted = set(stems)
        df = df.assign(stems=df["stems"].map(lambda d: {k: v for k, v in d.items() if k in wanted}))
        df = df[df["stems"].map(len) > 0]
        if df.empty:
            raise ValueError(f"MSA needs stems: no piece of {where} has any of the stems {sorted(wanted)}; check "
                             "the `stems` option against the stem names in the manifest.")
    return MSAPool(df[["id", "path", "stems"]], task=name)


# --------------------------------------------------------------------------- offsets
def draw_offsets(rng: np.random.Generator, length: int, clip_samples: int, min_shift: int,
                 max_shift: int) -> tuple[int, int]:
    """``(t, delta)``: mix crop start and stem shift (samples) with both crops inside ``length``.

    ``|delta|`` is uniform on ``[lo, hi]`` with ``hi = min(max_shift, length - clip_samples)``
    and ``lo = min(min_shift, hi)``, its sign is a fair coin; ``t`` is uniform over the
    starts where both crops fit.  A piece shorter than the crop gives ``(0, 0)``.
    """
    if min_shift < 0 or max_shift < min_shift:
        raise ValueError(f"draw_offsets: need 0 <= min_shift <= max_shift; got {min_shift}, {max_shift}.")
    avail = int(length) - int(clip_samples)
    if avail <= 0:
        return 0, 0
    hi = min(int(max_shift), avail)
    lo = min(int(min_shift), hi)
    magnitude = int(rng.integers(lo, hi + 1))
    delta = magnitude if magnitude == 0 or rng.random() < 0.5 else -magnitude
    t = int(rng.integers(max(0, -delta), avail - max(0, delta) + 1))
    return t, delta


# --------------------------------------------------------------------------- dataset
class MSAPairDataset(Dataset):
    """Index (or ``(index, stem)``) → an MSA pair.

    Items: ``{"mix": [T] float32, "stem": [T] float32 (the positive), "sample_id": row,
    "stem_index": index into pool.stem_names (:data:`SOURCE_MIX` / :data:`SOURCE_MASK` for the
    COLA / random-mask positives), "silent": whether the positive was replaced by silence,
    "mix_offset": t, "stem_offset": t + delta}`` (offsets in samples at the reader's rate).

    Args:
        pool: pieces with stems (:func:`stem_pool`).
        reader: reads windows (file or decoded cache) at the training sample rate.
        clip_samples: crop length T.
        min_shift / max_shift: ``|delta|`` range in samples.
        time_shift: False aligns mix and positive crops (``delta = 0``).
        silence_db: RMS level (dBFS) below which a stem crop is silent; None: never.
        silence: what a silent stem crop becomes (:data:`SILENCE_MODES`).
        stem_tries: draws per piece before moving to another piece (``silence="skip"``).
        pairs: what the positive is (:data:`PAIRS`).
        mask_bands / mask_frames: grid of the random soft masks (``pairs="mask"``).
    """

    def __init__(self, pool: MSAPool, reader: ClipReader, *, clip_samples: int, min_shift: int = 0,
                 max_shift: int = 0, silence_db: float | None = DEFAULT_SILENCE_DB,
                 stem_tries: int = DEFAULT_STEM_TRIES, silence: str = "skip", pairs: str = "source",
                 time_shift: bool = True, mask_bands: int = DEFAULT_MASK_BANDS,
                 mask_frames: int = DEFAULT_MASK_FRAMES):
        if clip_samples < 1:
            raise ValueError(f"MSAPairDataset: clip_samples must be >= 1; got {clip_samples}.")
        if min_shift < 0 or max_shift < min_shift:
            raise ValueError(f"MSAPairDataset: need 0 <= min_shift <= max_shift; got {min_shift}, {max_shift}.")
        if stem_tries < 1:
            raise ValueError(f"MSAPairDataset: stem_tries must be >= 1; got {stem_tries}.")
        if silence not in SILENCE_MODES:
            raise ValueError(f"MSAPairDataset: silence must be one of {SILENCE_MODES}; got {silence!r}.")
        if pairs not in PAIRS:
            raise ValueError(f"MSAPairDataset: pairs must be one of {PAIRS}; got {pairs!r}.")
        self.pool = pool
        self.reader = reader
        self.sample_rate = int(reader.sample_rate)
        self.paths = pool.frame["path"].tolist()
        self.stems = pool.frame["stems"].tolist()
        self.stem_index = {s: i for i, s in enumerate(pool.stem_names)}
        self.clip_samples, self.min_shift, self.max_shift = int(clip_samples), int(min_shift), int(max_shift)
        if not time_shift:
            self.min_shift = self.max_shift = 0
        self.silence_db, self.stem_tries = silence_db, int(stem_tries)
        self.silence, self.pairs = silence, pairs
        self.mask_bands, self.mask_frames = int(mask_bands), int(mask_frames)
        self._lengths: dict[str, int] = {}
        self._rows_with: dict[str, np.ndarray] = {}
        self.failures: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.paths)

    # -- lengths at the reader's rate, without decoding ------------------------------
    def length(self, path: str) -> int:
        """Length of ``path`` in samples at the training rate (decoded cache or file header)."""
        n = self._lengths.get(path)
        if n is None:
            cache = getattr(self.reader, "cache", None)
            if cache is not None and cache.has(path):
                n = int(cache.num_samples(path))
            else:
                meta = audio_info(path)
                n = int(math.floor(meta.frames * self.sample_rate / meta.sample_rate))
            self._lengths[path] = n
        return n

    def _rng(self) -> np.random.Generator:
        # torch's per-worker RNG is seeded by Lightning's seed_everything(workers=True)
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def __getitem__(self, index) -> dict:
        row, stem = (index if isinstance(index, tuple) else (index, None))
        return self.pair(int(row), self._rng(), stem=stem)

    def _read(self, path: str, offset: int) -> np.ndarray:
        return self.reader.read(path, self.clip_samples, offset=offset / self.sample_rate, pad=True)

    @staticmethod
    def _item(mix: np.ndarray, positive: np.ndarray, row: int, index: int, silent: bool, t: int,
              delta: int) -> dict:
        return {"mix": torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32)),
                "stem": torch.from_numpy(np.ascontiguousarray(positive, dtype=np.float32)),
                "sample_id": row, "stem_index": index, "silent": bool(silent),
                "mix_offset": t, "stem_offset": t + delta}

    def _mix_pair(self, row: int, rng: np.random.Generator) -> dict:
        """COLA positives: the mix at ``t + delta``, optionally randomly soft-masked."""
        path = self.paths[row]
        t, delta = draw_offsets(rng, self.length(path), self.clip_samples, self.min_shift, self.max_shift)
        second = self._read(path, t + delta)
        if self.pairs == "mask":
            second = random_soft_mask(second, rng, self.mask_bands, self.mask_frames)
        return self._item(self._read(path, t), second, row, SOURCE_MIX if self.pairs == "mix" else SOURCE_MASK,
                          False, t, delta)

    def _try_row(self, row: int, rng: np.random.Generator, stem: str | None) -> dict | None:
        """Up to ``stem_tries`` draws on one piece; None if every stem crop was silent (``skip``)."""
        if self.pairs != "source":
            return self._mix_pair(row, rng)
        stems = self.stems[row]
        names = sorted(stems) if stem is None else [stem]
        if stem is not None and stem not in stems:
            raise KeyError(f"piece {self.pool.frame['id'][row]} has no stem {stem!r}; it has {sorted(stems)}.")
        mix_path = self.paths[row]
        tries = self.stem_tries if self.silence == "skip" else 1
        for _ in range(tries):
            name = names[int(rng.integers(len(names)))]
            length = min(self.length(mix_path), self.length(stems[name]))
            t, delta = draw_offsets(rng, length, self.clip_samples, self.min_shift, self.max_shift)
            stem_audio = self._read(stems[name], t + delta)
            quiet = (self.silence != "keep" and self.silence_db is not None
                     and rms_db(stem_audio) < self.silence_db)
            if quiet and self.silence == "skip":
                continue
            if quiet:  # the poster: a low-energy source segment is replaced by silence
                stem_audio = np.zeros_like(stem_audio)
            return self._item(self._read(mix_path, t), stem_audio, row, self.stem_index[name], quiet, t, delta)
        return None

    def _other_row(self, rng: np.random.Generator, stem: str | None) -> int:
        if stem is None:
            return int(rng.integers(len(self.paths)))
        if stem not in self._rows_with:
            self._rows_with[stem] = self.pool.rows_with(stem)
        rows = self._rows_with[stem]
        return int(rows[int(rng.integers(len(rows)))])

    def pair(self, row: int, rng: np.random.Generator, stem: str | None = None) -> dict:
        """One pair for piece ``row`` (another piece if its stem crops are silent or unreadable)."""
        tried, silent = row, []
        for _ in range(MAX_ROW_RETRIES):
            try:
                item = self._try_row(tried, rng, stem)
            except AudioError as exc:
                key = self.paths[tried]
                if key not in self.failures:
                    self.failures[key] = str(exc)
                    warnings.warn(f"skipping unusable piece: {exc}", stacklevel=2)
                item = None
            else:
                if item is None:
                    silent.append(str(self.pool.frame["id"][tried]))
            if item is not None:
                return item
            tried = self._other_row(rng, stem)
        which = f"stem {stem!r}" if stem else "any stem"
        raise AudioError(
            f"MSA: no usable crop of {which} in {MAX_ROW_RETRIES} pieces ({self.stem_tries} draws each; silent in "
            f"{silent[:5]}): every stem crop was below silence_db={self.silence_db} dBFS or unreadable. Lower "
            "silence_db, use longer crops, or check the stems.")


# --------------------------------------------------------------------------- sampler
class MSABatchSampler(Sampler[list]):
    """``steps`` batches of ``batch_size`` piece indices, reshuffled every pass.

    ``stem_sampling="batch"`` draws one stem per batch (among ``pool.stem_names``, the same
    on every rank: that draw is seeded by (seed, epoch) only) and yields ``(row, stem)``
    pairs from the pieces that have it.  Row draws are seeded by (seed, rank, epoch) so
    that each device of a multi-device run draws its own pieces.  ``start_step`` (the step a
    resumed run continues from) enters both seeds, so a resumed run draws fresh batches
    instead of replaying its first ones.
    """

    def __init__(self, pool: MSAPool, batch_size: int, steps: int, seed: int = 0,
                 stem_sampling: str = "example", rank: int | None = None, start_step: int = 0):
        if stem_sampling not in STEM_SAMPLING:
            raise ValueError(f"MSABatchSampler: stem_sampling must be one of {STEM_SAMPLING}; got {stem_sampling!r}.")
        if batch_size < 1 or steps < 1:
            raise ValueError(f"MSABatchSampler: batch_size and steps must be >= 1; got {batch_size}, {steps}.")
        self.pool, self.batch_size, self.steps, self.seed = pool, int(batch_size), int(steps), int(seed)
        self.stem_sampling, self._rank, self.epoch = stem_sampling, rank, 0
        self.start_step = int(start_step)
        self.rows_with = {s: pool.rows_with(s) for s in pool.stem_names}

    def __len__(self) -> int:
        return self.steps

    @staticmethod
    def _stream(rng: np.random.Generator, values: np.ndarray):
        while True:
            yield from values[rng.permutation(len(values))]

    def __iter__(self):
        rank = get_rank() if self._rank is None else self._rank
        rng = np.random.default_rng([self.seed, rank, self.epoch, self.start_step])
        stem_rng = np.random.default_rng([self.seed, self.epoch, self.start_step, len(self.pool)])
        self.epoch += 1
        if self.stem_sampling == "example":
            rows = self._stream(rng, np.arange(len(self.pool)))
            for _ in range(self.steps):
                yield [int(next(rows)) for _ in range(self.batch_size)]
            return
        streams = {s: self._stream(rng, r) for s, r in self.rows_with.items()}
        names = self.pool.stem_names
        for _ in range(self.steps):
            stem = names[int(stem_rng.integers(len(names)))]
            yield [(int(next(streams[stem])), stem) for _ in range(self.batch_size)]
