"""EmoMusic loader: Mediaeval 2013 sets, artist-disjoint dev split, targets z-scored on train."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from loaderkit import manifest_warnings
from workbench import data
from workbench.data.loaders import DataWarning, DatasetLayoutError
from workbench.data.loaders import emomusic as loader
from workbench.data.tasks import get_spec

SR = 16000
# song_id -> (artist as written, set, arousal, valence); awkward rows: tab-padded fields,
# artist spelled two ways, a song outside both sets, a song without annotations, one without audio.
SONGS = {
    2: ("Blind Pilot\t", "development", 3.1, 3.0), 3: ("blind  pilot", "development", 4.2, 5.5),
    4: ("Ada", "development", 6.0, 2.2), 5: ("Ada", "development", 5.1, 4.4),
    6: ("Bo", "development", 2.0, 6.1), 7: ("Bo", "development", 7.3, 5.0),
    8: ("Cy", "development", 4.4, 4.4), 9: ("Dee", "development", 3.3, 7.7),
    10: ("Eve", "development", 5.5, 3.3), 11: ("Fay", "development", 6.6, 6.6),
    12: ("Gil", "development", 2.5, 3.5), 13: ("Hal", "development", 4.5, 5.5),
    20: ("Ida", "evaluation", 5.0, 5.0), 21: ("Jo", "evaluation", 1.0, 8.0),
    30: ("Kai", "", 5.0, 5.0),                        # in no Mediaeval 2013 set
    31: ("Lu", "development", None, None),            # no static annotation
    32: ("Mo", "development", 5.0, 5.0),              # audio missing
}


def tone(path: Path, seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 200 * t).astype(np.float32), SR, format="MP3")


def make_tree(root: Path, info_in_annotations: bool = False) -> Path:
    (root / "annotations").mkdir(parents=True)
    info = ["song_id,file_name,Artist,Song title,start of the segment (min.sec),end of the segment (min.sec),"
            "Genre,Mediaeval 2013 set"]
    ann = ["song_id, mean_arousal, std_arousal, mean_valence, std_valence"]
    for sid, (artist, s, a, v) in SONGS.items():
        info.append(f'{sid},{sid}.mp3,"{artist}","Title {sid}\t",0,45,Rock,{s}')
        if a is not None:
            ann.append(f"{sid}, {a}, 0.5, {v}, 0.5")
        if sid != 32:
            tone(root / "clips_45seconds" / f"{sid}.mp3")
    target = root / "annotations" if info_in_annotations else root
    (target / "songs_info.csv").write_text("\n".join(info) + "\n")
    (root / "annotations" / "static_annotations.csv").write_text("\n".join(ann) + "\n")
    (root / "clips_45seconds" / "Thumbs.db").write_bytes(b"junk")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "emomusic")


def test_sets_and_artist_disjoint_split(tree: Path) -> None:
    df, messages = manifest_warnings("emomusic", tree)
    assert "left out 1 song(s) outside the Mediaeval 2013 sets and 1 without static annotations" in messages
    assert "1 with missing audio (32)" in messages
    split = dict(zip(df["id"], df["split"]))
    assert set(split) == {str(s) for s in SONGS} - {"30", "31", "32"}
    assert split["20"] == split["21"] == "test"
    dev = {s for s, (_, st, _, _) in SONGS.items() if st == "development"} - {31, 32}
    assert {split[str(s)] for s in dev} <= {"train", "valid"}
    assert split["2"] == split["3"]  # "Blind Pilot\t" and "blind  pilot" are one artist
    artist_key = df["artist"].map(lambda a: re.sub(r"\s+", " ", a).strip().lower())
    assert (df.assign(a=artist_key).groupby("a")["split"].nunique() == 1).all()
    assert "valid" in set(df["split"]) and "train" in set(df["split"])


def test_targets_are_z_scored_on_train(tree: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        df = data.manifest("emomusic", root=tree)
        t = data.task("emomusic", root=tree)
    assert t.kind == "regression"
    train_ids = [int(i) for i in df.loc[df["split"] == "train", "id"]]
    raw = np.array([[SONGS[i][2], SONGS[i][3]] for i in train_ids])  # the values written to the CSV
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    for r in df.itertuples():
        a, v = SONGS[int(r.id)][2:]
        assert r.target == pytest.approx([(a - mean[0]) / std[0], (v - mean[1]) / std[1]])
        assert (r.arousal, r.valence) == (a, v)
    z = np.array(df.loc[df["split"] == "train", "target"].tolist())
    assert np.allclose(z.mean(axis=0), 0) and np.allclose(z.std(axis=0), 1)


def test_songs_info_in_annotations_and_determinism(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "alt", info_in_annotations=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        a = loader.build(get_spec("emomusic"), root)[0]
        b = loader.build(get_spec("emomusic"), root)[0]
    assert len(a) == 14 and a.equals(b)


def test_missing_annotations_names_the_file(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "noann")
    (root / "annotations" / "static_annotations.csv").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        data.manifest("emomusic", root=root)
    assert str(root.resolve() / "annotations" / "static_annotations.csv") in str(err.value)
    assert "clips_45seconds/<song_id>.mp3" in str(err.value)


def test_missing_set_column_is_a_clear_error(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "nocol")
    (root / "songs_info.csv").write_text("song_id,Artist\n2,X\n")
    with pytest.raises(ValueError, match="songs_info.csv has no column.*mediaeval 2013 set"):
        data.manifest("emomusic", root=root)
