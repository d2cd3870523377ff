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
           "item_rng", "plan_rng", "num_samples", "write_audio", "write_mp3", "write_wav", "fade", "peak_gain", "render_mix",
           "tag_summary_rows"]

RENDER_SAMPLE_RATE = 16000
TRAIN_SOUNDFONTS = ("FluidR3_GM", "GeneralUser")
TEST_SOUNDFONTS = ("TimGM6mb",)
SOUNDFONT_ORDER = TRAIN_SOUNDFONTS + TEST_SOUNDFONTS  # fixes the NSynth instrument numbers
TASK_CODES = {"nsynth": 1, "giantsteps": 2, "mtat": 3, "fma_medium": 4, "gtzan": 5, "emomusic": 6, "mtg_jamendo": 7,
              "medleydb": 8}  # part of every item's seed

PEAK = 0.89  # peak level of normalised mixes (-1 dBFS)
# MP3 encoding: constant bitrate, high enough (144 kb/s at 16 kHz mono) that LAME's bit reservoir
# never reaches back further than the frames libmpg123 decodes before a seek target.  At
# libsndfile's default (80 kb/s) a frame's main data often starts two or more frames back, and
# every windowed read (soundfile seek + read) then prints "part2_3_length (…) too large for
# available bit count" from libmpg123 for the frame it cannot complete.
MP3_BITRATE_MODE = "CONSTANT"
MP3_COMPRESSION_LEVEL = 0.1  # soundfile's 0 (highest bitrate) … 1 (lowest)
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
    """MP3 (CBR, :data:`MP3_COMPRESSION_LEVEL`) that libmpg123 reads from any position without complaint."""
    write_audio(path, np.clip(audio, -1.0, 1.0).astype(np.float32), format="MP3",
                bitrate_mode=MP3_BITRATE_MODE, compression_level=MP3_COMPRESSION_LEVEL)


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


def render_mix(synth, soundfont: str, tracks, seconds: float, gain: float = 1.0) -> np.ndarray:
    """The mono mix of ``tracks``, peak-normalised (times ``gain``) and faded out."""
    audio = synth.tracks(soundfont, tracks, num_samples(seconds))
    return fade(audio * np.float32(peak_gain(audio) * gain))


def write_wav(path: Path, audio: np.ndarray) -> None:
    """16-bit PCM WAV at :data:`RENDER_SAMPLE_RATE`."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * np.iinfo(np.int16).max).astype(np.int16)
    write_audio(path, pcm, format="WAV", subtype="PCM_16")


def tag_summary_rows(name: str, items: list[Item], results: dict[int, dict]) -> list[dict]:
    """Summary rows of a tagging stand-in: clips, seconds, distinct tags and sound fonts per split."""
    rows = []
    for split in ("train", "valid", "test"):
        its = [it for it in items if it.split == split]
        tags = {t for it in its for t in results[it.index]["tags"]}
        rows.append({"dataset": name, "split": split, "clips": len(its),
                     "seconds": float(sum(results[it.index]["seconds"] for it in its)),
                     "classes": f"{len(tags)} tags", "soundfonts": sorted({it.soundfont for it in its})})
    return rows
