"""FMA loader: sharded mp3 folders, optional stems, tracks.csv with multi-row headers, fma_genre."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from workbench import data
from workbench.data.loaders import DataWarning, DatasetLayoutError
from workbench.data.loaders import fma_medium as loader
from workbench.data.tasks import get_spec

SR = 16000
STEMS = ("bass", "drums", "melody", "accompaniment")
TRACKS_CSV = (
    ",album,set,set,track,track\n"
    ",title,split,subset,genre_top,title\n"
    "track_id,,,,,\n"
    '2,AWOL,training,small,Hip-Hop,Food\n'
    '5,"Multi\nline, album",validation,medium,Pop,"This World"\n'
    '10,X,test,medium,Hip-Hop,Freeway\n'
    '1039,Y,training,medium,,"no top genre"\n'
    '1040,Z,training,medium,Rock,empty file\n'
    '99999,W,training,large,Jazz,not downloaded\n'
)


def tone(path: Path, seconds: float = 0.2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 200 * t).astype(np.float32), SR, format="MP3")


def make_tree(root: Path, metadata: bool = True) -> Path:
    audio = root / "fma_medium"
    for tid in ("000002", "000005", "000010", "001039", "001041"):
        tone(audio / tid[:3] / f"{tid}.mp3")
    (audio / "001" / "001040.mp3").write_bytes(b"")  # zero bytes: dropped
    for stem in STEMS:
        tone(audio / "000" / "000002.stems" / f"{stem}.mp3")
    (audio / "000" / "README.txt").write_text("stray")
    tone(audio / "000" / "cover.mp3")            # not a track id: ignored
    tone(audio / "extra" / "000123.mp3")         # not a 3-digit folder: ignored
    (audio / "checksums").write_text("stray")
    if metadata:
        (root / "fma_metadata").mkdir()
        (root / "fma_metadata" / "tracks.csv").write_text(TRACKS_CSV)
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "fma")


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kwargs)


def test_unlabeled_pool_with_official_splits_and_stems(tree: Path) -> None:
    with pytest.warns(DataWarning, match="1 with zero-byte audio \\(001040\\)"):
        df = data.manifest("fma_medium", root=tree)
    assert sorted(df["id"]) == ["000002", "000005", "000010", "001039", "001041"]
    assert df["target"].isna().all()
    split = dict(zip(df["id"], df["split"]))
    assert split["000002"] == "train" and split["000005"] == "valid" and split["000010"] == "test"
    assert split["001039"] == "train"
    assert split["001041"] in {"train", "valid", "test"}  # not in tracks.csv: seeded split
    stems = dict(zip(df["id"], df["stems"]))
    audio = tree.resolve() / "fma_medium"
    assert stems["000002"] == {s: str(audio / "000" / "000002.stems" / f"{s}.mp3") for s in STEMS}
    assert stems["000005"] is None
    assert all(Path(p).is_absolute() for p in df["path"])
    assert quiet(data.task, "fma_medium", root=tree).kind == "unlabeled"


def test_root_may_be_the_audio_folder(tree: Path) -> None:
    a = quiet(data.manifest, "fma_medium", root=tree)
    b = quiet(data.manifest, "fma_medium", root=tree / "fma_medium")  # metadata found one level up
    assert a.equals(b)


def test_genre_task(tree: Path) -> None:
    with pytest.warns(DataWarning, match="2 of 5 tracks have no top genre"):
        df = data.manifest("fma_genre", root=tree)
    t = quiet(data.task, "fma_genre", root=tree)
    assert t.kind == "multiclass" and t.classes == ["Hip-Hop", "Pop"]
    assert dict(zip(df["id"], df["target"])) == {"000002": 0, "000005": 1, "000010": 0}
    assert dict(zip(df["id"], df["split"])) == {"000002": "train", "000005": "valid", "000010": "test"}


def test_without_metadata_seeded_split_and_no_stems_column(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "bare", metadata=False)
    shutil.rmtree(root / "fma_medium" / "000" / "000002.stems")
    df = quiet(data.manifest, "fma_medium", root=root)
    assert "stems" not in df.columns
    assert set(df["split"]) <= {"train", "valid", "test"} and len(df) == 5
    again = quiet(loader.build, get_spec("fma_medium"), root)[0]
    assert sorted(again["id"]) == sorted(df["id"])
    assert dict(zip(again["id"], again["split"])) == dict(zip(df["id"], df["split"]))
    with pytest.raises(DatasetLayoutError, match="fma_metadata/tracks.csv"):
        quiet(data.manifest, "fma_genre", root=root)


def test_seeded_split_proportions(tmp_path: Path) -> None:
    root = tmp_path / "many" / "fma_medium"
    for i in range(40):
        p = root / f"{i // 10:03d}" / f"{i:06d}.mp3"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"ID3 fake mp3 bytes: the loader does not decode")
    df = quiet(data.manifest, "fma_medium", root=root)
    counts = df["split"].value_counts().to_dict()
    assert counts == {"train": 32, "valid": 4, "test": 4}  # 80/10/10 of 40, exactly


def test_no_shards_is_a_layout_error(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    (root / "fma_medium").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError) as err:
        data.manifest("fma_medium", root=root)
    assert "000/000002.mp3" in str(err.value)
