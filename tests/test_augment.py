"""The augmentation chain: API contract, each transform's measurable effect, severity,
per-row randomness, and agreement of the fast paths with torch-audiomentations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks.reference_chain import envelope_corr, notes, peak_hz, residual_snr_db
from workbench import augment, dsp
from workbench.augment import PRESETS, build_chain, build_transform, describe, format_table

SR = 22050
T = 59535  # 2.7 s, the SemiSupCon crop


# ----------------------------------------------------------------------------- helpers
def tone(freq: float, length: int = T, sr: int = SR, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(length, dtype=torch.float64) / sr
    return (amp * torch.sin(2 * math.pi * freq * t)).float()


def cents(f: float, target: float) -> float:
    return 1200 * math.log2(f / target)


def gain_db(x: torch.Tensor, y: torch.Tensor, margin: int = 8192) -> float:
    """Level change of y against x in dB, away from the edges."""
    xs, ys = x.flatten()[margin:-margin].double(), y.flatten()[margin:-margin].double()
    return 20 * math.log10(float(ys.square().mean().sqrt() / xs.square().mean().sqrt()))


def filtered_tone_gain(name: str, freq: float, **params) -> float:
    t = build_transform(name, SR, **params)
    x = tone(freq)[None, None]
    return gain_db(x, t(x))


def spectral_slope_db_per_octave(y: torch.Tensor, lo: float = 200.0, hi: float = 8000.0) -> float:
    """Least-squares slope of the power spectrum (dB) against log2 frequency."""
    power = torch.fft.rfft(y.double().flatten()).abs().square()
    freqs = torch.fft.rfftfreq(y.numel(), 1 / SR, dtype=torch.float64)
    keep = (freqs >= lo) & (freqs <= hi)
    octaves = torch.log2(freqs[keep])
    db = 10 * torch.log10(power[keep])
    a = torch.stack([octaves, torch.ones_like(octaves)], 1)
    return float(torch.linalg.lstsq(a, db[:, None]).solution[0, 0])


def noise(batch: int = 4, length: int = T, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(batch, 1, length, generator=torch.Generator().manual_seed(seed))


def changed_rows(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (y - x).flatten(1).abs().amax(1) > 0


# ----------------------------------------------------------------------------- contract
@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chain_keeps_shape_dtype_device_is_finite_and_leaves_input_alone(preset, dtype):
    x = noise(6).to(dtype)
    before = x.clone()
    chain = build_chain(preset, SR, p_chain=1.0)
    y = chain(x, generator=torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert torch.isfinite(y).all()
    assert torch.equal(x, before), "the chain modified its input"
    assert changed_rows(x, y).any()
    assert isinstance(chain, torch.nn.Module)


def test_chain_keeps_augmenting_in_eval_mode_and_under_no_grad():
    chain = build_chain("semisupcon", SR, p_chain=1.0).eval()
    x = noise(16)
    with torch.no_grad():
        y = chain(x, generator=torch.Generator().manual_seed(0))
    # with p_chain = 1, a row is untouched only if all six coin flips fail (p ≈ 0.011)
    assert changed_rows(x, y).sum() >= 12
    chain.enabled = False
    z = chain(x)
    assert torch.equal(z, x) and z.data_ptr() != x.data_ptr()


def test_generator_makes_draws_reproducible():
    chain = build_chain("semisupcon", SR, p_chain=1.0)
    x = noise(8)
    a = chain(x, generator=torch.Generator().manual_seed(7))
    b = chain(x, generator=torch.Generator().manual_seed(7))
    c = chain(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_severity_zero_is_exactly_the_identity(preset):
    x = noise(8)
    chain = build_chain(preset, SR, severity=0.0)
    assert chain.p_chain == 0.0
    assert all(t.p == 0.0 for stage in chain.stages for t in getattr(stage, "members", [stage]))
    assert torch.equal(chain(x), x)
    for name in augment.TRANSFORMS:
        t = build_transform(name, SR, severity=0.0)
        assert torch.equal(t(x), x), name


def test_rejects_bad_input_and_parameters():
    chain = build_chain("semisupcon", SR)
    with pytest.raises(ValueError, match=r"\[B, 1, T\]"):
        chain(torch.zeros(2, 2, 100))
    with pytest.raises(ValueError, match="unknown augmentation preset"):
        build_chain("simclr")
    with pytest.raises(ValueError, match="allowed"):
        build_transform("gain", SR, gain=3.0)
    with pytest.raises(ValueError, match="min > max"):
        build_transform("gain", SR, gain_db=(3.0, -3.0))
    with pytest.raises(ValueError, match="choose one of"):
        build_transform("flanger", SR)
    with pytest.raises(ValueError, match="bandwidth_fraction"):
        build_transform("bandpass", SR, bandwidth_fraction=2.5)


@pytest.mark.parametrize("sr,length", [(16000, 729), (16000, 6561)])
def test_short_demo_clips(sr, length):
    """The demo and smoke scales crop 6 561 and 729 samples at 16 kHz."""
    x = noise(8, length)
    for preset in PRESETS:
        y = build_chain(preset, sr, p_chain=1.0)(x, generator=torch.Generator().manual_seed(0))
        assert y.shape == x.shape and torch.isfinite(y).all()
    shifted = build_transform("pitch_shift", sr, semitones=3.0)(x)
    assert shifted.shape == x.shape and torch.isfinite(shifted).all()


# ----------------------------------------------------------------------------- per row
def test_each_row_draws_its_own_parameters():
    x = tone(440.0, SR)[None, None].repeat(16, 1, 1)
    g = torch.Generator().manual_seed(0)  # seeded: an unlucky global draw could repeat a rounded value
    gains = build_transform("gain", SR)(x, generator=g)[:, 0, 1000] / x[:, 0, 1000]
    assert len(set(np.round(gains.numpy(), 6))) == 16
    shifted = build_transform("pitch_shift", SR)(x[:6], generator=g)
    freqs = [peak_hz(row) for row in shifted]
    assert len(set(np.round(freqs, 1))) == 6
    y = build_chain("semisupcon", SR, p_chain=1.0)(x, generator=torch.Generator().manual_seed(3))
    distinct = {tuple(np.round(row[0, ::997].numpy(), 5)) for row in y}
    assert len(distinct) >= 14


def test_probabilities_hold_statistically():
    n = 2000
    x = noise(n, 256, seed=1)
    g = torch.Generator().manual_seed(0)
    sigma = math.sqrt(0.25 / n)
    # one transform at p = 0.4
    rate = changed_rows(x, build_transform("gain", SR, p=0.4, gain_db=-6.0)(x, generator=g)).float().mean()
    assert abs(float(rate) - 0.4) < 5 * sigma
    # the whole-chain probability, with a transform that always fires
    chain = augment.Chain([build_transform("polarity", SR)], p_chain=0.3)
    rate = changed_rows(x, chain(x, generator=g)).float().mean()
    assert abs(float(rate) - 0.3) < 5 * sigma
    # the preset at p_chain = 0.8: a row changes unless every coin flip fails
    p_none = 0.6 * 0.4 * 0.4 * 0.7 * 0.4 * 0.4
    chain = build_chain("semisupcon", SR)
    x_short = noise(400, 4096, seed=2)
    rate = changed_rows(x_short, chain(x_short, generator=g)).float().mean()
    assert abs(float(rate) - 0.8 * (1 - p_none)) < 5 * math.sqrt(0.25 / 400)


def test_severity_scales_probabilities_and_ranges():
    chain = build_chain("semisupcon", SR, severity=2.0)
    assert chain.p_chain == 1.0
    rows = {(r["transform"], r["parameter"]): r for r in describe("semisupcon", severity=2.0)}
    assert rows[("gain", "gain_db")]["p"] == pytest.approx(0.8)
    assert (rows[("gain", "gain_db")]["min"], rows[("gain", "gain_db")]["max"]) == (-30.0, 10.0)
    assert rows[("polarity", "")]["p"] == 1.0
    assert (rows[("colored_noise", "snr_db")]["min"], rows[("colored_noise", "snr_db")]["max"]) == (1.5, 15.0)
    assert (rows[("colored_noise", "f_decay")]["min"], rows[("colored_noise", "f_decay")]["max"]) == (-4.0, 4.0)
    assert (rows[("lowpass", "cutoff_hz")]["min"], rows[("lowpass", "cutoff_hz")]["max"]) == (75.0, 3500.0)
    assert (rows[("highpass", "cutoff_hz")]["min"], rows[("highpass", "cutoff_hz")]["max"]) == (400.0, 4800.0)
    assert rows[("lowpass", "cutoff_hz")]["p"] == pytest.approx(0.6)
    assert (rows[("pitch_shift", "semitones")]["min"], rows[("pitch_shift", "semitones")]["max"]) == (-8.0, 8.0)
    assert (rows[("delay", "wet")]["min"], rows[("delay", "wet")]["max"]) == (0.5, 1.0)
    assert (rows[("delay", "attenuation_db")]["min"], rows[("delay", "attenuation_db")]["max"]) == (-3.0, -1.5)
    assert build_chain("semisupcon", SR, severity=0.5).p_chain == pytest.approx(0.4)
    assert build_chain("semisupcon", SR, severity=0.5, p_chain=0.6).p_chain == pytest.approx(0.3)
    # band edges: the octave distance from the centre ÷ s (band-pass) or × s (band-stop)
    params = {"center_hz": torch.tensor([1000.0]), "bandwidth_fraction": torch.tensor([1.0])}
    lo, hi = build_transform("bandpass", SR, severity=2.0).edges(params)
    assert (float(lo), float(hi)) == pytest.approx((1000 * 0.5**0.5, 1000 * 1.5**0.5), rel=1e-5)
    lo, hi = build_transform("bandstop", SR, severity=2.0).edges(params)
    assert (float(lo), float(hi)) == pytest.approx((250.0, 2250.0), rel=1e-5)


def test_describe_table_for_docs():
    rows = describe("semisupcon")
    assert rows[0]["transform"] == "whole chain" and rows[0]["p"] == 0.8
    names = [r["transform"] for r in rows[1:]]
    order = list(dict.fromkeys(names))
    assert order == ["gain", "polarity", "colored_noise", "lowpass", "highpass", "bandpass", "bandstop",
                     "pitch_shift", "delay"]
    table = format_table(rows)
    assert table.splitlines()[0].startswith("| transform | p |") and "| delay | 0.6 |" in table
    clmr = {r["transform"]: r["p"] for r in describe("clmr")}
    assert clmr == {"whole chain": 1.0, "polarity": 0.8, "white_noise": 0.01, "gain": 0.3, "lowpass": 0.8,
                    "highpass": 0.8, "delay": 0.3, "pitch_shift": 0.6, "reverb": 0.6}


def test_exclude_leaves_named_transforms_out_and_keeps_the_rest():
    full = build_chain("semisupcon", SR)
    names = [type(t).__name__ for t in full.stages]
    chain = build_chain("semisupcon", SR, exclude=["pitch_shift"])
    assert [type(t).__name__ for t in chain.stages] == [n for n in names if n != "PitchShift"]
    assert augment.preset_transforms("semisupcon") == ["gain", "polarity", "colored_noise", "lowpass", "highpass",
                                                       "bandpass", "bandstop", "pitch_shift", "delay"]
    # a one-of group loses a member, or disappears once empty
    one = build_chain("semisupcon", SR, exclude=["lowpass", "highpass"])
    group = [t for t in one.stages if isinstance(t, augment.OneOf)][0]
    assert [m.name for m in group.members] == ["bandpass", "bandstop"]
    none = build_chain("semisupcon", SR, exclude=["lowpass", "highpass", "bandpass", "bandstop"])
    assert not any(isinstance(t, augment.OneOf) for t in none.stages)
    # everything excluded: the identity (a copy)
    x = noise(2, 4096)
    everything = build_chain("semisupcon", SR, exclude=augment.preset_transforms("semisupcon"))
    assert torch.equal(everything(x), x)
    with pytest.raises(ValueError, match="cannot exclude.*pich_shift"):
        build_chain("semisupcon", SR, exclude=["pich_shift"])
    with pytest.raises(ValueError, match="exclude whole stages"):
        build_chain("semisupcon", SR, fast=False, exclude=["lowpass"])


def test_reference_chain_honours_excluded_stages():
    ref = build_chain("semisupcon", SR, fast=False, exclude=["pitch_shift"])
    shift = dict(zip(ref.names, ref.transforms))["pitch_shift"]
    assert shift.p == 0.0


# ----------------------------------------------------------------------------- effects
def test_gain_is_exact_in_db():
    x = noise(3)
    for db in (-6.0, 5.0, -15.0):
        y = build_transform("gain", SR, gain_db=db)(x)
        torch.testing.assert_close(y, x * 10 ** (db / 20), rtol=1e-6, atol=0)


def test_polarity_flips_the_sign():
    x = noise(3)
    assert torch.equal(build_transform("polarity", SR)(x), -x)


@pytest.mark.parametrize("snr", [3.0, 10.0, 30.0])
def test_colored_noise_hits_its_snr(snr):
    x = tone(440.0)[None, None].repeat(3, 1, 1)
    y = build_transform("colored_noise", SR, snr_db=snr, f_decay=(-2.0, 2.0))(x)
    added = (y - x).flatten(1).double()
    measured = 10 * torch.log10(x.flatten(1).double().square().sum(1) / added.square().sum(1))
    torch.testing.assert_close(measured, torch.full((3,), snr, dtype=torch.float64), atol=0.01, rtol=0)


def test_colored_noise_slope_follows_decay():
    """Amplitude ∝ f^(−f_decay) above ~100 Hz: the power slope is −6.02·f_decay dB/octave."""
    x = torch.zeros(1, 1, T)
    x[..., ::100] = 1.0  # any non-silent signal: the noise level is relative to it
    for decay in (-2.0, -1.0, 0.0, 1.0, 2.0):
        y = build_transform("colored_noise", SR, snr_db=0.0, f_decay=decay)(x)
        slope = spectral_slope_db_per_octave(y - x)
        assert slope == pytest.approx(-6.02 * decay, abs=1.0), decay


def test_lowpass_and_highpass_attenuate_as_specified():
    # passband ≤ 3 dB loss well inside, ≥ 20 dB one octave and more past the cutoff
    assert abs(filtered_tone_gain("lowpass", 250.0, cutoff_hz=1000.0)) < 3.0
    assert filtered_tone_gain("lowpass", 2000.0, cutoff_hz=1000.0) < -20.0
    assert filtered_tone_gain("lowpass", 6000.0, cutoff_hz=1000.0) < -20.0
    assert abs(filtered_tone_gain("highpass", 4000.0, cutoff_hz=1000.0)) < 3.0
    assert filtered_tone_gain("highpass", 500.0, cutoff_hz=1000.0) < -20.0
    assert filtered_tone_gain("highpass", 120.0, cutoff_hz=1000.0) < -20.0


def test_butterworth_response_matches_the_formula():
    """CLMR's filters: order-2 Butterworth, |H|² = 1 / (1 + (f/fc)^4)."""
    for ratio in (1.0, 2.0, 4.0):
        expected = -10 * math.log10(1 + ratio**4)
        got = filtered_tone_gain("lowpass", 500.0 * ratio, cutoff_hz=500.0, response="butterworth")
        assert got == pytest.approx(expected, abs=0.1)
        got = filtered_tone_gain("highpass", 2000.0 / ratio, cutoff_hz=2000.0, response="butterworth")
        assert got == pytest.approx(expected, abs=0.1)


def test_band_filters_pass_and_notch():
    band = {"center_hz": 1000.0, "bandwidth_fraction": 0.5}  # edges 750 … 1250 Hz
    assert filtered_tone_gain("bandstop", 1000.0, **band) < -20.0
    for outside in (250.0, 4000.0):
        assert abs(filtered_tone_gain("bandstop", outside, **band)) < 3.0
        assert filtered_tone_gain("bandpass", outside, **band) < -20.0
    assert abs(filtered_tone_gain("bandpass", 1000.0, **band)) < 3.0


@pytest.mark.parametrize("semitones", [3.0, -4.0, 0.5, 4.0])
def test_pitch_shift_lands_within_ten_cents(semitones):
    x = tone(440.0)[None, None]
    y = build_transform("pitch_shift", SR, semitones=semitones)(x)
    target = 440.0 * 2 ** (semitones / 12)
    assert abs(cents(peak_hz(y), target)) < 10.0
    assert abs(gain_db(x, y)) < 1.0  # loudness preserved


def test_pitch_shift_is_batched_per_row():
    x = torch.stack([tone(440.0), tone(330.0), tone(440.0)])[:, None]
    y = dsp.pitch_shift(x[:, 0], torch.tensor([3.0, -4.0, 0.0]), SR)
    for row, base, st in zip(y, (440.0, 330.0, 440.0), (3.0, -4.0, 0.0)):
        assert abs(cents(peak_hz(row), base * 2 ** (st / 12))) < 10.0
    assert (y[2] - x[2, 0]).abs().max() < 1e-4  # no shift: reconstruction


def test_delay_puts_echoes_at_the_configured_lags_and_levels():
    x = noise(2, T, seed=5)
    delay_ms, att, wet = 200.0, -6.0, 0.5
    y = build_transform("delay", SR, delay_ms=delay_ms, reflections=2, attenuation_db=att, wet=wet)(x)
    lag = round(delay_ms * SR / 1000)
    n_fft = 2 * T
    for xi, yi in zip(x[:, 0].double(), y[:, 0].double()):
        xc = torch.fft.irfft(torch.fft.rfft(yi, n_fft) * torch.fft.rfft(xi, n_fft).conj(), n_fft)[:T]
        xc = xc / xi.square().sum()
        peaks = torch.topk(xc[1:], 2).indices + 1
        assert sorted(peaks.tolist()) == [lag, 2 * lag]
        assert float(xc[0]) == pytest.approx(1.0, abs=0.02)
        # echo k overlaps the clip on T − k·lag samples (its start lies before the clip)
        assert float(xc[lag]) == pytest.approx(wet * 10 ** (att / 20) * (T - lag) / T, abs=0.02)
        assert float(xc[2 * lag]) == pytest.approx(wet * 10 ** (2 * att / 20) * (T - 2 * lag) / T, abs=0.02)
        assert abs(float(xc[3 * lag])) < 0.02


def test_delay_steps_and_reflection_counts():
    t = build_transform("delay", SR, delay_ms=(200.0, 500.0), delay_step_ms=50.0)
    params = t.sample(500, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert set(params["delay_ms"].tolist()) == {200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 500.0}
    assert set(params["reflections"].tolist()) == {1.0, 2.0, 3.0}


def test_reverb_tail_decays_at_its_rt60():
    x = torch.zeros(1, 1, T)
    x[..., 2205] = 1.0  # an impulse at 0.1 s
    rt60 = augment.REVERB_RT60_RANGE[0] + 0.5 * (augment.REVERB_RT60_RANGE[1] - augment.REVERB_RT60_RANGE[0])
    y = build_transform("reverb", SR, room_size=50.0, damping=0.0, reverberance=100.0)(x)[0, 0].double()
    a, b = (y[2205 + int(s * SR) : 2205 + int((s + 0.05) * SR)].square().sum() for s in (0.1, 0.4))
    assert 10 * math.log10(float(a / b)) == pytest.approx(60 * 0.3 / rt60, abs=3.0)


# ----------------------------------------------------------------------------- reference
def _ta(name, **kw):
    """A torch-audiomentations transform with p = 1.  Most of them refuse min == max, so a
    "fixed" parameter is given the range (v, v·(1 + 1e-6))."""
    import torch_audiomentations as ta

    kw = {k: (v + abs(v) * 1e-6 if k.startswith("max_") and kw.get("min_" + k[4:]) == v else v) for k, v in kw.items()}
    return getattr(ta, name)(p=1.0, sample_rate=SR, output_type="dict", **kw)


def _band(center, fraction):
    return {"min_center_frequency": center, "max_center_frequency": center,
            "min_bandwidth_fraction": fraction, "max_bandwidth_fraction": fraction}


@pytest.mark.parametrize("ours,params,theirs,their_params,margin", [
    ("lowpass", {"cutoff_hz": 150.0}, "LowPassFilter", {"min_cutoff_freq": 150.0, "max_cutoff_freq": 150.0}, 0),
    ("lowpass", {"cutoff_hz": 7000.0}, "LowPassFilter", {"min_cutoff_freq": 7000.0, "max_cutoff_freq": 7000.0}, 0),
    ("highpass", {"cutoff_hz": 800.0}, "HighPassFilter", {"min_cutoff_freq": 800.0, "max_cutoff_freq": 800.0}, 0),
    ("bandpass", {"center_hz": 300.0, "bandwidth_fraction": 1.5}, "BandPassFilter", _band(300.0, 1.5), 0),
    ("bandstop", {"center_hz": 2000.0, "bandwidth_fraction": 0.5}, "BandStopFilter", _band(2000.0, 0.5), 0),
    # lower edge 15 Hz: a 5 880-sample kernel, longer than the edge padding, so only the
    # interior is identical (the first/last FILTER_MAX_PAD samples differ by < 1e-3)
    ("bandpass", {"center_hz": 300.0, "bandwidth_fraction": 1.9}, "BandPassFilter", _band(300.0, 1.9),
     dsp.FILTER_MAX_PAD),
])
def test_filters_equal_torch_audiomentations(ours, params, theirs, their_params, margin):
    """The FFT filters reproduce julius' windowed-sinc filters (torch-audiomentations)."""
    x = noise(2)
    fast = build_transform(ours, SR, **params)(x)
    ref = _ta(theirs, **their_params)(x, sample_rate=SR).samples
    inner = slice(margin, T - margin)
    torch.testing.assert_close(fast[..., inner], ref[..., inner], atol=1e-4, rtol=0)
    torch.testing.assert_close(fast, ref, atol=1e-3, rtol=0)


def test_gain_polarity_noise_agree_with_torch_audiomentations():
    x = noise(2)
    ref = _ta("Gain", min_gain_in_db=-6.0, max_gain_in_db=-6.0)(x, sample_rate=SR).samples
    torch.testing.assert_close(build_transform("gain", SR, gain_db=-6.0)(x), ref, rtol=1e-6, atol=0)
    ref = _ta("PolarityInversion")(x, sample_rate=SR).samples
    assert torch.equal(build_transform("polarity", SR)(x), ref)
    for decay in (-1.0, 1.5):
        kw = {"min_snr_in_db": 10.0, "max_snr_in_db": 10.0, "min_f_decay": decay, "max_f_decay": decay}
        theirs = _ta("AddColoredNoise", **kw)(x, sample_rate=SR).samples - x
        ours = build_transform("colored_noise", SR, snr_db=10.0, f_decay=decay)(x) - x
        for a, b in zip(ours, theirs):
            # same SNR (theirs RMS-normalises a 1 s buffer and tiles it, so it is off by ~0.05 dB)
            assert gain_db(a, b, margin=1) == pytest.approx(0.0, abs=0.2)
            assert spectral_slope_db_per_octave(a) == pytest.approx(spectral_slope_db_per_octave(b), abs=1.0)


def test_pitch_shift_quality_at_least_matches_torch_audiomentations():
    """Both land on their target; ours leaves no more distortion around the shifted tone."""
    from torch_pitch_shift import pitch_shift as ta_pitch_shift

    from torch_pitch_shift import get_fast_shifts

    fast_shifts = get_fast_shifts(SR)  # the ratios torch-audiomentations' PitchShift draws from
    x = tone(440.0)[None, None]
    for semitones in (3.0, -4.0):
        ratio = min(fast_shifts, key=lambda r: abs(math.log2(r) * 12 - semitones))
        theirs = ta_pitch_shift(x, ratio, SR)
        ours = build_transform("pitch_shift", SR, semitones=12 * math.log2(ratio))(x)
        target = 440.0 * float(ratio)
        assert abs(cents(peak_hz(theirs), target)) < 10.0
        assert abs(cents(peak_hz(ours), target)) < 10.0
        assert residual_snr_db(ours, target) >= residual_snr_db(theirs, target) - 1.0


def test_pitch_shift_keeps_note_envelopes_at_least_as_well_as_torch_audiomentations():
    """Phase locking keeps onsets and decays in place (a plain phase vocoder smears them)."""
    from torch_pitch_shift import get_fast_shifts, pitch_shift as ta_pitch_shift

    x = notes()
    fast_shifts = get_fast_shifts(SR)
    for semitones in (3.0, -4.0):
        ratio = min(fast_shifts, key=lambda r: abs(math.log2(r) * 12 - semitones))
        ours = envelope_corr(x, dsp.pitch_shift(x[:, 0], torch.tensor([12 * math.log2(ratio)]), SR))
        plain = envelope_corr(x, dsp.pitch_shift(x[:, 0], torch.tensor([12 * math.log2(ratio)]), SR, lock_bins=0))
        theirs = envelope_corr(x, ta_pitch_shift(x, ratio, SR))
        assert ours > 0.85 and ours >= theirs - 0.02 and ours > plain + 0.1, (ours, theirs, plain)


def test_reference_chain_runs_in_eval_mode():
    ref = build_chain("semisupcon", SR, p_chain=1.0, fast=False).eval()
    x = noise(4, 22050)
    torch.manual_seed(0)
    y = ref(x)
    assert y.shape == x.shape and torch.isfinite(y).all() and changed_rows(x, y).any()
    with pytest.raises(ValueError, match="semisupcon"):
        build_chain("clmr", SR, fast=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_chain_runs_on_cuda():
    x = noise(8).cuda()
    for preset in PRESETS:
        chain = build_chain(preset, SR, p_chain=1.0).cuda()
        y = chain(x, generator=torch.Generator(device="cuda").manual_seed(0))
        assert y.device == x.device and torch.isfinite(y).all() and changed_rows(x, y).any()
    y = build_transform("pitch_shift", SR, semitones=3.0)(tone(440.0)[None, None].cuda())
    assert abs(cents(peak_hz(y.cpu()), 440.0 * 2 ** 0.25)) < 10.0
