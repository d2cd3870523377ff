"""The MedleyDB stand-in: multitrack pieces whose stems carry their instrument (``medleydb_instrument``).

Layout (as MedleyDB's ``Audio/`` folder)::

    medleydb/<Track>/<Track>_METADATA.yaml        artist, title, genre, stem_dir, stems: {S01: {...}}
    medleydb/<Track>/<Track>_STEMS/<Track>_STEM_01.wav ...

Each piece is an arrangement of a style of :data:`STYLES`; each of its tracks is one stem,
rendered alone (same synthesiser, same gain as the piece), and named with MedleyDB's
instrument label for its GM program (:data:`MEDLEYDB_INSTRUMENTS`; the drum kit is
"drum set"), so labels are true by construction.  ``component`` is ``melody`` for the
melody track, ``bass`` for the bass line, else empty (MedleyDB's convention).  The
loader splits stems by track with a seeded hash of the track names, which the generator
does not know in advance; so no SoundFont is held out here: tracks alternate between the
two training SoundFonts (a departure from the other stand-ins, whose test splits use
TimGM6mb).  No ``_MIX.wav`` or ``_RAW`` folders are written (the loader reads stems only).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from . import music
from .items import TRAIN_SOUNDFONTS, Item, item_rng, num_samples, peak_gain, plan_rng, write_wav
from .scales import Scale

NAME = "medleydb"
VERSION = "5"  # bump (to one above the highest VERSION of any stand-in) whenever this data set's output changes
TASKS = ("medleydb_instrument",)
BATCH = 2
GAIN = 0.5
SOUNDFONTS_BY_SPLIT = {"train": TRAIN_SOUNDFONTS, "valid": TRAIN_SOUNDFONTS, "test": TRAIN_SOUNDFONTS}

STYLES = ("classical", "rock", "jazz", "country", "pop", "blues", "reggae", "metal", "disco")
MEDLEYDB_INSTRUMENTS: dict[int, str] = {
    **{p: "piano" for p in (0, 1, 2, 3)}, 4: "electric piano", 5: "electric piano", 6: "harpsichord",
    11: "vibraphone", 12: "marimba", **{p: "organ" for p in range(16, 21)}, 22: "harmonica",
    24: "acoustic guitar", 25: "acoustic guitar", **{p: "clean electric guitar" for p in (26, 27, 28)},
    29: "distorted electric guitar", 30: "distorted electric guitar", 32: "double bass",
    **{p: "electric bass" for p in (33, 34, 35, 36, 37)}, 38: "synthesizer", 39: "synthesizer", 40: "violin",
    41: "viola", 42: "cello", 43: "double bass", 46: "harp", **{p: "string section" for p in (44, 45, 48, 49, 50)},
    52: "choir", 53: "vocalists", 54: "vocalists", 56: "trumpet", 57: "trombone", 58: "tuba", 60: "french horn",
    61: "brass section", 64: "soprano saxophone", 65: "alto saxophone", 66: "tenor saxophone",
    67: "baritone saxophone", 68: "oboe", 70: "bassoon", 71: "clarinet", **{p: "flute" for p in (72, 73, 74, 75)},
    **{p: "synthesizer" for p in range(80, 96)}, 104: "sitar", 105: "banjo", 110: "fiddle",
}
DRUM_SET = "drum set"
COMPONENTS = {"melody": "melody", "bass": "bass"}


def plan(scale: Scale, seed: int) -> list[Item]:
    rng = plan_rng(seed, NAME)
    items = []
    for i in range(scale.medleydb_tracks):
        style = STYLES[int(rng.integers(len(STYLES)))]
        track = f"SyntheticArtist{i // 2 + 1:03d}_{style.title()}Piece{i + 1:03d}"
        items.append(Item(NAME, i, "train", TRAIN_SOUNDFONTS[i % len(TRAIN_SOUNDFONTS)], f"{NAME}/{track}",
                          {"track": track, "style": style, "artist": f"Synthetic Artist {i // 2 + 1:03d}"}))
    return items


def _style(name: str) -> music.Style:
    return music.STYLES.get(name) or music.GENRE_STYLES[name]


def render_item(synth, item: Item, root: Path, fonts: dict[str, str], seed: int, scale: Scale) -> dict:
    rng = item_rng(seed, item.task, item.index)
    piece = music.arrange(rng, _style(item.params["style"]), scale.medleydb_seconds, allow_solo=False)
    tracks = [t for t in piece.tracks if t.notes]
    n = num_samples(scale.medleydb_seconds)
    stems = [synth.tracks(fonts[item.soundfont], [t], n) for t in tracks]
    gain = peak_gain(sum(stems))  # one gain for all stems, as the mix they make
    track = item.params["track"]
    folder = root / item.path
    entries = {}
    for k, (t, audio) in enumerate(zip(tracks, stems), start=1):
        filename = f"{track}_STEM_{k:02d}.wav"
        write_wav(folder / f"{track}_STEMS" / filename, audio * gain)
        entries[f"S{k:02d}"] = {"component": COMPONENTS.get(t.role, ""), "filename": filename,
                                "instrument": DRUM_SET if t.drums else MEDLEYDB_INSTRUMENTS.get(t.program, "synthesizer")}
    meta = {"album": "", "artist": item.params["artist"], "composer": [], "excerpt": "yes",
            "genre": item.params["style"].title(), "has_bleed": "no", "instrumental": "yes",
            "mix_filename": f"{track}_MIX.wav", "origin": "workbench embedded benchmark", "producer": [],
            "raw_dir": f"{track}_RAW", "stem_dir": f"{track}_STEMS", "stems": entries, "title": track,
            "version": "synthetic", "website": []}
    (folder / f"{track}_METADATA.yaml").write_text(yaml.safe_dump(meta, sort_keys=True), encoding="utf-8")
    return {"index": item.index, "kept": True, "seconds": scale.medleydb_seconds * len(tracks),
            "instruments": [e["instrument"] for e in entries.values()]}


def write(root: Path, items: list[Item], results: dict[int, dict]) -> None:
    """Nothing beyond each track's folder (written with its stems)."""


def summary_rows(items: list[Item], results: dict[int, dict]) -> list[dict]:
    stems = [i for it in items for i in results[it.index]["instruments"]]
    return [{"dataset": NAME, "split": "tracks", "clips": len(stems),
             "seconds": float(sum(results[it.index]["seconds"] for it in items)),
             "classes": f"{len(set(stems))} instruments in {len(items)} tracks",
             "soundfonts": sorted({it.soundfont for it in items})}]


def statistics(items: list[Item], results: dict[int, dict]) -> dict:
    from collections import Counter

    counts = Counter(i for it in items for i in results[it.index]["instruments"])
    return {"tracks": len(items), "stems": sum(counts.values()), "instruments": dict(counts.most_common())}
