"""Run directories: every run writes a new ``runs/<timestamp>-<name>/`` and never overwrites one.

A run directory holds ``config.yaml`` (fully resolved), ``splits/`` (the ids of every
clip it may use), ``env.json`` (versions, device, git commit), ``metrics.csv`` /
``metrics.json``, ``checkpoints/`` and, once finished, a ``FINISHED`` marker.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["new_run_dir", "environment", "write_env", "write_json", "mark_finished", "is_finished",
           "resume_checkpoint", "latest_run",
           "RunExistsError", "CheckpointError", "FINISHED_MARKER", "read_json"]

FINISHED_MARKER = "FINISHED"
_SAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


class RunExistsError(FileExistsError):
    """Refusal to write into a run that already finished."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (truncated, empty, foreign); the message names the file."""


def new_run_dir(base: str | Path, name: str, *, fixed: bool = False) -> Path:
    """Create a fresh run directory ``<base>/<UTC timestamp>-<name>`` (``<base>/<name>`` if fixed).

    A clash gets a numeric suffix; an existing finished run is never reused.
    """
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    slug = _SAFE.sub("_", name).strip("_") or "run"
    stem = slug if fixed else f"{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}-{slug}"
    for i in range(1000):
        path = base / (stem if i == 0 else f"{stem}-{i}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        (path / "checkpoints").mkdir()
        (path / "splits").mkdir()
        return path
    raise RunExistsError(f"could not create a new run directory under {base} for {name!r}")


def _git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    """Versions, hardware and git commit, for ``env.json``."""
    import importlib.metadata as md

    import torch

    pkgs = {}
    for name in ("torch", "torchaudio", "torch-audiomentations", "lightning", "numpy", "scikit-learn",
                 "mir_eval", "soundfile", "pedalboard", "pyfluidsynth", "pandas"):
        try:
            pkgs[name] = md.version(name)
        except md.PackageNotFoundError:
            pkgs[name] = None
    cuda = torch.cuda.is_available()
    return {
        "time": datetime.now(timezone.utc).isoformat(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "packages": pkgs,
        "git_commit": _git_commit(),
        "argv": sys.argv,
    }


def write_json(path: str | Path, obj: Any) -> Path:
    """Write JSON atomically (temp file + rename) so a kill never leaves half a file."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def read_json(path: str | Path, default: Any = None) -> Any:
    """The JSON in ``path``, or ``default`` when the file does not exist."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else default


def write_env(run_dir: str | Path) -> Path:
    return write_json(Path(run_dir) / "env.json", environment())


def mark_finished(run_dir: str | Path, **info: Any) -> None:
    write_json(Path(run_dir) / FINISHED_MARKER, {"finished": time.time(), **info})


def is_finished(run_dir: str | Path) -> bool:
    return (Path(run_dir) / FINISHED_MARKER).exists()


def latest_run(base: str | Path, matches: Callable[[Path], bool], *, resumable: bool = True
               ) -> tuple[Path, bool] | None:
    """The newest run directory under ``base`` (by name: runs are named by their UTC start time)
    that ``matches`` (called with the run directory; its ``config.yaml`` exists) and holds a
    ``checkpoints/last.ckpt``, as ``(run, finished)``: a finished run is there to be reused, an
    unfinished one (stopped, killed) to be resumed. ``resumable=False`` skips unfinished runs
    (a trainer that cannot resume). None when there is no such run.

    The one rule of "reuse a finished run, resume an unfinished one" for ``make demo`` and the
    claims grid."""
    base = Path(base)
    if not base.is_dir():
        return None
    for run in sorted((p for p in base.iterdir() if (p / "config.yaml").is_file()), key=lambda p: p.name,
                      reverse=True):
        finished = is_finished(run)
        if (finished or resumable) and (run / "checkpoints" / "last.ckpt").is_file() and matches(run):
            return run, finished
    return None


def resume_checkpoint(run_dir: str | Path) -> Path:
    """The ``last.ckpt`` an unfinished run resumes from; a finished run or one without a
    checkpoint is refused with the reason."""
    run_dir = Path(run_dir)
    if is_finished(run_dir):
        raise RunExistsError(f"{run_dir} already finished; start a new run instead of resuming it")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if not ckpt.exists():
        raise FileNotFoundError(f"no {ckpt} to resume from (the run saved no checkpoint yet); start anew")
    return ckpt
