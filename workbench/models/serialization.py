"""Reading and writing checkpoint files without running code from them.

Two file kinds:

* **torch pickles** (``.ckpt``, ``.pt``, ``.pth``): always read with
  ``torch.load(..., weights_only=True)`` (:func:`safe_torch_load`).  Checkpoints written by
  the official CLMR and SemiSupCon code are Lightning checkpoints whose non-tensor parts
  (``hyper_parameters`` as an ``argparse.Namespace`` or Lightning ``AttributeDict``,
  callback states, loop states) name classes that ``weights_only`` refuses.  They are read
  in two steps, neither of which imports or calls anything the file names:

  1. :data:`HARMLESS_GLOBALS` are allowlisted for the call (``argparse.Namespace``, whose
     unpickling only fills ``__dict__``; Lightning's ``AttributeDict`` under its historic
     module paths, rebuilt as a plain ``dict`` subclass defined here, so Lightning need
     not even be installed);
  2. any other class or function the pickle names becomes an inert :class:`OpaqueObject`
     that only *stores* the (already safely decoded) arguments and state it is given.
     The globals replaced this way are listed in ``OpaqueObject.replaced`` of the call and
     in the returned ``info``.

  Refused (clear error naming the file): globals from the modules ``torch`` blocks
  (``sys``, ``os``, ``posix``, ``nt``), builtins that are not allowlisted (``eval``,
  ``exec``, ``getattr``, ...), pickles that need an opaque object to behave as a list
  (list subclasses), and more than :data:`MAX_OPAQUE_GLOBALS` distinct unknown globals.
  Encoder weights must be plain tensors: an opaque object inside a state dict is never
  loaded as a weight (the layout check rejects it).

* **safetensors** (``.safetensors``): tensors plus a string-to-string metadata header; no
  pickle at all (:func:`write_safetensors` / :func:`read_safetensors`).  Workbench files
  keep the encoder configuration as JSON in the header (see ``workbench.models.save_encoder``).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "HARMLESS_GLOBALS",
    "MAX_OPAQUE_GLOBALS",
    "SAFETENSORS_SUFFIX",
    "OpaqueObject",
    "safe_torch_load",
    "write_safetensors",
    "read_safetensors",
]

#: File suffix of safetensors files.
SAFETENSORS_SUFFIX = ".safetensors"
#: At most this many distinct non-allowlisted globals are replaced by opaque objects.
MAX_OPAQUE_GLOBALS = 64
_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL (\S+) was not an allowed global")


class _AttributeDict(dict):
    """Stand-in for Lightning's ``AttributeDict`` (a dict with attribute access)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as err:
            raise AttributeError(key) from err


#: Types allowlisted for every load: (object, name in the pickle).
HARMLESS_GLOBALS: list[Any] = [
    argparse.Namespace,
    (_AttributeDict, "pytorch_lightning.utilities.parsing.AttributeDict"),
    (_AttributeDict, "lightning.pytorch.utilities.parsing.AttributeDict"),
    (_AttributeDict, "lightning.fabric.utilities.data.AttributeDict"),
    (_AttributeDict, "lightning_fabric.utilities.data.AttributeDict"),
]


class OpaqueObject:
    """Inert stand-in for a pickled object whose class is not allowlisted.

    It runs no code of the original class: construction stores the positional arguments
    (``args``), ``__setstate__`` stores the state (``state``) and item assignment fills
    ``items``.  ``global_name`` is the ``module.name`` the pickle referred to.
    """

    global_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "OpaqueObject":
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.items = args, kwargs, None, {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def __repr__(self) -> str:
        return f"OpaqueObject({self.global_name})"


def _opaque(name: str) -> type:
    return type(f"Opaque[{name}]", (OpaqueObject,), {"global_name": name})


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[Any, dict]:
    """``torch.load(path, weights_only=True)`` that reads Lightning checkpoints safely.

    Returns ``(object, info)`` where ``info["opaque_globals"]`` lists the globals replaced
    by :class:`OpaqueObject` (empty for plain tensor files).  Raises ``ValueError`` naming
    the file for anything refused (see the module docstring).
    """
    path = Path(path)
    extra: list[Any] = []
    replaced: list[str] = []
    while True:
        try:
            with torch.serialization.safe_globals(HARMLESS_GLOBALS + extra):
                obj = torch.load(path, map_location=map_location, weights_only=True)
            return obj, {"opaque_globals": replaced}
        except pickle.UnpicklingError as err:
            msg = str(err)
            m = _UNSUPPORTED.search(msg)
            name = m.group(1) if m else None
            if name is None or "." not in name:
                what = f"the builtin {name!r}" if name else "an operation weights_only=True does not allow"
                raise ValueError(
                    f"load_encoder: {path} needs {what} to unpickle, which is refused (no code from a "
                    f"checkpoint is run). Re-save its state dict with torch.save(model.state_dict(), ...) "
                    f"or as .safetensors. Detail: {msg.splitlines()[0]}"
                ) from err
            if name in replaced or len(replaced) >= MAX_OPAQUE_GLOBALS:
                raise ValueError(
                    f"load_encoder: {path} could not be read with inert stand-ins for {len(replaced)} "
                    f"non-tensor globals (last: {name}); re-save its state dict as a plain tensor file."
                ) from err
            replaced.append(name)
            extra.append((_opaque(name), name))
        except RuntimeError as err:
            if "weights_only" in str(err) or "Weights only" in str(err):
                raise ValueError(f"load_encoder: {path} is refused by weights_only=True: {err}") from err
            raise ValueError(
                f"load_encoder: {path} is not a readable torch checkpoint ({err}); expected a .ckpt/.pt "
                f"file written by torch.save, or a {SAFETENSORS_SUFFIX} file."
            ) from err


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                      metadata: Mapping[str, Any]) -> Path:
    """Write ``tensors`` with ``metadata`` (values JSON-encoded) to a safetensors file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared / non-contiguous storage: store independent contiguous copies
    flat = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    save_file(flat, str(path), metadata={k: json.dumps(v) for k, v in metadata.items()})
    return path


def read_safetensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict, dict]:
    """``(tensors, metadata)`` of a safetensors file; metadata values are JSON-decoded."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            raw = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as err:
        raise ValueError(f"load_encoder: {path} is not a valid safetensors file ({err}).") from err
    meta = {}
    for k, v in raw.items():
        try:
            meta[k] = json.loads(v)
        except json.JSONDecodeError:
            meta[k] = v
    return tensors, meta
