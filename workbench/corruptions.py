"""Test-time corruptions for robustness curves (SemiSupCon sections 5.3 and 8.4).

``corrupt(x, name, severity, sample_rate, seed)`` corrupts a batch ``[B, 1, T]`` (or
``[B, T]``; numpy array or torch tensor, returned as the same type, shape, dtype and
device).  Severity 0 is exactly the identity; severity 1 is the reference setting
(SemiSupCon 8.4's fixed settings where it gives them); larger is harsher.

| name | what | parameters at severity s |
|---|---|---|
| ``chain`` | the training chain (:func:`workbench.augment.build_chain`) | SemiSupCon preset at severity s |
| ``chorus`` | pedalboard Chorus | mix = depth = min(1, s), rate 5·s Hz |
| ``distortion`` | pedalboard Distortion (tanh drive) | drive 9·s dB |
| ``reverb`` | pedalboard Reverb | room size = wet = min(1, s), dry = clip(1 − (s − 1)/2, 0, 1) |
| ``compression`` | pedalboard Compressor | threshold −30·s dB (≥ −80), ratio 1 + 4·s |
| ``bitcrush`` | pedalboard Bitcrush | bit depth 4 / s (≤ 32) |
| ``time_stretch`` | pedalboard time_stretch, crop / zero-pad to T | speed × U[1 − 0.3·s, 1 + 0.3·s] (≥ 0.25) |
| ``splice_out`` | zero out random segments | round(8·s) segments per clip, each 0…100 ms |

Pedalboard runs on CPU float32 numpy, one clip at a time: tensors are moved to the CPU
and back.  The random draws (time-stretch factors, splice positions, the chain's
parameters) come from ``seed``; the pedalboard effects are deterministic.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

__all__ = ["CORRUPTIONS", "corrupt", "time_stretch", "splice_out"]

CHORUS_RATE_HZ = 5.0
DISTORTION_DRIVE_DB = 9.0
COMPRESSION_THRESHOLD_DB = -30.0
COMPRESSION_MIN_THRESHOLD_DB = -80.0
COMPRESSION_RATIO_PER_SEVERITY = 4.0
BITCRUSH_BITS = 4.0
BITCRUSH_MAX_BITS = 32.0
STRETCH_SPREAD = 0.3  # ± speed change per unit severity
STRETCH_MIN_FACTOR = 0.25
SPLICE_SEGMENTS = 8  # per unit severity
SPLICE_MAX_MS = 100.0

Corruption = Callable[[np.ndarray, float, int, np.random.Generator, int], np.ndarray]


def _per_clip(x: np.ndarray, effect: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    out = np.empty_like(x)
    for i, clip in enumerate(x):
        y = np.asarray(effect(np.ascontiguousarray(clip, dtype=np.float32)), dtype=np.float32).reshape(-1)
        out[i] = _fit(y, x.shape[1])
    return out


def _fit(y: np.ndarray, length: int) -> np.ndarray:
    """Crop or zero-pad a 1-D signal to ``length``."""
    if len(y) >= length:
        return y[:length]
    return np.pad(y, (0, length - len(y)))


def _pedalboard(plugin, sample_rate: int) -> Callable[[np.ndarray], np.ndarray]:
    def run(clip: np.ndarray) -> np.ndarray:
        return plugin(clip[None, :], float(sample_rate))[0]

    return run


def _chorus(x, s, sample_rate, rng, seed):
    import pedalboard

    plugin = pedalboard.Chorus(rate_hz=CHORUS_RATE_HZ * s, depth=min(1.0, s), mix=min(1.0, s))
    return _per_clip(x, _pedalboard(plugin, sample_rate))


def _distortion(x, s, sample_rate, rng, seed):
    import pedalboard

    return _per_clip(x, _pedalboard(pedalboard.Distortion(drive_db=DISTORTION_DRIVE_DB * s), sample_rate))


def _reverb(x, s, sample_rate, rng, seed):
    import pedalboard

    amount = min(1.0, s)
    dry = float(np.clip(1.0 - (s - 1.0) / 2.0, 0.0, 1.0))
    plugin = pedalboard.Reverb(room_size=amount, wet_level=amount, dry_level=dry)
    return _per_clip(x, _pedalboard(plugin, sample_rate))


def _compression(x, s, sample_rate, rng, seed):
    import pedalboard

    threshold = max(COMPRESSION_MIN_THRESHOLD_DB, COMPRESSION_THRESHOLD_DB * s)
    plugin = pedalboard.Compressor(threshold_db=threshold, ratio=1.0 + COMPRESSION_RATIO_PER_SEVERITY * s)
    return _per_clip(x, _pedalboard(plugin, sample_rate))


def _bitcrush(x, s, sample_rate, rng, seed):
    import pedalboard

    plugin = pedalboard.Bitcrush(bit_depth=min(BITCRUSH_MAX_BITS, BITCRUSH_BITS / s))
    return _per_clip(x, _pedalboard(plugin, sample_rate))


def time_stretch(x: np.ndarray, factors: np.ndarray, sample_rate: int) -> np.ndarray:
    """Change each clip's speed by ``factors[i]`` (> 1 faster) keeping its pitch
    (pedalboard's Rubber Band time_stretch), then crop or zero-pad back to T samples."""
    import pedalboard

    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"time_stretch takes clips [B, T], got shape {x.shape}.")
    factors = np.broadcast_to(np.asarray(factors, dtype=np.float64), (x.shape[0],))
    if np.any(factors <= 0):
        raise ValueError(f"time-stretch factors must be positive, got {factors.tolist()}.")
    out = np.empty_like(x)
    for i, (clip, factor) in enumerate(zip(x, factors)):
        y = pedalboard.time_stretch(clip[None, :], float(sample_rate), stretch_factor=float(factor))[0]
        out[i] = _fit(np.asarray(y, dtype=np.float32), x.shape[1])
    return out


def _time_stretch(x, s, sample_rate, rng, seed):
    factors = np.maximum(STRETCH_MIN_FACTOR, 1.0 + STRETCH_SPREAD * s * rng.uniform(-1.0, 1.0, size=x.shape[0]))
    return time_stretch(x, factors, sample_rate)


def splice_out(x: np.ndarray, segments: int, max_ms: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Zero ``segments`` random intervals (width uniform in 0…max_ms, start uniform) per clip."""
    x = np.array(x, dtype=np.float32, copy=True)
    length = x.shape[1]
    max_width = int(round(max_ms * sample_rate / 1000.0))
    for clip in x:
        widths = rng.integers(0, max_width + 1, size=segments)
        starts = rng.integers(0, max(1, length), size=segments)
        for start, width in zip(starts, widths):
            clip[start : start + width] = 0.0
    return x


def _splice_out(x, s, sample_rate, rng, seed):
    return splice_out(x, int(round(SPLICE_SEGMENTS * s)), SPLICE_MAX_MS, sample_rate, rng)


def _chain(x, s, sample_rate, rng, seed):
    from .augment import build_chain

    chain = build_chain("semisupcon", sample_rate=sample_rate, severity=s)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        return chain(torch.from_numpy(x)[:, None, :], generator=generator)[:, 0, :].numpy()


#: name → f(x [B, T] float32 numpy, severity > 0, sample_rate, numpy Generator, seed) → [B, T]
CORRUPTIONS: dict[str, Corruption] = {
    "chain": _chain,
    "chorus": _chorus,
    "distortion": _distortion,
    "reverb": _reverb,
    "compression": _compression,
    "bitcrush": _bitcrush,
    "time_stretch": _time_stretch,
    "splice_out": _splice_out,
}


def corrupt(x, name: str, severity: float, sample_rate: int, seed: int = 0):
    """Corrupt a batch ``x`` ([B, 1, T] or [B, T], numpy or torch) with ``name`` at ``severity``.

    Returns the same type, shape and dtype (and device, for tensors).  Severity 0 returns
    an unchanged copy.  ``seed`` fixes every random draw."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose one of {sorted(CORRUPTIONS)}.")
    if not math.isfinite(severity) or severity < 0:
        raise ValueError(f"severity must be a finite number >= 0, got {severity}.")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}.")
    is_tensor = torch.is_tensor(x)
    array = x.detach().to("cpu", torch.float32).numpy() if is_tensor else np.asarray(x)
    shape = array.shape
    if array.ndim == 3 and shape[1] == 1:
        rows = array[:, 0, :]
    elif array.ndim == 2:
        rows = array
    else:
        raise ValueError(f"corrupt takes mono batches [B, 1, T] or [B, T], got shape {shape}.")
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    if severity == 0 or rows.shape[0] == 0:
        out = rows.copy()
    else:
        rng = np.random.default_rng(int(seed))
        out = CORRUPTIONS[name](rows, float(severity), int(sample_rate), rng, int(seed))
    out = np.asarray(out, dtype=np.float32).reshape(shape)
    if is_tensor:
        return torch.from_numpy(out).to(device=x.device, dtype=x.dtype)
    return out.astype(array.dtype, copy=False) if np.issubdtype(array.dtype, np.floating) else out
