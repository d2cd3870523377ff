"""The audio reader: mono float32 at a requested rate, windows, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from workbench.audio import AudioError, info, read


def test_read_resamples_downmixes_and_windows(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    left = 0.5 * np.sin(2 * np.pi * 1000 * t)
    stereo = np.stack([left, left], 1).astype(np.float32)
    sf.write(tmp_path / "s.wav", stereo, sr, subtype="FLOAT")
    x = read(tmp_path / "s.wav", 16000)
    assert x.dtype == np.float32 and x.ndim == 1 and len(x) == 16000
    spec = np.abs(np.fft.rfft(x))
    assert np.argmax(spec) == pytest.approx(1000, abs=1)  # 1 Hz bins at 16000 samples / 16 kHz
    w = read(tmp_path / "s.wav", 16000, offset=0.5, num_samples=800)
    assert len(w) == 800
    rng = np.random.default_rng(0)
    assert len(read(tmp_path / "s.wav", 16000, num_samples=1000, rng=rng)) == 1000


def test_clear_errors(tmp_path):
    (tmp_path / "empty.mp3").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.mp3.*0 bytes"):
        read(tmp_path / "empty.mp3")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match=r"junk\.wav.*unreadable"):
        read(tmp_path / "junk.wav")
    with pytest.raises(AudioError, match="not found"):
        read(tmp_path / "missing.wav")
    sf.write(tmp_path / "short.wav", np.zeros(100, np.float32), 8000)
    with pytest.raises(AudioError, match=r"short\.wav.*too short"):
        read(tmp_path / "short.wav", 8000, num_samples=1000)
    assert len(read(tmp_path / "short.wav", 8000, num_samples=1000, pad=True)) == 1000
    assert info(tmp_path / "short.wav").duration == pytest.approx(100 / 8000)
