"""COLA with music source association (MSA): pair dataset, loss, config, smoke training run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml

from workbench import data as D
from workbench import runs
from workbench.audio import AudioError, read
from workbench.config import ConfigError
from workbench.data.msa import MSABatchSampler, MSAPairDataset, draw_offsets, rms_db, stem_pool
from workbench.data.views import FileReader
from workbench.train import cola as C

SR = 16000
ALL_SPLITS = ["train", "valid", "test"]
RAMP_STEP = 2.0**-17  # ramp stem: sample n holds n * 2^-17 (exact in float32 for n < 2^24)


@pytest.fixture(scope="module")
def embedded():
    """The tiny embedded benchmark (rendered once into the test cache)."""
    from workbench.data.roots import embedded_dir

    return embedded_dir("tiny", 0)


def _fma_fixture(root, stems: bool = True, seconds: float = 3.0):
    """Two pieces in the fma_medium layout: mp3 mixes of noise; wav stems:
    ``drums`` = a ramp whose value encodes its sample index, ``bass`` = digital silence,
    ``melody`` = silent first half, noise second half."""
    n = int(seconds * SR)
    rng = np.random.default_rng(0)
    for track in ("000002", "000005"):
        folder = root / "fma_medium" / "000"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{track}.mp3", (0.3 * rng.standard_normal(n)).astype(np.float32), SR)
        if stems:
            d = folder / f"{track}.stems"
            d.mkdir()
            sf.write(d / "drums.wav", (np.arange(n) * RAMP_STEP).astype(np.float32), SR, subtype="FLOAT")
            sf.write(d / "bass.wav", np.zeros(n, np.float32), SR, subtype="FLOAT")
            melody = np.zeros(n, np.float32)
            melody[n // 2:] = 0.3 * rng.standard_normal(n - n // 2)
            sf.write(d / "melody.wav", melody, SR, subtype="FLOAT")
    return root


# --------------------------------------------------------------------------- pairs
def test_pairs_are_crops_at_the_drawn_offsets_with_the_configured_shift(embedded):
    pool = stem_pool("fma_medium", splits=ALL_SPLITS)
    assert set(pool.stem_names) == {"bass", "drums", "melody", "accompaniment"}
    clip, shift = 4000, 8000  # 0.25 s crops, the stem exactly 0.5 s before or after the mix
    ds = MSAPairDataset(pool, FileReader(SR), clip_samples=clip, min_shift=shift, max_shift=shift, silence_db=None)
    full = {}

    def whole(path):
        if path not in full:
            full[path] = read(path, SR)
        return full[path]

    signs = set()
    for i in range(12):
        row = i % len(pool)
        item = ds.pair(row, np.random.default_rng(i))
        t, s = item["mix_offset"], item["stem_offset"]
        assert abs(s - t) == shift
        signs.add(np.sign(s - t))
        mix_path = pool.frame["path"][row]
        stem_path = pool.frame["stems"][row][pool.stem_names[item["stem_index"]]]
        length = min(len(whole(mix_path)), len(whole(stem_path)))
        assert 0 <= t <= length - clip and 0 <= s <= length - clip
        np.testing.assert_allclose(item["mix"].numpy(), whole(mix_path)[t:t + clip], atol=1e-6)
        np.testing.assert_allclose(item["stem"].numpy(), whole(stem_path)[s:s + clip], atol=1e-6)
        # the mix is the sum of its stems (up to mp3 coding): the crop is of the same piece and time
        stems_sum = sum(whole(p)[t:t + clip] for p in pool.frame["stems"][row].values())
        assert np.corrcoef(stems_sum, item["mix"].numpy())[0, 1] > 0.9
    assert signs == {-1, 1}


def test_decoded_cache_gives_the_same_pairs_as_the_files(embedded):
    from workbench.data.cache import prepare, reader_for
    from workbench.data.views import CachedReader

    prepare("fma_medium", sample_rate=SR, progress=False)
    cache = reader_for("fma_medium", None, SR)
    pool = stem_pool("fma_medium", splits=ALL_SPLITS)
    assert all(cache.has(p) for d in pool.frame["stems"] for p in d.values())  # stems are cached too
    kw = dict(clip_samples=4000, min_shift=1000, max_shift=20000)
    from_files = MSAPairDataset(pool, FileReader(SR), **kw)
    from_cache = MSAPairDataset(pool, CachedReader(cache, SR), **kw)
    for i in range(6):
        a, b = from_files.pair(i % len(pool), np.random.default_rng(i)), from_cache.pair(i % len(pool),
                                                                                         np.random.default_rng(i))
        assert (a["mix_offset"], a["stem_offset"], a["stem_index"]) == (b["mix_offset"], b["stem_offset"],
                                                                        b["stem_index"])
        for key in ("mix", "stem"):  # int16 storage: within a quantisation step or two
            np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), atol=1e-4)


def test_draw_offsets_respects_the_shift_range_and_the_piece():
    rng = np.random.default_rng(0)
    clip, lo, hi, length = 100, 30, 70, 1000
    deltas = []
    for _ in range(2000):
        t, d = draw_offsets(rng, length, clip, lo, hi)
        assert lo <= abs(d) <= hi
        assert 0 <= t <= length - clip and 0 <= t + d <= length - clip
        deltas.append(d)
    deltas = np.array(deltas)
    assert (deltas < 0).mean() == pytest.approx(0.5, abs=0.05)
    assert set(np.abs(deltas)) == set(range(lo, hi + 1))  # every magnitude in range is drawn
    # a piece with less slack than the shift: |delta| is clamped to length - clip
    for _ in range(200):
        t, d = draw_offsets(rng, 150, clip, lo, hi)
        assert lo <= abs(d) <= 50 and 0 <= t <= 50 and 0 <= t + d <= 50
        t, d = draw_offsets(rng, 150, clip, 60, hi)  # even the minimum shift does not fit: the largest that does
        assert abs(d) == 50 and (t, t + d) in ((0, 50), (50, 0))
    assert draw_offsets(rng, 80, clip, lo, hi) == (0, 0)  # shorter than the crop
    with pytest.raises(ValueError, match="min_shift <= max_shift"):
        draw_offsets(rng, length, clip, 5, 2)


def test_ramp_stems_give_back_their_offsets_and_silent_stems_are_skipped(tmp_path):
    root = _fma_fixture(tmp_path)
    pool = stem_pool("fma_medium", root, splits=ALL_SPLITS)
    clip, silence = 1600, -50.0
    ds = MSAPairDataset(pool, FileReader(SR), clip_samples=clip, min_shift=800, max_shift=4000, silence_db=silence)
    chosen = []
    for i in range(60):
        item = ds.pair(i % len(pool), np.random.default_rng(i))
        name = pool.stem_names[item["stem_index"]]
        chosen.append(name)
        assert name != "bass"  # digital silence is never a positive
        stem = item["stem"].numpy().astype(np.float64)
        assert 10 * math.log10(np.mean(stem**2)) >= silence
        if name == "drums":  # the ramp's first sample is its own index in the file
            assert round(stem[0] / RAMP_STEP) == item["stem_offset"]
            assert np.allclose(np.diff(stem), RAMP_STEP)
        assert 800 <= abs(item["stem_offset"] - item["mix_offset"]) <= 4000
    assert {"drums", "melody"} <= set(chosen)
    # a source-targeted pool of only silent stems: a clear error, not silent positives
    silent = MSAPairDataset(stem_pool("fma_medium", root, splits=ALL_SPLITS, stems=["bass"]), FileReader(SR),
                            clip_samples=clip, max_shift=4000, silence_db=silence)
    with pytest.raises(AudioError, match="silence_db"):
        silent.pair(0, np.random.default_rng(0))


def test_rms_db_of_known_signals():
    assert rms_db(np.ones(100)) == pytest.approx(0.0, abs=1e-9)
    sine = np.sin(2 * np.pi * np.arange(SR) * 440 / SR)
    assert rms_db(sine) == pytest.approx(20 * math.log10(1 / math.sqrt(2)), abs=1e-3)
    assert rms_db(np.zeros(10)) < -150


def test_pool_without_stems_is_a_clear_error(tmp_path):
    root = _fma_fixture(tmp_path, stems=False)
    with pytest.raises(ValueError, match="MSA needs stems"):
        stem_pool("fma_medium", root, splits=ALL_SPLITS)
    cfg = C.resolve_cola_config("smoke", pool_root=str(root), runs_dir=str(tmp_path / "runs"))
    with pytest.raises(ValueError, match="MSA needs stems"):
        C.train_cola(cfg, progress=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    with pytest.raises(ValueError, match="MSA needs stems"):
        stem_pool("fma_medium", _fma_fixture(tmp_path / "b"), splits=ALL_SPLITS, stems=["vocals"])


def test_batch_sampler_one_stem_per_batch(tmp_path):
    pool = stem_pool("fma_medium", _fma_fixture(tmp_path), splits=ALL_SPLITS)
    batches = list(MSABatchSampler(pool, batch_size=5, steps=20, seed=1, stem_sampling="batch"))
    assert len(batches) == 20
    stems_seen = set()
    for batch in batches:
        assert len(batch) == 5 and len({s for _, s in batch}) == 1
        stems_seen.add(batch[0][1])
        assert all(s in pool.frame["stems"][r] for r, s in batch)
    assert stems_seen == set(pool.stem_names)
    rows = [b for b in MSABatchSampler(pool, batch_size=4, steps=3, seed=1)]
    assert all(isinstance(r, int) and 0 <= r < len(pool) for b in rows for r in b)
    # seeded: the same seed replays the batches; a resumed run (start_step) draws new ones
    def draws(**kw):
        return list(MSABatchSampler(pool, batch_size=6, steps=4, seed=1, stem_sampling="batch", **kw))

    assert draws() == draws() and draws(start_step=4) != draws()
    # a dataset item for (row, stem) uses that stem
    ds = MSAPairDataset(pool, FileReader(SR), clip_samples=800, max_shift=800)
    item = ds[(0, "drums")]
    assert pool.stem_names[item["stem_index"]] == "drums"


# --------------------------------------------------------------------------- loss
def test_pair_loss_is_cross_entropy_over_the_bilinear_scores():
    module = C.COLAModule(C.resolve_cola_config("smoke", head="msa", proj_dim=2, temperature=0.5).to_dict())
    W = [[1.0, 0.5], [-0.25, 2.0]]
    with torch.no_grad():
        module.similarity.weight.copy_(torch.tensor(W))
    a = [[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]]
    p = [[0.5, 1.0], [1.0, -1.0], [-1.0, 0.5]]
    expected = 0.0
    for i in range(3):
        scores = [sum(a[i][k] * W[k][m] * p[j][m] for k in range(2) for m in range(2)) / 0.5 for j in range(3)]
        expected += -(scores[i] - math.log(sum(math.exp(s) for s in scores)))
    expected /= 3
    loss = module.pair_loss(torch.tensor(a), torch.tensor(p))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # the positive is the same-index stem: permuting the stems changes the loss
    assert module.pair_loss(torch.tensor(a), torch.tensor(p)[[1, 2, 0]]).item() != pytest.approx(expected)


# --------------------------------------------------------------------------- config
def test_config_presets_and_validation():
    paper = C.resolve_cola_config("paper")
    assert (paper.batch_size, paper.lr, paper.steps, paper.lr_milestones, paper.lr_gamma) == (128, 1e-3, 10_000,
                                                                                              [5000], 0.5)
    assert (paper.sample_rate, paper.clip_samples, paper.max_shift_s) == (16000, 16000, 3.0)
    assert paper.encoder == {"name": "cola", "sample_rate": 16000, "clip_samples": 16000}
    assert C.resolve_cola_config("smoke", stems=["drums"]).name == "cola-msa-drums"
    for bad, match in [(dict(pool="nsynth_pitch"), "unlabelled"), (dict(pool="fma_mediun"), "did you mean"),
                       (dict(min_shift_s=2.0, max_shift_s=1.0), "min_shift_s"), (dict(batch_size=1), "negatives"),
                       (dict(stem_sampling="song"), "stem_sampling"), (dict(head="mlp"), "head"),
                       (dict(augment="bogus"), "augment"), (dict(lr_milestones=[0]), "lr_milestones"),
                       (dict(encoder={"name": "cola", "sample_rate": 8000}), "sample_rate"),
                       (dict(stems=[]), "stems"), (dict(bach_size=3), "batch_size"),
                       (dict(head="cola", proj_dim=16), "proj_dim"), (dict(bilinear_init_std=0.0), "bilinear")]:
        with pytest.raises(ConfigError, match=match):
            C.resolve_cola_config("smoke", **bad)


def test_heads_and_bilinear_initialisation():
    torch.manual_seed(0)
    cola = C.COLAModule(C.resolve_cola_config("smoke").to_dict())  # COLA: LayerNorm + tanh, W ~ N(0, 0.05^2)
    z = cola(torch.randn(3, 1, C.SMOKE_CLIP_SAMPLES))
    assert z.shape == (3, 32) and bool((z.abs() < 1).all())
    w = cola.similarity.weight.detach()
    assert w.shape == (32, 32) and abs(w.mean().item()) < 0.01 and w.std().item() == pytest.approx(0.05, rel=0.1)
    ident = C.COLAModule(C.resolve_cola_config("smoke", bilinear_init_std=None, head="msa", proj_dim=8).to_dict())
    assert torch.equal(ident.similarity.weight.detach(), torch.eye(8))
    assert ident(torch.randn(2, 1, C.SMOKE_CLIP_SAMPLES)).shape == (2, 8)
    with pytest.raises(ValueError, match="cola"):
        C.projection_head("cola", 32, 16)


# --------------------------------------------------------------------------- training
def test_smoke_run_writes_a_complete_run_directory_and_probes(tmp_path, embedded):
    from workbench.embed import extract
    from workbench.models import load_encoder

    cfg = C.resolve_cola_config("smoke", runs_dir=str(tmp_path / "runs"), pool_splits=ALL_SPLITS)
    run = C.train_cola(cfg, progress=False)
    assert runs.is_finished(run)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["pool"] == "fma_medium" and saved["max_shift_s"] == 1.0
    assert C.load_cola_config(run / "config.yaml") == cfg
    assert json.loads((run / "env.json").read_text())["packages"]["torch"].startswith("2.9.1")
    data = json.loads((run / "data.json").read_text())
    assert data["pool"]["synthetic"] is True and data["pool"]["stems"] == sorted(data["pool"]["stems"])
    pool_csv = pd.read_csv(run / "splits" / "msa_pool.csv", dtype={"id": str})
    assert len(pool_csv) == data["pool"]["pieces"] == len((run / "splits" / "pool_ids.txt").read_text().split())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == cfg.steps and metrics["s_per_step"] > 0
    csv = pd.read_csv(run / "metrics.csv")
    assert {"loss", "pair_accuracy", "lr"} <= set(csv.columns) and len(csv) == cfg.steps
    assert np.isfinite(csv["loss"]).all()
    ckpts = {p.name for p in (run / "checkpoints").iterdir()}
    assert {"step0000002.ckpt", "step0000004.ckpt", "last.ckpt"} <= ckpts
    # the checkpoint follows the encoder convention: load_encoder and extract read it unchanged
    raw = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert raw["hyper_parameters"]["config"]["encoder"]["name"] == "cola"
    enc, meta = load_encoder(str(run / "checkpoints" / "last.ckpt"))
    assert (meta["sample_rate"], meta["clip_samples"], meta["out_dim"]) == (16000, C.SMOKE_CLIP_SAMPLES, 32)
    trained = {k[len("encoder."):]: v for k, v in raw["state_dict"].items() if k.startswith("encoder.")}
    assert all(torch.equal(trained[k], v) for k, v in enc.state_dict().items())
    emb = extract(run / "checkpoints" / "last.ckpt", "nsynth_pitch", "test", max_chunks=1, progress=False,
                  cache_dir=tmp_path / "emb")
    assert emb.X.shape == (emb.n_tracks, 32) and np.isfinite(emb.X).all()
    assert emb.n_tracks == int((D.manifest("nsynth_pitch")["split"] == "test").sum())

    # resume an unfinished run: it continues from last.ckpt to the new step count
    (run / runs.FINISHED_MARKER).unlink()
    saved["steps"] = cfg.steps + 2
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    assert C.train_cola(resume=run, progress=False) == run
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["steps"] == cfg.steps + 2 and resumed["steps_run"] == 2
    with pytest.raises(runs.RunExistsError):
        C.train_cola(resume=run, progress=False)


def test_augmented_batch_homogeneous_run_and_non_finite_loss(tmp_path, embedded, monkeypatch):
    cfg = C.resolve_cola_config("smoke", runs_dir=str(tmp_path / "ok"), pool_splits=ALL_SPLITS, steps=2,
                                augment="semisupcon", stem_sampling="batch", head="linear")
    assert runs.is_finished(C.train_cola(cfg, progress=False))
    monkeypatch.setattr(C, "bilinear_contrastive_loss", lambda a, p, W, temperature: a.sum() * float("nan"))
    bad = C.resolve_cola_config("smoke", runs_dir=str(tmp_path / "nan"), pool_splits=ALL_SPLITS, steps=3)
    with pytest.raises(C.NonFiniteLossError, match="last good state"):
        C.train_cola(bad, progress=False)
    run = next((tmp_path / "nan").iterdir())
    assert (run / "checkpoints" / "last-good.ckpt").exists() and not runs.is_finished(run)


def test_cli_main_runs_a_smoke_training(tmp_path, embedded, capsys):
    assert C.main(["--scale", "smoke", "--no-progress", "steps=1", "checkpoint_every=1",
                   f"runs_dir={tmp_path / 'runs'}", "pool_splits=[train, valid, test]"]) == 0
    out = capsys.readouterr().out
    assert "run directory:" in out
    run = next((tmp_path / "runs").iterdir())
    assert runs.is_finished(run)
