"""The chain: :class:`OneOf` groups, :class:`Chain`, and :func:`build_chain` from a preset."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

from .. import dsp
from .presets import DEFAULT_PRESET, DEFAULT_SAMPLE_RATE, PRESETS, OneOfSpec, Preset, Spec
from .transforms import FrequencyFilter, Transform, _apply_rows, _as_rows, _coin, build_transform


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
    chain assembled from torch-audiomentations 0.12 transforms plus our delay (the reference
    path in ``benchmarks/reference_chain.py``; it uses the global RNGs and ignores ``generator``).
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
        try:  # the reference lives beside the benchmark and the tests that use it
            from benchmarks.reference_chain import reference_chain
        except ImportError as err:
            raise ImportError("build_chain(fast=False) builds the torch-audiomentations reference from "
                              "benchmarks/reference_chain.py: run from a source checkout (the repository root on "
                              "sys.path) with torch-audiomentations installed.") from err
        return reference_chain(spec, sample_rate, severity, chain_p)
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
