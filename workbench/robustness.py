"""Robustness of frozen representations to test-time corruption (SemiSupCon 5.3 and 8.4).

Probes are trained on clean embeddings (or given); the test audio is then corrupted
chunk by chunk with the training augmentation chain at several severities (``"chain"``,
severity s scales the chain's probabilities and ranges; s = 1 is the training chain) and
with novel corruptions (chorus, distortion, reverb, compression, bitcrush, time stretch,
splice-out; see :mod:`workbench.corruptions`), re-encoded through
:func:`workbench.embed.extract` with the corruption as its ``transform`` (cached per
corruption, severity and seed), and scored. Severity 0 is the clean test set, shared by
every corruption's curve.

    df = evaluate_robustness("runs/demo/semisupcon/last.ckpt", "mtat_top50",
                             corruptions=("chain", "reverb"), severities=(0, 1, 2), out_dir="runs/robust")
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .probe import Probe, evaluate, load_probe, train_probe

__all__ = ["DEFAULT_CORRUPTIONS", "DEFAULT_SEVERITIES", "CorruptionTransform", "evaluate_robustness",
           "summarize"]

DEFAULT_CORRUPTIONS = ("chain", "chorus", "distortion", "reverb", "compression", "bitcrush", "time_stretch",
                       "splice_out")
DEFAULT_SEVERITIES = (0.0, 0.5, 1.0, 2.0, 3.0)
COLUMNS = ("task", "model", "corruption", "severity", "corruption_seed", "probe_seed", "aggregation", "metric",
           "value")


class CorruptionTransform:
    """A corruption as an :func:`~workbench.embed.extract` transform on ``[B, 1, T]`` batches.

    Batch k is corrupted with a seed derived from ``(seed, k)``, so a whole split is
    reproducible while different batches get different random draws. ``key`` names it
    for the embedding cache.
    """

    def __init__(self, name: str, severity: float, sample_rate: int, seed: int,
                 corrupt_fn: Callable | None = None):
        if corrupt_fn is None:
            from .corruptions import corrupt as corrupt_fn
        self.name, self.severity, self.sample_rate, self.seed = name, float(severity), int(sample_rate), int(seed)
        self.corrupt_fn = corrupt_fn
        self.calls = 0

    @property
    def key(self) -> str:
        fn = getattr(self.corrupt_fn, "__qualname__", type(self.corrupt_fn).__name__)
        return f"corrupt:{self.name}:s{self.severity:g}:seed{self.seed}:{fn}"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch_seed = int(np.random.SeedSequence([self.seed, self.calls]).generate_state(1)[0])
        self.calls += 1
        y = self.corrupt_fn(x, self.name, self.severity, self.sample_rate, batch_seed)
        y = torch.as_tensor(y, dtype=x.dtype, device=x.device)
        if y.ndim == 2:
            y = y.unsqueeze(1)
        return y


def _as_probes(probes) -> dict[int, Probe]:
    if isinstance(probes, (Probe, str, Path)):
        probes = [probes]
    if isinstance(probes, dict):
        items = probes.items()
    else:
        items = enumerate(probes)
    out = {}
    for seed, p in items:
        out[int(seed)] = load_probe(p) if isinstance(p, (str, Path)) else p
    if not out:
        raise ValueError("probes is empty; pass trained probes or None to train them.")
    return out


def evaluate_robustness(
    encoder_or_checkpoint,
    task,
    probes=None,
    corruptions: Sequence[str] = DEFAULT_CORRUPTIONS,
    severities: Sequence[float] = DEFAULT_SEVERITIES,
    seed: int = 0,
    root: str | Path | None = None,
    *,
    probe_seeds: Sequence[int] = (0,),
    aggregation: str = "embedding",
    model: str | None = None,
    out_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    extract_kwargs: dict | None = None,
    probe_kwargs: dict | None = None,
    corrupt_fn: Callable | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Metric-vs-severity table of ``task`` under each corruption.

    probes: None trains one clean probe per ``probe_seeds``; otherwise a :class:`Probe`,
        a saved probe path, a list of them, or ``{probe_seed: probe}``.
    seed: the corruption seed (same draws for every model compared).
    corrupt_fn: ``f(x, name, severity, sample_rate, seed)``; default
        :func:`workbench.corruptions.corrupt`.
    out_dir: if given, writes ``robustness.csv`` and ``robustness.json`` there.
    Returns a long DataFrame with columns :data:`COLUMNS` (one row per corruption,
    severity, probe and metric); :func:`summarize` gives mean ± std over probes.
    """
    from . import data
    from .embed import extract

    if isinstance(task, str):
        task = data.task(task, root)
    if not corruptions:
        raise ValueError("corruptions is empty; name at least one (e.g. 'chain').")
    bad = [s for s in severities if s < 0]
    if bad:
        raise ValueError(f"severities must be >= 0, got {bad}.")
    kw = dict(extract_kwargs or {})
    common = dict(root=root, device=device, cache_dir=cache_dir, progress=progress, **kw)

    if probes is None:
        train = extract(encoder_or_checkpoint, task, "train", **common)
        valid = extract(encoder_or_checkpoint, task, "valid", **common)
        probes = {s: train_probe(train, valid, task, seed=s, device=device, **(probe_kwargs or {}))
                  for s in probe_seeds}
    probes = _as_probes(probes)

    clean = extract(encoder_or_checkpoint, task, "test", **common)
    sample_rate = clean.meta["sample_rate"]
    model = model or clean.meta.get("encoder") or "encoder"

    def score(emb) -> list[tuple[int, str, float]]:
        out = []
        for pseed, probe in probes.items():
            for metric, value in evaluate(probe, emb, task, aggregation)["metrics"].items():
                out.append((pseed, metric, value))
        return out

    clean_scores = score(clean)
    rows = []
    for name in corruptions:
        for severity in severities:
            if severity == 0:
                scored = clean_scores
            else:
                transform = CorruptionTransform(name, severity, sample_rate, seed, corrupt_fn)
                emb = extract(encoder_or_checkpoint, task, "test", transform=transform,
                              transform_key=transform.key, **common)
                scored = score(emb)
            for pseed, metric, value in scored:
                rows.append((task.name, model, name, float(severity), int(seed), pseed, aggregation, metric,
                             float(value)))
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        df.to_csv(out / "robustness.csv", index=False)
        payload = {"task": task.name, "model": model, "aggregation": aggregation, "corruption_seed": int(seed),
                   "data_root": clean.meta.get("data_root"), "synthetic": clean.meta.get("synthetic"),
                   "checkpoint": clean.meta.get("checkpoint"), "rows": df.to_dict("records")}
        (out / "robustness.json").write_text(json.dumps(payload, indent=2) + "\n")
    return df


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over probe seeds per model, task, corruption, severity and metric."""
    keys = ["task", "model", "corruption", "severity", "metric"]
    g = df.groupby(keys, sort=False)["value"]
    out = g.agg(mean="mean", std=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                n_probes="count").reset_index()
    return out
