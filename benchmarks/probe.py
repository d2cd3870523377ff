"""Benchmark: a full probe (train with early stopping + evaluate) on cached embeddings.

Synthetic 512-d embeddings of 20 Gaussian classes stand in for a cached train split of
5 000 chunks (plus 1 000 validation and 1 000 test chunks, 3 chunks per track), i.e.
what :func:`workbench.probe.probe_task` does per seed once embeddings are cached.
Prints ONE JSON line: {"name": "probe", ...} with seconds for the MLP probe (512 hidden,
the default for most tasks) and the linear probe, epochs run, and seconds per epoch.
Training runs with ``threads=THREADS`` (1): on the 2-core shared machine a probe this
small ran ~9x slower with torch's default 2 threads under load (147 s vs 16 s).

    python -m benchmarks.probe
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from workbench.data.tasks import ProbeSpec, Task
from workbench.embed import Embeddings
from workbench.probe import evaluate, train_probe

N_TRAIN, N_VALID, N_TEST = 5000, 1000, 1000
DIM = 512
N_CLASSES = 20
CHUNKS_PER_TRACK = 3
SEED = 0
MAX_EPOCHS = 200
PATIENCE = 10
THREADS = 1


def _split(n_chunks: int, rng: np.random.Generator, centres: np.ndarray) -> Embeddings:
    n_tracks = n_chunks // CHUNKS_PER_TRACK
    y = rng.integers(0, N_CLASSES, n_tracks)
    track_index = np.repeat(np.arange(n_tracks), CHUNKS_PER_TRACK)
    X = centres[y[track_index]] + rng.normal(0, 1, (len(track_index), DIM))
    return Embeddings(X.astype(np.float32), track_index, [str(i) for i in range(n_tracks)], y)


def run() -> dict:
    rng = np.random.default_rng(SEED)
    centres = rng.normal(0, 0.15, (N_CLASSES, DIM))
    train, valid, test = (_split(n, rng, centres) for n in (N_TRAIN, N_VALID, N_TEST))
    out = {"name": "probe", "n_train_chunks": train.n_chunks, "dim": DIM, "classes": N_CLASSES,
           "threads": THREADS, "torch_default_threads": torch.get_num_threads()}
    for label, hidden in (("mlp", 512), ("linear", None)):
        task = Task("bench", "bench", "multiclass", [str(c) for c in range(N_CLASSES)], ["accuracy"],
                    ProbeSpec(hidden, 0.1))
        t0 = time.perf_counter()
        probe = train_probe(train, valid, task, seed=SEED, max_epochs=MAX_EPOCHS, patience=PATIENCE,
                            threads=THREADS)
        t1 = time.perf_counter()
        result = evaluate(probe, test, task)
        t2 = time.perf_counter()
        epochs = len(probe.history)
        out.update({f"{label}_seconds": round(t2 - t0, 3), f"{label}_train_seconds": round(t1 - t0, 3),
                    f"{label}_eval_seconds": round(t2 - t1, 4), f"{label}_epochs": epochs,
                    f"{label}_best_epoch": probe.best_epoch,
                    f"{label}_seconds_per_epoch": round((t1 - t0) / epochs, 4),
                    f"{label}_accuracy": round(result["metrics"]["accuracy"], 4)})
    out["seconds"] = out["mlp_seconds"]
    return out


def main() -> None:
    print(json.dumps(run()))


if __name__ == "__main__":
    main()
