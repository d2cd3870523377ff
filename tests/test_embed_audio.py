"""Embeddings of any audio (``workbench.embed_audio`` and ``python -m workbench embed --audio``):
a folder of mixed formats written here (48 kHz stereo, spaces and unicode in the names, nested
folders), a single file, an array, and the ``folder`` task with ``split="all"``.

The checkpoint is a real smoke-scale SampleCNN saved with ``save_encoder``; expected values
are computed in the test by running that encoder on hand-cut chunks."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import workbench
from workbench import embed

FILE_SR = 48000
#: relative path -> (seconds, soundfile format, subtype)
FILES = {
    "one.wav": (1.0, "WAV", "PCM_16"),
    "album two/Track 02 – café.flac": (0.5, "FLAC", "PCM_24"),
    "album two/deep/nested ünïcode.ogg": (0.8, "OGG", "VORBIS"),
    "short clip.wav": (0.01, "WAV", "FLOAT"),  # shorter than one chunk: one zero-padded chunk
}
if "MP3" in sf.available_formats():
    FILES["mp3s/a song.mp3"] = (0.6, "MP3", "MPEG_LAYER_III")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from workbench.config import SCALES
    from workbench.models import build_encoder, save_encoder

    torch.manual_seed(0)
    cfg = dict(SCALES["smoke"]["encoder"])
    encoder = build_encoder(cfg.pop("name"), **cfg).eval()
    return save_encoder(encoder, tmp_path_factory.mktemp("ckpt") / "smoke encoder.pt")


@pytest.fixture(scope="module")
def encoder(checkpoint):
    from workbench.models import load_encoder

    return load_encoder(checkpoint)[0]


def _tone(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * FILE_SR))) / FILE_SR
    f = 220.0 * (1 + seed)
    left = 0.4 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(len(t))
    right = 0.3 * np.sin(2 * np.pi * 1.5 * f * t)
    return np.stack([left, right], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    root = tmp_path_factory.mktemp("my music")
    for k, (rel, (seconds, fmt, subtype)) in enumerate(FILES.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, _tone(seconds, k), FILE_SR, format=fmt, subtype=subtype)
    (root / ".hidden.wav").write_bytes((root / "one.wav").read_bytes())  # hidden: not taken
    (root / "notes.txt").write_text("not audio")
    return root


def _expected_chunks(encoder, x: np.ndarray) -> np.ndarray:
    clip = encoder.clip_samples
    if len(x) < clip:
        x = np.pad(x, (0, clip - len(x)))
    n = len(x) // clip
    chunks = torch.from_numpy(np.stack([x[i * clip:(i + 1) * clip] for i in range(n)])).unsqueeze(1)
    with torch.no_grad():
        return encoder(chunks).numpy()


def test_an_array_gives_chunks_timestamps_and_the_track_embedding(checkpoint, encoder):
    sr, clip = encoder.sample_rate, encoder.clip_samples
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 5 * clip + 100).astype(np.float32)
    emb = workbench.embed_audio(checkpoint, x)  # at the encoder's rate
    np.testing.assert_allclose(emb.chunks, _expected_chunks(encoder, x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(emb.timestamps, (np.arange(5) * clip + clip / 2) / sr)
    assert emb.track_index.tolist() == [0] * 5 and emb.n_tracks == 1 and emb.ids == ["<array>"]
    np.testing.assert_allclose(emb.tracks[0], emb.chunks.mean(0), rtol=1e-5, atol=1e-6)
    assert emb.durations[0] == pytest.approx(len(x) / sr)
    top = workbench.embed_audio(checkpoint, x, aggregation="max")
    np.testing.assert_allclose(top.tracks[0], emb.chunks.max(0), rtol=1e-5, atol=1e-6)

    # a stereo array at 48 kHz, either layout: mixed to mono and resampled to the encoder's rate
    stereo = _tone(0.2, 1)
    a = workbench.embed_audio(checkpoint, stereo, sample_rate=FILE_SR)
    b = workbench.embed_audio(checkpoint, torch.from_numpy(stereo.T.copy()), sample_rate=FILE_SR)
    np.testing.assert_allclose(a.chunks, b.chunks, rtol=1e-5, atol=1e-6)
    assert len(a.chunks) == int(0.2 * sr) // clip
    # a track shorter than a chunk: one padded chunk centred on the audio it has
    short = workbench.embed_audio(checkpoint, x[:100])
    assert short.timestamps.tolist() == [50 / sr]
    np.testing.assert_allclose(short.chunks, _expected_chunks(encoder, x[:100]), rtol=1e-4, atol=1e-5)

    with pytest.raises(ValueError, match="aggregation"):
        workbench.embed_audio(checkpoint, x, aggregation="median")
    with pytest.raises(ValueError, match="dtype int16"):
        workbench.embed_audio(checkpoint, (x * 1000).astype(np.int16))
    with pytest.raises(ValueError, match="sample_rate is the rate of an array"):
        workbench.embed_audio(checkpoint, str(checkpoint), sample_rate=FILE_SR)


def test_a_folder_of_mixed_formats(checkpoint, encoder, music):
    from workbench.audio import read

    emb = workbench.embed_audio(checkpoint, music)
    assert sorted(emb.ids) == sorted(FILES) and emb.skipped == []
    sr, clip = encoder.sample_rate, encoder.clip_samples
    for t, rel in enumerate(emb.ids):
        x = read(music / rel, sr)
        chunks, stamps = emb.track(t)
        np.testing.assert_allclose(chunks, _expected_chunks(encoder, x), rtol=1e-4, atol=1e-5)
        n = max(1, len(x) // clip)
        assert len(stamps) == n and emb.offsets[t] == int(np.sum(emb.track_index < t))
        assert np.all(np.diff(stamps) > 0) and stamps[-1] <= emb.durations[t]
        assert emb.durations[t] == pytest.approx(FILES[rel][0], abs=0.06)  # mp3 adds a few ms of padding
        np.testing.assert_allclose(emb.tracks[t], chunks.mean(0), rtol=1e-5, atol=1e-6)
    # one file alone, and a folder holding one file
    one = workbench.embed_audio(checkpoint, music / "album two" / "deep")
    single = workbench.embed_audio(checkpoint, music / "album two" / "deep" / "nested ünïcode.ogg")
    assert one.ids == ["nested ünïcode.ogg"] == single.ids
    np.testing.assert_array_equal(one.chunks, single.chunks)


def test_an_undecodable_file_is_skipped_and_named(checkpoint, music, tmp_path):
    folder = tmp_path / "some broken"
    folder.mkdir()
    (folder / "good.wav").write_bytes((music / "one.wav").read_bytes())
    (folder / "broken.flac").write_bytes(b"fLaC not really")
    emb = workbench.embed_audio(checkpoint, folder)
    assert emb.ids == ["good.wav"] and [p for p, _ in emb.skipped] == [str(folder / "broken.flac")]
    (folder / "good.wav").unlink()
    with pytest.raises(ValueError, match="none of the 1 file"):
        workbench.embed_audio(checkpoint, folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no audio file"):
        workbench.embed_audio(checkpoint, tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="neither an audio file nor a folder"):
        workbench.embed_audio(checkpoint, tmp_path / "missing.wav")


def test_cli_embed_audio_writes_npz_and_index(checkpoint, music, tmp_path, capsys):
    from workbench.cli import main

    out = tmp_path / "out dir"
    assert main(["embed", "--checkpoint", str(checkpoint), "--audio", str(music), "--out", str(out)]) == 0
    index = pd.read_csv(out / "index.csv")
    arrays = np.load(out / "embeddings.npz")
    assert sorted(index["id"]) == sorted(FILES)
    assert [str(music / i) for i in index["id"]] == index["path"].tolist()
    n = index["n_chunks"].to_numpy()
    assert index["offset"].tolist() == [0, *np.cumsum(n)[:-1].tolist()]
    assert arrays["chunks"].shape == (n.sum(), 32) and arrays["tracks"].shape == (len(FILES), 32)
    assert arrays["timestamps"].shape == (n.sum(),) and arrays["paths"].tolist() == index["path"].tolist()
    for t, (offset, count) in enumerate(zip(index["offset"], n)):
        assert (arrays["track_index"][offset:offset + count] == t).all()
        np.testing.assert_allclose(arrays["tracks"][t], arrays["chunks"][offset:offset + count].mean(0), rtol=1e-5,
                                   atol=1e-6)
    np.testing.assert_allclose(index["duration"], [FILES[i][0] for i in index["id"]], atol=0.06)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["aggregation"] == "mean" and meta["sample_rate"] == 22050
    has_parquet = embed.parquet_engine() is not None
    assert (out / "chunks.parquet").exists() == has_parquet == (out / "tracks.parquet").exists()
    if has_parquet:
        chunks = pd.read_parquet(out / "chunks.parquet")
        np.testing.assert_allclose(chunks["time"], arrays["timestamps"])

    single = tmp_path / "single"
    assert main(["embed", "--checkpoint", str(checkpoint), "--audio", str(music / "one.wav"), "--out",
                 str(single)]) == 0
    assert pd.read_csv(single / "index.csv")["id"].tolist() == ["one.wav"]
    assert math.isclose(float(np.load(single / "embeddings.npz")["durations"][0]), 1.0, abs_tol=1e-3)
    with pytest.raises(SystemExit):
        main(["embed", "--checkpoint", str(checkpoint), "--out", str(single)])  # neither --task nor --audio


def test_folder_task_takes_every_file_with_split_all(checkpoint, music):
    from workbench import data

    df = data.manifest("folder", music)
    assert len(df) == len(FILES) and len(data.select_split(df, "all")) == len(FILES)
    emb = embed.extract(str(checkpoint), "folder", "all", root=music, use_cache=False, progress=False)
    assert sorted(emb.ids) == sorted(FILES)
    one = embed.extract(str(checkpoint), "folder", "all", root=music / "album two" / "deep", use_cache=False,
                        progress=False)
    assert one.ids == ["nested ünïcode.ogg"]
    with pytest.raises(ValueError, match="split must be one of train, valid, test, all"):
        data.select_split(df, "everything")
