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
``semisupcon`` chain from torch-audiomentations 0.12 transforms instead: the reference
used by the benchmark and the equivalence tests, which lives beside them in
``benchmarks/reference_chain.py`` (a source checkout only).

The package: :mod:`~workbench.augment.presets` (presets as data, severity rules),
:mod:`~workbench.augment.transforms` (the transforms and their registry),
:mod:`~workbench.augment.chain` (one-of groups, the chain, the builders).

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

from .chain import Chain, OneOf, build_chain, describe, format_table, preset_transforms
from .presets import (DEFAULT_PRESET, DEFAULT_SAMPLE_RATE, MAX_SEMITONES, PRESETS, REVERB_SCALE_MAX, OneOfSpec, Param,
                      Preset, Spec)
from .transforms import (REVERB_DAMPED_HZ, REVERB_RT60_RANGE, TRANSFORMS, BandPass, BandStop, ColoredNoise, Delay,
                         FrequencyFilter, Gain, HighPass, LowPass, PitchShift, Polarity, Reverb, Transform, WhiteNoise,
                         build_transform)

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
