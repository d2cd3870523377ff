"""Hostile audio files: each is a clear error naming the file, or read correctly; and the decoded cache
and embedding extraction skip the unreadable ones (recording why) instead of aborting."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from faultkit import SR, UNREADABLE, N, StatsEncoder, noise, tone, truncated, write

from workbench import audio, data, embed
from workbench.data import cache


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_file_is_one_clear_error_naming_it(case, tmp_path):
    maker, pattern = UNREADABLE[case]
    path = maker(tmp_path)
    with pytest.raises(audio.AudioError) as err:
        audio.read(path, SR)
    assert re.search(pattern, str(err.value)), str(err.value)
    assert str(path) in str(err.value)


def test_silent_and_one_sample_files_read_exactly(tmp_path):
    silent = write(tmp_path / "silent.wav", np.zeros(N, np.float32))
    assert np.array_equal(audio.read(silent, SR), np.zeros(N, np.float32))
    one = write(tmp_path / "one.wav", np.array([0.25], np.float32), subtype="FLOAT")
    assert audio.read(one, SR).tolist() == [0.25]
    assert audio.read(one, SR, num_samples=4, pad=True).tolist() == [0.25, 0.0, 0.0, 0.0]
    with pytest.raises(audio.AudioError, match="too short"):
        audio.read(one, SR, num_samples=4)


def test_six_channels_are_averaged_to_mono(tmp_path):
    x = noise(N, channels=6)
    path = write(tmp_path / "six.wav", x, subtype="FLOAT")
    np.testing.assert_allclose(audio.read(path, SR), x.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 96000, 384000])
def test_unusual_sample_rates_are_resampled_keeping_pitch(rate, tmp_path):
    n = rate // 4  # 0.25 s
    path = write(tmp_path / f"r{rate}.wav", tone(1000.0, n, rate), rate, subtype="FLOAT")
    y = audio.read(path, SR)
    assert len(y) == SR // 4
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * SR / len(y) == pytest.approx(1000.0, abs=SR / len(y))


@pytest.mark.parametrize("name", ["ünïcødé 音楽.wav", "new\nline.wav", "  spaces  .wav"])
def test_unicode_and_newline_names_read(name, tmp_path):
    x = noise(N)
    path = write(tmp_path / name, x, subtype="FLOAT")
    np.testing.assert_array_equal(audio.read(path, SR), x)


def test_sample_rate_must_be_positive(tmp_path):
    path = write(tmp_path / "a.wav", noise())
    for bad in (0, -16000, 16000.5):
        with pytest.raises(ValueError, match="sample_rate must be a positive whole number"):
            audio.read(path, bad)
    assert audio.check_sample_rate(16000.0) == 16000


def test_truncated_wav_is_its_decodable_prefix(tmp_path):
    x = noise(3 * SR)
    full = write(tmp_path / "full.wav", x, subtype="FLOAT")
    cut = tmp_path / "cut.wav"
    header = full.stat().st_size - 4 * len(x)
    cut.write_bytes(full.read_bytes()[: header + 4 * SR])  # header + 1 s of float32 samples
    assert audio.info(cut).frames == SR
    np.testing.assert_array_equal(audio.read(cut, SR), x[:SR])


@pytest.mark.parametrize("fmt", ["MP3", "FLAC"])
def test_truncated_compressed_file_reports_its_decodable_length_and_warns(fmt, tmp_path):
    x = noise(3 * SR)
    path = truncated(tmp_path / f"cut.{fmt.lower()}", fmt, x=x)
    assert sf.info(str(path)).frames == 3 * SR  # the fixture really is a lying header
    with pytest.warns(audio.AudioWarning, match="truncated: its header promises 3.000 s"):
        meta = audio.info(path)
    assert meta.truncated and 0 < meta.frames < 3 * SR
    y = audio.read(path, SR)
    assert len(y) == meta.frames
    if fmt == "FLAC":  # lossless: the decodable part is exactly the start of the signal
        np.testing.assert_allclose(y, x[: len(y)], atol=1.0 / 32767)
    with pytest.raises(audio.AudioError, match="too short"):  # never a window zero-padded past the real end
        audio.read(path, SR, num_samples=meta.frames + 10)


def test_data_summary_counts_a_truncated_mp3_at_its_decodable_length(tmp_path):
    from workbench.data import summary

    root = tmp_path / "pool"
    path = truncated(root / "cut.mp3", "MP3")
    write(root / "ok.wav", noise(SR))
    data._build.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = summary.summarize(["folder"], root)
        decodable = audio.info(path).frames
    assert table["seconds"].sum() == pytest.approx(round(1.0 + decodable / SR, 1), abs=0.11)
    assert decodable / SR < 2.0  # the header's 3 s are not counted


# ---------------------------------------------------------------- the same files through the pipelines

@pytest.fixture
def mixed_split(tmp_path, monkeypatch):
    """A test split of 3 good tracks and every unreadable case, as a stand-in manifest."""
    root = tmp_path / "mixed"
    root.mkdir()
    rows = [{"id": f"good{i}", "path": str(write(root / f"good{i}.wav", noise(N, seed=i), subtype="FLOAT")),
             "split": "test", "target": None} for i in range(3)]
    bad = {case: maker(root) for case, (maker, _) in sorted(UNREADABLE.items())}
    rows += [{"id": case, "path": str(p), "split": "test", "target": None} for case, p in bad.items()]
    df = pd.DataFrame(rows)
    monkeypatch.setattr(data, "manifest", lambda name, root=None: df.copy())
    return root, df, bad


def test_decoded_cache_records_unreadable_files_and_caches_the_rest(mixed_split):
    root, df, bad = mixed_split
    with pytest.warns(RuntimeWarning, match=f"{len(bad)} file\\(s\\) could not be decoded"):
        d = cache.prepare("folder", root=root, progress=False)
    failed = json.loads((d / "meta.json").read_text())["failed"]
    assert set(failed) == {str(p) for p in bad.values()}
    for case, p in bad.items():
        assert re.search(UNREADABLE[case][1], failed[str(p)])
    c = cache.DecodedCache.open(d)
    for i in range(3):
        assert np.abs(c.read(f"good{i}") - audio.read(root / f"good{i}.wav", SR)).max() <= 1.5 / cache.INT16_SCALE


def test_embed_skips_each_unreadable_track_with_one_warning_and_records_it(mixed_split, tmp_path):
    root, df, bad = mixed_split
    enc = StatsEncoder()
    with pytest.warns(audio.AudioWarning) as record:
        emb = embed.extract(enc, "folder", "test", root=root, cache_dir=tmp_path / "emb", progress=False)
    skip_msgs = [str(w.message) for w in record if "skipping unusable track" in str(w.message)]
    assert len(skip_msgs) == len(bad)
    for p in bad.values():
        assert sum(str(p) in m for m in skip_msgs) == 1
    assert emb.ids == ["good0", "good1", "good2"]
    assert set(emb.meta["skipped"]) == set(bad)
    # the good tracks' embeddings are their chunks' statistics, computed here independently
    for i in range(3):
        x = audio.read(root / f"good{i}.wav", SR)
        chunks = x[: (len(x) // enc.clip_samples) * enc.clip_samples].reshape(-1, enc.clip_samples)
        expect = np.stack([chunks.mean(1), chunks.std(1, ddof=1), chunks[:, 0], chunks[:, -1]], 1)
        np.testing.assert_allclose(emb.X[emb.track_index == i], expect, rtol=1e-5, atol=1e-6)
    # a cache hit keeps the record (and says so again) without touching the encoder
    enc.chunks = 0
    with pytest.warns(audio.AudioWarning, match="left out, as in the run that cached them"):
        hit = embed.extract(enc, "folder", "test", root=root, cache_dir=tmp_path / "emb", progress=False)
    assert hit.meta["cache_hit"] and enc.chunks == 0 and hit.meta["skipped"] == emb.meta["skipped"]


def test_a_split_with_no_readable_track_is_an_error(tmp_path, monkeypatch):
    root = tmp_path / "allbad"
    root.mkdir()
    df = pd.DataFrame([{"id": "t", "path": str(UNREADABLE["text-as-audio"][0](root)), "split": "test",
                        "target": None}])
    monkeypatch.setattr(data, "manifest", lambda name, root=None: df.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", audio.AudioWarning)
        with pytest.raises(embed.EmbeddingError, match="none of the 1 tracks"):
            embed.extract(StatsEncoder(), "folder", "test", root=root, use_cache=False, progress=False)
