"""VocalSet loader: FULL/<singer>/<context>/<technique>/<file>.wav, singer and technique splits."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from workbench import data
from workbench.data.loaders import DataWarning, DatasetLayoutError
from workbench.data.loaders import vocalset as loader
from workbench.data.tasks import get_spec

SR = 16000
SINGERS = ["female1", "female2", "female3", "male1", "male2", "male3", "male10"]
TECHNIQUES = [("arpeggios", "belt"), ("arpeggios", "breathy"), ("scales", "vibrato"), ("excerpts", "spoken"),
              ("long_tones", "vocal_fry")]
FILES_PER_TECHNIQUE = 2  # 10 files per singer


def tone(path: Path, seconds: float = 0.05) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32), SR)


def make_tree(root: Path, test_file: str | None = "F2\nmale3\n") -> Path:
    full = root / "FULL"
    for s in SINGERS:
        short = s[0] + s.lstrip("femal")
        for context, tech in TECHNIQUES:
            for k in range(FILES_PER_TECHNIQUE):
                tone(full / s / context / tech / f"{short}_{context}_{tech}_{'abc'[k]}.wav")
    tone(full / "female1" / "stray_shallow.wav")                     # not <singer>/<context>/<technique>/
    (full / "female1" / "arpeggios" / "belt" / "._f1_arpeggios_belt_a.wav").write_bytes(b"\x00\x05")
    (full / "female1" / ".DS_Store").write_bytes(b"junk")
    (full / "male1" / "scales" / "notes.txt").write_text("stray")
    tone(root / "__MACOSX" / "FULL" / "female1" / "arpeggios" / "belt" / "x.wav")  # outside FULL: ignored
    if test_file is not None:
        (root / "test_singers_technique.txt").write_text(test_file)
    return root


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kwargs)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "vocalset")


def test_singer_task(tree: Path) -> None:
    with pytest.warns(DataWarning, match="2 wav file\\(s\\) not under FULL"):
        df = data.manifest("vocalset_singer", root=tree)
    t = quiet(data.task, "vocalset_singer", root=tree)
    assert t.classes == SINGERS  # natural order: male10 after male3
    assert len(df) == len(SINGERS) * len(TECHNIQUES) * FILES_PER_TECHNIQUE
    for singer, group in df.groupby("singer"):
        assert group["split"].value_counts().to_dict() == {"train": 8, "valid": 1, "test": 1}  # 80/10/10 of 10
        assert set(group["target"]) == {SINGERS.index(singer)}
    row = df.set_index("id").loc["female1/arpeggios/belt/f1_arpeggios_belt_a"]
    assert (row["singer"], row["context"], row["technique"]) == ("female1", "arpeggios", "belt")


def test_technique_task_is_singer_disjoint(tree: Path) -> None:
    df = quiet(data.manifest, "vocalset_technique", root=tree)
    t = quiet(data.task, "vocalset_technique", root=tree)
    assert t.classes == sorted(tech for _, tech in TECHNIQUES)
    per_singer = df.groupby("singer")["split"].agg(set).to_dict()
    assert all(len(v) == 1 for v in per_singer.values())  # no singer in two splits
    split = {s: next(iter(v)) for s, v in per_singer.items()}
    # test singers from the file ("F2" spelled like VocalSet's own list); highest remaining per gender -> valid
    assert split == {"female1": "train", "female2": "test", "female3": "valid", "male1": "train",
                     "male2": "train", "male3": "test", "male10": "valid"}
    for r in df.itertuples():
        assert t.classes[r.target] == r.technique


def test_builtin_test_singers_without_the_file(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "nofile", test_file=None)
    with pytest.warns(DataWarning, match="female8.*have no audio"):
        df = data.manifest("vocalset_technique", root=root)
    test_singers = set(df.loc[df["split"] == "test", "singer"])
    assert test_singers == set(loader.TECHNIQUE_TEST_SINGERS) & set(SINGERS) == {"female2", "male3", "male10"}


def test_root_may_be_full_itself_and_is_deterministic(tree: Path) -> None:
    a = quiet(loader.build, get_spec("vocalset_singer"), tree)[0]
    b = quiet(loader.build, get_spec("vocalset_singer"), tree / "FULL")[0]
    assert a.equals(b)


def test_missing_full_folder_names_it(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DatasetLayoutError) as err:
        data.manifest("vocalset_singer", root=root)
    assert str(root.resolve() / "FULL") in str(err.value) and "<singer>/<context>/<technique>" in str(err.value)


@pytest.mark.parametrize("name,expected", [("F2", "female2"), ("female2", "female2"), ("M10", "male10"),
                                           ("male03", "male3"), ("Tenor", "tenor")])
def test_canonical_singer(name: str, expected: str) -> None:
    assert loader.canonical_singer(name) == expected
