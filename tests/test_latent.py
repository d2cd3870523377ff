"""Latent-space maps: reductions (shape, determinism, separation), clip descriptions,
saved HTML/PNG, the explorer's click-to-play, and one batch's similarity vs target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from workbench import latent

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _blobs(n_per: int = 20, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.zeros((2, dim))
    centres[1, 0] = 50.0
    X = np.concatenate([rng.normal(size=(n_per, dim)) + c for c in centres]).astype(np.float32)
    return X, np.repeat([0, 1], n_per)


@pytest.mark.parametrize("method", ["tsne", "umap", "pca"])
def test_reduce_shape_determinism_and_separation(method):
    X, y = _blobs()
    a = latent.reduce(X, method, seed=3)
    b = latent.reduce(X, method, seed=3)
    assert a.shape == (40, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    # two far-apart blobs stay apart: every point is nearer its own blob's centroid
    cents = np.stack([a[y == k].mean(0) for k in (0, 1)])
    nearest = np.argmin(((a[:, None, :] - cents[None]) ** 2).sum(-1), axis=1)
    assert (nearest == y).all()


def test_reduce_seed_matters_and_small_sets_work():
    X, _ = _blobs(n_per=3)  # 6 points: the perplexity and neighbourhood are capped
    assert not np.allclose(latent.reduce(X, "tsne", seed=0), latent.reduce(X, "tsne", seed=1))
    assert latent.reduce(X, "umap", seed=0).shape == (6, 2)
    assert latent.reduce(X[:, :1], "pca").shape == (6, 2)  # 1-d input is padded to 2 columns
    with pytest.raises(ValueError, match="at least 3 points"):
        latent.reduce(X[:2], "tsne")
    with pytest.raises(ValueError, match="tsne, umap, pca"):
        latent.reduce(X, "isomap")
    with pytest.raises(ValueError, match=r"\[n, d\]"):
        latent.reduce(X[0], "pca")


@pytest.fixture(scope="module")
def embedded():
    from workbench.data.roots import embedded_dir

    return embedded_dir("tiny", 0)


def test_clip_table_pitch_class_octave_and_instrument(embedded):
    from workbench import data

    table = latent.clip_table("nsynth_pitch", "test")
    manifest = data.manifest("nsynth_pitch")
    manifest = manifest[manifest.split == "test"].set_index("id")
    names = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]  # MIDI 60 = C4
    families = ["bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead",
                "vocal"]
    assert len(table) == len(manifest)
    for _, row in table.iterrows():
        pitch = int(manifest.loc[row.id, "pitch"])
        assert row.pitch_class == names[pitch % 12]
        assert int(row.octave) == pitch // 12 - 1
        assert row.label == str(pitch)  # the class name of NSynth pitch is the MIDI number
        assert row.instrument == families[int(manifest.loc[row.id, "instrument_family"])]
    keys = latent.clip_table("giantsteps_key", "test")
    assert keys.octave.isna().all()
    assert (keys.pitch_class == keys.label.str.split().str[0]).all()  # the key's tonic
    tags = latent.clip_table("mtat_top50", "test")
    tagged = tags.label.notna()  # people leave some MTAT clips without a top-50 tag; so does the stand-in
    assert tagged.any() and (tags.label[tagged] == tags.labels[tagged].str.split(", ").str[0]).all()
    assert tags.instrument.isna().all()


@pytest.fixture(scope="module")
def encoder():
    from workbench.config import SCALES
    from workbench.models import build_encoder

    torch.manual_seed(0)
    cfg = dict(SCALES["smoke"]["encoder"])
    return build_encoder(cfg.pop("name"), **cfg).eval()


def test_embedding_frame_and_saved_maps(embedded, encoder, tmp_path):
    frame = latent.embedding_frame(encoder, "nsynth_pitch", reducer="pca", seed=0, max_points=12,
                                   extract_kwargs={"max_chunks": 2, "use_cache": False})
    assert len(frame) == 12 and {"x", "y", "id", "path", "pitch_class"} <= set(frame.columns)
    assert frame.attrs["synthetic"] is True and frame.attrs["task"] == "nsynth_pitch"
    again = latent.embedding_frame(encoder, "nsynth_pitch", reducer="pca", seed=0, max_points=12,
                                   extract_kwargs={"max_chunks": 2, "use_cache": False})
    pd.testing.assert_frame_equal(frame, again)

    fig = latent.scatter_figure(frame, "octave")
    assert [t.name for t in fig.data] == sorted({str(o) for o in frame.octave}, key=int)
    assert sum(len(t.x) for t in fig.data) == 12
    first = fig.data[0]
    assert first.customdata[0][0] in set(frame.id) and first.customdata[0][1] in set(frame.path)
    assert first.customdata[0][6] == first.customdata[0][0].split("/")[-1]  # hover names the file (base name)
    assert "%{customdata[6]}" in first.hovertemplate and "customdata[1]" not in first.hovertemplate
    html = latent.save_html(fig, tmp_path / "map.html")
    text = html.read_text()
    assert "plotly_click" in text and 'src="https://cdn' not in text and len(text) > 1_000_000  # plotly.js inlined
    png = latent.save_png(frame, tmp_path / "map.png", color_by="pitch_class")
    assert png.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="no instrument information|colour by label"):
        latent.scatter_figure(frame.assign(instrument=None), "instrument")
    with pytest.raises(ValueError, match="color_by"):
        latent.scatter_figure(frame, "loudness")


def test_explorer_plays_the_clicked_clip(tmp_path):
    sr = 16000
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"c{i}.wav"))
        sf.write(paths[-1], np.sin(np.arange(sr // 4) * 0.05 * (i + 1)).astype(np.float32), sr)
    frame = pd.DataFrame({"id": ["c0", "c1", "c2"], "path": paths, "label": ["a", "b", "a"], "labels": ["a", "b", "a"],
                          "pitch_class": ["C", "D", "C"], "octave": ["4", "4", "5"], "instrument": [None] * 3,
                          "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 0.5]})
    calls = []

    def frame_fn(ckpt, task, reducer):
        calls.append((ckpt, task, reducer))
        return frame

    ex = latent.Explorer({"m1": "a.ckpt", "m2": "b.ckpt"}, ["nsynth_pitch"], frame_fn=frame_fn, sample_rate=sr)
    assert calls == [("a.ckpt", "nsynth_pitch", "tsne")]
    ex.color_w.value = "octave"  # re-colour: same frame, no new reduction
    assert calls == [("a.ckpt", "nsynth_pitch", "tsne")]
    assert [t.name for t in ex.figure.data] == ["4", "5"]
    ex.reducer_w.value = "umap"
    assert calls[-1] == ("a.ckpt", "nsynth_pitch", "umap")

    class Points:
        point_inds = [1]

    trace = ex.figure.data[0]  # octave 4: c0 and c1
    ex.on_click(trace, Points())
    assert ex.last_played == paths[1]
    ex.clip_w.value = paths[2]  # the clip chooser plays too
    assert ex.last_played == paths[2]
    ex.color_w.value = "instrument"  # no instrument column: a message, not an exception
    assert "instrument" in ex.status.value
    with pytest.raises(ValueError, match="at least one checkpoint"):
        latent.Explorer({}, ["nsynth_pitch"], frame_fn=frame_fn)


def test_batch_similarity_of_a_smoke_run(embedded, tmp_path):
    from workbench.config import resolve_config
    from workbench.train.pretrain import pretrain

    cfg = resolve_config("smoke", "semisupcon", support="nsynth_pitch", b_s=0.5, steps=2,
                         runs_dir=str(tmp_path / "runs"))
    run = pretrain(cfg, progress=False)
    out = latent.batch_similarity(run)
    m = cfg.batch_size * cfg.n_views
    sim, targets, ids, labeled = out["similarity"], out["targets"], out["sample_ids"], out["labeled"]
    assert sim.shape == targets.shape == (m, m)
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-5)  # cosine of normalised vectors
    assert np.all(sim <= 1.0 + 1e-5) and np.all(sim >= -1.0 - 1e-5)
    np.testing.assert_array_equal(targets, targets.T)
    assert np.all(np.diag(targets) == 0)
    same = (ids[:, None] == ids[None, :]) & ~np.eye(m, dtype=bool)
    assert np.all(targets[same] == 1)  # views of one clip are positives
    assert labeled.sum() == int(cfg.batch_size * cfg.b_s) * cfg.n_views
    assert np.all(labeled[: labeled.sum()])  # labelled rows first
    unl = ~labeled
    assert np.all(targets[np.ix_(unl, unl)][~same[np.ix_(unl, unl)]] == 0)  # unlabelled: only same-clip positives
    assert np.isfinite(out["loss"])


def test_maps_of_ones_own_audio_folder_chunks_and_hover(encoder, tmp_path):
    """A folder without labels, split="all": chunk maps with time in track, coloured by
    sub-folder, hover naming files by base name (never an absolute path)."""
    sr, clip = encoder.sample_rate, encoder.clip_samples
    root = tmp_path / "my music"
    lengths = {"live/first take.wav": 5 * clip + 10, "live/second.wav": 3 * clip, "studio/ünïcode mix.wav": 7 * clip}
    for k, (rel, n) in enumerate(lengths.items()):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(n) / sr
        sf.write(root / rel, np.stack([np.sin(2 * np.pi * 300 * (k + 1) * t)] * 2, 1).astype(np.float32), sr)
    frame = latent.embedding_frame(encoder, "folder", split="all", root=root, reducer="pca", level="chunk",
                                   max_points=None, extract_kwargs={"use_cache": False})
    assert len(frame) == 5 + 3 + 7 and frame.attrs["level"] == "chunk"
    for rel, n in lengths.items():
        part = frame[frame["id"] == rel]
        expected = (np.arange(n // clip) * clip + clip / 2) / sr
        np.testing.assert_allclose(np.sort(part["time"]), expected)
        assert set(part["name"]) == {rel.split("/")[-1]} and set(part["folder"]) == {rel.split("/")[0]}
    assert latent.resolve_color_by(frame, "pitch_class") == "folder"  # no labels, two sub-folders
    assert latent.resolve_color_by(frame[frame["folder"] == "live"], "label") == "file"
    fig = latent.scatter_figure(frame, "folder")
    assert [t.name for t in fig.data] == ["live", "studio"]
    for trace in fig.data:
        assert "customdata[1]" not in trace.hovertemplate and "%{customdata[6]}" in trace.hovertemplate
        assert " at %{customdata[8]}" in trace.hovertemplate
        names = {row[6] for row in trace.customdata}
        assert all("/" not in n and str(tmp_path) not in n for n in names)
        assert {row[8] for row in trace.customdata} >= {latent.format_time(clip / 2 / sr)}
    # max_chunks keeps chunks spread over the track: their times follow
    spread = latent.embedding_frame(encoder, "folder", split="all", root=root, reducer="pca", level="chunk",
                                    extract_kwargs={"use_cache": False, "max_chunks": 2})
    from workbench.embed import chunk_starts

    for rel, n in lengths.items():
        starts = chunk_starts(n, clip, max_chunks=2)
        np.testing.assert_allclose(np.sort(spread[spread["id"] == rel]["time"]), (starts + clip / 2) / sr)
    tracks = latent.embedding_frame(encoder, "folder", split="all", root=root, reducer="pca",
                                    extract_kwargs={"use_cache": False})
    assert sorted(tracks["id"]) == sorted(lengths) and tracks["time"].isna().all()
    assert latent.format_time(83.44) == "1:23.4" and latent.format_time(3725) == "1:02:05"
