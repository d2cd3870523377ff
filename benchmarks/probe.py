"""Benchmark: probes of 3 seeds trained one by one vs together (workbench.batched_probe).

Synthetic 512-d embeddings of 20 Gaussian classes stand in for a cached train split of
5 000 chunks (plus 1 000 validation and 1 000 test chunks, 3 chunks per track), i.e.
what :func:`workbench.probe.probe_task` trains per seed once embeddings are cached. Both
sides train the same probes (seeds 0, 1, 2; early stopping on the validation loss) with
the same torch threads (the thread policy, ``workbench.threads``), in one process:

* ``baseline``: one :func:`workbench.probe.train_probe` per seed (the recipe before);
* ``fast``: one :func:`workbench.batched_probe.train_probes` call for the three seeds.

Prints ONE JSON line: {"name": "probe", "baseline_s", "fast_s", "ratio" (MLP probe, 512
hidden, the default for most tasks), "linear_baseline_s", "linear_fast_s", "linear_ratio",
"identical" (every batched probe equals its sequential twin, bit for bit), epochs,
"mlp_fraction_of_peak" / "linear_fraction_of_peak" (the sequential probe's GEMM FLOP/s over
the machine's float32 matmul peak, :func:`benchmarks.encoder.matmul_peak`, which large square
GEMMs reach and the probe's 256-row ones do not) and "mlp_exact_ratio_ceiling" /
"linear_exact_ratio_ceiling": a profiled sequential probe's CPU time over the part of it no
exact batching can remove (:data:`PER_MEMBER_OPS`: each member's own GEMMs and dropout draws,
which bit-identical members must repeat), i.e. the most the batched trainer could gain here if
everything else cost nothing, ...}.

    python -m benchmarks.probe [--seeds 3] [--max-epochs 200]
"""

from __future__ import annotations

import argparse
import json
import time

import workbench  # noqa: F401  (first: its OpenMP wait policy must be set before torch loads)
import numpy as np
import torch

from workbench.batched_probe import ProbeJob, train_probes
from workbench.data.tasks import ProbeSpec, Task
from workbench.embed import Embeddings
from workbench.probe import evaluate, train_probe
from workbench.threads import threads_for

from .encoder import matmul_peak

N_TRAIN, N_VALID, N_TEST = 5000, 1000, 1000
DIM = 512
N_CLASSES = 20
CHUNKS_PER_TRACK = 3
SEED = 0
SEEDS = 3
MAX_EPOCHS = 200
PATIENCE = 10


def synthetic_embeddings(sizes=(N_TRAIN, N_VALID, N_TEST), seed: int = SEED) -> list[Embeddings]:
    """The benchmark's splits (chunks per split in ``sizes``): 512-d embeddings of
    :data:`N_CLASSES` Gaussian classes, :data:`CHUNKS_PER_TRACK` chunks per track."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.15, (N_CLASSES, DIM))
    return [_split(n, rng, centres) for n in sizes]


def bench_task(hidden: int | None) -> Task:
    """The benchmark's multiclass task; ``hidden`` None gives a linear probe."""
    return Task("bench", "bench", "multiclass", [str(c) for c in range(N_CLASSES)], ["accuracy"],
                ProbeSpec(hidden, 0.1))


def _split(n_chunks: int, rng: np.random.Generator, centres: np.ndarray) -> Embeddings:
    n_tracks = n_chunks // CHUNKS_PER_TRACK
    y = rng.integers(0, N_CLASSES, n_tracks)
    track_index = np.repeat(np.arange(n_tracks), CHUNKS_PER_TRACK)
    X = centres[y[track_index]] + rng.normal(0, 1, (len(track_index), DIM))
    return Embeddings(X.astype(np.float32), track_index, [str(i) for i in range(n_tracks)], y)


#: The kernels an exact batched probe still runs once per member (profiler names).
PER_MEMBER_OPS = ("aten::mm", "aten::addmm", "aten::bernoulli_")


def exact_ratio_ceiling(train, valid, task, settings: dict) -> dict:
    """Profile one sequential probe: its total self CPU time and the share in :data:`PER_MEMBER_OPS`."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_probe(train, valid, task, seed=0, **settings)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    kept = sum(e.self_cpu_time_total for e in events if e.key in PER_MEMBER_OPS)
    return {"per_member_share": round(kept / total, 3), "exact_ratio_ceiling": round(total / kept, 2)}


def gemm_flops_per_epoch(n_train: int, n_valid: int, dim: int, hidden: int | None, classes: int) -> int:
    """The GEMM FLOPs of one probe epoch: forward and weight gradient of every layer, the input
    gradient of every layer but the first (its input is data), and the validation forward."""
    layers = [(dim, hidden), (hidden, classes)] if hidden else [(dim, classes)]
    flops = 0
    for i, (d_in, d_out) in enumerate(layers):
        gemm_train, gemm_valid = 2 * n_train * d_in * d_out, 2 * n_valid * d_in * d_out
        flops += gemm_train * (2 if i == 0 else 3) + gemm_valid
    return flops


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa) and a.history == b.history


def run(seeds: int = SEEDS, max_epochs: int = MAX_EPOCHS) -> dict:
    train, valid, test = synthetic_embeddings()
    threads = threads_for(0)
    out = {"name": "probe", "n_train_chunks": train.n_chunks, "dim": DIM, "classes": N_CLASSES, "seeds": seeds,
           "threads": threads, "torch_default_threads": torch.get_num_threads()}
    identical = True
    peak = matmul_peak(torch.device("cpu"))["matmul_peak_flops"]
    out["matmul_peak_flops"] = round(peak)
    settings = dict(max_epochs=max_epochs, patience=PATIENCE, threads=threads)
    for label, hidden in (("mlp", 512), ("linear", None)):
        task = bench_task(hidden)
        t0 = time.perf_counter()
        seq = [train_probe(train, valid, task, seed=s, **settings) for s in range(seeds)]
        t1 = time.perf_counter()
        bat = train_probes([ProbeJob(train, valid, task, s) for s in range(seeds)], **settings)
        t2 = time.perf_counter()
        identical &= all(_same(a, b) for a, b in zip(seq, bat))
        prefix = "" if label == "mlp" else "linear_"
        epochs = sum(len(p.history) for p in seq)
        out.update({f"{prefix}baseline_s": round(t1 - t0, 3), f"{prefix}fast_s": round(t2 - t1, 3),
                    f"{prefix}ratio": round((t1 - t0) / (t2 - t1), 3), f"{label}_epochs": epochs,
                    f"{label}_seconds_per_epoch_sequential": round((t1 - t0) / epochs, 4),
                    f"{label}_best_epochs": [p.best_epoch for p in bat],
                    f"{label}_accuracy": round(evaluate(bat[0], test, task)["metrics"]["accuracy"], 4)})
        rate = epochs * gemm_flops_per_epoch(train.n_chunks, valid.n_chunks, DIM, hidden, N_CLASSES) / (t1 - t0)
        ceiling = exact_ratio_ceiling(train, valid, task, settings)
        out.update({f"{label}_sequential_flops": round(rate), f"{label}_fraction_of_peak": round(rate / peak, 3),
                    **{f"{label}_{k}": v for k, v in ceiling.items()}})
    out["identical"] = bool(identical)
    out["note"] = "baseline = one train_probe per seed, fast = one batched train_probes call; same threads"
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=SEEDS)
    ap.add_argument("--max-epochs", type=int, default=MAX_EPOCHS, help="fewer for a smoke run")
    args = ap.parse_args(argv)
    print(json.dumps(run(args.seeds, args.max_epochs)))


if __name__ == "__main__":
    main()
