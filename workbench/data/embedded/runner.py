"""Render the embedded benchmark: plan every stand-in, render its items in worker processes, write the tree.

Determinism: each item's material comes from a generator seeded by (seed, task, item
index); items are rendered in fixed batches (each stand-in's ``BATCH``), each by a fresh
synthesiser in a worker process started with ``spawn``; so the same seed gives
byte-identical audio and annotation files whatever the scheduling (``SYNTHETIC.json``
holds timestamps).

A stand-in is a module with ``NAME`` (its folder), ``TASKS``, ``BATCH``, ``GAIN`` (the
synthesiser's), ``SOUNDFONTS_BY_SPLIT`` and four functions: ``plan(scale, seed)`` → items,
``render_item(synth, item, root, fonts, seed, scale)`` → result (worker side),
``write(root, items, results)`` (annotation files) and ``summary_rows(items, results)``;
optionally ``statistics(items, results)`` (label statistics kept in SYNTHETIC.json).

Versions.  Each stand-in declares its own ``VERSION`` (:data:`DATASET_VERSIONS`, written
per data set into ``SYNTHETIC.json``): the claims grid keys a result by the versions of the
data sets it reads, so changing one stand-in invalidates only the results that read it.
Rule: a change to the bytes one stand-in renders sets that stand-in's ``VERSION`` to one
above the highest of all (a change to a shared module, :mod:`.music`, :mod:`.synth`,
:mod:`.items`, :mod:`.annotator`, :mod:`.scales` or this runner, bumps every stand-in whose
output it changes).  :data:`GENERATOR_VERSION`, the version of the whole tree and part of
its cache folder, is the highest of them, so every change gives a new folder.

History of the whole generator: 1 the first generator; 2 MagnaTagATune tags from the
simulated annotator (:mod:`.annotator`), ``facts_final.csv``, 48 MTAT clips at the tiny
scale; 3 GiantSteps with a tonic pad, 15 % chorales, 20 + 5 excerpts per key (8 s) at the
demo scale; 4 MP3s at constant 144 kb/s (clean windowed reads); 5 the GTZAN, MedleyDB,
EmoMusic and MTG-Jamendo stand-ins (every stand-in's version starts at 5).  Later changes
are in each stand-in's docstring.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator

import numpy as np

from . import emomusic, fma_medium, giantsteps, gtzan, medleydb, mtat, mtg_jamendo, music, nsynth
from .items import RENDER_SAMPLE_RATE, SOUNDFONT_ORDER, TEST_SOUNDFONTS, Item
from .scales import SCALES, Scale

try:  # POSIX file locks; without them (Windows) renders are not guarded against each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = ["DATASET_VERSIONS", "GENERATOR_VERSION", "MARKER", "STAND_INS", "EMBEDDED_DATASETS", "folder_name", "render",
           "ensure_rendered", "rendered_datasets", "format_summary"]

MARKER = "SYNTHETIC.json"
#: The stand-ins in render order (the order of SYNTHETIC.json's summary).
STAND_INS: tuple[ModuleType, ...] = (nsynth, giantsteps, mtat, fma_medium, gtzan, medleydb, emomusic, mtg_jamendo)
#: The data set folders the embedded benchmark provides.
EMBEDDED_DATASETS: tuple[str, ...] = tuple(m.NAME for m in STAND_INS)
#: Each data set's own version (its stand-in's ``VERSION``): what a claims result depends on.
DATASET_VERSIONS: dict[str, str] = {m.NAME: str(m.VERSION) for m in STAND_INS}
#: The version of the whole tree (part of its cache path): the highest data set version.
GENERATOR_VERSION = str(max(int(v) for v in DATASET_VERSIONS.values()))
_BY_NAME = {m.NAME: m for m in STAND_INS}


def folder_name(scale: str, seed: int) -> str:
    """The cache folder name of one rendered benchmark: scale, seed and generator version."""
    return f"{scale}-seed{seed}-v{GENERATOR_VERSION}"


# --------------------------------------------------------------------------- worker side
def _render_batch(task: str, items: list[Item], root: str, fonts: dict[str, str], seed: int,
                  scale_name: str) -> list[dict]:
    """Render one batch with a fresh synthesiser (runs in a spawned worker process)."""
    from .synth import Synthesiser

    stand_in = _BY_NAME[task]
    scale, out = SCALES[scale_name], Path(root)
    with Synthesiser(RENDER_SAMPLE_RATE, gain=stand_in.GAIN) as synth:
        return [stand_in.render_item(synth, it, out, fonts, seed, scale) for it in items]


# --------------------------------------------------------------------------- orchestration
def _batches(items: list[Item], size: int) -> list[list[Item]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _progress(total: int, desc: str, enabled: bool):
    from ...progress import tqdm  # text bars unless a Jupyter front end is attached

    return tqdm(total=total, desc=desc, unit="item", disable=not enabled, leave=True, dynamic_ncols=True)


def _run(plans: dict[str, list[Item]], root: Path, fonts: dict[str, str], seed: int, scale: Scale,
         workers: int, progress: bool, while_waiting: Callable[[], None]) -> dict[str, dict[int, dict]]:
    """Render every item in spawned worker processes; results per task, keyed by item index."""
    ctx = multiprocessing.get_context("spawn")
    results: dict[str, dict[int, dict]] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {}
        try:
            for task, items in plans.items():
                futures[task] = [(pool.submit(_render_batch, task, b, str(root), fonts, seed, scale.name), len(b))
                                 for b in _batches(items, _BY_NAME[task].BATCH)]
            while_waiting()
            for task, futs in futures.items():
                with _progress(len(plans[task]), task, progress) as bar:
                    pending = {f: n for f, n in futs}
                    while pending:
                        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                        for f in done:
                            f.result()  # raises a worker's exception here
                            bar.update(pending.pop(f))
                results[task] = {r["index"]: r for f, _ in futs for r in f.result()}
        except BaseException:
            for futs in futures.values():
                for f, _ in futs:
                    f.cancel()
            raise
    return results


def format_summary(meta: dict) -> str:
    """The per-task table of a SYNTHETIC.json (clips, seconds of audio, classes, SoundFonts)."""
    header = ("data set", "split", "clips", "seconds", "classes", "SoundFonts")
    body = [(r["dataset"], r["split"], str(r["clips"]), f"{r['seconds']:.0f}", r["classes"],
             ", ".join(r["soundfonts"])) for r in meta["summary"]]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(header), line(tuple("-" * w for w in widths)), *(line(r) for r in body)]
    wall = meta.get("wall_seconds")
    out.append(f"scale {meta['scale']}, seed {meta['seed']}, generator v{meta['generator_version']}"
               + (f", rendered in {wall:.1f} s" if wall is not None else ""))
    return "\n".join(out)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _check_out(out: Path) -> None:
    if out.exists() and not (out / MARKER).exists():
        if not out.is_dir() or any(out.iterdir()):
            raise FileExistsError(
                f"{out} exists and is not an embedded benchmark (no {MARKER}); refusing to replace it. "
                "Choose another --out or delete the folder."
            )


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """Exclusive lock on ``<parent>/.<name>.lock`` so two processes never render one tree at once."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "a+") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _meta(scale: str, seed: int, sc: Scale, infos: dict, summary: list[dict], started: str) -> dict:
    names = [m.NAME for m in STAND_INS if any(r["dataset"] == m.NAME for r in summary)]
    meta = {
        "generator": __package__, "generator_version": GENERATOR_VERSION,
        "dataset_versions": {n: DATASET_VERSIONS[n] for n in names}, "datasets": names,
        "scale": scale, "seed": seed,
        "sample_rate": RENDER_SAMPLE_RATE, "scale_parameters": asdict(sc),
        "soundfonts": {n: {**infos[n].to_dict(), "splits": "test" if n in TEST_SOUNDFONTS else "train, valid"}
                       for n in SOUNDFONT_ORDER},
        "soundfonts_by_split": {m.NAME: {split: list(fonts) for split, fonts in m.SOUNDFONTS_BY_SPLIT.items()}
                                for m in STAND_INS},
        "counts": {r["dataset"]: {} for r in summary},
        "seconds": {r["dataset"]: {} for r in summary},
        "summary": summary,
        "tasks": [t for m in STAND_INS if m.NAME in names for t in m.TASKS],
        "mtat_tags": list(music.MTAT_TAGS),
        "started_at": started,
    }
    for r in summary:
        meta["counts"][r["dataset"]][r["split"]] = r["clips"]
        meta["seconds"][r["dataset"]][r["split"]] = round(r["seconds"], 3)
    if "nsynth" in meta["counts"]:
        meta["counts"]["nsynth"]["dropped_silent"] = sum(r.get("dropped_silent", 0) for r in summary)
    return meta


def _check_args(scale: str, seed) -> int:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _render_into(tmp: Path, stand_ins: list[ModuleType], sc: Scale, seed: int,
                 progress: bool) -> tuple[list, dict, dict]:
    """Render ``stand_ins`` into ``tmp``: (summary rows, statistics, SoundFont infos)."""
    from .synth import find_soundfont, soundfont_info

    fonts = {name: str(find_soundfont(name)) for name in SOUNDFONT_ORDER}  # fails early with the apt-get hint
    plans = {m.NAME: m.plan(sc, seed) for m in stand_ins}
    workers = max(1, min(sc.workers or os.cpu_count() or 1, os.cpu_count() or 1))
    infos: dict = {}
    results = _run(plans, tmp, fonts, seed, sc, workers, progress,
                   while_waiting=lambda: infos.update({n: soundfont_info(n) for n in SOUNDFONT_ORDER}))
    summary = []
    for m in stand_ins:
        m.write(tmp, plans[m.NAME], results[m.NAME])
        summary += m.summary_rows(plans[m.NAME], results[m.NAME])
    statistics = {m.NAME: m.statistics(plans[m.NAME], results[m.NAME]) for m in stand_ins if hasattr(m, "statistics")}
    return summary, statistics, infos


def _fresh_tmp(out: Path) -> Path:
    for stale in out.parent.glob(f".{out.name}.partial-*"):  # left by a killed render (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    tmp.mkdir(parents=True)
    return tmp


def _render_locked(out: Path, scale: str, seed: int, progress: bool) -> dict:
    seed = _check_args(scale, seed)
    sc = SCALES[scale]
    out = Path(out).expanduser().absolute()
    _check_out(out)
    tmp = _fresh_tmp(out)
    started, t0 = _now(), time.perf_counter()
    try:
        summary, statistics, infos = _render_into(tmp, list(STAND_INS), sc, seed, progress)
        meta = _meta(scale, seed, sc, infos, summary, started)
        meta["statistics"] = statistics
        meta["finished_at"] = _now()
        meta["wall_seconds"] = round(time.perf_counter() - t0, 2)
        (tmp / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def rendered_datasets(out: Path) -> set[str]:
    """The data sets of the tree at ``out`` that are rendered (its SYNTHETIC.json's ``datasets``;
    a tree written before data sets were rendered one by one holds them all)."""
    marker = Path(out) / MARKER
    if not marker.is_file():
        return set()
    meta = json.loads(marker.read_text())
    return set(meta.get("datasets", EMBEDDED_DATASETS))


def _write_marker(out: Path, meta: dict) -> None:
    """Replace ``out``'s SYNTHETIC.json atomically (readers see the old or the new one)."""
    tmp = out / f".{MARKER}.{os.getpid()}"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, out / MARKER)


def _add_locked(out: Path, scale: str, seed: int, names: set[str], progress: bool) -> dict:
    """Render the data sets ``names`` the tree at ``out`` lacks, each renamed into place whole
    (a folder there that SYNTHETIC.json does not list, left by a killed render, is replaced),
    then rewrite SYNTHETIC.json (atomically) to list them."""
    seed = _check_args(scale, seed)
    sc = SCALES[scale]
    out = Path(out).expanduser().absolute()
    _check_out(out)
    have = rendered_datasets(out)
    todo = [m for m in STAND_INS if m.NAME in names and m.NAME not in have]
    old = json.loads((out / MARKER).read_text()) if (out / MARKER).is_file() else None
    if not todo:
        return old
    started, t0 = _now(), time.perf_counter()
    if old is None:  # a new tree: marked as ours (holding no data set yet) before any data set moves in
        out.mkdir(parents=True, exist_ok=True)
        old = {"generator": __package__, "generator_version": GENERATOR_VERSION, "dataset_versions": {},
               "datasets": [], "scale": scale, "seed": seed, "started_at": started}
        _write_marker(out, old)
    tmp = _fresh_tmp(out)
    try:
        summary, statistics, infos = _render_into(tmp, todo, sc, seed, progress)
        for m in todo:
            if (out / m.NAME).exists():
                shutil.rmtree(out / m.NAME)
            os.replace(tmp / m.NAME, out / m.NAME)
        order = {m.NAME: i for i, m in enumerate(STAND_INS)}
        summary = sorted(old.get("summary", []) + summary, key=lambda r: order[r["dataset"]])
        statistics = {**old.get("statistics", {}), **statistics}
        meta = _meta(scale, seed, sc, infos, summary, old.get("started_at", started))
        meta["statistics"] = {m.NAME: statistics[m.NAME] for m in STAND_INS if m.NAME in statistics}
        meta["finished_at"] = _now()
        meta["wall_seconds"] = round(time.perf_counter() - t0 + old.get("wall_seconds", 0.0), 2)
        _write_marker(out, meta)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def render(out: Path, scale: str = "demo", seed: int = 0, progress: bool = True) -> dict:
    """Render the benchmark of ``scale`` (:data:`SCALES`) and ``seed`` into ``out``; returns SYNTHETIC.json.

    The tree is rendered into a hidden sibling folder and renamed into place at the end,
    so an interrupted render never leaves a tree that looks complete.  An existing
    rendered tree at ``out`` is replaced; any other non-empty folder is refused.
    """
    out = Path(out).expanduser().absolute()
    with _lock(out):
        return _render_locked(out, scale, seed, progress)


def ensure_rendered(out: Path, scale: str, seed: int, datasets=None) -> Path:
    """``out`` once it holds the data sets ``datasets`` (names of :data:`EMBEDDED_DATASETS`;
    None: all) of the benchmark, rendering those it lacks first (once across processes: the
    tree's lock; each data set is renamed into place whole, SYNTHETIC.json lists it after)."""
    out = Path(out).expanduser().absolute()
    wanted = set(EMBEDDED_DATASETS if datasets is None else datasets)
    unknown = sorted(wanted - set(EMBEDDED_DATASETS))
    if unknown:
        raise ValueError(f"unknown embedded data set(s) {unknown}; choose from {', '.join(EMBEDDED_DATASETS)}")
    if wanted <= rendered_datasets(out):
        return out
    with _lock(out):
        missing = wanted - rendered_datasets(out)  # another process may have rendered them while we waited
        if missing:
            what = "the embedded benchmark" if datasets is None else f"embedded {', '.join(sorted(missing))}"
            print(f"rendering {what} (scale {scale}, seed {seed}) into {out}", flush=True)
            _add_locked(out, scale, seed, missing, progress=sys.stderr.isatty())
    return out
