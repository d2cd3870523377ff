"""Reading audio: mono float32 at a requested sample rate, whole or a window.

All file I/O goes through :func:`read` (soundfile, never torchaudio's loaders).
Every failure is an :class:`AudioError` that names the file and says how to fix it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["AudioError", "AudioInfo", "info", "read", "resample"]


class AudioError(ValueError):
    """An audio file that cannot be used, with the file and the fix in the message."""


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def info(path: str | Path) -> AudioInfo:
    """Sample rate, length and channel count of ``path`` without decoding it."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found. Check the data root or re-render the data set.")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes). Delete it or replace it with a valid copy.")
    try:
        i = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for corrupt input
        raise AudioError(
            f"{path}: unreadable audio ({exc}). Re-download or re-encode the file "
            "(wav/flac/ogg/mp3 are supported)."
        ) from exc
    frames = int(i.frames)
    if frames <= 0 or frames > 2**40:
        # libsndfile reports huge/unknown frame counts for some mp3s: count by decoding.
        frames = sum(len(b) for b in sf.blocks(str(path), blocksize=1 << 16))
    return AudioInfo(str(path), int(i.samplerate), frames, int(i.channels))


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling (polyphase) of a 1-D float32 signal."""
    if orig_sr == target_sr:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_sr), int(target_sr))
    return resample_poly(x, target_sr // g, orig_sr // g).astype(np.float32)


def read(
    path: str | Path,
    sample_rate: int | None = None,
    *,
    offset: float | None = None,
    num_samples: int | None = None,
    rng: np.random.Generator | None = None,
    pad: bool = False,
) -> np.ndarray:
    """Read ``path`` as mono float32.

    sample_rate: target rate (None keeps the file's rate).
    num_samples: window length in samples at ``sample_rate``; None reads the whole file.
    offset: window start in seconds; None with ``rng`` draws a uniform random start,
        None without ``rng`` starts at 0.
    pad: zero-pad a file shorter than the window instead of raising.
    """
    meta = info(path)
    sr_in = meta.sample_rate
    sr_out = sample_rate or sr_in
    if num_samples is not None and num_samples <= 0:
        raise AudioError(f"{path}: num_samples must be positive, got {num_samples}.")
    if num_samples is None:
        start_in, frames_in = 0, meta.frames
    else:
        need_in = int(math.ceil(num_samples * sr_in / sr_out))
        if meta.frames < need_in and not pad:
            raise AudioError(
                f"{path}: too short ({meta.frames / sr_in:.3f} s) for a window of "
                f"{num_samples / sr_out:.3f} s. Drop the file from the manifest, "
                "lower the crop length, or pass pad=True."
            )
        slack = max(meta.frames - need_in, 0)
        if offset is not None:
            start_in = min(int(round(offset * sr_in)), slack)
        elif rng is not None:
            start_in = int(rng.integers(0, slack + 1))
        else:
            start_in = 0
        frames_in = min(need_in, meta.frames - start_in)
    try:
        data, _ = sf.read(str(path), start=start_in, frames=frames_in, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: decoding failed ({exc}). Re-encode or remove the file.") from exc
    if data.size == 0:
        raise AudioError(f"{path}: no samples decoded. The file is empty or truncated; replace it.")
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    x = resample(np.ascontiguousarray(x, dtype=np.float32), sr_in, sr_out)
    if num_samples is not None:
        if len(x) < num_samples:
            x = np.pad(x, (0, num_samples - len(x)))
        x = x[:num_samples]
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{path}: contains NaN or inf samples. Re-encode the file.")
    return x
