"""Benchmark: random training crops from the decoded cache vs decoding the source mp3 per crop.

A few 30 s stereo 44.1 kHz mp3s (FMA-like: music-like tones + noise) are written to a
temporary folder and read as the ``folder`` task.  Baseline: :func:`workbench.audio.read`
of a random 2.7 s window at 16 kHz (mp3 seek + decode + resample, as a data loader
without a cache does).  Fast: :meth:`workbench.data.cache.DecodedCache.read` of the same
kind of window after :func:`workbench.data.cache.prepare`.  Prints ONE JSON line:
{"name": "data_cache", "baseline_s": seconds per crop, "fast_s": seconds per crop,
"ratio": baseline / fast, "prepare_s": one-off decoding time, ...}.

    python -m benchmarks.data_cache
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

N_FILES = 6
FILE_SECONDS = 30.0
SOURCE_RATE = 44100
CACHE_RATE = 16000
CROP_SECONDS = 2.7
N_BASELINE_CROPS = 60
N_FAST_CROPS = 3000
SEED = 0
EDGE_SAMPLES = 100  # window edges excluded from the agreement check (resampling transients)


def _write_sources(folder: Path, rng: np.random.Generator) -> list[Path]:
    t = np.arange(int(FILE_SECONDS * SOURCE_RATE)) / SOURCE_RATE
    paths = []
    for k in range(N_FILES):
        freqs = 110.0 * 2 ** (rng.integers(0, 36, 3) / 12)
        left = sum(np.sin(2 * np.pi * f * t) for f in freqs) / 6 + 0.05 * rng.standard_normal(len(t))
        right = np.roll(left, 17)
        p = folder / f"{k:06d}.mp3"
        sf.write(str(p), np.stack([left, right], axis=1).astype(np.float32), SOURCE_RATE)
        paths.append(p)
    return paths


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["WORKBENCH_CACHE"] = str(tmp / "cache")  # keep the benchmark's cache out of the user's
        from workbench import audio
        from workbench.data import cache

        rng = np.random.default_rng(SEED)
        paths = _write_sources(tmp, rng)
        n = int(CROP_SECONDS * CACHE_RATE)

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cache.prepare("folder", root=tmp, sample_rate=CACHE_RATE, progress=False)
        prepare_s = time.perf_counter() - t0
        reader = cache.reader_for("folder", tmp, CACHE_RATE)

        picks = rng.integers(0, N_FILES, N_BASELINE_CROPS)
        t0 = time.perf_counter()
        for i in picks:
            audio.read(paths[i], CACHE_RATE, num_samples=n, rng=rng)
        baseline_s = (time.perf_counter() - t0) / N_BASELINE_CROPS

        keys = [str(p) for p in paths]
        picks = rng.integers(0, N_FILES, N_FAST_CROPS)
        t0 = time.perf_counter()
        for i in picks:
            reader.read(keys[i], n, rng=rng)
        fast_s = (time.perf_counter() - t0) / N_FAST_CROPS

        # the two readers agree on a window (sanity: the benchmark times equal work); audio.read
        # resamples only the window, so its first/last samples carry filter edge effects
        a = reader.read(keys[0], n, offset=1.0)
        b = audio.read(paths[0], CACHE_RATE, offset=1.0, num_samples=n)
        max_abs_diff = float(np.abs(a - b)[EDGE_SAMPLES:-EDGE_SAMPLES].max())
        cache_bytes = (cache.cache_path("folder", tmp, CACHE_RATE) / cache.DATA_FILE).stat().st_size
        source_bytes = sum(p.stat().st_size for p in paths)
    return {"name": "data_cache", "baseline_s": round(baseline_s, 6), "fast_s": round(fast_s, 7),
            "ratio": round(baseline_s / fast_s, 1), "prepare_s": round(prepare_s, 3),
            "prepare_s_per_audio_hour": round(prepare_s / (N_FILES * FILE_SECONDS / 3600), 1),
            "crop_samples": n, "cache_rate": CACHE_RATE, "source": f"{N_FILES} x {FILE_SECONDS:.0f} s stereo mp3 "
            f"at {SOURCE_RATE} Hz", "n_baseline_crops": N_BASELINE_CROPS, "n_fast_crops": N_FAST_CROPS,
            "cache_mb": round(cache_bytes / 2**20, 2), "source_mb": round(source_bytes / 2**20, 2),
            "max_abs_diff_interior": round(max_abs_diff, 6)}


def main() -> None:
    print(json.dumps(run()))


if __name__ == "__main__":
    main()
