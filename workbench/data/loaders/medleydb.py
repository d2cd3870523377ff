"""MedleyDB (Bittner et al. 2014): ``medleydb_instrument``, the instrument of each stem.

Layout: the root holds one folder per track (MedleyDB's ``Audio/`` folder, or the folder
holding ``Audio/``)::

    <Track>/<Track>_METADATA.yaml          (or Metadata/<Track>_METADATA.yaml beside Audio/)
    <Track>/<Track>_STEMS/<Track>_STEM_01.wav ...

Each stem of ``stems:`` in the metadata (``S01: {filename, instrument, component}``) is a
clip; the classes are the 20 most frequent stem instruments among the stems on disk
(:data:`TOP_K`; ordered by count, ties by name); other stems and stems listing several
instruments are left out.  The split is by track (no track in two splits), seeded and
weighted by stem counts (:data:`SPLIT_FRACTIONS`, :data:`SPLIT_SEED`).  Extras: ``track``,
``artist``, ``instrument``, ``component``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from ..tasks import Task
from ._common import hashed_split, layout_error, task_root, usable_manifest, warn

__all__ = ["build", "read_metadata", "TOP_K"]

DATASET = "medleydb"
TOP_K = 20
SPLIT_FRACTIONS = {"train": 0.7, "valid": 0.15, "test": 0.15}
SPLIT_SEED = 0
METADATA_SUFFIX = "_METADATA.yaml"
LAYOUT = f"""\
  <Track>/<Track>{METADATA_SUFFIX}        (yaml: stems: {{S01: {{filename, instrument}}, ...}}, stem_dir)
  <Track>/<Track>_STEMS/<Track>_STEM_01.wav ...
  (also: Audio/<Track>/... with Metadata/<Track>{METADATA_SUFFIX})"""
EXTRAS = ("track", "artist", "instrument", "component")


def _yaml_load(path: Path) -> dict:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except yaml.YAMLError as exc:
        raise ValueError(f"{DATASET}: {path} is not valid YAML ({exc}).") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{DATASET}: {path} must be a YAML mapping with a 'stems' entry.")
    return data


def read_metadata(path: Path) -> dict:
    """One track's metadata (the parsed YAML)."""
    return _yaml_load(path)


def _metadata_files(root: Path) -> list[tuple[Path, Path]]:
    """(metadata yaml, track audio folder) for every track, track folders first."""
    out: list[tuple[Path, Path]] = []
    audio_roots = [root] + ([root / "Audio"] if (root / "Audio").is_dir() else [])
    for base in audio_roots:
        for f in sorted(base.glob(f"*/*{METADATA_SUFFIX}")):
            if f.name == f"{f.parent.name}{METADATA_SUFFIX}":  # <Track>/<Track>_METADATA.yaml only
                out.append((f, f.parent))
    meta_dir = root / "Metadata"
    if meta_dir.is_dir():
        for f in sorted(meta_dir.glob(f"*{METADATA_SUFFIX}")):
            track = f.name[: -len(METADATA_SUFFIX)]
            folder = next((b / track for b in audio_roots if (b / track).is_dir()), audio_roots[-1] / track)
            out.append((f, folder))
    return out


def build(spec: Task, root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Manifest of ``medleydb_instrument``."""
    root = task_root(spec, root, DATASET, ("medleydb_instrument",))
    files = _metadata_files(root)
    if not files:
        raise layout_error(DATASET, root / f"<Track>/<Track>{METADATA_SUFFIX}", LAYOUT)
    rows, multi = [], []
    for meta_path, folder in files:
        track = meta_path.name[: -len(METADATA_SUFFIX)]
        meta = _yaml_load(meta_path)
        stems = meta.get("stems") or {}
        if not isinstance(stems, dict):
            raise ValueError(f"{DATASET}: {meta_path} has a 'stems' entry that is not a mapping S01 -> fields.")
        stem_dir = folder / str(meta.get("stem_dir") or f"{track}_STEMS")
        for key in sorted(stems):
            stem = stems[key] or {}
            instrument = stem.get("instrument")
            if isinstance(instrument, list):
                if len(instrument) != 1:
                    multi.append(f"{track}/{key}")
                    continue
                instrument = instrument[0]
            filename = stem.get("filename")
            if not instrument or not filename:
                raise ValueError(f"{DATASET}: stem {key} in {meta_path} needs 'filename' and 'instrument'.")
            rows.append({"id": Path(str(filename)).stem, "path": str(stem_dir / str(filename)), "split": None,
                         "target": None, "track": track, "artist": str(meta.get("artist") or ""),
                         "instrument": str(instrument).strip(), "component": str(stem.get("component") or "")})
    if multi:
        warn(DATASET, f"{len(multi)} stem(s) list several instruments and are left out ({multi[:3]}).")
    df = usable_manifest(rows, DATASET, EXTRAS, root=root, layout=LAYOUT)
    counts = Counter(df["instrument"])
    classes = [name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_K]]
    df = df[df["instrument"].isin(classes)].reset_index(drop=True)
    df["target"] = df["instrument"].map({c: i for i, c in enumerate(classes)}).astype(int)
    df["split"] = hashed_split(df["track"].tolist(), SPLIT_FRACTIONS, SPLIT_SEED, salt=DATASET)
    return df, classes
