"""MagnaTagATune (Law et al. 2009): tasks ``mtat_top50`` and ``mtat_all``.

Layout of the data root::

    annotations_final.csv     tab-separated, every field double-quoted:
                              "clip_id"  "no voice"  "singer"  ...  "mp3_path"   (188 tag columns)
    0/<file>.mp3 ... f/<file>.mp3   (the folders of the mp3 archive; a root holding mp3/0 ... mp3/f works too)

Split by the first folder of ``mp3_path``: 0-b train, c valid, d-f test (the usual split).
``mtat_top50``: the 50 most frequent tags over the whole file, ordered by frequency
(ties: column order), as in the literature's top-50 list.  ``mtat_all``: every tag
column in file order.  Targets are lists of class indices; a clip with none of the tags
keeps an empty list.  Rows whose mp3 is missing or zero bytes (the real archive has a few
empty files) are dropped with a warning.  Extras: ``track`` (clips cut from one song share
it) and ``artist``, both parsed from the file name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..tasks import Task
from ._common import require, task_root, usable_manifest, warn

DATASET = "mtat"
ANNOTATIONS = "annotations_final.csv"
ID_COLUMN = "clip_id"
PATH_COLUMN = "mp3_path"
TOP_K = 50
FOLDER_SPLITS = {**{c: "train" for c in "0123456789ab"}, "c": "valid", **{c: "test" for c in "def"}}
LAYOUT = f"""\
  {ANNOTATIONS}      (tab-separated, quoted: "clip_id"<TAB>"<tag>"...<TAB>"mp3_path")
  <0-f>/<file>.mp3           (mp3_path relative to the root; 0-b train, c valid, d-f test)"""
EXTRAS = ("track", "artist", "mp3_path")


def read_annotations(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """``annotations_final.csv`` as strings, and its tag columns in file order."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quotechar='"')
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in (ID_COLUMN, PATH_COLUMN) if c not in table.columns]
    if missing:
        raise ValueError(
            f"{DATASET}: {path} has no {missing} column(s) (found {list(table.columns)[:4]}...). Expected the "
            f"tab-separated MagnaTagATune file with a quoted header \"{ID_COLUMN}\"<TAB>tags...<TAB>\"{PATH_COLUMN}\"."
        )
    tags = [c for c in table.columns if c not in (ID_COLUMN, PATH_COLUMN)]
    if not tags:
        raise ValueError(f"{DATASET}: {path} has no tag columns between {ID_COLUMN!r} and {PATH_COLUMN!r}.")
    return table, tags


def _tag_matrix(table: pd.DataFrame, tags: list[str], path: Path) -> np.ndarray:
    values = table[tags].apply(lambda s: s.str.strip())
    bad = ~values.isin(["0", "1"])
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise ValueError(f"{DATASET}: {path} row {r + 2} (clip {table[ID_COLUMN].iloc[r]}) has "
                         f"{values.iat[r, c]!r} in tag column {tags[c]!r}; tag cells must be 0 or 1.")
    return values.to_numpy() == "1"


def top_tags(matrix: np.ndarray, tags: list[str], k: int = TOP_K) -> list[str]:
    """The ``k`` most frequent tags, by count (descending) then column order."""
    counts = matrix.sum(axis=0)
    order = sorted(range(len(tags)), key=lambda i: (-int(counts[i]), i))
    return [tags[i] for i in order[:k]]


def _audio_base(root: Path) -> Path:
    """The folder holding 0/ ... f/: the root itself, or root/mp3 (the archive's own folder name)."""
    if not any((root / c).is_dir() for c in FOLDER_SPLITS) and (root / "mp3").is_dir():
        return root / "mp3"
    return root


def build(spec: Task, root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Manifest of ``mtat_top50`` or ``mtat_all``."""
    root = task_root(spec, root, DATASET, ("mtat_top50", "mtat_all"))
    path = require(root / ANNOTATIONS, DATASET, LAYOUT)
    table, tags = read_annotations(path)
    matrix = _tag_matrix(table, tags, path)
    classes = top_tags(matrix, tags) if spec.name == "mtat_top50" else tags
    columns = [tags.index(t) for t in classes]
    selected = matrix[:, columns]
    base = _audio_base(root)
    rows, bad_folder = [], []
    for i, (clip, mp3) in enumerate(zip(table[ID_COLUMN].str.strip(), table[PATH_COLUMN].str.strip())):
        folder = mp3.split("/", 1)[0].lower() if "/" in mp3 else ""
        split = FOLDER_SPLITS.get(folder)
        if split is None:
            bad_folder.append(clip)
            continue
        stem = Path(mp3).stem
        rows.append({"id": clip, "path": str(base / mp3), "split": split,
                     "target": np.flatnonzero(selected[i]).tolist(),
                     "track": stem.rsplit("-", 2)[0], "artist": stem.split("-", 1)[0], "mp3_path": mp3})
    if bad_folder:
        warn(DATASET, f"{len(bad_folder)} row(s) of {path} have an mp3_path outside folders 0-f and were "
                      f"dropped ({bad_folder[:3]}).")
    df = usable_manifest(rows, DATASET, EXTRAS, root=root, layout=LAYOUT)
    return df, list(classes)
