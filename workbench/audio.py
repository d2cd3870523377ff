"""Reading audio: mono float32 at a requested sample rate, whole or a window.

All file I/O goes through :func:`read` (soundfile, never torchaudio's loaders).
Every failure is an :class:`AudioError` that names the file and says how to fix it.

The rules every reader of audio shares live here, once:

- a sample rate is a positive integer (:func:`check_sample_rate`);
- a file whose header promises more audio than it holds (a truncated mp3 or flac) is
  measured by decoding: :func:`info` reports the decodable length, flags it
  ``truncated`` and warns once (:class:`AudioWarning`);
- samples must be finite and at most :data:`MAX_ABS_SAMPLE` in magnitude (NaN, inf or
  1e30 is corrupt data, not audio);
- a caller that skips an unusable file (pretraining, embedding) says so with
  :func:`warn_skipped`, one warning naming the file.
"""

from __future__ import annotations

import math
import stat
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["AudioError", "AudioInfo", "AudioWarning", "MAX_ABS_SAMPLE", "check_sample_rate", "info", "read",
           "resample", "warn_skipped"]

MAX_ABS_SAMPLE = 1e3  # 60 dB above full scale: larger samples are corrupt data, not audio
VERIFIED_FORMATS = ("MP3", "MPEG", "FLAC", "OGG")  # whose frame counts come from a header that can lie
_COUNT_BLOCK = 4096  # frames per block when counting the decodable frames of a truncated file


class AudioError(ValueError):
    """An audio file that cannot be used, with the file and the fix in the message."""


class AudioWarning(UserWarning):
    """An audio file used in part (truncated) or skipped, with the file in the message."""


def check_sample_rate(sample_rate, name: str = "sample_rate") -> int:
    """``sample_rate`` as a positive int, else a ValueError naming ``name``."""
    try:
        value = int(sample_rate)
    except (TypeError, ValueError):
        value = 0
    if value <= 0 or value != sample_rate:
        raise ValueError(f"{name} must be a positive whole number of Hz (e.g. 16000), got {sample_rate!r}.")
    return value


def warn_skipped(exc: Exception, what: str = "clip") -> None:
    """One :class:`AudioWarning` saying that an unusable file (named by ``exc``) is skipped."""
    warnings.warn(f"skipping unusable {what}: {exc}", AudioWarning, stacklevel=3)


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    frames: int
    channels: int
    truncated: bool = False  # the header promised more frames than decode

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def info(path: str | Path) -> AudioInfo:
    """Sample rate, length and channel count of ``path`` without decoding it."""
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            raise AudioError(f"{path}: a broken or looping symbolic link. Point it at an audio file or remove it.")
        raise AudioError(f"{path}: file not found. Check the data root or re-render the data set.")
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the decoder forever
        raise AudioError(f"{path}: not a regular file (a folder, FIFO or device). Point the manifest at audio "
                         "files only.")
    if st.st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes). Delete it or replace it with a valid copy.")
    try:
        i = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for corrupt input
        raise AudioError(
            f"{path}: unreadable audio ({exc}). Re-download or re-encode the file "
            "(wav/flac/ogg/mp3 are supported)."
        ) from exc
    frames, truncated = int(i.frames), False
    if frames <= 0 or frames > 2**40:
        # libsndfile reports huge/unknown frame counts for some mp3s: count by decoding.
        frames = _decodable_frames(str(path))
    elif str(i.format).upper() in VERIFIED_FORMATS:
        decodable = _verified_frames(str(path), st.st_size, st.st_mtime_ns, frames, int(i.samplerate))
        if decodable < frames:
            frames, truncated = decodable, True
    if frames <= 0:
        raise AudioError(f"{path}: no decodable audio frames (truncated or empty). Replace the file.")
    return AudioInfo(str(path), int(i.samplerate), frames, int(i.channels), truncated)


def _decodable_frames(path: str) -> int:
    """Frames that actually decode, counted block by block up to the first decoding error."""
    n = 0
    try:
        with sf.SoundFile(path) as f:
            while True:
                block = f.read(_COUNT_BLOCK, dtype="float32", always_2d=True)
                if not len(block):
                    break
                n += len(block)
    except Exception:  # noqa: BLE001 - libsndfile raises several types at a corrupt tail
        pass
    return n


@lru_cache(maxsize=1 << 16)
def _verified_frames(path: str, size: int, mtime_ns: int, header_frames: int, sample_rate: int) -> int:
    """``header_frames`` if the last promised frame decodes, else the decodable count with one
    warning (memoised per file identity: one seek per file and process)."""
    try:
        with sf.SoundFile(path) as f:
            f.seek(header_frames - 1)
            if len(f.read(1, dtype="float32")) == 1:
                return header_frames
    except Exception:  # noqa: BLE001
        pass
    decodable = min(_decodable_frames(path), header_frames)
    warnings.warn(f"{path}: truncated: its header promises {header_frames / sample_rate:.3f} s but only "
                  f"{decodable / sample_rate:.3f} s decode; using the decodable part. Re-encode or replace the file.",
                  AudioWarning, stacklevel=4)
    return decodable


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
    sr_out = sr_in if sample_rate is None else check_sample_rate(sample_rate)
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
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if not math.isfinite(peak):
        raise AudioError(f"{path}: contains NaN or inf samples. Re-encode the file.")
    if peak > MAX_ABS_SAMPLE:
        raise AudioError(f"{path}: contains samples of magnitude {peak:.3g} (more than {MAX_ABS_SAMPLE:g}, i.e. "
                         "corrupt data, not audio). Re-encode or remove the file.")
    return x
