"""Encoders, heads, checkpoint loading, and the fast SampleCNN path against the eager one."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from workbench.models import (
    ENCODER_PRESETS,
    ENCODERS,
    ClassifierHead,
    ProjectionHead,
    SampleCNN,
    TUNePlus,
    build_encoder,
    load_encoder,
    save_encoder,
)
from workbench.models.cola import BilinearSimilarity, COLAEncoder

TINY_SAMPLECNN = dict(n_blocks=3, channels=(4, 4, 8), out_dim=16)  # min input 3 * 3^3 = 81
TINY_TUNEP = dict(base_channels=2, depth=2, tail_blocks=2, out_dim=16, clip_samples=None)  # min 3^4 = 81


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _bn_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}


# --------------------------------------------------------------------------- SampleCNN shapes
@pytest.mark.parametrize("impl", ["eager", "fast"])
@pytest.mark.parametrize("samples", [59049, 59535])
def test_paper_samplecnn_accepts_both_clip_lengths(impl, samples):
    enc = build_encoder("samplecnn_paper", impl=impl).eval()
    assert enc.min_samples == 59049 and enc.out_dim == 512 and enc.sample_rate == 22050
    # after the stride-3 stem and nine pools of 3 exactly one frame is left for both lengths
    assert enc.layer_shapes(samples)[-1]["frames"] == 1
    with torch.no_grad():
        assert enc(torch.randn(1, 1, samples)).shape == (1, 512)


def test_presets_and_recommended_lengths():
    assert build_encoder("samplecnn_semisupcon").clip_samples == int(2.7 * 22050) == 59535
    demo = build_encoder("samplecnn_demo")
    assert (demo.sample_rate, demo.clip_samples, demo.min_samples, demo.n_blocks) == (16000, 6561, 6561, 7)
    assert demo.channels[0] == 32 and demo.channels[-1] == 128
    assert set(ENCODERS) == {"samplecnn", "samplecnn_demo", "tunep", "cola"}
    for name, preset in ENCODER_PRESETS.items():
        assert preset["name"] in ENCODERS, name


@pytest.mark.parametrize("preset", sorted(ENCODER_PRESETS))
def test_every_preset_builds_and_embeds(preset):
    enc = build_encoder(preset).eval()
    with torch.no_grad():
        y = enc(torch.randn(2, 1, enc.clip_samples))
    assert y.shape == (2, enc.out_dim) and torch.isfinite(y).all()
    assert enc.clip_samples >= enc.min_samples and enc.config["name"] == ENCODER_PRESETS[preset]["name"]


def test_layer_shapes_match_the_forward_pass():
    enc = SampleCNN(**TINY_SAMPLECNN, impl="eager")
    frames = []
    convs = [enc.stem, *enc.convs, enc.final]
    hooks = [m.register_forward_hook(lambda m, i, o: frames.append(o.shape[-1])) for m in convs]
    enc(torch.randn(2, 1, 250))
    for h in hooks:
        h.remove()
    assert frames == [s["frames"] for s in enc.layer_shapes(250)]
    # 250 samples: stem -> 83 frames, pools -> 27, 9, 3
    assert frames == [83, 83, 27, 9, 3]


def test_minimum_input_and_errors():
    enc = SampleCNN(**TINY_SAMPLECNN)
    assert enc.min_samples == 81
    assert enc(torch.randn(2, 1, 81)).shape == (2, 16)
    assert enc(torch.randn(2, 81)).shape == (2, 16)  # [B, T] accepted
    with pytest.raises(ValueError, match="minimum"):
        enc(torch.randn(2, 1, 80))
    with pytest.raises(ValueError, match=r"\[B, 1, T\]"):
        enc(torch.randn(2, 2, 100))
    with pytest.raises(ValueError, match="n_blocks"):
        SampleCNN(n_blocks=4, channels=(4, 4, 8))
    with pytest.raises(ValueError, match="impl"):
        SampleCNN(**TINY_SAMPLECNN, impl="turbo")
    with pytest.raises(ValueError, match="clip_samples"):
        SampleCNN(**TINY_SAMPLECNN, clip_samples=50)


def test_training_flops_counts_convolutions():
    enc = SampleCNN(**TINY_SAMPLECNN)
    # hand count for 81 samples: stem 1->4 over 27 frames, blocks 4->4 @27, 4->8 @9... see layer_shapes
    fwd = 2 * 3 * (1 * 4 * 27 + 4 * 4 * 27 + 4 * 4 * 9 + 4 * 8 * 3 + 8 * 16 * 1)
    assert enc.forward_flops(81) == fwd
    stem = 2 * 3 * 1 * 4 * 27
    assert enc.training_flops(5, 81) == 5 * (3 * fwd - stem)


# --------------------------------------------------------------------------- fast == eager
def _pair(dtype=torch.float32, **kw):
    eager = SampleCNN(**kw, impl="eager").to(dtype)
    fast = copy.deepcopy(eager)
    fast.impl = "fast"
    return eager, fast


@pytest.mark.parametrize("samples", [729, 800])
def test_fast_path_equals_eager_in_float64(samples):
    eager, fast = _pair(torch.float64, n_blocks=5, channels=(8, 8, 16, 16, 16), out_dim=24)
    x = torch.randn(6, 1, samples, dtype=torch.float64)
    ye, yf = eager(x), fast(x)
    torch.testing.assert_close(yf, ye, rtol=1e-10, atol=1e-12)
    ye.pow(2).sum().backward()
    yf.pow(2).sum().backward()
    for (name, pe), pf in zip(eager.named_parameters(), fast.parameters()):
        torch.testing.assert_close(pf.grad, pe.grad, rtol=1e-8, atol=1e-10, msg=name)
    for (name, be), bf in zip(eager.named_buffers(), fast.buffers()):
        torch.testing.assert_close(bf, be, msg=name)


def test_gemm_backward_of_long_frame_convolutions_equals_eager_in_float64(monkeypatch):
    """The fast path's GEMM backward (paper scale: >= GEMM_BACKWARD_MIN_FRAMES frames), forced
    on for every block: the same gradients as the eager network, to float64 round-off."""
    from workbench.models import samplecnn as S

    calls = []
    backward = S._FrameConv.backward

    def counting(ctx, g):
        calls.append(g.shape[-1])
        return backward(ctx, g)

    monkeypatch.setattr(S._FrameConv, "backward", staticmethod(counting))
    monkeypatch.setattr(S, "GEMM_BACKWARD_MIN_FRAMES", 0)
    eager, fast = _pair(torch.float64, n_blocks=5, channels=(8, 8, 16, 16, 16), out_dim=24)
    x = torch.randn(6, 1, 800, dtype=torch.float64)
    ye, yf = eager(x), fast(x)
    torch.testing.assert_close(yf, ye, rtol=1e-10, atol=1e-12)
    ye.pow(2).sum().backward()
    yf.pow(2).sum().backward()
    assert len(calls) == 5  # every block went through the GEMM backward
    for (name, pe), pf in zip(eager.named_parameters(), fast.parameters()):
        torch.testing.assert_close(pf.grad, pe.grad, rtol=1e-8, atol=1e-10, msg=name)
    # below the threshold (and under autocast) the oneDNN kernels run
    monkeypatch.setattr(S, "GEMM_BACKWARD_MIN_FRAMES", 10**9)
    calls.clear()
    fast(x).sum().backward()
    assert calls == []


def test_fast_path_matches_eager_in_float32_demo_config():
    torch.set_num_threads(1)
    eager = build_encoder("samplecnn_demo", impl="eager")
    fast = copy.deepcopy(eager)
    fast.impl = "fast"
    x = torch.randn(16, 1, eager.clip_samples)
    ye, yf = eager(x), fast(x)
    # float32 round-off: eager ~2e-6, fast ~2e-5 relative to a float64 run (NHWC BatchNorm sums)
    assert (yf - ye).norm() / ye.norm() < 1e-4
    torch.testing.assert_close(yf, ye, rtol=1e-3, atol=1e-3)
    ye.pow(2).sum().backward()
    yf.pow(2).sum().backward()
    grads = dict(eager.named_parameters())
    for (name, pe), pf in zip(eager.named_parameters(), fast.parameters()):
        if name.endswith("bias") and "bn" not in name:
            # conv biases feed a BatchNorm: their true gradient is 0, both sides are round-off
            scale = grads[name.replace("bias", "weight")].grad.abs().max()
            assert pf.grad.abs().max() < 1e-3 * scale and pe.grad.abs().max() < 1e-3 * scale
            continue
        # Typically ~3e-5.  A max-pool window whose two largest entries differ by less than
        # the round-off can pick another argmax (exact in float64, see above); one such
        # flip among the 6 144 windows of a deep layer moves upstream gradients by ~2 %.
        rel = (pf.grad - pe.grad).norm() / pe.grad.norm()
        assert rel < 5e-2, (name, float(rel))
    for (name, be), bf in zip(eager.named_buffers(), fast.buffers()):
        torch.testing.assert_close(bf, be, rtol=1e-4, atol=1e-5, msg=name)


def test_fast_path_under_bf16_autocast_stays_close():
    eager, fast = _pair(n_blocks=4, channels=(8, 8, 16, 16), out_dim=32)
    x = torch.randn(4, 1, 3 * 3**4)
    ref = eager(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fast(x)
    y.float().sum().backward()
    rel = (y.float() - ref).norm() / ref.norm()
    assert rel < 0.05
    assert all(torch.isfinite(p.grad).all() for p in fast.parameters())


def test_impl_switch_keeps_state_dict_and_outputs():
    eager, fast = _pair(**TINY_SAMPLECNN)
    assert eager.state_dict().keys() == fast.state_dict().keys()
    eager.eval(), fast.eval()
    x = torch.randn(3, 1, 100)
    torch.testing.assert_close(fast(x), eager(x), rtol=1e-5, atol=1e-6)
    fast.impl = "eager"
    torch.testing.assert_close(fast(x), eager(x))


# --------------------------------------------------------------------------- BatchNorm in eval
@pytest.mark.parametrize(
    "make, samples",
    [
        (lambda: SampleCNN(**TINY_SAMPLECNN, impl="eager"), 81),
        (lambda: SampleCNN(**TINY_SAMPLECNN, impl="fast"), 81),
        (lambda: TUNePlus(**TINY_TUNEP), 81),
        (lambda: COLAEncoder(), 1600),
    ],
)
def test_eval_mode_does_not_move_batchnorm_statistics(make, samples):
    enc = make()
    x = torch.randn(3, 1, samples)
    initial = _bn_buffers(enc)
    enc.train()
    with torch.no_grad():
        enc(x)
    trained = _bn_buffers(enc)  # train mode does move them (so the check below can fail)
    assert any(not torch.equal(initial[k], trained[k]) for k in initial if "running_mean" in k)
    enc.eval()
    with torch.no_grad():
        y1 = enc(x)
        y2 = enc(torch.randn(3, 1, samples) * 3 + 1)
    after = _bn_buffers(enc)
    assert trained.keys() and all(torch.equal(trained[k], after[k]) for k in trained)
    assert not torch.equal(y1, y2)  # (a fresh EfficientNet in eval mode nearly collapses inputs)


# --------------------------------------------------------------------------- TUNe+ and COLA
@pytest.mark.parametrize("samples", [81, 100, 243, 250])
def test_tunep_small_config_shapes(samples):
    enc = TUNePlus(**TINY_TUNEP)
    assert enc.min_samples == 3 ** (2 + 2)
    assert enc(torch.randn(2, 1, samples)).shape == (2, 16)


def test_tunep_paper_config_size_and_shapes():
    enc = build_encoder("tunep_paper").eval()
    n_params = sum(p.numel() for p in enc.parameters())
    assert 2.15e6 < n_params < 2.25e6  # TUNe+ is reported with 2.2 M parameters
    assert enc.min_samples == 3**9
    with torch.no_grad():
        for samples in (59049, 59535):
            assert enc(torch.randn(1, 1, samples)).shape == (1, 512)
    with pytest.raises(ValueError, match="minimum"):
        enc(torch.randn(1, 1, 3**9 - 1))


def test_tunep_tail_is_fed_by_unet_skips():
    enc = TUNePlus(**TINY_TUNEP)
    b = 2
    # tail level j concatenates pool(t_{j-1}) (b 2^{j-1}) with the decoder map (b 2^j)
    assert [blk[0].in_channels for blk in enc.tail] == [b + 2 * b, 2 * b + 4 * b]
    assert [blk[0].in_channels for blk in enc.decoder] == [2 * 2 * b, 2 * b]
    assert enc.extra[-1][0].out_channels == 16


def test_cola_encoder_shapes_and_log_mel():
    enc = COLAEncoder()
    assert (enc.sample_rate, enc.n_mels, enc.win_length, enc.hop_length) == (16000, 64, 400, 160)
    assert enc.features[0][0].in_channels == 1
    x = torch.randn(2, 1, 16000)
    mel = enc.log_mel(x)
    assert mel.shape == (2, 1, 64, 16000 // 160 + 1)
    assert enc.eval()(x).shape == (2, 512)


def test_bilinear_similarity():
    sim = BilinearSimilarity(4)
    with torch.no_grad():
        sim.weight.copy_(torch.randn(4, 4))
    a, p = torch.randn(3, 4), torch.randn(5, 4)
    expected = torch.stack([torch.stack([a[i] @ sim.weight @ p[j] for j in range(5)]) for i in range(3)])
    torch.testing.assert_close(sim(a, p), expected)


# --------------------------------------------------------------------------- heads
def test_projection_head_has_no_bias_and_right_dims():
    head = ProjectionHead()
    linears = [m for m in head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 512), (512, 128)]
    assert all(m.bias is None for m in linears)
    assert isinstance(head[1], torch.nn.ReLU)
    assert head(torch.randn(3, 512)).shape == (3, 128)
    assert ProjectionHead.preset("clmr")(torch.randn(2, 512)).shape == (2, 64)
    assert sum(1 for n, _ in ProjectionHead(bias=True).named_parameters() if n.endswith("bias")) == 2
    with pytest.raises(ValueError, match="preset"):
        ProjectionHead.preset("byol")


def test_classifier_heads():
    mlp = ClassifierHead(512, 50, hidden=512, dropout=0.1)
    lin = ClassifierHead(512, 24, hidden=None, dropout=0.2)
    assert [m.out_features for m in mlp.net if isinstance(m, torch.nn.Linear)] == [512, 50]
    assert [m.out_features for m in lin.net if isinstance(m, torch.nn.Linear)] == [24]
    assert mlp(torch.randn(4, 512)).shape == (4, 50) and lin(torch.randn(4, 512)).shape == (4, 24)
    with pytest.raises(ValueError, match="dropout"):
        ClassifierHead(512, 2, dropout=1.0)


# --------------------------------------------------------------------------- loading
def _trained_tiny():
    enc = SampleCNN(**TINY_SAMPLECNN, clip_samples=100)
    enc.train()
    with torch.no_grad():
        enc(torch.randn(4, 1, 100))  # move BN statistics away from their defaults
    return enc.eval()


def test_load_lightning_style_checkpoint(tmp_path):
    enc = _trained_tiny()
    head = ProjectionHead(16, 16, 8)
    state = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    state.update({f"head.{k}": v for k, v in head.state_dict().items()})
    ckpt = {
        "state_dict": state,
        "hyper_parameters": {"config": {"encoder": enc.config, "temperature": 0.1}},
        "epoch": 0,
        "global_step": 10,
    }
    path = tmp_path / "last.ckpt"
    torch.save(ckpt, path)
    loaded, meta = load_encoder(path)
    x = torch.randn(2, 1, 100)
    torch.testing.assert_close(loaded(x), enc(x))
    assert not loaded.training
    assert meta["name"] == "samplecnn" and meta["out_dim"] == 16 and meta["clip_samples"] == 100
    assert meta["sample_rate"] == 22050 and meta["source"] == "lightning"
    # in-memory dicts work too
    again, _ = load_encoder(ckpt)
    torch.testing.assert_close(again(x), enc(x))


def test_load_encoder_file_and_bare_state_dict(tmp_path):
    enc = _trained_tiny()
    x = torch.randn(2, 1, 100)
    path = save_encoder(enc, tmp_path / "enc.pt", note="test")
    loaded, meta = load_encoder(path)
    torch.testing.assert_close(loaded(x), enc(x))
    assert meta["source"] == "encoder"

    bare = tmp_path / "bare.pt"
    torch.save(enc.state_dict(), bare)
    with pytest.raises(ValueError, match="JSON side file"):
        load_encoder(bare)
    bare.with_suffix(".json").write_text(json.dumps({"encoder": enc.config}))
    loaded, meta = load_encoder(bare)
    torch.testing.assert_close(loaded(x), enc(x))
    assert meta["source"] == "state_dict+json"


def test_load_tunep_roundtrip(tmp_path):
    enc = TUNePlus(**TINY_TUNEP).eval()
    path = save_encoder(enc, tmp_path / "tunep.pt")
    loaded, meta = load_encoder(path)
    x = torch.randn(2, 1, 90)
    torch.testing.assert_close(loaded(x), enc(x))
    assert meta["name"] == "tunep"


def test_load_encoder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_encoder(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="unknown encoder"):
        load_encoder({"encoder": {"name": "resnet"}, "state_dict": {}})
    with pytest.raises(ValueError, match="encoder"):
        load_encoder({"state_dict": {"encoder.w": torch.zeros(1)}, "hyper_parameters": {"config": {}}})
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder("wav2vec")


def test_fast_path_respects_sync_batchnorm():
    enc = torch.nn.SyncBatchNorm.convert_sync_batchnorm(SampleCNN(**TINY_SAMPLECNN, impl="fast"))
    calls = []
    for m in enc.modules():
        if isinstance(m, torch.nn.SyncBatchNorm):
            m.register_forward_hook(lambda m, i, o: calls.append(i[0].dim()))
    reference = SampleCNN(**TINY_SAMPLECNN, impl="eager")
    reference.load_state_dict(enc.state_dict())
    x = torch.randn(4, 1, 100)
    y = enc(x)  # not distributed: SyncBatchNorm falls back to local statistics
    assert len(calls) == 1 + 3 + 1  # stem, blocks, final: the modules themselves ran
    torch.testing.assert_close(y, reference(x), rtol=1e-4, atol=1e-5)
