"""benchmarks/gpu_check.py: skips cleanly without CUDA; its checks' logic holds on the CPU.

The GPU numbers themselves come from running it on a CUDA machine; here each check runs at
the smoke size on the CPU (same code, ``device="cpu"``) so that a wrong reference or a
crash is found before a GPU is ever lent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_check

ROOT = Path(__file__).resolve().parents[1]


def test_without_cuda_prints_one_skip_line_and_exits_0(tmp_path):
    out = tmp_path / "gpu_results.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: skipped"), proc.stdout
    assert not out.exists()


def test_checks_run_on_cpu_at_smoke_size():
    only = ["augment_parity", "bf16_step", "paper_throughput", "demo_pretraining", "batched_probe"]
    res = gpu_check.run_checks(torch.device("cpu"), budget_s=240, smoke=True, only=only)
    assert list(res) == only
    for name, r in res.items():
        assert "error" not in r and "skipped" not in r, (name, r)
        assert r["seconds"] >= 0
    # the same draws on both "devices" give the same output: the parity check can only see devices
    assert res["augment_parity"]["ok"] and res["augment_parity"]["max_rel_error"] == 0.0
    assert set(res["augment_parity"]["rel_error"]) >= {"chain:semisupcon", "chain:clmr", "transform:pitch_shift"}
    b = res["bf16_step"]
    assert 0 < b["loss_rel_diff"] < gpu_check.BF16_LOSS_TOL and -1 <= b["grad_cosine"] <= 1
    for name in ("paper_throughput", "demo_pretraining"):
        assert res[name]["fp32"]["examples_per_s"] > 0 and res[name]["bf16"]["steps"] >= 1
    # on the CPU the batched probe's members are bit-identical to the sequential ones
    p = res["batched_probe"]
    assert p["ok"] and p["identical"] and p["seeds"] == gpu_check.PROBE_SEEDS and p["ratio"] > 0


def test_a_failing_check_is_recorded_and_the_rest_still_run(monkeypatch):
    def broken(device, budget_s, smoke=False):
        raise RuntimeError("boom")

    monkeypatch.setitem(gpu_check.CHECKS, "bf16_step", broken)
    res = gpu_check.run_checks(torch.device("cpu"), budget_s=120, smoke=True, only=["bf16_step", "augment_parity"])
    assert res["bf16_step"]["ok"] is False and "boom" in res["bf16_step"]["error"]
    assert res["augment_parity"]["ok"]
    res = gpu_check.run_checks(torch.device("cpu"), budget_s=0, smoke=True, only=["augment_parity"])
    assert "skipped" in res["augment_parity"]


@pytest.mark.slow
def test_ddp_check_matches_single_process_on_cpu(run_slow):
    """Two gloo processes on the CPU: the DDP gradient equals the check's single-process reference."""
    if not run_slow:
        # smoke form: the reference alone (the two-process run is what --run-slow adds)
        grad, loss = gpu_check._ddp_reference(torch.device("cpu"), gpu_check.SMOKE["encoder"], 2)
        assert torch.isfinite(grad).all() and loss > 0
        return
    res = gpu_check.check_ddp_step(torch.device("cpu"), 240, smoke=True)
    assert res["ok"], res
    assert res["backend"] == "gloo" and res["grad_rel_diff"] <= gpu_check.DDP_TOL
