"""Encoders, heads, and loading pretrained encoders.

Every encoder maps a mono waveform batch ``[B, 1, T]`` to ``[B, out_dim]`` and exposes
``out_dim``, ``sample_rate``, ``clip_samples`` (recommended input length),
``min_samples`` and ``config`` (a JSON-serialisable dict ``{"name": ..., **kwargs}`` that
rebuilds it with :func:`build_encoder`).

Names (:data:`ENCODERS`): ``"samplecnn"``, ``"samplecnn_demo"``, ``"tunep"``, ``"cola"``.
Named configurations (:data:`ENCODER_PRESETS`) are accepted by :func:`build_encoder` too.

Checkpoint formats read by :func:`load_encoder` (always with ``torch.load(...,
weights_only=True)`` unless told otherwise):

(a) our Lightning checkpoints: ``{"hyper_parameters": {"config": {"encoder": {"name": str,
    **kwargs}, ...}}, "state_dict": {"encoder.<param>": tensor, "head.<param>": ..., ...}}``
    (keys outside ``encoder.`` are ignored);
(b) an encoder file written by :func:`save_encoder`: ``{"encoder": {"name": str, **kwargs},
    "state_dict": {<param>: tensor}, "meta": {...}}``; or a bare encoder state dict saved
    as ``X.pt`` with a JSON side file ``X.json`` holding ``{"encoder": {"name": ..., ...}}``.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .heads import ClassifierHead, ProjectionHead
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
from .tunep import TUNePlus

__all__ = [
    "ENCODERS",
    "ENCODER_PRESETS",
    "build_encoder",
    "encoder_config",
    "load_encoder",
    "save_encoder",
    "SampleCNN",
    "TUNePlus",
    "ProjectionHead",
    "ClassifierHead",
]

#: Prefix of encoder parameters inside our Lightning module's state dict.
ENCODER_PREFIX = "encoder."
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


def save_encoder(encoder: nn.Module, path: str | os.PathLike, **meta: Any) -> Path:
    """Write format (b): ``{"encoder": config, "state_dict": ..., "meta": meta}``.

    ``meta`` must hold plain types (str, numbers, lists, dicts) so that the file loads
    with ``weights_only=True``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
    torch.save({"encoder": encoder_config(encoder), "state_dict": state, "meta": dict(meta)}, path)
    return path


def _strip(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _encoder_cfg(cfg: Any, where: str) -> dict[str, Any]:
    if not isinstance(cfg, Mapping) or not isinstance(cfg.get("name"), str):
        raise ValueError(
            f"load_encoder: {where} must be a dict {{'name': <encoder>, **kwargs}} naming one of "
            f"{sorted(ENCODERS)}; got {cfg!r}."
        )
    return dict(cfg)


def _parse(obj: Any, sidecar: Path | None) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Return (encoder config, encoder state dict, source kind) from a loaded object."""
    if isinstance(obj, Mapping) and "state_dict" in obj and "hyper_parameters" in obj:
        hp = obj["hyper_parameters"]
        config = hp.get("config", hp) if isinstance(hp, Mapping) else None
        enc = config.get("encoder") if isinstance(config, Mapping) else None
        cfg = _encoder_cfg(enc, "hyper_parameters['config']['encoder'] of the Lightning checkpoint")
        state = _strip(obj["state_dict"], ENCODER_PREFIX)
        if not state:
            raise ValueError(
                f"load_encoder: the Lightning checkpoint has no '{ENCODER_PREFIX}*' keys in its state_dict; "
                "was the encoder stored under another attribute name?"
            )
        return cfg, state, "lightning"
    if isinstance(obj, Mapping) and "state_dict" in obj and ("encoder" in obj or "encoder" in obj.get("meta", {})):
        enc = obj.get("encoder", obj.get("meta", {}).get("encoder"))
        return _encoder_cfg(enc, "the 'encoder' entry"), dict(obj["state_dict"]), "encoder"
    if _is_state_dict(obj):
        if sidecar is None or not sidecar.exists():
            raise ValueError(
                "load_encoder: got a bare state dict without metadata; save it with a JSON side file "
                "'<name>.json' holding {\"encoder\": {\"name\": ..., ...}}, or use save_encoder()."
            )
        meta = json.loads(sidecar.read_text())
        return _encoder_cfg(meta.get("encoder"), f"'encoder' in {sidecar}"), dict(obj), "state_dict+json"
    raise ValueError(
        "load_encoder: unrecognised checkpoint; expected a Lightning checkpoint with "
        "hyper_parameters.config.encoder, a save_encoder() file, or a state dict with a JSON side file."
    )


def load_encoder(
    path_or_state: str | os.PathLike | Mapping[str, Any],
    map_location: str | torch.device = "cpu",
    weights_only: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a pretrained encoder (in eval mode) and return ``(encoder, meta)``.

    ``path_or_state`` is a checkpoint path or an already loaded dict (see the module
    docstring for the formats).  ``meta`` holds ``name, sample_rate, clip_samples,
    out_dim, config, source``.  Files are read with ``torch.load(weights_only=True)``;
    pass ``weights_only=False`` only for checkpoints you trust that hold other objects.
    """
    sidecar = None
    if isinstance(path_or_state, (str, os.PathLike)):
        path = Path(path_or_state)
        if not path.is_file():
            raise FileNotFoundError(f"load_encoder: no checkpoint file at {path}.")
        sidecar = path.with_suffix(".json")
        try:
            obj = torch.load(path, map_location=map_location, weights_only=weights_only)
        except pickle.UnpicklingError as err:
            raise ValueError(
                f"load_encoder: {path} holds objects that weights_only=True refuses ({err}); if you "
                "trust the file, call load_encoder(path, weights_only=False)."
            ) from err
    else:
        obj = path_or_state
    cfg, state, source = _parse(obj, sidecar)
    state = {(k[len(COMPILE_PREFIX):] if k.startswith(COMPILE_PREFIX) else k): v for k, v in state.items()}
    name = cfg.pop("name")
    encoder = build_encoder(name, **cfg)
    encoder.load_state_dict(state)
    encoder.to(map_location).eval()
    return encoder, _meta(encoder, source)
