"""The official CLMR / SemiSupCon checkpoint layouts, safe loading and safetensors files.

The reference is an independent SampleCNN written here from the published architecture
(CLMR paper; GUIDE 2.4): Conv1d(1->128, k3, stride 3) + BN + ReLU, nine blocks of
Conv1d(k3, pad 1) + BN + ReLU + MaxPool(3) with 128,128,256,256,256,256,256,256,512
channels, Conv1d(512->512, k3, pad 1) + BN + ReLU, flattened to 512-d.  Its modules are
``sequential.{block}.{layer}`` exactly as in the official code, so its state dict *is* the
official layout.  Random weights and BatchNorm statistics, saved in each official layout,
loaded by ``load_encoder``: the same 512-d output on 59 049 and 59 535 samples.
"""

from __future__ import annotations

import argparse
import json
import struct

import pytest
import torch
import torch.nn as nn

from workbench.models import LAYOUTS, load_encoder, load_pretrained, save_encoder
from workbench.models.serialization import OpaqueObject

CHANNELS = [128, 128, 256, 256, 256, 256, 256, 256, 512]
LENGTHS = (59049, 59535)


class ReferenceSampleCNN(nn.Module):
    """The published SampleCNN, module names as in the official code."""

    def __init__(self) -> None:
        super().__init__()
        blocks = [nn.Sequential(nn.Conv1d(1, 128, 3, stride=3, padding=0), nn.BatchNorm1d(128), nn.ReLU())]
        c_in = 128
        for c in CHANNELS:
            blocks.append(nn.Sequential(nn.Conv1d(c_in, c, 3, stride=1, padding=1), nn.BatchNorm1d(c), nn.ReLU(),
                                        nn.MaxPool1d(3, stride=3)))
            c_in = c
        blocks.append(nn.Sequential(nn.Conv1d(512, 512, 3, stride=1, padding=1), nn.BatchNorm1d(512), nn.ReLU()))
        self.sequential = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.sequential(x)
        return out.reshape(x.shape[0], out.size(1) * out.size(2))


def _randomise(model: nn.Module, gen: torch.Generator) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(1000)
            elif isinstance(m, nn.Conv1d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / (m.in_channels * 3)) ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.05)
    return model.eval()


def _projector(out_dim: int, gen: torch.Generator) -> nn.Sequential:
    p = nn.Sequential(nn.Linear(512, 512, bias=False), nn.ReLU(), nn.Linear(512, out_dim, bias=False))
    with torch.no_grad():
        for lin in (p[0], p[2]):
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen) / 512**0.5)
    return p.eval()


class Hparams:
    """A class of the 'training script' (not importable by the loader): must become opaque."""

    def __init__(self, lr: float) -> None:
        self.lr = lr


@pytest.fixture(scope="module")
def reference():
    gen = torch.Generator().manual_seed(1234)
    ref = _randomise(ReferenceSampleCNN(), gen)
    clmr_proj, ssc_proj = _projector(64, gen), _projector(128, gen)
    x = {n: torch.rand(2, 1, n, generator=gen) * 2 - 1 for n in LENGTHS}
    with torch.no_grad():
        h = {n: ref(x[n]) for n in LENGTHS}
    return dict(ref=ref, clmr_proj=clmr_proj, ssc_proj=ssc_proj, x=x, h=h)


def _layout_files(r, tmp_path):
    """Write the reference in every official layout; returns {name: (path, projector, clip)}."""
    enc = r["ref"].state_dict()
    pre = lambda p, sd: {f"{p}{k}": v for k, v in sd.items()}  # noqa: E731
    clmr_p, ssc_p = r["clmr_proj"].state_dict(), r["ssc_proj"].state_dict()
    hp = argparse.Namespace(batch_size=48, projection_dim=64, optimizer="Adam", script_object=Hparams(3e-4))
    files = {
        # CLMR ContrastiveLearning registers the encoder twice: self.encoder and self.model.encoder
        "clmr-lightning": ({"pytorch-lightning_version": "1.2.10", "epoch": 9, "global_step": 10000,
                            "state_dict": {**pre("encoder.", enc), **pre("model.encoder.", enc),
                                           **pre("model.projector.", clmr_p)},
                            "hyper_parameters": hp, "callbacks": {Hparams: Hparams(1.0)}}, r["clmr_proj"], 59049),
        "clmr-lightning-model-only": ({"pytorch-lightning_version": "1.2.10",
                                       "state_dict": {**pre("model.encoder.", enc), **pre("model.projector.", clmr_p)},
                                       "hyper_parameters": vars(hp) | {"script_object": None}}, r["clmr_proj"], 59049),
        "clmr-lightning-encoder-only": ({"pytorch-lightning_version": "1.2.10", "state_dict": pre("encoder.", enc)},
                                        None, 59049),
        "clmr-simclr": ({**pre("encoder.", enc), **pre("projector.", clmr_p)}, r["clmr_proj"], 59049),
        "semisupcon-lightning": ({"pytorch-lightning_version": "2.1.0", "epoch": 3,
                                  "state_dict": {**pre("encoder.", enc), "encoder.fc.weight": torch.zeros(50, 512),
                                                 "encoder.fc.bias": torch.zeros(50), **pre("proj_head.", ssc_p)}},
                                 r["ssc_proj"], 59535),
        "samplecnn-sequential": (dict(enc), None, 59049),
    }
    out = {}
    for name, (obj, proj, clip) in files.items():
        path = tmp_path / f"{name}.ckpt"
        torch.save(obj, path)
        out[name] = (path, proj, clip)
    return out


def test_official_layouts_match_the_reference(reference, tmp_path):
    r = reference
    for name, (path, proj, clip) in _layout_files(r, tmp_path).items():
        loaded = load_pretrained(path)
        assert loaded.meta["layout"] == name.replace("-model-only", "").replace("-encoder-only", ""), name
        assert loaded.meta["out_dim"] == 512 and loaded.meta["sample_rate"] == 22050
        assert loaded.meta["clip_samples"] == clip and not loaded.encoder.training
        for n in LENGTHS:
            with torch.no_grad():
                h = loaded.encoder(r["x"][n])
            assert h.shape == (2, 512)
            torch.testing.assert_close(h, r["h"][n], rtol=1e-4, atol=1e-5, msg=f"{name} at {n} samples")
            if proj is None:
                assert loaded.head is None and loaded.meta["projection_head"] is None
            else:
                with torch.no_grad():
                    torch.testing.assert_close(loaded.head(h), proj(r["h"][n]), rtol=1e-4, atol=1e-5)
        assert float(r["h"][LENGTHS[0]].std()) > 1e-3  # a non-degenerate reference output


def test_official_layout_is_exact_in_float64(reference, tmp_path):
    """The mapping is a renaming: in float64, eager and fast paths equal the reference to 1e-10."""
    r = reference
    path = tmp_path / "semisupcon.ckpt"
    state = {f"encoder.{k}": v for k, v in r["ref"].state_dict().items()}
    torch.save({"pytorch-lightning_version": "2.1.0",
                "state_dict": {**state, **{f"proj_head.{k}": v for k, v in r["ssc_proj"].state_dict().items()}}}, path)
    enc, meta = load_encoder(path)
    ref64 = ReferenceSampleCNN().double().eval()
    ref64.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in r["ref"].state_dict().items()})
    enc = enc.double()
    x = r["x"][59535][:1].double()
    with torch.no_grad():
        want = ref64(x)
        for impl in ("eager", "fast"):
            enc.impl = impl
            torch.testing.assert_close(enc(x), want, rtol=1e-10, atol=1e-12)


def test_detection_error_names_file_and_layouts(tmp_path):
    path = tmp_path / "mystery.pt"
    torch.save({"weights": {"conv.weight": torch.zeros(2)}}, path)
    with pytest.raises(ValueError) as err:
        load_encoder(path)
    msg = str(err.value)
    assert "mystery.pt" in msg
    for layout in LAYOUTS:
        assert layout.name in msg


def test_opaque_objects_are_recorded_and_never_run(reference, tmp_path):
    path = tmp_path / "clmr.ckpt"
    obj = {"pytorch-lightning_version": "1.2.10", "hyper_parameters": Hparams(0.1),
           "state_dict": {f"model.encoder.{k}": v for k, v in reference["ref"].state_dict().items()}}
    torch.save(obj, path)
    enc, meta = load_encoder(path)
    assert any(g.endswith("Hparams") for g in meta["opaque_globals"])
    from workbench.models.serialization import safe_torch_load

    raw, info = safe_torch_load(path)
    hp = raw["hyper_parameters"]
    assert isinstance(hp, OpaqueObject) and not isinstance(hp, Hparams) and hp.state == {"lr": 0.1}


class _Evil:
    def __init__(self, reducer) -> None:
        self.reducer = reducer

    def __reduce__(self):
        return self.reducer


@pytest.mark.parametrize("reducer", [(eval, ("1 + 1",)), (__import__("os").system, ("true",))],
                         ids=["builtin-eval", "os-system"])
def test_code_in_a_checkpoint_is_refused(tmp_path, reducer):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _Evil(reducer)}, path)
    with pytest.raises(ValueError, match="evil.ckpt.*refused|refused.*evil.ckpt|evil.ckpt"):
        load_encoder(path)


def test_safetensors_roundtrip_without_pickle(reference, tmp_path):
    r = reference
    ckpt = _layout_files(r, tmp_path)["semisupcon-lightning"][0]
    loaded = load_pretrained(ckpt)
    out = save_encoder(loaded.encoder, tmp_path / "ssc.safetensors", head=loaded.head, origin="SemiSupCon")
    data = out.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header["__metadata__"]
    assert json.loads(meta["encoder"])["clip_samples"] == 59535
    assert json.loads(meta["head"])["out_dim"] == 128
    assert b"\x80\x02" not in data[:8 + n]  # the header is JSON, not a pickle
    again = load_pretrained(out)
    assert again.meta["layout"] == "workbench-safetensors" and again.meta["file_meta"] == {"origin": "SemiSupCon"}
    x = r["x"][59535]
    with torch.no_grad():
        torch.testing.assert_close(again.encoder(x), r["h"][59535], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(again.head(again.encoder(x)), r["ssc_proj"](r["h"][59535]), rtol=1e-4, atol=1e-5)
    # the torch format keeps the head too
    pt = save_encoder(loaded.encoder, tmp_path / "ssc.pt", head=loaded.head)
    assert load_pretrained(pt).meta["projection_head"]["out_dim"] == 128


def test_safetensors_official_state_dict_and_bad_file(reference, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "clmr.safetensors"
    sd = {f"encoder.{k}": v.contiguous() for k, v in reference["ref"].state_dict().items()}
    save_file(sd, str(path))
    enc, meta = load_encoder(path)
    assert meta["layout"] == "clmr-simclr"
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="broken.safetensors"):
        load_encoder(bad)
    with pytest.raises(ValueError, match="format"):
        save_encoder(enc, tmp_path / "x.bin", format="onnx")


def test_bad_official_state_is_explained(reference, tmp_path):
    sd = {f"encoder.{k}": v for k, v in reference["ref"].state_dict().items() if "running_var" not in k}
    with pytest.raises(ValueError, match="running_var"):
        load_encoder(sd)


def test_export_cli_converts_an_official_checkpoint(reference, tmp_path, capsys):
    from workbench.cli import main

    ckpt = _layout_files(reference, tmp_path)["clmr-lightning"][0]
    out = tmp_path / "clmr.safetensors"
    assert main(["export", str(ckpt), str(out)]) == 0
    assert "clmr-lightning" in capsys.readouterr().out
    again = load_pretrained(out)
    assert again.meta["file_meta"]["source_layout"] == "clmr-lightning"
    assert again.meta["projection_head"] == dict(in_dim=512, hidden_dim=512, out_dim=64, bias=False)
    with torch.no_grad():
        torch.testing.assert_close(again.encoder(reference["x"][59049]), reference["h"][59049], rtol=1e-4, atol=1e-5)


def test_lightning_attribute_dict_hparams_load_without_lightning_code(reference, tmp_path, monkeypatch):
    """Old Lightning pickles hparams as pytorch_lightning.utilities.parsing.AttributeDict."""
    import sys
    import types

    mod = types.ModuleType("pytorch_lightning.utilities.parsing")

    class AttributeDict(dict):
        pass

    AttributeDict.__module__, AttributeDict.__qualname__ = mod.__name__, "AttributeDict"
    mod.AttributeDict = AttributeDict
    for name in ("pytorch_lightning", "pytorch_lightning.utilities"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    path = tmp_path / "old.ckpt"
    torch.save({"pytorch-lightning_version": "1.1.0", "hyper_parameters": AttributeDict(batch_size=48),
                "state_dict": {f"encoder.{k}": v for k, v in reference["ref"].state_dict().items()}}, path)
    monkeypatch.delitem(sys.modules, mod.__name__)  # the loader must not need it
    from workbench.models.serialization import safe_torch_load

    obj, info = safe_torch_load(path)
    assert obj["hyper_parameters"] == {"batch_size": 48} and obj["hyper_parameters"].batch_size == 48
    assert info["opaque_globals"] == []
    assert load_encoder(path)[1]["layout"] == "clmr-lightning"


def test_a_head_that_is_not_a_projection_head_is_left_out():
    """COLA's similarity or a classifier also live under head.*: only a ProjectionHead is loaded."""
    from workbench.models import SampleCNN

    enc = SampleCNN(sample_rate=16000, channels=(4, 4, 4), out_dim=8)
    state = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    for head in ({"head.0.weight": torch.zeros(8, 8), "head.0.bias": torch.zeros(8)},
                 {"head.net.1.weight": torch.zeros(3, 8)}):
        loaded = load_pretrained({"state_dict": {**state, **head}, "hyper_parameters": {"config": {"encoder": enc.config}}})
        assert loaded.head is None and loaded.meta["projection_head"] is None
    proj = {"head.0.weight": torch.randn(6, 8), "head.2.weight": torch.randn(5, 6)}
    loaded = load_pretrained({"state_dict": {**state, **proj}, "hyper_parameters": {"config": {"encoder": enc.config}}})
    assert loaded.meta["projection_head"] == dict(in_dim=8, hidden_dim=6, out_dim=5, bias=False)
