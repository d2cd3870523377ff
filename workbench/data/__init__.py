"""The data API: ``task(name)`` describes a task, ``manifest(name)`` lists its clips.

>>> from workbench import data
>>> data.task("nsynth_pitch").kind
'multiclass'
>>> df = data.manifest("nsynth_pitch")          # columns: path, split, target, ...

Manifests always have the columns ``path`` (absolute), ``split`` in
{"train", "valid", "test"} and ``target`` (multilabel: list of class indices,
multiclass: int, regression: list of floats, unlabeled: None), plus ``id`` and
loader-specific extras.  They are deterministic for a given root.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .roots import DataRoot, resolve_root
from .tasks import TASKS, Task, UnknownTaskError, get_spec

__all__ = ["DataRoot", "TASKS", "Task", "UnknownTaskError", "manifest", "resolve_root", "task", "tasks",
           "data_root", "ALL", "SPLIT_CHOICES", "select_split"]

SPLITS = ("train", "valid", "test")
#: Not a split but a selector: every clip of the task, whatever its split (e.g. a folder of one's own audio).
ALL = "all"
#: What a ``split`` argument may be.
SPLIT_CHOICES = (*SPLITS, ALL)
REQUIRED_COLUMNS = ("id", "path", "split", "target")


def tasks() -> list[str]:
    """Names of every known task."""
    return sorted(TASKS)


def data_root(name: str, root: str | Path | None = None) -> DataRoot:
    """Where task ``name`` reads its data, and whether it is synthetic."""
    return resolve_root(get_spec(name).dataset, root)


def _loader(dataset: str):
    return importlib.import_module(f"{__name__}.loaders.{dataset}")


@lru_cache(maxsize=64)
def _build(name: str, root: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    spec = get_spec(name)
    df, classes = _loader(spec.dataset).build(spec, Path(root))
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise RuntimeError(f"loader for {name} returned no {missing} column(s)")
    bad = set(df["split"]) - set(SPLITS)
    if bad:
        raise RuntimeError(f"loader for {name} returned unknown splits {sorted(bad)}")
    df = df.sort_values(["split", "id"], key=lambda s: s.map({k: i for i, k in enumerate(SPLITS)})
                        if s.name == "split" else s, kind="stable").reset_index(drop=True)
    return df, tuple(classes)


def task(name: str, root: str | Path | None = None) -> Task:
    """Task metadata; data-dependent class lists are read from the resolved root."""
    spec = get_spec(name)
    if spec.dataset == "folder":  # kind and classes come from the folder's optional labels CSV
        from .loaders.folder import folder_task

        path = data_root(name, root).path
        _, classes = _build(name, str(path))
        return folder_task(spec, path, list(classes))
    if spec.classes or spec.kind in ("regression", "unlabeled"):
        return spec
    _, classes = _build(name, str(data_root(name, root).path))
    return spec.with_classes(list(classes))


def select_split(df: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows of manifest ``df`` in ``split`` (every row for :data:`ALL`), renumbered from 0."""
    if split not in SPLIT_CHOICES:
        raise ValueError(f"split must be one of {', '.join(SPLIT_CHOICES)}, got {split!r}.")
    rows = df if split == ALL else df[df["split"] == split]
    return rows.reset_index(drop=True)


def manifest(name: str, root: str | Path | None = None) -> pd.DataFrame:
    """The task's clips as a DataFrame (a fresh copy; safe to modify)."""
    get_spec(name)
    df, _ = _build(name, str(data_root(name, root).path))
    return df.copy()
