"""Shared pieces of the data set loaders: layout errors, warnings, audio checks, splits.

Every loader turns a data set folder, as distributed, into a manifest
(``id``, ``path``, ``split``, ``target`` plus extras).  The rules they share live here:

- a missing annotation file or folder raises :class:`DatasetLayoutError` (a
  ``FileNotFoundError``) whose message names the file and shows the expected layout;
- rows whose audio is missing or empty (0 bytes) are dropped with one
  :class:`DataWarning` that counts them, so an unusable file never reaches training;
- duplicate ids keep their first occurrence, with a warning;
- seeded splits are computed from a hash of each item's key (no RNG state, identical
  on every platform), so adding or removing a few files only moves items next to a
  split boundary; the split sizes follow the fractions exactly (midpoint rounding).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import warnings
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path

import pandas as pd

__all__ = [
    "AUDIO_EXTENSIONS", "DEFAULT_SPLIT_SEED", "DataWarning", "DatasetLayoutError", "MANIFEST_COLUMNS",
    "audio_status", "ensure_rows",
    "SPLITS", "drop_duplicate_ids", "drop_unusable_audio", "find_existing", "hashed_split", "layout_error",
    "make_manifest", "natural_key", "require", "task_root", "usable_manifest", "warn",
]

SPLITS = ("train", "valid", "test")
MANIFEST_COLUMNS = ("id", "path", "split", "target")
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")
DEFAULT_SPLIT_SEED = 0
EXAMPLES_IN_WARNING = 3  # how many offending ids a warning quotes


class DatasetLayoutError(FileNotFoundError):
    """A data set folder that lacks a file or folder of the expected layout."""

    def __str__(self) -> str:  # FileNotFoundError would print "[Errno None] ..." otherwise
        return str(self.args[0]) if self.args else ""


class DataWarning(UserWarning):
    """Rows dropped or repaired while reading a data set (counted, never silent)."""


def layout_error(dataset: str, missing: Path | str, layout: str, hint: str = "") -> DatasetLayoutError:
    """A :class:`DatasetLayoutError` naming ``missing`` and showing ``layout``."""
    msg = (f"{dataset}: {missing} not found. Expected layout of the data root:\n"
           f"{layout.rstrip()}\n")
    if hint:
        msg += hint.rstrip() + "\n"
    msg += "Pass the folder that holds this layout as root= (or $WORKBENCH_DATA/<data set>); see docs/datasets.md."
    return DatasetLayoutError(msg)


def require(path: Path, dataset: str, layout: str, hint: str = "") -> Path:
    """Return ``path`` if it exists, else raise a :class:`DatasetLayoutError`."""
    if not path.exists():
        raise layout_error(dataset, path, layout, hint)
    return path


def find_existing(candidates: Iterable[Path]) -> Path | None:
    """The first existing path of ``candidates`` (None if none exists)."""
    for c in candidates:
        if c.exists():
            return c
    return None


def warn(dataset: str, message: str) -> None:
    """Emit a :class:`DataWarning` prefixed with the data set name."""
    warnings.warn(f"{dataset}: {message}", DataWarning, stacklevel=3)


def _examples(items: Sequence[str]) -> str:
    shown = ", ".join(str(i) for i in items[:EXAMPLES_IN_WARNING])
    more = f", ... ({len(items) - EXAMPLES_IN_WARNING} more)" if len(items) > EXAMPLES_IN_WARNING else ""
    return shown + more


def audio_status(path: str | Path) -> str:
    """``"ok"``, ``"missing"`` or ``"empty"`` (0 bytes) for an audio file, by one ``stat``."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    if not stat.S_ISREG(st.st_mode):
        return "missing"
    return "ok" if st.st_size > 0 else "empty"


def drop_unusable_audio(df: pd.DataFrame, dataset: str, column: str = "path") -> pd.DataFrame:
    """Drop rows whose ``column`` file is missing or zero bytes, warning with the counts."""
    if df.empty:
        return df
    status = df[column].map(audio_status)
    bad = status != "ok"
    if bad.any():
        parts = []
        for kind, label in (("missing", "missing"), ("empty", "zero-byte")):
            ids = df.loc[status == kind, "id"].astype(str).tolist()
            if ids:
                parts.append(f"{len(ids)} with {label} audio ({_examples(ids)})")
        warn(dataset, f"dropped {int(bad.sum())} of {len(df)} annotated clips: {'; '.join(parts)}.")
    return df.loc[~bad].reset_index(drop=True)


def drop_duplicate_ids(df: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Keep the first row of every id (in reading order), warning about the rest."""
    dup = df["id"].duplicated(keep="first")
    if dup.any():
        ids = df.loc[dup, "id"].astype(str).tolist()
        warn(dataset, f"{len(ids)} duplicate id(s) ignored, first occurrence kept ({_examples(ids)}).")
    return df.loc[~dup].reset_index(drop=True)


def _unit_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def hashed_split(
    keys: Sequence[Hashable],
    fractions: dict[str, float],
    seed: int = DEFAULT_SPLIT_SEED,
    salt: str = "",
) -> list[str]:
    """Assign each item to a split; items sharing a key (a group) share the split.

    keys: one key per item (e.g. its id, or its artist for an artist-disjoint split).
    fractions: split name -> fraction of the items (normalised to sum 1), in order.
    The groups are ordered by ``sha1(salt:seed:key)`` and cut where the cumulative
    item count crosses the fraction boundaries, each group going to the split that
    holds its midpoint.  Deterministic, platform independent, and stable: removing a
    group only shifts the groups next to a boundary.
    """
    if not fractions or any(f < 0 for f in fractions.values()) or sum(fractions.values()) <= 0:
        raise ValueError(f"split fractions must be non-negative and sum to > 0, got {fractions}.")
    total_frac = float(sum(fractions.values()))
    counts: dict[Hashable, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    order = sorted(counts, key=lambda g: (_unit_hash(f"{salt}:{seed}:{g}"), str(g)))
    n = len(keys)
    bounds, acc = [], 0.0
    for name, frac in fractions.items():
        acc += frac / total_frac
        bounds.append((acc, name))
    assigned: dict[Hashable, str] = {}
    cum = 0
    for g in order:
        mid = (cum + counts[g] / 2) / n
        cum += counts[g]
        assigned[g] = next((name for b, name in bounds if mid < b), bounds[-1][1])
    return [assigned[k] for k in keys]


def natural_key(text: str) -> list:
    """Sort key that orders ``male2`` before ``male10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(text))]


def make_manifest(rows: list[dict], extras: Sequence[str] = ()) -> pd.DataFrame:
    """A DataFrame with the manifest columns first, then ``extras`` (in that order)."""
    columns = list(MANIFEST_COLUMNS) + [c for c in extras if c not in MANIFEST_COLUMNS]
    df = pd.DataFrame(rows, columns=columns)
    if df.empty:
        df = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return df


def task_root(spec, root: Path | str, dataset: str, tasks: Sequence[str]) -> Path:
    """Refuse a task this loader does not build; the data root, expanded and resolved."""
    if spec.name not in tasks:
        names = tasks[0] if len(tasks) == 1 else " or ".join(tasks) if len(tasks) == 2 else f"one of {sorted(tasks)}"
        raise ValueError(f"{dataset} loader has no task {spec.name!r}; use {names}.")
    return Path(root).expanduser().resolve()


def usable_manifest(rows: list[dict], dataset: str, extras: Sequence[str] = (), *, root: Path | None = None,
                    layout: str = "") -> pd.DataFrame:
    """:func:`make_manifest`, less duplicate ids and unusable audio; with ``root``, at least one
    row is left (:func:`ensure_rows`)."""
    df = drop_unusable_audio(drop_duplicate_ids(make_manifest(rows, extras), dataset), dataset)
    return df if root is None else ensure_rows(df, dataset, root, layout)


def ensure_rows(df: pd.DataFrame, dataset: str, root: Path, layout: str) -> pd.DataFrame:
    """Raise a :class:`DatasetLayoutError` when no usable clip is left (a wrong root, most likely)."""
    if df.empty:
        raise DatasetLayoutError(
            f"{dataset}: no usable audio clips found under {root} (every annotated clip is "
            f"missing, empty or filtered out). Expected layout of the data root:\n{layout.rstrip()}\n"
            "Pass the folder that holds this layout as root=; see docs/datasets.md."
        )
    return df
