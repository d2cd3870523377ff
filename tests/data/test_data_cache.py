"""Decoded-audio cache: crops equal workbench.audio.read crops up to int16 quantisation."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from workbench import audio
from workbench.data import cache
from workbench.data.loaders import DataWarning

SR = 16000
QUANTUM = 1.0 / cache.INT16_SCALE  # int16 rounding error is at most half of this; allow one step
TOL = QUANTUM + 1e-6
# name -> seconds; noise at different lengths so offsets and lengths are distinguishable
FILES = {"a.wav": 1.0, "sub/b.wav": 2.5, "c.flac": 0.5, "d.mp3": 3.0}


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache_home"
    monkeypatch.setenv("WORKBENCH_CACHE", str(home))
    return home


def make_folder(root: Path, files: dict[str, float] = FILES, sr: int = SR, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name, seconds in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        x = (0.2 * rng.standard_normal(int(seconds * sr))).astype(np.float32)
        sf.write(str(p), x, sr)
    return root


def test_prepare_layout_and_whole_clips(tmp_path: Path, cache_home: Path) -> None:
    root = make_folder(tmp_path / "pool")
    d = cache.prepare("folder", root=root, progress=False)
    assert d == cache.cache_path("folder", root, SR) and d.is_relative_to(cache_home / "decoded")
    arr = np.load(d / "audio.npy", mmap_mode="r")  # a standard .npy
    assert arr.dtype == np.int16
    meta = json.loads((d / "meta.json").read_text())
    assert meta["sample_rate"] == SR and meta["clips"] == len(FILES) and meta["failed"] == {}
    c = cache.reader_for("folder", root, SR)
    assert isinstance(c, cache.DecodedCache) and len(c) == len(FILES)
    assert arr.shape[0] == sum(c.num_samples(str(root.resolve() / n)) for n in FILES)
    for name in FILES:
        path = root.resolve() / name
        assert c.has(str(path)) and c.has(name)  # by absolute path and by manifest id
        whole = c.read(str(path))
        ref = audio.read(path, SR)
        assert whole.dtype == np.float32 and len(whole) == len(ref)
        assert np.abs(whole - ref).max() <= TOL


def test_crops_match_audio_read(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "crops")
    cache.prepare("folder", root=root, progress=False)
    c = cache.reader_for("folder", root, SR)
    n = 4000
    for name in ("a.wav", "sub/b.wav", "d.mp3"):
        path = root.resolve() / name
        # interior offsets: audio.read seeks inside the mp3, and a seek into its very last frame
        # decodes differently from a full decode (libmpg123 bit-reservoir errors), which the cache avoids
        for offset in (0.0, 0.05, 0.3125, 0.5):
            x = c.read(str(path), n, offset=offset)
            y = audio.read(path, SR, offset=offset, num_samples=n)
            assert x.shape == (n,) and np.abs(x - y).max() <= TOL, (name, offset)
        # random crops: the same generator draws give the same windows
        for seed in range(3):
            x = c.read(str(path), n, rng=np.random.default_rng(seed))
            y = audio.read(path, SR, num_samples=n, rng=np.random.default_rng(seed))
            assert np.abs(x - y).max() <= TOL
    # offset past the end is clamped exactly like audio.read (wav: exact seeking)
    path = root.resolve() / "sub" / "b.wav"
    assert np.abs(c.read(str(path), n, offset=99.0) - audio.read(path, SR, offset=99.0, num_samples=n)).max() <= TOL


def test_short_clips_pad_or_raise(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "short")
    cache.prepare("folder", root=root, progress=False)
    c = cache.reader_for("folder", root, SR)
    path = str(root.resolve() / "c.flac")  # 0.5 s = 8000 samples
    with pytest.raises(audio.AudioError, match="too short"):
        c.read(path, 10000)
    x = c.read(path, 10000, pad=True)
    assert x.shape == (10000,) and np.all(x[8000:] == 0) and np.abs(x[:8000]).max() > 0
    with pytest.raises(KeyError, match="not in the decoded cache"):
        c.read(str(root / "nope.wav"), 100)


def test_resampled_cache(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "rs", {"a.wav": 1.0, "b.wav": 0.75}, sr=22050)
    cache.prepare("folder", root=root, sample_rate=SR, progress=False)
    c = cache.reader_for("folder", root, SR)
    assert cache.reader_for("folder", root, 8000) is None  # another rate: not prepared
    for name in ("a.wav", "b.wav"):
        path = root.resolve() / name
        assert np.abs(c.read(str(path)) - audio.read(path, SR)).max() <= TOL
        assert c.num_samples(name) == len(audio.read(path, SR))


def test_float16_dtype(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "f16", {"a.wav": 0.5})
    d = cache.prepare("folder", root=root, dtype="float16", out=tmp_path / "f16cache", progress=False)
    c = cache.DecodedCache.open(d)
    path = root.resolve() / "a.wav"
    assert np.load(d / "audio.npy", mmap_mode="r").dtype == np.float16
    assert np.abs(c.read(str(path)) - audio.read(path, SR)).max() <= 2.0 ** -11  # float16 relative precision
    with pytest.raises(ValueError, match="already holds a cache at 16000 Hz, float16"):
        cache.prepare("folder", root=root, dtype="int16", out=d, progress=False)


def test_second_prepare_appends_only_new_clips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench import data

    decoded: list[str] = []
    real = cache._decode
    monkeypatch.setattr(cache, "_decode", lambda job: decoded.append(Path(job[0]).name) or real(job))
    root = make_folder(tmp_path / "grow", {"a.wav": 0.5, "b.wav": 0.25})
    d = cache.prepare("folder", root=root, progress=False)
    before = np.array(np.load(d / "audio.npy"))
    assert sorted(decoded) == ["a.wav", "b.wav"]
    assert cache.prepare("folder", root=root, progress=False) == d
    assert sorted(decoded) == ["a.wav", "b.wav"]  # nothing decoded twice
    assert np.array_equal(np.load(d / "audio.npy"), before)
    # a new file: the manifest is cached per (name, root), so clear it as a new session would
    make_folder(root, {"c.wav": 0.3}, seed=1)
    data._build.cache_clear()
    cache.prepare("folder", root=root, progress=False)
    assert sorted(decoded) == ["a.wav", "b.wav", "c.wav"]
    after = np.load(d / "audio.npy")
    assert np.array_equal(after[: len(before)], before) and len(after) == len(before) + int(0.3 * SR)
    c = cache.reader_for("folder", root, SR)
    assert np.abs(c.read("c.wav") - audio.read(root / "c.wav", SR)).max() <= TOL


def test_torn_tail_is_trimmed(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "torn", {"a.wav": 0.5})
    d = cache.prepare("folder", root=root, progress=False)
    size = (d / "audio.npy").stat().st_size
    with open(d / "audio.npy", "ab") as fh:  # bytes written after the last checkpoint of a killed run
        fh.write(b"\x01\x02" * 1000)
    make_folder(root, {"b.wav": 0.25}, seed=2)
    from workbench import data

    data._build.cache_clear()
    cache.prepare("folder", root=root, progress=False)
    assert (d / "audio.npy").stat().st_size == size + int(0.25 * SR) * 2
    c = cache.reader_for("folder", root, SR)
    assert np.abs(c.read("b.wav") - audio.read(root / "b.wav", SR)).max() <= TOL


def test_unreadable_file_is_recorded_not_cached(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "bad", {"a.wav": 0.5})
    (root / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.warns(RuntimeWarning, match="1 file\\(s\\) could not be decoded"):
        d = cache.prepare("folder", root=root, progress=False)
    c = cache.DecodedCache.open(d)
    assert c.has("a.wav") and not c.has("broken.wav")
    assert str(root.resolve() / "broken.wav") in json.loads((d / "meta.json").read_text())["failed"]


def test_pickle_reopens_the_map(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "pk", {"a.wav": 0.5})
    cache.prepare("folder", root=root, progress=False)
    c = cache.reader_for("folder", root, SR)
    _ = c.array  # open the map
    blob = pickle.dumps(c)
    assert len(blob) < 10_000  # the samples are not copied into the pickle
    c2 = pickle.loads(blob)
    assert np.array_equal(c2.read("a.wav"), c.read("a.wav"))


def test_mtat_tree_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "mtat"
    rng = np.random.default_rng(3)
    rows = ['"clip_id"\t"guitar"\t"mp3_path"']
    for k, folder in enumerate("0cd"):
        rel = f"{folder}/artist-album-0{k}-song-0-29.mp3"
        (root / folder).mkdir(parents=True, exist_ok=True)
        sf.write(str(root / rel), (0.2 * rng.standard_normal(SR)).astype(np.float32), SR)
        rows.append(f'"{k}"\t"1"\t"{rel}"')
    (root / "annotations_final.csv").write_text("\n".join(rows) + "\n")
    assert cache.reader_for("mtat_top50", root, SR) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        assert cache.main(["prepare", "mtat_top50", "--root", str(root), "--sample-rate", str(SR), "--quiet"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(cache.cache_path("mtat", root, SR))
    c = cache.reader_for("mtat_all", root, SR)  # tasks of one data set share the cache
    assert c is not None and len(c) == 3
    path = root.resolve() / "c" / "artist-album-01-song-0-29.mp3"
    ref = audio.read(path, SR, offset=0.25, num_samples=2000)
    assert np.abs(c.read(str(path), 2000, offset=0.25) - ref).max() <= TOL
