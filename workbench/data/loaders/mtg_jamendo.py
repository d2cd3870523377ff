"""MTG-Jamendo (Bogdanov et al. 2019): ``mtg_top50``, ``mtg_genre``, ``mtg_mood``, ``mtg_instrument``.

Layout of the data root (the dataset repository's ``data/`` folder layout, audio beside it)::

    splits/split-0/autotagging_top50tags-{train,validation,test}.tsv     (or data/splits/split-0/...)
    splits/split-0/autotagging_genre-...tsv, autotagging_moodtheme-...tsv, autotagging_instrument-...tsv
    <PATH> e.g. 14/214.mp3     (or the low-quality download 14/214.low.mp3; also under audio/)

TSV rows: ``TRACK_ID  ARTIST_ID  ALBUM_ID  PATH  DURATION  TAG  TAG ...`` (tab-separated,
a variable number of tags such as ``genre---rock`` or ``mood/theme---happy``).  Split 0
of the official splits; the class set is the sorted set of tags of the training file
(tags only seen in valid/test are ignored); targets are lists of class indices, an empty
list when a row has no known tag.  Extras: ``artist``, ``album``, ``duration``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..tasks import Task
from ._common import find_existing, layout_error, task_root, usable_manifest, warn

DATASET = "mtg_jamendo"
SPLIT_NAME = "split-0"
TASK_FILES = {"mtg_top50": "top50tags", "mtg_genre": "genre", "mtg_mood": "moodtheme",
              "mtg_instrument": "instrument"}
FILE_SPLITS = {"train": "train", "validation": "valid", "test": "test"}
HEADER = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION")
LOW_QUALITY_SUFFIX = ".low.mp3"
AUDIO_FOLDERS = ("", "audio")
LAYOUT = f"""\
  splits/{SPLIT_NAME}/autotagging_<top50tags|genre|moodtheme|instrument>-<train|validation|test>.tsv
      (tab-separated: TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS...; data/splits/... also works)
  <PATH>, e.g. 14/214.mp3 or 14/214{LOW_QUALITY_SUFFIX} (also under audio/)"""
EXTRAS = ("artist", "album", "duration", "tags")


def splits_folder(root: Path) -> Path:
    """``splits/split-0`` under the root (or under ``data/``, the repository's layout)."""
    found = find_existing([root / "splits" / SPLIT_NAME, root / "data" / "splits" / SPLIT_NAME])
    if found is None:
        raise layout_error(DATASET, root / "splits" / SPLIT_NAME, LAYOUT)
    return found


def read_tsv(path: Path) -> list[dict]:
    """Rows of one autotagging TSV: the five fixed fields and the list of tags."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or tuple(h.strip().upper() for h in lines[0].split("\t")[:5]) != HEADER:
        raise ValueError(f"{DATASET}: {path} does not start with the header {' '.join(HEADER)} TAGS "
                         "(tab-separated); is this an MTG-Jamendo autotagging split file?")
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) < len(HEADER):
            raise ValueError(f"{DATASET}: {path} line {n} has {len(cells)} field(s); expected at least "
                             f"{len(HEADER)} ({', '.join(HEADER)}).")
        track, artist, album, rel, duration = (c.strip() for c in cells[:5])
        try:
            seconds = float(duration)
        except ValueError:
            seconds = float("nan")
        rows.append({"id": track, "artist": artist, "album": album, "rel": rel, "duration": seconds,
                     "tags": [t.strip() for t in cells[5:] if t.strip()]})
    return rows


def _resolve_audio(root: Path, rel: str) -> Path:
    """The first existing of <root>[/audio]/<PATH> and its .low.mp3 variant (else the plain path)."""
    low = rel[: -len(".mp3")] + LOW_QUALITY_SUFFIX if rel.endswith(".mp3") else rel
    candidates = [root / folder / name for folder in AUDIO_FOLDERS for name in dict.fromkeys((rel, low))]
    return find_existing(candidates) or root / rel


def build(spec: Task, root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Manifest of one MTG-Jamendo autotagging task (split 0)."""
    root = task_root(spec, root, DATASET, tuple(TASK_FILES))
    folder = splits_folder(root)
    per_split: dict[str, list[dict]] = {}
    for file_split, split in FILE_SPLITS.items():
        path = folder / f"autotagging_{TASK_FILES[spec.name]}-{file_split}.tsv"
        if not path.exists():
            raise layout_error(DATASET, path, LAYOUT)
        per_split[split] = read_tsv(path)
    classes = sorted({t for r in per_split["train"] for t in r["tags"]})
    index = {t: i for i, t in enumerate(classes)}
    rows, unknown = [], set()
    for split, items in per_split.items():
        for r in items:
            unknown.update(t for t in r["tags"] if t not in index)
            rows.append({"id": r["id"], "path": str(_resolve_audio(root, r["rel"])), "split": split,
                         "target": sorted(index[t] for t in r["tags"] if t in index), "artist": r["artist"],
                         "album": r["album"], "duration": r["duration"], "tags": r["tags"]})
    if unknown:
        warn(DATASET, f"{spec.name}: {len(unknown)} tag(s) of valid/test never occur in train and are ignored "
                      f"({sorted(unknown)[:3]}).")
    df = usable_manifest(rows, DATASET, EXTRAS, root=root, layout=LAYOUT)
    return df, classes
