"""Views of a clip for contrastive learning (GUIDE 2.1).

``adjacent`` (SemiSupCon): read one window of N*T samples at a random offset and cut it
into N adjacent, non-overlapping chunks of T samples; only when the file is shorter than
N*T fall back to N independent random crops.  ``random`` (CLMR): N independent random
crops.  A file shorter than T is zero-padded.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..audio import AudioError
from ..audio import read as read_file

__all__ = ["VIEW_STRATEGIES", "SILENT_CROP_TRIES", "ClipReader", "FileReader", "CachedReader", "crop_views",
           "view_level_db"]

VIEW_STRATEGIES = ("adjacent", "random")
#: Draws tried per clip before a crop quieter than ``min_db`` is accepted.
SILENT_CROP_TRIES = 8


class ClipReader(Protocol):
    """Anything that reads a window of ``num_samples`` from a clip (file or decoded cache)."""

    sample_rate: int

    def read(self, path: str, num_samples: int, offset: float | None = None,
             rng: np.random.Generator | None = None, pad: bool = False) -> np.ndarray: ...


class FileReader:
    """Decode straight from the audio file (soundfile), resampling to ``sample_rate``."""

    def __init__(self, sample_rate: int):
        self.sample_rate = int(sample_rate)

    def read(self, path, num_samples, offset=None, rng=None, pad=False):
        return read_file(path, self.sample_rate, offset=offset, num_samples=num_samples, rng=rng, pad=pad)


class CachedReader:
    """Read from a decoded-audio cache (``workbench data prepare``), falling back to the file
    for clips the cache does not hold."""

    def __init__(self, cache, sample_rate: int):
        self.cache, self.fallback = cache, FileReader(sample_rate)
        self.sample_rate = int(sample_rate)

    def read(self, path, num_samples, offset=None, rng=None, pad=False):
        if self.cache.has(path):
            return self.cache.read(path, num_samples, offset=offset, rng=rng, pad=pad)
        return self.fallback.read(path, num_samples, offset=offset, rng=rng, pad=pad)


def view_level_db(views: np.ndarray) -> float:
    """The quietest view's RMS level in dBFS (``-inf`` for digital silence)."""
    power = np.mean(np.square(views, dtype=np.float64), axis=-1)
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(np.min(power)))


def crop_views(reader: ClipReader, path: str, n_views: int, clip_samples: int, strategy: str,
               rng: np.random.Generator, min_db: float | None = None,
               tries: int = SILENT_CROP_TRIES) -> np.ndarray:
    """``n_views`` crops of ``clip_samples`` from ``path`` as float32 [n_views, clip_samples].

    ``min_db``: redraw the crop (up to ``tries`` times) until every view's RMS level is at
    least ``min_db`` dBFS, and otherwise keep the loudest draw.  Isolated notes (NSynth:
    one second of silence after the release; fast-decaying percussive notes) otherwise give
    silent views whose labels the loss cannot satisfy.  ``None`` (the reference code's
    behaviour) takes the first draw.
    """
    if min_db is None:
        return _crop_once(reader, path, n_views, clip_samples, strategy, rng)
    if tries < 1:
        raise ValueError(f"tries must be >= 1, got {tries}")
    best, best_db = None, -np.inf
    for _ in range(tries):
        views = _crop_once(reader, path, n_views, clip_samples, strategy, rng)
        level = view_level_db(views)
        if level >= min_db:
            return views
        if best is None or level > best_db:
            best, best_db = views, level
    return best


def _crop_once(reader: ClipReader, path: str, n_views: int, clip_samples: int, strategy: str,
               rng: np.random.Generator) -> np.ndarray:
    if strategy not in VIEW_STRATEGIES:
        raise ValueError(f"unknown view strategy {strategy!r}; choose one of {VIEW_STRATEGIES}")
    if strategy == "adjacent":
        try:
            window = reader.read(path, n_views * clip_samples, rng=rng)
            return window.reshape(n_views, clip_samples)
        except AudioError as exc:
            if "too short" not in str(exc):
                raise
    return np.stack([reader.read(path, clip_samples, rng=rng, pad=True) for _ in range(n_views)])
