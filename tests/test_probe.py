"""Probes: early stopping with the best state restored, standardisation, aggregation
policies, data-efficient subsets, save/load and a small end-to-end ``probe_task``."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch import nn

from workbench import data, metrics, probe as P
from workbench.data.tasks import ProbeSpec, Task
from workbench.embed import Embeddings

torch.set_num_threads(1)

BINARY = Task("toy2", "toy", "multiclass", ["a", "b"], ["accuracy"], ProbeSpec(256, 0.0))


def noisy_binary(n: int, seed: int, d: int = 32, flip: float = 0.3) -> Embeddings:
    """One informative dimension, 31 noise dimensions, 30 % flipped labels: a small
    training set is learnt quickly and then over-fitted."""
    r = np.random.default_rng(seed)
    y = r.integers(0, 2, n)
    X = r.normal(0, 1, (n, d)).astype(np.float32)
    X[:, 0] += 2 * y - 1
    y = np.where(r.random(n) < flip, 1 - y, y)
    return Embeddings(X, np.arange(n), [str(i) for i in range(n)], y)


def test_early_stopping_restores_the_best_validation_epoch():
    train, valid = noisy_binary(40, seed=1), noisy_binary(400, seed=2)
    snapshots, losses = {}, {}

    def on_epoch(epoch, probe, train_loss, valid_loss):
        snapshots[epoch] = copy.deepcopy(probe.state_dict())
        losses[epoch] = valid_loss

    patience = 5
    probe = P.train_probe(train, valid, BINARY, seed=0, lr=3e-3, batch_size=8, patience=patience,
                          max_epochs=500, on_epoch=on_epoch)
    best = min(losses, key=losses.get)
    last = max(losses)
    assert 1 < best < last, "the fixture must produce a validation loss that falls, then rises"
    assert losses[last] > losses[best]
    assert last == best + patience  # stopped after `patience` epochs without improvement
    assert probe.best_epoch == best
    state = probe.state_dict()
    for k, v in snapshots[best].items():
        assert torch.equal(state[k], v), k
    assert any(not torch.equal(state[k], v) for k, v in snapshots[last].items())
    # the returned probe's validation loss is the best one, recomputed independently
    with torch.no_grad():
        logits = probe.eval()(torch.from_numpy(valid.X))
        loss = nn.functional.cross_entropy(logits, torch.from_numpy(valid.targets)).item()
    assert loss == pytest.approx(losses[best], rel=1e-5)
    assert not probe.training


def test_standardisation_uses_training_statistics_and_seeds_are_deterministic():
    train, valid = noisy_binary(60, seed=3), noisy_binary(60, seed=4)
    train.X[:, 1] *= 100.0
    train.X[:, 2] = 7.0  # constant feature: left unscaled
    torch.manual_seed(123)
    expected_next = torch.rand(2)
    torch.manual_seed(123)
    a = P.train_probe(train, valid, BINARY, seed=0, max_epochs=3)
    assert torch.equal(torch.rand(2), expected_next), "training must not consume the global RNG"
    np.testing.assert_allclose(a.mean.numpy(), train.X.mean(0), rtol=1e-5, atol=1e-5)
    std = train.X.std(0)
    np.testing.assert_allclose(a.std.numpy()[[0, 1]], std[[0, 1]], rtol=1e-4)
    assert a.std[2].item() == 1.0
    b = P.train_probe(train, valid, BINARY, seed=0, max_epochs=3)
    c = P.train_probe(train, valid, BINARY, seed=1, max_epochs=3)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


def test_probe_architecture_follows_the_task_spec():
    train, valid = noisy_binary(20, seed=5), noisy_binary(20, seed=6)
    lin_task = Task("lin", "toy", "multiclass", ["a", "b"], ["accuracy"], ProbeSpec(None, 0.2, 1e-3))
    lin = P.train_probe(train, valid, lin_task, seed=0, max_epochs=1)
    assert [type(m) for m in lin.head] == [nn.Dropout, nn.Linear] and lin.head[0].p == 0.2
    mlp = P.train_probe(train, valid, BINARY, seed=0, max_epochs=1, hidden=16, dropout=0.1)
    assert [type(m) for m in mlp.head] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert mlp.head[0].out_features == 16 and mlp.head[3].out_features == 2
    forced_linear = P.train_probe(train, valid, BINARY, seed=0, max_epochs=1, hidden=0)
    assert len(forced_linear.head) == 2


def _hand_probe(weight, hidden=None):
    p = P.Probe(1, 2, "multiclass", hidden=hidden)
    with torch.no_grad():
        for m in p.head:
            if isinstance(m, nn.Linear):
                m.bias.zero_()
        if hidden:
            p.head[0].weight.fill_(1.0)
            p.head[3].weight.copy_(torch.tensor([[1.0], [0.0]]))
        else:
            p.head[1].weight.copy_(torch.tensor(weight))
    return p.eval()


def test_aggregation_policies_by_hand():
    # one track of three chunks x = 3, -1, -1; linear probe logits = (x, -x)
    emb = Embeddings(np.array([[3.0], [-1.0], [-1.0]], np.float32), [0, 0, 0], ["t"], np.array([0]))
    lin = _hand_probe([[1.0], [-1.0]])
    sm = lambda z: np.exp(z) / np.exp(z).sum()  # noqa: E731
    by_mean_embedding = sm(np.array([1 / 3, -1 / 3]))
    by_mean_prob = (sm(np.array([3, -3])) + 2 * sm(np.array([-1, 1]))) / 3
    np.testing.assert_allclose(P.track_scores(lin, emb, "embedding")[0], by_mean_embedding, rtol=1e-5)
    np.testing.assert_allclose(P.track_scores(lin, emb, "logits")[0], by_mean_embedding, rtol=1e-5)  # linear
    np.testing.assert_allclose(P.track_scores(lin, emb, "probabilities")[0], by_mean_prob, rtol=1e-5)
    # the policies disagree on the predicted class
    assert P.evaluate(lin, emb, BINARY, "embedding")["metrics"]["accuracy"] == 1.0
    res = P.evaluate(lin, emb, BINARY, "probabilities")
    assert res["metrics"]["accuracy"] == 0.0 and res["aggregation"] == "probabilities"
    # with a hidden ReLU layer, mean embedding and mean logits differ: chunks 2, -2
    mlp = _hand_probe(None, hidden=1)
    emb2 = Embeddings(np.array([[2.0], [-2.0]], np.float32), [0, 0], ["t"], np.array([0]))
    np.testing.assert_allclose(P.track_scores(mlp, emb2, "embedding")[0], sm(np.array([0.0, 0.0])), rtol=1e-5)
    np.testing.assert_allclose(P.track_scores(mlp, emb2, "logits")[0], sm(np.array([1.0, 0.0])), rtol=1e-5)
    with pytest.raises(ValueError, match="aggregation"):
        P.track_scores(lin, emb, "median")


def clusters(n_tracks: int, seed: int, chunks: int = 3, d: int = 8, k: int = 4):
    r = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 3, (k, d))
    y = np.arange(n_tracks) % k
    X = centres[np.repeat(y, chunks)] + r.normal(0, 1, (n_tracks * chunks, d))
    return X.astype(np.float32), np.repeat(np.arange(n_tracks), chunks), y


def test_each_task_kind_learns_a_separable_problem():
    tasks = {
        "multiclass": Task("mc", "toy", "multiclass", list("abcd"), ["accuracy"], ProbeSpec(64, 0.1)),
        "multilabel": Task("ml", "toy", "multilabel", list("abcd"), ["roc_auc", "average_precision"],
                           ProbeSpec(64, 0.1)),
        "regression": Task("rg", "toy", "regression", [], ["r2", "r2_arousal", "r2_valence"],
                           ProbeSpec(None, 0.0)),
    }
    w = np.random.default_rng(7).normal(size=(8, 2))
    results = {}
    for kind, task in tasks.items():
        splits = []
        for seed, n in ((0, 200), (1, 60), (2, 80)):
            X, ti, y = clusters(n, seed)
            if kind == "multilabel":
                y = np.eye(4, dtype=np.float32)[y] + np.eye(4, dtype=np.float32)[(y + 1) % 4]
            if kind == "regression":
                y = (np.random.default_rng(99).normal(0, 3, (4, 8))[y] @ w).astype(np.float32)
            splits.append(Embeddings(X, ti, [str(i) for i in range(n)], y))
        probe = P.train_probe(splits[0], splits[1], task, seed=0, lr=3e-3, max_epochs=100)
        results[kind] = P.evaluate(probe, splits[2], task)["metrics"]
    assert results["multiclass"]["accuracy"] > 0.95
    assert results["multilabel"]["roc_auc"] > 0.95 and results["multilabel"]["average_precision"] > 0.9
    assert results["regression"]["r2"] > 0.9


def test_label_fraction_subset_is_seeded_and_covers_classes():
    y = np.arange(200) % 5
    a = P.label_fraction_subset(y, "multiclass", 0.1, seed=0)
    assert len(a) == 20 and set(y[a]) == set(range(5)) and len(set(a.tolist())) == 20
    np.testing.assert_array_equal(a, P.label_fraction_subset(y, "multiclass", 0.1, seed=0))
    assert not np.array_equal(a, P.label_fraction_subset(y, "multiclass", 0.1, seed=1))
    tiny = P.label_fraction_subset(y, "multiclass", 0.01, seed=0)  # budget 2 < 5 classes
    assert sorted(y[tiny].tolist()) == [0, 1, 2, 3, 4]
    assert P.label_fraction_subset(y, "multiclass", 1.0, seed=0).tolist() == list(range(200))
    ml = np.zeros((100, 6), np.float32)
    ml[np.arange(100), np.arange(100) % 3] = 1
    ml[7, 5] = 1  # tag 5 occurs once
    sub = P.label_fraction_subset(ml, "multilabel", 0.05, seed=3)
    assert 7 in sub and ml[sub].sum(0)[[0, 1, 2, 5]].min() >= 1
    reg = P.label_fraction_subset(np.zeros((50, 2)), "regression", 0.2, seed=0)
    assert len(reg) == 10
    with pytest.raises(ValueError, match="fraction"):
        P.label_fraction_subset(y, "multiclass", 0.0, seed=0)


def test_save_and_load_round_trip(tmp_path):
    train, valid = noisy_binary(40, seed=1), noisy_binary(100, seed=2)
    probe = P.train_probe(train, valid, BINARY, seed=0, max_epochs=4)
    path = P.save_probe(probe, tmp_path / "p" / "probe.pt", task="toy2")
    back = P.load_probe(path)
    np.testing.assert_array_equal(back.logits(valid.X), probe.logits(valid.X))
    assert back.history == probe.history and back.best_epoch == probe.best_epoch
    with pytest.raises(FileNotFoundError, match="train_probe"):
        P.load_probe(tmp_path / "missing.pt")


# ---------------------------------------------------------------- probe_task end to end

SR = 4000
CLIP = 400
FREQS = [200.0, 500.0, 1100.0]  # three "pitches"


class SpectrumEncoder(nn.Module):
    """Stand-in encoder: a fixed 20-band magnitude spectrum of each chunk."""

    out_dim = 20
    sample_rate = SR
    clip_samples = CLIP

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        mag = torch.fft.rfft(x[:, 0], dim=-1).abs()[:, :200]
        return mag.reshape(len(x), 20, 10).mean(-1) + self.dummy


@pytest.fixture
def tone_task(tmp_path, monkeypatch):
    root = tmp_path / "nsynth"
    (root / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for split, n in (("train", 30), ("valid", 9), ("test", 12)):
        for i in range(n):
            c = i % 3
            t = np.arange(int(SR * rng.uniform(0.2, 0.5))) / SR
            x = 0.5 * np.sin(2 * np.pi * FREQS[c] * t) + 0.05 * rng.normal(size=len(t))
            path = root / "audio" / f"{split}_{i:03d}.wav"
            sf.write(path, x.astype(np.float32), SR)
            rows.append({"id": f"{split}_{i:03d}", "path": str(path), "split": split, "target": c})
    df = pd.DataFrame(rows)
    monkeypatch.setattr(data, "manifest", lambda name, root=None: df.copy())
    return Task("tones", "nsynth", "multiclass", ["lo", "mid", "hi"], ["accuracy"], ProbeSpec(32, 0.0)), root


def test_probe_task_end_to_end(tone_task, tmp_path):
    task, root = tone_task
    enc = SpectrumEncoder()
    recs = P.probe_task(enc, task, seeds=(0, 1), aggregation=("embedding", "probabilities"), root=root,
                        model="spectrum", support=None, cache_dir=tmp_path / "cache", probe_dir=tmp_path / "probes",
                        probe_kwargs={"lr": 3e-3}, progress=False)
    assert len(recs) == 4
    assert [(r["seed"], r["aggregation"]) for r in recs] == [(0, "embedding"), (0, "probabilities"),
                                                            (1, "embedding"), (1, "probabilities")]
    for r in recs:
        assert r["model"] == "spectrum" and r["task"] == "tones" and r["fraction"] == 1.0
        assert r["n_train_tracks"] == 30 and r["n_test_tracks"] == 12
        assert r["metrics"]["accuracy"] == 1.0
        assert r["data_root"] == str(root.resolve()) and r["synthetic"] is False
    assert sorted(p.name for p in (tmp_path / "probes").iterdir()) == ["tones-seed0.pt", "tones-seed1.pt"]
    few = P.probe_task(enc, task, seeds=(0,), fraction=0.1, root=root, cache_dir=tmp_path / "cache",
                       progress=False)
    assert few[0]["n_train_tracks"] == 3 and few[0]["fraction"] == 0.1


def test_metrics_are_computed_over_the_whole_test_set():
    # per-batch AUC averaging would differ: two batches each with perfect within-batch ranking
    y = np.array([[0], [1], [0], [1]])
    s = np.array([[0.1], [0.2], [0.8], [0.9]])
    per_batch = np.mean([metrics.roc_auc_macro(y[:2], s[:2]), metrics.roc_auc_macro(y[2:], s[2:])])
    emb = Embeddings(s.astype(np.float32), np.arange(4), list("abcd"), y.astype(np.float32))
    task = Task("tag1", "toy", "multilabel", ["t"], ["roc_auc"], ProbeSpec(None, 0.0))
    identity = P.Probe(1, 1, "multilabel")
    with torch.no_grad():
        identity.head[1].weight.fill_(1.0)
        identity.head[1].bias.zero_()
    whole = P.evaluate(identity, emb, task)["metrics"]["roc_auc"]
    assert per_batch == 1.0 and whole == pytest.approx(0.75)


def test_probe_cli_writes_results(tone_task, tmp_path, monkeypatch, capsys):
    import importlib
    import json

    _, root = tone_task
    models = importlib.import_module("workbench.models")

    def fake_load_encoder(path_or_state, map_location="cpu"):
        enc = SpectrumEncoder()
        enc.load_state_dict(torch.load(path_or_state, map_location=map_location, weights_only=True))
        return enc, {"name": "spectrum", "sample_rate": SR, "clip_samples": CLIP, "out_dim": 20}

    monkeypatch.setattr(models, "load_encoder", fake_load_encoder, raising=False)
    ckpt = tmp_path / "ssl" / "last.pt"
    ckpt.parent.mkdir()
    torch.save(SpectrumEncoder().state_dict(), ckpt)
    out = tmp_path / "res"
    assert P.main(["--checkpoint", str(ckpt), "--task", "nsynth_pitch", "--seeds", "0", "1", "--root", str(root),
                   "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--max-epochs", "40"]) == 0
    payload = json.loads((out / "results.json").read_text())
    rows = payload["results"]
    assert [(r["model"], r["metric"], r["seeds"]) for r in rows] == [("ssl", "accuracy", [0, 1]),
                                                                     ("ssl", "chroma_accuracy", [0, 1])]
    assert rows[0]["checkpoint"] == str(ckpt) and rows[0]["support"] is None
    assert (out / "results.csv").exists() and "nsynth_pitch (accuracy)" in capsys.readouterr().out


def test_threads_option_is_restored():
    train, valid = noisy_binary(20, seed=5), noisy_binary(20, seed=6)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        P.train_probe(train, valid, BINARY, seed=0, max_epochs=2, threads=1,
                      on_epoch=lambda *a: seen.append(torch.get_num_threads()))
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- probes trained together

def _kind_split(kind: str, n: int, seed: int, n_out: int, d: int = 24) -> Embeddings:
    """Two chunks per track, targets of ``kind`` (multiclass ``n_out`` classes, multilabel
    ``n_out`` tags, regression ``n_out`` values), weakly tied to the first feature."""
    r = np.random.default_rng(seed)
    X = r.normal(0, 1, (n, d)).astype(np.float32)
    track = np.repeat(np.arange(n // 2), 2)
    signal = X[::2, 0]
    if kind == "multiclass":
        y = np.clip(((signal + 2) / 4 * n_out).astype(int), 0, n_out - 1)
    elif kind == "multilabel":
        y = (r.random((n // 2, n_out)) < 0.2).astype(np.float32)
        y[:, 0] = signal > 0
    else:
        y = (signal[:, None] * np.arange(1, n_out + 1) + r.normal(0, 0.3, (n // 2, n_out))).astype(np.float32)
    return Embeddings(X, track, [str(i) for i in range(n // 2)], y)


def _task(name, kind, n_out, hidden, dropout, wd=0.0):
    classes = [str(c) for c in range(n_out)] if kind == "multiclass" else []
    return Task(name, "toy", kind, classes, ["accuracy"], ProbeSpec(hidden, dropout, wd))


def _same_probe(a: P.Probe, b: P.Probe, exact: bool = True) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if exact:
            assert torch.equal(sa[k], sb[k]), k
        else:
            torch.testing.assert_close(sa[k], sb[k], rtol=1e-5, atol=1e-6)
    assert a.best_epoch == b.best_epoch and len(a.history) == len(b.history)
    assert a.config == b.config and not b.training


def test_batched_probes_equal_sequential_ones_for_a_fixed_epoch_count():
    from workbench.batched_probe import ProbeJob, train_probes

    # one cohort: seeds x tasks of three kinds and output widths on the same embeddings (the
    # output layer is padded to the widest), MLPs with and without dropout; a linear cohort
    train = {k: _kind_split(k, 120, 1, c) for k, c in (("multiclass", 5), ("multilabel", 3), ("regression", 2))}
    valid = {k: _kind_split(k, 40, 2, c) for k, c in (("multiclass", 5), ("multilabel", 3), ("regression", 2))}
    tasks = [_task("cls", "multiclass", 5, 16, 0.3), _task("tags", "multilabel", 3, 16, 0.0),
             _task("reg", "regression", 2, 16, 0.5), _task("lin", "multiclass", 5, None, 0.2, 1e-3)]
    kind = {t.name: t.kind for t in tasks}
    jobs = [ProbeJob(train[kind[t.name]], valid[kind[t.name]], t, seed) for t in tasks for seed in (0, 1, 7)]
    settings = dict(lr=3e-3, batch_size=16, max_epochs=4, patience=100)
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    batched = train_probes(jobs, **settings)
    assert torch.equal(torch.rand(3), expected_next), "batched training must not consume the global RNG"
    for job, got in zip(jobs, batched):
        ref = P.train_probe(job.train, job.valid, job.task, seed=job.seed, **settings)
        # same initial weights, data order, dropout masks and arithmetic: bit-identical on CPU
        _same_probe(ref, got, exact=True)
        assert ref.history == got.history
        assert len(got.history) == 4
    # the members really differ (seeds draw other weights, orders and masks)
    assert not torch.equal(batched[0].head[0].weight, batched[1].head[0].weight)


def test_batched_probes_stop_early_each_on_its_own_and_restore_their_best_epoch():
    from workbench.batched_probe import ProbeJob, train_probes

    train, valid = noisy_binary(40, seed=1), noisy_binary(400, seed=2)
    settings = dict(lr=3e-3, batch_size=8, patience=4, max_epochs=300)
    jobs = [ProbeJob(train, valid, BINARY, seed) for seed in range(4)]
    batched = train_probes(jobs, **settings)
    seq = [P.train_probe(train, valid, BINARY, seed=s, **settings) for s in range(4)]
    for ref, got in zip(seq, batched):
        _same_probe(ref, got, exact=False)
        assert got.history[-1][0] == got.best_epoch + 4
        np.testing.assert_allclose([h[2] for h in got.history], [h[2] for h in ref.history], rtol=1e-6)
    assert len({len(p.history) for p in batched}) > 1, "the fixture must stop members at different epochs"


def test_batched_probes_with_different_training_sets_train_in_separate_cohorts():
    from workbench.batched_probe import ProbeJob, train_probes

    full, valid = noisy_binary(60, seed=3), noisy_binary(50, seed=4)
    jobs = [ProbeJob(full, valid, BINARY, 0), ProbeJob(full.subset(np.arange(0, 60, 2)), valid, BINARY, 1),
            ProbeJob(full, noisy_binary(30, seed=5), BINARY, 2, hidden=8, dropout=0.2)]
    got = train_probes(jobs, batch_size=8, max_epochs=3, patience=50)
    for job, probe in zip(jobs, got):
        ref = P.train_probe(job.train, job.valid, BINARY, seed=job.seed, hidden=job.hidden, dropout=job.dropout,
                            batch_size=8, max_epochs=3, patience=50)
        _same_probe(ref, probe)
    with pytest.raises(ValueError, match="positive"):
        train_probes(jobs, patience=0)


def test_probe_task_trains_its_seeds_together_with_the_sequential_results(tone_task, tmp_path):
    task, root = tone_task
    common = dict(seeds=(0, 1, 2), root=root, cache_dir=tmp_path / "cache", progress=False)
    batched = P.probe_task(SpectrumEncoder(), task, probe_kwargs={"lr": 3e-3, "max_epochs": 6}, **common)
    # an on_epoch callback takes the one-probe-per-seed path: the reference
    seen = []
    sequential = P.probe_task(SpectrumEncoder(), task, **common, probe_kwargs={
        "lr": 3e-3, "max_epochs": 6, "on_epoch": lambda epoch, probe, tl, vl: seen.append(epoch)})
    assert seen and len(batched) == len(sequential) == 3
    for a, b in zip(batched, sequential):
        assert a == b
    both = P.probe_tasks(SpectrumEncoder(), [task, task], probe_kwargs={"lr": 3e-3, "max_epochs": 6}, **common)
    assert both == batched + batched


@pytest.mark.parametrize("bad", [dict(batch_size=0), dict(max_epochs=0), dict(patience=-1)])
def test_sequential_and_batched_probes_refuse_the_same_budgets(bad):
    from workbench.batched_probe import ProbeJob, train_probes

    train, valid = noisy_binary(20, seed=1), noisy_binary(20, seed=2)
    with pytest.raises(ValueError, match="batch_size, max_epochs and patience must be positive"):
        P.train_probe(train, valid, BINARY, seed=0, **bad)
    with pytest.raises(ValueError, match="batch_size, max_epochs and patience must be positive"):
        train_probes([ProbeJob(train, valid, BINARY, 0)], **bad)


def test_a_validation_loss_never_finite_is_refused_naming_the_task_and_seed():
    from workbench.batched_probe import ProbeJob, train_probes

    train, valid = noisy_binary(20, seed=1), noisy_binary(20, seed=2)
    blow_up = dict(lr=1e30, max_epochs=3)  # the first Adam step sends the weights to inf: no finite epoch
    with pytest.raises(ValueError, match=r"^task toy2: the validation loss was never finite \(last (nan|inf)\)"):
        P.train_probe(train, valid, BINARY, seed=0, **blow_up)
    with pytest.raises(ValueError, match=r"^task toy2 \(seed 4\): the validation loss was never finite \(last (nan|inf)"):
        train_probes([ProbeJob(train, valid, BINARY, 4)], **blow_up)
