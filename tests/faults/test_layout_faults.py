"""Bad data set layouts and annotations: each is refused naming the file (and line) or handled with a
counted warning; never a silently wrong manifest."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from faultkit import noise, write

from workbench import audio, data
from workbench.data.loaders import DataWarning
from workbench.data.loaders._common import DatasetLayoutError


@pytest.fixture(autouse=True)
def _fresh_manifests():
    data._build.cache_clear()
    yield
    data._build.cache_clear()


# ---------------------------------------------------------------- NSynth

def nsynth_root(tmp_path, notes=None):
    """A minimal NSynth layout: one note per split (or ``notes[split]`` as examples.json content)."""
    root = tmp_path / "nsynth"
    for k, split in enumerate(("train", "valid", "test")):
        folder = root / f"nsynth-{split}"
        note = f"guitar_acoustic_00{k}-060-100"
        content = {note: {"pitch": 60, "instrument_family": 3, "velocity": 100}}
        if notes is not None and split in notes:
            content = notes[split]
        folder.mkdir(parents=True)
        (folder / "examples.json").write_text(content if isinstance(content, str) else json.dumps(content))
        write(folder / "audio" / f"{note}.wav", noise(1600, seed=k))
    return root


def test_empty_examples_json_is_refused_naming_the_file(tmp_path):
    root = nsynth_root(tmp_path, {"train": {}})
    with pytest.raises(ValueError, match="nsynth-train/examples.json holds no notes"):
        data.manifest("nsynth_pitch", root)


def test_malformed_examples_json_is_refused_naming_the_file(tmp_path):
    root = nsynth_root(tmp_path, {"valid": '{"a": {"pitch": 60,'})
    with pytest.raises(ValueError, match="nsynth-valid/examples.json is not valid JSON"):
        data.manifest("nsynth_pitch", root)


def test_missing_annotation_file_shows_the_expected_layout(tmp_path):
    root = nsynth_root(tmp_path)
    (root / "nsynth-test" / "examples.json").unlink()
    with pytest.raises(DatasetLayoutError, match="nsynth-test/examples.json not found. Expected layout"):
        data.manifest("nsynth_pitch", root)


def test_note_without_a_pitch_is_refused_naming_the_note(tmp_path):
    root = nsynth_root(tmp_path, {"test": {"bass_x_001-060-100": {"instrument_family": 0}}})
    with pytest.raises(ValueError, match="note 'bass_x_001-060-100' .* has no integer 'pitch'"):
        data.manifest("nsynth_pitch", root)


# ---------------------------------------------------------------- folder + labels.csv

def folder_root(tmp_path, names=("a.wav", "b.wav", "c.wav", "d.wav")):
    root = tmp_path / "folder"
    for i, n in enumerate(names):
        write(root / n, noise(1600, seed=i))
    return root


@pytest.mark.parametrize("outside", ["/etc/passwd", "../outside.wav", "sub/../../outside.wav"])
def test_labels_csv_naming_a_path_outside_the_root_is_refused_naming_the_line(tmp_path, outside):
    root = folder_root(tmp_path)
    write(tmp_path / "outside.wav", noise(1600))
    (root / "labels.csv").write_text(f"path,label\na.wav,x\nb.wav,y\n{outside},x\n")
    with pytest.raises(ValueError, match=f"outside its folder .*line 4: '{outside}'"):
        data.manifest("folder", root)


def test_absolute_paths_inside_the_root_are_kept(tmp_path):
    root = folder_root(tmp_path)
    (root / "labels.csv").write_text(f"path,label\n{root / 'a.wav'},x\nb.wav,y\n")
    assert sorted(data.manifest("folder", root)["id"]) == ["a.wav", "b.wav"]


def test_labels_csv_without_a_label_column_is_refused(tmp_path):
    root = folder_root(tmp_path)
    (root / "labels.csv").write_text("file,tag\na.wav,x\n")
    with pytest.raises(ValueError, match="labels.csv has no column\\(s\\) \\['path', 'label'\\]"):
        data.manifest("folder", root)


def test_unknown_split_value_is_refused_naming_the_line(tmp_path):
    root = folder_root(tmp_path)
    (root / "labels.csv").write_text("path,label,split\na.wav,x,train\nb.wav,y,trian\n")
    with pytest.raises(ValueError, match="line 3: 'trian'"):
        data.manifest("folder", root)


def test_duplicate_ids_keep_the_first_with_a_warning(tmp_path):
    root = folder_root(tmp_path)
    (root / "labels.csv").write_text("path,label\na.wav,x\nb.wav,y\na.wav,y\nc.wav,x\n")
    with pytest.warns(DataWarning, match="1 duplicate id\\(s\\) ignored, first occurrence kept \\(a.wav\\)"):
        df = data.manifest("folder", root)
    assert df.set_index("id").loc["a.wav", "labels"] == "x"


def test_empty_and_missing_audio_rows_are_dropped_and_counted(tmp_path):
    root = folder_root(tmp_path)
    (root / "z.wav").write_bytes(b"")
    (root / "labels.csv").write_text("path,label\na.wav,x\nb.wav,y\nz.wav,x\ngone.wav,y\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = data.manifest("folder", root)
    msgs = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert any("dropped 2 of 4" in m and "zero-byte audio (z.wav)" in m and "missing audio (gone.wav)" in m
               for m in msgs), msgs
    assert sorted(df["id"]) == ["a.wav", "b.wav"]


def test_empty_folder_is_a_layout_error(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DatasetLayoutError, match="no .wav/.flac/.mp3/.ogg file under"):
        data.manifest("folder", tmp_path / "nothing")


def test_unicode_newline_fifo_and_symlink_loops_in_a_scanned_folder(tmp_path):
    names = ["ünïcødé 音楽.wav", "new\nline.wav", "sub/plain.wav"]
    root = folder_root(tmp_path, names)
    os.mkfifo(root / "fifo.wav")  # a reader of a FIFO would block forever: it is not an audio file
    os.symlink(root, root / "sub" / "loop")  # a folder symlink back up: the scan must not recurse forever
    os.symlink(root / "dangling-target.wav", root / "dangling.wav")
    df = data.manifest("folder", root)
    assert sorted(df["id"]) == sorted(names)
    for p, i in zip(df["path"], df["id"]):
        assert len(audio.read(p)) == 1600, i


def test_duplicate_note_ids_in_examples_json_keep_the_first(tmp_path):
    note = "guitar_acoustic_000-060-100"
    text = ('{"%s": {"pitch": 60, "instrument_family": 3}, "%s": {"pitch": 61, "instrument_family": 3}}'
            % (note, note))
    root = nsynth_root(tmp_path, {"train": text})
    with pytest.warns(DataWarning, match="repeats 1 note id"):
        df = data.manifest("nsynth_pitch", root)
    assert int(df.set_index("id").loc[note, "pitch"]) == 60
    assert np.unique(df["id"]).size == len(df)
