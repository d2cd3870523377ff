"""Content identity of a source file: what the caches key their entries by.

Both caches (the decoded-audio cache, :mod:`workbench.data.cache`, and the embedding
cache, :mod:`workbench.embed`) remember, for every source file they read, its
:func:`identity`: ``[size, mtime_ns, sha256]``.  An entry is served only while
:func:`unchanged` holds, so overwriting a file with other audio invalidates exactly that
file's entries (a stat per file; no hashing in the common case).

The sha256 is recorded only for a *racy* file, one whose mtime lies within
:data:`RACY_NS` of the moment its identity was taken (git's "racily clean" rule): a
file system keeps mtimes at a coarse tick (often 1-10 ms), so a second write in the same
tick, of the same size, would leave size and mtime unchanged.  For such files the content
hash decides; for every other file a later write necessarily moves the mtime.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

__all__ = ["RACY_NS", "identity", "sha256", "unchanged"]

RACY_NS = 2_000_000_000  # mtimes this close to "now" are not trusted alone (coarse file-system clocks)
HASH_BLOCK = 1 << 20

_HASHES: dict[tuple[str, int, int], str] = {}


def sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (memoised per path, size and mtime)."""
    p = Path(path)
    st = p.stat()
    memo = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _HASHES:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(HASH_BLOCK), b""):
                h.update(block)
        # a racy file may be rewritten within its mtime tick: never memoise its hash
        if st.st_mtime_ns < time.time_ns() - RACY_NS:
            _HASHES[memo] = h.hexdigest()
        return h.hexdigest()
    return _HASHES[memo]


def identity(path: str | Path, now_ns: int | None = None) -> list | None:
    """``[size, mtime_ns, sha256 or ""]`` of a regular file, or None when it is missing.

    Take it *before* reading the content it vouches for: a write after that moment moves
    the mtime past it (or, for a racy file, changes the recorded hash).
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    now = time.time_ns() if now_ns is None else now_ns
    digest = ""
    if st.st_mtime_ns >= now - RACY_NS:
        try:
            digest = sha256(path)
        except OSError:
            return None
    return [int(st.st_size), int(st.st_mtime_ns), digest]


def unchanged(recorded, path: str | Path) -> bool:
    """Whether ``path`` still has the identity ``recorded``.  A None record (the file was missing, or
    not a regular file) is unchanged while the path still has no identity."""
    if recorded is None:
        return identity(path) is None
    if len(recorded) != 3:
        return False
    size, mtime_ns, digest = int(recorded[0]), int(recorded[1]), str(recorded[2] or "")
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != size or st.st_mtime_ns != mtime_ns:
        return False
    if digest:
        try:
            return sha256(path) == digest
        except OSError:
            return False
    return True
