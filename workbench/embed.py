"""Frozen-encoder embeddings of whole tracks, extracted once and cached on disk (GUIDE 2.5).

:func:`extract` puts the encoder in eval mode under ``torch.no_grad`` (BatchNorm
statistics never move; the caller's train/eval flag is restored afterwards), reads every
track of a task split whole with :func:`workbench.audio.read` at the encoder's sample
rate, cuts it into non-overlapping ``clip_samples`` chunks and encodes the chunks in
batches. The projection head is never used: :func:`workbench.models.load_encoder`
returns only the encoder.

Chunking: a track of L samples gives ``1 + (L - T) // hop`` chunks of T samples starting
at 0, hop, 2·hop, … (hop = T by default: non-overlapping; the remainder after the last
whole chunk is dropped). A track shorter than one chunk is zero-padded to one chunk.
``max_chunks`` keeps that many chunks spread evenly over the track.

Cache: ``<cache_dir>/<key>.npy`` (the chunk embeddings) and ``<key>.json`` (ids,
track index, targets, settings, and every track's source identity), where ``key`` is the
sha256 of the checkpoint file (or of the encoder's state-dict bytes) together with the
task, split, data root, the split's manifest, the chunking settings and ``transform_key``.
A cache hit reads the two files and never touches the encoder.

Faults (docs/reliability.md): an entry is reused track by track, only while the track's
audio file keeps the :func:`workbench.fileid.identity` it had when it was embedded, so an
overwritten file is embedded again and every other track is reused.  A track that cannot
be decoded is skipped with one warning naming it and listed in ``meta["skipped"]`` (id ->
reason) instead of aborting the split.  Progress is saved every :data:`SHARD_TRACKS`
tracks under ``<key>.parts/``: a run killed (or out of disk) half way resumes from there.
An encoder that returns NaN or inf is refused with :class:`EmbeddingError` naming the
checkpoint; nothing non-finite is cached.

Any audio, no task and no split (:func:`embed_audio`): a file, a folder (recursive) or an
array gives chunk embeddings with their centre timestamps and one track embedding each.

CLI (wired as ``python -m workbench embed``)::

    python -m workbench embed --checkpoint runs/x/last.ckpt --task nsynth_pitch --split test --out emb/
    python -m workbench embed --checkpoint runs/x/last.ckpt --audio "my music/" --out emb/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["CACHE_VERSION", "EmbeddingError", "Embeddings", "cache_key", "chunk_starts", "default_cache_dir", "extract",
           "main", "segment_mean", "state_dict_sha256", "target_array", "file_sha256", "AudioEmbeddings",
           "embed_audio", "TRACK_AGGREGATIONS", "parquet_engine", "chunk_centres"]

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # 3: per-track source identities, skipped tracks, progress shards
DEFAULT_BATCH_SIZE = 64
DEFAULT_READ_AHEAD = 16  # tracks decoded ahead of the encoder when num_workers > 0
SHARD_TRACKS = 64  # tracks per saved progress shard (a killed run loses at most this many)
PARTS_SUFFIX = ".parts"


class EmbeddingError(ValueError):
    """Embeddings that cannot be trusted (NaN/inf from the encoder), or a split with no usable track."""


# ---------------------------------------------------------------- the result

@dataclass
class Embeddings:
    """Chunk embeddings of one task split.

    X: float32 ``[n_chunks, D]``; track_index: int64 ``[n_chunks]``, the row of each
    chunk's track in ``ids``/``targets``; ids: the track ids (manifest order); targets:
    track-level targets as arrays (see :func:`target_array`); meta: how they were made.
    """

    X: np.ndarray
    track_index: np.ndarray
    ids: list[str]
    targets: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float32)
        self.track_index = np.asarray(self.track_index, dtype=np.int64)
        self.ids = [str(i) for i in self.ids]
        if self.X.ndim != 2 or len(self.X) != len(self.track_index):
            raise ValueError(f"X must be [n_chunks, D] with one track_index per chunk; got X {self.X.shape} "
                             f"and track_index {self.track_index.shape}.")
        if len(self.targets) != len(self.ids):
            raise ValueError(f"{len(self.ids)} ids but {len(self.targets)} targets.")
        if len(self.track_index) and (self.track_index.min() < 0 or self.track_index.max() >= len(self.ids)):
            raise ValueError("track_index points outside the track list.")

    @property
    def n_tracks(self) -> int:
        return len(self.ids)

    @property
    def n_chunks(self) -> int:
        return len(self.X)

    @property
    def dim(self) -> int:
        return int(self.X.shape[1])

    def chunk_targets(self) -> np.ndarray:
        """Each chunk's target (its track's)."""
        return self.targets[self.track_index]

    def track_mean(self) -> np.ndarray:
        """Per-track mean of the chunk embeddings, ``[n_tracks, D]`` (a track with no chunk
        gives zeros)."""
        return segment_mean(self.X, self.track_index, self.n_tracks)

    def subset(self, tracks: Sequence[int] | np.ndarray) -> "Embeddings":
        """The given track rows (and their chunks), renumbered in the given order."""
        tracks = np.asarray(tracks, dtype=np.int64)
        remap = np.full(self.n_tracks, -1, dtype=np.int64)
        remap[tracks] = np.arange(len(tracks))
        keep = remap[self.track_index] >= 0
        order = np.argsort(remap[self.track_index][keep], kind="stable")
        return Embeddings(self.X[keep][order], remap[self.track_index][keep][order],
                          [self.ids[i] for i in tracks], self.targets[tracks],
                          {**self.meta, "subset_of": self.n_tracks})


def segment_mean(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """Mean of the rows of ``values`` sharing each ``index`` value, ``[n, D]`` (zeros where none)."""
    sums = np.zeros((n, values.shape[1]), dtype=np.float64)
    np.add.at(sums, index, values)
    counts = np.bincount(index, minlength=n).astype(np.float64)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


_segment_mean = segment_mean  # former private name, kept for callers that imported it


# ---------------------------------------------------------------- targets

def target_array(task, targets: Sequence) -> np.ndarray:
    """Manifest targets as an array: multilabel → multi-hot float32 ``[N, C]``;
    multiclass → int64 ``[N]``; regression → float32 ``[N, K]``; unlabeled → ``[N, 0]``."""
    targets = list(targets)
    n = len(targets)
    if task.kind == "multilabel":
        n_classes = task.num_outputs or (1 + max((max(t) for t in targets if len(t)), default=-1))
        out = np.zeros((n, n_classes), dtype=np.float32)
        for i, t in enumerate(targets):
            idx = np.asarray(list(t), dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= n_classes):
                raise ValueError(f"task {task.name}: label index out of range 0..{n_classes - 1} in row {i}.")
            out[i, idx] = 1.0
        return out
    if task.kind == "multiclass":
        if any(t is None for t in targets):
            raise ValueError(f"task {task.name}: some rows have no target; multiclass probing needs labels.")
        return np.asarray(targets, dtype=np.int64).reshape(n)
    if task.kind == "regression":
        return np.asarray([list(np.atleast_1d(t)) for t in targets], dtype=np.float32).reshape(n, -1)
    return np.zeros((n, 0), dtype=np.float32)


# ---------------------------------------------------------------- hashing and cache

def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (memoised per path, size and mtime; :func:`workbench.fileid.sha256`)."""
    from .fileid import sha256

    return sha256(path)


def state_dict_sha256(module_or_state: nn.Module | dict) -> str:
    """sha256 of a state dict: every entry's name, dtype, shape and raw bytes, in order."""
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            h.update(f"{name}={t!r};".encode())
            continue
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(state[name].shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``workbench.data.roots.cache_dir()/embeddings``."""
    from .data.roots import cache_dir

    return cache_dir() / "embeddings"


def cache_key(fields: dict) -> str:
    """Hex sha256 of the JSON of ``fields`` (sorted keys)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _manifest_digest(rows) -> str:
    """Digest of the split's audio (ids and paths, in order) — not of its targets, so tasks
    that share audio (nsynth_pitch / nsynth_instrument) share one cache entry."""
    h = hashlib.sha256()
    for r in rows.itertuples(index=False):
        h.update(json.dumps([str(r.id), str(r.path)]).encode())
    return h.hexdigest()


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


@dataclass
class _Done:
    """Per-manifest-row results of a split: chunk embeddings of embedded rows, reasons of skipped rows,
    and each row's source identity when it was read."""

    chunks: dict[int, np.ndarray] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    sources: dict[int, list | None] = field(default_factory=dict)
    warned: set[int] = field(default_factory=set)  # skipped rows already warned about in this run

    def rows(self) -> set[int]:
        return set(self.chunks) | set(self.skipped)

    def merge(self, other: "_Done", paths: Sequence[str]) -> int:
        """Take ``other``'s rows that this lacks and whose file is unchanged; return how many."""
        from .fileid import unchanged

        taken = 0
        for r in sorted(other.rows() - self.rows()):
            if r < len(paths) and unchanged(other.sources.get(r), paths[r]):
                if r in other.chunks:
                    self.chunks[r] = other.chunks[r]
                else:
                    self.skipped[r] = other.skipped[r]
                self.sources[r] = other.sources[r]
                taken += 1
        return taken


def _write_entry(path_stem: Path, X: np.ndarray, index: dict) -> None:
    """``<stem>.npy`` then ``<stem>.json`` (its presence marks a complete entry), each atomically."""
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}.{time.monotonic_ns()}"
    tmp_npy = path_stem.with_name(f".{path_stem.name}.{tag}.npy")
    tmp_json = path_stem.with_name(f".{path_stem.name}.{tag}.json")
    try:
        np.save(tmp_npy, X)
        tmp_json.write_text(json.dumps(index, default=str))
        os.replace(tmp_npy, path_stem.with_suffix(".npy"))
        os.replace(tmp_json, path_stem.with_suffix(".json"))
    finally:
        tmp_npy.unlink(missing_ok=True)
        tmp_json.unlink(missing_ok=True)


def _read_entry(path_stem: Path) -> tuple[np.ndarray, dict] | None:
    npy, idx = path_stem.with_suffix(".npy"), path_stem.with_suffix(".json")
    if not (npy.exists() and idx.exists()):
        return None
    try:
        index = json.loads(idx.read_text())
        X = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        log.warning("ignoring unreadable embedding cache entry %s (%s); re-extracting", idx, exc)
        return None
    if index.get("version") != CACHE_VERSION:
        return None
    return X, index


def _done_of(X: np.ndarray, index: dict) -> _Done:
    """The per-row results held by a full entry or a shard."""
    done = _Done()
    chunk_rows = np.asarray(index["chunk_rows"], dtype=np.int64)
    order = np.argsort(chunk_rows, kind="stable")
    values, starts = np.unique(chunk_rows[order], return_index=True)
    for r, part in zip(values, np.split(order, starts[1:])):
        done.chunks[int(r)] = X[part]
    done.sources = {int(r): s for r, s in index["sources"]}
    done.skipped = {int(r): str(e) for r, e in index["skipped"]}
    return done


def _entry_index(done: _Done, rows: Sequence[int]) -> tuple[np.ndarray, dict]:
    """(X, index) of ``done``'s ``rows``: chunks in row order, with their rows, sources and skips."""
    embedded = [r for r in rows if r in done.chunks]
    X = np.concatenate([done.chunks[r] for r in embedded]) if embedded else np.zeros((0, 0), np.float32)
    chunk_rows = np.concatenate([np.full(len(done.chunks[r]), r, np.int64) for r in embedded]) if embedded \
        else np.zeros(0, np.int64)
    return X.astype(np.float32), {
        "version": CACHE_VERSION, "chunk_rows": chunk_rows.tolist(),
        "sources": [[int(r), done.sources.get(r)] for r in rows if r in done.sources],
        "skipped": [[int(r), done.skipped[r]] for r in rows if r in done.skipped]}


def _save_shard(directory: Path, key: str, done: _Done, rows: Sequence[int]) -> None:
    """Best effort: a failed progress save (full disk) is warned about, never fatal."""
    X, index = _entry_index(done, rows)
    stem = directory / f"{key}{PARTS_SUFFIX}" / f"{min(rows):08d}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        _write_entry(stem, X, index)
    except OSError as exc:
        log.warning("could not save embedding progress to %s (%s); continuing without it", stem.parent, exc)


def _load_progress(directory: Path, key: str, paths: Sequence[str]) -> tuple[_Done, dict | None]:
    """Rows reusable from the full entry and any progress shards; and the full entry's meta when
    all of it is reusable (a plain cache hit), else None."""
    done = _Done()
    full = _read_entry(directory / key)
    if full is not None and "chunk_rows" in full[1]:
        if done.merge(_done_of(*full), paths) == len(paths):
            return done, dict(full[1]["meta"])
    parts = directory / f"{key}{PARTS_SUFFIX}"
    if parts.is_dir():
        for idx in sorted(parts.glob("[0-9]*.json")):
            entry = _read_entry(idx.with_suffix(""))
            if entry is not None:
                done.merge(_done_of(*entry), paths)
    return done, None


# ---------------------------------------------------------------- chunking and reading

def chunk_starts(n_samples: int, clip_samples: int, hop: int | None = None,
                 max_chunks: int | None = None) -> np.ndarray:
    """Start samples of the chunks of a track of ``n_samples`` (see the module docstring)."""
    if clip_samples <= 0:
        raise ValueError(f"clip_samples must be positive, got {clip_samples}.")
    hop = clip_samples if hop is None else int(hop)
    if hop <= 0:
        raise ValueError(f"hop must be positive, got {hop}.")
    if n_samples <= clip_samples:
        starts = np.zeros(1, dtype=np.int64)
    else:
        starts = np.arange(1 + (n_samples - clip_samples) // hop, dtype=np.int64) * hop
    if max_chunks is not None:
        if max_chunks <= 0:
            raise ValueError(f"max_chunks must be positive or None, got {max_chunks}.")
        if len(starts) > max_chunks:
            pick = np.round(np.linspace(0, len(starts) - 1, max_chunks)).astype(np.int64)
            starts = starts[pick]
    return starts


def chunk_centres(n_samples: int, clip_samples: int, hop: int | None = None,
                  max_chunks: int | None = None) -> np.ndarray:
    """Centre sample of each chunk of a track of ``n_samples`` (:func:`chunk_starts`), of the
    audio it covers: a track shorter than one chunk has its centre at half its length."""
    clip = clip_samples
    starts = chunk_starts(max(n_samples, clip), clip, hop, max_chunks)
    covered = np.minimum(clip, np.maximum(n_samples - starts, 0))
    return starts + covered / 2.0


def _cut(x: np.ndarray, clip_samples: int, hop: int | None, max_chunks: int | None) -> np.ndarray:
    if len(x) < clip_samples:
        x = np.pad(x, (0, clip_samples - len(x)))
    starts = chunk_starts(len(x), clip_samples, hop, max_chunks)
    return np.stack([x[s:s + clip_samples] for s in starts])


def _read_one(path: str, sample_rate: int) -> tuple[np.ndarray | None, Exception | None, list | None]:
    """(samples, None, identity) or (None, the error, identity) for one track; identity taken first."""
    from . import audio, fileid

    ident = fileid.identity(path)
    try:
        return audio.read(path, sample_rate), None, ident
    except (audio.AudioError, OSError) as exc:
        return None, exc, ident


def _read_tracks(paths: Sequence[str], sample_rate: int, num_workers: int) -> Iterator[tuple]:
    if num_workers <= 0:
        for p in paths:
            yield _read_one(p, sample_rate)
        return
    with ThreadPoolExecutor(max_workers=num_workers) as pool:
        pending = []
        it = iter(paths)
        for p in it:
            pending.append(pool.submit(_read_one, p, sample_rate))
            if len(pending) >= DEFAULT_READ_AHEAD:
                yield pending.pop(0).result()
        for f in pending:
            yield f.result()


def _fit_length(x: torch.Tensor, clip_samples: int) -> torch.Tensor:
    """Crop or zero-pad ``[B, 1, T']`` to T = clip_samples (a transform may change length)."""
    t = x.shape[-1]
    if t > clip_samples:
        return x[..., :clip_samples]
    if t < clip_samples:
        return torch.nn.functional.pad(x, (0, clip_samples - t))
    return x


# ---------------------------------------------------------------- extraction

def _resolve_encoder(source) -> tuple[nn.Module, dict, str]:
    """(encoder, meta, sha256) for a module, a checkpoint path or an in-memory state dict."""
    if isinstance(source, nn.Module):
        meta = {"name": type(source).__name__, "checkpoint": None}
        return source, meta, state_dict_sha256(source)
    from .models import load_encoder

    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} not found. Pass a checkpoint file (.ckpt/.pt) "
                                    "or an encoder module.")
        digest = file_sha256(path)
        encoder, meta = load_encoder(str(path), map_location="cpu")
        return encoder, {**meta, "checkpoint": str(path)}, digest
    if isinstance(source, dict):
        encoder, meta = load_encoder(source, map_location="cpu")
        return encoder, {**meta, "checkpoint": None}, state_dict_sha256(encoder)
    raise TypeError(f"expected an encoder nn.Module, a checkpoint path or a state dict, got {type(source).__name__}.")


def _setting(explicit, encoder_meta: dict, encoder: nn.Module | None, name: str) -> int:
    if explicit is not None:
        return int(explicit)
    if encoder is not None and getattr(encoder, name, None) is not None:
        return int(getattr(encoder, name))
    if encoder_meta.get(name) is not None:
        return int(encoder_meta[name])
    raise ValueError(f"the encoder declares no {name}; pass {name}=… to extract().")


def extract(
    checkpoint_or_encoder,
    task,
    split: str,
    *,
    root: str | Path | None = None,
    sample_rate: int | None = None,
    clip_samples: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    hop: int | None = None,
    max_chunks: int | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    transform_key: str | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> Embeddings:
    """Chunk embeddings of every track of ``task``'s ``split``.

    checkpoint_or_encoder: an encoder module (``[B, 1, T] → [B, D]``), a checkpoint path
        (Lightning checkpoint or plain encoder state dict) or an in-memory state dict.
    task: a task name or :class:`workbench.data.Task`.
    split: train, valid, test, or ``"all"`` (every track of the task, e.g. of a ``folder``).
    sample_rate, clip_samples: override the encoder's own.
    hop, max_chunks: chunking (module docstring); defaults: non-overlapping, all chunks.
    transform: optional callable on ``[B, 1, T]`` chunk batches on ``device`` (e.g. a
        corruption), applied before the encoder; its output is cropped/padded back to T.
        Needs ``transform_key`` naming it (kind, severity, seed) for the cache.
    num_workers: threads decoding audio ahead of the encoder (0: in the calling thread).
    use_cache: False neither reads nor writes the cache.
    device: where the encoder runs (a given module is moved there and left there).
    """
    from . import data

    if isinstance(task, str):
        task = data.task(task, root)
    if split not in data.SPLIT_CHOICES:
        raise ValueError(f"split must be one of {', '.join(data.SPLIT_CHOICES)}, got {split!r}.")
    if transform is not None and transform_key is None and use_cache:
        raise ValueError("a transform needs transform_key=… (e.g. 'chain-s1.0-seed0') so that its embeddings "
                         "are cached apart from clean ones; or pass use_cache=False.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    _check_settings(sample_rate=sample_rate, clip_samples=clip_samples, hop=hop, max_chunks=max_chunks)

    droot = data.resolve_root(task.dataset, root)
    df = data.manifest(task.name, root)
    rows = data.select_split(df, split)
    if rows.empty:
        raise ValueError(f"task {task.name}: split {split!r} is empty under {droot.path} "
                         f"({len(df)} clips in all; split={data.ALL!r} takes every one).")
    paths = rows["path"].astype(str).tolist()

    # Identify the encoder without building it when a checkpoint file is given, so a hit
    # costs one hash, one stat per track and two file reads.
    encoder = None
    if isinstance(checkpoint_or_encoder, (str, Path)):
        if not Path(checkpoint_or_encoder).is_file():
            raise FileNotFoundError(f"checkpoint {checkpoint_or_encoder} not found. Pass a checkpoint file "
                                    "(.ckpt/.pt) or an encoder module.")
        digest = file_sha256(checkpoint_or_encoder)
        enc_meta = {"checkpoint": str(checkpoint_or_encoder)}
        key_sr, key_clip = sample_rate, clip_samples  # None = the checkpoint's own, fixed by the digest
    else:
        encoder, enc_meta, digest = _resolve_encoder(checkpoint_or_encoder)
        key_sr = _setting(sample_rate, enc_meta, encoder, "sample_rate")
        key_clip = _setting(clip_samples, enc_meta, encoder, "clip_samples")

    fields = {"version": CACHE_VERSION, "encoder_sha256": digest, "dataset": task.dataset, "split": split,
              "data_root": str(droot.path), "manifest": _manifest_digest(rows), "sample_rate": key_sr,
              "clip_samples": key_clip, "hop": hop, "max_chunks": max_chunks, "transform": transform_key}
    if encoder is not None:  # two parameterless stand-in encoders share a state-dict digest
        fields["encoder_class"] = f"{type(encoder).__module__}.{type(encoder).__qualname__}"
    key = cache_key(fields)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    done, hit = _load_progress(directory, key, paths) if use_cache else (_Done(), None)
    if hit is not None:
        log.info("embeddings for %s/%s from cache %s", task.name, split, directory / f"{key}.npy")
        # the entry may have been written for another task on the same audio: its own targets
        return _assemble(done, rows, task, {**hit, "cache_hit": True, "task": task.name})

    if encoder is None:
        encoder, enc_meta, _ = _resolve_encoder(checkpoint_or_encoder)
    sr = _setting(sample_rate, enc_meta, encoder, "sample_rate")
    clip = _setting(clip_samples, enc_meta, encoder, "clip_samples")
    _check_settings(sample_rate=sr, clip_samples=clip)
    source = enc_meta.get("checkpoint") or f"encoder {enc_meta.get('name') or type(encoder).__name__}"

    reused = len(done.rows())
    todo = [r for r in range(len(rows)) if r not in done.rows()]
    bar = None
    if progress and todo:
        from .progress import tqdm  # text bars unless a Jupyter front end is attached

        bar = tqdm(total=len(todo), desc=f"embed {task.name}/{split}")
    from .threads import apply as thread_policy

    try:
        with thread_policy(workers=num_workers):  # torch threads (workbench.threads); decoding threads are busy
            for g in range(0, len(todo), SHARD_TRACKS):
                group = todo[g:g + SHARD_TRACKS]
                _encode_rows(encoder, group, paths, done, sr, clip, hop, max_chunks, batch_size,
                             torch.device(device), transform, num_workers, source, bar)
                if use_cache and len(group) < len(todo):  # one group only: the full entry below is the save
                    _save_shard(directory, key, done, group)
    finally:
        if bar is not None:
            bar.close()
    if not done.chunks:
        first = next(iter(done.skipped.values()), "")
        raise EmbeddingError(f"task {task.name}: none of the {len(rows)} tracks of split {split!r} could be read "
                             f"(first: {first}). Check the data root {droot.path}.")
    meta = {"task": task.name, "split": split, "data_root": str(droot.path), "data_source": droot.source,
            "synthetic": bool(droot.synthetic), "sample_rate": sr, "clip_samples": clip, "hop": hop or clip,
            "max_chunks": max_chunks, "transform": transform_key, "encoder": enc_meta.get("name"),
            "checkpoint": enc_meta.get("checkpoint"), "encoder_sha256": digest, "cache_key": key,
            "cache_hit": False, "reused_tracks": reused}
    emb = _assemble(done, rows, task, meta)
    if use_cache:
        _save_full(directory, key, done, len(rows), emb)
    return emb


def _check_settings(**values) -> None:
    """Each given setting (sample_rate, clip_samples, hop, max_chunks) is None or a positive int."""
    from .audio import check_sample_rate

    for name, v in values.items():
        if v is None:
            continue
        if name == "sample_rate":
            check_sample_rate(v, name)
        elif isinstance(v, bool) or int(v) != v or int(v) <= 0:
            raise ValueError(f"{name} must be a positive whole number, got {v!r}.")


def _assemble(done: _Done, rows, task, meta: dict) -> Embeddings:
    """The split's Embeddings from per-row results: embedded rows in manifest order, skipped ones left
    out and listed in ``meta["skipped"]`` (id -> reason)."""
    embedded = [r for r in range(len(rows)) if r in done.chunks]
    X = np.concatenate([done.chunks[r] for r in embedded])
    track_index = np.concatenate([np.full(len(done.chunks[r]), i, np.int64) for i, r in enumerate(embedded)])
    ids = rows["id"].astype(str)
    skipped = {ids[r]: done.skipped[r] for r in sorted(done.skipped)}
    earlier = [r for r in sorted(done.skipped) if r not in done.warned]
    if earlier:  # skipped in an earlier run (the cache remembers them): say so again
        import warnings

        from .audio import AudioWarning

        shown = "; ".join(done.skipped[r] for r in earlier[:3])
        warnings.warn(f"{meta.get('task')}/{meta.get('split')}: {len(earlier)} unusable track(s) left out, as in "
                      f"the run that cached them ({shown}{'; ...' if len(earlier) > 3 else ''}). Fix or remove "
                      "the file(s); a changed file is embedded again.", AudioWarning, stacklevel=3)
    return Embeddings(X, track_index, [ids[r] for r in embedded], target_array(task, rows["target"].iloc[embedded]),
                      {**meta, "skipped": skipped})


def _save_full(directory: Path, key: str, done: _Done, n_rows: int, emb: Embeddings) -> None:
    """The complete entry, then drop the progress shards; a failed save (full disk) only warns:
    the embeddings are returned all the same and the shards stay for the next run."""
    X, index = _entry_index(done, range(n_rows))
    index.update({"ids": emb.ids, "track_index": emb.track_index.tolist(), "targets": emb.targets.tolist(),
                  "targets_dtype": str(emb.targets.dtype), "targets_shape": list(emb.targets.shape),
                  "meta": {k: v for k, v in emb.meta.items() if k != "skipped"}})
    try:
        _write_entry(directory / key, X, index)
    except OSError as exc:
        import warnings

        warnings.warn(f"embedding cache {directory}: could not save the embeddings ({exc}); they are returned "
                      "but will be extracted again next time (progress shards are kept).", RuntimeWarning,
                      stacklevel=3)
        return
    shutil.rmtree(directory / f"{key}{PARTS_SUFFIX}", ignore_errors=True)


@torch.no_grad()
def _encode_rows(encoder: nn.Module, group: list[int], paths: list[str], done: _Done, sample_rate: int, clip: int,
                 hop: int | None, max_chunks: int | None, batch_size: int, device: torch.device, transform,
                 num_workers: int, source: str, bar=None) -> None:
    """Embed the manifest rows ``group`` into ``done`` (skipping, with a warning, tracks that cannot be
    read); batches span tracks. Refuses non-finite embeddings, naming ``source``."""
    from .audio import warn_skipped

    was_training = encoder.training
    encoder.eval()
    encoder.to(device)
    buf: list[tuple[int, np.ndarray]] = []
    buffered = 0

    def flush() -> None:
        nonlocal buf, buffered
        chunks = np.concatenate([c for _, c in buf])
        outs = []
        for s in range(0, len(chunks), batch_size):
            x = torch.from_numpy(chunks[s:s + batch_size]).to(device).unsqueeze(1)
            if transform is not None:
                x = _fit_length(transform(x), clip)
            z = encoder(x)
            if z.ndim != 2 or z.shape[0] != x.shape[0]:
                raise ValueError(f"the encoder returned shape {tuple(z.shape)} for input {tuple(x.shape)}; "
                                 "expected [B, D]. Pass the encoder, not the whole contrastive model.")
            if not bool(torch.isfinite(z).all()):
                raise EmbeddingError(
                    f"{source}: the encoder returned NaN/inf embeddings (for finite audio, e.g. "
                    f"{paths[buf[0][0]]}); this checkpoint is broken (a NaN weight or BatchNorm statistic). "
                    "Use an earlier checkpoint of the run, or retrain with a lower learning rate.")
            outs.append(z.float().cpu().numpy())
        out = np.concatenate(outs).astype(np.float32)
        at = 0
        for r, c in buf:
            done.chunks[r] = out[at:at + len(c)]
            at += len(c)
        buf, buffered = [], 0

    try:
        for r, (x, error, ident) in zip(group, _read_tracks([paths[r] for r in group], sample_rate, num_workers)):
            done.sources[r] = ident
            if x is None:
                warn_skipped(error, "track")
                done.skipped[r] = str(error)
                done.warned.add(r)
            else:
                chunks = _cut(x, clip, hop, max_chunks)
                buf.append((r, chunks))
                buffered += len(chunks)
                if buffered >= batch_size:
                    flush()
            if bar is not None:
                bar.update(1)
        if buffered:
            flush()
    finally:
        encoder.train(was_training)


# ---------------------------------------------------------------- any audio

#: Track aggregations of chunk embeddings: name -> reduction over a track's chunks.
TRACK_AGGREGATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda chunks: chunks.mean(0),  # SemiSupCon / CLMR's track embedding
    "max": lambda chunks: chunks.max(0),
}
DEFAULT_AGGREGATION = "mean"
#: Largest channel count of an array given to :func:`embed_audio` (its smaller axis).
MAX_CHANNELS = 16


@dataclass
class AudioEmbeddings:
    """Embeddings of any audio (:func:`embed_audio`).

    chunks: float32 ``[n_chunks, D]``; timestamps: float64 ``[n_chunks]``, the centre of each
    chunk in its track, in seconds (of the audio it covers: a track shorter than a chunk has
    its centre at half its duration); track_index: int64 ``[n_chunks]``; tracks: float32
    ``[n_tracks, D]``, each track's chunks under ``aggregation``; paths: one per track (``""``
    for an array); ids: each track's path relative to the folder given (its name for a file);
    durations: seconds; skipped: ``(path, reason)`` of the files that could not be read.
    """

    chunks: np.ndarray
    timestamps: np.ndarray
    track_index: np.ndarray
    tracks: np.ndarray
    paths: list[str]
    ids: list[str]
    durations: np.ndarray
    aggregation: str = DEFAULT_AGGREGATION
    meta: dict = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_tracks(self) -> int:
        return len(self.paths)

    @property
    def dim(self) -> int:
        return int(self.chunks.shape[1])

    @property
    def offsets(self) -> np.ndarray:
        """Row of each track's first chunk in ``chunks`` (its chunks are contiguous)."""
        counts = np.bincount(self.track_index, minlength=self.n_tracks)
        return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    def track(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(chunk embeddings, centre timestamps)`` of track ``i``."""
        keep = self.track_index == i
        return self.chunks[keep], self.timestamps[keep]

    def index(self):
        """One row per track: ``path, id, duration, offset, n_chunks`` (a DataFrame)."""
        import pandas as pd

        return pd.DataFrame({"path": self.paths, "id": self.ids, "duration": self.durations,
                             "offset": self.offsets, "n_chunks": np.bincount(self.track_index,
                                                                             minlength=self.n_tracks)})

    def save(self, out: str | Path) -> list[Path]:
        """Write ``embeddings.npz`` (every array), ``index.csv`` (one row per track),
        ``meta.json`` and, when pandas has a Parquet engine, ``chunks.parquet`` and
        ``tracks.parquet`` (one column per dimension). Returns the files written."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "embeddings.npz", out / "index.csv", out / "meta.json"]
        np.savez(written[0], chunks=self.chunks, timestamps=self.timestamps, track_index=self.track_index,
                 tracks=self.tracks, durations=self.durations, offsets=self.offsets,
                 paths=np.asarray(self.paths, dtype=str), ids=np.asarray(self.ids, dtype=str))
        self.index().to_csv(written[1], index=False)
        written[2].write_text(json.dumps({**self.meta, "aggregation": self.aggregation,
                                          "skipped": [list(s) for s in self.skipped]}, indent=2, default=str))
        if parquet_engine() is not None:
            import pandas as pd

            columns = [f"e{d:03d}" for d in range(self.dim)]
            chunks = pd.DataFrame(self.chunks, columns=columns)
            chunks.insert(0, "id", [self.ids[t] for t in self.track_index])
            chunks.insert(1, "track", self.track_index)
            chunks.insert(2, "time", self.timestamps)
            tracks = pd.concat([self.index(), pd.DataFrame(self.tracks, columns=columns)], axis=1)
            chunks.to_parquet(out / "chunks.parquet", index=False)
            tracks.to_parquet(out / "tracks.parquet", index=False)
            written += [out / "chunks.parquet", out / "tracks.parquet"]
        return written


def parquet_engine() -> str | None:
    """The Parquet engine pandas would use (``pyarrow`` or ``fastparquet``), or None."""
    from pandas.io.parquet import get_engine

    try:
        engine = get_engine("auto")
    except ImportError:
        return None
    return type(engine).__name__.replace("Impl", "").lower()


def _as_mono(audio, sample_rate: int | None, target_sr: int) -> np.ndarray:
    """An array (``[samples]``, or ``[channels, samples]`` / ``[samples, channels]``: the
    smaller axis is the channels) as mono float32 at ``target_sr``."""
    from .audio import resample

    x = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    if x.ndim == 2:
        axis = int(np.argmin(x.shape))
        if x.shape[axis] > MAX_CHANNELS:
            raise ValueError(f"embed_audio: a 2-d array is one track as [channels, samples] or [samples, channels] "
                             f"(at most {MAX_CHANNELS} channels); got shape {x.shape}. Embed several tracks by "
                             "saving them as files in a folder, or call embed_audio once per track.")
        x = x.mean(axis=axis)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"embed_audio: expected a non-empty 1-d (mono) or 2-d (multichannel) array, got shape "
                         f"{x.shape}.")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"embed_audio: expected float samples in [-1, 1], got dtype {x.dtype}; convert integer PCM "
                         "with x / 32768.0 (16-bit) first.")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ValueError("embed_audio: the array holds NaN or infinite samples.")
    return resample(x, int(sample_rate), target_sr) if sample_rate and sample_rate != target_sr else x


def _audio_files(audio: str | Path) -> tuple[list[Path], Path | None]:
    """(files, folder): a file alone, or every audio file under a folder (recursive)."""
    from .data.loaders.folder import audio_extensions, scan_audio

    path = Path(audio).expanduser()
    if path.is_dir():
        files = scan_audio(path)
        if not files:
            raise FileNotFoundError(f"embed_audio: no audio file under {path} (searched recursively for "
                                    f"{' '.join(audio_extensions())}).")
        return files, path
    if path.is_file():
        return [path], None
    raise FileNotFoundError(f"embed_audio: {path} is neither an audio file nor a folder.")


def embed_audio(
    checkpoint,
    audio,
    sample_rate: int | None = None,
    *,
    aggregation: str = DEFAULT_AGGREGATION,
    hop: int | None = None,
    max_chunks: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    progress: bool = False,
) -> AudioEmbeddings:
    """Embeddings of any audio with a frozen encoder: no task, no split.

        emb = embed_audio("runs/x/checkpoints/last.ckpt", "my music/")   # a folder, a file or an array
        emb.chunks, emb.timestamps, emb.tracks

    checkpoint: a checkpoint path, an encoder module or a state dict (as :func:`extract`).
    audio: an audio file; a folder (every audio file under it, recursively, in natural
        order; a file that cannot be decoded is skipped with a warning and listed in
        ``skipped``); or an array (one track, mono or multichannel, float in [-1, 1]).
    sample_rate: the rate of an array (None: it is at the encoder's rate). Files carry
        their own rate and are resampled to the encoder's.
    aggregation: how a track's chunk embeddings become its embedding
        (:data:`TRACK_AGGREGATIONS`).
    hop, max_chunks: chunking as in :func:`chunk_starts` (default: non-overlapping chunks of
        the encoder's ``clip_samples``; a track shorter than one chunk is zero-padded).
    """
    from . import audio as audio_io

    if aggregation not in TRACK_AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(TRACK_AGGREGATIONS)}, got {aggregation!r}.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    _check_settings(hop=hop, max_chunks=max_chunks)
    encoder, enc_meta, digest = _resolve_encoder(checkpoint)
    sr = _setting(None, enc_meta, encoder, "sample_rate")
    clip = _setting(None, enc_meta, encoder, "clip_samples")
    source = enc_meta.get("checkpoint") or f"encoder {enc_meta.get('name') or type(encoder).__name__}"

    skipped: list[tuple[str, str]] = []
    if isinstance(audio, (str, Path)):
        if sample_rate is not None:
            raise ValueError(f"embed_audio: sample_rate is the rate of an array; {audio} is a path and its files carry "
                             "their own rate (they are resampled to the encoder's). Leave sample_rate out.")
        files, folder = _audio_files(audio)
        paths = [str(f) for f in files]
        done = _Done()
        bar = None
        if progress:
            from .progress import tqdm

            bar = tqdm(total=len(paths), desc="embed audio")
        try:
            _encode_rows(encoder, list(range(len(paths))), paths, done, sr, clip, hop, max_chunks, batch_size,
                         torch.device(device), None, num_workers, source, bar)
        finally:
            if bar is not None:
                bar.close()
        skipped = [(paths[r], reason) for r, reason in sorted(done.skipped.items())]
        kept = sorted(done.chunks)
        if not kept:
            raise ValueError(f"embed_audio: none of the {len(paths)} file(s) could be read: "
                             f"{'; '.join(r for _, r in skipped[:3])}")
        per_track = [done.chunks[r] for r in kept]
        lengths = []
        for r in kept:  # the decoded length at the encoder's rate, from the header (no second decode)
            meta = audio_io.info(paths[r])
            lengths.append(int(np.ceil(meta.frames * sr / meta.sample_rate)))
        paths = [paths[r] for r in kept]
        ids = [files[r].relative_to(folder).as_posix() if folder is not None else files[r].name for r in kept]
    else:
        x = _as_mono(audio, sample_rate, sr)
        per_track = [_encode_chunks(encoder, _cut(x, clip, hop, max_chunks), batch_size, torch.device(device),
                                    source)]
        lengths, paths, ids = [len(x)], [""], ["<array>"]

    X = np.concatenate(per_track).astype(np.float32)
    track_index = np.concatenate([np.full(len(c), t, dtype=np.int64) for t, c in enumerate(per_track)])
    timestamps = np.concatenate([chunk_centres(n, clip, hop, max_chunks)[:len(c)] / sr
                                 for n, c in zip(lengths, per_track)])
    reduce_track = TRACK_AGGREGATIONS[aggregation]
    tracks = np.stack([reduce_track(c) for c in per_track]).astype(np.float32)
    meta = {"source": str(audio) if paths[0] else "array", "sample_rate": sr, "clip_samples": clip,
            "hop": hop or clip, "max_chunks": max_chunks, "encoder": enc_meta.get("name"),
            "checkpoint": enc_meta.get("checkpoint"), "encoder_sha256": digest}
    return AudioEmbeddings(X, timestamps, track_index, tracks, paths, ids,
                           np.asarray(lengths, dtype=np.float64) / sr, aggregation, meta, skipped)


@torch.no_grad()
def _encode_chunks(encoder: nn.Module, chunks: np.ndarray, batch_size: int, device: torch.device,
                   source: str) -> np.ndarray:
    """Embeddings ``[n, D]`` of one track's chunks ``[n, T]`` (eval mode; the caller's mode restored)."""
    was_training = encoder.training
    encoder.eval()
    encoder.to(device)
    try:
        outs = [encoder(torch.from_numpy(chunks[s:s + batch_size]).to(device).unsqueeze(1)).float().cpu().numpy()
                for s in range(0, len(chunks), batch_size)]
    finally:
        encoder.train(was_training)
    out = np.concatenate(outs)
    if out.ndim != 2 or not np.isfinite(out).all():
        raise EmbeddingError(f"{source}: the encoder returned {'NaN/inf' if out.ndim == 2 else out.shape} "
                             "embeddings for finite audio; expected finite [B, D].")
    return out


# ---------------------------------------------------------------- CLI

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench embed",
                                description="Extract frozen-encoder chunk embeddings of a task split (--task), "
                                            "or of any audio file or folder (--audio).")
    p.add_argument("--checkpoint", required=True, help="checkpoint (.ckpt) or plain encoder state dict (.pt)")
    p.add_argument("--task", default=None, help="task name, e.g. nsynth_pitch")
    p.add_argument("--audio", default=None,
                   help="an audio file or a folder (every audio file under it, recursively): writes "
                        "embeddings.npz, index.csv (path, id, duration, offset, n_chunks), meta.json and, when "
                        "pandas has a Parquet engine, chunks.parquet and tracks.parquet to --out")
    p.add_argument("--aggregation", default=DEFAULT_AGGREGATION, choices=list(TRACK_AGGREGATIONS),
                   help="--audio: track embedding from its chunks (default mean)")
    p.add_argument("--split", nargs="+", default=["test"], help="train/valid/test/all (several allowed; default test)")
    p.add_argument("--out", required=True, help="output folder: <task>_<split>.npy and <task>_<split>.csv")
    p.add_argument("--root", default=None, help="data root (default: $WORKBENCH_DATA or the embedded benchmark)")
    p.add_argument("--sample-rate", type=int, default=None)
    p.add_argument("--clip-samples", type=int, default=None)
    p.add_argument("--hop", type=int, default=None)
    p.add_argument("--max-chunks", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--no-cache", action="store_true")
    return p


def write_index(emb: Embeddings, npy_path: Path, csv_path: Path) -> None:
    """Write ``X`` as .npy and a per-chunk CSV index (chunk, id, track_index, target)."""
    import pandas as pd

    np.save(npy_path, emb.X)
    targets = emb.chunk_targets()
    pd.DataFrame({
        "chunk": np.arange(emb.n_chunks),
        "id": [emb.ids[i] for i in emb.track_index],
        "track_index": emb.track_index,
        "target": [json.dumps(_jsonable(t)) for t in targets],
    }).to_csv(csv_path, index=False)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m workbench embed …``: write ``<out>/<task>_<split>.npy`` + ``.csv`` index."""
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.task is None) == (args.audio is None):
        parser.error("give either --task (a task split) or --audio FILE|DIR (any audio), not both or neither")
    out = Path(args.out)
    if args.audio is not None:
        if args.root or args.sample_rate or args.clip_samples or args.split != ["test"]:
            parser.error("--audio takes every file as it is: --root, --split, --sample-rate and --clip-samples "
                         "belong to --task")
        emb = embed_audio(args.checkpoint, args.audio, aggregation=args.aggregation, hop=args.hop,
                          max_chunks=args.max_chunks, batch_size=args.batch_size, device=args.device,
                          num_workers=args.num_workers, progress=True)
        written = emb.save(out)
        print(f"{emb.n_tracks} tracks, {len(emb.chunks)} chunks × {emb.dim} -> {', '.join(map(str, written))}")
        for path, reason in emb.skipped:
            print(f"skipped {path}: {reason}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for split in args.split:
        emb = extract(args.checkpoint, args.task, split, root=args.root, sample_rate=args.sample_rate,
                      clip_samples=args.clip_samples, batch_size=args.batch_size, device=args.device,
                      cache_dir=args.cache_dir, use_cache=not args.no_cache, hop=args.hop,
                      max_chunks=args.max_chunks, num_workers=args.num_workers)
        stem = f"{args.task}_{split}"
        write_index(emb, out / f"{stem}.npy", out / f"{stem}.csv")
        (out / f"{stem}.json").write_text(json.dumps(emb.meta, indent=2, default=str))
        print(f"{split}: {emb.n_tracks} tracks, {emb.n_chunks} chunks × {emb.dim} -> {out / (stem + '.npy')}")
    return 0
