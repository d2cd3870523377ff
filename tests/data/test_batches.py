"""Semi-supervised batches and views (GUIDE 2.1)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from workbench.audio import AudioError
from workbench.data import batches
from workbench.data.batches import (PretrainDataset, PretrainPool, SemiSupervisedBatchSampler, build_pool,
                                    labeled_subset, labels_to_multihot)
from workbench.data.views import FileReader, crop_views, view_level_db

SR = 8000


def _frame(n, prefix, split="train"):
    return pd.DataFrame({"id": [f"{prefix}{i:03d}" for i in range(n)],
                         "path": [f"/data/{prefix}{i:03d}.wav" for i in range(n)],
                         "split": split, "target": [i % 5 for i in range(n)]})


def test_labeled_subset_applies_p_once_and_is_seeded():
    train = _frame(200, "s")
    sub = labeled_subset(train, 0.25, seed=3)
    assert len(sub) == 50  # p once: 0.25 * 200, not 0.25**2 * 200
    assert sub["id"].tolist() == labeled_subset(train, 0.25, seed=3)["id"].tolist()
    assert sub["id"].tolist() != labeled_subset(train, 0.25, seed=4)["id"].tolist()
    assert set(sub["id"]) <= set(train["id"])
    assert len(labeled_subset(train, 0.001, seed=0)) == 1
    with pytest.raises(ValueError, match="p must be"):
        labeled_subset(train, 0.0, seed=0)


@pytest.mark.parametrize("batch_size,b_s", [(48, 0.5), (10, 0.25), (7, 0.0), (8, 1.0), (96, 0.05)])
def test_sampler_batch_composition(batch_size, b_s):
    n_lab, n_unl = 13, 40
    sampler = SemiSupervisedBatchSampler(n_lab, n_unl if b_s < 1 else 0, batch_size, b_s, steps=25, seed=1,
                                         rank=0)
    expect_lab = math.floor(batch_size * b_s)
    batches_ = list(sampler)
    assert len(batches_) == len(sampler) == 25
    for batch in batches_:
        assert len(batch) == batch_size
        assert sum(i < n_lab for i in batch) == expect_lab
        assert all(0 <= i < n_lab + n_unl for i in batch)


def test_sampler_cycles_through_labelled_rows_evenly():
    sampler = SemiSupervisedBatchSampler(10, 100, 10, 0.5, steps=20, seed=0, rank=0)
    counts = np.bincount([i for b in sampler for i in b if i < 10], minlength=10)
    assert counts.tolist() == [10] * 10  # 20 steps × 5 labelled = 10 full permutations


def test_sampler_ranks_draw_different_batches_and_errors():
    a = list(SemiSupervisedBatchSampler(10, 100, 8, 0.5, steps=3, seed=0, rank=0))
    b = list(SemiSupervisedBatchSampler(10, 100, 8, 0.5, steps=3, seed=0, rank=1))
    assert a != b
    with pytest.raises(ValueError, match="unlabelled pool is empty"):
        SemiSupervisedBatchSampler(10, 0, 8, 0.5, steps=3)
    with pytest.raises(ValueError, match="labelled set is empty"):
        SemiSupervisedBatchSampler(0, 10, 8, 0.5, steps=3)


def test_labels_to_multihot():
    y = labels_to_multihot([2, [0, 3], [], None], 4)
    assert y.tolist() == [[0, 0, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_build_pool_same_dataset_rows_outside_subset_become_unlabelled(monkeypatch):
    """Support = pool data set: subset rows labelled, every other train row unlabelled, never both."""
    full = pd.concat([_frame(40, "m"), _frame(5, "v", "valid")], ignore_index=True)
    full["target"] = [[i % 3] for i in range(len(full))]
    from workbench import data
    from workbench.data.tasks import get_spec

    monkeypatch.setattr(data, "manifest", lambda name, root=None: full.copy())
    monkeypatch.setattr(data, "task", lambda name, root=None: get_spec(name).with_classes(["a", "b", "c"]))
    pool = build_pool("mtat_top50", "mtat_all", p=0.25, b_s=0.5, seed=0)
    lab = pool.frame.iloc[: pool.n_labeled]
    unl = pool.frame.iloc[pool.n_labeled:]
    assert pool.n_labeled == 10 and pool.n_unlabeled == 30
    assert set(lab["id"]).isdisjoint(unl["id"])
    assert set(lab["id"]) | set(unl["id"]) == set(full.loc[full.split == "train", "id"])
    assert pool.labels[pool.n_labeled:].sum() == 0
    assert (pool.labels[: pool.n_labeled].sum(1) == 1).all()


def _write_tone(path, seconds, sr=SR, f=440.0):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr)


def test_adjacent_views_are_contiguous_chunks(tmp_path):
    # a ramp makes positions readable: sample value = index / n
    n = SR * 2
    ramp = (np.arange(n) / n).astype(np.float32)
    sf.write(tmp_path / "ramp.wav", ramp, SR, subtype="FLOAT")
    views = crop_views(FileReader(SR), str(tmp_path / "ramp.wav"), 3, 1000, "adjacent", np.random.default_rng(0))
    assert views.shape == (3, 1000)
    step = 1 / n
    # chunk k+1 starts exactly where chunk k ends
    for k in range(2):
        assert views[k + 1, 0] - views[k, -1] == pytest.approx(step, abs=1e-6)


def test_random_views_independent_and_short_file_fallback(tmp_path):
    n = SR * 2
    sf.write(tmp_path / "ramp.wav", (np.arange(n) / n).astype(np.float32), SR, subtype="FLOAT")
    rng = np.random.default_rng(1)
    v = crop_views(FileReader(SR), str(tmp_path / "ramp.wav"), 2, 1000, "random", rng)
    assert v.shape == (2, 1000) and v[0, 0] != v[1, 0]
    # shorter than N*T (1.5 s) but longer than T: falls back to independent crops
    _write_tone(tmp_path / "short.wav", 0.2)
    v = crop_views(FileReader(SR), str(tmp_path / "short.wav"), 2, 1000, "adjacent", rng)
    assert v.shape == (2, 1000) and np.isfinite(v).all()
    # shorter than T: zero padded
    _write_tone(tmp_path / "tiny.wav", 0.05)
    v = crop_views(FileReader(SR), str(tmp_path / "tiny.wav"), 2, 1000, "adjacent", rng)
    assert v.shape == (2, 1000) and (v[:, 400:] == 0).all()
    with pytest.raises(ValueError, match="unknown view strategy"):
        crop_views(FileReader(SR), str(tmp_path / "tiny.wav"), 2, 1000, "overlap", rng)


def test_view_level_db_hand_computed():
    t = np.arange(SR) / SR
    full = np.sin(2 * np.pi * 440 * t)[None]  # RMS 1/sqrt(2): -3.01 dBFS
    assert view_level_db(full) == pytest.approx(-3.0103, abs=1e-3)
    # the quietest view decides: a 0.01 sine is 40 dB lower
    assert view_level_db(np.stack([full[0], 0.01 * full[0]])) == pytest.approx(-43.0103, abs=1e-3)
    assert view_level_db(np.zeros((2, 100))) == -np.inf


def test_min_db_redraws_silent_crops(tmp_path):
    # a note that sounds for the first half of the file, then digital silence (NSynth-like)
    n, T = SR * 4, 1000
    x = np.zeros(n, np.float32)
    x[: n // 2] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(n // 2) / SR)
    sf.write(tmp_path / "note.wav", x, SR, subtype="FLOAT")
    path, reader = str(tmp_path / "note.wav"), FileReader(SR)
    rng = np.random.default_rng(0)
    plain = [view_level_db(crop_views(reader, path, 2, T, "adjacent", rng)) for _ in range(200)]
    kept = [view_level_db(crop_views(reader, path, 2, T, "adjacent", rng, min_db=-50)) for _ in range(200)]
    # about half of the plain crops are silent (window offset past the note: 16/30) ...
    assert 0.3 < np.mean(np.isinf(plain)) < 0.7
    # ... while a redraw fails only when all 8 tries are: P ~ 0.53^8 ~ 0.006
    assert np.mean(np.asarray(kept) >= -50) > 0.95
    # an all-silent file still gives a crop (the loudest draw), never an endless loop
    sf.write(tmp_path / "silence.wav", np.zeros(n, np.float32), SR, subtype="FLOAT")
    v = crop_views(reader, str(tmp_path / "silence.wav"), 2, T, "adjacent", rng, min_db=-50)
    assert v.shape == (2, T) and not v.any()
    with pytest.raises(ValueError, match="tries"):
        crop_views(reader, path, 2, T, "adjacent", rng, min_db=-50, tries=0)


def test_dataset_items_and_bad_files_replaced(tmp_path):
    paths = []
    for i in range(4):
        _write_tone(tmp_path / f"c{i}.wav", 1.0, f=200 + 100 * i)
        paths.append(str(tmp_path / f"c{i}.wav"))
    (tmp_path / "empty.wav").write_bytes(b"")
    frame = pd.DataFrame({"id": ["c0", "c1", "c2", "c3", "empty"],
                          "path": paths + [str(tmp_path / "empty.wav")], "role": ["labeled"] * 2 + ["unlabeled"] * 3,
                          "task": "x"})
    labels = np.zeros((5, 3), np.float32)
    labels[0, 1] = labels[1, 2] = 1
    pool = PretrainPool(frame, labels, ["a", "b", "c"], n_labeled=2)
    ds = PretrainDataset(pool, FileReader(SR), n_views=2, clip_samples=500, strategy="adjacent")
    item = ds[1]
    assert item["views"].shape == (2, 500) and item["sample_id"] == 1 and item["labeled"]
    assert not ds[2]["labeled"]
    assert item["labels"].tolist() == [0, 0, 1]
    with pytest.warns(UserWarning, match="empty.wav"):
        item = ds[4]
    assert item["sample_id"] in (2, 3)  # replaced by another unlabelled clip
    assert "empty.wav" in next(iter(ds.failures))
    loader = torch.utils.data.DataLoader(ds, batch_sampler=SemiSupervisedBatchSampler(2, 2, 4, 0.5, 3, rank=0))
    batch = next(iter(loader))
    assert batch["views"].shape == (4, 2, 500) and batch["labels"].shape == (4, 3)


def test_resumed_sampler_draws_new_batches():
    first = list(SemiSupervisedBatchSampler(10, 100, 8, 0.5, steps=3, seed=0, rank=0))
    again = list(SemiSupervisedBatchSampler(10, 100, 8, 0.5, steps=3, seed=0, rank=0))
    resumed = list(SemiSupervisedBatchSampler(10, 100, 8, 0.5, steps=3, seed=0, rank=0, start_step=3))
    assert first == again and resumed != first
