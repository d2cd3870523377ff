"""workbench.hear: the HEAR 2021 API on workbench checkpoints.

``test_hear_validator_checks`` re-states, from the source of the official validator
(PyPI ``hearvalidator`` 2021.0.2, ``hearvalidator/validate.py``), every check it makes on a
PyTorch model: it needs TensorFlow, which the workbench does not install.
``test_official_hear_validator`` runs the official ``ValidateModel`` itself whenever
``hearvalidator`` is importable (``pip install --no-deps hearvalidator==2021.0.2``; a stub
stands in for TensorFlow when it is missing: the validator only uses it for
``isinstance(model, tf.Module)`` on PyTorch models).
"""

from __future__ import annotations

import sys
import types
import warnings

import pytest
import torch
import torch.nn as nn

from workbench import hear
from workbench.models import SampleCNN, save_encoder

SR = 16000
TINY = dict(sample_rate=SR, channels=(8, 8, 8, 8, 8), out_dim=16)  # window 3 * 3**5 = 729 samples


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    enc = _randomise(SampleCNN(**TINY))
    return save_encoder(enc, tmp_path_factory.mktemp("hear") / "tiny.pt")


@pytest.fixture(scope="module")
def model(ckpt):
    return hear.load_model(str(ckpt))


def _noise(n_sounds: int, seconds: float, seed: int = 0, sr: int = SR) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n_sounds, int(seconds * sr)), generator=gen) * 2 - 1


def test_hear_validator_checks(model):
    """hearvalidator 2021.0.2's PyTorch checks, plus the HEAR 50 ms hop as a requirement."""
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate in (16000, 22050, 44100, 48000)
    assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)
    # timestamps: 16 sounds of 2.0 s white noise in [-1, 1]
    emb, ts = hear.get_timestamp_embeddings(_noise(16, 2.0), model)
    assert emb.dtype == torch.float32 and emb.shape[0] == 16
    assert emb.shape[:2] == ts.shape and emb.shape[2] == model.timestamp_embedding_size
    diff = torch.diff(ts)
    avg = torch.mean(diff.float())
    assert avg <= 50.0
    assert torch.all(torch.abs(diff - avg) < 1e-3)
    # scene: 8 sounds of 3.74 s
    scene = hear.get_scene_embeddings(_noise(8, 3.74), model)
    assert scene.dtype == torch.float32 and scene.shape == (8, model.scene_embedding_size)


def test_official_hear_validator(ckpt, monkeypatch, capsys):
    if "tensorflow" not in sys.modules:
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            stub = types.ModuleType("tensorflow")
            stub.Module = type("Module", (), {})  # PyTorch models are never instances of it
            monkeypatch.setitem(sys.modules, "tensorflow", stub)
    validate = pytest.importorskip("hearvalidator.validate", reason="pip install --no-deps hearvalidator==2021.0.2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the >50 ms hop warning would fail the test
        validate.ValidateModel("workbench.hear", str(ckpt), device="cpu")()
    assert "Checking get_scene_embeddings" in capsys.readouterr().out


def test_timestamps_are_centred_regular_and_within_the_clip(model):
    n = 3 * SR + 123
    emb, ts = hear.get_timestamp_embeddings(_noise(2, n / SR), model)
    hop = model.hop_samples
    assert hop == 800 and model.hop_ms == 50.0
    assert emb.shape[1] == n // hop + 1
    assert float(ts[0, 0]) == 0.0 and float(ts[0, -1]) <= n / SR * 1000
    torch.testing.assert_close(ts[1], ts[0])


def test_frames_equal_hand_cut_centred_windows(model):
    """Frame k = the encoder on the window centred on sample k*hop, zero-padded outside the clip."""
    x = _noise(1, 0.19, seed=3)[0]  # 3 040 samples: frames at 0, 800, 1600, 2400
    emb, ts = hear.get_timestamp_embeddings(x[None], model)
    w, hop = model.window_samples, model.hop_samples
    assert w == 729 and emb.shape[1] == 4
    for k in range(emb.shape[1]):
        c = k * hop
        window = torch.zeros(w)
        lo, hi = c - w // 2, c - w // 2 + w
        src = x[max(lo, 0):min(hi, len(x))]
        window[max(lo, 0) - lo:max(lo, 0) - lo + len(src)] = src
        assert window[w // 2] == x[c]  # the centre sample is the frame's sample
        with torch.no_grad():
            want = model.encoder(window[None, None])[0]
        torch.testing.assert_close(emb[0, k], want, rtol=1e-5, atol=1e-6)
        assert float(ts[0, k]) == pytest.approx(c / SR * 1000)


def test_scene_is_the_mean_of_non_overlapping_windows(model):
    w = model.window_samples
    x = _noise(1, (2 * w + 100) / SR, seed=4)
    with torch.no_grad():
        want = model.encoder(torch.stack([x[:, :w], x[:, w:2 * w]])).mean(0)
    torch.testing.assert_close(hear.get_scene_embeddings(x, model)[0], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 100, 728])
def test_audio_shorter_than_the_receptive_field(model, n):
    x = _noise(3, n / SR, seed=5)
    emb, ts = hear.get_timestamp_embeddings(x, model)
    assert emb.shape == (3, 1, 16) and ts.shape == (3, 1) and torch.isfinite(emb).all()
    scene = hear.get_scene_embeddings(x, model)
    assert scene.shape == (3, 16) and torch.isfinite(scene).all()
    if n:  # zero-padded to one window, at the end
        with torch.no_grad():
            want = model.encoder(torch.nn.functional.pad(x, (0, model.window_samples - n))[:, None])
        torch.testing.assert_close(scene, want, rtol=1e-5, atol=1e-6)


def test_batch_independent_and_deterministic(model):
    x = _noise(5, 1.3, seed=6)
    emb, _ = hear.get_timestamp_embeddings(x, model)
    scene = hear.get_scene_embeddings(x, model)
    for i in (0, 3):
        alone, _ = hear.get_timestamp_embeddings(x[i:i + 1], model)
        assert torch.equal(alone[0], emb[i])
        assert torch.equal(hear.get_scene_embeddings(x[i:i + 1], model)[0], scene[i])
    again, _ = hear.get_timestamp_embeddings(x, model)
    assert torch.equal(again, emb)
    model.train()  # a HEAR model stays frozen
    assert not model.encoder.training
    assert torch.equal(hear.get_scene_embeddings(x, model), scene)


def test_small_batches_give_the_same_embeddings(ckpt, model):
    small = hear.load_model(str(ckpt), batch_samples=3 * 729)
    assert small.batch_windows == 3
    x = _noise(2, 0.7, seed=7)
    torch.testing.assert_close(hear.get_timestamp_embeddings(x, small)[0],
                               hear.get_timestamp_embeddings(x, model)[0], rtol=1e-5, atol=1e-6)


def test_official_layout_checkpoint_at_22050(tmp_path):
    """An official-layout state dict (here a 5-block narrow member) is a HEAR model at 22.05 kHz."""
    torch.manual_seed(1)
    blocks = [nn.Sequential(nn.Conv1d(1, 4, 3, stride=3), nn.BatchNorm1d(4), nn.ReLU())]
    for _ in range(3):
        blocks.append(nn.Sequential(nn.Conv1d(4, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(), nn.MaxPool1d(3)))
    blocks.append(nn.Sequential(nn.Conv1d(4, 8, 3, padding=1), nn.BatchNorm1d(8), nn.ReLU()))
    seq = nn.Sequential(*blocks)
    path = tmp_path / "clmr.pt"
    torch.save({f"encoder.{k}": v for k, v in nn.ModuleDict({"sequential": seq}).state_dict().items()}, path)
    model = hear.load_model(str(path))
    assert model.sample_rate == 22050 and model.scene_embedding_size == 8
    assert model.hop_samples == 1102 and model.hop_ms <= 50.0
    emb, ts = hear.get_timestamp_embeddings(_noise(1, 0.1, sr=22050), model)
    assert emb.shape == (1, 2205 // 1102 + 1, 8)


def test_bad_input_is_explained(model):
    with pytest.raises(ValueError, match=r"\[n_sounds, n_samples\]"):
        hear.get_scene_embeddings(torch.zeros(100), model)
    with pytest.raises(ValueError, match="floating point"):
        hear.get_timestamp_embeddings(torch.zeros(1, 100, dtype=torch.int16), model)
    with pytest.raises(ValueError, match="NaN"):
        hear.get_scene_embeddings(torch.full((1, 800), float("nan")), model)
    with pytest.raises(TypeError, match="load_model"):
        hear.get_scene_embeddings(torch.zeros(1, 800), model.encoder)
    with pytest.raises(ValueError, match="checkpoint path"):
        hear.load_model()
    with pytest.raises(ValueError, match="hop_ms"):
        hear.HearModel(model.encoder, hop_ms=60)
