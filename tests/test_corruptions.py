"""Test-time corruptions: contract, identity at severity 0, growth with severity, and the
measurable effect of the ones we implement ourselves."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from workbench.corruptions import CORRUPTIONS, corrupt, splice_out, time_stretch

SR = 22050
T = SR  # 1 s clips keep pedalboard and Rubber Band quick


def music_like(batch: int = 3, length: int = T, seed: int = 0) -> np.ndarray:
    """Harmonic tones with a tremolo plus a little noise, [B, 1, T] float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / SR
    rows = []
    for _ in range(batch):
        f0 = rng.uniform(110, 440)
        x = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) for k in range(1, 6))
        x *= 1 + 0.5 * np.sin(2 * np.pi * 3 * t)
        rows.append(x + 0.01 * rng.normal(size=length))
    return np.stack(rows)[:, None].astype(np.float32)


def snr_db(clean: np.ndarray, y: np.ndarray) -> float:
    clean, y = clean.astype(np.float64), y.astype(np.float64)
    return 10 * math.log10(np.sum(clean**2) / max(np.sum((y - clean) ** 2), 1e-30))


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_runs_keeps_shape_type_and_leaves_input_alone(name):
    x = music_like()
    before = x.copy()
    y = corrupt(x, name, 1.0, SR, seed=0)
    assert isinstance(y, np.ndarray) and y.shape == x.shape and y.dtype == np.float32
    assert np.isfinite(y).all()
    assert np.array_equal(x, before)
    xt = torch.from_numpy(x).double()
    yt = corrupt(xt, name, 1.0, SR, seed=0)
    assert torch.is_tensor(yt) and yt.shape == xt.shape and yt.dtype == torch.float64
    flat = corrupt(x[:, 0], name, 1.0, SR, seed=0)
    assert flat.shape == x[:, 0].shape


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_severity_zero_is_identity(name):
    x = music_like()
    assert np.array_equal(corrupt(x, name, 0.0, SR, seed=3), x)
    xt = torch.from_numpy(x)
    assert torch.equal(corrupt(xt, name, 0, SR, seed=3), xt)


@pytest.mark.parametrize("name", sorted(set(CORRUPTIONS) - {"time_stretch"}))
def test_distortion_grows_with_severity(name):
    """SNR against the clean input falls from severity 0.5 to severity 3."""
    x = music_like(batch=8 if name == "chain" else 3)
    mild, harsh = (snr_db(x, corrupt(x, name, s, SR, seed=1)) for s in (0.5, 3.0))
    assert harsh < mild - 1.0, (mild, harsh)


def _onset(row: np.ndarray, threshold: float = 0.05) -> int:
    return int(np.argmax(np.abs(row) > threshold))


def test_time_stretch_moves_events_more_with_severity():
    """A tone starting at 0.5 s starts at 0.5 s / factor after the stretch."""
    x = music_like(batch=12)
    x[..., : T // 2] = 0.0
    shifts = []
    for s in (0.5, 3.0):
        y = corrupt(x, "time_stretch", s, SR, seed=4)
        shifts.append(np.mean([abs(_onset(row) - T // 2) for row in y[:, 0]]))
    assert shifts[1] > 2 * shifts[0] > 0


def test_time_stretch_keeps_pitch_and_scales_time():
    t = np.arange(T) / SR
    x = np.where(t < 0.5, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)[None]
    y = time_stretch(x, np.array([2.0]), SR)[0]  # twice as fast
    assert y.shape == (T,)
    loud = np.flatnonzero(np.abs(y) > 0.1)
    assert loud[-1] / SR == pytest.approx(0.25, abs=0.03)
    spectrum = np.abs(np.fft.rfft(y[: loud[-1]] * np.hanning(loud[-1]), 1 << 18))
    assert np.argmax(spectrum) * SR / (1 << 18) == pytest.approx(440.0, abs=2.0)


def test_splice_out_zeroes_segments():
    x = np.ones((4, T), dtype=np.float32)
    y = splice_out(x, segments=5, max_ms=50.0, sample_rate=SR, rng=np.random.default_rng(0))
    zeroed = (y == 0).mean(axis=1)
    assert np.all(zeroed > 0) and np.all(zeroed <= 5 * 0.05 + 1e-9)
    assert set(np.unique(y)) <= {0.0, 1.0}
    fractions = [float((corrupt(x[:, None], "splice_out", s, SR, seed=2) == 0).mean()) for s in (0.5, 1, 3)]
    assert fractions[0] < fractions[1] < fractions[2]


def test_bitcrush_quantises_to_its_bit_depth():
    """Severity 1 is 4 bits: at most 2·2^4 + 1 distinct levels in [−1, 1]."""
    x = music_like(batch=1)
    y = corrupt(x, "bitcrush", 1.0, SR)
    assert len(np.unique(np.round(y, 6))) <= 2 * 2**4 + 1
    assert len(np.unique(np.round(x, 6))) > 1000


def test_random_corruptions_follow_the_seed():
    x = music_like()
    for name in ("chain", "time_stretch", "splice_out"):
        a, b, c = (corrupt(x, name, 2.0, SR, seed=s) for s in (5, 5, 6))
        assert np.array_equal(a, b), name
        assert not np.array_equal(a, c), name


def test_rejects_unknown_names_and_bad_severity():
    x = music_like()
    with pytest.raises(ValueError, match="choose one of"):
        corrupt(x, "flanger", 1.0, SR)
    with pytest.raises(ValueError, match="severity"):
        corrupt(x, "reverb", -1.0, SR)
    with pytest.raises(ValueError, match=r"\[B, 1, T\]"):
        corrupt(np.zeros((2, 2, 10), np.float32), "reverb", 1.0, SR)
