"""The EmoMusic stand-in: arousal and valence from documented musical facts (``emomusic``).

Layout (as the 1000 Songs / EmoMusic release)::

    emomusic/songs_info.csv                        song_id, file_name, Artist, Song title, Genre, Mediaeval 2013 set
    emomusic/annotations/static_annotations.csv    song_id, mean_arousal, std_arousal, mean_valence, std_valence
    emomusic/clips_45seconds/<song_id>.mp3

Each song is an arrangement (a style of :data:`STYLES`, a drawn tempo, dynamics and
mode).  Its ratings, on EmoMusic's 1-9 scale, follow the cues music psychology reports
(Gabrielsson & Lindström 2010; Juslin & Laukka 2004): **arousal** rises with tempo and
loudness (dynamics) and with drums; **valence** rises with the major mode, with a higher
melodic register and, a little, with tempo.  Both are linear in those facts
(:data:`AROUSAL_WEIGHTS`, :data:`VALENCE_WEIGHTS`) plus rater noise
(:data:`RATER_NOISE`, the per-song spread of a panel's mean), clipped to [1, 9];
``std_*`` is the simulated panel's spread.  Three songs per artist; a quarter of the
artists are the "evaluation" set (test, played by the test SoundFont), the rest
"development" (the loader splits train/valid by artist).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from . import music
from .items import TEST_SOUNDFONTS, TRAIN_SOUNDFONTS, Item, item_rng, plan_rng, render_mix, write_mp3
from .scales import Scale

NAME = "emomusic"
VERSION = "5"  # bump (to one above the highest VERSION of any stand-in) whenever this data set's output changes
TASKS = ("emomusic",)
BATCH = 4
GAIN = 0.5
SOUNDFONTS_BY_SPLIT = {"train": TRAIN_SOUNDFONTS, "valid": TRAIN_SOUNDFONTS, "test": TEST_SOUNDFONTS}

STYLES = ("classical", "rock", "electronic", "ambient", "jazz", "country", "pop", "indian")
SONGS_PER_ARTIST = 3
EVALUATION_FRACTION = 0.25  # share of artists in the "evaluation" (test) set
DYNAMICS_GAIN = {"soft": 0.25, "medium": 0.5, "loud": 1.0}  # applied after peak normalisation
DYNAMICS_LEVEL = {"soft": -1.0, "medium": 0.0, "loud": 1.0}
TEMPO_CENTRE, TEMPO_SCALE = 110.0, 30.0  # bpm: (tempo - centre) / scale is the tempo cue
REGISTER_CENTRE, REGISTER_SCALE = 68.0, 8.0  # MIDI: the melody's mean pitch, centred and scaled
#: Weights of the cues (each about unit scale) on the 1-9 rating, around the middle 5.
AROUSAL_WEIGHTS = {"tempo": 1.0, "dynamics": 0.9, "drums": 0.6}
VALENCE_WEIGHTS = {"major": 1.1, "register": 0.5, "tempo": 0.3}
RATER_NOISE = 0.35
MIDDLE = 5.0


def plan(scale: Scale, seed: int) -> list[Item]:
    rng = plan_rng(seed, NAME)
    n_artists = math.ceil(scale.emomusic_songs / SONGS_PER_ARTIST)
    evaluation = set(rng.permutation(n_artists)[: max(1, round(EVALUATION_FRACTION * n_artists))].tolist())
    items = []
    for i in range(scale.emomusic_songs):
        artist = i // SONGS_PER_ARTIST
        split = "test" if artist in evaluation else "dev"
        font = TEST_SOUNDFONTS[0] if split == "test" else TRAIN_SOUNDFONTS[int(rng.integers(len(TRAIN_SOUNDFONTS)))]
        song = str(i + 2)  # EmoMusic's song ids start at 2
        items.append(Item(NAME, i, split, font, f"emomusic/clips_45seconds/{song}.mp3",
                          {"song_id": song, "artist": f"Synthetic Artist {artist + 1:03d}",
                           "style": STYLES[int(rng.integers(len(STYLES)))]}))
    return items


def cues(piece: music.Piece) -> dict[str, float]:
    """The musical facts the ratings are made of, each on about unit scale."""
    melody = [n.pitch for t in piece.tracks if t.role == "melody" and not t.drums for n in t.notes]
    pitched = [n.pitch for t in piece.tracks if not t.drums for n in t.notes]
    register = float(np.mean(melody or pitched or [REGISTER_CENTRE]))
    return {"tempo": (piece.tempo - TEMPO_CENTRE) / TEMPO_SCALE, "dynamics": DYNAMICS_LEVEL[piece.dynamics],
            "drums": 1.0 if piece.has_drums else -1.0, "major": 1.0 if piece.key.mode == "major" else -1.0,
            "register": (register - REGISTER_CENTRE) / REGISTER_SCALE}


def ratings(c: dict[str, float], rng: np.random.Generator) -> tuple[float, float, float, float]:
    """(mean_arousal, std_arousal, mean_valence, std_valence) of a simulated panel."""
    out = []
    for weights in (AROUSAL_WEIGHTS, VALENCE_WEIGHTS):
        mean = MIDDLE + sum(w * c[k] for k, w in weights.items()) + RATER_NOISE * rng.standard_normal()
        out += [float(np.clip(mean, 1.0, 9.0)), float(rng.uniform(0.8, 1.8))]
    return tuple(round(v, 3) for v in out)


def render_item(synth, item: Item, root: Path, fonts: dict[str, str], seed: int, scale: Scale) -> dict:
    rng = item_rng(seed, item.task, item.index)
    piece = music.arrange(rng, item.params["style"], scale.emomusic_seconds, allow_solo=False)
    audio = render_mix(synth, fonts[item.soundfont], piece.tracks, scale.emomusic_seconds,
                       gain=DYNAMICS_GAIN[piece.dynamics])
    write_mp3(root / item.path, audio)
    c = cues(piece)
    arousal, arousal_std, valence, valence_std = ratings(c, rng)
    return {"index": item.index, "kept": True, "seconds": scale.emomusic_seconds, "arousal": arousal,
            "std_arousal": arousal_std, "valence": valence, "std_valence": valence_std, "cues": c,
            "style": piece.style}


def write(root: Path, items: list[Item], results: dict[int, dict]) -> None:
    folder = root / NAME
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    with (folder / "songs_info.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["song_id", "file_name", "Artist", "Song title", "start of the segment (min.sec)",
                    "end of the segment (min.sec)", "Genre", "Mediaeval 2013 set"])
        for it in items:
            p = it.params
            w.writerow([p["song_id"], f"{p['song_id']}.mp3", p["artist"], f"Song {p['song_id']}", "0.00",
                        f"0.{int(results[it.index]['seconds']):02d}", results[it.index]["style"].title(),
                        "evaluation" if it.split == "test" else "development"])
    with (folder / "annotations" / "static_annotations.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["song_id", "mean_arousal", "std_arousal", "mean_valence", "std_valence"])
        for it in items:
            r = results[it.index]
            w.writerow([it.params["song_id"], r["arousal"], r["std_arousal"], r["valence"], r["std_valence"]])


def summary_rows(items: list[Item], results: dict[int, dict]) -> list[dict]:
    rows = []
    for split in ("dev", "test"):
        its = [it for it in items if it.split == split]
        rows.append({"dataset": NAME, "split": "development" if split == "dev" else "evaluation", "clips": len(its),
                     "seconds": float(sum(results[it.index]["seconds"] for it in its)), "classes": "arousal, valence",
                     "soundfonts": sorted({it.soundfont for it in its})})
    return rows


def statistics(items: list[Item], results: dict[int, dict]) -> dict:
    """Mean and spread of the ratings, their correlation, and how much of each the cues explain."""
    a = np.array([results[it.index]["arousal"] for it in items])
    v = np.array([results[it.index]["valence"] for it in items])
    return {"songs": len(items), "arousal_mean": float(a.mean()), "arousal_std": float(a.std()),
            "valence_mean": float(v.mean()), "valence_std": float(v.std()),
            "arousal_valence_correlation": float(np.corrcoef(a, v)[0, 1]) if len(items) > 1 else float("nan")}
