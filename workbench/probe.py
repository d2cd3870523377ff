"""Downstream probes on frozen, cached embeddings (GUIDE 2.5).

A probe is an MLP (``in → hidden → C``, ReLU, dropout) or a linear layer (dropout →
``in → C``) with the task's settings (:class:`workbench.data.ProbeSpec`), trained with
Adam (lr 3e-4) on chunk embeddings, each chunk carrying its track's target; loss
BCE-with-logits (multilabel), cross-entropy (multiclass) or MSE (regression). Features (and
regression targets) are standardised with the training set's mean and standard deviation,
stored in the probe.
Early stopping watches the validation loss and the best epoch's state is restored before
the probe is returned, so test scores always come from the best validation epoch.

This is a plain torch loop on purpose: the probe is a few thousand parameters on cached
arrays and trains in seconds; a Lightning trainer would cost more in overhead than the
training itself.

Track-level evaluation aggregates the chunks of each test track with a named policy
recorded in every result: ``"embedding"`` (mean chunk embedding, then classify —
SemiSupCon's default), ``"logits"`` (mean chunk logits — MARBLE) or ``"probabilities"``
(mean chunk probabilities — CLMR).

Typical use::

    rows = probe_task("runs/demo/ssl/last.ckpt", "nsynth_pitch", seeds=(0, 1, 2), model="ssl")
    results.aggregate(rows)
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .embed import Embeddings, segment_mean

__all__ = ["AGGREGATIONS", "Probe", "evaluate", "label_fraction_subset", "load_probe", "main", "probe_task",
           "probe_tasks",
           "save_probe", "track_scores", "train_probe"]

AGGREGATIONS = ("embedding", "logits", "probabilities")
DEFAULT_LR = 3e-4
DEFAULT_BATCH_SIZE = 256
DEFAULT_MAX_EPOCHS = 200
DEFAULT_PATIENCE = 10
DEFAULT_SEEDS = (0, 1, 2)
EVAL_BATCH_SIZE = 4096
MIN_STD = 1e-6  # features with a smaller training spread are left unscaled


class Probe(nn.Module):
    """Standardisation + head. ``forward`` takes raw embeddings and returns logits.

    ``hidden`` None (or 0) builds a linear probe. ``history`` holds one
    ``(epoch, train_loss, valid_loss)`` per trained epoch and ``best_epoch`` the epoch
    whose state the probe carries.
    """

    def __init__(self, in_dim: int, n_out: int, kind: str, hidden: int | None = None, dropout: float = 0.0):
        super().__init__()
        if kind not in ("multilabel", "multiclass", "regression"):
            raise ValueError(f"a probe needs a multilabel, multiclass or regression task, got kind {kind!r}.")
        if n_out <= 0 or in_dim <= 0:
            raise ValueError(f"probe dimensions must be positive, got in_dim={in_dim}, n_out={n_out}.")
        self.kind = kind
        self.config = {"in_dim": int(in_dim), "n_out": int(n_out), "kind": kind,
                       "hidden": int(hidden) if hidden else None, "dropout": float(dropout)}
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        # regression targets are learnt standardised; ``activation`` maps back to their units
        self.register_buffer("target_mean", torch.zeros(n_out))
        self.register_buffer("target_std", torch.ones(n_out))
        if hidden:
            self.head = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, n_out))
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, n_out))
        self.history: list[tuple[int, float, float]] = []
        self.best_epoch: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((x - self.mean) / self.std)

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits → probabilities (sigmoid / softmax) or predictions in target units (regression)."""
        if self.kind == "multilabel":
            return torch.sigmoid(logits)
        if self.kind == "multiclass":
            return torch.softmax(logits, dim=-1)
        return logits * self.target_std.to(logits) + self.target_mean.to(logits)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.kind == "multilabel":
            return nn.functional.binary_cross_entropy_with_logits(logits, target)
        if self.kind == "multiclass":
            return nn.functional.cross_entropy(logits, target)
        return nn.functional.mse_loss(logits, (target - self.target_mean) / self.target_std)

    @torch.no_grad()
    def logits(self, X: np.ndarray | torch.Tensor) -> np.ndarray:
        """Eval-mode logits of raw embeddings, batched."""
        was = self.training
        self.eval()
        dev = self.mean.device
        X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        out = [self(X[s:s + EVAL_BATCH_SIZE].to(dev)).cpu() for s in range(0, len(X), EVAL_BATCH_SIZE)]
        self.train(was)
        return torch.cat(out).numpy() if out else np.zeros((0, self.config["n_out"]), np.float32)


# ---------------------------------------------------------------- save / load

def save_probe(probe: Probe, path: str | Path, **extra) -> Path:
    """Write the probe's config, weights, standardisation and history (``weights_only`` loadable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": probe.config, "state_dict": {k: v.cpu() for k, v in probe.state_dict().items()},
                "history": [list(h) for h in probe.history], "best_epoch": probe.best_epoch,
                "extra": extra}, path)
    return path


def load_probe(path: str | Path, map_location: str | torch.device = "cpu") -> Probe:
    """Read a probe written by :func:`save_probe`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"probe file {path} not found; train one with train_probe and save_probe.")
    blob = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
        raise ValueError(f"{path} is not a probe file written by workbench.probe.save_probe.")
    probe = Probe(**blob["config"])
    probe.load_state_dict(blob["state_dict"])
    probe.history = [tuple(h) for h in blob.get("history", [])]
    probe.best_epoch = blob.get("best_epoch")
    return probe.eval()


# ---------------------------------------------------------------- training

def _n_outputs(task, train: Embeddings, valid: Embeddings) -> int:
    if task.kind == "multiclass":
        if task.classes:
            return len(task.classes)
        return int(max(train.targets.max(initial=0), valid.targets.max(initial=0))) + 1
    if train.targets.ndim != 2 or train.targets.shape[1] == 0:
        raise ValueError(f"task {task.name}: {task.kind} targets must be [N, K] with K > 0, "
                         f"got {train.targets.shape}.")
    return int(train.targets.shape[1])


def _target_tensor(kind: str, targets: np.ndarray) -> torch.Tensor:
    if kind == "multiclass":
        return torch.as_tensor(targets, dtype=torch.long)
    return torch.as_tensor(targets, dtype=torch.float32)


def _setup_probe(train: Embeddings, valid: Embeddings, task, seed: int, hidden, dropout, weight_decay,
                 device: torch.device):
    """Check the inputs, build the seeded probe with its standardisation (inside the caller's
    ``fork_rng``: ``torch.manual_seed(seed)`` then the weights, so the global RNG is left where
    the probe's dropout masks start) and move the splits to ``device``.

    Returns ``(probe, (Xtr, ytr, Xva, yva), weight_decay)``; shared by :func:`train_probe` and
    :func:`workbench.batched_probe.train_probes` so both start from the same state.
    """
    if task.kind not in ("multilabel", "multiclass", "regression"):
        raise ValueError(f"task {task.name} is {task.kind}; only labelled tasks can be probed.")
    if train.n_chunks == 0 or valid.n_chunks == 0:
        raise ValueError(f"task {task.name}: empty training ({train.n_chunks}) or validation "
                         f"({valid.n_chunks}) embeddings.")
    if train.dim != valid.dim:
        raise ValueError(f"train embeddings are {train.dim}-d but validation ones {valid.dim}-d.")
    for name, emb in (("training", train), ("validation", valid)):
        check_finite(emb, f"{task.name} {name}")
    check_learnable(train, task)
    spec = task.probe
    hidden = spec.hidden if hidden is None else hidden
    dropout = spec.dropout if dropout is None else dropout
    weight_decay = spec.weight_decay if weight_decay is None else weight_decay
    Xtr = torch.from_numpy(train.X).to(device)
    ytr = _target_tensor(task.kind, train.chunk_targets()).to(device)
    Xva = torch.from_numpy(valid.X).to(device)
    yva = _target_tensor(task.kind, valid.chunk_targets()).to(device)
    torch.manual_seed(seed)
    probe = Probe(train.dim, _n_outputs(task, train, valid), task.kind, hidden, dropout).to(device)
    probe.mean.copy_(Xtr.mean(0))
    std = Xtr.std(0, unbiased=False)
    probe.std.copy_(torch.where(std > MIN_STD, std, torch.ones_like(std)))
    if task.kind == "regression":
        probe.target_mean.copy_(ytr.mean(0))
        tstd = ytr.std(0, unbiased=False)
        probe.target_std.copy_(torch.where(tstd > MIN_STD, tstd, torch.ones_like(tstd)))
    return probe, (Xtr, ytr, Xva, yva), weight_decay


def check_budget(batch_size: int, max_epochs: int, patience: int) -> None:
    """The one rule for a probe's training budget (sequential and batched)."""
    if batch_size <= 0 or max_epochs <= 0 or patience <= 0:
        raise ValueError("batch_size, max_epochs and patience must be positive.")


def never_finite(task_name: str, last: float, seed: int | None = None) -> ValueError:
    """The error of a probe whose validation loss was never finite (no state to restore)."""
    which = f"task {task_name}" + ("" if seed is None else f" (seed {seed})")
    return ValueError(f"{which}: the validation loss was never finite (last {last}); check the embeddings for "
                      "NaN/inf or lower the learning rate.")


def train_probe(
    train: Embeddings,
    valid: Embeddings,
    task,
    *,
    seed: int,
    hidden: int | None = None,
    dropout: float | None = None,
    weight_decay: float | None = None,
    lr: float = DEFAULT_LR,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_epochs: int = DEFAULT_MAX_EPOCHS,
    patience: int = DEFAULT_PATIENCE,
    min_delta: float = 0.0,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    on_epoch: Callable[[int, Probe, float, float], None] | None = None,
) -> Probe:
    """Train a probe on chunk embeddings with early stopping on the validation loss.

    hidden, dropout, weight_decay: None takes the task's :class:`ProbeSpec`; ``hidden=0``
        forces a linear probe.
    patience: epochs without a validation-loss improvement larger than ``min_delta``
        before stopping. The best epoch's state is restored before returning.
    threads: torch CPU threads while training (restored afterwards); None leaves torch's
        setting. On a small shared CPU, 1 is often several times faster than the default
        for a probe this size (benchmarks/probe.py).
    on_epoch: called as ``on_epoch(epoch, probe, train_loss, valid_loss)`` after each
        epoch (epochs count from 1).
    The run is deterministic for a given ``seed`` and leaves the global RNG untouched.
    """
    check_budget(batch_size, max_epochs, patience)
    device = torch.device(device)
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), _torch_threads(threads):
        probe, (Xtr, ytr, Xva, yva), weight_decay = _setup_probe(train, valid, task, seed, hidden, dropout,
                                                                 weight_decay, device)
        opt = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
        gen = torch.Generator().manual_seed(seed)

        best_loss, best_state, best_epoch, bad = math.inf, None, 0, 0
        for epoch in range(1, max_epochs + 1):
            probe.train()
            order = torch.randperm(len(Xtr), generator=gen).to(device)
            total = 0.0
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                loss = probe.loss(probe(Xtr[idx]), ytr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            train_loss = total / len(Xtr)
            valid_loss = _eval_loss(probe, Xva, yva)
            probe.history.append((epoch, train_loss, valid_loss))
            if on_epoch is not None:
                on_epoch(epoch, probe, train_loss, valid_loss)
            if valid_loss < best_loss - min_delta:
                best_loss, best_epoch, bad = valid_loss, epoch, 0
                best_state = copy.deepcopy(probe.state_dict())
            else:
                bad += 1
                if bad >= patience:
                    break
    if best_state is None:
        raise never_finite(task.name, valid_loss)
    probe.load_state_dict(best_state)
    probe.best_epoch = best_epoch
    return probe.eval()


def check_finite(emb: Embeddings, what: str) -> None:
    """Refuse embeddings holding NaN or inf, naming the checkpoint they came from."""
    if emb.n_chunks and not np.isfinite(emb.X).all():
        bad = int((~np.isfinite(emb.X)).any(1).sum())
        source = emb.meta.get("checkpoint") or emb.meta.get("encoder") or "the encoder"
        raise ValueError(f"{what} embeddings from {source}: {bad} of {emb.n_chunks} chunks hold NaN/inf; a probe "
                         "on them would report a meaningless score. Use an earlier (finite) checkpoint.")


def check_learnable(train: Embeddings, task) -> None:
    """Refuse a training split with one class (or only constant tags / targets), where any probe
    scores trivially; warn about single constant tag columns."""
    from .metrics import warn_once

    y = train.targets
    if task.kind == "multiclass":
        present = np.unique(y)
        if len(present) < 2:
            name = task.classes[int(present[0])] if task.classes and len(present) else present.tolist()
            raise ValueError(f"task {task.name}: the training split holds a single class ({name!r}, "
                             f"{train.n_tracks} tracks); a probe cannot learn anything and its score would be "
                             "trivial. Check the labels / split of the data set, or use a larger fraction.")
        return
    if y.ndim != 2 or y.shape[1] == 0 or len(y) == 0:
        return
    constant = np.all(y == y[:1], axis=0)
    if constant.all():
        raise ValueError(f"task {task.name}: every {'tag' if task.kind == 'multilabel' else 'target'} column is "
                         f"constant over the {train.n_tracks} training tracks; a probe cannot learn anything. "
                         "Check the labels of the data set.")
    if constant.any():
        cols = np.flatnonzero(constant)
        names = [task.classes[c] if task.classes and c < len(task.classes) else int(c) for c in cols[:5]]
        warn_once(f"task {task.name}: {len(cols)} of {y.shape[1]} {'tag' if task.kind == 'multilabel' else 'target'}"
                  f" column(s) are constant in the training split ({names}); the probe learns nothing "
                  "about them.", stacklevel=3)  # once per process, not once per probe seed


@contextlib.contextmanager
def _torch_threads(n: int | None):
    if n is None:
        yield
        return
    if n <= 0:
        raise ValueError(f"threads must be positive or None, got {n}.")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def _eval_loss(probe: Probe, X: torch.Tensor, y: torch.Tensor) -> float:
    probe.eval()
    total = 0.0
    for s in range(0, len(X), EVAL_BATCH_SIZE):
        xb, yb = X[s:s + EVAL_BATCH_SIZE], y[s:s + EVAL_BATCH_SIZE]
        total += float(probe.loss(probe(xb), yb)) * len(xb)
    return total / len(X)


# ---------------------------------------------------------------- evaluation

def track_scores(probe: Probe, emb: Embeddings, aggregation: str = "embedding") -> np.ndarray:
    """Track-level scores (probabilities, or predictions for regression), ``[n_tracks, C]``."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}.")
    act = lambda a: probe.activation(torch.from_numpy(a)).numpy()  # noqa: E731
    if aggregation == "embedding":
        return act(probe.logits(emb.track_mean()))
    chunk_logits = probe.logits(emb.X)
    if aggregation == "logits":
        return act(segment_mean(chunk_logits, emb.track_index, emb.n_tracks))
    return segment_mean(act(chunk_logits), emb.track_index, emb.n_tracks)


def evaluate(probe: Probe, test: Embeddings, task, aggregation: str = "embedding",
             return_scores: bool = False) -> dict:
    """Track-level metrics of ``task`` on ``test`` (computed once over the whole split).

    Returns ``{"task", "aggregation", "metrics": {name: value}, "n_tracks", "n_chunks"}``
    (plus ``"scores"`` ``[n_tracks, C]`` when asked).
    """
    from . import metrics

    scores = track_scores(probe, test, aggregation)
    out = {"task": task.name, "aggregation": aggregation,
           "metrics": metrics.compute(task, test.targets, scores),
           "n_tracks": test.n_tracks, "n_chunks": test.n_chunks}
    if return_scores:
        out["scores"] = scores
    return out


# ---------------------------------------------------------------- data-efficient probing

def label_fraction_subset(targets: np.ndarray, kind: str, fraction: float, seed: int) -> np.ndarray:
    """Sorted rows of a seeded ``fraction`` of the labelled training tracks.

    Draws ``max(1, round(fraction · N))`` tracks, covering every class present with at
    least one track first (one random track per class, classes in random order; for
    multilabel, only classes not yet covered), then filling at random. With more classes
    than the budget the subset holds one track per class and is larger than asked.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
    n = len(targets)
    if fraction == 1:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    budget = max(1, int(round(fraction * n)))
    chosen: list[int] = []
    if kind in ("multiclass", "multilabel"):
        onehot = (np.eye(int(targets.max()) + 1, dtype=bool)[targets] if kind == "multiclass"
                  else np.asarray(targets) > 0)
        covered = np.zeros(onehot.shape[1], dtype=bool)
        for c in rng.permutation(np.flatnonzero(onehot.any(0))):
            if covered[c]:
                continue
            i = int(rng.choice(np.flatnonzero(onehot[:, c])))
            chosen.append(i)
            covered |= onehot[i]
    rest = np.setdiff1d(np.arange(n), chosen)
    fill = max(0, budget - len(chosen))
    chosen.extend(rng.permutation(rest)[:fill].tolist())
    return np.sort(np.asarray(chosen, dtype=np.int64))


def probe_task(
    encoder_or_checkpoint,
    task,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    fraction: float = 1.0,
    aggregation: str | Sequence[str] = "embedding",
    root: str | Path | None = None,
    *,
    model: str | None = None,
    support: str | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    extract_kwargs: dict | None = None,
    probe_kwargs: dict | None = None,
    probe_dir: str | Path | None = None,
    progress: bool = True,
) -> list[dict]:
    """Probe a frozen encoder on ``task``: extract train/valid/test once (cached), train
    one probe per seed and evaluate it on whole test tracks.

    fraction: train on a seeded fraction of the labelled training tracks (the subset is
        drawn with each probe's seed; validation and test stay whole).
    aggregation: one policy or several (each evaluated with the same trained probe).
    model, support: labels copied into the result rows (e.g. "semisupcon", "nsynth_pitch").
    probe_kwargs: :func:`train_probe` settings. Several seeds train together as one batched
        model (:func:`workbench.batched_probe.train_probes`, the same probes as one
        :func:`train_probe` per seed); an ``on_epoch`` callback trains them one by one.
    probe_dir: if given, each probe is saved there as ``<task>-seed<seed>.pt``.
    Returns one record per (seed, aggregation); :func:`workbench.results.aggregate`
    turns them into mean ± std rows. Tracks that could not be read are left out of every
    split (with a warning) and listed in each record's ``skipped`` (split -> id -> reason).
    """
    return probe_tasks(encoder_or_checkpoint, [task], seeds, fraction, aggregation, root, model=model,
                       support=support, device=device, cache_dir=cache_dir, extract_kwargs=extract_kwargs,
                       probe_kwargs=probe_kwargs, probe_dir=probe_dir, progress=progress)


def probe_tasks(
    encoder_or_checkpoint,
    tasks: Sequence,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    fraction: float = 1.0,
    aggregation: str | Sequence[str] = "embedding",
    root: str | Path | None = None,
    **kwargs,
) -> list[dict]:
    """:func:`probe_task` on several tasks of one encoder, every (task, seed) probe trained in
    one batched run (tasks on the same audio, e.g. nsynth_pitch and nsynth_instrument, share
    one stack). Records come task by task, as from one :func:`probe_task` call per task."""
    from . import data
    from .embed import extract

    model, support = kwargs.pop("model", None), kwargs.pop("support", None)
    device, cache_dir = kwargs.pop("device", "cpu"), kwargs.pop("cache_dir", None)
    extract_kwargs, probe_kwargs = kwargs.pop("extract_kwargs", None), dict(kwargs.pop("probe_kwargs", None) or {})
    probe_dir, progress = kwargs.pop("probe_dir", None), kwargs.pop("progress", True)
    if kwargs:
        raise TypeError(f"probe_tasks() got unexpected keyword arguments {sorted(kwargs)}")
    aggregations = [aggregation] if isinstance(aggregation, str) else list(aggregation)
    for a in aggregations:
        if a not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {a!r}.")
    tasks = [data.task(t, root) if isinstance(t, str) else t for t in tasks]
    kw = dict(extract_kwargs or {})
    embs, trains, skips = [], [], []
    for task in tasks:
        emb = {split: extract(encoder_or_checkpoint, task, split, root=root, device=device, cache_dir=cache_dir,
                              progress=progress, **kw) for split in ("train", "valid", "test")}
        embs.append(emb)
        # unreadable tracks left out of each split (id -> reason), recorded with every result
        skips.append({split: dict(e.meta.get("skipped", {})) for split, e in emb.items() if e.meta.get("skipped")})
        for seed in seeds:
            rows = label_fraction_subset(emb["train"].targets, task.kind, fraction, seed)
            trains.append(emb["train"] if len(rows) == emb["train"].n_tracks else emb["train"].subset(rows))
    jobs = [(task, seed, emb) for task, emb in zip(tasks, embs) for seed in seeds]
    skipped_of = {id(emb): skipped for emb, skipped in zip(embs, skips)}
    if probe_kwargs.get("threads") is None:  # the thread policy, sized to the load now (workbench.threads)
        from .threads import fair_threads

        probe_kwargs["threads"] = fair_threads(0)
    if len(jobs) > 1 and "on_epoch" not in probe_kwargs:
        from .batched_probe import ProbeJob, train_probes

        spec = {k: probe_kwargs.pop(k) for k in ("hidden", "dropout", "weight_decay") if k in probe_kwargs}
        probes = train_probes([ProbeJob(train, emb["valid"], task, seed, **spec)
                               for (task, seed, emb), train in zip(jobs, trains)], device=device, **probe_kwargs)
    else:
        probes = [train_probe(train, emb["valid"], task, seed=seed, device=device, **probe_kwargs)
                  for (task, seed, emb), train in zip(jobs, trains)]
    records = []
    for (task, seed, emb), train, probe in zip(jobs, trains, probes):
        meta = emb["test"].meta
        if probe_dir is not None:
            save_probe(probe, Path(probe_dir) / f"{task.name}-seed{seed}.pt", task=task.name, seed=seed,
                       fraction=fraction, train_ids=train.ids)
        for a in aggregations:
            result = evaluate(probe, emb["test"], task, a)
            records.append({
                "model": model or meta.get("encoder") or "encoder", "checkpoint": meta.get("checkpoint"),
                "support": support, "task": task.name, "seed": int(seed), "fraction": float(fraction),
                "aggregation": a, "metrics": result["metrics"], "n_train_tracks": train.n_tracks,
                "n_test_tracks": result["n_tracks"], "best_epoch": probe.best_epoch,
                "epochs": len(probe.history), "data_root": meta.get("data_root"),
                "synthetic": bool(meta.get("synthetic", False)), "encoder_sha256": meta.get("encoder_sha256"),
                "skipped": skipped_of[id(emb)],
            })
    return records


# ---------------------------------------------------------------- CLI

def _parser():
    import argparse

    p = argparse.ArgumentParser(prog="python -m workbench probe",
                                description="Probe frozen encoders on downstream tasks (mean ± std over seeds).")
    p.add_argument("--checkpoint", nargs="+", required=True, help="one or more checkpoints / encoder state dicts")
    p.add_argument("--model", nargs="+", default=None, help="a name per checkpoint (default: its folder name)")
    p.add_argument("--support", nargs="+", default=None, help="support task per checkpoint ('none' for none)")
    p.add_argument("--task", nargs="+", required=True, help="task names, e.g. nsynth_pitch mtat_top50")
    p.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    p.add_argument("--fraction", type=float, default=1.0, help="fraction of labelled training tracks")
    p.add_argument("--aggregation", nargs="+", default=["embedding"], choices=AGGREGATIONS)
    p.add_argument("--root", default=None, help="data root for every task (default: resolved per data set)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--batch-size", type=int, default=None, help="encoder batch size for extraction")
    p.add_argument("--max-chunks", type=int, default=None, help="at most this many chunks per track")
    p.add_argument("--max-epochs", type=int, default=DEFAULT_MAX_EPOCHS)
    p.add_argument("--patience", type=int, default=DEFAULT_PATIENCE)
    p.add_argument("--out", required=True, help="folder for results.json and results.csv")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m workbench probe …``: write ``<out>/results.{json,csv}`` and print the table."""
    from .results import aggregate, results_table, write_results

    args = _parser().parse_args(argv)
    n = len(args.checkpoint)
    models = args.model or [Path(c).parent.name or Path(c).stem for c in args.checkpoint]
    supports = args.support or ["none"] * n
    if len(models) != n or len(supports) != n:
        raise SystemExit(f"--model and --support need one value per checkpoint ({n}).")
    extract_kwargs = {k: v for k, v in (("batch_size", args.batch_size), ("max_chunks", args.max_chunks))
                      if v is not None}
    records = []
    out = Path(args.out)
    jobs = [(c, m, s, t) for c, m, s in zip(args.checkpoint, models, supports) for t in args.task]
    for n_done, (ckpt, model, support, task) in enumerate(jobs, start=1):
        records += probe_task(ckpt, task, seeds=args.seeds, fraction=args.fraction,
                              aggregation=args.aggregation, root=args.root, model=model,
                              support=None if support.lower() == "none" else support, device=args.device,
                              cache_dir=args.cache_dir, extract_kwargs=extract_kwargs,
                              probe_kwargs={"max_epochs": args.max_epochs, "patience": args.patience})
        # written after every (checkpoint, task): a crash later never costs the finished ones
        rows = aggregate(records)
        write_results(rows, out / "results.json", out / "results.csv",
                      extra={"records": records, "complete": n_done == len(jobs),
                             "pending": [{"checkpoint": c, "task": t} for c, _, _, t in jobs[n_done:]],
                             "skipped": {f"{r['model']}/{r['task']}": r["skipped"] for r in records
                                         if r.get("skipped")}})
    index = ("model", "aggregation") if len(args.aggregation) > 1 else ("model",)
    print(results_table(rows, metric="all", index=index).to_string())
    return 0


# ---------------------------------------------------------------- the experiment notebooks' probe budget
from .scales import SCALE_NAMES, scale_defaults  # noqa: E402 (this section was moved here from experiments.py)

#: Probe budget per scale: (extract_kwargs, probe_kwargs), from :mod:`workbench.scales` (trainer
#: ``probe``). Smoke is for CI only; demo keeps the demo's bounded cost; paper uses the probes' own
#: defaults (whole tracks).
PROBE_SETTINGS: dict[str, tuple[dict, dict]] = {
    _scale: (_budget["extract"], _budget["probe"])
    for _scale, _budget in ((s, scale_defaults(s, "probe")) for s in SCALE_NAMES)
}


def probe_settings(scale: str) -> tuple[dict, dict]:
    """(extract_kwargs, probe_kwargs) of :data:`PROBE_SETTINGS` for ``scale`` (copies)."""
    if scale not in PROBE_SETTINGS:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(PROBE_SETTINGS)}")
    extract_kwargs, probe_kwargs = PROBE_SETTINGS[scale]
    return dict(extract_kwargs), dict(probe_kwargs)


def probe_checkpoint(checkpoint: str | Path, tasks: Sequence[str], *, scale: str, seeds: Sequence[int] = (0,),
                     model: str | None = None, support: str | None = None, aggregation="embedding",
                     fraction: float = 1.0, root: str | Path | None = None, device: str | None = None,
                     progress: bool = True) -> list[dict]:
    """Probe one frozen checkpoint on ``tasks`` with the scale's probe budget; returns
    aggregated result rows (:func:`workbench.results.aggregate`)."""
    from .results import aggregate

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    extract_kwargs, probe_kwargs = probe_settings(scale)
    records = []
    for task in tasks:
        records += probe_task(str(checkpoint), task, seeds=tuple(seeds), fraction=fraction,
                              aggregation=aggregation, root=root, model=model, support=support, device=device,
                              extract_kwargs=extract_kwargs, probe_kwargs=probe_kwargs, progress=progress)
    return aggregate(records)
