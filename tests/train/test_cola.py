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
    # the original COLA recipe: LayerNorm + tanh, W ~ N(0, 0.05^2), no normalisation, T = 1
    cola = C.COLAModule(C.resolve_cola_config("smoke", head="cola", normalize=False, bilinear_init_std=0.05,
                                              temperature=1.0).to_dict())
    z = cola(torch.randn(3, 1, C.SMOKE_CLIP_SAMPLES))
    assert z.shape == (3, 32) and bool((z.abs() < 1).all())
    w = cola.similarity.weight.detach()
    assert w.shape == (32, 32) and abs(w.mean().item()) < 0.01 and w.std().item() == pytest.approx(0.05, rel=0.1)
    ident = C.COLAModule(C.resolve_cola_config("smoke", bilinear_init_std=None, head="msa", proj_dim=8).to_dict())
    assert torch.equal(ident.similarity.weight.detach(), torch.eye(8))
    assert ident(torch.randn(2, 1, C.SMOKE_CLIP_SAMPLES)).shape == (2, 8)
    with pytest.raises(ValueError, match="cola"):
        C.projection_head("cola", 32, 16)
    # the default (the poster's linear projection): unit-norm projections, W = identity, T = 0.1
    default = C.COLAModule(C.resolve_cola_config("smoke").to_dict())
    z = default(torch.randn(3, 1, C.SMOKE_CLIP_SAMPLES))
    assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.equal(default.similarity.weight.detach(), torch.eye(32)) and default.cfg.temperature == 0.1


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
    monkeypatch.setattr(C.COLAModule, "pair_loss", lambda self, a, p, silent=None: a.sum() * float("nan"))
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


# --------------------------------------------------------------------------- the poster's loss
def _bilinear(a, W, p):
    return sum(a[k] * W[k][m] * p[m] for k in range(len(a)) for m in range(len(p)))


def test_msa_loss_by_hand_with_a_silent_centroid():
    from workbench.losses import msa_contrastive_loss

    W = [[1.0, 0.5], [-0.25, 2.0]]
    T = 0.5
    a = [[1.0, 0.0], [0.5, -1.0], [0.0, 2.0], [1.0, 1.0]]
    p = [[0.5, 1.0], [1.0, -1.0], [-1.0, 0.5], [0.0, 0.0]]
    silent = [False, True, False, True]
    # S* = the non-silent positives p0, p2 and the centroid of the silent ones (p1 + p3) / 2
    c = [(p[1][0] + p[3][0]) / 2, (p[1][1] + p[3][1]) / 2]
    s_star = [p[0], p[2], c]
    target = {0: 0, 1: 2, 2: 1, 3: 2}  # an anchor whose positive is silent targets the centroid
    expected = 0.0
    for i in range(4):
        scores = [_bilinear(a[i], W, z) / T for z in s_star]
        expected += -(scores[target[i]] - math.log(sum(math.exp(x) for x in scores)))
    expected /= 4
    got = msa_contrastive_loss(torch.tensor(a), torch.tensor(p), torch.tensor(W), torch.tensor(silent),
                               temperature=T)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # centroid off: every positive is its own candidate (the silent false positives stay)
    plain = 0.0
    for i in range(4):
        scores = [_bilinear(a[i], W, z) / T for z in p]
        plain += -(scores[i] - math.log(sum(math.exp(x) for x in scores)))
    off = msa_contrastive_loss(torch.tensor(a), torch.tensor(p), torch.tensor(W), torch.tensor(silent),
                               temperature=T, centroid=False)
    assert off.item() == pytest.approx(plain / 4, rel=1e-6) and off.item() != pytest.approx(expected, rel=1e-3)


def test_msa_loss_is_nt_xent_when_nothing_is_silent():
    """W = I on L2-normalised projections, nothing silent: the anchor-to-positive NT-Xent (InfoNCE)."""
    from workbench.losses import msa_contrastive_loss

    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(6, 5, generator=g), dim=1)
    p = torch.nn.functional.normalize(torch.randn(6, 5, generator=g), dim=1)
    tau = 0.1
    ref = 0.0
    for i in range(6):  # reference: -log( exp(cos(a_i, p_i)/tau) / sum_j exp(cos(a_i, p_j)/tau) )
        sims = [float(torch.dot(a[i], p[j])) / tau for j in range(6)]
        ref += -(sims[i] - math.log(sum(math.exp(x) for x in sims)))
    ref /= 6
    for silent in (None, torch.zeros(6, dtype=torch.bool)):
        got = msa_contrastive_loss(a, p, torch.eye(5), silent, temperature=tau)
        assert got.item() == pytest.approx(ref, rel=1e-5)


def test_module_loss_and_accuracy_use_the_silent_centroid():
    module = C.COLAModule(C.resolve_cola_config("smoke", proj_dim=2, temperature=0.5).to_dict())
    W = torch.tensor([[1.0, 0.5], [-0.25, 2.0]])
    with torch.no_grad():
        module.similarity.weight.copy_(W)
    a = torch.tensor([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]])
    p = torch.tensor([[0.5, 1.0], [0.0, 0.0], [0.0, 0.0]])
    silent = torch.tensor([False, True, True])
    from workbench.losses import msa_contrastive_loss

    assert module.pair_loss(a, p, silent).item() == pytest.approx(
        msa_contrastive_loss(a, p, W, silent, temperature=0.5).item(), rel=1e-6)
    # two identical silent positives collapse into one candidate: the loss differs from plain COLA's
    assert module.pair_loss(a, p, silent).item() != pytest.approx(module.pair_loss(a, p).item(), rel=1e-3)


# --------------------------------------------------------------------------- the poster's data
def test_silent_stem_crops_are_replaced_by_zeros_and_marked(tmp_path):
    root = _fma_fixture(tmp_path)
    pool = stem_pool("fma_medium", root, splits=ALL_SPLITS)
    ds = MSAPairDataset(pool, FileReader(SR), clip_samples=1600, max_shift=4000, silence_db=-50.0,
                        silence="replace")
    seen = {True: 0, False: 0}
    for i in range(40):
        item = ds.pair(i % len(pool), np.random.default_rng(i), stem="bass" if i % 2 else "melody")
        name = pool.stem_names[item["stem_index"]]
        seen[item["silent"]] += 1
        if name == "bass":  # digital silence: always replaced and marked, never redrawn
            assert item["silent"] and not item["stem"].any()
        if item["silent"]:
            assert not item["stem"].any() and rms_db(read(pool.frame["stems"][item["sample_id"]][name], SR)[
                item["stem_offset"]:item["stem_offset"] + 1600]) < -50.0
        else:
            assert rms_db(item["stem"].numpy()) >= -50.0
    assert seen[True] > 0 and seen[False] > 0  # melody: silent first half, noise second half
    # "skip" (the departure) never returns a silent positive; "keep" returns the quiet crop as it is
    skip = MSAPairDataset(pool, FileReader(SR), clip_samples=1600, max_shift=4000, silence="skip")
    assert not any(skip.pair(i % 2, np.random.default_rng(i))["silent"] for i in range(20))
    keep = MSAPairDataset(pool, FileReader(SR), clip_samples=1600, max_shift=4000, silence="keep")
    item = keep.pair(0, np.random.default_rng(0), stem="drums")
    assert not item["silent"] and round(float(item["stem"][0]) / RAMP_STEP) == item["stem_offset"]


def test_time_shift_off_aligns_the_crops_and_cola_pairs_are_mix_crops(tmp_path):
    from workbench.data.msa import SOURCE_MASK, SOURCE_MIX

    root = _fma_fixture(tmp_path)
    pool = stem_pool("fma_medium", root, splits=ALL_SPLITS)
    aligned = MSAPairDataset(pool, FileReader(SR), clip_samples=1600, min_shift=800, max_shift=4000,
                             time_shift=False)
    for i in range(10):
        item = aligned.pair(0, np.random.default_rng(i), stem="drums")
        assert item["stem_offset"] == item["mix_offset"] == round(float(item["stem"][0]) / RAMP_STEP)
    mix = read(pool.frame["path"][0], SR)
    cola = MSAPairDataset(pool, FileReader(SR), clip_samples=1600, min_shift=800, max_shift=4000, pairs="mix")
    for i in range(6):
        item = cola.pair(0, np.random.default_rng(i))
        s, t = item["stem_offset"], item["mix_offset"]
        assert item["stem_index"] == SOURCE_MIX and 800 <= abs(s - t) <= 4000
        np.testing.assert_allclose(item["stem"].numpy(), mix[s:s + 1600], atol=1e-6)
        np.testing.assert_allclose(item["mix"].numpy(), mix[t:t + 1600], atol=1e-6)
    masked = MSAPairDataset(pool, FileReader(SR), clip_samples=1600, max_shift=4000, pairs="mask")
    item = masked.pair(0, np.random.default_rng(0))
    s = item["stem_offset"]
    crop = mix[s:s + 1600]
    assert item["stem_index"] == SOURCE_MASK
    # a soft mask in [0, 1] only removes energy, and is not the identity
    assert 0 < np.sum(item["stem"].numpy() ** 2) < np.sum(crop ** 2)


def test_random_soft_mask_family():
    from workbench.data.msa import random_soft_mask

    x = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    # a one-cell grid is a constant gain drawn from U[0, 1]: the output is that multiple of x
    y = random_soft_mask(x, np.random.default_rng(1), bands=1, frames=1)
    gain = np.random.default_rng(1).random()
    np.testing.assert_allclose(y[600:-600], gain * x[600:-600], atol=1e-4)
    # two bands, one time cell: a gain ramping linearly from g0 at DC to g1 at Nyquist
    g0, g1 = np.random.default_rng(2).random(2)
    z = random_soft_mask(x, np.random.default_rng(2), bands=2, frames=1)
    ratio = np.abs(np.fft.rfft(z[600:-600])) / (np.abs(np.fft.rfft(x[600:-600])) + 1e-9)
    edge = len(ratio) // 20
    assert np.median(ratio[1:edge]) == pytest.approx(g0 + (g1 - g0) * 0.025, abs=0.05)
    assert np.median(ratio[-edge:]) == pytest.approx(g1 - (g1 - g0) * 0.025, abs=0.05)
    assert z.shape == x.shape


def test_homogeneous_batches_hold_one_source_in_even_proportions(tmp_path):
    pool = stem_pool("fma_medium", _fma_fixture(tmp_path), splits=ALL_SPLITS)
    batches = list(MSABatchSampler(pool, batch_size=4, steps=400, seed=3, stem_sampling="batch"))
    kinds = [b[0][1] for b in batches]
    assert all(len({s for _, s in b}) == 1 for b in batches)
    counts = pd.Series(kinds).value_counts(normalize=True)
    assert set(counts.index) == set(pool.stem_names)
    for share in counts:  # one stem per batch, uniform over the 3 stems: 1/3 each, within 4 sd
        assert share == pytest.approx(1 / 3, abs=4 * math.sqrt((1 / 3) * (2 / 3) / 400))
    mixed = list(MSABatchSampler(pool, batch_size=4, steps=5, seed=3, stem_sampling="example"))
    assert all(isinstance(r, int) for b in mixed for r in b)  # the dataset draws a stem per pair


# --------------------------------------------------------------------------- the defects behind "stayed at chance"
def _sines_and_noise(n=8000):
    t = torch.arange(n) / SR
    waves = [0.3 * torch.sin(2 * math.pi * f * t) for f in (110, 220, 440, 880)]
    return torch.stack(waves + [0.3 * torch.randn(n, generator=torch.Generator().manual_seed(0))]).unsqueeze(1)


def _cosines(z):
    z = torch.nn.functional.normalize(z, dim=1)
    return z @ z.T


def test_untrained_encoder_tells_a_sine_from_noise_once_its_batchnorm_is_calibrated():
    from workbench.models.cola import COLAEncoder

    torch.manual_seed(0)
    enc = COLAEncoder(n_mels=32, clip_samples=8000)
    x = _sines_and_noise()
    with torch.no_grad():
        # the defect: BatchNorm running stats 0/1 at init vs tiny activations (depthwise convs,
        # fan-out init): in eval mode every input gives the same embedding
        assert _cosines(enc.eval()(x)).min() > 0.999
        calibrated = C.calibrate_batchnorm(enc, [0.3 * torch.randn(8, 1, 8000), x])
        cos = _cosines(calibrated(x))
    assert not calibrated.training
    assert cos[:4, 4].max() < 0.9  # every sine is far from the noise


def test_default_head_starts_near_chance_loss_where_the_cola_head_starts_saturated():
    """COLA's LayerNorm+tanh (512-d) with W ~ N(0, 0.05²) and T = 1 gives logits of std ~10 at
    init: the first steps only shrink W. The default (unit projections, W = I, T = 0.1) starts
    at about log B."""
    torch.manual_seed(0)
    b = 16
    mix, stem = 0.3 * torch.randn(b, 4000), 0.3 * torch.randn(b, 4000)
    kw = dict(encoder={"name": "cola", "n_mels": 32, "hop_s": 0.02, "out_dim": 512})

    def first_loss(**over):
        module = C.COLAModule(C.resolve_cola_config("smoke", **kw, **over).to_dict()).train()
        a, p = module.embed_pairs({"mix": mix, "stem": stem})
        return module.pair_loss(a, p).item(), module.similarity(a, p).std().item()

    loss, spread = first_loss()
    assert abs(loss - math.log(b)) < 1.0 and spread < 5
    cola_loss, cola_spread = first_loss(head="cola", normalize=False, bilinear_init_std=0.05, temperature=1.0)
    assert cola_spread > 3 and cola_loss > 2 * math.log(b)


def test_random_init_checkpoint_is_read_by_load_encoder_and_separates_inputs(tmp_path, embedded):
    from workbench.models import load_encoder

    cfg = C.resolve_cola_config("smoke", pool_splits=ALL_SPLITS, runs_dir=str(tmp_path / "runs"))
    path = C.random_init_checkpoint(cfg, tmp_path / "random.ckpt", calibration_batches=2)
    enc, meta = load_encoder(str(path))
    assert meta["clip_samples"] == C.SMOKE_CLIP_SAMPLES
    with torch.no_grad():
        cos = _cosines(enc(_sines_and_noise(C.SMOKE_CLIP_SAMPLES)))
    assert cos[:4, 4].max() < 0.9


def test_every_claim_condition_resolves_and_gives_a_finite_loss(embedded):
    from pathlib import Path

    from workbench.claims import registry

    spec = yaml.safe_load((Path(__file__).parents[2] / "experiments" / "msa_claims.yaml").read_text())
    assert registry.MSA_VARIANTS == spec["conditions"]  # the registry reads this file
    for claim in spec["claims"].values():
        assert set(claim["compare"]) <= set(spec["conditions"])
    torch.manual_seed(0)
    for name, overrides in spec["conditions"].items():
        cfg = C.resolve_cola_config("smoke", pool_splits=ALL_SPLITS, steps=1, **overrides)
        batch = next(iter(C.build_msa_dataloader(cfg)))
        if cfg.pairs == "source" and cfg.stem_sampling == "batch":
            assert len(set(batch["stem_index"].tolist())) == 1, name
        if cfg.pairs != "source":
            assert (batch["stem_index"] < 0).all(), name
        if not cfg.time_shift:
            assert torch.equal(batch["mix_offset"], batch["stem_offset"]), name
        module = C.COLAModule(cfg.to_dict())
        a, p = module.embed_pairs(batch)
        assert torch.isfinite(module.pair_loss(a, p, batch["silent"])), name
