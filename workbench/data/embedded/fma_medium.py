"""The FMA stand-in: the unlabelled pool (``fma_medium``), with four stems per piece, and its
top genres (``fma_genre``).

Layout (as FMA medium, plus our stems)::

    fma_medium/<000>/<000123>.mp3                                   unlabeled pool
    fma_medium/<000>/<000123>.stems/{bass,drums,melody,accompaniment}.mp3
    fma_medium/fma_metadata/tracks.csv                              FMA's metadata

The ``.stems`` folders are our extension of the FMA layout, for the multi-source (COLA
with music source association) baseline: each piece's four stems, scaled by the same
factor as its mix (mix = sum of stems, peak-normalised).

``tracks.csv`` has FMA's three header rows (column groups, names, ``track_id``) and the
columns ``set/split`` (training / validation / test), ``set/subset`` (medium),
``track/genre_top`` and ``track/title``.  The top genre is true by construction: each piece
is arranged in the style :func:`plan` drew for it, named by :data:`GENRE_TOP` (eight of
FMA's sixteen top genres).  Splits are stratified and deterministic (:func:`assign_splits`):
the pieces sorted by genre, then track id, take :data:`SPLIT_CYCLE` in turn, so every genre
is about 80 / 10 / 10 % and a handful of pieces already fills every split.

Versions: 5 the pool and stems; 6 ``fma_metadata/tracks.csv`` (the audio is unchanged;
the pool's splits are now the file's instead of the loader's seeded hash).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from . import music
from .items import RENDER_SAMPLE_RATE, TRAIN_SOUNDFONTS, Item, fade, item_rng, num_samples, peak_gain, plan_rng, write_mp3
from .music import ROLES
from .scales import Scale

NAME = "fma_medium"
VERSION = "6"  # bump (to one above the highest VERSION of any stand-in) whenever this data set's output changes
TASKS = ("fma_medium", "fma_genre")
BATCH = 4
GAIN = 0.5
SOUNDFONTS_BY_SPLIT = {"unlabeled": TRAIN_SOUNDFONTS}

STYLES = tuple(s for s in music.STYLES if s != "choral")
FIRST_TRACK_ID, MAX_TRACK_ID = 2, 155_000  # track ids are drawn from this range, as in FMA
#: The FMA top genre (``track/genre_top``) of each style the pool is arranged in.
GENRE_TOP: dict[str, str] = {"classical": "Classical", "rock": "Rock", "electronic": "Electronic",
                             "ambient": "Instrumental", "jazz": "Jazz", "country": "Country",
                             "indian": "International", "pop": "Pop"}
#: FMA's ``set/split`` values, taken in turn along the pieces sorted by genre (8 : 1 : 1).
SPLIT_CYCLE = ("training", "validation", "training", "test", "training", "training", "training", "training",
               "training", "training")
METADATA = f"{NAME}/fma_metadata/tracks.csv"  # in the data set's folder, where the loader looks first
SUBSET = "medium"


def plan(scale: Scale, seed: int) -> list[Item]:
    rng = plan_rng(seed, NAME)
    ids = np.sort(rng.choice(np.arange(FIRST_TRACK_ID, MAX_TRACK_ID), size=scale.fma_pieces, replace=False))
    drawn = []
    for tid in ids:
        font = TRAIN_SOUNDFONTS[int(rng.integers(len(TRAIN_SOUNDFONTS)))]
        drawn.append((f"{int(tid):06d}", font, STYLES[int(rng.integers(len(STYLES)))]))
    splits = assign_splits([(GENRE_TOP[style], track) for track, _, style in drawn])
    return [Item(NAME, i, "unlabeled", font, f"fma_medium/{track[:3]}/{track}.mp3",
                 {"track": track, "style": style, "genre_top": GENRE_TOP[style], "split": split})
            for i, ((track, font, style), split) in enumerate(zip(drawn, splits))]


def assign_splits(pieces: list[tuple[str, str]]) -> list[str]:
    """FMA's ``set/split`` of each (genre, track id): :data:`SPLIT_CYCLE` in turn along the
    pieces sorted by genre then track id (stratified, deterministic, no randomness)."""
    order = sorted(range(len(pieces)), key=lambda i: pieces[i])
    out = [""] * len(pieces)
    for rank, i in enumerate(order):
        out[i] = SPLIT_CYCLE[rank % len(SPLIT_CYCLE)]
    return out


def render_item(synth, item: Item, root: Path, fonts: dict[str, str], seed: int, scale: Scale) -> dict:
    rng = item_rng(seed, item.task, item.index)
    piece = music.arrange(rng, item.params["style"], scale.fma_seconds, require_roles=True)
    n = num_samples(scale.fma_seconds)
    stems = {role: synth.tracks(fonts[item.soundfont], [t for t in piece.tracks if t.role == role], n)
             for role in ROLES}
    mix = np.sum([stems[r] for r in ROLES], axis=0).astype(np.float32)
    gain = np.float32(peak_gain(mix))
    path = root / item.path
    write_mp3(path, fade(mix * gain))
    stem_dir = path.with_suffix(".stems")
    for role in ROLES:
        write_mp3(stem_dir / f"{role}.mp3", fade(stems[role] * gain))
    return {"index": item.index, "kept": True, "seconds": n / RENDER_SAMPLE_RATE, "style": piece.style}


def write(root: Path, items: list[Item], results: dict[int, dict]) -> None:
    """``fma_metadata/tracks.csv`` with FMA's three header rows, one row per piece by track id."""
    path = root / METADATA
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["", "set", "set", "track", "track"])
        writer.writerow(["", "split", "subset", "genre_top", "title"])
        writer.writerow(["track_id", "", "", "", ""])
        for it in sorted(items, key=lambda it: int(it.params["track"])):
            if results[it.index]["style"] != it.params["style"]:  # the label is what was arranged
                raise RuntimeError(f"fma_medium: piece {it.params['track']} was arranged in "
                                   f"{results[it.index]['style']}, planned {it.params['style']}")
            writer.writerow([int(it.params["track"]), it.params["split"], SUBSET, it.params["genre_top"],
                             f"{it.params['style']} piece {it.index}"])


def statistics(items: list[Item], results: dict[int, dict]) -> dict:
    """Pieces per FMA split and top genre."""
    out: dict[str, dict[str, int]] = {}
    for it in sorted(items, key=lambda it: it.params["genre_top"]):
        by_genre = out.setdefault(it.params["split"], {})
        by_genre[it.params["genre_top"]] = by_genre.get(it.params["genre_top"], 0) + 1
    return {"genre_top": {split: out.get(split, {}) for split in ("training", "validation", "test")}}


def summary_rows(items: list[Item], results: dict[int, dict]) -> list[dict]:
    genres = len({it.params["genre_top"] for it in items})
    return [{"dataset": NAME, "split": "unlabeled", "clips": len(items),
             "seconds": float(sum(results[it.index]["seconds"] for it in items)),
             "classes": f"{genres} top genres (fma_genre); 4 stems each",
             "soundfonts": sorted({it.soundfont for it in items})}]
