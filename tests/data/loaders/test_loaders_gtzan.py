"""GTZAN loader: the fault-filtered split (443/197/290) from torchaudio's lists, wav/au, bad files."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from loaderkit import manifest_warnings
from workbench import data
from workbench.data.loaders import DataWarning, DatasetLayoutError
from workbench.data.loaders import gtzan as loader

SR = 22050


def tone(path: Path, fmt: str = "WAV", seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 300 * t).astype(np.float32), SR, format=fmt,
             subtype="PCM_16")


def test_split_file_sizes_and_disjointness() -> None:
    s = loader.load_splits()
    assert {k: len(v) for k, v in s.items()} == {"train": 443, "valid": 197, "test": 290}
    all_ids = s["train"] + s["valid"] + s["test"]
    assert len(set(all_ids)) == 930
    assert {i.split(".")[0] for i in all_ids} == set(loader.GENRES)
    assert "jazz.00054" in s["train"]


def test_split_file_matches_torchaudio_source() -> None:
    spec = importlib.util.find_spec("torchaudio")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torchaudio is not installed")
    source = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "gtzan.py"
    if not source.exists():
        pytest.skip("torchaudio has no datasets/gtzan.py")
    assert loader.extract_splits(source) == loader.load_splits()


def pick(split: str, genre: str, k: int) -> list[str]:
    return [i for i in loader.load_splits()[split] if i.startswith(genre + ".")][:k]


def make_tree(genres: Path) -> dict[str, str]:
    """A few listed clips in every split, one clip outside the lists, a broken jazz.00054."""
    listed = loader.load_splits()
    chosen = {i: "train" for i in pick("train", "blues", 2) + pick("train", "rock", 1)}
    chosen.update({i: "valid" for i in pick("valid", "classical", 2)})
    chosen.update({i: "test" for i in pick("test", "metal", 1) + pick("test", "hiphop", 1)})
    for i in chosen:
        tone(genres / i.split(".")[0] / f"{i}.wav")
    au = pick("test", "reggae", 1)[0]
    tone(genres / "reggae" / f"{au}.au", fmt="AU")  # the original distribution's format
    chosen[au] = "test"
    every = set(listed["train"]) | set(listed["valid"]) | set(listed["test"])
    outside = next(f"pop.{n:05d}" for n in range(100) if f"pop.{n:05d}" not in every)
    tone(genres / "pop" / f"{outside}.wav")
    (genres / "jazz").mkdir(parents=True, exist_ok=True)
    (genres / "jazz" / "jazz.00054.wav").write_bytes(b"RIFF\x00\x00not really a wav file at all")
    (genres / "jazz" / ".DS_Store").write_bytes(b"junk")
    (genres / "bextract_single.mf").write_text("stray")
    return chosen


def test_manifest_filtered_split(tmp_path: Path) -> None:
    root = tmp_path / "gtzan"
    chosen = make_tree(root / "genres")
    df, messages = manifest_warnings("gtzan_genre", root)
    assert "jazz.00054" in messages and "known unreadable" in messages
    assert f"dropped {930 - 1 - len(chosen)} of {930 - 1} annotated clips" in messages  # the rest are not on disk
    assert dict(zip(df["id"], df["split"])) == chosen  # the clip outside the lists is excluded
    for r in df.itertuples():
        assert r.target == loader.GENRES.index(r.id.split(".")[0])
    au = [p for p in df["path"] if p.endswith(".au")]
    assert len(au) == 1 and Path(au[0]).exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        t = data.task("gtzan_genre", root=root)
    assert t.classes == loader.GENRES and len(t.classes) == 10


def test_root_may_be_the_genres_folder(tmp_path: Path) -> None:
    root = tmp_path / "g2"
    chosen = make_tree(root / "genres")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        df = data.manifest("gtzan_genre", root=root / "genres")
    assert set(df["id"]) == set(chosen)


def test_missing_genres_folder_names_it(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DatasetLayoutError) as err:
        data.manifest("gtzan_genre", root=root)
    assert str(root.resolve() / "genres") in str(err.value) and "<genre>.000NN.wav" in str(err.value)
