"""Embedding extraction: chunking, eval-mode freezing, the on-disk cache and the CLI.

The manifest is a stand-in DataFrame (monkeypatched into ``workbench.data.manifest``) over
real float wav files written here, so the test depends on no data loader.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch import nn

from workbench import data, embed
from workbench.data.tasks import TASKS

SR = 8000
CLIP = 100
TRACK_LENGTHS = {"a": 250, "b": 60, "c": 300}  # -> 2 chunks (50 dropped), 1 padded chunk, 3 chunks
TRACK_OFFSET = {"a": 1.0, "b": 2.0, "c": 3.0}
STEP = 1e-4  # sample n of track t has value offset[t] + n * STEP


class Probe3(nn.Module):
    """Stand-in encoder: (first sample, last sample, number of non-zero samples); counts calls."""

    out_dim = 3
    sample_rate = SR
    clip_samples = CLIP

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 3 and x.shape[1] == 1
        self.calls += 1
        x = x[:, 0] * self.scale
        return torch.stack([x[:, 0], x[:, -1], (x != 0).sum(1).float()], dim=1)


class BNEncoder(nn.Module):
    out_dim = 4
    sample_rate = SR
    clip_samples = CLIP

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 5, stride=5)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x))).mean(-1)


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    root = tmp_path / "nsynth"
    rows = []
    for i, (tid, n) in enumerate(TRACK_LENGTHS.items()):
        path = root / "audio" / f"{tid}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (TRACK_OFFSET[tid] + np.arange(n) * STEP).astype(np.float32) / 4, SR, subtype="FLOAT")
        rows.append({"id": tid, "path": str(path), "split": "test", "target": 10 + i})
    rows.append({"id": "t", "path": str(root / "audio" / "a.wav"), "split": "train", "target": 0})
    df = pd.DataFrame(rows)
    calls = {"n": 0}

    def manifest(name, root=None):
        calls["n"] += 1
        return df.copy()

    monkeypatch.setattr(data, "manifest", manifest)
    return root


def starts_of(X: np.ndarray, offsets: list[float]) -> list[int]:
    return [int(round((x * 4 - o) / STEP)) for x, o in zip(X[:, 0], offsets)]


def test_chunk_starts():
    assert embed.chunk_starts(250, 100).tolist() == [0, 100]        # remainder dropped
    assert embed.chunk_starts(60, 100).tolist() == [0]              # shorter: one (padded) chunk
    assert embed.chunk_starts(200, 100).tolist() == [0, 100]
    assert embed.chunk_starts(250, 100, hop=50).tolist() == [0, 50, 100, 150]
    assert embed.chunk_starts(1000, 100, max_chunks=3).tolist() == [0, 400, 900]
    with pytest.raises(ValueError, match="hop"):
        embed.chunk_starts(100, 10, hop=0)


def test_extract_cuts_whole_tracks_into_non_overlapping_chunks(fake_root, tmp_path):
    enc = Probe3()
    emb = embed.extract(enc, TASKS["nsynth_pitch"], "test", root=fake_root, cache_dir=tmp_path / "c",
                        batch_size=2, progress=False)
    assert emb.ids == ["a", "b", "c"]
    assert emb.track_index.tolist() == [0, 0, 1, 2, 2, 2]
    assert emb.targets.tolist() == [10, 11, 12] and emb.targets.dtype == np.int64
    offsets = [TRACK_OFFSET[emb.ids[t]] for t in emb.track_index]
    assert starts_of(emb.X, offsets) == [0, 100, 0, 0, 100, 200]
    # a full chunk's last sample is start + 99; the padded chunk of "b" ends in zeros after 60 samples
    assert emb.X[:, 2].tolist() == [100, 100, 60, 100, 100, 100]
    assert emb.X[2, 1] == 0.0
    np.testing.assert_allclose(emb.X[1, 1] * 4, 1.0 + 199 * STEP, rtol=1e-6)
    assert emb.meta["sample_rate"] == SR and emb.meta["clip_samples"] == CLIP and not emb.meta["cache_hit"]
    # track means and chunk targets follow the index
    np.testing.assert_allclose(emb.track_mean()[0], emb.X[:2].mean(0), rtol=1e-6)
    assert emb.chunk_targets().tolist() == [10, 10, 11, 12, 12, 12]


def test_hop_and_max_chunks(fake_root, tmp_path):
    emb = embed.extract(Probe3(), TASKS["nsynth_pitch"], "test", root=fake_root, hop=50, max_chunks=2,
                        use_cache=False, progress=False)
    offsets = [TRACK_OFFSET[emb.ids[t]] for t in emb.track_index]
    # a: starts 0,50,100,150 -> keep first and last; c: 0..200 step 50 -> 0, 200
    assert emb.track_index.tolist() == [0, 0, 1, 2, 2]
    assert starts_of(emb.X, offsets) == [0, 150, 0, 0, 200]


def test_encoder_is_frozen_in_eval_mode_and_its_mode_restored(fake_root):
    torch.manual_seed(0)
    enc = BNEncoder()
    with torch.no_grad():  # give BatchNorm non-trivial statistics to preserve
        enc.bn.running_mean.uniform_(-1, 1)
        enc.bn.running_var.uniform_(0.5, 2)
    enc.train()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    emb = embed.extract(enc, TASKS["nsynth_pitch"], "test", root=fake_root, use_cache=False, progress=False)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} moved during extraction"
    assert enc.training, "the caller's train mode must be restored"
    assert all(p.grad is None for p in enc.parameters())
    # embeddings are eval-mode outputs: recompute the first chunk by hand
    x = torch.from_numpy(sf.read(fake_root / "audio" / "a.wav", dtype="float32")[0][:CLIP]).view(1, 1, -1)
    with torch.no_grad():
        expected = enc.eval()(x)[0].numpy()
    np.testing.assert_allclose(emb.X[0], expected, rtol=1e-5, atol=1e-6)


def test_cache_hit_does_not_touch_the_encoder(fake_root, tmp_path):
    cache = tmp_path / "cache"
    enc = Probe3()
    first = embed.extract(enc, TASKS["nsynth_pitch"], "test", root=fake_root, cache_dir=cache, progress=False)
    calls = enc.calls
    assert calls > 0 and len(list(cache.glob("*.npy"))) == 1 and len(list(cache.glob("*.json"))) == 1
    second = embed.extract(enc, TASKS["nsynth_pitch"], "test", root=fake_root, cache_dir=cache, progress=False)
    assert enc.calls == calls
    assert second.meta["cache_hit"]
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.track_index, second.track_index)
    np.testing.assert_array_equal(first.targets, second.targets)
    assert second.targets.dtype == first.targets.dtype and second.ids == first.ids

    # another split, other settings, a transform or other weights are other entries
    embed.extract(enc, TASKS["nsynth_pitch"], "train", root=fake_root, cache_dir=cache, progress=False)
    embed.extract(enc, TASKS["nsynth_pitch"], "test", root=fake_root, cache_dir=cache, hop=50, progress=False)
    embed.extract(enc, TASKS["nsynth_pitch"], "test", root=fake_root, cache_dir=cache, progress=False,
                  transform=lambda x: -x, transform_key="negate")
    with torch.no_grad():
        enc.scale.fill_(2.0)
    doubled = embed.extract(enc, TASKS["nsynth_pitch"], "test", root=fake_root, cache_dir=cache, progress=False)
    assert not doubled.meta["cache_hit"]
    np.testing.assert_allclose(doubled.X[:, :2], 2 * first.X[:, :2])
    assert len(list(cache.glob("*.npy"))) == 5


def test_tasks_sharing_audio_share_one_cache_entry_with_their_own_targets(fake_root, tmp_path, monkeypatch):
    """nsynth_pitch and nsynth_instrument read the same notes: encode once, keep each task's targets."""
    cache = tmp_path / "cache"
    enc = Probe3()
    pitch = embed.extract(enc, TASKS["nsynth_pitch"], "test", root=fake_root, cache_dir=cache, progress=False)
    calls = enc.calls
    base = data.manifest("x")
    base["target"] = [3, 1, 2, 0]  # the instrument family of each note

    monkeypatch.setattr(data, "manifest", lambda name, root=None: base.copy())
    inst = embed.extract(enc, TASKS["nsynth_instrument"], "test", root=fake_root, cache_dir=cache, progress=False)
    assert enc.calls == calls and inst.meta["cache_hit"] and inst.meta["task"] == "nsynth_instrument"
    np.testing.assert_array_equal(inst.X, pitch.X)
    assert pitch.targets.tolist() == [10, 11, 12] and inst.targets.tolist() == [3, 1, 2]


def test_transform_is_applied_to_chunks_and_length_restored(fake_root):
    seen = []

    def crop_half(x):
        seen.append(tuple(x.shape))
        return x[..., : x.shape[-1] // 2]

    emb = embed.extract(Probe3(), TASKS["nsynth_pitch"], "test", root=fake_root, use_cache=False,
                        transform=crop_half, batch_size=4, progress=False)
    assert all(s[1:] == (1, CLIP) for s in seen) and sum(s[0] for s in seen) == 6
    assert emb.X[:, 2].tolist() == [50, 50, 50, 50, 50, 50]  # cropped to 50, padded back to 100
    with pytest.raises(ValueError, match="transform_key"):
        embed.extract(Probe3(), TASKS["nsynth_pitch"], "test", root=fake_root, transform=crop_half)


def test_multilabel_targets_are_multi_hot():
    task = TASKS["mtat_top50"].with_classes(["x", "y", "z"])
    assert embed.target_array(task, [[0, 2], [], [1]]).tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    assert embed.target_array(TASKS["emomusic"], [[0.1, 0.2], [0.3, 0.4]]).shape == (2, 2)
    with pytest.raises(ValueError, match="out of range"):
        embed.target_array(task, [[3]])


def test_subset_keeps_chunks_of_selected_tracks():
    emb = embed.Embeddings(np.arange(12, dtype=np.float32).reshape(6, 2), [0, 0, 1, 2, 2, 2], ["a", "b", "c"],
                           np.array([5, 6, 7]))
    sub = emb.subset([2, 0])
    assert sub.ids == ["c", "a"] and sub.targets.tolist() == [7, 5]
    assert sub.track_index.tolist() == [0, 0, 0, 1, 1]
    assert sub.X[:, 0].tolist() == [6, 8, 10, 0, 2]


def test_checkpoint_path_hit_skips_loading_and_cli_writes_npy_and_index(fake_root, tmp_path, monkeypatch):
    import importlib
    import json

    models = importlib.import_module("workbench.models")
    loads = {"n": 0}

    def fake_load_encoder(path_or_state, map_location="cpu"):
        loads["n"] += 1
        enc = Probe3()
        state = torch.load(path_or_state, map_location=map_location, weights_only=True)
        enc.load_state_dict(state)
        return enc, {"name": "probe3", "sample_rate": SR, "clip_samples": CLIP, "out_dim": 3}

    monkeypatch.setattr(models, "load_encoder", fake_load_encoder, raising=False)
    ckpt = tmp_path / "enc.pt"
    torch.save(Probe3().state_dict(), ckpt)
    cache = tmp_path / "cache"
    a = embed.extract(ckpt, TASKS["nsynth_pitch"], "test", root=fake_root, cache_dir=cache, progress=False)
    b = embed.extract(str(ckpt), TASKS["nsynth_pitch"], "test", root=fake_root, cache_dir=cache, progress=False)
    assert loads["n"] == 1 and b.meta["cache_hit"]
    np.testing.assert_array_equal(a.X, b.X)

    out = tmp_path / "out"
    assert embed.main(["--checkpoint", str(ckpt), "--task", "nsynth_pitch", "--split", "test", "train",
                       "--out", str(out), "--root", str(fake_root), "--cache-dir", str(cache)]) == 0
    X = np.load(out / "nsynth_pitch_test.npy")
    index = pd.read_csv(out / "nsynth_pitch_test.csv", dtype={"target": str})
    np.testing.assert_array_equal(X, a.X)
    assert index["id"].tolist() == ["a", "a", "b", "c", "c", "c"]
    assert index["track_index"].tolist() == [0, 0, 1, 2, 2, 2]
    assert [json.loads(t) for t in index["target"]] == [10, 10, 11, 12, 12, 12]
    assert np.load(out / "nsynth_pitch_train.npy").shape == (2, 3)
