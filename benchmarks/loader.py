"""Benchmark: does the pretraining data path keep the encoder fed?

Measures, in one run, (a) the demo pretraining loader's throughput in views per second
(SemiSupCon batches of 48 clips × 2 adjacent views from the embedded benchmark: NSynth
support + FMA pool, read from the decoded cache when prepared, with the default 2
workers) and (b) the demo encoder's consumption: views per second of a full training step
(augmentation + SampleCNN forward/backward + Adam) on the same batch size.
``ratio`` = loader / encoder: above 1 the loader never starves the step (target: ≥ 10).

    python -m benchmarks.loader
"""

from __future__ import annotations

import json
import time

import torch

from workbench.augment import build_chain
from workbench.config import resolve_config
from workbench.data.cache import prepare
from workbench.losses import semisupcon_loss, target_matrix
from workbench.models import build_encoder
from workbench.models.heads import ProjectionHead
from workbench.train.pretrain import build_dataloader

WARMUP_BATCHES = 5
TIMED_BATCHES = 40
ENCODER_STEPS = 10


def _loader_rate(cfg) -> float:
    loader = build_dataloader(cfg)
    it = iter(loader)
    for _ in range(WARMUP_BATCHES):
        next(it)
    t0 = time.perf_counter()
    views = 0
    for _ in range(TIMED_BATCHES):
        b = next(it)
        views += b["views"].shape[0] * b["views"].shape[1]
    return views / (time.perf_counter() - t0)


def _encoder_rate(cfg) -> float:
    enc_kw = dict(cfg.encoder)
    encoder = build_encoder(enc_kw.pop("name"), **enc_kw)
    head = ProjectionHead(encoder.out_dim, cfg.proj_hidden, cfg.proj_dim)
    chain = build_chain(cfg.preset, sample_rate=cfg.sample_rate)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    rows = cfg.batch_size * cfg.n_views
    x = torch.randn(rows, 1, cfg.clip_samples) * 0.1
    ids = torch.arange(cfg.batch_size).repeat_interleave(cfg.n_views)

    def step():
        with torch.no_grad():
            xa = chain(x)
        loss = semisupcon_loss(head(encoder(xa)), target_matrix(ids), cfg.temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(ENCODER_STEPS):
        step()
    return ENCODER_STEPS * rows / (time.perf_counter() - t0)


def run() -> dict:
    cfg = resolve_config("demo", "semisupcon", support="nsynth_pitch", b_s=0.5, steps=10_000)
    for name in (cfg.support, cfg.unlabeled):
        prepare(name, sample_rate=cfg.sample_rate, progress=False)
    loader = _loader_rate(cfg)
    encoder = _encoder_rate(cfg)
    return {"name": "loader", "baseline_s": round(1 / encoder, 6), "fast_s": round(1 / loader, 6),
            "ratio": round(loader / encoder, 2), "loader_views_per_s": round(loader, 1),
            "encoder_views_per_s": round(encoder, 1), "num_workers": cfg.num_workers,
            "batch": f"{cfg.batch_size}x{cfg.n_views}", "note": "baseline = encoder step time per view, "
            "fast = loader time per view; ratio = loader throughput / encoder consumption"}


def main() -> None:
    print(json.dumps(run()), flush=True)


if __name__ == "__main__":
    main()
