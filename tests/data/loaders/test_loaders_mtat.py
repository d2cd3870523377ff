"""MagnaTagATune loader: quoted tab-separated CSV, top-50 by frequency, folder splits, bad audio."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from loaderkit import assert_deterministic, manifest_warnings
from workbench import data
from workbench.data.loaders import DataWarning, DatasetLayoutError
from workbench.data.loaders import mtat as loader

SR = 16000
N_TAGS = 55
TAGS = ["no voice"] + [f"tag{j}" for j in range(1, N_TAGS)]
COUNT = [(j % 5) + 1 for j in range(N_TAGS)]  # tag j is set on rows 0 .. COUNT[j]-1
# Five tags are left out of the top 50: count 1 (j % 5 == 0), latest in column order.
EXCLUDED = {30, 35, 40, 45, 50}
# Hand-derived top-50 order: count 5 first (j = 4, 9, ...), then 4 (j = 3, 8, ...), ...; ties by column.
TOP50 = [j for c in (5, 4, 3, 2, 1) for j in range(N_TAGS) if COUNT[j] == c and j not in EXCLUDED]

# (clip_id, mp3_path, audio): "ok", "empty" (0 bytes) or "missing"
ROWS = [
    ("2", "0/artist_a-album_x-01-song_one-0-29.mp3", "ok"),
    ("6", "b/artist_a-album_x-01-song_one-30-59.mp3", "ok"),
    ("10", "c/artist_b-album_y-02-song_two-0-29.mp3", "ok"),
    ("14", "d/artist_c-album_z-03-song_three-0-29.mp3", "ok"),
    ("18", "f/artist_c-album_z-04-song_four-0-29.mp3", "ok"),
    ("22", "3/artist_d-album_w-05-empty-0-29.mp3", "empty"),
    ("26", "e/artist_e-album_v-06-gone-0-29.mp3", "missing"),
    ("14", "e/artist_f-album_u-07-dup-0-29.mp3", "ok"),  # duplicate clip_id: first kept
]


def tone(path: Path, seconds: float = 0.2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 220 * t).astype(np.float32), SR, format="MP3")


def quoted(fields) -> str:
    return "\t".join(f'"{f}"' for f in fields)


def make_tree(root: Path, audio_sub: str = "") -> Path:
    root.mkdir(parents=True)
    lines = [quoted(["clip_id", *TAGS, "mp3_path"])]
    for r, (clip, mp3, _) in enumerate(ROWS):
        lines.append(quoted([clip, *("1" if r < COUNT[j] else "0" for j in range(N_TAGS)), mp3]))
    (root / "annotations_final.csv").write_text("\n".join(lines) + "\n")
    base = root / audio_sub if audio_sub else root
    for _, mp3, audio in ROWS:
        if audio == "ok":
            tone(base / mp3)
        elif audio == "empty":
            (base / mp3).parent.mkdir(parents=True, exist_ok=True)
            (base / mp3).write_bytes(b"")
    (base / "0" / "stray.txt").write_text("not audio")
    tone(base / "a" / "unannotated-clip-0-29.mp3")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "mtat")


def expected_target(row: int, classes: list[int]) -> list[int]:
    return [i for i, j in enumerate(classes) if row < COUNT[j]]


def test_top50_classes_targets_and_splits(tree: Path) -> None:
    df, messages = manifest_warnings("mtat_top50", tree)
    assert "1 with missing audio (26)" in messages and "1 with zero-byte audio (22)" in messages
    assert "1 duplicate id" in messages
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        t = data.task("mtat_top50", root=tree)
    assert t.classes == [TAGS[j] for j in TOP50] and len(t.classes) == 50
    assert t.classes[0] == "tag4" and "no voice" in t.classes
    by_id = df.set_index("id")
    assert list(by_id.index.sort_values()) == sorted(["2", "6", "10", "14", "18"])
    for r, (clip, mp3, _) in enumerate(ROWS[:5]):
        assert by_id.at[clip, "target"] == expected_target(r, TOP50)
        assert by_id.at[clip, "path"] == str(tree.resolve() / mp3)
    assert dict(zip(df["id"], df["split"])) == {"2": "train", "6": "train", "10": "valid", "14": "test", "18": "test"}
    assert by_id.at["2", "track"] == by_id.at["6", "track"] == "artist_a-album_x-01-song_one"
    assert by_id.at["14", "artist"] == "artist_c"


def test_zero_byte_never_reaches_the_manifest(tree: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        df = data.manifest("mtat_all", root=tree)
    assert all(Path(p).stat().st_size > 0 for p in df["path"])


def test_all_tags_in_column_order_and_empty_lists(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "all")
    # a clip with no tag at all keeps an empty target list
    lines = (root / "annotations_final.csv").read_text().splitlines()
    lines.append(quoted(["30", *["0"] * N_TAGS, "c/artist_g-album_t-08-untagged-0-29.mp3"]))
    (root / "annotations_final.csv").write_text("\n".join(lines) + "\n")
    tone(root / "c" / "artist_g-album_t-08-untagged-0-29.mp3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        df = data.manifest("mtat_all", root=root).set_index("id")
        t = data.task("mtat_all", root=root)
    assert t.classes == TAGS
    assert df.at["2", "target"] == list(range(N_TAGS))  # row 0 has every tag
    assert df.at["6", "target"] == [j for j in range(N_TAGS) if j % 5 >= 1]
    assert df.at["30", "target"] == [] and df.at["30", "split"] == "valid"


def test_audio_under_mp3_folder(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "nested", audio_sub="mp3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        df = data.manifest("mtat_top50", root=root)
    assert len(df) == 5 and all(Path(p).parent.parent == root.resolve() / "mp3" for p in df["path"])


def test_deterministic(tree: Path) -> None:
    assert_deterministic(loader, "mtat_top50", tree)


def test_missing_csv_names_the_file(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "nocsv")
    (root / "annotations_final.csv").unlink()
    with pytest.raises(DatasetLayoutError) as err:
        data.manifest("mtat_top50", root=root)
    assert str(root.resolve() / "annotations_final.csv") in str(err.value)
    assert "0-b train, c valid, d-f test" in str(err.value)


def test_comma_separated_csv_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "comma"
    root.mkdir()
    (root / "annotations_final.csv").write_text("clip_id,guitar,mp3_path\n2,1,0/a.mp3\n")
    with pytest.raises(ValueError, match="tab-separated"):
        data.manifest("mtat_top50", root=root)


def test_bad_tag_cell_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "badcell"
    root.mkdir()
    (root / "annotations_final.csv").write_text(quoted(["clip_id", "guitar", "mp3_path"]) + "\n"
                                                + quoted(["2", "yes", "0/a.mp3"]) + "\n")
    with pytest.raises(ValueError, match="'yes' in tag column 'guitar'"):
        data.manifest("mtat_all", root=root)
