"""Augmentation presets as data (:data:`PRESETS`) and the severity rules (:class:`Param`).

A preset lists its stages in order, each a :class:`Spec` (registry name, p, parameters) or
a :class:`OneOfSpec` group, and the whole-chain probability.  How severity s scales each
ranged parameter is the :class:`Param` rule applied by :func:`_scale` (the table of rules
is in :mod:`workbench.augment`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

DEFAULT_PRESET = "semisupcon"
DEFAULT_SAMPLE_RATE = 22050
#: Pitch shifts are capped at one octave either way (severity can ask for more).
MAX_SEMITONES = 12.0
#: Reverb room size and reverberance run 0…100; severity caps them there.
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
