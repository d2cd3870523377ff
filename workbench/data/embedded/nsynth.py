"""The NSynth stand-in: isolated notes of pitched GM programs (``nsynth_pitch``, ``nsynth_instrument``).

Layout (as NSynth)::

    nsynth/nsynth-{train,valid,test}/examples.json          NSynth fields per note_str
    nsynth/nsynth-{train,valid,test}/audio/<note_str>.wav   4 s, 16 kHz, int16; held 3 s

Labels are true by construction: pitch and velocity are the note that was played, the
family is the GM program's NSynth family (:func:`music.nsynth_family`).  Notes that render
silent (a program missing its low or high samples) are dropped by energy.  Train notes are
played by both training SoundFonts, valid notes by one of them (alternating), test notes
by the test SoundFont.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..tasks import NSYNTH_FAMILIES
from . import music
from .items import (RENDER_SAMPLE_RATE, SOUNDFONT_ORDER, TEST_SOUNDFONTS, TRAIN_SOUNDFONTS, Item, write_audio)
from .scales import Scale

NAME = "nsynth"
VERSION = "5"  # bump (to one above the highest VERSION of any stand-in) whenever this data set's output changes
TASKS = ("nsynth_pitch", "nsynth_instrument")
BATCH = 100  # notes rendered by one fresh synthesiser
GAIN = 1.0  # synthesiser gain for isolated notes (peaks stay well below full scale)
SOUNDFONTS_BY_SPLIT = {"train": TRAIN_SOUNDFONTS, "valid": TRAIN_SOUNDFONTS, "test": TEST_SOUNDFONTS}

NOTE_SECONDS = 4.0
HOLD_SECONDS = 3.0
SILENCE_FLOOR_DB = -60.0  # notes whose RMS (dBFS) is below this are dropped as silent
QUALITIES = ("bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic",
             "nonlinear_env", "percussive", "reverb", "tempo-synced")


def plan(scale: Scale, seed: int) -> list[Item]:
    """Every note of the scale (the plan does not depend on the seed: notes are a grid)."""
    items: list[Item] = []
    velocities = {"train": scale.nsynth_train_velocities, "valid": scale.nsynth_valid_velocities,
                  "test": scale.nsynth_test_velocities}
    for split in ("train", "valid", "test"):
        for program in scale.programs:
            family, source = music.nsynth_family(program), music.nsynth_source(program)
            for pitch in scale.pitches:
                for velocity in velocities[split]:
                    if split == "train":
                        fonts = TRAIN_SOUNDFONTS
                    elif split == "valid":
                        fonts = (TRAIN_SOUNDFONTS[(program + pitch + velocity) % len(TRAIN_SOUNDFONTS)],)
                    else:
                        fonts = TEST_SOUNDFONTS
                    for font in fonts:
                        instrument = SOUNDFONT_ORDER.index(font) * 128 + program
                        instrument_str = f"{family}_{source}_{instrument:03d}"
                        note_str = f"{instrument_str}-{pitch:03d}-{velocity:03d}"
                        items.append(Item(NAME, len(items), split, font,
                                          f"nsynth/nsynth-{split}/audio/{note_str}.wav",
                                          {"note_str": note_str, "program": program, "pitch": pitch,
                                           "velocity": velocity, "family": family, "source": source,
                                           "instrument": instrument, "instrument_str": instrument_str}))
    return items


def render_item(synth, item: Item, root: Path, fonts: dict[str, str], seed: int, scale: Scale | None = None) -> dict:
    p = item.params
    audio = synth.note(fonts[item.soundfont], p["program"], p["pitch"], p["velocity"], HOLD_SECONDS, NOTE_SECONDS)
    if audio is None:
        return {"index": item.index, "kept": False, "reason": "program missing in SoundFont"}
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    rms_db = 20 * math.log10(max(rms, 1e-12))
    if rms_db < SILENCE_FLOOR_DB:
        return {"index": item.index, "kept": False, "reason": f"silent ({rms_db:.1f} dBFS)"}
    pcm = np.round(np.clip(audio, -1.0, 1.0) * np.iinfo(np.int16).max).astype(np.int16)
    write_audio(root / item.path, pcm, format="WAV", subtype="PCM_16")
    return {"index": item.index, "kept": True, "seconds": len(pcm) / RENDER_SAMPLE_RATE}


def write(root: Path, items: list[Item], results: dict[int, dict]) -> None:
    """``examples.json`` of every split (kept notes only)."""
    for split in ("train", "valid", "test"):
        examples = {}
        for it in items:
            if it.split != split or not results[it.index]["kept"]:
                continue
            p = it.params
            examples[p["note_str"]] = {
                "note": it.index, "note_str": p["note_str"], "pitch": p["pitch"], "velocity": p["velocity"],
                "instrument": p["instrument"], "instrument_str": p["instrument_str"],
                "instrument_family": NSYNTH_FAMILIES.index(p["family"]), "instrument_family_str": p["family"],
                "instrument_source": music.NSYNTH_SOURCES.index(p["source"]), "instrument_source_str": p["source"],
                "sample_rate": RENDER_SAMPLE_RATE, "qualities": [0] * len(QUALITIES), "qualities_str": [],
            }
        folder = root / "nsynth" / f"nsynth-{split}"
        (folder / "audio").mkdir(parents=True, exist_ok=True)
        (folder / "examples.json").write_text(json.dumps(examples, indent=2, sort_keys=True) + "\n")


def summary_rows(items: list[Item], results: dict[int, dict]) -> list[dict]:
    rows = []
    for split in ("train", "valid", "test"):
        kept = [it for it in items if it.split == split and results[it.index]["kept"]]
        rows.append({"dataset": NAME, "split": split, "clips": len(kept),
                     "seconds": sum(results[it.index]["seconds"] for it in kept),
                     "classes": f"{len({it.params['pitch'] for it in kept})} pitches, "
                                f"{len({it.params['family'] for it in kept})} families",
                     "soundfonts": sorted({it.soundfont for it in kept}),
                     "dropped_silent": sum(1 for it in items if it.split == split and not results[it.index]["kept"])})
    return rows
