"""Batched DSP primitives for waveform augmentation, in torch, on any device.

Every function takes a batch ``x: [B, T]`` (float32) plus per-example parameters as
``[B]`` tensors, and returns a new ``[B, T]`` tensor: inputs are never modified and each
example gets its own parameters in one vectorised pass (no Python loop over examples).

What is here, and the reference each one reproduces:

- :func:`filter_fft` applies a zero-phase response in one ``rfft`` for the whole batch
  (edges replicate-padded like julius).  :func:`sinc_lowpass_kernels` builds julius'
  windowed-sinc low-pass kernels (the filters behind torch-audiomentations' LowPass /
  HighPass / BandPass / BandStopFilter, ``zeros=8``) for every row at once and
  :func:`kernel_response` turns them into responses with one more batched ``rfft``: the
  output equals julius' convolution, without a Python loop over clips;
  :func:`butterworth_response` is the magnitude of an order-n Butterworth filter (a
  biquad with Q = 1/√2 is order 2, as in torchaudio-augmentations).
- :func:`colored_noise` draws 1/f^decay noise directly in the frequency domain, with the
  spectral shape of torch-audiomentations' AddColoredNoise (but not tiled from a 1 s
  buffer).
- :func:`pitch_shift` is a phase vocoder that shifts the spectrum (bin remapping,
  instantaneous-frequency phase propagation, identity phase locking) instead of
  time-stretching and then resampling: one STFT and one inverse for the whole batch,
  each example with its own shift, no resampling, the output frequency exact up to
  rounding.
- :func:`echoes` (delay lines with several reflections) and :func:`fft_convolve` /
  :func:`reverb_impulse` (a synthetic exponentially decaying room response).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from scipy.fft import next_fast_len as _scipy_next_fast_len

__all__ = [
    "SINC_ZEROS",
    "butterworth_response",
    "colored_noise",
    "colored_noise_mask",
    "db_to_amplitude",
    "echoes",
    "fft_convolve",
    "filter_fft",
    "hz_to_mel",
    "mel_to_hz",
    "next_fast_len",
    "pitch_shift",
    "pv_window_length",
    "random_normal",
    "random_uniform",
    "reverb_impulse",
    "rms",
    "sinc_half_size",
    "sinc_lowpass_kernels",
    "kernel_response",
]

TWO_PI = 2.0 * math.pi

#: Zero crossings kept by julius' windowed-sinc low-pass (its and torch-audiomentations'
#: default): the kernel half-length is ``zeros / (2 · cutoff / sample_rate)`` samples.
SINC_ZEROS = 8
#: Longest windowed-sinc half-length built (taps either side): julius' rule gives
#: 88 200 for a 1 Hz edge (a band-pass at 200 Hz with fraction 1.99); only cutoffs below
#: ~0.7 Hz, reachable at high severities, get this shorter kernel.
SINC_MAX_HALF_SIZE = 1 << 17
#: Replicate padding (samples) around a clip before FFT filtering, at most this much:
#: covers the kernel of every filter whose lowest cutoff is above ~20 Hz at 22.05 kHz.
FILTER_MAX_PAD = 4096
#: Phase-vocoder analysis window (seconds, rounded to a power of two in samples: 2048 at
#: 22.05 kHz, librosa's default) and overlap factor (hop = window / overlap; 4 keeps the
#: instantaneous frequency unambiguous over the Hann main lobe).
PV_WINDOW_SECONDS = 0.093
PV_OVERLAP = 4
#: Identity phase locking: bins follow the loudest bin within this many bins (the Hann
#: main lobe spans ±2 bins, ±2.5 after an upward shift of 4 semitones).
PV_LOCK_BINS = 3
#: A silent clip has RMS 0: divisions by an RMS are floored here.
EPS = 1e-12
#: Highest colour exponent accepted by :func:`colored_noise` (the mask spans ~40 dB per
#: unit of decay across the band, so larger values only produce numerical dust).
MAX_F_DECAY = 8.0


# ----------------------------------------------------------------------------- basics
def next_fast_len(n: int) -> int:
    """Smallest length ≥ n whose real FFT is fast (a 2·3·5-smooth number)."""
    return int(_scipy_next_fast_len(int(n), real=True))


def db_to_amplitude(db: torch.Tensor) -> torch.Tensor:
    """Decibels to amplitude ratio, 10^(dB/20); −inf dB gives 0."""
    return torch.pow(10.0, db / 20.0)


def rms(x: torch.Tensor, dim: int = -1, keepdim: bool = True) -> torch.Tensor:
    """Root mean square along ``dim``."""
    return x.square().mean(dim=dim, keepdim=keepdim).sqrt()


def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    """HTK mel scale, 2595·log10(1 + f/700) (as torch-audiomentations samples cutoffs)."""
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (torch.pow(10.0, m / 2595.0) - 1.0)


def _draw(fn, shape: tuple[int, ...], device: torch.device, generator: torch.Generator | None,
          dtype: torch.dtype) -> torch.Tensor:
    """``fn`` (torch.rand / torch.randn) on ``device``, from ``generator`` on its own device if given."""
    if generator is None:
        return fn(shape, device=device, dtype=dtype)
    return fn(shape, generator=generator, device=generator.device, dtype=dtype).to(device)


def random_uniform(
    shape: tuple[int, ...],
    *,
    device: torch.device,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """U[0, 1) samples on ``device``, drawn from ``generator`` (on its own device) if given."""
    return _draw(torch.rand, shape, device, generator, dtype)


def random_normal(
    shape: tuple[int, ...],
    *,
    device: torch.device,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """N(0, 1) samples on ``device``, drawn from ``generator`` (on its own device) if given."""
    return _draw(torch.randn, shape, device, generator, dtype)


def _check_batch(x: torch.Tensor, name: str = "x") -> None:
    if x.dim() != 2:
        raise ValueError(f"{name} must be a [batch, samples] tensor, got shape {tuple(x.shape)}.")


# ----------------------------------------------------------------------------- filters
def sinc_half_size(cutoff_hz: torch.Tensor, sample_rate: float, zeros: float = SINC_ZEROS) -> torch.Tensor:
    """julius' kernel half-length for a cutoff, ``int(zeros / (cutoff / sample_rate) / 2)``,
    at most SINC_MAX_HALF_SIZE."""
    fc = (cutoff_hz / sample_rate).clamp(min=1e-9)
    return torch.floor(zeros / fc / 2.0).clamp(max=SINC_MAX_HALF_SIZE)


def sinc_lowpass_kernels(cutoff_hz: torch.Tensor, half_size: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """julius' windowed-sinc low-pass kernels, one row per example, centred: [n, 2·K_max + 1].

    Row i is ``2·fc·sinc(2·fc·t)·hann(t/K_i)`` for |t| ≤ K_i (zero beyond), normalised to
    unit sum, with fc = cutoff_i / sample_rate clamped to Nyquist (where the kernel is a
    unit impulse: the filter passes everything).  half_size K_i: see :func:`sinc_half_size`
    (a band-pass uses its lower edge's K for both of its low-passes, as julius does)."""
    k_max = int(half_size.max()) if half_size.numel() else 0
    t = torch.arange(-k_max, k_max + 1, device=cutoff_hz.device, dtype=cutoff_hz.dtype)
    fc = (cutoff_hz / sample_rate).clamp(0.0, 0.5)[:, None]
    k = half_size.to(cutoff_hz.dtype)[:, None].clamp(min=1.0)
    window = torch.where(t.abs() <= k, 0.5 * (1.0 + torch.cos(math.pi * t / k)), torch.zeros_like(k))
    kernel = 2.0 * fc * torch.sinc(2.0 * fc * t) * window
    return kernel / kernel.sum(-1, keepdim=True).clamp(min=EPS)


def kernel_response(kernels: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Frequency response [n, n_fft//2 + 1] of centred, symmetric kernels [n, 2K + 1].

    The kernel is laid out circularly (tap t at index t mod n_fft, so kernels longer than
    n_fft fold onto themselves: the DTFT sampled at the bins) and transformed once; being
    real and even, its spectrum is real."""
    half = (kernels.shape[-1] - 1) // 2
    index = torch.arange(-half, half + 1, device=kernels.device) % n_fft
    circular = kernels.new_zeros(kernels.shape[0], n_fft).index_add_(1, index, kernels)
    return torch.fft.rfft(circular).real


def butterworth_response(
    freqs_hz: torch.Tensor, cutoff_hz: torch.Tensor, order: int, highpass: bool = False
) -> torch.Tensor:
    """Magnitude [B, F] of an order-``order`` Butterworth low-/high-pass: 1/√(1 + (f/fc)^±2n)."""
    ratio = freqs_hz[None, :] / cutoff_hz[:, None].clamp(min=EPS)
    if highpass:
        ratio = 1.0 / ratio.clamp(min=EPS)
    return torch.rsqrt(1.0 + ratio.pow(2 * order))


def filter_fft(
    x: torch.Tensor,
    response: Callable[[torch.Tensor, int], torch.Tensor],
    sample_rate: float,
    pad: int = FILTER_MAX_PAD,
) -> torch.Tensor:
    """Filter every row of ``x`` [B, T] by a zero-phase (real) response in one FFT.

    response: ``(freqs, n_fft) → gains``: maps the rFFT bin frequencies in Hz, [F], of an
    ``n_fft``-point transform to real gains [B, F] (or [F]).
    pad: replicate padding on each side (julius pads the same way) so that kernels up to
    ``pad`` samples long act as a linear, not circular, convolution.
    """
    _check_batch(x)
    batch, length = x.shape
    pad = max(0, int(pad))
    n_fft = next_fast_len(length + 2 * pad)
    padded = F.pad(x[:, None, :], (pad, n_fft - length - pad), mode="replicate")[:, 0, :]
    freqs = torch.fft.rfftfreq(n_fft, d=1.0 / sample_rate, device=x.device).to(x.dtype)
    spectrum = torch.fft.rfft(padded, n=n_fft) * response(freqs, n_fft)
    return torch.fft.irfft(spectrum, n=n_fft)[:, pad : pad + length]


# ----------------------------------------------------------------------------- noise
def colored_noise_mask(freqs_hz: torch.Tensor, f_decay: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """Amplitude spectrum [B, F] of coloured noise, as torch-audiomentations defines it.

    AddColoredNoise multiplies a white spectrum by ``1 / linspace(1, √(sr/2), F)^f_decay``:
    a ramp ``1 + (√(sr/2) − 1)·f/(sr/2)`` (≈ f/√(sr/2) above ~100 Hz) raised to −f_decay.
    The amplitude spectrum falls as f^(−f_decay), the power spectrum as f^(−2·f_decay),
    i.e. by ≈ 6.02·f_decay dB per octave: 0 is white, > 0 darker, < 0 brighter.  (Table 1's
    "spectral decay −2…+2 dB/octave" is this exponent, as in the reference code.)"""
    nyquist = sample_rate / 2.0
    ramp = 1.0 + (math.sqrt(nyquist) - 1.0) * freqs_hz / nyquist
    return torch.pow(ramp[None, :], -f_decay[:, None])


def colored_noise(
    batch: int,
    length: int,
    f_decay: torch.Tensor,
    sample_rate: float,
    *,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Unit-RMS coloured Gaussian noise [batch, length], one colour per row.

    Drawn as a complex Gaussian spectrum shaped by :func:`colored_noise_mask` and inverted
    once for the whole batch (the spectrum of white Gaussian noise is complex Gaussian)."""
    if f_decay.numel() and float(f_decay.abs().max()) > MAX_F_DECAY:
        raise ValueError(f"f_decay must lie within ±{MAX_F_DECAY}, got {f_decay.tolist()}.")
    n_bins = length // 2 + 1
    white = torch.complex(
        random_normal((batch, n_bins), device=device, generator=generator),
        random_normal((batch, n_bins), device=device, generator=generator),
    )
    freqs = torch.fft.rfftfreq(length, d=1.0 / sample_rate, device=device)
    noise = torch.fft.irfft(white * colored_noise_mask(freqs, f_decay.to(device), sample_rate), n=length)
    return noise / rms(noise).clamp(min=EPS)


# ----------------------------------------------------------------------------- pitch
def pv_window_length(sample_rate: float) -> int:
    """Phase-vocoder window: the power of two nearest PV_WINDOW_SECONDS (2048 at 22.05 kHz)."""
    return int(2 ** round(math.log2(PV_WINDOW_SECONDS * sample_rate)))


def _local_peak(magnitude: torch.Tensor, width: int) -> torch.Tensor:
    """Index [B, M, F] of the largest magnitude within ±width bins of each bin.

    One max-pool: each value is encoded in float32 as (magnitude quantised to the
    24 − b bits left, relative to its frame's maximum) · 2^b + bin index, so the pooled
    maximum carries its own index in its low b bits.  Magnitudes closer than 2^(b − 24)
    of the frame maximum (−78 dB for 1 025 bins) tie; ties go to the higher bin."""
    batch, frames, bins = magnitude.shape
    index_bits = max(1, (bins - 1).bit_length())
    level_bits = 24 - index_bits
    if level_bits < 8:
        raise ValueError(f"_local_peak handles up to 65 536 bins, got {bins}.")
    scale = magnitude.amax(dim=-1, keepdim=True).clamp(min=EPS)
    code = torch.floor(magnitude * ((2.0**level_bits - 1) / scale)) * 2.0**index_bits
    code = code + torch.arange(bins, dtype=magnitude.dtype, device=magnitude.device)
    pooled = F.max_pool1d(code.view(-1, 1, bins), 2 * width + 1, stride=1, padding=width)
    return torch.bitwise_and(pooled.view(batch, frames, bins).to(torch.int32), (1 << index_bits) - 1).long()


def _wrap(phase: torch.Tensor) -> torch.Tensor:
    """Principal value in [−π, π] (round-based: cheaper than a remainder)."""
    return phase - TWO_PI * torch.round(phase * (1.0 / TWO_PI))


def pitch_shift(
    x: torch.Tensor,
    semitones: torch.Tensor,
    sample_rate: float,
    n_fft: int | None = None,
    overlap: int = PV_OVERLAP,
    lock_bins: int = PV_LOCK_BINS,
) -> torch.Tensor:
    """Shift the pitch of each row of ``x`` [B, T] by ``semitones`` [B]; duration unchanged.

    Phase vocoder with spectral remapping: output bin k takes the magnitude of source
    position k/r (linear interpolation; r = 2^(semitones/12)) and advances its phase by r
    times the instantaneous frequency of the nearest source bin, so a stationary partial
    at f comes out at exactly r·f.  Phases are anchored on the first frame that lies fully
    inside the clip (reflect-padded edges would otherwise bias them), and each bin keeps
    its analysis phase offset from the loudest bin within ±``lock_bins`` (identity phase
    locking, Laroche & Dolson 1999; 0 disables it), which keeps onsets and note envelopes
    in place.  Content that would land above Nyquist is dropped.  The output is rescaled so that its energy equals the
    energy of the input band that survives the shift (pitch shifting preserves loudness).

    Hann window of ``n_fft`` samples (default :func:`pv_window_length`), hop n_fft/overlap,
    weighted overlap-add with the same window.  Cost: one rFFT and one inverse over
    ~``overlap``·T/n_fft frames per clip, whatever the shifts.
    """
    _check_batch(x)
    batch, length = x.shape
    n_fft = int(n_fft or pv_window_length(sample_rate))
    if n_fft % overlap:
        raise ValueError(f"n_fft ({n_fft}) must be a multiple of overlap ({overlap}).")
    hop = n_fft // overlap
    if length <= n_fft + hop:
        raise ValueError(
            f"pitch_shift needs clips longer than n_fft + hop = {n_fft + hop} samples, got {length}; "
            "pass a smaller n_fft."
        )
    dtype, device = x.dtype, x.device
    window = torch.hann_window(n_fft, periodic=True, dtype=dtype, device=device)
    pad = n_fft  # full overlap-add coverage of every output sample
    right = pad + (-(length + 2 * pad - n_fft)) % hop
    padded = F.pad(x[:, None, :], (pad, right), mode="reflect")[:, 0, :]
    spec = torch.fft.rfft(padded.unfold(-1, n_fft, hop) * window, dim=-1)  # [B, M, F]
    n_frames, n_bins = spec.shape[1], spec.shape[2]
    magnitude, phase = spec.abs(), spec.angle()

    ratio = torch.exp2(semitones.to(device=device, dtype=dtype) / 12.0)
    bins = torch.arange(n_bins, dtype=dtype, device=device)
    source = bins[None, :] / ratio[:, None]  # [B, F] fractional source bin of each output bin
    inside = (source <= n_bins - 1).to(dtype)  # a source above Nyquist is silence
    lower = source.floor().clamp(max=n_bins - 2).long()
    nearest = source.round().clamp(max=n_bins - 1).long()

    def take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return values.gather(2, index[:, None, :].expand(-1, n_frames, -1))

    out_mag = torch.lerp(take(magnitude, lower), take(magnitude, lower + 1), (source - lower)[:, None, :])
    out_mag = out_mag * inside[:, None, :]
    src_phase = take(phase, nearest)
    # Per hop, bin j's phase advances by 2π·j·hop/n_fft plus a deviation in [−π, π); the
    # output advances r times as much.  The large bin-centre terms are reduced modulo 2π in
    # float64 first: in float32 their rounding would accumulate into audible phase noise.
    centre = nearest.to(torch.float64) * (hop / n_fft)  # cycles per hop
    expected = (TWO_PI * torch.frac(centre)).to(dtype)[:, None, :]
    shifted = (TWO_PI * torch.frac(centre * ratio.to(torch.float64)[:, None])).to(dtype)[:, None, :]
    deviation = _wrap(src_phase[:, 1:] - src_phase[:, :-1] - expected)
    advance = _wrap(shifted + ratio[:, None, None] * deviation)
    cumulative = F.pad(torch.cumsum(advance, dim=1), (0, 0, 1, 0))  # [B, M, F], 0 at frame 0
    # Work in the zero-phase convention (phase relative to the frame centre = phase + π·bin),
    # where the bins of one partial share their phase.  Anchor every bin on the first frame
    # that lies fully inside the clip, then accumulate its advances forwards and backwards.
    src_phase = src_phase + (math.pi * torch.remainder(nearest, 2).to(dtype))[:, None, :]
    anchor = min(n_frames - 1, -(-pad // hop))
    out_phase = (src_phase[:, anchor] - cumulative[:, anchor])[:, None, :] + cumulative
    if lock_bins > 0:
        # identity phase locking: each bin keeps its analysis phase offset from the
        # loudest bin within ±lock_bins (its partial's peak), which carries the
        # propagated phase; without it partials smear and beat ("phasiness")
        peak = _local_peak(out_mag, lock_bins)
        out_phase = (out_phase - src_phase).gather(2, peak) + src_phase
    out_mag = out_mag * (1.0 - 2.0 * torch.remainder(bins, 2))  # zero phase → torch's frames: × (−1)^bin
    spectrum = torch.complex(out_mag * torch.cos(out_phase), out_mag * torch.sin(out_phase))
    frames = torch.fft.irfft(spectrum, n=n_fft, dim=-1) * window  # [B, M, N]

    # overlap-add: frame m covers [m·hop, m·hop + n_fft), i.e. `overlap` hop-sized chunks
    chunks = frames.view(batch, n_frames, overlap, hop)
    total = frames.new_zeros(batch, n_frames + overlap - 1, hop)
    for j in range(overlap):
        total[:, j : j + n_frames] += chunks[:, :, j]
    y = total.reshape(batch, -1)[:, pad : pad + length]
    norm = (window * window).view(overlap, hop).sum(0)  # Σ_m w²(n − m·hop), periodic in hop
    y = y / norm.repeat(-(-(pad + length) // hop))[pad : pad + length]

    # loudness: the energy of the part of the input spectrum that the shift keeps
    power = magnitude.square()
    kept_bins = (bins[None, :] * ratio[:, None] <= n_bins - 1).to(dtype)  # [B, F]
    kept = (power * kept_bins[:, None, :]).sum(dim=(1, 2)) / power.sum(dim=(1, 2)).clamp(min=EPS)
    target = x.square().sum(-1) * kept
    gain = torch.sqrt(target / y.square().sum(-1).clamp(min=EPS))
    return y * gain[:, None]


# ----------------------------------------------------------------------------- echoes
def echoes(
    x: torch.Tensor,
    lag: torch.Tensor,
    reflections: torch.Tensor,
    attenuation_db: torch.Tensor,
    wet: torch.Tensor,
) -> torch.Tensor:
    """Multi-tap delay: ``y[t] = x[t] + wet · Σ_{k=1..n} 10^(k·a/20) · x[t − k·lag]``.

    lag: [B] integer samples (> 0); reflections n: [B] integers ≥ 0; attenuation a: [B]
    dB per reflection (≤ 0: reflection k is k·|a| dB down); wet: [B] echo level.
    Echoes that would start before the clip are silent (the clip's past is unknown)."""
    _check_batch(x)
    if lag.numel() and int(lag.min()) <= 0:
        raise ValueError(f"echo lags must be positive sample counts, got {lag.tolist()}.")
    batch, length = x.shape
    y = x.clone()
    if batch == 0:
        return y
    time = torch.arange(length, device=x.device)
    n_max = int(reflections.max())
    for k in range(1, n_max + 1):
        level = wet * db_to_amplitude(k * attenuation_db) * (reflections >= k).to(x.dtype)
        index = time[None, :] - (k * lag.long())[:, None]
        delayed = x.gather(1, index.clamp(min=0)) * (index >= 0).to(x.dtype)
        y = y + level[:, None] * delayed
    return y


# ----------------------------------------------------------------------------- reverb
def fft_convolve(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Causal linear convolution of each row of x [B, T] with its kernel h [B, L], cropped to T."""
    _check_batch(x)
    _check_batch(h, "h")
    length = x.shape[-1]
    n_fft = next_fast_len(length + h.shape[-1] - 1)
    return torch.fft.irfft(torch.fft.rfft(x, n=n_fft) * torch.fft.rfft(h, n=n_fft), n=n_fft)[:, :length]


def reverb_impulse(
    rt60: torch.Tensor,
    damping_hz: torch.Tensor,
    sample_rate: float,
    length: int,
    *,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Synthetic room responses [B, length]: Gaussian noise decaying by 60 dB in ``rt60`` s,
    high frequencies damped by a first-order low-pass at ``damping_hz``, unit energy.

    The direct sound is not included (add the dry signal yourself)."""
    batch = rt60.shape[0]
    t = torch.arange(length, device=device, dtype=torch.float32) / sample_rate
    envelope = torch.pow(10.0, -3.0 * t[None, :] / rt60.to(device)[:, None].clamp(min=1e-3))
    tail = random_normal((batch, length), device=device, generator=generator) * envelope
    freqs = torch.fft.rfftfreq(length, d=1.0 / sample_rate, device=device)
    tail = torch.fft.irfft(
        torch.fft.rfft(tail) * butterworth_response(freqs, damping_hz.to(device), order=1), n=length
    )
    return tail / tail.square().sum(-1, keepdim=True).sqrt().clamp(min=EPS)
