"""The MagnaTagATune stand-in: multi-instrument clips with tags (``mtat_top50``, ``mtat_all``).

Layout (as MagnaTagATune)::

    mtat/annotations_final.csv   tab-separated, every field double-quoted: clip_id, tags…, mp3_path
    mtat/<0-f>/<name>.mp3        0-b train, c valid, d-f test

    mtat/facts_final.csv         same format: every true fact of each clip (not in the real data set)

The tags of ``annotations_final.csv`` are what a simulated TagATune player named
(:mod:`.annotator`): a few salient facts of the arrangement, some clips with none, a few
wrong.  The facts (:data:`music.MTAT_TAGS`: style, instruments present, drums, vocals,
tempo class, mode, meter, dynamics, solo) are true by construction; ``facts_final.csv``
holds them all, for analysis (loaders read only ``annotations_final.csv``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from . import annotator, music
from .items import (RENDER_SAMPLE_RATE, TEST_SOUNDFONTS, TRAIN_SOUNDFONTS, Item, fade, item_rng, num_samples,
                    peak_gain, plan_rng, tag_summary_rows, write_mp3)
from .music import Key
from .scales import Scale

NAME = "mtat"
VERSION = "5"  # bump (to one above the highest VERSION of any stand-in) whenever this data set's output changes
TASKS = ("mtat_top50", "mtat_all")
BATCH = 4
GAIN = 0.5
SOUNDFONTS_BY_SPLIT = {"train": TRAIN_SOUNDFONTS, "valid": TRAIN_SOUNDFONTS, "test": TEST_SOUNDFONTS}

DYNAMICS_GAIN = {"soft": 0.25, "medium": 0.5, "loud": 1.0}  # applied after peak normalisation
FOLDERS = "0123456789abcdef"
SPLITS = {**{c: "train" for c in "0123456789ab"}, "c": "valid", **{c: "test" for c in "def"}}
CHORAL_ENSEMBLES = ("choir", "choir", "organ")
ANNOTATION_STREAM = 1  # item_rng stream of the annotator (stream 0 makes the music)
ANNOTATIONS = "annotations_final.csv"
FACTS = "facts_final.csv"


def plan(scale: Scale, seed: int) -> list[Item]:
    rng = plan_rng(seed, NAME)
    styles = list(music.STYLES)
    style_plan = rng.permutation(np.tile(np.arange(len(styles)), math.ceil(scale.mtat_clips / len(styles))))
    items: list[Item] = []
    for i in range(scale.mtat_clips):
        folder = FOLDERS[i % len(FOLDERS)]
        split = SPLITS[folder]
        font = TEST_SOUNDFONTS[0] if split == "test" else TRAIN_SOUNDFONTS[int(rng.integers(len(TRAIN_SOUNDFONTS)))]
        style = styles[int(style_plan[i])]
        seconds = int(round(scale.mtat_seconds))
        name = f"synthetic_{style}-piece_{i:05d}-0-{seconds}.mp3"
        items.append(Item(NAME, i, split, font, f"mtat/{folder}/{name}",
                          {"clip_id": str(i + 1), "style": style, "mp3_path": f"{folder}/{name}"}))
    return items


def compose(item: Item, seed: int, scale: Scale) -> music.Piece:
    """The clip's piece (a chorale for the choral style when the corpus has one, else an arrangement)."""
    rng = item_rng(seed, item.task, item.index)
    style = item.params["style"]
    piece = None
    if music.STYLES[style].chorale:
        key = Key(int(rng.integers(12)), "minor" if rng.random() < music.STYLES[style].minor_probability else "major")
        dynamics = ("soft", "medium", "loud")[int(rng.integers(3))]
        ensemble = CHORAL_ENSEMBLES[int(rng.integers(len(CHORAL_ENSEMBLES)))]
        piece = music.chorale_piece(rng, key, scale.mtat_seconds, ensemble=ensemble, dynamics=dynamics, style=style)
        if piece is None:  # no chorale available: a classical arrangement, tagged as such
            style = "classical"
    if piece is None:
        piece = music.arrange(rng, style, scale.mtat_seconds)
    return piece


def render_item(synth, item: Item, root: Path, fonts: dict[str, str], seed: int, scale: Scale) -> dict:
    piece = compose(item, seed, scale)
    n = num_samples(scale.mtat_seconds)
    audio = synth.tracks(fonts[item.soundfont], piece.tracks, n)
    audio = fade(audio * np.float32(peak_gain(audio) * DYNAMICS_GAIN[piece.dynamics]))
    write_mp3(root / item.path, audio)
    tags = annotator.annotate(piece, item_rng(seed, item.task, item.index, ANNOTATION_STREAM))
    return {"index": item.index, "kept": True, "seconds": n / RENDER_SAMPLE_RATE, "tags": tags,
            "facts": piece.tags(), "source": piece.source}


def write(root: Path, items: list[Item], results: dict[int, dict]) -> None:
    """``annotations_final.csv`` (the annotator's tags) and ``facts_final.csv`` (every true fact),
    quoted and tab-separated like the real file."""
    for name, field in ((ANNOTATIONS, "tags"), (FACTS, "facts")):
        path = root / NAME / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerow(["clip_id", *music.MTAT_TAGS, "mp3_path"])
            for it in items:
                tags = set(results[it.index][field])
                writer.writerow([it.params["clip_id"], *("1" if t in tags else "0" for t in music.MTAT_TAGS),
                                 it.params["mp3_path"]])


def statistics(items: list[Item], results: dict[int, dict]) -> dict:
    """:func:`annotator.tag_statistics` of the annotations and of the facts, over all clips and the train split."""
    out = {}
    for split in ("all", "train"):
        its = [it for it in items if split == "all" or it.split == split]
        out[split] = {field: annotator.tag_statistics([results[it.index][field] for it in its], music.MTAT_TAGS)
                      for field in ("tags", "facts")}
    return out


def summary_rows(items: list[Item], results: dict[int, dict]) -> list[dict]:
    return tag_summary_rows(NAME, items, results)
