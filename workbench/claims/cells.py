"""One cell of the claims grid: its resolved configuration, its config hash, and running it.

A cell trains one model (:func:`workbench.train.pretrain.pretrain`,
:func:`workbench.train.supervised.train_supervised` or :func:`workbench.train.cola.train_cola`)
into ``runs/claims/<scale>/<cell id>/`` (ignored by git; an unfinished run there is resumed
from its last checkpoint, a finished one with the same configuration is reused) and then
runs the evaluations its claims need:

- probes (:func:`workbench.probe.probe_task`, the scale's probe budget of
  :func:`workbench.probe.probe_settings`) → per task, per metric, one value per probe
  seed and their mean (the cell's value for its pretraining seed);
- robustness (:func:`workbench.robustness.evaluate_robustness`; the end-to-end model is
  scored with its own classifier head on the corrupted test set, as in the paper);
- a latent map (:mod:`workbench.latent`): t-SNE of the track embeddings of the test set and
  the k-NN pitch-class accuracy in the map and in the embedding space; the 2-D points and
  labels are written beside the result (``<cell>.map.csv``) so the figure needs no model.

The **config hash** covers everything that decides the numbers: the resolved trainer config
(bookkeeping fields such as ``runs_dir``, ``num_workers`` or ``devices`` left out), the
evaluations, the probe budget and seeds, :data:`RESULT_VERSION` and the identity of the data
(per data set read: the embedded benchmark's version *of that data set*, scale and seed, or
the real data's path), so a change to one embedded data set invalidates only the cells
that read it. Results written before data sets had their own versions carry the whole
generator's ``generator_version``; every data set was at that version then, so
:func:`legacy_identity` reads them as that data set version (:func:`accepted_hashes`).
The *spec hash* is the same without the data identity: the report checks it without
touching any data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .registry import Cell, Recipe

__all__ = ["RESULT_VERSION", "RUNTIME_FIELDS", "NotRunnable", "resolve", "spec_of", "spec_hash", "config_hash",
           "data_identity", "data_version", "legacy_identity", "accepted_hashes", "datasets_of", "run_cell",
           "knn_accuracy", "scale_steps", "code_version", "GRID_PRECISION", "grid_precision"]

#: Bump when the result file's content or the evaluation code changes what a cell reports.
RESULT_VERSION = 1
#: Config fields that do not change a cell's numbers (left out of its hash).
RUNTIME_FIELDS = ("name", "runs_dir", "accelerator", "devices", "num_nodes", "strategy", "num_workers", "log_every",
                  "checkpoint_every", "compile", "root")
DEFAULT_RUNS_ROOT = "runs/claims"

#: The precision a cell trains in when its recipe says ``auto`` (every recipe of the grid does),
#: by device kind. On the CPU always fp32: ``auto`` alone would pick bf16-mixed on CPUs with
#: native bf16 (AVX512-BF16/AMX) and fp32 elsewhere, so cells of one claim computed on
#: different machines would differ in numerics, not only in seed. On GPUs the trainer's own
#: ``auto`` (``workbench.train.run.precision``). A cell's spec keeps ``auto``; this rule, not the
#: spec, fixes what it means for the grid. The end-to-end supervised trainer is fp32 everywhere.
GRID_PRECISION = {"cpu": "32-true"}
#: k-NN accuracy: stratified folds over the test tracks.
KNN_FOLDS = 5
#: Decimals kept for the stored 2-D map coordinates.
MAP_DECIMALS = 3


class NotRunnable(ValueError):
    """The cell's configuration is rejected (e.g. a COLA field that does not exist yet)."""


# --------------------------------------------------------------------------- configuration
#: A steps kind ``scale*N``: N times the trainer's own steps at the scale, its learning-rate
#: milestones scaled alike (COLA: the multi-source model given each source a targeted model's steps).
SCALED_STEPS_PREFIX = "scale*"


def steps_factor(kind: str) -> int:
    """N of a ``scale*N`` steps kind (1 for any other kind)."""
    if not kind.startswith(SCALED_STEPS_PREFIX):
        return 1
    factor = kind[len(SCALED_STEPS_PREFIX):]
    if not factor.isdigit() or int(factor) < 1:
        raise ValueError(f"steps kind {kind!r}: expected {SCALED_STEPS_PREFIX}N with N a positive integer")
    return int(factor)


def scale_steps(scale: str, kind: str) -> int | None:
    """Training steps of a recipe: ``main`` = the scale's pretraining steps, ``quarter`` = a
    quarter of them (the paper's 50 k ablations vs 200 k), ``scale`` (or ``scale*N``, scaled in
    :func:`resolve`): None (the trainer's own)."""
    from ..config import SCALES

    if kind in ("scale", "init") or kind.startswith(SCALED_STEPS_PREFIX):
        return None
    main = int(SCALES[scale].get("steps", 600))
    if kind == "main":
        return main
    if kind == "quarter":
        return max(1, main // 4)
    raise ValueError(f"unknown steps kind {kind!r}")


def resolve(recipe: Recipe, scale: str, seed: int, **runtime: Any):
    """The validated trainer config of ``recipe`` at ``scale`` and ``seed``; raises
    :class:`NotRunnable` with the config's own message when it rejects the recipe."""
    from ..config import ConfigError

    steps = scale_steps(scale, recipe.steps)
    try:
        if recipe.trainer == "pretrain":
            from ..config import resolve_config

            over = {**recipe.overrides, **runtime, "seed": seed}
            if steps is not None:
                over["steps"] = steps
            return resolve_config(scale, recipe.method, **over)
        if recipe.trainer == "supervised":
            from ..train.supervised import SupervisedConfig

            over = {**recipe.overrides, **{k: v for k, v in runtime.items() if k in ("runs_dir",)}, "seed": seed}
            if steps is not None:
                over["max_steps"] = steps
            return SupervisedConfig.for_scale(scale, task=recipe.method, **over)
        if recipe.trainer == "cola":
            from ..train.cola import resolve_cola_config

            over = {**recipe.overrides, **runtime, "seed": seed}
            if steps is not None:
                over["steps"] = steps
            config = resolve_cola_config(scale, **over)
            factor = steps_factor(recipe.steps)
            if factor == 1:
                return config
            return resolve_cola_config(scale, **{**over, "steps": config.steps * factor,
                                                 "lr_milestones": [m * factor for m in config.lr_milestones]})
    except (ConfigError, ValueError, TypeError) as err:
        raise NotRunnable(f"{recipe.trainer} config rejected: {err}") from None
    raise ValueError(f"unknown trainer {recipe.trainer!r}")


def _config_dict(config) -> dict:
    d = dataclasses.asdict(config)
    return {k: v for k, v in d.items() if k not in RUNTIME_FIELDS}


def canonical_key(recipe: Recipe, scale: str) -> str:
    """A key equal for recipes that resolve to the same config (the raw key when the
    config rejects the recipe)."""
    try:
        key = [recipe.trainer, _config_dict(resolve(recipe, scale, 0))] + (["init"] if recipe.steps == "init" else [])
        return json.dumps(key, sort_keys=True, default=str)
    except NotRunnable:
        return recipe._key


def probe_budget(scale: str, probe_seeds) -> dict:
    from ..probe import probe_settings

    extract_kwargs, probe_kwargs = probe_settings(scale)
    return {"extract": extract_kwargs, "probe": probe_kwargs, "seeds": list(probe_seeds)}


def spec_of(cell: Cell, scale: str, probe_seeds) -> dict:
    """Everything that decides a cell's numbers except the data (JSON-able)."""
    config = resolve(cell.recipe, scale, cell.seed)
    spec = {"result_version": RESULT_VERSION, "scale": scale, "trainer": cell.recipe.trainer,
            "method": cell.recipe.method, "seed": cell.seed, "config": _config_dict(config),
            "evaluations": cell.evaluations(), "probe_budget": probe_budget(scale, probe_seeds)}
    if cell.recipe.steps == "init":
        spec["untrained"] = True
    return spec


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def spec_hash(spec: dict) -> str:
    return _digest(spec)


def config_hash(spec: dict, data: dict) -> str:
    return _digest({"spec": spec, "data": data})


#: The identity field of an embedded data set's own version, and the field results written
#: before per-data-set versions carried instead (the whole generator's version).
VERSION_FIELD, LEGACY_VERSION_FIELD = "dataset_version", "generator_version"


def data_version(ident: dict) -> str | None:
    """The embedded data set version an identity records (a legacy ``generator_version`` is
    that version: every data set was at the generator's version before they had their own)."""
    value = ident.get(VERSION_FIELD, ident.get(LEGACY_VERSION_FIELD))
    return None if value is None else str(value)


def legacy_identity(data: dict) -> dict:
    """``data`` as results written before per-data-set versions recorded it."""
    return {ds: ({LEGACY_VERSION_FIELD if k == VERSION_FIELD else k: v for k, v in ident.items()}
                 if isinstance(ident, dict) else ident) for ds, ident in data.items()}


def accepted_hashes(spec: dict, data: dict) -> set[str]:
    """Config hashes a stored result may carry to count as run on ``data``: the current one and
    the one a pre-per-data-set-version result had for the same data set versions."""
    return {config_hash(spec, data), config_hash(spec, legacy_identity(data))}


def datasets_of(cell: Cell, config) -> list[str]:
    """The tasks whose data the cell reads (training and evaluation)."""
    names = set(cell.probe_tasks)
    for attr in ("support", "unlabeled", "task", "pool"):
        value = getattr(config, attr, None)
        if isinstance(value, str):
            names.add(value)
    for ev in (cell.robustness, cell.latent):
        if ev:
            names.add(ev["task"])
    return sorted(names)


_IDENTITY_CACHE: dict = {}


def data_identity(tasks) -> dict:
    """Per data set read by ``tasks``: the embedded data set's own version (``dataset_version``),
    scale and seed (from its SYNTHETIC.json), or the real data's folder; ``{"missing": True}``
    when the data set is not found. Resolving an embedded data set renders it on first use."""
    from ..data.tasks import get_spec

    out = {}
    for task in tasks:
        dataset = get_spec(task).dataset
        if dataset in out:
            continue
        key = (dataset, os.environ.get("WORKBENCH_DATA"), os.environ.get("WORKBENCH_EMBEDDED_SCALE"),
               os.environ.get("WORKBENCH_EMBEDDED_SEED"), os.environ.get("WORKBENCH_CACHE"))
        if key not in _IDENTITY_CACHE:
            _IDENTITY_CACHE[key] = _identity_of(task, dataset)
        out[dataset] = _IDENTITY_CACHE[key]
    return out


def _identity_of(task: str, dataset: str) -> dict:
    from .. import data

    try:
        root = data.data_root(task)
    except FileNotFoundError:  # no message in the hash: it names this machine's folders
        return {"missing": True}
    if not root.synthetic:
        return {"synthetic": False, "source": root.source, "path": str(root.path)}
    for folder in (root.path, *root.path.parents[:2]):
        marker = folder / "SYNTHETIC.json"
        if marker.is_file():
            meta = json.loads(marker.read_text())
            # a tree rendered before per-data-set versions: each data set is at the tree's version
            version = meta["dataset_versions"].get(dataset) if "dataset_versions" in meta else \
                meta.get(LEGACY_VERSION_FIELD)
            return {"synthetic": True, VERSION_FIELD: version, "scale": meta.get("scale"), "seed": meta.get("seed")}
    return {"synthetic": True, "path": str(root.path)}


def code_version() -> dict:
    from .. import __version__, runs

    commit = None
    try:
        commit = runs.environment().get("git_commit")
    except Exception:  # noqa: BLE001 - the version is informative only
        pass
    return {"workbench": __version__, "git_commit": commit}


# --------------------------------------------------------------------------- running
def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _same_config(run_dir: Path, config) -> bool:
    import yaml

    saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    return {k: v for k, v in saved.items() if k not in RUNTIME_FIELDS} == \
        json.loads(json.dumps(_config_dict(config), default=str))


#: Recipe trainer -> training method whose loader reads the decoded cache: before training, the
#: cell decodes its pools once (``workbench.train.run.prepare_caches``) so that loader workers
#: crop views instead of decoding MP3s beside the training process.
CACHED_TRAINERS = {"pretrain": "semisupcon", "cola": "cola"}


def _train(cell: Cell, config, runs_dir: Path, progress: bool) -> tuple[Path, str]:
    """Train (or reuse / resume) the cell's model; returns (run_dir, how)."""
    from .. import runs

    if cell.recipe.steps == "init":
        return _untrained(config, runs_dir), "untrained"
    if cell.recipe.trainer in CACHED_TRAINERS:
        from ..train.run import prepare_caches

        prepare_caches(CACHED_TRAINERS[cell.recipe.trainer], config, progress=progress)
    found = runs.latest_run(runs_dir, lambda run: _same_config(run, config),
                            resumable=cell.recipe.trainer != "supervised")
    if found is not None:
        run_dir, finished = found
        if finished:
            return run_dir, "reused"
        if cell.recipe.trainer == "pretrain":
            from ..train.pretrain import pretrain

            return pretrain(resume=run_dir, progress=progress), "resumed"
        from ..train.cola import train_cola

        return train_cola(resume=run_dir, progress=progress), "resumed"
    if cell.recipe.trainer == "pretrain":
        from ..train.pretrain import pretrain

        return pretrain(config, progress=progress), "trained"
    if cell.recipe.trainer == "cola":
        from ..train.cola import train_cola

        return train_cola(config, progress=progress), "trained"
    from ..train.supervised import train_supervised

    run_dir, _ = train_supervised(config, progress=progress)
    return run_dir, "trained"


def _untrained(config, runs_dir: Path) -> Path:
    """The random-init reference of a COLA config: its checkpoint in the training layout."""
    import yaml

    from ..train.cola import random_init_checkpoint

    run_dir = runs_dir / "untrained"
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        partial = random_init_checkpoint(config, run_dir / "checkpoints" / "last.ckpt.partial")
        (run_dir / "config.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(_config_dict(config), default=str))))
        partial.replace(checkpoint)
    return run_dir


def _pair_accuracy(run_dir: Path) -> list[list[float]]:
    """``[[step, pair_accuracy, chance], ...]`` of a COLA run's training log (every logged step)."""
    import csv

    logs = sorted(run_dir.glob("logs/attempt*/metrics.csv"))
    out: dict[int, list[float]] = {}
    for path in logs:  # later attempts (resumes) overwrite the steps they repeat
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("pair_accuracy") not in (None, ""):
                    out[int(row["step"])] = [int(row["step"]), round(float(row["pair_accuracy"]), 5),
                                             round(float(row.get("chance_accuracy") or "nan"), 5)]
    return [out[k] for k in sorted(out)]


def grid_precision(cell: Cell, device: str) -> dict:
    """``{"precision": ...}`` to train ``cell`` on ``device`` under :data:`GRID_PRECISION`, or ``{}``
    (a recipe that names its precision, a device kind the rule leaves to the trainer)."""
    if cell.recipe.overrides.get("precision", "auto") != "auto":
        return {}
    kind = "cuda" if device.startswith("cuda") else "cpu"
    return {"precision": GRID_PRECISION[kind]} if kind in GRID_PRECISION else {}


def run_cell(cell: Cell, scale: str, probe_seeds, *, device: str = "cpu", runs_root: str | Path = DEFAULT_RUNS_ROOT,
             results_dir: Path | None = None, run_key: str | None = None, progress: bool = False) -> dict:
    """Train and evaluate one cell; returns its result payload (without hashes, which the
    runner adds). Writes the latent map (if any) to ``results_dir/<cell>.map.csv``.
    run_key: the cell's config hash; training runs live in ``runs/claims/<scale>/<cell>/<key>/``
    so that a run on other data (same config, another benchmark version) is never resumed."""
    from ..params import resolve_path

    t0, c0 = time.perf_counter(), _cpu_seconds()
    runs_dir = resolve_path(runs_root) / scale / cell.id / (run_key or "run")
    runs_dir.mkdir(parents=True, exist_ok=True)
    runtime = {"runs_dir": str(runs_dir)}
    if cell.recipe.trainer != "supervised":
        runtime["accelerator"] = "gpu" if device.startswith("cuda") else "cpu"
        runtime.update(grid_precision(cell, device))
    config = resolve(cell.recipe, scale, cell.seed, **runtime)
    run_dir, how = _train(cell, config, runs_dir, progress)
    result: dict[str, Any] = {"train": _train_summary(cell, run_dir, how), "metrics": {}, "probe_values": {},
                              "unavailable": {}}
    budget = probe_budget(scale, probe_seeds)
    if cell.recipe.trainer == "supervised":
        own = json.loads((run_dir / "metrics.json").read_text())
        result["metrics"][own["task"]] = {k: float(v) for k, v in own["metrics"].items()}
        result["synthetic"] = bool(own.get("synthetic"))
        checkpoint = run_dir / "checkpoints" / "best.ckpt"
        checkpoint = checkpoint if checkpoint.is_file() else run_dir / "checkpoints" / "last.ckpt"
    else:
        checkpoint = run_dir / "checkpoints" / "last.ckpt"
        _probe(cell, checkpoint, budget, device, progress, result)
    if cell.robustness:
        result["robustness"] = _robustness(cell, run_dir, checkpoint, budget, device, progress)
    if cell.latent:
        result["latent"] = _latent(cell, checkpoint, budget, results_dir, progress)
    result["wall_s"] = time.perf_counter() - t0
    result["cpu_s"] = _cpu_seconds() - c0
    result["device"] = device
    return result


def _train_summary(cell: Cell, run_dir: Path, how: str) -> dict:
    metrics = run_dir / "metrics.json"
    summary = json.loads(metrics.read_text()) if metrics.is_file() else {}
    out = {"run_dir": str(run_dir), "how": how, "steps": summary.get("steps"), "wall_s": summary.get("wall_s")}
    if "precision" in summary:  # what the training ran in (GRID_PRECISION); cells before 2026-12-02 lack it
        out["precision"] = str(summary["precision"])
    for key in ("cpu_s", "cpu_s_attempt", "cpu_s_complete"):  # the training's CPU over its attempts (CPUClock)
        if key in summary:
            out[key] = summary[key]
    final = summary.get("final") or {}
    if "loss" in final:
        out["final_loss"] = float(final["loss"])
    if cell.recipe.trainer == "pretrain":
        from ..notebook_steps import mean_positive_fraction

        out["positive_fraction"] = mean_positive_fraction(run_dir)
    if cell.recipe.trainer == "supervised":
        out["steps"] = summary.get("steps")
    if cell.recipe.trainer == "cola" and how != "untrained":
        out["pair_accuracy"] = _pair_accuracy(run_dir)
    if how == "untrained":
        out["steps"] = 0
    return out


def _missing(task: str) -> str | None:
    """Why ``task``'s data cannot be read (the data API's message), or None."""
    from .. import data

    try:
        data.data_root(task)
    except FileNotFoundError as err:
        return str(err)
    return None


def _probe(cell: Cell, checkpoint: Path, budget: dict, device: str, progress: bool, result: dict) -> None:
    from ..probe import probe_task

    for task in sorted(cell.probe_tasks):
        why = _missing(task)
        if why:
            result["unavailable"][task] = why
            continue
        records = probe_task(str(checkpoint), task, seeds=tuple(budget["seeds"]), device=device,
                             extract_kwargs=budget["extract"], probe_kwargs=budget["probe"], progress=progress)
        per_metric: dict[str, list[float]] = {}
        for rec in sorted(records, key=lambda r: r["seed"]):
            for metric, value in rec["metrics"].items():
                per_metric.setdefault(metric, []).append(float(value))
        result["probe_values"][task] = per_metric
        result["metrics"][task] = {m: float(np.mean(v)) for m, v in per_metric.items()}
        result["synthetic"] = bool(records[0].get("synthetic")) if records else result.get("synthetic")


def _own_head(module):
    """The end-to-end model seen as an 'encoder' of logits (its own classifier head), so that
    :func:`workbench.embed.extract` chunks whole tracks through it."""
    import torch.nn as nn

    class OwnHead(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m
            self.sample_rate, self.clip_samples = m.cfg.sample_rate, m.cfg.clip_samples
            self.out_dim = m.hparams["n_out"]

        def forward(self, x):
            return self.m(x)

    return OwnHead(module)


def _load_supervised(checkpoint: Path):
    import torch

    from ..train.supervised import SupervisedModule

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hp = state["hyper_parameters"]
    module = SupervisedModule(hp["config"], hp["kind"], hp["n_out"])
    module.load_state_dict(state["state_dict"])
    return module.eval()


def _robustness(cell: Cell, run_dir: Path, checkpoint: Path, budget: dict, device: str, progress: bool) -> dict:
    """{corruption: {severity: {metric: value}}} (mean over probe seeds) for the cell's task."""
    ev = cell.robustness
    task, corruption, severities = ev["task"], ev["corruption"], [float(s) for s in ev["severities"]]
    if cell.recipe.trainer == "supervised":
        import torch

        from .. import data, metrics as M
        from ..embed import extract, segment_mean
        from ..robustness import CorruptionTransform

        spec = data.task(task)
        model = _own_head(_load_supervised(checkpoint))
        out = {}
        for severity in severities:
            transform = None if severity == 0 else CorruptionTransform(corruption, severity, model.sample_rate,
                                                                       cell.seed)
            emb = extract(model, spec, "test", device=device, transform=transform, use_cache=False,
                          progress=progress, **budget["extract"])
            logits = segment_mean(emb.X, emb.track_index, len(emb.ids))
            scores = torch.sigmoid(torch.from_numpy(logits)).numpy() if spec.kind == "multilabel" else logits
            out[f"{severity:g}"] = {k: float(v) for k, v in M.compute(spec, emb.targets, scores).items()}
        return {"task": task, "corruption": corruption, "scored_with": "own head", "severities": out}
    from ..robustness import evaluate_robustness

    df = evaluate_robustness(str(checkpoint), task, corruptions=(corruption,), severities=severities,
                             seed=cell.seed, probe_seeds=tuple(budget["seeds"]), device=device,
                             extract_kwargs=budget["extract"], probe_kwargs=budget["probe"], progress=progress)
    out = {}
    for (severity, metric), part in df.groupby(["severity", "metric"]):
        out.setdefault(f"{float(severity):g}", {})[str(metric)] = float(part["value"].mean())
    return {"task": task, "corruption": corruption, "scored_with": "clean-trained probes", "severities": out}


def knn_accuracy(X: np.ndarray, labels, k: int, seed: int = 0, folds: int = KNN_FOLDS) -> float:
    """Cross-validated k-NN accuracy of ``labels`` from the points ``X`` (stratified folds,
    seeded; Euclidean distance). Classes with fewer members than folds are kept; the number
    of folds shrinks to the smallest class size (at least 2)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    y = np.asarray(labels)
    _, counts = np.unique(y, return_counts=True)
    n_folds = int(max(2, min(folds, counts.min())))
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    k = int(min(k, len(y) - len(y) // n_folds - 1))
    pred = cross_val_predict(KNeighborsClassifier(n_neighbors=max(1, k)), np.asarray(X, dtype=np.float64), y, cv=cv)
    return float(np.mean(pred == y))


def _latent(cell: Cell, checkpoint: Path, budget: dict, results_dir: Path | None, progress: bool) -> dict:
    from ..embed import extract
    from ..latent import clip_table, reduce

    ev = cell.latent
    task = ev["task"]
    emb = extract(str(checkpoint), task, "test", progress=progress, **budget["extract"])
    X = emb.track_mean()
    clips = clip_table(task, "test").set_index("id").loc[emb.ids].reset_index()
    labels = clips["pitch_class"].astype(str).to_numpy()
    Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    xy = reduce(X, ev["reducer"], seed=cell.seed)
    out = {"task": task, "reducer": ev["reducer"], "k": ev["k"], "n": int(len(labels)),
           "knn_map": knn_accuracy(xy, labels, ev["k"], seed=cell.seed),
           "knn_embedding": knn_accuracy(Xn, labels, ev["k"], seed=cell.seed),
           "chance": float(np.max(np.unique(labels, return_counts=True)[1]) / len(labels))}
    if results_dir is not None:
        frame = clips[["id", "pitch_class", "octave", "instrument"]].copy()
        frame["x"], frame["y"] = np.round(xy[:, 0], MAP_DECIMALS), np.round(xy[:, 1], MAP_DECIMALS)
        path = Path(results_dir) / f"{cell.id}.map.csv"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
        out["map_file"] = path.name
    return out
