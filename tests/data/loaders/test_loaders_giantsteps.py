"""GiantSteps key loader: real layout, confidence filter, ambiguous keys, enharmonic folding."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from loaderkit import manifest_warnings
from workbench import data
from workbench.data.loaders import DataWarning, DatasetLayoutError
from workbench.data.loaders import giantsteps as loader
from workbench.data.tasks import KEY_CLASSES, get_spec

SR = 16000
KEY_SET, MTG_SET = "giantsteps-key-dataset", "giantsteps-mtg-key-dataset"


def tone(path: Path, seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 330 * t).astype(np.float32), SR)


TEST_KEYS = {"101": "Eb minor", "102": "C# major\n", "103": "a min", "104": "F minor / Ab major", "105": "G major"}
TEST_NO_AUDIO = {"105"}
# (id, manual key, confidence); awkward rows of the real file included.
MTG_ROWS = [("1001", "D# minor", "2"), ("1002", "Cmaj", "2"), ("1003", "G major", "1"),
            ("1004", "A minor | C major", "2"), ("1005", "B minor", "2"), ("1005", "E major", "2"),
            ("1006", "Gbm", "2"), ("1007", "-", "2"), ("1008", "D dorian", "2")]
MTG_NO_AUDIO = {"1006"}
FILLER = [(str(2000 + i), KEY_CLASSES[i], "2") for i in range(20)]


def make_tree(root: Path) -> Path:
    for track, key in TEST_KEYS.items():
        p = root / KEY_SET / "annotations" / "key" / f"{track}.LOFI.key"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(key)
        if track not in TEST_NO_AUDIO:
            tone(root / KEY_SET / "audio" / f"{track}.LOFI.mp3")
    (root / KEY_SET / "annotations" / "key" / "README.md").write_text("stray")
    (root / KEY_SET / "audio" / "notes.txt").write_text("stray")
    ann = root / MTG_SET / "annotations" / "annotations.txt"
    ann.parent.mkdir(parents=True)
    lines = ["ID\tMANUAL KEY\tC\tGENRE"] + [f"{i}\t{k}\t{c}\ttechno" for i, k, c in MTG_ROWS + FILLER] + [""]
    ann.write_text("\n".join(lines))
    for i, _, _ in MTG_ROWS + FILLER:
        if i not in MTG_NO_AUDIO:
            tone(root / MTG_SET / "audio" / f"{i}.LOFI.mp3")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "giantsteps")


def quiet_manifest(name: str, root: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return data.manifest(name, root=root)


@pytest.mark.parametrize("text,expected", [
    ("C# minor", "Db minor"), ("Db minor", "Db minor"), ("D# major", "Eb major"), ("Cmaj", "C major"),
    ("c minor", "C minor"), ("A min", "A minor"), ("Bbm", "Bb minor"), ("F#m", "Gb minor"),
    ("E# major", "F major"), ("Cb major", "B major"), ("b minor", "B minor"), ("G Major", "G major"),
    ("A\u266f minor", "Bb minor"), ("Eb minor", "Eb minor"),
    ("F minor / Ab major", None), ("A minor | C major", None), ("-", None), ("", None), ("D dorian", None),
    ("Eb", None), ("X major", None),
])
def test_fold_key(text: str, expected: str | None) -> None:
    assert loader.fold_key(text) == expected


def test_manifest_targets_and_splits(tree: Path) -> None:
    df, messages = manifest_warnings("giantsteps_key", tree)
    assert "skipped 1 with confidence < 2 and 3 without one unambiguous" in messages
    assert "1 test annotation(s)" in messages and "104" in messages
    assert "1 duplicate id" in messages and "mtg-1005" in messages
    assert "missing audio" in messages and "key-105" in messages and "mtg-1006" in messages
    key = dict(zip(df["id"], df["target"]))
    idx = KEY_CLASSES.index
    assert key["key-101"] == idx("Eb minor") and key["key-102"] == idx("Db major") and key["key-103"] == idx("A minor")
    assert key["mtg-1001"] == key["key-101"]  # "D# minor" and "Eb minor" are one class
    assert key["mtg-1002"] == idx("C major")
    assert key["mtg-1005"] == idx("B minor")  # first of the duplicated rows
    for dropped in ("key-104", "key-105", "mtg-1003", "mtg-1004", "mtg-1006", "mtg-1007", "mtg-1008"):
        assert dropped not in key
    assert set(df.loc[df["source"] == KEY_SET, "split"]) == {"test"}
    assert set(df.loc[df["split"] == "test", "id"]) == {"key-101", "key-102", "key-103"}
    mtg = df[df["source"] == MTG_SET]
    assert set(mtg["split"]) == {"train", "valid"}
    n = len(mtg)  # 3 + 20 filler rows
    assert n == 23
    expected_valid = sum((i + 0.5) / n >= 1 - loader.VALID_FRACTION for i in range(n))
    assert (mtg["split"] == "valid").sum() == expected_valid == 2
    assert all(Path(p).exists() for p in df["path"])


def test_classes_and_determinism(tree: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        t = data.task("giantsteps_key", root=tree)
        a, _ = loader.build(get_spec("giantsteps_key"), tree)
        b, _ = loader.build(get_spec("giantsteps_key"), tree)
    assert t.classes == KEY_CLASSES and len(t.classes) == 24
    assert a.equals(b)


def test_split_is_stable_when_a_track_disappears(tmp_path: Path) -> None:
    a = quiet_manifest("giantsteps_key", make_tree(tmp_path / "a")).set_index("id")["split"]
    root_b = make_tree(tmp_path / "b")
    (root_b / MTG_SET / "audio" / "2003.LOFI.mp3").unlink()
    b = quiet_manifest("giantsteps_key", root_b).set_index("id")["split"]
    common = b.index
    changed = (a[common] != b).sum()
    assert "mtg-2003" not in common and changed <= 1  # only a neighbour of a boundary may move


def test_missing_annotations_names_the_file(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "noann")
    (root / MTG_SET / "annotations" / "annotations.txt").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        data.manifest("giantsteps_key", root=root)
    assert str(root.resolve() / MTG_SET / "annotations" / "annotations.txt") in str(err.value)
    assert "giantsteps-key-dataset/annotations/key/<id>.LOFI.key" in str(err.value)


def test_missing_key_folder_names_it(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "nokeys")
    for f in (root / KEY_SET / "annotations" / "key").iterdir():
        f.unlink()
    (root / KEY_SET / "annotations" / "key").rmdir()
    with pytest.raises(FileNotFoundError, match="annotations/key"):
        quiet_manifest("giantsteps_key", root)


def test_headerless_annotations_is_a_clear_error(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "nohead")
    ann = root / MTG_SET / "annotations" / "annotations.txt"
    ann.write_text("1001\tD# minor\t2\n")
    with pytest.raises(ValueError, match="annotations.txt has no 'ID' column"):
        data.manifest("giantsteps_key", root=root)
