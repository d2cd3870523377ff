"""The torch-audiomentations reference for :func:`workbench.augment.build_chain`.

``build_chain("semisupcon", ..., fast=False)`` returns :func:`reference_chain`'s chain: the
same SemiSupCon chain assembled from torch-audiomentations 0.12 transforms plus our delay
(it has none), used by ``benchmarks.augment`` and ``tests/test_augment.py`` to compare the
fast chain against.  :func:`notes` and :func:`envelope_corr` are the test signal and the
measure both use to check that pitch shifting keeps note onsets and decays in place;
:func:`peak_hz` and :func:`residual_snr_db` measure a shifted tone's pitch and purity.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import nn

from workbench.augment.presets import OneOfSpec, Preset
from workbench.augment.transforms import TRANSFORMS, Delay, _as_rows, _coin, build_transform

#: The SemiSupCon crop (2.7 s at 22 050 Hz), the length of :func:`notes`.
SAMPLE_RATE = 22050
SAMPLES = 59535


def notes(seed: int = 0, samples: int = SAMPLES, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Twelve decaying harmonic notes, one every 0.22 s (onsets and envelopes to keep), [1, 1, T]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples, dtype=torch.float64) / sample_rate
    x = torch.zeros(samples, dtype=torch.float64)
    for k in range(12):
        onset = int(k * 0.22 * sample_rate)
        f0 = 110 * 2 ** (int(torch.randint(0, 24, (1,), generator=g)) / 12)
        tt = t[onset:] - t[onset]
        x[onset:] += sum(0.2 / h * torch.sin(2 * math.pi * h * f0 * tt) * torch.exp(-tt * (2 + h)) for h in range(1, 8))
    return x.float()[None, None]


def peak_hz(y: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> float:
    """Peak frequency by a long zero-padded FFT (Hann) and parabolic interpolation of the
    log magnitude around the peak bin."""
    y = y.double().flatten()
    n_fft = 1 << 22
    mag = torch.fft.rfft(y * torch.hann_window(len(y), periodic=False, dtype=torch.float64), n=n_fft).abs()
    i = int(mag.argmax())
    a, b, c = (math.log(float(mag[j])) for j in (i - 1, i, i + 1))
    return (i + 0.5 * (a - c) / (a - 2 * b + c)) * sample_rate / n_fft


def residual_snr_db(y: torch.Tensor, freq: float, sample_rate: int = SAMPLE_RATE) -> float:
    """Level of the best-fitting sinusoid at ``freq`` over everything else (edges excluded)."""
    t = torch.arange(y.numel(), dtype=torch.float64) / sample_rate
    basis = torch.stack([torch.sin(2 * math.pi * freq * t), torch.cos(2 * math.pi * freq * t)], 1)
    yy = y.double().flatten()
    fit = (basis @ torch.linalg.lstsq(basis, yy[:, None]).solution)[:, 0]
    inner = slice(4096, -4096)
    return 10 * math.log10(float(fit[inner].square().sum() / (yy[inner] - fit[inner]).square().sum()))


def envelope_corr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Correlation of frame-RMS envelopes (1 024-sample frames, hop 512): onsets kept in place."""
    def env(v):
        return v.flatten().unfold(0, 1024, 512).square().mean(-1).sqrt()

    return float(torch.corrcoef(torch.stack([env(x), env(y)]))[0, 1])


class _ReferenceChain(nn.Module):
    """torch-audiomentations 0.12 transforms in SemiSupCon's order (the slow reference).

    Per-row chain probability like :class:`Chain`; each transform in per-example mode;
    forced to train mode at call time (torch-audiomentations skips work in eval mode)."""

    def __init__(self, transforms: list[tuple[str, nn.Module]], p_chain: float, sample_rate: int):
        super().__init__()
        self.names = [name for name, _ in transforms]
        self.transforms = nn.ModuleList([t for _, t in transforms])
        self.p_chain = p_chain
        self.sample_rate = sample_rate
        self.enabled = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        rows, restore = _as_rows(x)
        y = rows.clone()
        active = _coin(torch.arange(len(y), device=y.device), self.p_chain, generator)
        if not self.enabled or active.numel() == 0:
            return restore(y)
        sub = y.index_select(0, active)[:, None, :]
        for t in self.transforms:
            t.train()
            sub = t(sub, sample_rate=self.sample_rate).samples
        y.index_copy_(0, active, sub[:, 0, :])
        return restore(y)


def reference_chain(spec: Preset, sample_rate: int, severity: float, p_chain: float) -> nn.Module:
    """``spec`` (already without excluded stages) from torch-audiomentations transforms."""
    if spec.name != "semisupcon":
        raise ValueError(
            f"fast=False (the torch-audiomentations reference) exists for the 'semisupcon' preset only; "
            f"{spec.name!r} needs transforms torch-audiomentations lacks (reverb, biquad filters)."
        )
    import torch_audiomentations as ta

    if p_chain == 0:
        return _ReferenceChain([], p_chain, sample_rate)

    def ranged(name):
        return TRANSFORMS[name](sample_rate=sample_rate, p=1.0, severity=severity).ranges

    def p_of(name):
        for stage in spec.stages:
            for s in stage.members if isinstance(stage, OneOfSpec) else [stage]:
                if s.name == name:
                    return min(1.0, s.p * severity)
        if name in TRANSFORMS:
            return 0.0  # excluded from the preset: the transform never fires
        raise KeyError(name)

    common = dict(sample_rate=sample_rate, output_type="dict")
    g = ranged("gain")["gain_db"]
    n = ranged("colored_noise")
    lp, hp, bp = ranged("lowpass")["cutoff_hz"], ranged("highpass")["cutoff_hz"], ranged("bandpass")
    ps = ranged("pitch_shift")["semitones"]
    nyq = sample_rate / 2 - 1
    delay = build_transform("delay", sample_rate, severity=severity)
    delay.p = p_of("delay")
    transforms = [
        ("gain", ta.Gain(min_gain_in_db=g[0], max_gain_in_db=g[1], p=p_of("gain"), **common)),
        ("polarity", ta.PolarityInversion(p=p_of("polarity"), **common)),
        ("colored_noise", ta.AddColoredNoise(min_snr_in_db=n["snr_db"][0], max_snr_in_db=n["snr_db"][1],
                                             min_f_decay=n["f_decay"][0], max_f_decay=n["f_decay"][1],
                                             p=p_of("colored_noise"), **common)),
        ("filter", ta.OneOf([
            ta.LowPassFilter(min_cutoff_freq=min(lp[0], nyq), max_cutoff_freq=min(lp[1], nyq), p=p_of("lowpass"),
                             **common),
            ta.HighPassFilter(min_cutoff_freq=min(hp[0], nyq), max_cutoff_freq=min(hp[1], nyq), p=p_of("highpass"),
                              **common),
            ta.BandPassFilter(min_center_frequency=bp["center_hz"][0], max_center_frequency=bp["center_hz"][1],
                              min_bandwidth_fraction=bp["bandwidth_fraction"][0],
                              max_bandwidth_fraction=bp["bandwidth_fraction"][1], p=p_of("bandpass"), **common),
            ta.BandStopFilter(min_center_frequency=bp["center_hz"][0], max_center_frequency=bp["center_hz"][1],
                              min_bandwidth_fraction=bp["bandwidth_fraction"][0],
                              max_bandwidth_fraction=bp["bandwidth_fraction"][1], p=p_of("bandstop"), **common),
        ], output_type="dict")),
        ("pitch_shift", ta.PitchShift(min_transpose_semitones=ps[0], max_transpose_semitones=ps[1],
                                      p=p_of("pitch_shift"), **common)),
        ("delay", _ReferenceDelay(delay)),
    ]
    return _ReferenceChain(transforms, p_chain, sample_rate)


class _ReferenceDelay(nn.Module):
    """Our delay behind torch-audiomentations' call convention (it has no delay)."""

    def __init__(self, delay: Delay):
        super().__init__()
        self.delay = delay

    def forward(self, x: torch.Tensor, sample_rate: int | None = None):
        return SimpleNamespace(samples=self.delay(x))
