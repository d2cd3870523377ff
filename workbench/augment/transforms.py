"""The transforms: one ``nn.Module`` each, applied per row with its own probability.

Every transform draws its parameters per row (:meth:`Transform.sample`) and runs once on
the rows its coin flip selected; the signal processing lives in :mod:`workbench.dsp`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from .. import dsp
from .presets import DEFAULT_SAMPLE_RATE, MAX_SEMITONES, REVERB_SCALE_MAX, Param, _scale

#: Reverb: room size 0…100 maps linearly to RT60 in this range (seconds); damping 0…100
#: moves a first-order low-pass on the tail from Nyquist down to REVERB_DAMPED_HZ (log).
REVERB_RT60_RANGE = (0.1, 1.5)
REVERB_DAMPED_HZ = 1000.0


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


def build_transform(name: str, sample_rate: int = DEFAULT_SAMPLE_RATE, *, p: float = 1.0,
                    severity: float = 1.0, **params: Any) -> Transform:
    """One transform by registry name (:data:`TRANSFORMS`), p = 1 by default.

    Parameters are ranges ``(min, max)`` or scalars to fix them, e.g.
    ``build_transform("lowpass", 22050, cutoff_hz=1000.0)``."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; choose one of {sorted(TRANSFORMS)}.")
    return TRANSFORMS[name](sample_rate=sample_rate, p=p, severity=severity, **params)
