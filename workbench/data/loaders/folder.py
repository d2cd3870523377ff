"""Any directory of audio files: task ``folder`` (unlabeled pool, or labeled by a CSV).

Layout: the root is a folder searched recursively for audio files: ``.wav .flac .mp3 .ogg``
and every other extension of a format the installed libsndfile reads (:func:`audio_extensions`;
hidden files and folders are skipped).  Optional labels: ``labels.csv`` in the root,
or a root that *is* a CSV file (its folder is then the audio folder), with a header::

    path,label[,split]          label: one class (multiclass) or "a|b|c" (multilabel)
    path,labels[,split]         "labels": always multilabel ("" = no tag)

``path`` is relative to the CSV's folder (or absolute, inside that folder: a path that
leads outside it, ``../x.wav`` or ``/etc/passwd``, is refused naming its line).  ``split`` values: train,
valid (also validation/val), test; empty or absent -> a seeded hash split
(:data:`SPLIT_FRACTIONS`, :data:`SPLIT_SEED`).  The kind is inferred: no CSV ->
``unlabeled`` (target None), a ``labels`` column or any ``|`` -> ``multilabel``,
otherwise ``multiclass``.  :func:`folder_kind` tells it without building the manifest, and
:func:`folder_task` turns the static ``folder`` task into the labeled one
(:func:`workbench.data.task` calls it).  With a CSV only the listed files are used.
"""

from __future__ import annotations

import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..tasks import Task
from ._common import (AUDIO_EXTENSIONS, drop_unusable_audio, ensure_rows, hashed_split, layout_error, make_manifest,
                      natural_key, task_root, usable_manifest, warn)

__all__ = ["build", "folder_kind", "folder_task", "labels_csv", "LABELS_FILE", "audio_extensions", "scan_audio"]

DATASET = "folder"
LABELS_FILE = "labels.csv"
MULTILABEL_SEPARATOR = "|"
SPLIT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}
SPLIT_SEED = 0
SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "val": "valid",
                 "dev": "valid", "test": "test", "eval": "test", "evaluation": "test"}
#: soundfile (libsndfile) format name -> the file extensions of that format.
SOUNDFILE_EXTENSIONS = {"WAV": (".wav",), "WAVEX": (".wav",), "FLAC": (".flac",), "OGG": (".ogg", ".oga", ".opus"),
                        "MP3": (".mp3",), "AIFF": (".aiff", ".aif", ".aifc"), "AU": (".au", ".snd"), "CAF": (".caf",),
                        "W64": (".w64",), "RF64": (".rf64",)}
KIND_METRICS = {"multiclass": ["accuracy"], "multilabel": ["roc_auc", "average_precision"]}
LAYOUT = f"""\
  <any folders>/<file>.{{wav,flac,mp3,ogg}}   (searched recursively)
  {LABELS_FILE}                                (optional: path,label[,split]; label "a|b" = multilabel)"""


def labels_csv(root: Path) -> Path | None:
    """The labels CSV of ``root``: the root itself when it is a CSV file, else ``root/labels.csv``."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise ValueError(f"{DATASET}: root {root} is a file but not a .csv of labels; pass a folder of audio "
                             f"files or a CSV with columns path,label[,split].")
        return root
    candidate = root / LABELS_FILE
    return candidate if candidate.is_file() else None


def _read_labels(path: Path) -> tuple[pd.DataFrame, str]:
    """The CSV (stripped strings, lower-case column names) and its label column name."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.columns = [str(c).strip().lower() for c in table.columns]
    table = table.apply(lambda s: s.str.strip())
    label_col = "labels" if "labels" in table.columns else "label"
    missing = [c for c in ("path", label_col) if c not in table.columns]
    if missing:
        raise ValueError(f"{DATASET}: {path} has no column(s) {missing} (found {list(table.columns)}); expected a "
                         "header 'path,label' or 'path,label,split' (label 'a|b' for several tags).")
    return table, label_col


def _kind_of(table: pd.DataFrame, label_col: str) -> str:
    if label_col == "labels" or table[label_col].str.contains(MULTILABEL_SEPARATOR, regex=False).any():
        return "multilabel"
    return "multiclass"


def folder_kind(root: str | Path) -> str:
    """``"unlabeled"``, ``"multiclass"`` or ``"multilabel"`` for the folder (or CSV) ``root``."""
    csv_path = labels_csv(Path(root).expanduser())
    if csv_path is None:
        return "unlabeled"
    return _kind_of(*_read_labels(csv_path))


def folder_task(spec: Task, root: str | Path, classes: list[str]) -> Task:
    """The ``folder`` task specialised to ``root``: kind, classes and metrics from its labels."""
    kind = folder_kind(root)
    if kind == "unlabeled":
        return spec
    return replace(spec, kind=kind, classes=list(classes), metrics=list(KIND_METRICS[kind]))


@lru_cache(maxsize=1)
def audio_extensions() -> tuple[str, ...]:
    """The extensions the folder task reads: :data:`AUDIO_EXTENSIONS` and those of every
    format the installed libsndfile reports (``soundfile.available_formats()``)."""
    import soundfile as sf

    available = set(sf.available_formats())
    found = {e for fmt, exts in SOUNDFILE_EXTENSIONS.items() if fmt in available for e in exts}
    return tuple(sorted(set(AUDIO_EXTENSIONS) | found))


def scan_audio(folder: Path) -> list[Path]:
    """Audio files under ``folder`` (recursive; hidden files and folders skipped), sorted."""
    folder = Path(folder)
    extensions = set(audio_extensions())
    out = []
    for f in folder.rglob("*"):
        rel = f.relative_to(folder).parts
        if f.suffix.lower() in extensions and not any(p.startswith(".") for p in rel) and f.is_file():
            out.append(f)
    return sorted(out, key=lambda p: natural_key(p.relative_to(folder).as_posix()))


def _rel_id(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _assign_splits(df: pd.DataFrame) -> pd.DataFrame:
    need = df["split"].isna() | (df["split"] == "")
    if need.any():
        df.loc[need, "split"] = hashed_split(df.loc[need, "id"].tolist(), SPLIT_FRACTIONS, SPLIT_SEED, salt=DATASET)
    return df


def build(spec: Task, root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Manifest of ``folder``: unlabeled, or labeled by ``labels.csv`` / a CSV root."""
    root = task_root(spec, root, DATASET, ("folder",))
    csv_path = labels_csv(root)
    base = csv_path.parent if csv_path is not None else root
    if csv_path is None:
        files = scan_audio(base)
        if not files:
            raise layout_error(DATASET, base / "<file>.wav", LAYOUT,
                               f"(no {'/'.join(AUDIO_EXTENSIONS)} file under {base})")
        df = make_manifest([{"id": _rel_id(f, base), "path": str(f), "split": None, "target": None} for f in files])
        df = drop_unusable_audio(df, DATASET)
        ensure_rows(df, DATASET, root, LAYOUT)
        return _assign_splits(df), []

    table, label_col = _read_labels(csv_path)
    kind = _kind_of(table, label_col)
    has_split = "split" in table.columns
    rows, unlabeled, bad_split, outside = [], [], [], []
    for n, rec in enumerate(table.to_dict("records"), start=2):
        if not rec["path"]:
            continue
        p = Path(rec["path"]).expanduser()
        path = Path(os.path.normpath(p if p.is_absolute() else base / p))
        if not path.is_relative_to(base):  # lexical: a symlinked sub-folder of the root stays allowed
            outside.append(f"line {n}: {rec['path']!r}")
            continue
        split = rec.get("split", "") if has_split else ""
        if split:
            split = SPLIT_ALIASES.get(split.lower())
            if split is None:
                bad_split.append(f"line {n}: {rec['split']!r}")
                continue
        raw = rec[label_col]
        if kind == "multilabel":
            labels = sorted({t.strip() for t in raw.split(MULTILABEL_SEPARATOR) if t.strip()}, key=natural_key)
        elif raw:
            labels = raw
        else:
            unlabeled.append(rec["path"])
            continue
        rows.append({"id": _rel_id(path, base), "path": str(path), "split": split or None, "labels": labels})
    if outside:
        raise ValueError(f"{DATASET}: {csv_path} names {len(outside)} path(s) outside its folder {base} "
                         f"({', '.join(outside[:3])}); list only audio files under {base} (relative paths).")
    if bad_split:
        raise ValueError(f"{DATASET}: {csv_path} has unknown split value(s) ({bad_split[:3]}); use train, valid "
                         "or test (or leave the cell empty for a seeded split).")
    if unlabeled:
        warn(DATASET, f"{len(unlabeled)} row(s) of {csv_path} have an empty label and are left out "
                      f"({unlabeled[:3]}).")
    df = usable_manifest([{**r, "target": None} for r in rows], DATASET, ["labels"], root=root, layout=LAYOUT)
    listed = set(df["path"])
    extra = [f for f in scan_audio(base) if str(f) not in listed and f != csv_path]
    if extra:
        warn(DATASET, f"{len(extra)} audio file(s) under {base} are not listed in {csv_path} and are ignored.")
    if kind == "multilabel":
        classes = sorted({t for ls in df["labels"] for t in ls}, key=natural_key)
        index = {c: i for i, c in enumerate(classes)}
        df["target"] = [[index[t] for t in ls] for ls in df["labels"]]
    else:
        classes = sorted(set(df["labels"]), key=natural_key)
        index = {c: i for i, c in enumerate(classes)}
        df["target"] = df["labels"].map(index).astype(int)
    return _assign_splits(df), classes
