"""What the generator renders: :class:`Item` s, their seeds, and how their audio is written.

Every item's material comes from a generator seeded by (seed, data set code, item index)
(:func:`item_rng`); a data set's plan (which items, which splits, which SoundFonts) from
one seeded by (seed, data set code) (:func:`plan_rng`).  The codes (:data:`TASK_CODES`)
are fixed: changing one changes every byte of that data set.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Item", "RENDER_SAMPLE_RATE", "TRAIN_SOUNDFONTS", "TEST_SOUNDFONTS", "SOUNDFONT_ORDER", "TASK_CODES",
           "item_rng", "plan_rng", "num_samples", "write_audio", "write_mp3", "fade", "peak_gain"]

RENDER_SAMPLE_RATE = 16000
TRAIN_SOUNDFONTS = ("FluidR3_GM", "GeneralUser")
TEST_SOUNDFONTS = ("TimGM6mb",)
SOUNDFONT_ORDER = TRAIN_SOUNDFONTS + TEST_SOUNDFONTS  # fixes the NSynth instrument numbers
TASK_CODES = {"nsynth": 1, "giantsteps": 2, "mtat": 3, "fma_medium": 4}  # part of every item's seed

PEAK = 0.89  # peak level of normalised mixes (-1 dBFS)
FADE_SECONDS = 0.02  # fade-out at the end of every excerpt


@dataclass(frozen=True)
class Item:
    """One thing to render: its task, running index (seeds its material), split and files."""

    task: str
    index: int
    split: str
    soundfont: str
    path: str  # relative to the output folder
    params: dict = field(default_factory=dict)


def item_rng(seed: int, task: str, index: int, stream: int = 0) -> np.random.Generator:
    """The item's generator; ``stream`` > 0 gives an independent one (e.g. its annotation, apart from its audio)."""
    key = [int(seed), TASK_CODES[task], int(index)]
    return np.random.default_rng(key + [int(stream)] if stream else key)


def plan_rng(seed: int, task: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), TASK_CODES[task]])


def num_samples(seconds: float) -> int:
    return int(round(seconds * RENDER_SAMPLE_RATE))


def write_audio(path: Path, audio: np.ndarray, **kwargs) -> None:
    """Encode in memory, then write the bytes (soundfile fsyncs files on close: slow for many small files)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, RENDER_SAMPLE_RATE, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def write_mp3(path: Path, audio: np.ndarray) -> None:
    write_audio(path, np.clip(audio, -1.0, 1.0).astype(np.float32), format="MP3")


def fade(audio: np.ndarray) -> np.ndarray:
    """A short linear fade-out at the end (in place; returned for chaining)."""
    n = min(len(audio), int(FADE_SECONDS * RENDER_SAMPLE_RATE))
    if n > 0:
        audio[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return audio


def peak_gain(audio: np.ndarray) -> float:
    """The gain that brings ``audio``'s peak to :data:`PEAK`."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return PEAK / peak if peak > 1e-9 else 1.0
