"""The GiantSteps stand-in: excerpts in a known key (``giantsteps_key``).

Layout (as GiantSteps Key + GiantSteps MTG Key)::

    giantsteps/giantsteps-key-dataset/audio/<id>.LOFI.mp3             test
    giantsteps/giantsteps-key-dataset/annotations/key/<id>.LOFI.key   e.g. "Eb minor"
    giantsteps/giantsteps-mtg-key-dataset/annotations/annotations.txt ID<TAB>MANUAL KEY<TAB>C
    giantsteps/giantsteps-mtg-key-dataset/audio/<id>.LOFI.mp3         train/valid

Keys are the keys the material was generated or transposed in (a share of Bach chorales,
the rest arranged in one of :data:`STYLES`), balanced over the 24 keys, with a few awkward
rows like the real annotation file: ambiguous keys, ``-``, confidence < 2, sharp spellings.

Key is made learnable from short windows (probes read 0.41 s chunks at the demo scale,
about one chord): every excerpt carries a soft **tonic pad** (:func:`tonic_pad`), the
tonic triad held and re-struck every bar, as electronic dance music (GiantSteps' genre)
usually sits on a tonic drone or pad; so every window holds the tonic triad beside the
chord of the moment, and the mode (its third) with it.  The demo scale has 20 excerpts
per key for train/valid and 5 per key for test.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from ..tasks import KEY_CLASSES
from . import music
from .items import (RENDER_SAMPLE_RATE, TEST_SOUNDFONTS, TRAIN_SOUNDFONTS, Item, fade, item_rng, num_samples,
                    peak_gain, plan_rng, write_mp3)
from .music import Key, key_name
from .scales import Scale

NAME = "giantsteps"
VERSION = "5"  # bump (to one above the highest VERSION of any stand-in) whenever this data set's output changes
TASKS = ("giantsteps_key",)
BATCH = 4  # excerpts rendered by one fresh synthesiser
GAIN = 0.5  # synthesiser gain (float output keeps the headroom; mixes are normalised)
SOUNDFONTS_BY_SPLIT = {"train": TRAIN_SOUNDFONTS, "valid": TRAIN_SOUNDFONTS, "test": TEST_SOUNDFONTS}

CHORALE_FRACTION = 0.15  # share of excerpts taken from Bach chorales
PAD_PROGRAMS = (89, 88, 91, 19)  # warm pad, new-age pad, choir pad, church organ
PAD_VELOCITY = (52, 64)  # soft: the pad sits under the arrangement
PAD_RANGE = (48, 67)  # MIDI range of the pad's voicing (C3-G4)
STYLES = ("classical", "rock", "electronic", "ambient", "jazz", "country", "pop", "indian")
SHARP_SPELLING = 0.3  # probability of writing a black-key tonic with a sharp (C# minor)
AWKWARD_KINDS = ("ambiguous", "none", "low_confidence")
MTG_FIRST_ID = 1_000_000
TEST_FIRST_ID = 10_000
_MTG = "giantsteps/giantsteps-mtg-key-dataset"
_TEST = "giantsteps/giantsteps-key-dataset"


def balanced_keys(rng: np.random.Generator, n: int) -> list[int]:
    """``n`` key indices, each of the 24 keys as often as possible, in a seeded order."""
    keys = np.tile(np.arange(len(KEY_CLASSES)), math.ceil(n / len(KEY_CLASSES)))[:n]
    return [int(k) for k in rng.permutation(keys)]


def plan(scale: Scale, seed: int) -> list[Item]:
    rng = plan_rng(seed, NAME)
    items: list[Item] = []
    rows = [("train_valid", k, "normal") for k in balanced_keys(rng, scale.key_train_valid)]
    rows += [("train_valid", int(rng.integers(len(KEY_CLASSES))), AWKWARD_KINDS[i % len(AWKWARD_KINDS)])
             for i in range(scale.key_awkward)]
    order = rng.permutation(len(rows))  # awkward rows sit among the others, as in the real file
    rows = [rows[i] for i in order]
    rows += [("test", k, "normal") for k in balanced_keys(rng, scale.key_test)]
    n_mtg = 0
    for split, key_index, kind in rows:
        if split == "test":
            track = str(TEST_FIRST_ID + len(items) - n_mtg)
            font, path = TEST_SOUNDFONTS[0], f"{_TEST}/audio/{track}.LOFI.mp3"
        else:
            track = str(MTG_FIRST_ID + n_mtg)
            n_mtg += 1
            font = TRAIN_SOUNDFONTS[int(rng.integers(len(TRAIN_SOUNDFONTS)))]
            path = f"{_MTG}/audio/{track}.LOFI.mp3"
        items.append(Item(NAME, len(items), split, font, path, {"track": track, "key_index": key_index, "kind": kind}))
    return items


def tonic_pad(rng: np.random.Generator, key: Key, piece: music.Piece) -> music.Track:
    """A soft pad holding the tonic triad of ``key`` in close position, re-struck every bar."""
    third = 3 if key.mode == "minor" else 4
    root = key.tonic + 12 * ((PAD_RANGE[0] - key.tonic + 11) // 12)
    voicing = [root, root + third, root + 7]
    bar = piece.beats_per_bar * 60.0 / piece.tempo
    notes = []
    t = 0.0
    while t < piece.seconds:
        velocity = int(rng.integers(PAD_VELOCITY[0], PAD_VELOCITY[1] + 1))
        notes += [music.Note(t, bar * 0.98, pitch, velocity) for pitch in voicing]
        t += bar
    return music.Track("accompaniment", int(PAD_PROGRAMS[int(rng.integers(len(PAD_PROGRAMS)))]), tuple(notes))


def compose(item: Item, seed: int, scale: Scale) -> tuple[music.Piece, np.random.Generator]:
    """The excerpt's piece in its key, with the tonic pad, and the item's generator (for the label)."""
    rng = item_rng(seed, item.task, item.index)
    key = Key.from_index(item.params["key_index"])
    piece = None
    if rng.random() < CHORALE_FRACTION:
        piece = music.chorale_piece(rng, key, scale.key_seconds)
    if piece is None:
        piece = music.arrange(rng, STYLES[int(rng.integers(len(STYLES)))], scale.key_seconds, key=key,
                              allow_solo=False)
    piece = dataclasses.replace(piece, tracks=(*piece.tracks, tonic_pad(rng, key, piece)))
    return piece, rng


def render_item(synth, item: Item, root: Path, fonts: dict[str, str], seed: int, scale: Scale) -> dict:
    p = item.params
    key = Key.from_index(p["key_index"])
    piece, rng = compose(item, seed, scale)
    n = num_samples(scale.key_seconds)
    audio = synth.tracks(fonts[item.soundfont], piece.tracks, n)
    audio = fade(audio * np.float32(peak_gain(audio)))
    write_mp3(root / item.path, audio)
    sharps = key.tonic in (1, 3, 6, 8, 10) and rng.random() < SHARP_SPELLING
    label, confidence = key_name(key, sharps), 2
    if p["kind"] == "ambiguous":
        relative = Key((key.tonic + 3) % 12, "major") if key.mode == "minor" else Key((key.tonic + 9) % 12, "minor")
        label = f"{key_name(key)} / {key_name(relative)}"
    elif p["kind"] == "none":
        label = "-"
    elif p["kind"] == "low_confidence":
        confidence = int(rng.integers(2))
    if item.split == "test":
        key_file = root / item.path.replace("/audio/", "/annotations/key/").replace(".LOFI.mp3", ".LOFI.key")
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(label)
    return {"index": item.index, "kept": True, "seconds": n / RENDER_SAMPLE_RATE, "label": label,
            "confidence": confidence, "key": str(key), "source": piece.source, "style": piece.style}


def write(root: Path, items: list[Item], results: dict[int, dict]) -> None:
    """The MTG annotation file (test keys are written per excerpt by :func:`render_item`)."""
    path = root / _MTG / "annotations" / "annotations.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["ID\tMANUAL KEY\tC"]
    for it in items:
        if it.split != "test":
            r = results[it.index]
            lines.append(f"{it.params['track']}\t{r['label']}\t{r['confidence']}")
    path.write_text("\n".join(lines) + "\n")
    (root / _TEST / "annotations" / "key").mkdir(parents=True, exist_ok=True)


def _usable(r: dict) -> bool:
    return r["confidence"] == 2 and r["label"] != "-" and "/" not in r["label"]


def summary_rows(items: list[Item], results: dict[int, dict]) -> list[dict]:
    rows = []
    for split in ("train_valid", "test"):
        its = [it for it in items if it.split == split]
        usable = [it for it in its if _usable(results[it.index])]
        rows.append({"dataset": NAME, "split": split, "clips": len(its),
                     "seconds": float(sum(results[it.index]["seconds"] for it in its)),
                     "classes": f"{len({results[it.index]['key'] for it in usable})} keys"
                                + (f" ({len(its) - len(usable)} awkward rows)" if len(usable) < len(its) else ""),
                     "soundfonts": sorted({it.soundfont for it in its})})
    return rows
