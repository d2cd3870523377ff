"""The MTG-Jamendo stand-in: genre, instrument and mood/theme tags (``mtg_top50``, ``mtg_genre``, ``mtg_mood``, ``mtg_instrument``).

Layout (as the MTG-Jamendo repository's split files, audio beside them)::

    mtg_jamendo/splits/split-0/autotagging_{top50tags,genre,moodtheme,instrument}-{train,validation,test}.tsv
    mtg_jamendo/<NN>/<track number>.mp3           PATH column, NN = track number mod 100

Tags are what an uploader would type, true by construction and sparse: the **genre**
(the style; :data:`GENRE_TAGS`) with probability :data:`TAG_PROBABILITY` ``["genre"]``,
each **instrument** present (:data:`INSTRUMENT_TAGS`, by GM program; drums from the kit)
with its role's probability, and **moods/themes** that follow the conventional cues
(:data:`MOOD_RULES`: happy = major and >= 110 bpm, sad = minor and <= 90 bpm, energetic
= loud and >= 120 bpm, calm = soft and <= 100 bpm, relaxing = soft without drums, dark =
minor with a low melody, epic = loud minor with strings or brass, melodic = a melody
instrument in front).  Each task's file holds the tracks with at least one tag of its
category (the real subsets do the same); ``top50tags`` takes the 50 most frequent tags.
Tracks are split 70 / 15 / 15 by artist (two tracks per artist); test tracks are played
by the test SoundFont.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from . import music
from .items import (TEST_SOUNDFONTS, TRAIN_SOUNDFONTS, Item, item_rng, plan_rng, render_mix, tag_summary_rows,
                    write_mp3)
from .scales import Scale

NAME = "mtg_jamendo"
VERSION = "5"  # bump (to one above the highest VERSION of any stand-in) whenever this data set's output changes
TASKS = ("mtg_top50", "mtg_genre", "mtg_mood", "mtg_instrument")
BATCH = 4
GAIN = 0.5
SOUNDFONTS_BY_SPLIT = {"train": TRAIN_SOUNDFONTS, "valid": TRAIN_SOUNDFONTS, "test": TEST_SOUNDFONTS}

STYLES = ("classical", "rock", "electronic", "ambient", "jazz", "country", "pop", "indian", "blues", "disco",
          "hiphop", "metal", "reggae")
GENRE_TAGS = {"indian": "world", "hiphop": "hiphop"}  # style -> Jamendo genre name where they differ
INSTRUMENT_TAGS: dict[int, str] = {
    **{p: "piano" for p in (0, 1, 2, 3, 5)}, 4: "electricpiano", 6: "harpsichord", 11: "vibraphone", 12: "marimba",
    **{p: "organ" for p in range(16, 21)}, 22: "harmonica", 24: "classicalguitar", 25: "acousticguitar",
    **{p: "electricguitar" for p in range(26, 32)}, **{p: "bass" for p in range(32, 38)}, 38: "bass", 39: "bass",
    40: "violin", 42: "cello", **{p: "strings" for p in (41, 43, 44, 45, 48, 49, 50)}, 46: "harp",
    52: "voice", 53: "voice", 54: "voice", 56: "trumpet", **{p: "brass" for p in (57, 58, 60, 61)},
    **{p: "saxophone" for p in range(64, 68)}, 68: "oboe", 71: "clarinet", **{p: "flute" for p in range(72, 76)},
    **{p: "synthesizer" for p in range(80, 96)}, 104: "sitar", 105: "banjo", 110: "violin",
}
DRUMS_TAG = "drums"
ROLE_PROBABILITY = {"melody": 0.7, "accompaniment": 0.45, "bass": 0.25, "drums": 0.4}
TAG_PROBABILITY = {"genre": 0.95, "mood": 0.45}
TRACKS_PER_ARTIST = 2
SPLIT_FRACTIONS = (("train", 0.70), ("validation", 0.15), ("test", 0.15))
FILES = {"mtg_top50": "top50tags", "mtg_genre": "genre", "mtg_mood": "moodtheme", "mtg_instrument": "instrument"}
PREFIX = {"genre": "genre---", "instrument": "instrument---", "mood": "mood/theme---"}
TOP_K = 50
LOW_MELODY = 62  # MIDI: a melody whose mean pitch is below this is "low"


def _melody_pitch(piece: music.Piece) -> float | None:
    notes = [n.pitch for t in piece.tracks if t.role == "melody" and not t.drums for n in t.notes]
    return float(np.mean(notes)) if notes else None


MOOD_RULES = {
    "happy": lambda p: p.key.mode == "major" and p.tempo >= 110,
    "sad": lambda p: p.key.mode == "minor" and p.tempo <= 90,
    "energetic": lambda p: p.dynamics == "loud" and p.tempo >= 120,
    "calm": lambda p: p.dynamics == "soft" and p.tempo <= 100,
    "relaxing": lambda p: p.dynamics == "soft" and not p.has_drums,
    "dark": lambda p: p.key.mode == "minor" and (_melody_pitch(p) or 99) < LOW_MELODY,
    "epic": lambda p: p.dynamics == "loud" and p.key.mode == "minor" and bool(
        {INSTRUMENT_TAGS.get(q) for q in p.programs} & {"strings", "brass", "cello", "violin"}),
    "melodic": lambda p: any(t.role == "melody" and t.notes for t in p.tracks),
}


def _style(name: str) -> music.Style:
    return music.STYLES.get(name) or music.GENRE_STYLES[name]


def plan(scale: Scale, seed: int) -> list[Item]:
    rng = plan_rng(seed, NAME)
    n_artists = -(-scale.mtg_tracks // TRACKS_PER_ARTIST)
    order = rng.permutation(n_artists)
    split_of, start = {}, 0
    for name, fraction in SPLIT_FRACTIONS:
        end = n_artists if name == "test" else start + round(fraction * n_artists)
        for a in order[start:end]:
            split_of[int(a)] = name
        start = end
    items = []
    for i in range(scale.mtg_tracks):
        artist = i // TRACKS_PER_ARTIST
        split = {"validation": "valid"}.get(split_of[artist], split_of[artist])
        number = 1000 + 7 * i  # Jamendo track numbers; the folder is the number mod 100
        font = TEST_SOUNDFONTS[0] if split == "test" else TRAIN_SOUNDFONTS[int(rng.integers(len(TRAIN_SOUNDFONTS)))]
        items.append(Item(NAME, i, split, font, f"{NAME}/{number % 100:02d}/{number}.mp3",
                          {"track": f"track_{number:07d}", "artist": f"artist_{artist:06d}",
                           "album": f"album_{artist:06d}", "rel": f"{number % 100:02d}/{number}.mp3",
                           "style": STYLES[int(rng.integers(len(STYLES)))]}))
    return items


def facts(piece: music.Piece) -> dict[str, list[tuple[str, str]]]:
    """Every true (tag, role or kind) of ``piece`` by category, before the uploader's choice."""
    instruments: dict[str, str] = {}
    rank = {"melody": 0, "accompaniment": 1, "bass": 2, "drums": 3}
    for t in piece.tracks:
        if not t.notes:
            continue
        tag = DRUMS_TAG if t.drums else INSTRUMENT_TAGS.get(t.program)
        role = "drums" if t.drums else t.role
        if tag and (tag not in instruments or rank[role] < rank[instruments[tag]]):
            instruments[tag] = role
    return {"genre": [(GENRE_TAGS.get(piece.style, piece.style), "genre")],
            "instrument": sorted(instruments.items()),
            "mood": [(m, "mood") for m, rule in MOOD_RULES.items() if rule(piece)]}


def choose_tags(f: dict[str, list[tuple[str, str]]], rng: np.random.Generator) -> list[str]:
    """The tags the uploader types: each fact kept with its probability (fixed draw order)."""
    tags = []
    for category in ("genre", "instrument", "mood"):
        for tag, kind in f[category]:
            p = ROLE_PROBABILITY[kind] if category == "instrument" else TAG_PROBABILITY[category]
            if rng.random() < p:
                tags.append(PREFIX[category] + tag)
    return tags


def render_item(synth, item: Item, root: Path, fonts: dict[str, str], seed: int, scale: Scale) -> dict:
    rng = item_rng(seed, item.task, item.index)
    piece = music.arrange(rng, _style(item.params["style"]), scale.mtg_seconds)
    write_mp3(root / item.path, render_mix(synth, fonts[item.soundfont], piece.tracks, scale.mtg_seconds))
    tags = choose_tags(facts(piece), item_rng(seed, item.task, item.index, 1))
    return {"index": item.index, "kept": True, "seconds": scale.mtg_seconds, "tags": tags}


def write(root: Path, items: list[Item], results: dict[int, dict]) -> None:
    folder = root / NAME / "splits" / "split-0"
    folder.mkdir(parents=True, exist_ok=True)
    counts = Counter(t for it in items if it.split == "train" for t in results[it.index]["tags"])
    top = {t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_K]}
    keep = {"mtg_top50": lambda t: t in top, "mtg_genre": lambda t: t.startswith(PREFIX["genre"]),
            "mtg_mood": lambda t: t.startswith(PREFIX["mood"]),
            "mtg_instrument": lambda t: t.startswith(PREFIX["instrument"])}
    for task, stem in FILES.items():
        for split, file_split in (("train", "train"), ("valid", "validation"), ("test", "test")):
            lines = ["TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"]
            for it in items:
                tags = [t for t in results[it.index]["tags"] if keep[task](t)]
                if it.split == split and tags:
                    p = it.params
                    lines.append("\t".join([p["track"], p["artist"], p["album"], p["rel"],
                                            f"{results[it.index]['seconds']:.1f}", *tags]))
            (folder / f"autotagging_{stem}-{file_split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def summary_rows(items: list[Item], results: dict[int, dict]) -> list[dict]:
    return tag_summary_rows(NAME, items, results)


def statistics(items: list[Item], results: dict[int, dict]) -> dict:
    """Tags per track and the most frequent tags, per category."""
    n = max(len(items), 1)
    out = {}
    for category, prefix in PREFIX.items():
        per = [[t for t in results[it.index]["tags"] if t.startswith(prefix)] for it in items]
        counts = Counter(t for p in per for t in p)
        out[category] = {"tags_per_track": sum(map(len, per)) / n, "tracks_with_none": sum(not p for p in per) / n,
                         "frequency": {t: c / n for t, c in counts.most_common()}}
    return out
