"""The GTZAN stand-in: arrangements in ten styles, the style as the genre (``gtzan_genre``).

Layout (as GTZAN)::

    gtzan/genres/<genre>/<genre>.000NN.wav     16 kHz mono PCM (GTZAN: 22 kHz, 30 s)

The clip ids are taken from the fault-filtered split the loader reads
(``workbench/data/loaders/gtzan_splits.json``): for each split and genre, the first
``Scale.gtzan_clips`` ids of that genre in the list, so every file lands in its split.
Labels are true by construction: each clip is arranged in the :class:`music.Style` named
like its genre (:data:`GENRE_STYLE`: five of :data:`music.STYLES`, five of
:data:`music.GENRE_STYLES`: blues with the twelve-bar progression and a shuffle, disco
four-on-the-floor, hip hop at 80-98 bpm on a TR-808 kit, metal with distorted power chords
and eighth-note kicks, reggae's one drop with off-beat chords).  Test clips are played by
the test SoundFont.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import music
from .items import TEST_SOUNDFONTS, TRAIN_SOUNDFONTS, Item, item_rng, plan_rng, render_mix, write_wav
from .scales import Scale

NAME = "gtzan"
VERSION = "5"  # bump (to one above the highest VERSION of any stand-in) whenever this data set's output changes
TASKS = ("gtzan_genre",)
BATCH = 4
GAIN = 0.5
SOUNDFONTS_BY_SPLIT = {"train": TRAIN_SOUNDFONTS, "valid": TRAIN_SOUNDFONTS, "test": TEST_SOUNDFONTS}

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
GENRE_STYLE: dict[str, music.Style] = {g: music.STYLES.get(g) or music.GENRE_STYLES[g] for g in GENRES}
#: The loader's split lists (read as data; the generator imports nothing from the loaders).
SPLITS_FILE = Path(__file__).resolve().parents[1] / "loaders" / "gtzan_splits.json"


def _split_ids() -> dict[str, list[str]]:
    d = json.loads(SPLITS_FILE.read_text())
    return {split: list(d[split]) for split in ("train", "valid", "test")}


def plan(scale: Scale, seed: int) -> list[Item]:
    rng = plan_rng(seed, NAME)
    ids = _split_ids()
    items: list[Item] = []
    for split, per_genre in zip(("train", "valid", "test"), scale.gtzan_clips):
        for genre in GENRES:
            chosen = [i for i in ids[split] if i.split(".")[0] == genre][:per_genre]
            if len(chosen) < per_genre:
                raise ValueError(f"scale {scale.name}: the GTZAN {split} list has only {len(chosen)} {genre} clips "
                                 f"(asked for {per_genre})")
            for clip in chosen:
                font = TEST_SOUNDFONTS[0] if split == "test" else TRAIN_SOUNDFONTS[int(rng.integers(len(TRAIN_SOUNDFONTS)))]
                items.append(Item(NAME, len(items), split, font, f"gtzan/genres/{genre}/{clip}.wav",
                                  {"clip": clip, "genre": genre}))
    return items


def render_item(synth, item: Item, root: Path, fonts: dict[str, str], seed: int, scale: Scale) -> dict:
    rng = item_rng(seed, item.task, item.index)
    piece = music.arrange(rng, GENRE_STYLE[item.params["genre"]], scale.gtzan_seconds, allow_solo=False)
    write_wav(root / item.path, render_mix(synth, fonts[item.soundfont], piece.tracks, scale.gtzan_seconds))
    return {"index": item.index, "kept": True, "seconds": scale.gtzan_seconds, "genre": item.params["genre"],
            "tempo": piece.tempo}


def write(root: Path, items: list[Item], results: dict[int, dict]) -> None:
    """Nothing beyond the audio: GTZAN's labels are its folder names."""


def summary_rows(items: list[Item], results: dict[int, dict]) -> list[dict]:
    return [{"dataset": NAME, "split": split, "clips": len(its), "seconds": float(sum(results[it.index]["seconds"] for it in its)),
             "classes": f"{len({it.params['genre'] for it in its})} genres", "soundfonts": sorted({it.soundfont for it in its})}
            for split in ("train", "valid", "test") for its in [[it for it in items if it.split == split]]]
