"""Per-cell result files under ``results/<scale>/`` and the lock that keeps two runners off one cell.

``results/<scale>/<cell id>.json`` is written atomically (temp file + rename) once a cell
finished; it is small and committed to git, so no finished cell is recomputed on a new
machine. ``<cell id>.map.csv`` holds a latent map's 2-D points. ``<cell id>.lock`` marks a
cell in flight: it is created atomically (``O_CREAT | O_EXCL``) and holds the owner's pid,
host, process start time and a random token. A lock whose owner is on this host and no
longer alive (or whose pid now belongs to a process started later) is stale: a runner takes
it over under a short-lived ``<cell id>.lock.takeover`` guard (itself created with
``O_EXCL``), re-checking the lock inside the guard so that two runners never both take it.
Locks held by other hosts are never broken (delete the file by hand if that host is gone).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_RESULTS_DIR", "CellLock", "LockHeld", "result_path", "read_result", "write_result",
           "results_dir", "pid_alive"]

DEFAULT_RESULTS_DIR = "results"
#: A takeover guard older than this (seconds) was left by a runner killed mid-takeover.
TAKEOVER_STALE_S = 60.0


def results_dir(scale: str, root: str | Path = DEFAULT_RESULTS_DIR) -> Path:
    from ..params import resolve_path

    return resolve_path(root) / scale


def result_path(directory: Path, cell_id: str) -> Path:
    return Path(directory) / f"{cell_id}.json"


def read_result(directory: Path, cell_id: str) -> dict | None:
    """The stored result of ``cell_id``, or None (absent or unreadable: then it is recomputed)."""
    path = result_path(directory, cell_id)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def write_result(directory: Path, cell_id: str, payload: dict) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = result_path(directory, cell_id)
    tmp = path.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- locks
class LockHeld(RuntimeError):
    """Another live runner works on this cell."""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether ``pid`` runs on this host (and, if ``start`` is given, is the same process)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start is not None:
        now = _start_time(int(pid))
        if now is not None and now != start:
            return False
    return True


def _owner() -> dict:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "start": _start_time(pid), "token": uuid.uuid4().hex,
            "since": time.time()}


def _read_lock(path: Path) -> dict | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {}  # being written right now: treat as held


def _is_stale(info: dict | None) -> bool:
    if not info or "pid" not in info:
        return False
    if info.get("host") != socket.gethostname():
        return False
    return not pid_alive(info["pid"], info.get("start"))


def _create(path: Path, owner: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(owner))
    return True


class CellLock:
    """``with CellLock(dir, cell_id):`` — raises :class:`LockHeld` if a live runner holds it."""

    def __init__(self, directory: Path, cell_id: str):
        self.path = Path(directory) / f"{cell_id}.lock"
        self.owner = _owner()
        self.took_over: dict | None = None

    def acquire(self) -> "CellLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if _create(self.path, self.owner):
            return self
        info = _read_lock(self.path)
        if info is None and _create(self.path, self.owner):  # released meanwhile
            return self
        if not _is_stale(info):
            raise LockHeld(f"{self.path} is held by {_describe(info)}")
        guard = self.path.with_name(self.path.name + ".takeover")
        if not _create(guard, self.owner):
            ginfo = _read_lock(guard) or {}
            if _is_stale(ginfo) or time.time() - float(ginfo.get("since", time.time())) > TAKEOVER_STALE_S:
                guard.unlink(missing_ok=True)
            raise LockHeld(f"{self.path}: another runner is taking over its stale lock")
        try:
            current = _read_lock(self.path)
            if current is not None and (current.get("token") != (info or {}).get("token") or not _is_stale(current)):
                raise LockHeld(f"{self.path} was taken by {_describe(current)}")
            tmp = self.path.with_name(self.path.name + f".{self.owner['token']}")
            tmp.write_text(json.dumps(self.owner))
            os.replace(tmp, self.path)
            self.took_over = info
        finally:
            guard.unlink(missing_ok=True)
        return self

    def release(self) -> None:
        info = _read_lock(self.path)
        if info and info.get("token") == self.owner["token"]:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "CellLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _describe(info: dict | None) -> str:
    if not info:
        return "a runner that is writing it now"
    return f"pid {info.get('pid')} on {info.get('host')} since {time.strftime('%H:%M:%S', time.localtime(info.get('since', 0)))}"


def held_by_other(directory: Path, cell_id: str) -> dict | None:
    """The lock info of a cell another live runner holds, else None."""
    info = _read_lock(Path(directory) / f"{cell_id}.lock")
    if info is None or _is_stale(info):
        return None
    return info
