"""Robustness evaluation at smoke scale on a tiny generated NSynth-layout data root.

Three pitches of sine tones (16 kHz wav, nsynth-{train,valid,test}/examples.json +
audio/<note_str>.wav) read through the real nsynth loader; a fixed spectrum "encoder"
separates them perfectly, so clean accuracy is 1 and a corruption that replaces the
signal by noise must lower it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch import nn

from workbench import data, probe as P, robustness
from workbench.embed import extract

torch.set_num_threads(1)

SR = 16000
CLIP = 1600  # 0.1 s chunks, 10 Hz bins
PITCHES = (60, 64, 67)  # 261.6, 329.6, 392.0 Hz
SPLITS = {"train": 18, "valid": 6, "test": 9}


class SpectrumEncoder(nn.Module):
    """Magnitude spectrum 0-800 Hz in 40 bands of 20 Hz; counts forward calls."""

    out_dim = 40
    sample_rate = SR
    clip_samples = CLIP

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.bn = nn.BatchNorm1d(40, affine=False)  # frozen statistics: identity

    def forward(self, x):
        self.calls += 1
        mag = torch.fft.rfft(x[:, 0], dim=-1).abs()[:, :80]
        return self.bn(mag.reshape(len(x), 40, 2).mean(-1))


@pytest.fixture
def tiny_nsynth(tmp_path):
    root = tmp_path / "nsynth"
    rng = np.random.default_rng(0)
    for split, n in SPLITS.items():
        folder = root / f"nsynth-{split}"
        (folder / "audio").mkdir(parents=True)
        examples = {}
        for i in range(n):
            pitch = PITCHES[i % 3]
            note = f"tone_{split}_{i:02d}-{pitch:03d}-100"
            t = np.arange(int(SR * rng.uniform(0.3, 0.6))) / SR
            x = 0.5 * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * t) + 0.01 * rng.normal(size=len(t))
            sf.write(folder / "audio" / f"{note}.wav", x.astype(np.float32), SR)
            examples[note] = {"pitch": pitch, "velocity": 100, "instrument_family": 0, "instrument_str": "tone"}
        (folder / "examples.json").write_text(json.dumps(examples))
    return root


def noise_mix(x, name, severity, sample_rate, seed, log=None):
    """Stand-in corruption: blend towards white noise, fully noise at severity 3."""
    if log is not None:
        log.append((name, severity, sample_rate, seed))
    g = torch.Generator().manual_seed(seed)
    a = min(severity / 3.0, 1.0)
    return (1 - a) * x + a * 0.5 * torch.randn(x.shape, generator=g)


def test_metric_vs_severity_table(tiny_nsynth, tmp_path):
    df_manifest = data.manifest("nsynth_pitch", tiny_nsynth)
    assert sorted(df_manifest["split"].value_counts().items()) == sorted(SPLITS.items())
    enc = SpectrumEncoder().eval()
    calls_log = []

    def corrupt(x, name, severity, sample_rate, seed):
        return noise_mix(x, name, severity, sample_rate, seed, calls_log)

    cache = tmp_path / "cache"
    kwargs = dict(root=tiny_nsynth, probe_seeds=(0, 1), cache_dir=cache, corrupt_fn=corrupt, progress=False,
                  probe_kwargs={"lr": 3e-3, "max_epochs": 60}, extract_kwargs={"batch_size": 8})
    severities = (0, 1, 3)
    df = robustness.evaluate_robustness(enc, "nsynth_pitch", corruptions=("noise_a", "noise_b"),
                                        severities=severities, seed=5, out_dir=tmp_path / "out", **kwargs)
    assert list(df.columns) == list(robustness.COLUMNS)
    # 2 corruptions x 3 severities x 2 probes x 2 metrics (accuracy, chroma_accuracy)
    assert len(df) == 2 * 3 * 2 * 2
    acc = df[df.metric == "accuracy"]
    assert (acc[acc.severity == 0].value == 1.0).all()
    assert (acc[acc.severity == 3].value < 1.0).all()
    assert set(df.corruption) == {"noise_a", "noise_b"} and set(df.probe_seed) == {0, 1}
    assert set(df.corruption_seed) == {5} and set(df.aggregation) == {"embedding"}
    # the corruption saw every test chunk batch once per (corruption, severity > 0), each with its own seed
    assert {(n, s) for n, s, _, _ in calls_log} == {("noise_a", 1.0), ("noise_a", 3.0), ("noise_b", 1.0),
                                                    ("noise_b", 3.0)}
    assert all(sr == SR for _, _, sr, _ in calls_log)
    per_run = [seed for n, s, _, seed in calls_log if (n, s) == ("noise_a", 1.0)]
    assert len(per_run) > 1 and len(set(per_run)) == len(per_run)

    # severity 0 is the clean score of the same probe, computed here independently
    train = extract(enc, "nsynth_pitch", "train", root=tiny_nsynth, cache_dir=cache, progress=False, batch_size=8)
    valid = extract(enc, "nsynth_pitch", "valid", root=tiny_nsynth, cache_dir=cache, progress=False, batch_size=8)
    test = extract(enc, "nsynth_pitch", "test", root=tiny_nsynth, cache_dir=cache, progress=False, batch_size=8)
    task = data.task("nsynth_pitch", tiny_nsynth)
    probe = P.train_probe(train, valid, task, seed=1, lr=3e-3, max_epochs=60)
    clean = P.evaluate(probe, test, task)["metrics"]
    row = df[(df.severity == 0) & (df.probe_seed == 1) & (df.corruption == "noise_b")]
    assert dict(zip(row.metric, row.value)) == pytest.approx(clean)

    # written table matches the returned one
    written = pd.read_csv(tmp_path / "out" / "robustness.csv")
    pd.testing.assert_frame_equal(written, df, check_dtype=False)
    payload = json.loads((tmp_path / "out" / "robustness.json").read_text())
    assert payload["task"] == "nsynth_pitch" and len(payload["rows"]) == len(df)

    # a second run is served from the cache (clean and corrupted) and gives the same numbers
    calls = enc.calls
    again = robustness.evaluate_robustness(enc, "nsynth_pitch", corruptions=("noise_a", "noise_b"),
                                           severities=severities, seed=5, **kwargs)
    assert enc.calls == calls
    pd.testing.assert_frame_equal(again, df)

    # given probes (a saved file) are used as they are
    path = P.save_probe(probe, tmp_path / "probe.pt")
    given = robustness.evaluate_robustness(enc, "nsynth_pitch", probes={1: path}, corruptions=("noise_a",),
                                           severities=(0,), seed=5, root=tiny_nsynth, cache_dir=cache,
                                           corrupt_fn=corrupt, progress=False, extract_kwargs={"batch_size": 8})
    assert dict(zip(given.metric, given.value)) == pytest.approx(clean)

    summary = robustness.summarize(df)
    assert len(summary) == 2 * 3 * 2 and set(summary.n_probes) == {2}


def test_library_corruptions_smoke(tiny_nsynth, tmp_path):
    """The real corruption library end to end (skipped until workbench.corruptions exists)."""
    corruptions = pytest.importorskip("workbench.corruptions")
    names = [n for n in ("chain", "reverb", "time_stretch") if n in corruptions.CORRUPTIONS]
    assert names, f"none of chain/reverb/time_stretch in {corruptions.CORRUPTIONS}"
    df = robustness.evaluate_robustness(SpectrumEncoder(), "nsynth_pitch", corruptions=names, severities=(0, 1),
                                        root=tiny_nsynth, cache_dir=tmp_path / "c", progress=False,
                                        probe_kwargs={"lr": 3e-3, "max_epochs": 30})
    assert len(df) == len(names) * 2 * 2
    assert df.value.between(0, 1).all()
    assert (df[(df.severity == 0) & (df.metric == "accuracy")].value == 1.0).all()
