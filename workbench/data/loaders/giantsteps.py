"""GiantSteps key (Knees et al. 2015) and GiantSteps MTG key (Faraldo 2017): task ``giantsteps_key``.

Layout of the data root (the folder holding both data sets)::

    giantsteps-key-dataset/annotations/key/<id>.LOFI.key      one key, e.g. "Eb minor"   -> test
    giantsteps-key-dataset/audio/<id>.LOFI.mp3
    giantsteps-mtg-key-dataset/annotations/annotations.txt    "ID\\tMANUAL KEY\\tC..." header -> train/valid
    giantsteps-mtg-key-dataset/audio/<id>.LOFI.mp3

24 classes (:data:`~workbench.data.tasks.KEY_CLASSES`, flat spellings).  Key spellings
are folded onto them: enharmonics (``C#`` -> ``Db``, ``D#`` -> ``Eb``, ``E#`` -> ``F``),
``Cmaj`` / ``c minor`` / ``A min`` / ``Am``.  From the MTG set only rows with confidence
``C`` = 2 and one unambiguous major/minor key are kept; the key data set is the test
split; the MTG set is cut into train/valid by a seeded hash split
(:data:`VALID_FRACTION`, :data:`SPLIT_SEED`).  Ids are ``key-<id>`` (test) and
``mtg-<id>`` (train/valid) so the two sets can never collide; ``track`` holds the raw id.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from ..tasks import KEY_CLASSES, Task
from ._common import ensure_rows, hashed_split, layout_error, require, task_root, usable_manifest, warn

__all__ = ["build", "fold_key", "VALID_FRACTION", "SPLIT_SEED", "MIN_CONFIDENCE"]

DATASET = "giantsteps"
KEY_SET = "giantsteps-key-dataset"
MTG_SET = "giantsteps-mtg-key-dataset"
VALID_FRACTION = 0.1
SPLIT_SEED = 0
MIN_CONFIDENCE = 2  # the MTG set's "C" column: 2 = the annotator is sure
AUDIO_SUFFIX = ".LOFI.mp3"
KEY_SUFFIX = ".LOFI.key"
LAYOUT = f"""\
  {KEY_SET}/annotations/key/<id>{KEY_SUFFIX}       (text: one key, e.g. "Eb minor")  -> test
  {KEY_SET}/audio/<id>{AUDIO_SUFFIX}
  {MTG_SET}/annotations/annotations.txt        (tab-separated, header "ID<TAB>MANUAL KEY<TAB>C")  -> train/valid
  {MTG_SET}/audio/<id>{AUDIO_SUFFIX}"""
EXTRAS = ("track", "key", "source")

_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACCIDENTAL = {"": 0, "#": 1, "b": -1, "sharp": 1, "flat": -1}
_MODES = {"major": "major", "maj": "major", "ionian": "major", "minor": "minor", "min": "minor",
          "aeolian": "minor"}
_AMBIGUOUS = re.compile(r"[/|,;&+?]|\bor\b", re.IGNORECASE)
_KEY = re.compile(r"^([A-Ga-g])\s*(#|b|sharp|flat)?\s*[-_: ]?\s*([A-Za-z]*)$")


def fold_key(text: str) -> str | None:
    """One key spelling -> its :data:`KEY_CLASSES` name, or None if not one major/minor key.

    >>> fold_key("C# minor"), fold_key("Cmaj"), fold_key("a min"), fold_key("Bbm")
    ('Db minor', 'C major', 'A minor', 'Bb minor')
    >>> fold_key("F minor / Ab major") is None, fold_key("D dorian") is None
    (True, True)
    """
    if text is None:
        return None
    s = str(text).strip().replace("\u266f", "#").replace("\u266d", "b")
    s = re.sub(r"\s+", " ", s)
    if not s or _AMBIGUOUS.search(s):
        return None
    m = _KEY.match(s)
    if not m:
        return None
    letter, accidental, mode = m.group(1), (m.group(2) or ""), m.group(3)
    if mode == "m":
        mode_name = "minor"
    elif mode == "M":
        mode_name = "major"
    else:
        mode_name = _MODES.get(mode.lower())
    if mode_name is None:  # no mode, or a church mode: not one of the 24 classes
        return None
    pc = (_PITCH_CLASS[letter.lower()] + _ACCIDENTAL[accidental.lower() if len(accidental) > 1 else accidental]) % 12
    return KEY_CLASSES[pc + (12 if mode_name == "minor" else 0)]


def _read_key_set(root: Path) -> list[dict]:
    key_dir = require(root / KEY_SET / "annotations" / "key", DATASET, LAYOUT)
    audio_dir = root / KEY_SET / "audio"
    rows, unusable = [], []
    for f in sorted(key_dir.glob(f"*{KEY_SUFFIX}")):
        track = f.name[: -len(KEY_SUFFIX)]
        text = f.read_text(encoding="utf-8", errors="replace").strip()
        key = fold_key(text)
        if key is None:
            unusable.append(f"{track} ({text!r})")
            continue
        rows.append({"id": f"key-{track}", "path": str(audio_dir / f"{track}{AUDIO_SUFFIX}"), "split": "test",
                     "target": KEY_CLASSES.index(key), "track": track, "key": key, "source": KEY_SET})
    if not rows and not unusable:
        raise _no_files(key_dir)
    if unusable:
        warn(DATASET, f"{len(unusable)} test annotation(s) in {key_dir} are not one major/minor key and were "
                      f"dropped: {unusable[:3]}.")
    return rows


def _no_files(key_dir: Path) -> Exception:
    return layout_error(DATASET, key_dir / f"<id>{KEY_SUFFIX}", LAYOUT,
                        f"(the folder {key_dir} holds no *{KEY_SUFFIX} file)")


def _column(header: list[str], names: tuple[str, ...], path: Path) -> int:
    norm = [h.strip().upper() for h in header]
    for n in names:
        if n in norm:
            return norm.index(n)
    raise ValueError(f"{DATASET}: {path} has no {names[0]!r} column in its header {header[:6]}; expected a "
                     "tab-separated file whose first line is 'ID<TAB>MANUAL KEY<TAB>C' (GiantSteps MTG key).")


def _read_mtg_set(root: Path) -> list[dict]:
    path = require(root / MTG_SET / "annotations" / "annotations.txt", DATASET, LAYOUT)
    audio_dir = root / MTG_SET / "audio"
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        lines = [r for r in csv.reader(fh, delimiter="\t") if any(c.strip() for c in r)]
    if not lines:
        raise ValueError(f"{DATASET}: {path} is empty; expected a header 'ID<TAB>MANUAL KEY<TAB>C' "
                         "and one row per track.")
    header = lines[0]
    i_id = _column(header, ("ID",), path)
    i_key = _column(header, ("MANUAL KEY", "KEY"), path)
    i_conf = _column(header, ("C", "CONFIDENCE"), path)
    rows, low_conf, ambiguous = [], 0, []
    for r in lines[1:]:
        cell = lambda i: r[i].strip() if i < len(r) else ""  # noqa: E731
        track = cell(i_id)
        if not track:
            continue
        try:
            conf = int(float(cell(i_conf)))
        except ValueError:
            conf = -1
        if conf < MIN_CONFIDENCE:
            low_conf += 1
            continue
        key = fold_key(cell(i_key))
        if key is None:
            ambiguous.append(f"{track} ({cell(i_key)!r})")
            continue
        rows.append({"id": f"mtg-{track}", "path": str(audio_dir / f"{track}{AUDIO_SUFFIX}"), "split": "",
                     "target": KEY_CLASSES.index(key), "track": track, "key": key, "source": MTG_SET})
    if low_conf or ambiguous:
        warn(DATASET, f"{path}: kept {len(rows)} row(s); skipped {low_conf} with confidence < {MIN_CONFIDENCE} "
                      f"and {len(ambiguous)} without one unambiguous major/minor key ({ambiguous[:3]}).")
    return rows


def build(spec: Task, root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Manifest of ``giantsteps_key``: MTG key set -> train/valid, GiantSteps key set -> test."""
    root = task_root(spec, root, DATASET, ("giantsteps_key",))
    df = usable_manifest(_read_mtg_set(root) + _read_key_set(root), DATASET, EXTRAS)
    mtg = df["source"] == MTG_SET
    df.loc[mtg, "split"] = hashed_split(df.loc[mtg, "id"].tolist(),
                                        {"train": 1 - VALID_FRACTION, "valid": VALID_FRACTION},
                                        SPLIT_SEED, salt=DATASET)
    ensure_rows(df, DATASET, root, LAYOUT)
    return df, list(KEY_CLASSES)
