"""Decoded-audio cache: decode every clip of a data set once, then read random crops from memory.

Decoding an mp3 for every training crop costs milliseconds to tens of milliseconds; a
crop of an already decoded, memory-mapped array costs microseconds.  :func:`prepare`
decodes a task's clips (and its stems, if the manifest has a ``stems`` column) to mono
at one sample rate and appends them to a single array on disk::

    <cache_dir>/decoded/<dataset>-<sample rate>-<sha1(root)[:12]>/
        audio.npy     one 1-D int16 (or float16/float32) array: every clip, back to back
                      (a standard .npy: ``np.load(path, mmap_mode="r")`` opens it)
        index.csv     key (absolute source path), id, offset, length (in samples), and the
                      source's identity when it was decoded: size, mtime_ns, sha256
        meta.json     data set, root, sample rate, dtype, version, failed files
        .lock         held (``flock``) by the one ``prepare`` writing the folder

``cache_dir`` is :func:`workbench.data.roots.cache_dir` (``$WORKBENCH_CACHE``).  Tasks of
one data set share its cache (``mtat_top50`` and ``mtat_all`` read the same clips);
preparing a second task only decodes what is missing.  A file that fails to decode is
recorded in ``meta.json`` and not cached, so a reader falls back to the source (and its
clear error).  Preparation checkpoints every :data:`CHECKPOINT_EVERY` files: an
interrupted (even SIGKILLed) run resumes where it stopped, and a full disk ends in one
message that says what was kept.  Two ``prepare`` calls on one folder take turns (a file
lock; the second finds the work done).

Changed audio: every entry carries its source's :func:`workbench.fileid.identity`
(size, mtime, and a content hash for files written moments before); an entry whose
source changed since it was decoded is never served (a reader falls back to the source
and warns) and is decoded again by the next ``prepare``.

Readers: :func:`reader_for` returns the :class:`DecodedCache` of a task when it was
prepared (else None); :meth:`DecodedCache.read` mirrors :func:`workbench.audio.read`'s
window semantics (``offset`` in seconds, or a uniform random start drawn from ``rng``
with the same ``rng.integers`` call, ``pad``), so a cache is a drop-in replacement at
its own sample rate.  CLI: ``python -m workbench data prepare NAME --root DIR
--sample-rate 16000`` (:func:`main`).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import struct
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import fileid
from ..audio import AudioError
from ..audio import check_sample_rate
from ..audio import read as read_audio
from .roots import cache_dir

__all__ = ["CACHE_VERSION", "DEFAULT_SAMPLE_RATE", "DTYPES", "DecodedCache", "cache_path", "main", "prepare",
           "reader_for"]

CACHE_VERSION = 2  # 2: source identities in the index
DEFAULT_SAMPLE_RATE = 16000
DEFAULT_DTYPE = "int16"
INT16_SCALE = 32767.0  # float [-1, 1] <-> int16
DTYPES = {"int16": INT16_SCALE, "float16": 1.0, "float32": 1.0}  # name -> scale of the stored values
HEADER_BYTES = 128  # fixed .npy header size, so the sample count can be rewritten in place
CHECKPOINT_EVERY = 256  # files between index/header checkpoints while preparing
DATA_FILE, INDEX_FILE, META_FILE, LOCK_FILE = "audio.npy", "index.csv", "meta.json", ".lock"
INDEX_COLUMNS = ["key", "id", "offset", "length", "size", "mtime_ns", "sha256"]
STEM_ID_SEPARATOR = "#"


def cache_path(dataset: str, root: str | Path, sample_rate: int = DEFAULT_SAMPLE_RATE) -> Path:
    """Folder of the decoded cache of ``dataset`` read from ``root`` at ``sample_rate``."""
    digest = hashlib.sha1(str(Path(root).expanduser().resolve()).encode("utf-8")).hexdigest()[:12]
    return cache_dir() / "decoded" / f"{dataset}-{int(sample_rate)}-{digest}"


def _npy_header(n: int, dtype: str) -> bytes:
    """A version-1.0 .npy header of exactly HEADER_BYTES bytes for a 1-D array of n items."""
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype).newbyteorder("<"))
    text = "{'descr': %r, 'fortran_order': False, 'shape': (%d,), }" % (descr, n)
    body = text.ljust(HEADER_BYTES - 10 - 1) + "\n"
    if len(body) + 10 != HEADER_BYTES:
        raise ValueError(f"cannot fit a .npy header for {n} samples in {HEADER_BYTES} bytes")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")


def _quantise(x: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "int16":
        return np.clip(np.round(x * INT16_SCALE), -INT16_SCALE - 1, INT16_SCALE).astype("<i2")
    return x.astype(np.dtype(dtype).newbyteorder("<"))


def _decode(job: tuple[str, int, str]) -> tuple[str, np.ndarray | None, str | None, list | None]:
    """Worker: decode one file to mono at the cache rate and quantise it (None + reason on failure),
    with the source's identity taken before reading it."""
    path, sample_rate, dtype = job
    ident = fileid.identity(path)
    try:
        return path, _quantise(read_audio(path, sample_rate), dtype), None, ident
    except (AudioError, OSError, ValueError) as exc:
        return path, None, str(exc), ident


def _row_identity(row: dict) -> list:
    return [row.get("size", -1), row.get("mtime_ns", -1), row.get("sha256", "")]


def _append_samples(fh, x: np.ndarray) -> None:
    """Append one clip's samples to the open data file (the single write of the sample data)."""
    fh.write(x.tobytes())


@dataclass
class _Entry:
    offset: int
    length: int


class DecodedCache:
    """Read-only view of a prepared cache (memory-mapped lazily; safe to pickle to workers)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        meta_path = self.directory / META_FILE
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path} not found: {self.directory} is not a prepared decoded-audio "
                                    "cache. Run `python -m workbench data prepare NAME --root DIR` first.")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("version") != CACHE_VERSION:
            raise ValueError(f"{self.directory}: cache version {self.meta.get('version')} != {CACHE_VERSION}; "
                             "delete the folder and prepare it again.")
        self.sample_rate = int(self.meta["sample_rate"])
        self.dtype = str(self.meta["dtype"])
        self.scale = DTYPES[self.dtype]
        rows = _read_index(self.directory)
        fresh = [r for r in rows if fileid.unchanged(_row_identity(r), r["key"])]
        self.stale = sorted(r["key"] for r in rows if r not in fresh)  # sources changed since decoding
        if self.stale:
            warnings.warn(f"decoded cache {self.directory}: {len(self.stale)} source file(s) changed since they "
                          f"were decoded and are read from the source instead ({self.stale[:3]}); run "
                          "`python -m workbench data prepare` again to refresh them.", RuntimeWarning, stacklevel=2)
        self._by_key = {r["key"]: _Entry(int(r["offset"]), int(r["length"])) for r in fresh}
        self._by_id = {r["id"]: self._by_key[r["key"]] for r in fresh if r["id"]}
        self._array: np.ndarray | None = None

    @classmethod
    def open(cls, directory: str | Path) -> "DecodedCache":
        """Open the prepared cache in ``directory``."""
        return cls(directory)

    # -- pickling: never copy the memory map into a worker, reopen it there --------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_array"] = None
        return state

    @property
    def array(self) -> np.ndarray:
        """The whole sample array (memory-mapped, read-only)."""
        if self._array is None:
            self._array = np.load(self.directory / DATA_FILE, mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return len(self._by_key)

    def keys(self) -> list[str]:
        return list(self._by_key)

    def _entry(self, path_or_id: str | Path) -> _Entry | None:
        key = str(path_or_id)
        entry = self._by_key.get(key)
        if entry is None:
            entry = self._by_id.get(key)
        if entry is None and os.sep in key:  # a relative or unnormalised path
            entry = self._by_key.get(os.path.abspath(key))
        return entry

    def has(self, path_or_id: str | Path) -> bool:
        """Whether a clip (by absolute source path or manifest id) is in the cache."""
        return self._entry(path_or_id) is not None

    def num_samples(self, path_or_id: str | Path) -> int:
        """Length of a cached clip in samples at :attr:`sample_rate`."""
        entry = self._entry(path_or_id)
        if entry is None:
            raise KeyError(f"{path_or_id} is not in the decoded cache {self.directory}")
        return entry.length

    def read(
        self,
        path_or_id: str | Path,
        num_samples: int | None = None,
        offset: float | None = None,
        rng: np.random.Generator | None = None,
        pad: bool = False,
    ) -> np.ndarray:
        """A window of a cached clip as mono float32 at :attr:`sample_rate`.

        Same semantics as :func:`workbench.audio.read`: ``num_samples`` None reads the
        whole clip; ``offset`` is the start in seconds (clamped so the window fits);
        without an offset ``rng`` draws ``rng.integers(0, slack + 1)``; a clip shorter
        than the window raises :class:`~workbench.audio.AudioError` unless ``pad``.
        """
        entry = self._entry(path_or_id)
        if entry is None:
            raise KeyError(f"{path_or_id} is not in the decoded cache {self.directory}; check has() first "
                           "or prepare the cache again.")
        if num_samples is None:
            start, n = 0, entry.length
        else:
            if num_samples <= 0:
                raise AudioError(f"{path_or_id}: num_samples must be positive, got {num_samples}.")
            if entry.length < num_samples and not pad:
                raise AudioError(
                    f"{path_or_id}: too short ({entry.length / self.sample_rate:.3f} s) for a window of "
                    f"{num_samples / self.sample_rate:.3f} s. Drop the file from the manifest, lower the crop "
                    "length, or pass pad=True.")
            slack = max(entry.length - num_samples, 0)
            if offset is not None:
                start = min(int(round(offset * self.sample_rate)), slack)
            elif rng is not None:
                start = int(rng.integers(0, slack + 1))
            else:
                start = 0
            n = min(num_samples, entry.length - start)
        raw = self.array[entry.offset + start: entry.offset + start + n]
        x = raw.astype(np.float32)
        if self.scale != 1.0:
            x *= np.float32(1.0 / self.scale)
        if num_samples is not None and len(x) < num_samples:
            x = np.pad(x, (0, num_samples - len(x)))
        return x


def _task_paths(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(absolute path, id) of every clip, then of every stem (id ``<clip id>#<stem>``)."""
    items = [(str(p), str(i)) for p, i in zip(df["path"], df["id"])]
    if "stems" in df.columns:
        for i, stems in zip(df["id"], df["stems"]):
            if isinstance(stems, dict):
                items += [(str(p), f"{i}{STEM_ID_SEPARATOR}{s}") for s, p in sorted(stems.items())]
    seen, out = set(), []
    for p, i in items:
        if p not in seen:
            seen.add(p)
            out.append((p, i))
    return out


def _read_index(directory: Path) -> list[dict]:
    index = pd.read_csv(directory / INDEX_FILE, dtype={"key": str, "id": str, "sha256": str},
                        keep_default_na=False)
    return index.to_dict("records")


def _tmp_name(target: Path) -> Path:
    """A temporary sibling of ``target`` unique to this process (atomically renamed over it)."""
    return target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")


def _replace_atomically(target: Path, write) -> None:
    tmp = _tmp_name(target)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_index(directory: Path, rows: list[dict]) -> None:
    _replace_atomically(directory / INDEX_FILE,
                        lambda tmp: pd.DataFrame(rows, columns=INDEX_COLUMNS).to_csv(tmp, index=False))


def _write_meta(directory: Path, meta: dict) -> None:
    _replace_atomically(directory / META_FILE, lambda tmp: tmp.write_text(json.dumps(meta, indent=1, sort_keys=True)))


@contextlib.contextmanager
def _locked(directory: Path, progress: bool):
    """Hold an exclusive ``flock`` on the folder's lock file (released by the kernel if the process dies)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one prepare at a time is then up to the user
        yield
        return
    with open(directory / LOCK_FILE, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                print(f"waiting for another `data prepare` writing {directory} ...", file=sys.stderr)
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _load_state(directory: Path, sample_rate: int, dtype: str) -> tuple[list[dict], dict, dict]:
    """Existing index rows, failures and the failed files' identities, after checking rate and dtype.

    A cache of an older version is started afresh (with a warning): its entries carry no
    source identity, so none of them can be trusted to match the audio on disk.
    """
    meta_path = directory / META_FILE
    if not meta_path.exists() or not (directory / INDEX_FILE).exists():
        return [], {}, {}
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as exc:
        raise ValueError(f"{meta_path} is not valid JSON ({exc}); delete {directory} and prepare again.") from exc
    if meta.get("version") != CACHE_VERSION:
        warnings.warn(f"{directory}: cache version {meta.get('version')} != {CACHE_VERSION}; decoding it afresh.",
                      RuntimeWarning, stacklevel=3)
        return [], {}, {}
    if int(meta["sample_rate"]) != sample_rate or meta["dtype"] != dtype:
        raise ValueError(f"{directory} already holds a cache at {meta['sample_rate']} Hz, {meta['dtype']}; asked "
                         f"for {sample_rate} Hz, {dtype}. Delete the folder or pass another out=.")
    return _read_index(directory), dict(meta.get("failed", {})), dict(meta.get("failed_identity", {}))


def prepare(
    name: str,
    root: str | Path | None = None,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    dtype: str = DEFAULT_DTYPE,
    out: str | Path | None = None,
    progress: bool = True,
    workers: int = 1,
) -> Path:
    """Decode every clip of task ``name`` once into the decoded cache; return its folder.

    root: data root (None resolves it like :func:`workbench.data.manifest`).
    sample_rate: rate of the cached audio (reads return this rate).
    dtype: ``int16`` (default; 2 bytes a sample, quantisation error <= 1/65534),
        ``float16`` or ``float32``.
    out: cache folder (default :func:`cache_path` under ``$WORKBENCH_CACHE``).
    workers: decoding processes (1 decodes in this process).
    Already cached clips are skipped, so a second call is quick and a new task of the
    same data set only decodes its extra clips.
    """
    from . import data_root, get_spec, manifest

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}.")
    sample_rate = check_sample_rate(sample_rate)
    spec = get_spec(name)
    droot = data_root(name, root)
    df = manifest(name, droot.path)
    directory = Path(out) if out is not None else cache_path(spec.dataset, droot.path, sample_rate)
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory, progress):
        return _prepare_locked(name, spec, droot, df, directory, sample_rate, dtype, progress, workers)


def _prepare_locked(name, spec, droot, df, directory: Path, sample_rate: int, dtype: str, progress: bool,
                    workers: int) -> Path:
    rows, failed, failed_identity = _load_state(directory, sample_rate, dtype)
    stale = {r["key"] for r in rows if not fileid.unchanged(_row_identity(r), r["key"])}
    rows = [r for r in rows if r["key"] not in stale]  # their samples stay in audio.npy, unreferenced
    for p in [p for p in failed if not fileid.unchanged(failed_identity.get(p), p)]:
        failed.pop(p)  # a failed file that changed since gets another try
        failed_identity.pop(p, None)
    cached = {r["key"] for r in rows}
    todo = [(p, i) for p, i in _task_paths(df) if p not in cached and p not in failed]
    ids = dict(todo)
    itemsize = np.dtype(dtype).itemsize
    end = max((int(r["offset"]) + int(r["length"]) for r in rows), default=0)
    data_path = directory / DATA_FILE
    if not data_path.exists() or not rows:
        data_path.write_bytes(_npy_header(0, dtype))
    meta = {"version": CACHE_VERSION, "dataset": spec.dataset, "root": str(droot.path), "source": droot.source,
            "synthetic": droot.synthetic, "sample_rate": sample_rate, "dtype": dtype,
            "tasks": sorted(set(_previous_tasks(directory)) | {name})}
    started = time.perf_counter()
    kept = {"rows": len(rows), "end": end}  # what the last completed checkpoint holds

    def checkpoint(fh) -> None:
        fh.flush()
        fh.seek(0)
        fh.write(_npy_header(end, dtype))
        fh.flush()
        os.fsync(fh.fileno())
        fh.seek(HEADER_BYTES + end * itemsize)
        _write_index(directory, rows)
        _write_meta(directory, {**meta, "total_samples": end, "clips": len(rows), "failed": failed,
                                "failed_identity": failed_identity, "seconds": round(end / sample_rate, 3)})
        kept.update(rows=len(rows), end=end)

    jobs = [(p, sample_rate, dtype) for p, _ in todo]
    bar = _progress(len(jobs), f"decoding {name} at {sample_rate} Hz", progress)
    try:
        with open(data_path, "r+b") as fh:
            fh.truncate(HEADER_BYTES + end * itemsize)  # drop a tail written after the last checkpoint
            fh.seek(HEADER_BYTES + end * itemsize)
            for n_done, (path, x, error, ident) in enumerate(_map(_decode, jobs, workers), start=1):
                if x is None:
                    failed[path] = error or "unreadable"
                    failed_identity[path] = ident
                else:
                    _append_samples(fh, x)
                    size, mtime_ns, digest = ident if ident else (-1, -1, "")
                    rows.append({"key": path, "id": ids.get(path, ""), "offset": end, "length": int(len(x)),
                                 "size": size, "mtime_ns": mtime_ns, "sha256": digest})
                    end += int(len(x))
                if bar is not None:
                    bar.update(1)
                if n_done % CHECKPOINT_EVERY == 0:
                    checkpoint(fh)
            checkpoint(fh)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        raise OSError(exc.errno, f"decoded cache {directory}: cannot write ({exc.strerror}). The {kept['rows']} "
                                 f"clips of the last checkpoint ({kept['end'] / sample_rate:.1f} s) are kept; free "
                                 "disk space (or pass --out on another disk) and run the same `data prepare` "
                                 "again to resume") from exc
    finally:
        if bar is not None:
            bar.close()
    newly_failed = [p for p, _ in todo if p in failed]
    if newly_failed:
        warnings.warn(f"decoded cache {directory}: {len(newly_failed)} file(s) could not be decoded and are read "
                      f"from the source instead ({newly_failed[:3]}); see {META_FILE}.", RuntimeWarning, stacklevel=3)
    if progress:
        print(f"decoded cache {directory}: {len(rows)} clips, {end / sample_rate / 3600:.2f} h at {sample_rate} Hz "
              f"({len(todo)} decoded now in {time.perf_counter() - started:.1f} s, {len(failed)} failed)",
              file=sys.stderr)
    return directory


def _previous_tasks(directory: Path) -> list[str]:
    try:
        return list(json.loads((directory / META_FILE).read_text()).get("tasks", []))
    except (OSError, ValueError):
        return []


def _map(fn, jobs: list, workers: int):
    if workers <= 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(fn, jobs, chunksize=max(1, min(16, len(jobs) // (4 * workers) or 1)))


def _progress(total: int, desc: str, enabled: bool):
    if not enabled or total == 0:
        return None
    try:
        from ..progress import tqdm
    except ImportError:  # tqdm is a dependency, but progress is optional
        return None
    return tqdm(total=total, desc=desc, unit="file")


def reader_for(name: str, root: str | Path | None = None,
               sample_rate: int = DEFAULT_SAMPLE_RATE) -> DecodedCache | None:
    """The prepared :class:`DecodedCache` of task ``name`` at ``sample_rate``, or None.

    Callers check :meth:`DecodedCache.has` per clip and fall back to
    :func:`workbench.audio.read` for clips the cache lacks.
    """
    from . import data_root, get_spec

    directory = cache_path(get_spec(name).dataset, data_root(name, root).path, sample_rate)
    if not (directory / META_FILE).exists() or not (directory / DATA_FILE).exists():
        return None
    try:
        cache = DecodedCache.open(directory)
    except (OSError, ValueError, KeyError):
        return None
    return cache if cache.sample_rate == int(sample_rate) else None


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench data prepare NAME [--root DIR] [--sample-rate N] [--dtype int16] ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "prepare":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="python -m workbench data prepare",
                                description="Decode a task's audio once into a memory-mapped cache.")
    p.add_argument("name", help="task name, e.g. mtat_top50, fma_medium, folder")
    p.add_argument("--root", default=None, help="data root (default: $WORKBENCH_DATA/<data set> or the embedded copy)")
    p.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE, help="rate of the cached audio")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=DEFAULT_DTYPE)
    p.add_argument("--out", default=None, help="cache folder (default under $WORKBENCH_CACHE/decoded)")
    p.add_argument("--workers", type=int, default=1, help="decoding processes")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    directory = prepare(args.name, root=args.root, sample_rate=args.sample_rate, dtype=args.dtype, out=args.out,
                        progress=not args.quiet, workers=args.workers)
    print(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
