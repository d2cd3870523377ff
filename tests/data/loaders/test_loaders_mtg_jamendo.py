"""MTG-Jamendo loader: split-0 TSVs with ragged tag columns, .low.mp3 audio, train-defined classes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from loaderkit import assert_deterministic, manifest_warnings
from workbench import data
from workbench.data.loaders import DataWarning, DatasetLayoutError
from workbench.data.loaders import mtg_jamendo as loader

SR = 16000
HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"
GENRE = {
    "train": [("track_0000001", "00/1.mp3", ["genre---rock", "genre---pop"]),
              ("track_0000002", "00/2.mp3", ["genre---pop"]),         # only the .low.mp3 is on disk
              ("track_0000003", "00/3.mp3", ["genre---electronic"]),
              ("track_0000005", "00/5.mp3", ["genre---rock"])],       # audio missing
    "validation": [("track_0000006", "00/6.mp3", ["genre---rock", "genre---jazz"]),  # under audio/; jazz unseen
                   ("track_0000007", "00/7.mp3", [])],                # no tag at all
    "test": [("track_0000008", "01/8.mp3", ["genre---electronic", "genre---pop"]),
             ("track_0000001", "00/1.mp3", ["genre---rock"])],        # duplicate id: first kept
}


def tone(path: Path, seconds: float = 0.2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 250 * t).astype(np.float32), SR, format="MP3")


def make_tree(root: Path, splits_under: str = "splits", tasks=("genre",)) -> Path:
    folder = root / splits_under / "split-0"
    folder.mkdir(parents=True)
    for task in tasks:
        for split, rows in GENRE.items():
            lines = [HEADER] + ["\t".join([tid, "artist_000001", "album_000001", rel, "212.5", *tags])
                                for tid, rel, tags in rows]
            (folder / f"autotagging_{task}-{split}.tsv").write_text("\n".join(lines) + "\n")
    tone(root / "00" / "1.mp3")
    tone(root / "00" / "2.low.mp3")
    tone(root / "00" / "3.mp3")
    tone(root / "audio" / "00" / "6.mp3")
    tone(root / "00" / "7.mp3")
    tone(root / "01" / "8.mp3")
    (root / "00" / "stray.txt").write_text("stray")
    (folder / "README.md").write_text("stray")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "mtg")


def test_genre_manifest(tree: Path) -> None:
    df, messages = manifest_warnings("mtg_genre", tree)
    assert "1 tag(s) of valid/test never occur in train" in messages and "genre---jazz" in messages
    assert "1 duplicate id" in messages and "1 with missing audio (track_0000005)" in messages
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        t = data.task("mtg_genre", root=tree)
    classes = ["genre---electronic", "genre---pop", "genre---rock"]  # sorted train tags
    assert t.classes == classes and t.kind == "multilabel"
    by_id = df.set_index("id")
    expected = {"track_0000001": ("train", [1, 2]), "track_0000002": ("train", [1]),
                "track_0000003": ("train", [0]), "track_0000006": ("valid", [2]),
                "track_0000007": ("valid", []), "track_0000008": ("test", [0, 1])}
    assert {i: (r.split, r.target) for i, r in by_id.iterrows()} == expected
    root = tree.resolve()
    assert by_id.at["track_0000002", "path"] == str(root / "00" / "2.low.mp3")
    assert by_id.at["track_0000006", "path"] == str(root / "audio" / "00" / "6.mp3")
    assert by_id.at["track_0000001", "duration"] == 212.5 and by_id.at["track_0000001", "artist"] == "artist_000001"


def test_repository_layout_and_other_tasks(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "repo", splits_under="data/splits", tasks=("moodtheme", "top50tags"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        mood = data.manifest("mtg_mood", root=root)
        top = data.manifest("mtg_top50", root=root)
    assert len(mood) == len(top) == 6
    with pytest.raises(DatasetLayoutError, match="autotagging_instrument-train.tsv"):
        data.manifest("mtg_instrument", root=root)


def test_deterministic(tree: Path) -> None:
    assert_deterministic(loader, "mtg_genre", tree)


def test_missing_splits_folder_names_it(tmp_path: Path) -> None:
    root = tmp_path / "nosplits"
    root.mkdir()
    with pytest.raises(DatasetLayoutError) as err:
        data.manifest("mtg_top50", root=root)
    assert str(root.resolve() / "splits" / "split-0") in str(err.value)
    assert "autotagging_<top50tags|genre|moodtheme|instrument>" in str(err.value)


def test_wrong_header_is_a_clear_error(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "badhead")
    f = root / "splits" / "split-0" / "autotagging_genre-train.tsv"
    f.write_text("id,path,tags\n1,00/1.mp3,rock\n")
    with pytest.raises(ValueError, match="autotagging_genre-train.tsv does not start with the header TRACK_ID"):
        data.manifest("mtg_genre", root=root)
