"""The FMA stand-in: the unlabelled pool (``fma_medium``), with four stems per piece.

Layout (as FMA medium, plus our stems)::

    fma_medium/<000>/<000123>.mp3                                   unlabeled pool
    fma_medium/<000>/<000123>.stems/{bass,drums,melody,accompaniment}.mp3

The ``.stems`` folders are our extension of the FMA layout, for the multi-source (COLA
with music source association) baseline: each piece's four stems, scaled by the same
factor as its mix (mix = sum of stems, peak-normalised).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import music
from .items import RENDER_SAMPLE_RATE, TRAIN_SOUNDFONTS, Item, fade, item_rng, num_samples, peak_gain, plan_rng, write_mp3
from .music import ROLES
from .scales import Scale

NAME = "fma_medium"
VERSION = "5"  # bump (to one above the highest VERSION of any stand-in) whenever this data set's output changes
TASKS = ("fma_medium",)
BATCH = 4
GAIN = 0.5
SOUNDFONTS_BY_SPLIT = {"unlabeled": TRAIN_SOUNDFONTS}

STYLES = tuple(s for s in music.STYLES if s != "choral")
FIRST_TRACK_ID, MAX_TRACK_ID = 2, 155_000  # track ids are drawn from this range, as in FMA


def plan(scale: Scale, seed: int) -> list[Item]:
    rng = plan_rng(seed, NAME)
    ids = np.sort(rng.choice(np.arange(FIRST_TRACK_ID, MAX_TRACK_ID), size=scale.fma_pieces, replace=False))
    items = []
    for i, tid in enumerate(ids):
        track = f"{int(tid):06d}"
        font = TRAIN_SOUNDFONTS[int(rng.integers(len(TRAIN_SOUNDFONTS)))]
        style = STYLES[int(rng.integers(len(STYLES)))]
        items.append(Item(NAME, i, "unlabeled", font, f"fma_medium/{track[:3]}/{track}.mp3",
                          {"track": track, "style": style}))
    return items


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
    """Nothing beyond the audio: the pool has no annotation file."""


def summary_rows(items: list[Item], results: dict[int, dict]) -> list[dict]:
    return [{"dataset": NAME, "split": "unlabeled", "clips": len(items),
             "seconds": float(sum(results[it.index]["seconds"] for it in items)),
             "classes": "- (4 stems each)", "soundfonts": sorted({it.soundfont for it in items})}]
