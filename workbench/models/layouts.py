"""Checkpoint layouts read by :func:`workbench.models.load_encoder`, detected from their keys.

:func:`detect_layout` is the one place that decides which layout a loaded object has
(:data:`LAYOUTS`, checked in order); :func:`parse` turns it into an encoder configuration,
an encoder state dict and, where the file has one, a projection head.

Workbench layouts carry their encoder configuration.  The official layouts carry only
weights; their SampleCNN configuration is read off the weight shapes:

* ``clmr-lightning``: CLMR's Lightning checkpoints (``pytorch-lightning_version`` key).
  ``state_dict`` holds the encoder as ``model.encoder.*`` and/or ``encoder.*`` (the same
  module, registered twice by CLMR's ``ContrastiveLearning``) and the projector as
  ``model.projector.{0,2}.weight`` (SimCLR's bias-free MLP, 512 -> 512 -> 64).
* ``clmr-simclr``: CLMR's plain SimCLR state dicts: ``encoder.sequential.*`` and
  ``projector.{0,2}.weight``.
* ``semisupcon-lightning``: SemiSupCon's Lightning checkpoints: ``encoder.sequential.*``,
  an unused ``encoder.fc.*`` (ignored), ``proj_head.{0,2}.weight`` (512 -> 512 -> 128, no
  biases).  Input length 59 535 samples (2.7 s at 22.05 kHz).
* ``samplecnn-sequential``: a bare official SampleCNN state dict (``sequential.*``, e.g.
  what CLMR's ``load_encoder_checkpoint`` returns).

The official SampleCNN (``sequential.{0..10}.{0,1}.*``): block 0 = Conv1d(1, 128, 3,
stride 3) + BatchNorm + ReLU; blocks 1-9 = Conv1d(k3, padding 1) + BatchNorm + ReLU +
MaxPool(3); block 10 = Conv1d(512, 512, 3, padding 1) + BatchNorm + ReLU; then the output
``[B, 512, 1]`` is flattened.  ``workbench.models.SampleCNN`` has the same layers in the same
order; its ``stem``/``convs``/``bns``/``final`` parameters are a renaming of the sequential
ones (:func:`sequential_to_samplecnn`).  It ends with a mean over the remaining frames,
which equals the official flatten whenever one frame remains (inputs of 59 049 to
118 097 samples, which includes CLMR's 59 049 and SemiSupCon's 59 535); for longer inputs
the official model has no defined 512-d output (its flatten yields 512 x frames) and the
workbench one averages the frames.  Pool size and stem stride are not stored in a state
dict: they are the published 3 and 3 (CLMR ``strides = [3] * 9``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from .samplecnn import PAPER_CLIP_SAMPLES, PAPER_SAMPLE_RATE, SEMISUPCON_CLIP_SAMPLES

__all__ = ["LAYOUTS", "Layout", "Parsed", "detect_layout", "parse", "sequential_to_samplecnn",
           "head_config", "OFFICIAL_POOL", "OFFICIAL_FIRST_STRIDE", "OFFICIAL_KERNEL"]

#: Prefix of encoder parameters inside our Lightning module's state dict.
ENCODER_PREFIX = "encoder."
#: Prefix of projection-head parameters inside our Lightning module's state dict.
HEAD_PREFIX = "head."
#: Max-pool size of the official SampleCNN blocks (CLMR ``strides``).
OFFICIAL_POOL = 3
#: Stride of the official SampleCNN stem convolution.
OFFICIAL_FIRST_STRIDE = 3
#: Kernel of every official SampleCNN convolution.
OFFICIAL_KERNEL = 3
_SEQ = re.compile(r"^sequential\.(\d+)\.(\d+)\.(.+)$")
_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@dataclass
class Parsed:
    """What a checkpoint holds: encoder config and state, optional head state, layout name."""

    config: dict[str, Any]
    state: dict[str, torch.Tensor]
    layout: str
    source: str
    head_state: dict[str, torch.Tensor] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Layout:
    """A named checkpoint layout: ``matches(obj)`` and ``parse(obj, sidecar) -> Parsed``."""

    name: str
    description: str
    matches: Callable[[Any], bool]
    parse: Callable[[Any, Any], Parsed]


# ------------------------------------------------------------------ helpers

def _strip(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _lightning_state(obj: Any) -> Mapping[str, Any] | None:
    if isinstance(obj, Mapping) and "pytorch-lightning_version" in obj and isinstance(obj.get("state_dict"), Mapping):
        return obj["state_dict"]
    return None


def _encoder_cfg(cfg: Any, where: str) -> dict[str, Any]:
    from . import ENCODERS

    if not isinstance(cfg, Mapping) or not isinstance(cfg.get("name"), str):
        raise ValueError(
            f"load_encoder: {where} must be a dict {{'name': <encoder>, **kwargs}} naming one of "
            f"{sorted(ENCODERS)}; got {cfg!r}."
        )
    return dict(cfg)


def _has_prefix(state: Mapping[str, Any], prefix: str) -> bool:
    return any(isinstance(k, str) and k.startswith(prefix) for k in state)


def head_config(head_state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """``ProjectionHead`` arguments read off ``{0,2}.weight`` (and biases) of a head state."""
    try:
        w0, w2 = head_state["0.weight"], head_state["2.weight"]
    except KeyError as err:
        raise ValueError(f"load_encoder: projection head lacks {err.args[0]!r}; keys {sorted(head_state)}.") from err
    return dict(in_dim=int(w0.shape[1]), hidden_dim=int(w0.shape[0]), out_dim=int(w2.shape[0]),
                bias="0.bias" in head_state)


_HEAD_KEYS = {"0.weight", "0.bias", "2.weight", "2.bias"}


def _projection_head_state(head: Mapping[str, Any]) -> dict[str, Any] | None:
    """``head`` if it has the ProjectionHead layout (Linear, ReLU, Linear), else None.

    Other modules also call their head ``head`` (COLA's similarity, the supervised
    classifier); those are not projection heads and are left out.
    """
    if not head or not {"0.weight", "2.weight"} <= set(head) or not set(head) <= _HEAD_KEYS:
        return None
    if any(not isinstance(v, torch.Tensor) or v.dim() != (2 if k.endswith("weight") else 1) for k, v in head.items()):
        return None
    return dict(head)


# ------------------------------------------------------------------ official SampleCNN

def sequential_to_samplecnn(state: Mapping[str, Any], where: str, sample_rate: int = PAPER_SAMPLE_RATE,
                            clip_samples: int = PAPER_CLIP_SAMPLES) -> tuple[dict, dict]:
    """Map an official ``sequential.{i}.{0,1}.*`` SampleCNN state dict onto ours.

    Returns ``(config, state)`` for :class:`~workbench.models.SampleCNN`: block 0 ->
    ``stem``/``stem_bn``, blocks 1..n -> ``convs``/``bns``, the last block ->
    ``final``/``final_bn``.  Keys ``fc.*`` (the unused classifier of the official module)
    are dropped; any other key is an error.  A missing ``num_batches_tracked`` (files from
    torch < 0.4.1) is set to 0 (it only matters for ``momentum=None``).
    """
    blocks: dict[int, dict[str, Any]] = {}
    unknown = []
    for k, v in state.items():
        m = _SEQ.match(k)
        if m:
            blocks.setdefault(int(m.group(1)), {})[f"{m.group(2)}.{m.group(3)}"] = v
        elif not k.startswith("fc."):
            unknown.append(k)
    if unknown:
        raise ValueError(f"load_encoder: {where}: unexpected SampleCNN keys {sorted(unknown)[:8]} "
                         "(expected sequential.<block>.<layer>.* and fc.*).")
    n = len(blocks)
    if n < 3 or sorted(blocks) != list(range(n)):
        raise ValueError(f"load_encoder: {where}: SampleCNN blocks {sorted(blocks)} are not 0..N with N >= 2.")
    out: dict[str, torch.Tensor] = {}
    kernels = set()
    names = ["stem"] + [f"convs.{i}" for i in range(n - 2)] + ["final"]
    bns = ["stem_bn"] + [f"bns.{i}" for i in range(n - 2)] + ["final_bn"]
    for i in range(n):
        b = blocks[i]
        for need in ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"):
            if need not in b:
                raise ValueError(f"load_encoder: {where}: sequential.{i}.{need} is missing "
                                 "(conv weight/bias and BatchNorm with running statistics are required).")
        extra = set(b) - {"0.weight", "0.bias"} - {f"1.{x}" for x in _BN_KEYS}
        if extra:
            raise ValueError(f"load_encoder: {where}: unexpected keys in block {i}: {sorted(extra)}.")
        kernels.add(int(b["0.weight"].shape[-1]))
        out[f"{names[i]}.weight"], out[f"{names[i]}.bias"] = b["0.weight"], b["0.bias"]
        for x in _BN_KEYS:
            out[f"{bns[i]}.{x}"] = b.get(f"1.{x}", torch.tensor(0, dtype=torch.long))
    if kernels != {OFFICIAL_KERNEL}:
        raise ValueError(f"load_encoder: {where}: convolution kernels {sorted(kernels)}; the official "
                         "SampleCNN layouts have kernel 3 everywhere.")
    stem_w = blocks[0]["0.weight"]
    if stem_w.shape[1] != 1:
        raise ValueError(f"load_encoder: {where}: the first block takes {stem_w.shape[1]} input channels, not 1.")
    channels = [int(blocks[i]["0.weight"].shape[0]) for i in range(1, n - 1)]
    config = dict(name="samplecnn", sample_rate=int(sample_rate), channels=channels,
                  first_stride=OFFICIAL_FIRST_STRIDE, kernel=OFFICIAL_KERNEL, pool=OFFICIAL_POOL,
                  out_dim=int(blocks[n - 1]["0.weight"].shape[0]), clip_samples=int(clip_samples))
    if int(stem_w.shape[0]) != channels[0]:
        raise ValueError(f"load_encoder: {where}: stem has {stem_w.shape[0]} channels but block 1 "
                         f"{channels[0]}; this SampleCNN needs them equal.")
    return config, out


def _official(layout: str, state: Mapping[str, Any], enc_prefix: str, head_prefix: str | None,
              clip_samples: int, where: str) -> Parsed:
    enc = _strip(state, enc_prefix)
    config, enc_state = sequential_to_samplecnn(enc, where, clip_samples=clip_samples)
    head = _strip(state, head_prefix) if head_prefix else {}
    return Parsed(config, enc_state, layout, layout, head_state=head or None)


# ------------------------------------------------------------------ layout predicates / parsers

def _match_workbench_lightning(obj: Any) -> bool:
    if not (isinstance(obj, Mapping) and "state_dict" in obj and "hyper_parameters" in obj):
        return False
    hp = obj["hyper_parameters"]
    return isinstance(hp, Mapping) and (isinstance(hp.get("config"), Mapping) or "encoder" in hp) \
        and not _match_clmr_lightning(obj) and not _match_semisupcon_lightning(obj)


def _parse_workbench_lightning(obj: Any, sidecar: Any) -> Parsed:
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
    head = _projection_head_state(_strip(obj["state_dict"], HEAD_PREFIX))
    return Parsed(cfg, state, "workbench-lightning", "lightning", head_state=head)


def _match_workbench_encoder(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "state_dict" in obj and (
        "encoder" in obj or (isinstance(obj.get("meta"), Mapping) and "encoder" in obj["meta"]))


def _parse_workbench_encoder(obj: Any, sidecar: Any) -> Parsed:
    enc = obj.get("encoder", obj.get("meta", {}).get("encoder"))
    head = obj.get("head_state_dict")
    return Parsed(_encoder_cfg(enc, "the 'encoder' entry"), dict(obj["state_dict"]), "workbench-encoder",
                  "encoder", head_state=dict(head) if head else None)


def _match_clmr_lightning(obj: Any) -> bool:
    state = _lightning_state(obj)
    return state is not None and (
        _has_prefix(state, "model.encoder.sequential.") or "model.projector.0.weight" in state
        or (_has_prefix(state, "encoder.sequential.") and "proj_head.0.weight" not in state))


def _parse_clmr_lightning(obj: Any, sidecar: Any) -> Parsed:
    state = obj["state_dict"]
    prefix = "model.encoder." if _has_prefix(state, "model.encoder.sequential.") else "encoder."
    head = "model.projector." if "model.projector.0.weight" in state else None
    return _official("clmr-lightning", state, prefix, head, PAPER_CLIP_SAMPLES, "CLMR Lightning checkpoint")


def _match_semisupcon_lightning(obj: Any) -> bool:
    state = _lightning_state(obj)
    return state is not None and "proj_head.0.weight" in state and _has_prefix(state, "encoder.sequential.")


def _parse_semisupcon_lightning(obj: Any, sidecar: Any) -> Parsed:
    return _official("semisupcon-lightning", obj["state_dict"], "encoder.", "proj_head.", SEMISUPCON_CLIP_SAMPLES,
                     "SemiSupCon Lightning checkpoint")


def _match_clmr_simclr(obj: Any) -> bool:
    return _is_state_dict(obj) and _has_prefix(obj, "encoder.sequential.") and _lightning_state(obj) is None


def _parse_clmr_simclr(obj: Any, sidecar: Any) -> Parsed:
    head = "projector." if "projector.0.weight" in obj else None
    return _official("clmr-simclr", obj, "encoder.", head, PAPER_CLIP_SAMPLES, "CLMR SimCLR state dict")


def _match_sequential(obj: Any) -> bool:
    return _is_state_dict(obj) and _has_prefix(obj, "sequential.")


def _parse_sequential(obj: Any, sidecar: Any) -> Parsed:
    return _official("samplecnn-sequential", obj, "", None, PAPER_CLIP_SAMPLES, "SampleCNN state dict")


def _match_state_dict_json(obj: Any) -> bool:
    return _is_state_dict(obj)


def _parse_state_dict_json(obj: Any, sidecar: Any) -> Parsed:
    if sidecar is None or not sidecar.exists():
        raise ValueError(
            "load_encoder: got a bare state dict without metadata; save it with a JSON side file "
            "'<name>.json' holding {\"encoder\": {\"name\": ..., ...}}, or use save_encoder()."
        )
    meta = json.loads(sidecar.read_text())
    return Parsed(_encoder_cfg(meta.get("encoder"), f"'encoder' in {sidecar}"), dict(obj), "state-dict+json",
                  "state_dict+json")


#: Known layouts, checked in this order by :func:`detect_layout`.
LAYOUTS: tuple[Layout, ...] = (
    Layout("clmr-lightning", "CLMR Lightning checkpoint: state_dict with model.encoder.sequential.* and/or "
           "encoder.sequential.*, projector model.projector.{0,2}.weight",
           _match_clmr_lightning, _parse_clmr_lightning),
    Layout("semisupcon-lightning", "SemiSupCon Lightning checkpoint: state_dict with encoder.sequential.*, "
           "encoder.fc.* (ignored), proj_head.{0,2}.weight",
           _match_semisupcon_lightning, _parse_semisupcon_lightning),
    Layout("workbench-lightning", "workbench Lightning checkpoint: hyper_parameters.config.encoder + "
           "state_dict encoder.*/head.*", _match_workbench_lightning, _parse_workbench_lightning),
    Layout("workbench-encoder", "save_encoder() file: {'encoder': config, 'state_dict': ..., 'meta': ...}",
           _match_workbench_encoder, _parse_workbench_encoder),
    Layout("clmr-simclr", "CLMR SimCLR state dict: encoder.sequential.*, projector.{0,2}.weight",
           _match_clmr_simclr, _parse_clmr_simclr),
    Layout("samplecnn-sequential", "bare official SampleCNN state dict: sequential.{0..N}.{0,1}.*",
           _match_sequential, _parse_sequential),
    Layout("state-dict+json", "bare workbench encoder state dict X.pt with a JSON side file X.json "
           "holding {'encoder': config}", _match_state_dict_json, _parse_state_dict_json),
)


def detect_layout(obj: Any, where: str = "the checkpoint") -> Layout:
    """The first of :data:`LAYOUTS` that matches ``obj``; a ``ValueError`` listing them otherwise."""
    for layout in LAYOUTS:
        if layout.matches(obj):
            return layout
    if isinstance(obj, Mapping):
        keys = list(obj.get("state_dict", obj)) if isinstance(obj.get("state_dict", obj), Mapping) else list(obj)
        seen = f"top-level keys {sorted(map(str, obj))[:8]}, state keys {sorted(map(str, keys))[:8]}"
    else:
        seen = f"a {type(obj).__name__}"
    known = "\n".join(f"  - {lay.name}: {lay.description}" for lay in LAYOUTS)
    raise ValueError(f"load_encoder: unrecognised checkpoint {where} ({seen}). Known layouts:\n{known}")


def parse(obj: Any, sidecar: Any = None, where: str = "the checkpoint") -> Parsed:
    """Detect the layout of ``obj`` and return its :class:`Parsed` contents."""
    return detect_layout(obj, where).parse(obj, sidecar)
