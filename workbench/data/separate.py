"""Source separation into the stem layout the MSA pool reads (``<track>.stems/<source>.wav``).

MTAT and FMA ship no stems; the multi-source paper (004) separated MTAT with open-unmix.
``python -m workbench data separate NAME --separator NAME`` runs a separator over every
clip of task ``NAME`` and writes, beside each audio file ``<dir>/<track>.<ext>``::

    <dir>/<track>.stems/{bass,drums,melody,accompaniment}.wav     (float, the clip's rate)

which is the layout :mod:`workbench.data.loaders.fma_medium` picks up as the manifest's
``stems`` column (and :func:`workbench.data.msa.stem_pool` pools).  Sources are named as in
the embedded benchmark: a separator's ``vocals`` is written as ``melody`` and its ``other``
as ``accompaniment`` (:data:`STEM_NAMES`).

Separators (:data:`SEPARATORS`: name → class with ``separate(waveform, sr) -> {source:
waveform}``):

* ``bandsplit``: deterministic, dependency-free band split (bass < 200 Hz, accompaniment
  200-1000 Hz, melody 1-4 kHz, drums above), bands summing to the input.  Not a source
  separator: it exists so that the command, the layout and resume are tested without
  downloading anything.
* ``openunmix`` (``pip install 'workbench[separate]'``; the ``umxl`` weights, fetched by
  open-unmix on first use or from its cache ``$TORCH_HOME/hub``): the poster's separator.
* ``demucs`` (same extra; ``htdemucs`` weights, same cache).

Both optional separators are imported lazily; a missing package is a clear error naming
the extra.  Resume: a track whose ``.stems`` folder exists is skipped.  A track is written
into ``<track>.stems.partial`` and renamed to ``<track>.stems`` only when every stem is
complete, so an interrupted run never leaves a partial stem file where the loader looks
(a stale ``.partial`` folder is removed and redone on the next run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from ..audio import AudioError
from ..audio import read as read_audio

__all__ = ["STEM_NAMES", "STEMS_SUFFIX", "PARTIAL_SUFFIX", "SEPARATORS", "Separator", "BandSplitSeparator",
           "OpenUnmixSeparator", "DemucsSeparator", "get_separator", "stems_dir", "separate_task", "main"]

#: Stem names of the MSA pool (the embedded benchmark's): the poster's bass, drums, vocals/melody, accompaniment.
STEM_NAMES = ("bass", "drums", "melody", "accompaniment")
#: Separator source names renamed to :data:`STEM_NAMES`.
SOURCE_ALIASES = {"vocals": "melody", "other": "accompaniment"}
STEMS_SUFFIX = ".stems"
PARTIAL_SUFFIX = ".partial"
#: Written stems: float WAV (no clipping of separator outputs above full scale).
STEM_FORMAT, STEM_SUBTYPE, STEM_EXT = "WAV", "FLOAT", ".wav"
#: Band edges (Hz) of the ``bandsplit`` test separator, low to high.
BANDSPLIT_EDGES = (200.0, 1000.0, 4000.0)
BANDSPLIT_SOURCES = ("bass", "accompaniment", "melody", "drums")
#: Extra that installs the optional separators.
EXTRA = "separate"


class Separator(Protocol):
    """``separate(waveform [T] float32, sr) -> {source: [T] float32}`` (sources of :data:`STEM_NAMES`)."""

    name: str

    def separate(self, waveform: np.ndarray, sr: int) -> dict[str, np.ndarray]: ...


class BandSplitSeparator:
    """Deterministic band split (julius): four bands at :data:`BANDSPLIT_EDGES` that sum to the input."""

    name = "bandsplit"

    def __init__(self, device: str = "cpu"):
        self.device = device

    def separate(self, waveform: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        import julius
        import torch

        x = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
        cutoffs = [f / sr for f in BANDSPLIT_EDGES if f < sr / 2]
        bands = julius.split_bands(x, sample_rate=1, cutoffs=cutoffs)  # [n_bands, T], sum = x
        out = {name: bands[i].numpy().astype(np.float32) for i, name in enumerate(BANDSPLIT_SOURCES[:len(bands)])}
        for name in BANDSPLIT_SOURCES[len(bands):]:  # a rate too low for the upper bands: silent stems
            out[name] = np.zeros_like(out[BANDSPLIT_SOURCES[0]])
        return out


def _missing(package: str, separator: str) -> ImportError:
    return ImportError(
        f"separator {separator!r} needs the package {package!r}, which is not installed. Install the optional "
        f"extra: pip install 'workbench[{EXTRA}]' (its weights are fetched on first use, or read from "
        "$TORCH_HOME/hub if you already have them); or use --separator bandsplit for a dependency-free test run.")


def _stereo(waveform: np.ndarray):
    import torch

    x = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
    return x.unsqueeze(0).repeat(2, 1)  # [2, T]: both models expect stereo


def _named(sources: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {SOURCE_ALIASES.get(k, k): v for k, v in sources.items() if SOURCE_ALIASES.get(k, k) in STEM_NAMES}


class OpenUnmixSeparator:
    """open-unmix (Stöter et al. 2019), the separator of the MSA poster; model ``umxl`` by default."""

    name = "openunmix"

    def __init__(self, device: str = "cpu", model: str = "umxl"):
        try:
            from openunmix import predict  # noqa: F401
        except ImportError as err:
            raise _missing("openunmix", self.name) from err
        self.device, self.model = device, model

    def separate(self, waveform: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        from openunmix import predict

        est = predict.separate(_stereo(waveform)[None], rate=sr, model_str_or_path=self.model, device=self.device)
        return _named({k: v[0].mean(0).detach().cpu().numpy().astype(np.float32) for k, v in est.items()})


class DemucsSeparator:
    """Demucs (Défossez 2021; ``htdemucs`` by default)."""

    name = "demucs"

    def __init__(self, device: str = "cpu", model: str = "htdemucs"):
        try:
            from demucs.pretrained import get_model
        except ImportError as err:
            raise _missing("demucs", self.name) from err
        self.device = device
        self.net = get_model(model).to(device).eval()

    def separate(self, waveform: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        import torch
        from demucs.apply import apply_model

        from ..audio import resample

        rate = int(self.net.samplerate)
        x = resample(np.asarray(waveform, dtype=np.float32), sr, rate)
        with torch.no_grad():
            est = apply_model(self.net, _stereo(x)[None].to(self.device), device=self.device)[0]  # [S, 2, T]
        out = {name: resample(est[i].mean(0).cpu().numpy(), rate, sr)[:len(waveform)]
               for i, name in enumerate(self.net.sources)}
        return _named(out)


#: Separator name → class.
SEPARATORS: dict[str, type] = {"bandsplit": BandSplitSeparator, "openunmix": OpenUnmixSeparator,
                               "demucs": DemucsSeparator}


def get_separator(name: str, **kwargs) -> Separator:
    """An instance of separator ``name`` (:data:`SEPARATORS`)."""
    if name not in SEPARATORS:
        import difflib

        close = difflib.get_close_matches(name, SEPARATORS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown separator {name!r}{hint}; choose one of {sorted(SEPARATORS)}.")
    return SEPARATORS[name](**kwargs)


def stems_dir(audio_path: str | Path) -> Path:
    """``<dir>/<track>.stems`` for ``<dir>/<track>.<ext>``."""
    p = Path(audio_path)
    return p.with_name(p.stem + STEMS_SUFFIX)


def _write_track(separator: Separator, path: Path) -> None:
    from ..audio import info as audio_info

    sr = int(audio_info(path).sample_rate)
    wave = read_audio(path)  # mono, at the file's rate
    stems = separator.separate(wave, sr)
    missing = [s for s in STEM_NAMES if s not in stems]
    if missing:
        raise ValueError(f"separator {separator.name!r} returned {sorted(stems)}; it lacks {missing}.")
    final = stems_dir(path)
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        for name in STEM_NAMES:
            sf.write(str(partial / f"{name}{STEM_EXT}"), np.asarray(stems[name], dtype=np.float32), sr,
                     format=STEM_FORMAT, subtype=STEM_SUBTYPE)
        os.replace(partial, final)  # the whole track appears at once
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)


def separate_task(name: str, separator: str | Separator, root: str | Path | None = None,
                  splits: list[str] | None = None, limit: int | None = None, device: str = "cpu",
                  progress: bool = True) -> dict:
    """Separate every clip of task ``name`` (``splits`` only, first ``limit``) into ``.stems`` folders.

    Returns ``{"separated": n, "skipped": n (already had stems), "failed": {path: error}}``.
    """
    from tqdm.auto import tqdm

    from .. import data

    sep = get_separator(separator, device=device) if isinstance(separator, str) else separator
    df = data.manifest(name, root)
    if splits:
        df = df[df["split"].isin(list(splits))]
    paths = list(dict.fromkeys(df["path"].tolist()))[:limit]
    done = skipped = 0
    failed: dict[str, str] = {}
    for path in tqdm(paths, desc=f"separate {name} ({sep.name})", unit="track", disable=not progress):
        path = Path(path)
        if stems_dir(path).is_dir():
            skipped += 1
            continue
        try:
            _write_track(sep, path)
        except (AudioError, RuntimeError, ValueError, OSError) as exc:
            failed[str(path)] = str(exc)
            warnings.warn(f"separate: {path}: {exc}", stacklevel=2)
            continue
        done += 1
    data._build.cache_clear()  # the manifests now see the new stems
    return {"separated": done, "skipped": skipped, "failed": failed}


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench data separate NAME --separator NAME [--root DIR] [--splits ...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "separate":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="python -m workbench data separate",
                                description="Write <track>.stems/{" + ",".join(STEM_NAMES) + "}.wav beside every "
                                            "clip of a task, for the MSA pool.")
    p.add_argument("name", help="task name, e.g. fma_medium")
    p.add_argument("--separator", required=True, choices=sorted(SEPARATORS),
                   help="bandsplit (test, no download), openunmix or demucs (pip install 'workbench[separate]')")
    p.add_argument("--root", default=None, help="data root (default: $WORKBENCH_DATA/<data set> or the embedded copy)")
    p.add_argument("--splits", nargs="*", default=None, help="only these splits (default: all)")
    p.add_argument("--limit", type=int, default=None, help="only the first N clips")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        report = separate_task(args.name, args.separator, root=args.root, splits=args.splits, limit=args.limit,
                               device=args.device, progress=not args.quiet)
    except ImportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"separated {report['separated']}, skipped {report['skipped']} (already had stems), "
          f"failed {len(report['failed'])}")
    for path, why in list(report["failed"].items())[:10]:
        print(f"  failed: {path}: {why}", file=sys.stderr)
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
