"""Where a data set lives: explicit root > ``$WORKBENCH_DATA/<data set>`` > embedded copy.

The embedded copy is the benchmark the workbench renders itself
(:mod:`workbench.data.embedded`), cached under ``$WORKBENCH_CACHE`` (default
``~/.cache/workbench``) and rendered on first use, one data set at a time (only the
data set asked for).  Its scale and seed come from
``$WORKBENCH_EMBEDDED_SCALE`` / ``$WORKBENCH_EMBEDDED_SEED`` (defaults ``demo`` / 0).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from . import embedded
from .embedded import EMBEDDED_DATASETS

__all__ = ["DataRoot", "EMBEDDED_DATASETS", "cache_dir", "embedded_dir", "embedded_path", "resolve_root"]

DEFAULT_EMBEDDED_SCALE = "demo"
DEFAULT_EMBEDDED_SEED = 0


@dataclass(frozen=True)
class DataRoot:
    path: Path
    source: str  # "explicit", "env" or "embedded"
    synthetic: bool

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def cache_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_CACHE", Path.home() / ".cache" / "workbench")).expanduser()


def _embedded_choice(scale: str | None, seed: int | None) -> tuple[str, int]:
    scale = scale or os.environ.get("WORKBENCH_EMBEDDED_SCALE", DEFAULT_EMBEDDED_SCALE)
    seed = int(seed if seed is not None else os.environ.get("WORKBENCH_EMBEDDED_SEED", DEFAULT_EMBEDDED_SEED))
    return scale, seed


def embedded_path(scale: str | None = None, seed: int | None = None) -> Path:
    """Where the embedded benchmark of ``scale``/``seed`` is cached (rendered or not):
    ``$WORKBENCH_CACHE/embedded/<scale>-seed<seed>-v<generator version>``."""
    scale, seed = _embedded_choice(scale, seed)
    return cache_dir() / "embedded" / embedded.folder_name(scale, seed)


def embedded_dir(scale: str | None = None, seed: int | None = None, datasets=None) -> Path:
    """Folder of the embedded benchmark for ``scale``/``seed``, with the data sets ``datasets``
    (None: all) rendered first where missing."""
    scale, seed = _embedded_choice(scale, seed)
    return embedded.ensure_rendered(embedded_path(scale, seed), scale=scale, seed=seed, datasets=datasets)


def _is_synthetic(path: Path) -> bool:
    for p in (path, *path.parents[:2]):
        marker = p / "SYNTHETIC.json"
        if marker.exists():
            try:
                json.loads(marker.read_text())
                return True
            except ValueError:
                return True
    return False


def resolve_root(dataset: str, root: str | Path | None = None) -> DataRoot:
    """Resolve the folder holding ``dataset`` (e.g. ``"nsynth"``)."""
    if root is not None:
        path = Path(root).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"data root {path} does not exist (given for data set {dataset!r}).")
        return DataRoot(path, "explicit", _is_synthetic(path))
    env = os.environ.get("WORKBENCH_DATA")
    if env:
        path = Path(env).expanduser().resolve() / dataset
        if path.exists():
            return DataRoot(path, "env", _is_synthetic(path))
    if dataset in EMBEDDED_DATASETS:
        path = embedded_dir(datasets=[dataset]) / dataset  # renders only this data set
        return DataRoot(path.resolve(), "embedded", True)
    where = f"$WORKBENCH_DATA/{dataset}" if env else f"a folder passed as root= (or set $WORKBENCH_DATA so that $WORKBENCH_DATA/{dataset} exists)"
    raise FileNotFoundError(
        f"data set {dataset!r} not found: expected {where}. The embedded benchmark only "
        f"provides {', '.join(EMBEDDED_DATASETS)}. See README 'Data sets' for the expected layout."
    )
