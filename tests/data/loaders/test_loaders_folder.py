"""Folder loader: any directory of audio (unlabeled), or labeled by a CSV (multiclass / multilabel)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from loaderkit import manifest_warnings
from workbench import data
from workbench.data.loaders import DataWarning, DatasetLayoutError
from workbench.data.loaders import folder as loader

SR = 16000
FILES = ["a.wav", "b.flac", "c.mp3", "d.ogg", "sub/e.wav", "sub/deeper/f.WAV", "sub/g.flac", "h.wav", "i.wav",
         "j.wav"]


def write(path: Path, seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    fmt = {".wav": "WAV", ".flac": "FLAC", ".mp3": "MP3", ".ogg": "OGG"}[path.suffix.lower()]
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 300 * t).astype(np.float32), SR, format=fmt)


def make_tree(root: Path) -> Path:
    for f in FILES:
        write(root / f)
    (root / "notes.txt").write_text("stray")
    write(root / ".hidden" / "x.wav")          # hidden folder: skipped
    write(root / ".y.wav")                     # hidden file: skipped
    (root / "sub" / "cover.jpg").write_bytes(b"\xff\xd8")
    return root


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kwargs)


def test_unlabeled_folder(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "pool")
    df = data.manifest("folder", root=root)
    assert sorted(df["id"]) == sorted(FILES)
    assert df["target"].isna().all()
    assert df["split"].value_counts().to_dict() == {"train": 8, "valid": 1, "test": 1}  # 80/10/10 of 10
    assert all(Path(p).is_absolute() and Path(p).exists() for p in df["path"])
    t = data.task("folder", root=root)
    assert t.kind == "unlabeled" and t.classes == [] and loader.folder_kind(root) == "unlabeled"


def test_multiclass_csv_with_partial_splits(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "mc")
    (root / "labels.csv").write_text(
        "path,label,split\n"
        "a.wav,piano,train\nb.flac,guitar,valid\nc.mp3,piano,test\nsub/e.wav,voice,\n"
        "sub/deeper/f.WAV,guitar,Validation\nmissing.wav,piano,train\nd.ogg,,train\nh.wav,voice,train\n"
        "a.wav,voice,test\n"
    )
    df, messages = manifest_warnings("folder", root)
    assert "1 row(s)" in messages and "empty label" in messages           # d.ogg
    assert "1 with missing audio (missing.wav)" in messages
    assert "1 duplicate id" in messages and "a.wav" in messages
    assert "4 audio file(s)" in messages and "not listed" in messages    # g, i, j and the unlabeled d.ogg
    t = quiet(data.task, "folder", root=root)
    assert t.kind == "multiclass" and t.classes == ["guitar", "piano", "voice"] and t.metrics == ["accuracy"]
    got = {r.id: (r.target, r.split) for r in df.itertuples()}
    assert got["a.wav"] == (1, "train") and got["b.flac"] == (0, "valid") and got["c.mp3"] == (1, "test")
    assert got["sub/deeper/f.WAV"] == (0, "valid") and got["h.wav"] == (2, "train")
    assert got["sub/e.wav"][0] == 2 and got["sub/e.wav"][1] in {"train", "valid", "test"}  # seeded
    assert set(got) == {"a.wav", "b.flac", "c.mp3", "sub/e.wav", "sub/deeper/f.WAV", "h.wav"}


def test_multilabel_csv_as_root(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ml")
    csv = tmp_path / "ml" / "tags.csv"
    csv.write_text("path,label\na.wav,rock|guitar\nb.flac,guitar\nc.mp3,|\nsub/e.wav,voice | rock\n")
    assert loader.folder_kind(csv) == "multilabel"
    df = quiet(data.manifest, "folder", root=csv)
    t = quiet(data.task, "folder", root=csv)
    assert t.kind == "multilabel" and t.classes == ["guitar", "rock", "voice"]
    assert t.metrics == ["roc_auc", "average_precision"]
    assert dict(zip(df["id"], df["target"])) == {"a.wav": [0, 1], "b.flac": [0], "c.mp3": [], "sub/e.wav": [1, 2]}


def test_labels_column_forces_multilabel(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "forced")
    (root / "labels.csv").write_text("path,labels\na.wav,rock\nb.flac,\n")
    assert loader.folder_kind(root) == "multilabel"
    df = quiet(data.manifest, "folder", root=root)
    assert dict(zip(df["id"], df["target"])) == {"a.wav": [0], "b.flac": []}


def test_deterministic(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "det")
    a = loader.build(data.TASKS["folder"], root)[0]
    b = loader.build(data.TASKS["folder"], root)[0]
    assert a.equals(b)


def test_bad_split_value_is_a_clear_error(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "badsplit")
    (root / "labels.csv").write_text("path,label,split\na.wav,x,holdout\n")
    with pytest.raises(ValueError, match="labels.csv has unknown split value.*holdout"):
        data.manifest("folder", root=root)


def test_csv_without_path_column_is_a_clear_error(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "nopath")
    (root / "labels.csv").write_text("file,label\na.wav,x\n")
    with pytest.raises(ValueError, match="labels.csv has no column.*'path'"):
        data.manifest("folder", root=root)


def test_empty_folder_is_a_layout_error(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    (root / "readme.txt").write_text("no audio here")
    with pytest.raises(DatasetLayoutError, match="no .wav/.flac/.mp3/.ogg file"):
        data.manifest("folder", root=root)
