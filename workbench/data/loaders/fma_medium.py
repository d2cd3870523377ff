"""FMA medium (Defferrard et al. 2017): the unlabeled pool ``fma_medium`` and ``fma_genre``.

The root may be either the audio folder itself or the folder holding it::

    <root>/fma_medium/000/000002.mp3 ...          or   <root>/000/000002.mp3 ...
    <root>/fma_metadata/tracks.csv   (optional; also found beside or above the audio folder)

Audio: ``<3-digit folder>/<track id>.mp3`` (other files are ignored).  The embedded
benchmark adds each piece's stems, ``<3-digit folder>/<track id>.stems/{bass,drums,melody,
accompaniment}.<ext>`` (or ``<audio folder>/<track id>.stems/``): when any exist the manifest
has a ``stems`` column (dict stem -> absolute path, None for tracks without stems) for
the multi-source baseline.

Splits: FMA's official split (``set/split`` in tracks.csv: training / validation / test)
when tracks.csv is present and lists the track, otherwise a seeded hash split
(:data:`SPLIT_FRACTIONS`, :data:`SPLIT_SEED`), so pretraining on ``fma_medium`` and probing
``fma_genre`` agree on test tracks.  ``fma_genre``: multiclass ``track/genre_top`` (16
genres in fma_medium; tracks without a top genre are left out); it requires tracks.csv.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from ..tasks import Task
from ._common import (AUDIO_EXTENSIONS, ensure_rows, find_existing, hashed_split, layout_error, natural_key, task_root,
                      usable_manifest, warn)

__all__ = ["build", "find_tracks_csv", "read_tracks_csv", "audio_folder"]

DATASET = "fma_medium"
AUDIO_FOLDER = "fma_medium"
METADATA_FOLDER = "fma_metadata"
TRACKS_CSV = "tracks.csv"
SPLIT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}
SPLIT_SEED = 0
OFFICIAL_SPLITS = {"training": "train", "validation": "valid", "test": "test"}
STEMS_SUFFIX = ".stems"
TRACKS_HEADER_ROWS = 3  # FMA's tracks.csv: two header rows (column groups, names) + "track_id" row
_TRACK_FILE = re.compile(r"^\d+$")
_SHARD = re.compile(r"^\d{3}$")
LAYOUT = f"""\
  {AUDIO_FOLDER}/000/000002.mp3 ...    (3-digit folders of <track id>.mp3; the root may also be {AUDIO_FOLDER}/ itself)
  {AUDIO_FOLDER}/000/000002{STEMS_SUFFIX}/{{bass,drums,melody,accompaniment}}.mp3   (optional stems)
  {METADATA_FOLDER}/{TRACKS_CSV}          (optional for fma_medium, required for fma_genre)"""
EXTRAS = ("track", "genre", "stems")


def audio_folder(root: Path) -> Path:
    """The folder holding the 3-digit shards: ``root`` itself or ``root/fma_medium``."""
    if any(_SHARD.match(p.name) for p in root.iterdir() if p.is_dir()):
        return root
    nested = root / AUDIO_FOLDER
    if nested.is_dir():
        return nested
    raise layout_error(DATASET, root / AUDIO_FOLDER / "000", LAYOUT,
                       f"(neither {root} nor {nested} holds 3-digit folders of mp3 files)")


def find_tracks_csv(root: Path, audio_dir: Path) -> Path | None:
    """tracks.csv in ``fma_metadata/`` beside or above the audio folder (or directly in the root)."""
    candidates = [root / METADATA_FOLDER / TRACKS_CSV, audio_dir / METADATA_FOLDER / TRACKS_CSV,
                  audio_dir.parent / METADATA_FOLDER / TRACKS_CSV, root / TRACKS_CSV]
    return find_existing(candidates)


def read_tracks_csv(path: Path) -> pd.DataFrame:
    """``track_id`` (str, as in the file names: zero-padded to 6 digits) -> ``genre_top``, ``split``.

    FMA's tracks.csv has multi-index columns: row 1 the groups (``track``, ``set``, ...),
    row 2 the names (``genre_top``, ``split``, ...), row 3 ``track_id``.  Only the needed
    columns are parsed.
    """
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        try:
            groups, names = next(reader), next(reader)
        except StopIteration:
            raise ValueError(f"{DATASET}: {path} has fewer than two header rows; expected FMA's tracks.csv "
                             "(groups row, names row, 'track_id' row).") from None

    def find(group: str, name: str) -> int | None:
        for i, (g, n) in enumerate(zip(groups, names)):
            if g.strip() == group and n.strip() == name:
                return i
        return None

    i_genre, i_split = find("track", "genre_top"), find("set", "split")
    if i_genre is None:
        raise ValueError(f"{DATASET}: {path} has no ('track', 'genre_top') column; expected FMA's tracks.csv "
                         "with two header rows (e.g. 'track,...' then 'genre_top,...').")
    use = [0, i_genre] + ([i_split] if i_split is not None else [])
    table = pd.read_csv(path, header=None, skiprows=TRACKS_HEADER_ROWS, usecols=use, dtype=str,
                        keep_default_na=False)
    out = pd.DataFrame({
        "track": table[0].str.strip().map(lambda t: t.zfill(6) if t.isdigit() else t),
        "genre": table[i_genre].str.strip(),
        "official_split": table[i_split].str.strip().map(OFFICIAL_SPLITS) if i_split is not None else None,
    })
    return out.drop_duplicates("track", keep="first").set_index("track")


def _text_or_none(value) -> str | None:
    return None if value is None or pd.isna(value) or value == "" else str(value)


def _stems(audio_dir: Path, mp3: Path) -> dict[str, str] | None:
    for d in (mp3.parent / f"{mp3.stem}{STEMS_SUFFIX}", audio_dir / f"{mp3.stem}{STEMS_SUFFIX}"):
        if d.is_dir():
            files = sorted(f for f in d.iterdir() if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file())
            if files:
                return {f.stem: str(f) for f in files}
    return None


def scan_audio(audio_dir: Path) -> list[Path]:
    """Every ``<3 digits>/<digits>.mp3`` under ``audio_dir``, sorted."""
    files = []
    for shard in sorted(p for p in audio_dir.iterdir() if p.is_dir() and _SHARD.match(p.name)):
        files += [f for f in shard.iterdir()
                  if f.suffix.lower() == ".mp3" and _TRACK_FILE.match(f.stem) and f.is_file()]
    return sorted(files, key=lambda f: (natural_key(f.stem), str(f)))


def build(spec: Task, root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Manifest of ``fma_medium`` (unlabeled) or ``fma_genre`` (multiclass top genre)."""
    root = task_root(spec, root, DATASET, ("fma_medium", "fma_genre"))
    audio_dir = audio_folder(root)
    files = scan_audio(audio_dir)
    if not files:
        raise layout_error(DATASET, audio_dir / "000" / "000002.mp3", LAYOUT,
                           f"(no <3-digit folder>/<track id>.mp3 file under {audio_dir})")
    tracks_csv = find_tracks_csv(root, audio_dir)
    meta = read_tracks_csv(tracks_csv) if tracks_csv is not None else None
    if spec.name == "fma_genre" and meta is None:
        raise layout_error(DATASET, root / METADATA_FOLDER / TRACKS_CSV, LAYOUT,
                           "fma_genre needs FMA's metadata (fma_metadata.zip) beside the audio folder.")
    rows = []
    for f in files:
        track = f.stem
        genre = split = None
        if meta is not None and track in meta.index:
            genre = _text_or_none(meta.at[track, "genre"])
            split = _text_or_none(meta.at[track, "official_split"])
        rows.append({"id": track, "path": str(f), "split": split, "target": None, "track": track,
                     "genre": genre, "stems": _stems(audio_dir, f)})
    df = usable_manifest(rows, DATASET, EXTRAS)
    need = df["split"].isna()
    if need.any():
        df.loc[need, "split"] = hashed_split(df.loc[need, "id"].tolist(), SPLIT_FRACTIONS, SPLIT_SEED, salt=DATASET)
    classes: list[str] = []
    if spec.name == "fma_genre":
        labeled = df["genre"].notna()
        if (~labeled).any():
            warn(DATASET, f"fma_genre: {int((~labeled).sum())} of {len(df)} tracks have no top genre in "
                          f"{tracks_csv} and are left out.")
        df = df.loc[labeled].reset_index(drop=True)
        classes = sorted(df["genre"].unique().tolist())
        df["target"] = df["genre"].map({g: i for i, g in enumerate(classes)}).astype(int)
    if df["stems"].isna().all():
        df = df.drop(columns="stems")
    ensure_rows(df, DATASET, root, LAYOUT)
    return df, classes
