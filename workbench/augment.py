"""Augmentation chains for contrastive learning of music audio, batched on the device.

:func:`build_chain` returns a :class:`Chain`: an ``nn.Module`` (it moves with ``.to``) that
maps ``[B, 1, T]`` waveforms to augmented ``[B, 1, T]`` waveforms, every row (every view)
drawing its own coin flips and parameters, all rows processed together with torch ops on
the input's device.  Two presets (:data:`PRESETS`, printable with :func:`describe`):

``semisupcon``  SemiSupCon Table 1, in this order, each transform with its own p:
    gain 0.4 (−15…+5 dB); polarity inversion 0.6; coloured noise 0.6 (SNR 3…30 dB,
    f_decay −2…+2); one of four filters, each 0.3 (low-pass 150…7000 Hz; high-pass
    200…2400 Hz; band-pass / band-stop centre 200…4000 Hz, bandwidth fraction 0.5…1.99);
    pitch shift 0.6 (±4 semitones); delay 0.6 (100…500 ms, 1…3 reflections, −6…−3 dB per
    reflection, wet 0.25…1); the whole chain with p = 0.8.
``clmr``        CLMR (Spijkervet & Burgoyne 2021, section 3.1 / appendix B): polarity 0.8,
    white noise 0.01 (SNR 80 dB), gain 0.3 (−6…0 dB), low-pass (2.2…4 kHz) or high-pass
    (0.2…1.2 kHz) 0.8, delay 0.3 (200…500 ms in 50 ms steps, one echo at 0.5), pitch
    shift 0.6 (±5 semitones), reverb 0.6 (room size, damping, reverberance 0…100).
    The random crop belongs to the data loader, not here.

How the fast path works (see :mod:`workbench.dsp`): gain and polarity fold into one
per-row multiplier; every other transform runs once on the rows its coin flip selected
(the others pay nothing); the four filters share one rFFT with per-row magnitude
responses (the exact responses of torch-audiomentations' julius filters); coloured noise
is shaped in one inverse FFT; pitch shift is one batched phase vocoder; delay is a
gather with per-row lags.  ``build_chain(..., fast=False)`` assembles the same
``semisupcon`` chain from torch-audiomentations 0.12 transforms instead (the reference
used by the benchmark and the equivalence tests).

A :class:`Chain` never stops augmenting in ``.eval()`` mode (torch-audiomentations
silently does); switch it off explicitly with ``chain.enabled = False``.  It never
modifies its input, runs under ``torch.no_grad`` or not, and takes an optional
``generator`` for reproducible draws.

Severity (SemiSupCon section 5.3: "scale probabilities by s, multiply or divide the
min and max of each parameter by s"), defined here so that s = 1 is the training chain,
s = 0 is exactly the identity and larger s is harsher:

- every probability p → min(1, p·s), including the whole-chain probability;
- gain: dB range × s;  pitch shift: semitone range × s (capped at ±12);
- noise: SNR range (dB) ÷ s;  colour exponent range × s;
- low-pass: cutoffs ÷ s (toward and past Nyquist, where it passes everything);
- high-pass: cutoffs × s;
- band-pass: the distance of each band edge from the centre, in octaves, ÷ s (narrower);
- band-stop: that distance × s (a wider notch);
- delay: wet level × s (capped at 1), attenuation per reflection (dB) ÷ s; lag and
  number of reflections unchanged;
- reverb (clmr): room size and reverberance × s (capped at 100).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import torch
from torch import nn

from . import dsp

__all__ = [
    "DEFAULT_PRESET",
    "DEFAULT_SAMPLE_RATE",
    "PRESETS",
    "TRANSFORMS",
    "Chain",
    "OneOf",
    "Preset",
    "Spec",
    "Transform",
    "build_chain",
    "build_transform",
    "describe",
    "format_table",
    "preset_transforms",
]

DEFAULT_PRESET = "semisupcon"
DEFAULT_SAMPLE_RATE = 22050
#: Pitch shifts are capped at one octave either way (severity can ask for more).
MAX_SEMITONES = 12.0
#: Reverb: room size 0…100 maps linearly to RT60 in this range (seconds); damping 0…100
#: moves a first-order low-pass on the tail from Nyquist down to REVERB_DAMPED_HZ (log).
REVERB_RT60_RANGE = (0.1, 1.5)
REVERB_DAMPED_HZ = 1000.0
REVERB_SCALE_MAX = 100.0


# =============================================================================== specs
@dataclass(frozen=True)
class Spec:
    """One transform of a preset: registry name, probability and parameters.

    params: a (min, max) pair per ranged parameter, a scalar to fix it, or an option."""

    name: str
    p: float
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OneOfSpec:
    """Each row picks one member uniformly, which then applies with its own p."""

    members: tuple[Spec, ...]


@dataclass(frozen=True)
class Preset:
    """A whole chain as data: stages in order and the whole-chain probability."""

    name: str
    p_chain: float
    stages: tuple[Spec | OneOfSpec, ...]
    source: str = ""


PRESETS: dict[str, Preset] = {
    "semisupcon": Preset(
        name="semisupcon",
        p_chain=0.8,
        source="SemiSupCon (Guinot et al. 2024) Table 1",
        stages=(
            Spec("gain", 0.4, {"gain_db": (-15.0, 5.0)}),
            Spec("polarity", 0.6),
            Spec("colored_noise", 0.6, {"snr_db": (3.0, 30.0), "f_decay": (-2.0, 2.0)}),
            OneOfSpec((
                Spec("lowpass", 0.3, {"cutoff_hz": (150.0, 7000.0)}),
                Spec("highpass", 0.3, {"cutoff_hz": (200.0, 2400.0)}),
                Spec("bandpass", 0.3, {"center_hz": (200.0, 4000.0), "bandwidth_fraction": (0.5, 1.99)}),
                Spec("bandstop", 0.3, {"center_hz": (200.0, 4000.0), "bandwidth_fraction": (0.5, 1.99)}),
            )),
            Spec("pitch_shift", 0.6, {"semitones": (-4.0, 4.0)}),
            Spec("delay", 0.6, {"delay_ms": (100.0, 500.0), "reflections": (1, 3),
                                "attenuation_db": (-6.0, -3.0), "wet": (0.25, 1.0)}),
        ),
    ),
    "clmr": Preset(
        name="clmr",
        p_chain=1.0,
        source="CLMR (Spijkervet & Burgoyne 2021) section 3.1 and appendix B",
        stages=(
            Spec("polarity", 0.8),
            Spec("white_noise", 0.01, {"snr_db": 80.0}),
            Spec("gain", 0.3, {"gain_db": (-6.0, 0.0)}),
            OneOfSpec((
                Spec("lowpass", 0.8, {"cutoff_hz": (2200.0, 4000.0), "response": "butterworth",
                                      "cutoff_scale": "linear"}),
                Spec("highpass", 0.8, {"cutoff_hz": (200.0, 1200.0), "response": "butterworth",
                                       "cutoff_scale": "linear"}),
            )),
            Spec("delay", 0.3, {"delay_ms": (200.0, 500.0), "delay_step_ms": 50.0, "reflections": 1,
                                "attenuation_db": 20 * math.log10(0.5), "wet": 1.0}),
            Spec("pitch_shift", 0.6, {"semitones": (-5.0, 5.0)}),
            Spec("reverb", 0.6, {"room_size": (0.0, 100.0), "damping": (0.0, 100.0),
                                 "reverberance": (0.0, 100.0)}),
        ),
    ),
}


# =============================================================================== params
@dataclass(frozen=True)
class Param:
    """A ranged parameter: default (min, max), unit, how severity scales it, how it is drawn.

    severity: "mul" (× s), "div" (÷ s), "mul_cap1" (× s, at most 1), "mul_cap100", "none".
    draw: "uniform", "mel" (uniform on the mel scale, as torch-audiomentations draws
    cutoffs), "int" (uniform integer in [min, max])."""

    default: tuple[float, float]
    unit: str = ""
    severity: str = "none"
    draw: str = "uniform"


def _scale(value: float, s: float, rule: str) -> float:
    if rule == "none":
        return value
    if rule == "mul":
        return value * s
    if rule == "div":
        if s == 0:
            return math.copysign(math.inf, value) if value else 0.0
        return value / s
    if rule == "mul_cap1":
        return min(1.0, value * s)
    if rule == "mul_cap100":
        return min(REVERB_SCALE_MAX, value * s)
    raise ValueError(f"unknown severity rule {rule!r}")


# =============================================================================== transforms
class Transform(nn.Module):
    """One augmentation applied per row with probability ``p``.

    Subclasses declare ``PARAMS`` (ranged, drawn per row) and ``OPTIONS`` (fixed choices),
    and implement :meth:`apply` on the selected rows ``[n, T]`` with their drawn
    parameters.  ``forward`` accepts ``[B, 1, T]`` or ``[B, T]`` and returns a new tensor.
    """

    name: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Param]] = {}
    OPTIONS: ClassVar[dict[str, Any]] = {}
    #: A pure per-row multiplier (gain, polarity): the chain folds these together.
    is_multiplier: ClassVar[bool] = False

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE, p: float = 1.0, severity: float = 1.0, **params: Any):
        super().__init__()
        if sample_rate <= 0:
            raise ValueError(f"{self.name}: sample_rate must be positive, got {sample_rate}.")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{self.name}: p must lie in [0, 1], got {p}.")
        if severity < 0:
            raise ValueError(f"{self.name}: severity must be >= 0, got {severity}.")
        unknown = set(params) - set(self.PARAMS) - set(self.OPTIONS)
        if unknown:
            allowed = sorted(set(self.PARAMS) | set(self.OPTIONS))
            raise ValueError(f"{self.name}: unknown parameter(s) {sorted(unknown)}; allowed: {allowed}.")
        self.sample_rate = int(sample_rate)
        self.severity = float(severity)
        self.p = min(1.0, float(p) * self.severity)
        self.options = {key: params.get(key, default) for key, default in self.OPTIONS.items()}
        self.ranges: dict[str, tuple[float, float]] = {}
        for key, spec in self.PARAMS.items():
            value = params.get(key, spec.default)
            lo, hi = (value, value) if not isinstance(value, (tuple, list)) else value
            lo, hi = float(lo), float(hi)
            if lo > hi:
                raise ValueError(f"{self.name}: {key} range ({lo}, {hi}) has min > max.")
            scaled = sorted((_scale(lo, self.severity, spec.severity), _scale(hi, self.severity, spec.severity)))
            self.ranges[key] = (scaled[0], scaled[1])
        self._validate()

    # -- hooks -------------------------------------------------------------------------
    def _validate(self) -> None:
        """Check options and ranges (subclasses)."""

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor],
              generator: torch.Generator | None) -> torch.Tensor:
        """Transform the selected rows ``x`` [n, T] with their parameters (each [n])."""
        raise NotImplementedError

    def multiplier(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-row factor [n] for multiplier transforms."""
        raise NotImplementedError

    # -- sampling ----------------------------------------------------------------------
    def sample(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Draw every ranged parameter for ``n`` rows."""
        out = {}
        for key, spec in self.PARAMS.items():
            lo, hi = self.ranges[key]
            u = dsp.random_uniform((n,), device=device, generator=generator)
            draw = self.draw(key, spec)
            if lo == hi or math.isinf(lo) or math.isinf(hi):
                # fixed; or an infinite bound from severity 0 (never applied there: p = 0)
                out[key] = torch.full((n,), hi if math.isinf(hi) and not math.isinf(lo) else lo, device=device)
            elif draw == "int":
                out[key] = torch.minimum(torch.floor(lo + u * (hi - lo + 1)), torch.tensor(hi, device=device))
            elif draw == "mel":
                m_lo, m_hi = dsp.hz_to_mel(torch.tensor([lo, hi], device=device))
                out[key] = dsp.mel_to_hz(m_lo + u * (m_hi - m_lo))
            else:
                out[key] = lo + u * (hi - lo)
        return out

    def draw(self, key: str, spec: Param) -> str:
        """How parameter ``key`` is drawn ("uniform", "mel" or "int")."""
        return spec.draw

    # -- application -------------------------------------------------------------------
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        rows, restore = _as_rows(x)
        y = rows.clone()
        selected = _coin(torch.arange(len(y), device=y.device), self.p, generator)
        _apply_rows(self, y, selected, generator)
        return restore(y)

    def extra_repr(self) -> str:
        parts = [f"p={self.p:g}"] + [f"{k}={v}" for k, v in self.ranges.items()]
        parts += [f"{k}={v!r}" for k, v in self.options.items()]
        return ", ".join(parts)


def _as_rows(x: torch.Tensor):
    """[B, 1, T] or [B, T] float → ([B, T] float32 view/copy, function restoring shape/dtype)."""
    if not torch.is_tensor(x):
        raise TypeError(f"augmentations take a torch.Tensor [B, 1, T], got {type(x).__name__}.")
    if x.dim() == 3 and x.shape[1] == 1:
        shape = x.shape
    elif x.dim() == 2:
        shape = x.shape
    else:
        raise ValueError(
            f"augmentations take mono batches [B, 1, T] (or [B, T]), got shape {tuple(x.shape)}; "
            "mix down to mono or reshape views to rows first."
        )
    if not x.is_floating_point():
        raise TypeError(f"augmentations take floating-point audio, got {x.dtype}.")
    dtype = x.dtype
    rows = x.reshape(shape[0], shape[-1]).to(torch.float32)

    def restore(y: torch.Tensor) -> torch.Tensor:
        return y.to(dtype).reshape(shape)

    return rows, restore


def _coin(rows: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """The subset of ``rows`` (indices) whose coin flip with probability p came up."""
    if p <= 0 or rows.numel() == 0:
        return rows[:0]
    if p >= 1:
        return rows
    flips = dsp.random_uniform((rows.numel(),), device=rows.device, generator=generator) < p
    return rows[flips]


def _apply_rows(t: Transform, y: torch.Tensor, selected: torch.Tensor, generator: torch.Generator | None) -> None:
    """Apply ``t`` in place to rows ``selected`` of ``y`` (our own buffer)."""
    if selected.numel() == 0:
        return
    params = t.sample(selected.numel(), y.device, generator)
    if t.is_multiplier:
        y[selected] = y[selected] * t.multiplier(params)[:, None]
        return
    whole = selected.numel() == y.shape[0]
    sub = y if whole else y.index_select(0, selected)
    out = t.apply(sub, params, generator)
    if whole:
        y.copy_(out)
    else:
        y.index_copy_(0, selected, out)


class Gain(Transform):
    """Multiply by 10^(gain_db/20)."""

    name = "gain"
    PARAMS = {"gain_db": Param((-15.0, 5.0), "dB", "mul")}
    is_multiplier = True

    def multiplier(self, params):
        return dsp.db_to_amplitude(params["gain_db"])


class Polarity(Transform):
    """Multiply by −1."""

    name = "polarity"
    is_multiplier = True

    def sample(self, n, device, generator=None):
        return {"sign": torch.full((n,), -1.0, device=device)}

    def multiplier(self, params):
        return params["sign"]


class ColoredNoise(Transform):
    """Add Gaussian noise with amplitude spectrum ∝ f^(−f_decay) at a given SNR (dB).

    The noise RMS is rms(x)·10^(−SNR/20), so the SNR is exact per row; the colour follows
    torch-audiomentations' AddColoredNoise (:func:`workbench.dsp.colored_noise_mask`)."""

    name = "colored_noise"
    PARAMS = {
        "snr_db": Param((3.0, 30.0), "dB", "div"),
        "f_decay": Param((-2.0, 2.0), "exponent", "mul"),
    }

    def _validate(self):
        lo, hi = self.ranges["f_decay"]
        cap = dsp.MAX_F_DECAY
        self.ranges["f_decay"] = (max(-cap, lo), min(cap, hi))

    def apply(self, x, params, generator):
        noise = dsp.colored_noise(x.shape[0], x.shape[1], params["f_decay"], self.sample_rate,
                                  device=x.device, generator=generator)
        level = dsp.rms(x) * dsp.db_to_amplitude(-params["snr_db"])[:, None]
        return x + level * noise


class WhiteNoise(ColoredNoise):
    """Add white Gaussian noise at a given SNR (dB)."""

    name = "white_noise"
    PARAMS = {"snr_db": Param((80.0, 80.0), "dB", "div")}

    def _validate(self):
        pass

    def sample(self, n, device, generator=None):
        out = super().sample(n, device, generator)
        out["f_decay"] = torch.zeros(n, device=device)
        return out


class FrequencyFilter(Transform):
    """Base of the zero-phase FFT-domain filters: :meth:`response` gives per-row gains.

    response="sinc": julius' windowed sinc (torch-audiomentations' filters), exact;
    response="butterworth": an order-``order`` Butterworth magnitude (CLMR's biquads are
    order 2).  cutoff_scale: "mel" draws cutoffs uniformly on the mel scale (as
    torch-audiomentations), "linear" uniformly in Hz (as CLMR)."""

    OPTIONS = {"response": "sinc", "order": 2, "cutoff_scale": "mel"}

    def _validate(self):
        if self.options["response"] not in ("sinc", "butterworth"):
            raise ValueError(f"{self.name}: response must be 'sinc' or 'butterworth', "
                             f"got {self.options['response']!r}.")
        if self.options["cutoff_scale"] not in ("mel", "linear"):
            raise ValueError(f"{self.name}: cutoff_scale must be 'mel' or 'linear', "
                             f"got {self.options['cutoff_scale']!r}.")
        if int(self.options["order"]) < 1:
            raise ValueError(f"{self.name}: order must be >= 1, got {self.options['order']}.")
        for key, (lo, hi) in self.ranges.items():
            if key.endswith("_hz") and lo <= 0:
                raise ValueError(f"{self.name}: {key} must be positive, got ({lo}, {hi}).")

    def draw(self, key, spec):
        if key.endswith("_hz"):
            return "mel" if self.options["cutoff_scale"] == "mel" else "uniform"
        return spec.draw

    @property
    def nyquist(self) -> float:
        return self.sample_rate / 2.0

    def _sinc(self, cutoff: torch.Tensor, half_size: torch.Tensor) -> torch.Tensor:
        return dsp.sinc_lowpass_kernels(cutoff.clamp(max=self.nyquist), half_size, self.sample_rate)

    def _impulse(self, kernels: torch.Tensor) -> torch.Tensor:
        delta = torch.zeros_like(kernels)
        delta[:, kernels.shape[1] // 2] = 1.0
        return delta

    def kernels(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Windowed-sinc kernels [n, 2K + 1] of each row (response="sinc")."""
        raise NotImplementedError

    def butterworth(self, freqs: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Butterworth gains [n, F] of each row (response="butterworth")."""
        raise NotImplementedError

    def response(self, freqs: torch.Tensor, n_fft: int, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Real gains [n, F] at the ``n_fft``-point rFFT frequencies ``freqs`` (Hz), per row."""
        if self.options["response"] == "sinc":
            return dsp.kernel_response(self.kernels(params), n_fft)
        return self.butterworth(freqs, params)

    def _butter(self, freqs: torch.Tensor, cutoff: torch.Tensor, highpass: bool = False) -> torch.Tensor:
        return dsp.butterworth_response(freqs, cutoff, int(self.options["order"]), highpass=highpass)

    def padding(self, params: dict[str, torch.Tensor]) -> int:
        """Replicate padding needed so that the filter acts linearly (its kernel half-length)."""
        lowest = float(self.lowest_cutoff(params).min())
        if not math.isfinite(lowest) or lowest >= self.nyquist:
            return 0
        if self.options["response"] == "sinc":
            need = float(dsp.sinc_half_size(torch.tensor(lowest), self.sample_rate))
        else:  # a Butterworth's impulse response has died out after a few cutoff periods
            need = 2.0 * int(self.options["order"]) * self.sample_rate / lowest
        return int(min(dsp.FILTER_MAX_PAD, math.ceil(need) + 1))

    def lowest_cutoff(self, params) -> torch.Tensor:
        raise NotImplementedError

    def apply(self, x, params, generator):
        return dsp.filter_fft(x, lambda f, n: self.response(f, n, params), self.sample_rate, pad=self.padding(params))


class LowPass(FrequencyFilter):
    """Low-pass at ``cutoff_hz``; severity divides the cutoff range (s → 0 passes all)."""

    name = "lowpass"
    PARAMS = {"cutoff_hz": Param((150.0, 7000.0), "Hz", "div", "mel")}

    def lowest_cutoff(self, params):
        return params["cutoff_hz"]

    def kernels(self, params):
        cutoff = params["cutoff_hz"].clamp(max=self.nyquist)
        return self._sinc(cutoff, dsp.sinc_half_size(cutoff, self.sample_rate))

    def butterworth(self, freqs, params):
        return self._butter(freqs, params["cutoff_hz"])


class HighPass(FrequencyFilter):
    """High-pass at ``cutoff_hz`` (julius: the input minus its low-pass); severity multiplies
    the cutoff range."""

    name = "highpass"
    PARAMS = {"cutoff_hz": Param((200.0, 2400.0), "Hz", "mul", "mel")}

    def _validate(self):
        lo, hi = self.ranges["cutoff_hz"]
        if self.severity == 0:  # only reachable with p = 0; keep the range valid
            self.ranges["cutoff_hz"] = (max(lo, 1e-3), max(hi, 1e-3))
        super()._validate()

    def lowest_cutoff(self, params):
        return params["cutoff_hz"]

    def kernels(self, params):
        cutoff = params["cutoff_hz"].clamp(max=self.nyquist)
        lowpass = self._sinc(cutoff, dsp.sinc_half_size(cutoff, self.sample_rate))
        return self._impulse(lowpass) - lowpass

    def butterworth(self, freqs, params):
        return self._butter(freqs, params["cutoff_hz"], highpass=True)


class BandPass(FrequencyFilter):
    """Band-pass around ``center_hz`` from c·(1 − b/2) to c·(1 + b/2), b the bandwidth
    fraction (< 2), as torch-audiomentations (julius: low-pass at the upper edge minus
    low-pass at the lower edge, both with the lower edge's kernel length).  Severity s
    divides each edge's distance from the centre in octaves by s."""

    name = "bandpass"
    PARAMS = {
        "center_hz": Param((200.0, 4000.0), "Hz", "none", "mel"),
        "bandwidth_fraction": Param((0.5, 1.99), "", "none"),
    }
    #: +1: edges move away from the centre with s (band-stop), −1: toward it (band-pass).
    width_exponent = -1.0

    def _validate(self):
        lo, hi = self.ranges["bandwidth_fraction"]
        if not 0 < lo <= hi < 2:
            raise ValueError(f"{self.name}: bandwidth_fraction must lie in (0, 2), got ({lo}, {hi}).")
        super()._validate()

    def edges(self, params) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper band edges (Hz) after severity scaling."""
        c, b = params["center_hz"], params["bandwidth_fraction"]
        lo, hi = c * (1.0 - b / 2.0), c * (1.0 + b / 2.0)
        if self.severity != 1.0 and self.severity > 0:
            k = self.severity ** self.width_exponent
            lo, hi = c * torch.pow(lo / c, k), c * torch.pow(hi / c, k)
        return lo.clamp(min=1e-3), hi

    def lowest_cutoff(self, params):
        return self.edges(params)[0]

    def kernels(self, params):
        lo, hi = self.edges(params)
        half = dsp.sinc_half_size(lo.clamp(max=self.nyquist), self.sample_rate)
        return self._sinc(hi, half) - self._sinc(lo, half)

    def butterworth(self, freqs, params):
        lo, hi = self.edges(params)
        return self._butter(freqs, hi) * self._butter(freqs, lo, highpass=True)


class BandStop(BandPass):
    """Band-stop: the input minus its band-pass; severity multiplies the notch's width in
    octaves."""

    name = "bandstop"
    width_exponent = 1.0

    def kernels(self, params):
        band = super().kernels(params)
        return self._impulse(band) - band

    def butterworth(self, freqs, params):
        return 1.0 - super().butterworth(freqs, params)


class PitchShift(Transform):
    """Shift the pitch by ``semitones`` keeping the duration (:func:`workbench.dsp.pitch_shift`)."""

    name = "pitch_shift"
    PARAMS = {"semitones": Param((-4.0, 4.0), "semitones", "mul")}

    def _validate(self):
        lo, hi = self.ranges["semitones"]
        self.ranges["semitones"] = (max(-MAX_SEMITONES, lo), min(MAX_SEMITONES, hi))

    def apply(self, x, params, generator):
        length = x.shape[1]
        n_fft = dsp.pv_window_length(self.sample_rate)
        while n_fft > length // 2 and n_fft > 4 * dsp.PV_OVERLAP:  # short clips: a shorter window
            n_fft //= 2
        if length <= n_fft + n_fft // dsp.PV_OVERLAP:  # a few dozen samples: nothing to shift
            return x.clone()
        return dsp.pitch_shift(x, params["semitones"], self.sample_rate, n_fft=n_fft)


class Delay(Transform):
    """Echoes: ``y = x + wet · Σ_{k=1..n} 10^(k·a/20) · x(t − k·d)`` (:func:`workbench.dsp.echoes`).

    d = delay_ms (rounded to ``delay_step_ms`` if set, CLMR uses 50 ms), n = reflections,
    a = attenuation_db per reflection.  "Wet/dry" is the crossfade between the dry input
    and the delay unit's output (dry + echoes), which is the same as scaling the echoes."""

    name = "delay"
    PARAMS = {
        "delay_ms": Param((100.0, 500.0), "ms", "none"),
        "reflections": Param((1, 3), "", "none", "int"),
        "attenuation_db": Param((-6.0, -3.0), "dB/reflection", "div"),
        "wet": Param((0.25, 1.0), "", "mul_cap1"),
    }
    OPTIONS = {"delay_step_ms": 0.0}

    def _validate(self):
        lo, _ = self.ranges["delay_ms"]
        if lo <= 0:
            raise ValueError(f"delay: delay_ms must be positive, got {self.ranges['delay_ms']}.")
        r_lo, r_hi = self.ranges["reflections"]
        if r_lo < 0 or r_lo != int(r_lo) or r_hi != int(r_hi):
            raise ValueError(f"delay: reflections must be non-negative integers, got {self.ranges['reflections']}.")
        if self.ranges["attenuation_db"][1] > 0:
            raise ValueError("delay: attenuation_db must be <= 0 (dB per reflection), "
                             f"got {self.ranges['attenuation_db']}.")

    def sample(self, n, device, generator=None):
        out = super().sample(n, device, generator)
        step = float(self.options["delay_step_ms"])
        if step > 0:
            lo, hi = self.ranges["delay_ms"]
            count = math.floor((hi - lo) / step + 1e-9) + 1  # lo, lo + step, …, ≤ hi
            k = torch.floor(dsp.random_uniform((n,), device=device, generator=generator) * count).clamp(max=count - 1)
            out["delay_ms"] = lo + step * k
        return out

    def apply(self, x, params, generator):
        lag = torch.round(params["delay_ms"] * self.sample_rate / 1000.0).clamp(min=1).long()
        return dsp.echoes(x, lag, params["reflections"].long(), params["attenuation_db"], params["wet"])


class Reverb(Transform):
    """Add a synthetic room (exponentially decaying noise, :func:`workbench.dsp.reverb_impulse`).

    room_size 0…100 → RT60 in REVERB_RT60_RANGE; damping 0…100 → a first-order low-pass on
    the tail from Nyquist down to REVERB_DAMPED_HZ; reverberance 0…100 → wet level 0…1:
    ``y = x + wet · (x ∗ h)`` with h of unit energy."""

    name = "reverb"
    PARAMS = {
        "room_size": Param((0.0, 100.0), "%", "mul_cap100"),
        "damping": Param((0.0, 100.0), "%", "none"),
        "reverberance": Param((0.0, 100.0), "%", "mul_cap100"),
    }

    def apply(self, x, params, generator):
        lo, hi = REVERB_RT60_RANGE
        rt60 = lo + (hi - lo) * params["room_size"] / REVERB_SCALE_MAX
        nyquist = self.sample_rate / 2.0
        damping_hz = nyquist * torch.pow(REVERB_DAMPED_HZ / nyquist, params["damping"] / REVERB_SCALE_MAX)
        length = int(min(x.shape[1], math.ceil(float(rt60.max()) * self.sample_rate)))
        h = dsp.reverb_impulse(rt60, damping_hz, self.sample_rate, length, device=x.device, generator=generator)
        wet = (params["reverberance"] / REVERB_SCALE_MAX)[:, None]
        return x + wet * dsp.fft_convolve(x, h)


TRANSFORMS: dict[str, type[Transform]] = {
    cls.name: cls
    for cls in (Gain, Polarity, ColoredNoise, WhiteNoise, LowPass, HighPass, BandPass, BandStop,
                PitchShift, Delay, Reverb)
}


class OneOf(nn.Module):
    """Each row picks one member uniformly at random; the member then applies with its own
    p.  Members that are all FFT filters share one rFFT."""

    def __init__(self, members: Sequence[Transform]):
        super().__init__()
        if not members:
            raise ValueError("OneOf needs at least one member transform.")
        self.members = nn.ModuleList(members)

    def forward_rows(self, y: torch.Tensor, rows: torch.Tensor, generator: torch.Generator | None) -> None:
        """Apply in place to rows ``rows`` of ``y``."""
        if rows.numel() == 0:
            return
        count = len(self.members)
        pick = torch.floor(dsp.random_uniform((rows.numel(),), device=y.device, generator=generator) * count)
        pick = pick.clamp(max=count - 1).long()
        chosen = [_coin(rows[pick == m], member.p, generator) for m, member in enumerate(self.members)]
        if all(isinstance(m, FrequencyFilter) for m in self.members):
            self._fused_filters(y, chosen, generator)
            return
        for member, selected in zip(self.members, chosen):
            _apply_rows(member, y, selected, generator)

    def _fused_filters(self, y, chosen, generator) -> None:
        parts = [(m, sel, m.sample(sel.numel(), y.device, generator))
                 for m, sel in zip(self.members, chosen) if sel.numel()]
        if not parts:
            return
        selected = torch.cat([sel for _, sel, _ in parts])
        pad = max(m.padding(params) for m, _, params in parts)
        sample_rate = parts[0][0].sample_rate

        def response(freqs, n_fft):
            return torch.cat([m.response(freqs, n_fft, params) for m, _, params in parts])

        out = dsp.filter_fft(y.index_select(0, selected), response, sample_rate, pad=pad)
        y.index_copy_(0, selected, out)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        rows, restore = _as_rows(x)
        y = rows.clone()
        self.forward_rows(y, torch.arange(len(y), device=y.device), generator)
        return restore(y)


# =============================================================================== chain
def _materialize(rows: torch.Tensor, y: torch.Tensor | None, factor: torch.Tensor | None) -> torch.Tensor:
    """The working copy with any pending multiplier applied (a copy of ``rows`` at first)."""
    base = rows if y is None else y
    if factor is not None:
        return base * factor[:, None]
    return base.clone() if y is None else y


class Chain(nn.Module):
    """An ordered augmentation chain applied per row with probability ``p_chain``.

    ``chain(x, generator=None)``: x [B, 1, T] (or [B, T]) on any device → a new tensor of
    the same shape, dtype and device.  Augments in train and eval mode alike; set
    ``enabled = False`` to pass inputs through (as a copy)."""

    def __init__(self, stages: Iterable[Transform | OneOf], p_chain: float = 1.0, *,
                 sample_rate: int = DEFAULT_SAMPLE_RATE, preset: str | None = None, severity: float = 1.0):
        super().__init__()
        if not 0.0 <= p_chain <= 1.0:
            raise ValueError(f"p_chain must lie in [0, 1], got {p_chain}.")
        self.stages = nn.ModuleList(stages)
        self.p_chain = float(p_chain)
        self.sample_rate = int(sample_rate)
        self.preset = preset
        self.severity = float(severity)
        self.enabled = True

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        rows, restore = _as_rows(x)
        if not self.enabled or self.p_chain <= 0 or rows.shape[0] == 0:
            return restore(rows.clone())
        with torch.autocast(device_type=rows.device.type, enabled=False):
            active = _coin(torch.arange(rows.shape[0], device=rows.device), self.p_chain, generator)
            y: torch.Tensor | None = None  # our working copy, created on first need
            factor: torch.Tensor | None = None  # pending per-row multiplier (gain, polarity)
            for stage in self.stages:
                if isinstance(stage, Transform) and stage.is_multiplier:
                    selected = _coin(active, stage.p, generator)
                    if selected.numel():
                        factor = torch.ones(rows.shape[0], device=rows.device) if factor is None else factor
                        params = stage.sample(selected.numel(), rows.device, generator)
                        factor[selected] = factor[selected] * stage.multiplier(params)
                    continue
                y, factor = _materialize(rows, y, factor), None
                if isinstance(stage, OneOf):
                    stage.forward_rows(y, active, generator)
                else:
                    _apply_rows(stage, y, _coin(active, stage.p, generator), generator)
            y = _materialize(rows, y, factor)
        return restore(y)

    def describe(self) -> list[dict[str, Any]]:
        """This chain's transforms, probabilities and (severity-scaled) ranges as rows."""
        rows = []
        for stage in self.stages:
            for t in stage.members if isinstance(stage, OneOf) else [stage]:
                group = "one of" if isinstance(stage, OneOf) else ""
                if not t.ranges:
                    rows.append({"transform": t.name, "p": t.p, "group": group, "parameter": "",
                                 "min": None, "max": None, "unit": ""})
                for key, (lo, hi) in t.ranges.items():
                    rows.append({"transform": t.name, "p": t.p, "group": group, "parameter": key,
                                 "min": lo, "max": hi, "unit": t.PARAMS[key].unit})
        return rows

    def extra_repr(self) -> str:
        return f"preset={self.preset!r}, p_chain={self.p_chain:g}, severity={self.severity:g}, enabled={self.enabled}"


# =============================================================================== builders
def build_transform(name: str, sample_rate: int = DEFAULT_SAMPLE_RATE, *, p: float = 1.0,
                    severity: float = 1.0, **params: Any) -> Transform:
    """One transform by registry name (:data:`TRANSFORMS`), p = 1 by default.

    Parameters are ranges ``(min, max)`` or scalars to fix them, e.g.
    ``build_transform("lowpass", 22050, cutoff_hz=1000.0)``."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; choose one of {sorted(TRANSFORMS)}.")
    return TRANSFORMS[name](sample_rate=sample_rate, p=p, severity=severity, **params)


def _preset(preset: str) -> Preset:
    if preset not in PRESETS:
        raise ValueError(f"unknown augmentation preset {preset!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[preset]


def preset_transforms(preset: str) -> list[str]:
    """Registry names of every transform in ``preset``, in chain order (one-of members too)."""
    return [s.name for stage in _preset(preset).stages
            for s in (stage.members if isinstance(stage, OneOfSpec) else (stage,))]


def _without(spec: Preset, exclude: Sequence[str]) -> Preset:
    """``spec`` with the named transforms removed (an emptied one-of group disappears)."""
    exclude = tuple(exclude)
    if not exclude:
        return spec
    names = preset_transforms(spec.name)
    unknown = sorted(set(exclude) - set(names))
    if unknown:
        raise ValueError(f"cannot exclude {unknown} from augmentation preset {spec.name!r}: it has "
                         f"{names}.")
    stages: list[Spec | OneOfSpec] = []
    for stage in spec.stages:
        if isinstance(stage, OneOfSpec):
            members = tuple(m for m in stage.members if m.name not in exclude)
            if members:
                stages.append(OneOfSpec(members))
        elif stage.name not in exclude:
            stages.append(stage)
    return replace(spec, stages=tuple(stages))


def build_chain(preset: str = DEFAULT_PRESET, sample_rate: int = DEFAULT_SAMPLE_RATE, severity: float = 1.0, *,
                p_chain: float | None = None, fast: bool = True, exclude: Sequence[str] = ()) -> nn.Module:
    """The augmentation chain of ``preset`` (:data:`PRESETS`) at ``severity``.

    Returns a :class:`Chain` (``fast=True``), or with ``fast=False`` the same ``semisupcon``
    chain assembled from torch-audiomentations 0.12 transforms plus this module's delay
    (the reference path; it uses the global RNGs and ignores ``generator``).
    severity: see the module docstring; 1 = training chain, 0 = identity.
    p_chain: overrides the preset's whole-chain probability (still scaled by severity).
    exclude: transform names (:func:`preset_transforms`) left out of the chain, e.g.
    ``("pitch_shift",)``; the other stages keep their order and probabilities.
    """
    base = _preset(preset)
    spec = _without(base, exclude)
    if severity < 0 or not math.isfinite(severity):
        raise ValueError(f"severity must be a finite number >= 0, got {severity}.")
    chain_p = min(1.0, (spec.p_chain if p_chain is None else float(p_chain)) * severity)
    if not fast:
        grouped = {m.name for st in base.stages if isinstance(st, OneOfSpec) for m in st.members}
        if grouped & set(exclude):
            raise ValueError("fast=False cannot exclude filter members of the one-of group (the "
                             "torch-audiomentations OneOf would still pick them); exclude whole stages only.")
        return _reference_chain(spec, sample_rate, severity, chain_p)
    stages: list[Transform | OneOf] = []
    for stage in spec.stages:
        if isinstance(stage, OneOfSpec):
            stages.append(OneOf([build_transform(m.name, sample_rate, p=m.p, severity=severity, **m.params)
                                 for m in stage.members]))
        else:
            stages.append(build_transform(stage.name, sample_rate, p=stage.p, severity=severity, **stage.params))
    return Chain(stages, chain_p, sample_rate=sample_rate, preset=preset, severity=severity)


def describe(preset: str = DEFAULT_PRESET, severity: float = 1.0,
             sample_rate: int = DEFAULT_SAMPLE_RATE) -> list[dict[str, Any]]:
    """The preset as table rows (transform, p, group, parameter, min, max, unit), after
    severity scaling; the first row is the whole chain's probability."""
    chain = build_chain(preset, sample_rate, severity)
    head = {"transform": "whole chain", "p": chain.p_chain, "group": "", "parameter": "", "min": None,
            "max": None, "unit": ""}
    return [head] + chain.describe()


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of :func:`describe` rows."""
    def fmt(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:g}"
        return str(v)

    cols = ["transform", "p", "group", "parameter", "min", "max", "unit"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


# =============================================================================== reference
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


def _reference_chain(spec: Preset, sample_rate: int, severity: float, p_chain: float) -> nn.Module:
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
        from types import SimpleNamespace

        return SimpleNamespace(samples=self.delay(x))
