"""NSynth loader on miniature trees in the real layout (examples.json + audio/<note_str>.wav)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from loaderkit import assert_deterministic, manifest_warnings
from workbench import data
from workbench.data.loaders import DataWarning, DatasetLayoutError
from workbench.data.loaders import nsynth as loader

SR = 16000


def tone(path: Path, seconds: float = 0.1, freq: float = 440.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32), SR)


def note(pitch: int, family: int, instrument: str = "keyboard_acoustic_001") -> dict:
    return {"pitch": pitch, "velocity": 100, "instrument_family": family, "instrument_str": instrument,
            "instrument_family_str": ["bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed",
                                      "string", "synth_lead", "vocal"][family], "sample_rate": SR}


# split -> {note_str: (pitch, family)}; awkward rows: pitch 8 and 121 (outside 9-120),
# an annotated note without audio, a note repeated in two splits, stray files.
TREE = {
    "train": {"keyboard_acoustic_001-060-100": (60, 4), "bass_synthetic_002-021-050": (21, 0),
              "organ_electronic_003-008-075": (8, 6), "vocal_synthetic_004-120-127": (120, 10),
              "reed_acoustic_005-070-100": (70, 7)},
    "valid": {"guitar_acoustic_006-009-100": (9, 3), "string_acoustic_007-121-025": (121, 8)},
    "test": {"mallet_acoustic_008-064-100": (64, 5), "keyboard_acoustic_001-060-100": (60, 4),
             "flute_synthetic_009-072-050": (72, 2)},
}
NO_AUDIO = "reed_acoustic_005-070-100"


def make_tree(root: Path) -> Path:
    for split, notes in TREE.items():
        folder = root / f"nsynth-{split}"
        folder.mkdir(parents=True)
        (folder / "examples.json").write_text(json.dumps(
            {k: note(p, f, k.rsplit("-", 2)[0]) for k, (p, f) in notes.items()}))
        for k in notes:
            if k != NO_AUDIO:
                tone(folder / "audio" / f"{k}.wav")
        (folder / "audio" / ".DS_Store").write_bytes(b"\x00junk")
        tone(folder / "audio" / "unlisted_note-050-100.wav")  # audio without annotation: ignored
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "nsynth")


def test_pitch_targets_splits_and_awkward_rows(tree: Path) -> None:
    df, messages = manifest_warnings("nsynth_pitch", tree)
    assert "2 note(s) outside MIDI 9-120" in messages
    assert "1 duplicate id" in messages and "keyboard_acoustic_001-060-100" in messages
    assert "1 with missing audio" in messages and NO_AUDIO in messages
    expected = {  # hand-computed: target = pitch - 9; the duplicate keeps its train copy
        "keyboard_acoustic_001-060-100": ("train", 51), "bass_synthetic_002-021-050": ("train", 12),
        "vocal_synthetic_004-120-127": ("train", 111), "guitar_acoustic_006-009-100": ("valid", 0),
        "mallet_acoustic_008-064-100": ("test", 55), "flute_synthetic_009-072-050": ("test", 63),
    }
    got = {r.id: (r.split, r.target) for r in df.itertuples()}
    assert got == expected
    assert list(df.columns[:4]) == ["id", "path", "split", "target"]
    for r in df.itertuples():
        assert Path(r.path).is_absolute() and Path(r.path).exists()
        assert Path(r.path).parent == tree.resolve() / f"nsynth-{r.split}" / "audio"
    assert df.set_index("id").at["bass_synthetic_002-021-050", "instrument"] == "bass_synthetic_002"


def test_pitch_classes_are_midi_9_to_120(tree: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        t = data.task("nsynth_pitch", root=tree)
    assert t.kind == "multiclass" and len(t.classes) == 112
    assert t.classes[0] == "9" and t.classes[-1] == "120" and t.classes[51] == "60"


def test_instrument_targets_keep_every_pitch(tree: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        df = data.manifest("nsynth_instrument", root=tree)
        t = data.task("nsynth_instrument", root=tree)
    got = dict(zip(df["id"], df["target"]))
    assert got["organ_electronic_003-008-075"] == 6  # pitch 8 is fine for the instrument task
    assert got["string_acoustic_007-121-025"] == 8
    assert got["vocal_synthetic_004-120-127"] == 10
    assert len(df) == 8 and len(t.classes) == 11 and t.classes[10] == "vocal"


def test_deterministic(tree: Path) -> None:
    assert_deterministic(loader, "nsynth_pitch", tree)


def test_duplicate_key_inside_one_examples_json_keeps_first(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "dup")
    meta = root / "nsynth-test" / "examples.json"
    text = meta.read_text()
    # Append a second entry for an existing note with another pitch: JSON's last-wins must not apply.
    extra = '"mallet_acoustic_008-064-100": {"pitch": 30, "instrument_family": 5}'
    meta.write_text(text[:-1] + ", " + extra + "}")
    with pytest.warns(DataWarning, match="repeats 1 note id"):
        df = data.manifest("nsynth_pitch", root=root)
    assert dict(zip(df["id"], df["target"]))["mallet_acoustic_008-064-100"] == 64 - 9


def test_missing_examples_json_names_the_file(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "broken")
    (root / "nsynth-valid" / "examples.json").unlink()
    with pytest.raises(FileNotFoundError) as err:
        data.manifest("nsynth_pitch", root=root)
    msg = str(err.value)
    assert isinstance(err.value, DatasetLayoutError)
    assert str(root.resolve() / "nsynth-valid" / "examples.json") in msg
    assert "nsynth-train/audio/<note_str>.wav" in msg  # the expected layout is shown


def test_bad_field_is_a_clear_error(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "badfield")
    meta = root / "nsynth-train" / "examples.json"
    d = json.loads(meta.read_text())
    d["bass_synthetic_002-021-050"].pop("pitch")
    meta.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="bass_synthetic_002-021-050.*'pitch'"):
        data.manifest("nsynth_pitch", root=root)


def test_root_without_audio_is_a_layout_error(tmp_path: Path) -> None:
    root = tmp_path / "noaudio"
    for split in ("train", "valid", "test"):
        (root / f"nsynth-{split}").mkdir(parents=True)
        (root / f"nsynth-{split}" / "examples.json").write_text(json.dumps({"x-060-100": note(60, 4)}))
    with pytest.warns(DataWarning), pytest.raises(DatasetLayoutError, match="no usable audio clips"):
        data.manifest("nsynth_instrument", root=root)
