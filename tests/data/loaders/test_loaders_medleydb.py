"""MedleyDB loader: per-track METADATA.yaml, stem instruments, top 20, track-disjoint split."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from loaderkit import assert_deterministic, manifest_warnings
from workbench import data
from workbench.data.loaders import DataWarning, DatasetLayoutError
from workbench.data.loaders import medleydb as loader

SR = 16000
# 3 frequent instruments and 19 singletons: 22 in all, so the top-20 cut removes two singletons.
INSTRUMENTS = ["drum set"] * 6 + ["electric bass"] * 5 + ["male singer"] * 4 + [f"inst{k:02d}" for k in range(1, 20)]
TOP20 = ["drum set", "electric bass", "male singer"] + [f"inst{k:02d}" for k in range(1, 18)]
N_TRACKS = 8


def tone(path: Path, seconds: float = 0.05) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 200 * t).astype(np.float32), SR)


def make_tree(root: Path) -> dict[str, str]:
    """Tracks Artist<k>_Song<k>; returns stem id -> instrument of every stem that should be kept."""
    kept: dict[str, str] = {}
    stems_of: dict[int, list[str]] = {k: [] for k in range(N_TRACKS)}
    for i, inst in enumerate(INSTRUMENTS):
        stems_of[i % N_TRACKS].append(inst)
    for k, insts in stems_of.items():
        track = f"Artist{k}_Song{k}"
        folder = root / track
        stems = {}
        for j, inst in enumerate(insts, start=1):
            name = f"{track}_STEM_{j:02d}.wav"
            stems[f"S{j:02d}"] = {"component": "bass" if inst == "electric bass" else "", "filename": name,
                                  "instrument": inst}
            tone(folder / f"{track}_STEMS" / name)
            kept[Path(name).stem] = inst
        multi = f"{track}_STEM_{len(insts) + 1:02d}.wav"
        stems[f"S{len(insts) + 1:02d}"] = {"filename": multi, "instrument": ["violin", "viola"]}  # ambiguous
        tone(folder / f"{track}_STEMS" / multi)
        meta = {"artist": f"Artist{k}", "title": f"Song{k}", "stem_dir": f"{track}_STEMS", "stems": stems}
        (folder / f"{track}_METADATA.yaml").write_text(yaml.safe_dump(meta))
        tone(folder / f"{track}_MIX.wav")  # the mix is not a stem
    # an annotated stem whose audio is missing
    gone = root / "Artist0_Song0" / "Artist0_Song0_STEMS" / "Artist0_Song0_STEM_01.wav"
    gone.unlink()
    kept.pop("Artist0_Song0_STEM_01")
    (root / "README.txt").write_text("stray")
    return kept


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "medleydb"
    return root, make_tree(root)


def test_manifest_top20_and_track_disjoint_split(tree) -> None:
    root, kept = tree
    df, messages = manifest_warnings("medleydb_instrument", root)
    assert f"{N_TRACKS} stem(s) list several instruments" in messages
    assert "1 with missing audio (Artist0_Song0_STEM_01)" in messages
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        t = data.task("medleydb_instrument", root=root)
    # Artist0_Song0_STEM_01 was a "drum set" stem (i = 0): 5 drum sets are left, still the most frequent.
    assert kept and Counter(kept.values())["drum set"] == 5
    assert t.classes == TOP20 and len(t.classes) == 20
    expected = {i: inst for i, inst in kept.items() if inst in TOP20}
    assert dict(zip(df["id"], df["instrument"])) == expected
    for r in df.itertuples():
        assert t.classes[r.target] == r.instrument
    per_track = df.groupby("track")["split"].nunique()
    assert (per_track == 1).all()  # no track in two splits
    assert set(df["split"]) <= {"train", "valid", "test"} and "train" in set(df["split"])


def test_deterministic(tree) -> None:
    root, _ = tree
    assert_deterministic(loader, "medleydb_instrument", root)


def test_audio_and_metadata_folders_layout(tmp_path: Path) -> None:
    root = tmp_path / "MedleyDB"
    track = "Band_Tune"
    (root / "Metadata").mkdir(parents=True)
    (root / "Metadata" / f"{track}_METADATA.yaml").write_text(yaml.safe_dump(
        {"artist": "Band", "stem_dir": f"{track}_STEMS",
         "stems": {"S01": {"filename": f"{track}_STEM_01.wav", "instrument": "piano"},
                   "S02": {"filename": f"{track}_STEM_02.wav", "instrument": ["flute"]}}}))
    tone(root / "Audio" / track / f"{track}_STEMS" / f"{track}_STEM_01.wav")
    tone(root / "Audio" / track / f"{track}_STEMS" / f"{track}_STEM_02.wav")
    df = data.manifest("medleydb_instrument", root=root)
    assert sorted(df["instrument"]) == ["flute", "piano"]
    assert all(Path(p).exists() for p in df["path"])


def test_no_metadata_names_the_layout(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DatasetLayoutError, match="<Track>/<Track>_METADATA.yaml"):
        data.manifest("medleydb_instrument", root=root)


def test_stem_without_instrument_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    (root / "T").mkdir(parents=True)
    (root / "T" / "T_METADATA.yaml").write_text(yaml.safe_dump({"stems": {"S01": {"filename": "T_STEM_01.wav"}}}))
    with pytest.raises(ValueError, match="stem S01 in .*T_METADATA.yaml needs 'filename' and 'instrument'"):
        data.manifest("medleydb_instrument", root=root)
