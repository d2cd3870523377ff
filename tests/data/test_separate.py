"""`python -m workbench data separate`: the separator registry, the stem layout the MSA pool reads, resume."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from workbench import cli
from workbench.data import separate as S
from workbench.data.msa import stem_pool

SR = 16000


def _fma_without_stems(root, tracks=("000002", "000005", "000010"), seconds=1.0):
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    for i, track in enumerate(tracks):
        folder = root / "fma_medium" / "000"
        folder.mkdir(parents=True, exist_ok=True)
        x = 0.2 * np.sin(2 * np.pi * 100 * t) + 0.2 * np.sin(2 * np.pi * 2000 * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(folder / f"{track}.mp3", (x * (1 + i) / 4).astype(np.float32), SR)
    return root


def test_bandsplit_is_deterministic_sums_to_the_input_and_splits_by_frequency():
    t = np.arange(SR) / SR
    low, high = np.sin(2 * np.pi * 80 * t), np.sin(2 * np.pi * 6000 * t)
    out = S.get_separator("bandsplit").separate((low + high).astype(np.float32), SR)
    assert set(out) == set(S.STEM_NAMES)
    np.testing.assert_allclose(sum(out.values()), low + high, atol=1e-4)
    mid = slice(2000, -2000)  # away from the filters' edge effects
    assert np.corrcoef(out["bass"][mid], low[mid])[0, 1] > 0.99
    assert np.corrcoef(out["drums"][mid], high[mid])[0, 1] > 0.99
    assert np.abs(out["melody"][mid]).max() < 0.05 and np.abs(out["accompaniment"][mid]).max() < 0.05
    again = S.get_separator("bandsplit").separate((low + high).astype(np.float32), SR)
    assert all(np.array_equal(out[k], again[k]) for k in out)


def test_unknown_and_missing_separators_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="did you mean bandsplit"):
        S.get_separator("bandsplt")
    import builtins

    real = builtins.__import__

    def no_extras(name, *args, **kwargs):
        if name.split(".")[0] in ("openunmix", "demucs"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_extras)
    for name in ("openunmix", "demucs"):
        with pytest.raises(ImportError, match=r"workbench\[separate\]"):
            S.get_separator(name)


def test_command_writes_the_layout_the_msa_pool_reads(tmp_path, capsys):
    root = _fma_without_stems(tmp_path)
    with pytest.raises(ValueError, match="MSA needs stems"):
        stem_pool("fma_medium", root, splits=["train", "valid", "test"])
    assert cli.main(["data", "separate", "fma_medium", "--separator", "bandsplit", "--root", str(root),
                     "--quiet"]) == 0
    assert "separated 3, skipped 0" in capsys.readouterr().out
    pool = stem_pool("fma_medium", root, splits=["train", "valid", "test"])
    assert len(pool) == 3 and pool.stem_names == sorted(S.STEM_NAMES)
    for path, stems in zip(pool.frame["path"], pool.frame["stems"]):
        mix, sr = sf.read(path, dtype="float32")
        assert set(stems) == set(S.STEM_NAMES)
        parts = []
        for name, stem_path in stems.items():
            assert stem_path == str(S.stems_dir(path) / f"{name}.wav")
            y, rate = sf.read(stem_path, dtype="float32")
            assert rate == sr and y.shape == mix.shape
            parts.append(y)
        np.testing.assert_allclose(np.sum(parts, axis=0), mix, atol=1e-4)


def test_resume_skips_separated_tracks_and_an_interruption_leaves_no_partial_stems(tmp_path, monkeypatch):
    root = _fma_without_stems(tmp_path)
    calls = []
    real = S.BandSplitSeparator.separate

    def interrupted(self, waveform, sr):
        calls.append(len(waveform))
        out = real(self, waveform, sr)
        if len(calls) == 2:  # the second track dies while its stems are being written
            monkeypatch.setattr(S.sf, "write", _write_then_die(S.sf.write))
        return out

    def _write_then_die(write):
        state = {"n": 0}

        def fn(*args, **kwargs):
            state["n"] += 1
            if state["n"] == 2:
                raise KeyboardInterrupt
            return write(*args, **kwargs)

        return fn

    monkeypatch.setattr(S.BandSplitSeparator, "separate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        S.separate_task("fma_medium", "bandsplit", root=root, progress=False)
    folder = root / "fma_medium" / "000"
    assert (folder / "000002.stems").is_dir() and len(list((folder / "000002.stems").iterdir())) == 4
    # the interrupted track: no stems folder, no partial folder, nothing the loader could read
    assert not (folder / "000005.stems").exists()
    assert not any(p.name.endswith(S.PARTIAL_SUFFIX) for p in folder.iterdir())
    monkeypatch.undo()
    before = (folder / "000002.stems" / "bass.wav").stat().st_mtime_ns
    report = S.separate_task("fma_medium", "bandsplit", root=root, progress=False)
    assert report == {"separated": 2, "skipped": 1, "failed": {}}
    assert (folder / "000002.stems" / "bass.wav").stat().st_mtime_ns == before  # skipped, not rewritten
    assert S.separate_task("fma_medium", "bandsplit", root=root, progress=False)["skipped"] == 3
