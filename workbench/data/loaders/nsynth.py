"""NSynth (Engel et al. 2017): isolated 4 s notes, tasks ``nsynth_pitch`` and ``nsynth_instrument``.

Layout of the data root (the folder holding the three split folders)::

    nsynth-train/examples.json      note_str -> {"pitch": 60, "instrument_family": 4, ...}
    nsynth-train/audio/<note_str>.wav
    nsynth-valid/...                (same)
    nsynth-test/...                 (same)

Splits are NSynth's own folders.  ``nsynth_pitch``: 112 classes, MIDI 9-120 in order
(target = pitch - 9; notes outside that range are dropped, with a warning).
``nsynth_instrument``: NSynth's 11 instrument families (target = ``instrument_family``).
Extras: ``pitch``, ``velocity``, ``instrument`` (``instrument_str``, the group of notes
played by one instrument), ``instrument_family``, ``duration``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..tasks import NSYNTH_FAMILIES, NSYNTH_PITCHES, Task
from ._common import require, task_root, usable_manifest, warn

DATASET = "nsynth"
SPLIT_FOLDERS = {"train": "nsynth-train", "valid": "nsynth-valid", "test": "nsynth-test"}
MIN_PITCH = int(NSYNTH_PITCHES[0])
MAX_PITCH = int(NSYNTH_PITCHES[-1])
NOTE_SECONDS = 4.0  # every NSynth note lasts 4 s
LAYOUT = """\
  nsynth-train/examples.json        (JSON object: note_str -> {"pitch", "instrument_family", ...})
  nsynth-train/audio/<note_str>.wav
  nsynth-valid/examples.json, nsynth-valid/audio/...
  nsynth-test/examples.json,  nsynth-test/audio/..."""
EXTRAS = ("pitch", "velocity", "instrument", "instrument_family", "duration")


def _load_examples(path: Path) -> tuple[dict, list[str]]:
    """examples.json as a dict, keeping the first of duplicated keys (reported back)."""
    duplicates: list[str] = []

    def first_wins(pairs):
        out = dict(pairs)
        if len(out) != len(pairs):  # rare: rebuild keeping the first value of each repeated key
            out = {}
            for k, v in pairs:
                if k in out:
                    duplicates.append(k)
                else:
                    out[k] = v
        return out

    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=first_wins)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{DATASET}: {path} is not valid JSON ({exc}). Re-extract the NSynth archive.") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{DATASET}: {path} must hold a JSON object note_str -> note fields, "
                         f"found {type(data).__name__}.")
    if not data:
        raise ValueError(f"{DATASET}: {path} holds no notes ({{}}), so its split would be silently empty. "
                         "Re-extract the NSynth archive (or remove the split folder's examples.json "
                         "and audio together).")
    # The hook also runs on inner objects; only top-level duplicates are note ids.
    return data, [d for d in duplicates if d in data]


def _int_field(note: dict, field: str, note_id: str, path: Path) -> int:
    try:
        return int(note[field])
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{DATASET}: note {note_id!r} in {path} has no integer {field!r} field "
            f"(found {note.get(field)!r} in an object with keys {sorted(note)[:8]})."
        ) from None


def build(spec: Task, root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Manifest of ``nsynth_pitch`` or ``nsynth_instrument`` read from ``root``."""
    root = task_root(spec, root, DATASET, ("nsynth_pitch", "nsynth_instrument"))
    rows: list[dict] = []
    out_of_range: list[str] = []
    for split, folder in SPLIT_FOLDERS.items():
        meta = require(root / folder / "examples.json", DATASET, LAYOUT)
        examples, dups = _load_examples(meta)
        if dups:
            warn(DATASET, f"{meta} repeats {len(dups)} note id(s); first occurrence kept ({dups[:3]}).")
        audio_dir = str(root / folder / "audio")
        for note_id in sorted(examples):
            note = examples[note_id]
            if not isinstance(note, dict):
                raise ValueError(f"{DATASET}: entry {note_id!r} in {meta} is not an object of note fields.")
            pitch = _int_field(note, "pitch", note_id, meta)
            family = _int_field(note, "instrument_family", note_id, meta)
            if not 0 <= family < len(NSYNTH_FAMILIES):
                raise ValueError(f"{DATASET}: note {note_id!r} in {meta} has instrument_family {family}; "
                                 f"NSynth has {len(NSYNTH_FAMILIES)} families (0-{len(NSYNTH_FAMILIES) - 1}).")
            if spec.name == "nsynth_pitch":
                if not MIN_PITCH <= pitch <= MAX_PITCH:
                    out_of_range.append(note_id)
                    continue
                target = pitch - MIN_PITCH
            else:
                target = family
            rows.append({
                "id": str(note_id), "path": f"{audio_dir}{os.sep}{note_id}.wav", "split": split,
                "target": target, "pitch": pitch, "velocity": note.get("velocity"),
                "instrument": str(note.get("instrument_str", note_id.rsplit("-", 2)[0])),
                "instrument_family": family, "duration": NOTE_SECONDS,
            })
    if out_of_range:
        warn(DATASET, f"{len(out_of_range)} note(s) outside MIDI {MIN_PITCH}-{MAX_PITCH} dropped from "
                      f"{spec.name} ({out_of_range[:3]}).")
    df = usable_manifest(rows, DATASET, EXTRAS, root=root, layout=LAYOUT)
    classes = NSYNTH_PITCHES if spec.name == "nsynth_pitch" else NSYNTH_FAMILIES
    return df, list(classes)
