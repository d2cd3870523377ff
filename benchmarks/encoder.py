"""Benchmark: SampleCNN training step (forward + backward + Adam), eager vs fast path.

Both sides share the same weights and run interleaved in one process (one step of each
per round; the best of the rounds is reported), so machine load affects them alike:

* ``baseline``: ``SampleCNN(impl="eager")``, the plain ``nn.Conv1d`` network (CLMR order);
* ``fast``: ``SampleCNN(impl="fast")`` in float32 (conv2d/NHWC formulation, 1x1-conv
  stem, pool-before-ReLU; numerically equivalent, see ``tests/models/test_models.py``);
* ``fast_bf16`` (extra, where the device supports bf16): the fast path under
  ``torch.autocast(bfloat16)``, i.e. what a ``bf16-mixed`` trainer runs.

FLOPs are counted analytically (:meth:`SampleCNN.training_flops`: convolutions only).
The machine's matmul peak is the best float32 GEMM rate measured here: MKL ``torch.mm``
on square matrices and oneDNN's GEMM-shaped 1x1 convolution (the kernel family the
encoder's convolutions use; on AMD CPUs MKL's sgemm is markedly slower than oneDNN).

Prints ONE JSON line::

    {"name": "encoder", "baseline_s", "fast_s", "ratio", "flops_per_step", "achieved_flops",
     "matmul_peak_flops", "fraction_of_peak", ..., "paper": {...same for the paper config}}

Top-level numbers are the demo configuration (batch 96 x 6 561 samples at 16 kHz).

    python -m benchmarks.encoder [--threads N] [--rounds R] [--paper-batch B] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from workbench.models import build_encoder
from workbench.models.samplecnn import SampleCNN

DEMO_BATCH = 96  # 48 clips x 2 views
PAPER_BATCH = 4
DEMO_ROUNDS = 7
PAPER_ROUNDS = 5
WARMUP_STEPS = 2
PEAK_REPEATS = 5
LEARNING_RATE = 1e-4
SEED = 0
GEMM_SIZES = (2048, 4096)
CONV_GEMM_SHAPE = (64, 512, 1024)  # batch, channels, frames of the 1x1-conv GEMM probe


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _step_fn(model: SampleCNN, x: torch.Tensor, bf16: bool) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    device_type = x.device.type

    def step() -> None:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            h = model(x)
        loss = h.float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _time_interleaved(steps: dict[str, Callable[[], None]], rounds: int, device: torch.device) -> dict[str, float]:
    for step in steps.values():
        for _ in range(WARMUP_STEPS):
            step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            _sync(device)
            t0 = time.perf_counter()
            step()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def matmul_peak(device: torch.device) -> dict[str, float]:
    """Best measured float32 GEMM FLOP/s: torch.mm and a GEMM-shaped 1x1 convolution."""
    out: dict[str, float] = {}
    best = 0.0
    for n in GEMM_SIZES:
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        a @ b
        _sync(device)
        rates = []
        for _ in range(PEAK_REPEATS):
            t0 = time.perf_counter()
            a @ b
            _sync(device)
            rates.append(2 * n**3 / (time.perf_counter() - t0))
        best = max(best, max(rates))
    out["sgemm_flops"] = best
    bsz, c, t = CONV_GEMM_SHAPE
    x = torch.randn(bsz, c, 1, t, device=device).contiguous(memory_format=torch.channels_last)
    w = torch.randn(c, c, 1, 1, device=device).contiguous(memory_format=torch.channels_last)
    F.conv2d(x, w)
    _sync(device)
    rates = []
    for _ in range(PEAK_REPEATS):
        t0 = time.perf_counter()
        F.conv2d(x, w)
        _sync(device)
        rates.append(2 * bsz * t * c * c / (time.perf_counter() - t0))
    out["conv_gemm_flops"] = max(rates)
    out["matmul_peak_flops"] = max(out["sgemm_flops"], out["conv_gemm_flops"])
    return out


def bench_config(preset: str, batch: int, rounds: int, device: torch.device, peak: float) -> dict:
    """Time eager vs fast (and fast+bf16) training steps for one encoder preset."""
    torch.manual_seed(SEED)
    base = build_encoder(preset, impl="eager").to(device)
    fast = copy.deepcopy(base)
    fast.impl = "fast"
    x = torch.randn(batch, 1, base.clip_samples, device=device)
    steps = {"baseline": _step_fn(base, x, False), "fast": _step_fn(fast, x, False)}
    bf16 = _bf16_supported(device)
    if bf16:
        steps["fast_bf16"] = _step_fn(copy.deepcopy(fast), x, True)
    t = _time_interleaved(steps, rounds, device)
    flops = base.training_flops(batch, base.clip_samples)
    res = {
        "preset": preset,
        "batch": batch,
        "samples": base.clip_samples,
        "rounds": rounds,
        "baseline_s": round(t["baseline"], 4),
        "fast_s": round(t["fast"], 4),
        "ratio": round(t["baseline"] / t["fast"], 3),
        "flops_per_step": flops,
        "achieved_flops": round(flops / t["fast"]),
        "baseline_achieved_flops": round(flops / t["baseline"]),
        "matmul_peak_flops": round(peak),
        "fraction_of_peak": round(flops / t["fast"] / peak, 3),
    }
    if bf16:
        res.update(
            fast_bf16_s=round(t["fast_bf16"], 4),
            ratio_bf16=round(t["baseline"] / t["fast_bf16"], 3),
            achieved_flops_bf16=round(flops / t["fast_bf16"]),
        )
    return res


def run(threads: int | None = None, rounds: int = DEMO_ROUNDS, paper_batch: int = PAPER_BATCH,
        device: str | None = None) -> dict:
    """Run the benchmark and return the result dict (see the module docstring)."""
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    peak = matmul_peak(dev)
    demo = bench_config("samplecnn_demo", DEMO_BATCH, rounds, dev, peak["matmul_peak_flops"])
    out = {"name": "encoder", **{k: v for k, v in demo.items() if k != "preset"}}
    out.update(
        sgemm_flops=round(peak["sgemm_flops"]),
        conv_gemm_flops=round(peak["conv_gemm_flops"]),
        device=str(dev),
        torch_threads=torch.get_num_threads(),
    )
    if paper_batch > 0:
        out["paper"] = bench_config("samplecnn_paper", paper_batch, PAPER_ROUNDS, dev, peak["matmul_peak_flops"])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--rounds", type=int, default=DEMO_ROUNDS, help="timed rounds for the demo config")
    parser.add_argument("--paper-batch", type=int, default=PAPER_BATCH, help="paper-config batch (0 = skip)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.threads, args.rounds, args.paper_batch, args.device)))


if __name__ == "__main__":
    main()
