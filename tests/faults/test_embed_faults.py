"""Embedding and probing under faults: changed audio, SIGKILL and full disk mid-split, NaN encoders,
bad settings, a one-class training split, unreadable tracks recorded with the results."""

from __future__ import annotations

import errno
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from faultkit import KILL_AFTER, SR, NaNEncoder, StatsEncoder, noise, run_child, write

from workbench import audio, data, embed, probe
from workbench.data.tasks import ProbeSpec, Task
from workbench.metrics import MetricWarning

N_TRACKS = 7
LENGTHS = [2000 + 500 * i for i in range(N_TRACKS)]  # 2 .. 5 chunks of 1000 samples


def stats(x: np.ndarray, clip: int = StatsEncoder.clip_samples) -> np.ndarray:
    """StatsEncoder's embeddings, computed independently in numpy."""
    if len(x) < clip:
        x = np.pad(x, (0, clip - len(x)))
    chunks = x[: (len(x) // clip) * clip].reshape(-1, clip)
    return np.stack([chunks.mean(1), chunks.std(1, ddof=1), chunks[:, 0], chunks[:, -1]], 1)


def n_chunks(length: int, clip: int = StatsEncoder.clip_samples) -> int:
    return max(1, length // clip)


@pytest.fixture
def pool(tmp_path):
    """A `folder` data set of N_TRACKS tracks (no labels: every split is unlabeled audio)."""
    root = tmp_path / "pool"
    for i, n in enumerate(LENGTHS):
        write(root / f"t{i}.wav", noise(n, seed=i), subtype="FLOAT")
    data._build.cache_clear()
    return root


def split_of(root):
    df = data.manifest("folder", root)
    return df[df["split"] == "train"].reset_index(drop=True)


def assert_correct(emb, root):
    rows = split_of(root)
    assert emb.ids == rows["id"].tolist()
    for i, p in enumerate(rows["path"]):
        np.testing.assert_allclose(emb.X[emb.track_index == i], stats(audio.read(p, SR)), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- changed audio

@pytest.mark.parametrize("racy", [False, True], ids=["old-file", "racy-same-size-same-mtime"])
def test_overwritten_track_is_embedded_again_and_only_it(pool, tmp_path, racy):
    if not racy:
        for p in pool.iterdir():
            t = time.time() - 3600
            os.utime(p, (t, t))
    enc = StatsEncoder()
    first = embed.extract(enc, "folder", "train", root=pool, cache_dir=tmp_path / "emb", progress=False)
    rows = split_of(pool)
    target = Path(rows["path"][1])
    before = os.stat(target)
    write(target, noise(len(audio.read(target, SR)), seed=77), subtype="FLOAT")  # same size, other audio
    if racy:
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    enc.chunks = 0
    second = embed.extract(enc, "folder", "train", root=pool, cache_dir=tmp_path / "emb", progress=False)
    assert not second.meta["cache_hit"] and second.meta["reused_tracks"] == len(rows) - 1
    assert enc.chunks == n_chunks(len(audio.read(target, SR)))  # only the changed track was encoded
    assert_correct(second, pool)
    assert not np.allclose(first.X[first.track_index == 1], second.X[second.track_index == 1])
    enc.chunks = 0
    third = embed.extract(enc, "folder", "train", root=pool, cache_dir=tmp_path / "emb", progress=False)
    assert third.meta["cache_hit"] and enc.chunks == 0


# ---------------------------------------------------------------- SIGKILL and full disk mid-split

CHILD = KILL_AFTER + """
from workbench import embed
from faultkit import StatsEncoder
embed.SHARD_TRACKS = 2
kill_after(embed, {fn!r}, {n})
embed.extract(StatsEncoder(), "folder", "train", root={root!r}, cache_dir={cache!r}, progress=False)
print("NOT KILLED")
"""


@pytest.mark.parametrize("fn,n,kept", [("_encode_rows", 3, 4), ("_write_entry", 2, 2)],
                         ids=["mid-step", "mid-shard-write"])
def test_sigkill_during_embed_resumes_from_the_saved_tracks(pool, tmp_path, fn, n, kept):
    cache = tmp_path / "emb"
    rows = split_of(pool)
    assert len(rows) >= 5, "the fixture must span more than two shards of 2 tracks"
    proc = run_child(CHILD.format(fn=fn, n=n, root=str(pool), cache=str(cache)))
    assert proc.returncode == -9 and "NOT KILLED" not in proc.stdout, proc.stderr
    enc = StatsEncoder()
    emb = embed.extract(enc, "folder", "train", root=pool, cache_dir=cache, progress=False)
    lengths = [len(audio.read(p, SR)) for p in rows["path"]]
    assert emb.meta["reused_tracks"] == kept
    assert enc.chunks == sum(n_chunks(n) for n in lengths[kept:])
    assert_correct(emb, pool)
    assert not list(cache.glob("*.parts"))  # progress shards are dropped once the entry is complete


def test_two_embeds_at_once_on_one_cache_both_finish_correctly(pool, tmp_path):
    import subprocess
    import sys

    from faultkit import child_env

    cache = tmp_path / "emb"
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
import faultkit
from workbench import embed
embed.SHARD_TRACKS = 1
class Slow(faultkit.StatsEncoder):
    def forward(self, x):
        time.sleep(0.05)
        return super().forward(x)
Slow.__qualname__, Slow.__module__ = "StatsEncoder", "faultkit"  # the parent encoder's cache key
emb = embed.extract(Slow(), "folder", "train", root={str(pool)!r}, cache_dir={str(cache)!r}, progress=False)
print("tracks", emb.n_tracks)
"""
    procs = [subprocess.Popen([sys.executable, "-c", script], env=child_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in results]
    assert all(f"tracks {len(split_of(pool))}" in o for o, _ in results)
    enc = StatsEncoder()
    emb = embed.extract(enc, "folder", "train", root=pool, cache_dir=cache, progress=False)
    assert emb.meta["cache_hit"] and enc.chunks == 0
    assert_correct(emb, pool)


def test_full_disk_during_embed_returns_the_embeddings_and_keeps_the_progress(pool, tmp_path, monkeypatch):
    monkeypatch.setattr(embed, "SHARD_TRACKS", 2)
    original = embed._write_entry
    stems = []

    def full_for_the_entry(stem, X, index):
        if not stem.parent.name.endswith(embed.PARTS_SUFFIX):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        stems.append(stem)
        original(stem, X, index)

    monkeypatch.setattr(embed, "_write_entry", full_for_the_entry)
    with pytest.warns(RuntimeWarning, match="could not save the embeddings.*No space left"):
        emb = embed.extract(StatsEncoder(), "folder", "train", root=pool, cache_dir=tmp_path / "emb",
                            progress=False)
    assert_correct(emb, pool)
    assert len(stems) >= 2
    monkeypatch.setattr(embed, "_write_entry", original)
    enc = StatsEncoder()
    again = embed.extract(enc, "folder", "train", root=pool, cache_dir=tmp_path / "emb", progress=False)
    assert enc.chunks == 0 and again.meta["reused_tracks"] == len(split_of(pool))  # nothing recomputed
    assert_correct(again, pool)


# ---------------------------------------------------------------- wrong results refused

def test_nan_embeddings_are_refused_naming_the_checkpoint_and_never_cached(pool, tmp_path, monkeypatch):
    import importlib

    models = importlib.import_module("workbench.models")
    monkeypatch.setattr(models, "load_encoder", lambda p, map_location="cpu": (NaNEncoder(), {"name": "nan"}),
                        raising=False)
    ckpt = tmp_path / "run" / "last.ckpt"
    ckpt.parent.mkdir()
    torch.save({"state_dict": {}}, ckpt)
    with pytest.raises(embed.EmbeddingError, match=f"{ckpt}: the encoder returned NaN/inf embeddings"):
        embed.extract(str(ckpt), "folder", "train", root=pool, cache_dir=tmp_path / "emb", progress=False)
    assert not list((tmp_path / "emb").rglob("*.json"))  # no entry, no progress shard


def test_probe_refuses_non_finite_embeddings_naming_their_checkpoint():
    X = np.ones((6, 2), np.float32)
    X[2, 1] = np.inf
    emb = embed.Embeddings(X, np.arange(6), list("abcdef"), np.array([0, 1] * 3), {"checkpoint": "runs/x/last.ckpt"})
    task = Task("toy", "toy", "multiclass", ["a", "b"], ["accuracy"], ProbeSpec(None, 0.0))
    with pytest.raises(ValueError, match="from runs/x/last.ckpt: 1 of 6 chunks hold NaN/inf"):
        probe.train_probe(emb, emb, task, seed=0)


@pytest.mark.parametrize("field,value", [("sample_rate", 0), ("sample_rate", -8000), ("clip_samples", 0),
                                         ("hop", -1), ("max_chunks", 0)])
def test_embedding_settings_must_be_positive(pool, tmp_path, field, value):
    with pytest.raises(ValueError, match=f"{field} must be a positive whole number"):
        embed.extract(StatsEncoder(), "folder", "train", root=pool, cache_dir=tmp_path / "emb", progress=False,
                      **{field: value})
    assert not (tmp_path / "emb").exists()  # refused before anything is computed or recorded


def _emb(targets):
    targets = np.asarray(targets)
    X = np.random.default_rng(0).standard_normal((len(targets), 3)).astype(np.float32)
    return embed.Embeddings(X, np.arange(len(targets)), [str(i) for i in range(len(targets))], targets)


def test_one_class_training_split_is_refused():
    task = Task("toy", "toy", "multiclass", ["a", "b", "c"], ["accuracy"], ProbeSpec(None, 0.0))
    with pytest.raises(ValueError, match="training split holds a single class \\('b'"):
        probe.train_probe(_emb([1, 1, 1, 1]), _emb([1, 0]), task, seed=0)


def test_constant_tag_columns_warn_and_all_constant_is_refused():
    task = Task("tags", "toy", "multilabel", ["x", "y"], ["roc_auc"], ProbeSpec(None, 0.0))
    all_constant = np.array([[1, 0]] * 4, np.float32)
    with pytest.raises(ValueError, match="every tag column is constant"):
        probe.train_probe(_emb(all_constant), _emb(all_constant[:2]), task, seed=0)
    one_constant = np.array([[1, 0], [0, 0], [1, 0], [0, 0]], np.float32)
    with pytest.warns(MetricWarning, match="1 of 2 tag column\\(s\\) are constant.*\\['y'\\]"):
        probe.train_probe(_emb(one_constant), _emb(one_constant[:2]), task, seed=0, max_epochs=2)


# ---------------------------------------------------------------- probe: skipped tracks and saved progress

@pytest.fixture
def loud_quiet(tmp_path, monkeypatch):
    """Two classes told apart by loudness (StatsEncoder's std), one unreadable training track."""
    root = tmp_path / "lq"
    rows = []
    for split, n in (("train", 8), ("valid", 4), ("test", 4)):
        for i in range(n):
            c = i % 2
            p = write(root / f"{split}{i}.wav", (0.05 + 0.4 * c) * noise(2000, seed=100 + i) / 0.2, subtype="FLOAT")
            rows.append({"id": f"{split}{i}", "path": str(p), "split": split, "target": c})
    (root / "broken.wav").write_text("not audio")
    rows.append({"id": "broken", "path": str(root / "broken.wav"), "split": "train", "target": 0})
    df = pd.DataFrame(rows)
    monkeypatch.setattr(data, "manifest", lambda name, root=None: df.copy())
    task = Task("lq", "nsynth", "multiclass", ["quiet", "loud"], ["accuracy"], ProbeSpec(None, 0.0))
    return task, root


def test_probe_records_the_skipped_track_with_its_results(loud_quiet, tmp_path):
    task, root = loud_quiet
    with pytest.warns(audio.AudioWarning, match="broken.wav"):
        recs = probe.probe_task(StatsEncoder(), task, seeds=(0,), root=root, cache_dir=tmp_path / "emb",
                                probe_kwargs={"lr": 1e-2, "max_epochs": 60}, progress=False)
    assert recs[0]["n_train_tracks"] == 8
    assert list(recs[0]["skipped"]) == ["train"]
    assert "broken.wav" in recs[0]["skipped"]["train"]["broken"]
    assert recs[0]["metrics"]["accuracy"] == 1.0


def test_probe_cli_saves_each_finished_task_before_the_next(loud_quiet, tmp_path, monkeypatch):
    task, root = loud_quiet
    real = probe.probe_task
    calls = []

    def second_crashes(*a, **k):
        calls.append(a[1])
        if len(calls) == 2:
            raise RuntimeError("simulated crash in the second task")
        return real(*a, **{**k, "progress": False})

    monkeypatch.setattr(probe, "probe_task", second_crashes)
    monkeypatch.setattr(data, "task", lambda name, root=None: task)
    ckpt = tmp_path / "enc.pt"
    torch.save({}, ckpt)
    import importlib

    models = importlib.import_module("workbench.models")
    monkeypatch.setattr(models, "load_encoder", lambda p, map_location="cpu": (StatsEncoder(), {"name": "stats"}),
                        raising=False)
    out = tmp_path / "res"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="simulated crash"):
            probe.main(["--checkpoint", str(ckpt), "--task", "nsynth_pitch", "nsynth_instrument", "--seeds", "0",
                        "--root", str(root), "--cache-dir", str(tmp_path / "emb"), "--out", str(out)])
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] is False and saved["pending"] == [{"checkpoint": str(ckpt), "task": "nsynth_instrument"}]
    assert len(saved["records"]) == 1 and saved["records"][0]["skipped"]["train"]
    assert list(saved["skipped"]) == [f"{tmp_path.name}/lq"]  # model name: the checkpoint's folder
