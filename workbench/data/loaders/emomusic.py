"""EmoMusic / "1000 songs" (Soleymani et al. 2013): ``emomusic``, static arousal and valence.

Layout of the data root::

    songs_info.csv                         (also found in annotations/)
    annotations/static_annotations.csv     (also found in the root)
    clips_45seconds/<song_id>.mp3

``songs_info.csv``'s "Mediaeval 2013 set" column: ``evaluation`` -> test; ``development``
-> train/valid by a seeded artist-disjoint split (:data:`VALID_FRACTION`, :data:`SPLIT_SEED`;
artists compared case- and space-insensitively).  Songs without a set or without
annotations are left out.  Target: ``[arousal, valence]`` from ``mean_arousal`` /
``mean_valence``, z-scored with the mean and (population) standard deviation of the
train split; the raw values are kept in ``arousal`` / ``valence``.  The returned class
list names the two target dimensions (``["arousal", "valence"]``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..tasks import Task
from ._common import find_existing, hashed_split, layout_error, task_root, usable_manifest, warn

__all__ = ["build", "TARGETS", "VALID_FRACTION"]

DATASET = "emomusic"
TARGETS = ["arousal", "valence"]
VALID_FRACTION = 0.15
SPLIT_SEED = 0
SET_COLUMN = "mediaeval 2013 set"
SETS = {"development": "dev", "evaluation": "test"}
AUDIO_FOLDER = "clips_45seconds"
LAYOUT = f"""\
  songs_info.csv                       (song_id, Artist, ..., "Mediaeval 2013 set": development/evaluation)
  annotations/static_annotations.csv   (song_id, mean_arousal, std_arousal, mean_valence, std_valence)
  {AUDIO_FOLDER}/<song_id>.mp3"""
EXTRAS = ("artist", "arousal", "valence")


def _read_csv(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = [str(c).strip().lower() for c in table.columns]
    return table.apply(lambda s: s.str.strip())


def _need(table: pd.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{DATASET}: {path} has no column(s) {missing} (found {list(table.columns)}). "
                         f"Expected layout:\n{LAYOUT}")


def _song_id(text: str) -> str:
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def _artist_key(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip().lower()


def build(spec: Task, root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Manifest of ``emomusic`` (regression, two outputs)."""
    root = task_root(spec, root, DATASET, ("emomusic",))
    info_path = find_existing([root / "songs_info.csv", root / "annotations" / "songs_info.csv"])
    if info_path is None:
        raise layout_error(DATASET, root / "songs_info.csv", LAYOUT)
    ann_path = find_existing([root / "annotations" / "static_annotations.csv", root / "static_annotations.csv"])
    if ann_path is None:
        raise layout_error(DATASET, root / "annotations" / "static_annotations.csv", LAYOUT)
    info, ann = _read_csv(info_path), _read_csv(ann_path)
    _need(info, ["song_id", "artist", SET_COLUMN], info_path)
    _need(ann, ["song_id", "mean_arousal", "mean_valence"], ann_path)
    ann = ann.assign(song_id=ann["song_id"].map(_song_id)).drop_duplicates("song_id", keep="first")
    values = ann.set_index("song_id")[["mean_arousal", "mean_valence"]]
    audio_dir = root / AUDIO_FOLDER
    rows, unlabeled, no_set = [], [], []
    for song_raw, artist, set_name in zip(info["song_id"], info["artist"], info[SET_COLUMN]):
        song = _song_id(song_raw)
        group = SETS.get(set_name.lower())
        if group is None:
            no_set.append(song)
            continue
        if song not in values.index:
            unlabeled.append(song)
            continue
        try:
            arousal, valence = (float(v) for v in values.loc[song])
        except ValueError:
            raise ValueError(f"{DATASET}: {ann_path} has a non-numeric mean_arousal/mean_valence for song "
                             f"{song}.") from None
        rows.append({"id": song, "path": str(audio_dir / f"{song}.mp3"), "split": group, "target": None,
                     "artist": artist, "arousal": arousal, "valence": valence})
    if no_set or unlabeled:
        warn(DATASET, f"left out {len(no_set)} song(s) outside the Mediaeval 2013 sets and {len(unlabeled)} "
                      f"without static annotations ({(no_set + unlabeled)[:3]}).")
    df = usable_manifest(rows, DATASET, EXTRAS, root=root, layout=LAYOUT)
    dev = df["split"] == "dev"
    df.loc[dev, "split"] = hashed_split(df.loc[dev, "artist"].map(_artist_key).tolist(),
                                        {"train": 1 - VALID_FRACTION, "valid": VALID_FRACTION},
                                        SPLIT_SEED, salt=DATASET)
    train = df[df["split"] == "train"]
    if train.empty:
        raise ValueError(f"{DATASET}: no development songs with audio under {audio_dir}; cannot z-score targets.")
    raw = df[TARGETS].to_numpy(dtype=np.float64)
    mean = train[TARGETS].to_numpy(dtype=np.float64).mean(axis=0)
    std = train[TARGETS].to_numpy(dtype=np.float64).std(axis=0)
    std[std == 0] = 1.0
    z = (raw - mean) / std
    df["target"] = [list(map(float, v)) for v in z]
    return df, list(TARGETS)
