"""Encoders, heads, and loading pretrained encoders.

Every encoder maps a mono waveform batch ``[B, 1, T]`` to ``[B, out_dim]`` and exposes
``out_dim``, ``sample_rate``, ``clip_samples`` (recommended input length),
``min_samples`` and ``config`` (a JSON-serialisable dict ``{"name": ..., **kwargs}`` that
rebuilds it with :func:`build_encoder`).

Names (:data:`ENCODERS`): ``"samplecnn"``, ``"samplecnn_demo"``, ``"tunep"``, ``"cola"``.
Named configurations (:data:`ENCODER_PRESETS`) are accepted by :func:`build_encoder` too.

Checkpoint formats read by :func:`load_encoder` / :func:`load_pretrained`, detected from
their keys by :func:`workbench.models.layouts.detect_layout` (always read with
``torch.load(..., weights_only=True)``, see :mod:`workbench.models.serialization`):

(a) our Lightning checkpoints: ``{"hyper_parameters": {"config": {"encoder": {"name": str,
    **kwargs}, ...}}, "state_dict": {"encoder.<param>": tensor, "head.<param>": ..., ...}}``
    (other keys are ignored; ``head.*`` is the projection head);
(b) an encoder file written by :func:`save_encoder`: ``{"encoder": {"name": str, **kwargs},
    "state_dict": {<param>: tensor}, "meta": {...}}``, or its ``.safetensors`` form; or a
    bare encoder state dict saved as ``X.pt`` with a JSON side file ``X.json`` holding
    ``{"encoder": {"name": ..., ...}}``;
(c) the official CLMR and SemiSupCon checkpoints (Lightning checkpoints, CLMR's SimCLR
    state dicts, bare official SampleCNN state dicts), no side file needed: see
    :mod:`workbench.models.layouts` for the key layouts and the architecture mapping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .heads import ClassifierHead, ProjectionHead
from .layouts import ENCODER_PREFIX, HEAD_PREFIX, LAYOUTS, Parsed, detect_layout, head_config, parse
from .samplecnn import (
    DEMO_CHANNELS,
    DEMO_CLIP_SAMPLES,
    DEMO_SAMPLE_RATE,
    EMBEDDING_DIM,
    PAPER_CHANNELS,
    PAPER_CLIP_SAMPLES,
    PAPER_SAMPLE_RATE,
    SEMISUPCON_CLIP_SAMPLES,
    SampleCNN,
)
from .serialization import SAFETENSORS_SUFFIX, read_safetensors, safe_torch_load, write_safetensors
from .tunep import TUNePlus

__all__ = [
    "ENCODERS",
    "ENCODER_PRESETS",
    "build_encoder",
    "encoder_config",
    "load_encoder",
    "load_pretrained",
    "Pretrained",
    "save_encoder",
    "detect_layout",
    "LAYOUTS",
    "ENCODER_FILE_FORMATS",
    "SampleCNN",
    "TUNePlus",
    "ProjectionHead",
    "ClassifierHead",
]

#: File formats written by :func:`save_encoder`.
ENCODER_FILE_FORMATS = ("torch", "safetensors")
#: ``format`` entry of the metadata header of workbench safetensors encoder files.
SAFETENSORS_FORMAT_TAG = "workbench-encoder"
#: Prefix added by ``torch.compile`` wrappers.
COMPILE_PREFIX = "_orig_mod."


def _cola(**kw: Any) -> nn.Module:
    from .cola import COLAEncoder  # torchvision is imported only when needed

    return COLAEncoder(**kw)


#: Encoder name -> constructor.
ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "samplecnn": SampleCNN,
    "samplecnn_demo": SampleCNN.demo,
    "tunep": TUNePlus,
    "cola": _cola,
}

#: Named configurations: ``{"name": <ENCODERS key>, **kwargs}``.
ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    "samplecnn_paper": dict(
        name="samplecnn", sample_rate=PAPER_SAMPLE_RATE, channels=list(PAPER_CHANNELS),
        out_dim=EMBEDDING_DIM, clip_samples=PAPER_CLIP_SAMPLES,
    ),
    "samplecnn_semisupcon": dict(
        name="samplecnn", sample_rate=PAPER_SAMPLE_RATE, channels=list(PAPER_CHANNELS),
        out_dim=EMBEDDING_DIM, clip_samples=SEMISUPCON_CLIP_SAMPLES,
    ),
    "samplecnn_demo": dict(
        name="samplecnn", sample_rate=DEMO_SAMPLE_RATE, channels=list(DEMO_CHANNELS),
        out_dim=EMBEDDING_DIM, clip_samples=DEMO_CLIP_SAMPLES,
    ),
    "tunep_paper": dict(name="tunep", sample_rate=PAPER_SAMPLE_RATE, clip_samples=PAPER_CLIP_SAMPLES),
    "tunep_semisupcon": dict(name="tunep", sample_rate=PAPER_SAMPLE_RATE, clip_samples=SEMISUPCON_CLIP_SAMPLES),
    "tunep_demo": dict(
        name="tunep", sample_rate=DEMO_SAMPLE_RATE, base_channels=8, depth=3, tail_blocks=5,
        out_dim=EMBEDDING_DIM, clip_samples=DEMO_CLIP_SAMPLES,
    ),
    "cola": dict(name="cola"),
}


def build_encoder(name: str, **kwargs: Any) -> nn.Module:
    """Build an encoder by :data:`ENCODERS` name or :data:`ENCODER_PRESETS` name.

    Keyword arguments override the preset / constructor defaults, e.g.
    ``build_encoder("samplecnn_demo", impl="eager")``.
    """
    if name in ENCODERS:
        return ENCODERS[name](**kwargs)
    if name in ENCODER_PRESETS:
        cfg = dict(ENCODER_PRESETS[name])
        base = cfg.pop("name")
        cfg.update(kwargs)
        return ENCODERS[base](**cfg)
    raise ValueError(
        f"build_encoder: unknown encoder {name!r}; choose an encoder from {sorted(ENCODERS)} "
        f"or a preset from {sorted(ENCODER_PRESETS)}."
    )


def encoder_config(encoder: nn.Module) -> dict[str, Any]:
    """``{"name": ..., **kwargs}`` that rebuilds ``encoder`` with :func:`build_encoder`."""
    cfg = getattr(encoder, "config", None)
    if not isinstance(cfg, Mapping) or "name" not in cfg:
        raise ValueError(
            f"encoder_config: {type(encoder).__name__} has no `config` with a 'name'; only "
            f"encoders from workbench.models ({sorted(ENCODERS)}) can be saved and reloaded."
        )
    return dict(cfg)


def _meta(encoder: nn.Module, source: str) -> dict[str, Any]:
    return {
        "name": encoder.config["name"],
        "sample_rate": encoder.sample_rate,
        "clip_samples": encoder.clip_samples,
        "out_dim": encoder.out_dim,
        "config": encoder_config(encoder),
        "source": source,
    }


def save_encoder(encoder: nn.Module, path: str | os.PathLike, head: nn.Module | None = None,
                 format: str | None = None, **meta: Any) -> Path:
    """Write an encoder (and optionally its projection head) to ``path``.

    ``format`` is ``"torch"`` (format (b): ``{"encoder": config, "state_dict": ...,
    "meta": meta}``, plus ``"head"``/``"head_state_dict"`` when a head is given) or
    ``"safetensors"`` (tensors ``encoder.*``/``head.*``; the configuration, head arguments
    and ``meta`` as JSON in the file's metadata header, no pickle).  By default it follows
    the suffix: ``.safetensors`` -> safetensors, anything else -> torch.  ``meta`` must hold
    plain types (str, numbers, lists, dicts).
    """
    path = Path(path)
    fmt = format or ("safetensors" if path.suffix == SAFETENSORS_SUFFIX else "torch")
    if fmt not in ENCODER_FILE_FORMATS:
        raise ValueError(f"save_encoder: format must be one of {ENCODER_FILE_FORMATS}; got {fmt!r}.")
    state = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
    head_state = None if head is None else {k: v.detach().cpu() for k, v in head.state_dict().items()}
    if fmt == "safetensors":
        tensors = {f"{ENCODER_PREFIX}{k}": v for k, v in state.items()}
        if head_state:
            tensors.update({f"{HEAD_PREFIX}{k}": v for k, v in head_state.items()})
        header = {"format": SAFETENSORS_FORMAT_TAG, "encoder": encoder_config(encoder), "meta": dict(meta)}
        if head_state:
            header["head"] = head_config(head_state)
        return write_safetensors(path, tensors, header)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj: dict[str, Any] = {"encoder": encoder_config(encoder), "state_dict": state, "meta": dict(meta)}
    if head_state:
        obj["head"], obj["head_state_dict"] = head_config(head_state), head_state
    torch.save(obj, path)
    return path


@dataclass
class Pretrained:
    """A loaded checkpoint: ``encoder`` (eval mode), ``head`` (``ProjectionHead`` or None), ``meta``."""

    encoder: nn.Module
    head: nn.Module | None
    meta: dict[str, Any]


def _read(path_or_state: str | os.PathLike | Mapping[str, Any], map_location: Any,
          weights_only: bool) -> tuple[Parsed, dict[str, Any]]:
    if not isinstance(path_or_state, (str, os.PathLike)):
        return parse(path_or_state, None, "(in-memory dict)"), {}
    path = Path(path_or_state)
    if not path.is_file():
        raise FileNotFoundError(f"load_encoder: no checkpoint file at {path}.")
    if path.suffix == SAFETENSORS_SUFFIX:
        tensors, header = read_safetensors(path, map_location)
        if header.get("format") != SAFETENSORS_FORMAT_TAG:
            # an official-layout state dict stored as safetensors (e.g. a converted CLMR file)
            return parse(tensors, None, str(path)), {"safetensors": True}
        cfg = _encoder_cfg_safetensors(header.get("encoder"), path)
        head = {k[len(HEAD_PREFIX):]: v for k, v in tensors.items() if k.startswith(HEAD_PREFIX)}
        enc = {k[len(ENCODER_PREFIX):]: v for k, v in tensors.items() if k.startswith(ENCODER_PREFIX)}
        return Parsed(cfg, enc, "workbench-safetensors", "safetensors", head_state=head or None,
                      extra={"file_meta": header.get("meta", {})}), {"safetensors": True}
    if weights_only:
        obj, info = safe_torch_load(path, map_location)
    else:  # the caller's explicit opt-in (kept for compatibility); the workbench never passes it
        obj, info = torch.load(path, map_location=map_location, weights_only=weights_only), {}
    return parse(obj, path.with_suffix(".json"), str(path)), info


def _encoder_cfg_safetensors(cfg: Any, path: Path) -> dict[str, Any]:
    if not isinstance(cfg, Mapping) or not isinstance(cfg.get("name"), str):
        raise ValueError(f"load_encoder: {path} has no 'encoder' configuration in its safetensors metadata; "
                         "write it with workbench.models.save_encoder(..., format='safetensors').")
    return dict(cfg)


def load_pretrained(
    path_or_state: str | os.PathLike | Mapping[str, Any],
    map_location: str | torch.device = "cpu",
    weights_only: bool = True,
) -> Pretrained:
    """Rebuild the encoder (eval mode) and, where the file has one, the projection head.

    Reads every layout of :data:`workbench.models.layouts.LAYOUTS` (detected from the
    keys; workbench, CLMR and SemiSupCon checkpoints) and ``.safetensors`` files.
    ``meta`` holds ``name, sample_rate, clip_samples, out_dim, config, source, layout,
    projection_head`` (head arguments or None) and ``opaque_globals`` (non-tensor objects
    of the file replaced by inert stand-ins, see ``workbench.models.serialization``).
    """
    parsed, info = _read(path_or_state, map_location, weights_only)
    state = {(k[len(COMPILE_PREFIX):] if k.startswith(COMPILE_PREFIX) else k): v for k, v in parsed.state.items()}
    cfg = dict(parsed.config)
    name = cfg.pop("name")
    encoder = build_encoder(name, **cfg)
    encoder.load_state_dict(state)
    encoder.to(map_location).eval()
    head = None
    head_args = None
    if parsed.head_state:
        head_args = head_config(parsed.head_state)
        head = ProjectionHead(**head_args)
        head.load_state_dict(parsed.head_state)
        head.to(map_location).eval()
    meta = _meta(encoder, parsed.source)
    meta.update(layout=parsed.layout, projection_head=head_args,
                opaque_globals=list(info.get("opaque_globals", [])), **parsed.extra)
    return Pretrained(encoder, head, meta)


def load_encoder(
    path_or_state: str | os.PathLike | Mapping[str, Any],
    map_location: str | torch.device = "cpu",
    weights_only: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a pretrained encoder (in eval mode) and return ``(encoder, meta)``.

    ``path_or_state`` is a checkpoint path or an already loaded dict (see the module
    docstring for the formats).  ``meta`` holds ``name, sample_rate, clip_samples,
    out_dim, config, source, layout, projection_head``; :func:`load_pretrained` also
    returns the projection head.  Files are read with ``torch.load(weights_only=True)``
    (Lightning checkpoints' non-tensor parts become inert stand-ins, never code); pass
    ``weights_only=False`` only for checkpoints you trust.
    """
    loaded = load_pretrained(path_or_state, map_location=map_location, weights_only=weights_only)
    return loaded.encoder, loaded.meta
