"""The embedded benchmark: a labelled music benchmark rendered from MIDI, deterministic from a seed.

Real music audio cannot ship with the workbench, so it renders its own: General MIDI
SoundFonts played by FluidSynth (:mod:`workbench.data.synth`) from seeded musical
material (:mod:`workbench.data.music`: Bach chorales from the music21 corpus transposed
to every key, generated progressions with bass lines, melodies and GM drum patterns).
Each task is written in the on-disk layout of the real data set it stands in for, so
the same loaders read both::

    <out>/nsynth/nsynth-{train,valid,test}/examples.json        NSynth fields per note_str
    <out>/nsynth/nsynth-{train,valid,test}/audio/<note_str>.wav 4 s, 16 kHz, int16; held 3 s
    <out>/giantsteps/giantsteps-key-dataset/audio/<id>.LOFI.mp3            test
    <out>/giantsteps/giantsteps-key-dataset/annotations/key/<id>.LOFI.key  e.g. "Eb minor"
    <out>/giantsteps/giantsteps-mtg-key-dataset/annotations/annotations.txt  ID<TAB>MANUAL KEY<TAB>C
    <out>/giantsteps/giantsteps-mtg-key-dataset/audio/<id>.LOFI.mp3        train/valid
    <out>/mtat/annotations_final.csv        tab-separated, every field double-quoted
    <out>/mtat/<0-f>/<name>.mp3             0-b train, c valid, d-f test
    <out>/fma_medium/<000>/<000123>.mp3     unlabeled pool
    <out>/fma_medium/<000>/<000123>.stems/{bass,drums,melody,accompaniment}.mp3
    <out>/SYNTHETIC.json                    generator version, seed, SoundFonts (sha256), counts

The ``.stems`` folders are our extension of the FMA layout, for the multi-source (COLA
with music source association) baseline: each piece's four stems, scaled by the same
factor as its mix (mix = sum of stems, peak-normalised).  Everything is rendered at
:data:`RENDER_SAMPLE_RATE` mono; loaders resample.

Labels are true by construction: NSynth pitch/velocity/family come from the note that
was played (only pitched GM programs, each mapped to one of NSynth's 11 families; notes
that render silent are dropped by energy); GiantSteps keys are the keys the material was
generated or transposed in (with a few awkward rows like the real annotation file:
ambiguous keys, ``-``, confidence < 2, sharp spellings); MagnaTagATune tags
(:data:`workbench.data.music.MTAT_TAGS`) are facts of the arrangement (style, instruments
present, drums, vocals, tempo class, mode, meter, dynamics, solo).

SoundFonts: train and valid splits (and the unlabeled pool) use FluidR3_GM and
GeneralUser GS; every test split uses TimGM6mb, a sample set never heard in training.

Determinism: each item's material comes from a generator seeded by (seed, task, item
index); items are rendered in fixed batches, each by a fresh synthesiser in a worker
process started with ``spawn``; so the same seed gives byte-identical audio and
annotation files whatever the scheduling (SYNTHETIC.json holds timestamps).

CLI: ``python -m workbench data render --out DIR --scale tiny|demo|full --seed N``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as _dt
import io
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import music
from .music import ROLES, Key, key_name
from .tasks import KEY_CLASSES, NSYNTH_FAMILIES, NSYNTH_PITCHES

try:  # POSIX file locks; without them (Windows) renders are not guarded against each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = ["GENERATOR_VERSION", "RENDER_SAMPLE_RATE", "SCALES", "Scale", "TRAIN_SOUNDFONTS", "TEST_SOUNDFONTS",
           "default_out", "ensure_rendered", "main", "render"]

GENERATOR_VERSION = "1"  # bump whenever the rendered output changes: it is part of the cache path
RENDER_SAMPLE_RATE = 16000
MARKER = "SYNTHETIC.json"
TRAIN_SOUNDFONTS = ("FluidR3_GM", "GeneralUser")
TEST_SOUNDFONTS = ("TimGM6mb",)
SOUNDFONT_ORDER = TRAIN_SOUNDFONTS + TEST_SOUNDFONTS  # fixes the NSynth instrument numbers

# NSynth notes
NSYNTH_NOTE_SECONDS = 4.0
NSYNTH_HOLD_SECONDS = 3.0
NSYNTH_GAIN = 1.0  # synthesiser gain for isolated notes (peaks stay well below full scale)
SILENCE_FLOOR_DB = -60.0  # notes whose RMS (dBFS) is below this are dropped as silent
NSYNTH_QUALITIES = ("bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic",
                    "nonlinear_env", "percussive", "reverb", "tempo-synced")
# Pieces
MIX_GAIN = 0.5  # synthesiser gain for pieces (float output keeps the headroom; mixes are normalised)
PEAK = 0.89  # peak level of normalised mixes (-1 dBFS)
FADE_SECONDS = 0.02  # fade-out at the end of every excerpt
MTAT_DYNAMICS_GAIN = {"soft": 0.25, "medium": 0.5, "loud": 1.0}  # applied after peak normalisation
MTAT_FOLDERS = "0123456789abcdef"
MTAT_SPLITS = {**{c: "train" for c in "0123456789ab"}, "c": "valid", **{c: "test" for c in "def"}}
MTAT_CHORAL_ENSEMBLES = ("choir", "choir", "organ")
KEY_CHORALE_FRACTION = 0.3  # share of GiantSteps excerpts taken from Bach chorales
KEY_STYLES = ("classical", "rock", "electronic", "ambient", "jazz", "country", "pop", "indian")
KEY_SHARP_SPELLING = 0.3  # probability of writing a black-key tonic with a sharp (C# minor)
KEY_AWKWARD_KINDS = ("ambiguous", "none", "low_confidence")
KEY_MTG_FIRST_ID = 1_000_000
KEY_TEST_FIRST_ID = 10_000
FMA_STYLES = tuple(s for s in music.STYLES if s != "choral")
FMA_FIRST_TRACK_ID, FMA_MAX_TRACK_ID = 2, 155_000  # track ids are drawn from this range, as in FMA
# Work units: items rendered by one fresh synthesiser (fixed, so output never depends on scheduling).
NSYNTH_BATCH = 100
PIECE_BATCH = 4
TASK_CODES = {"nsynth": 1, "giantsteps": 2, "mtat": 3, "fma_medium": 4}  # part of every item's seed


@dataclass(frozen=True)
class Scale:
    """Sizes of one scale of the benchmark.  ``workers`` None means one per CPU core."""

    name: str
    nsynth_lowest_pitch: int
    nsynth_pitches: int  # consecutive MIDI pitches from the lowest
    nsynth_programs: int  # the first N of music.NSYNTH_PROGRAMS
    nsynth_train_velocities: tuple[int, ...]  # each note in both training SoundFonts
    nsynth_valid_velocities: tuple[int, ...]  # each note in one training SoundFont (alternating)
    nsynth_test_velocities: tuple[int, ...]  # each note in the test SoundFont
    key_train_valid: int  # MTG-style excerpts with a confident, unambiguous key
    key_awkward: int  # extra MTG rows the loader drops (ambiguous, "-", confidence < 2)
    key_test: int  # GiantSteps-key-style excerpts (test SoundFont)
    key_seconds: float
    mtat_clips: int  # spread over the 16 folders 0-f
    mtat_seconds: float
    fma_pieces: int
    fma_seconds: float
    workers: int | None = 2

    def __post_init__(self) -> None:
        lo, hi = self.nsynth_lowest_pitch, self.nsynth_lowest_pitch + self.nsynth_pitches - 1
        if not (int(NSYNTH_PITCHES[0]) <= lo and hi <= int(NSYNTH_PITCHES[-1])):
            raise ValueError(f"scale {self.name}: NSynth pitches {lo}-{hi} outside MIDI "
                             f"{NSYNTH_PITCHES[0]}-{NSYNTH_PITCHES[-1]}")
        if not 1 <= self.nsynth_programs <= len(music.NSYNTH_PROGRAMS):
            raise ValueError(f"scale {self.name}: nsynth_programs must be 1-{len(music.NSYNTH_PROGRAMS)}")
        if set(self.nsynth_train_velocities) & set(self.nsynth_valid_velocities):
            raise ValueError(f"scale {self.name}: valid notes use the training SoundFonts, so their velocities "
                             "must differ from the training velocities (NSynth note_str ids must be unique)")

    @property
    def pitches(self) -> list[int]:
        return list(range(self.nsynth_lowest_pitch, self.nsynth_lowest_pitch + self.nsynth_pitches))

    @property
    def programs(self) -> list[int]:
        return list(music.NSYNTH_PROGRAMS[: self.nsynth_programs])


SCALES: dict[str, Scale] = {
    # seconds to render; the test suite uses it
    "tiny": Scale("tiny", 55, 10, 3, (100,), (75,), (100,), key_train_valid=24, key_awkward=3, key_test=12,
                  key_seconds=5.0, mtat_clips=16, mtat_seconds=4.0, fma_pieces=4, fma_seconds=5.0),
    # the default everywhere: minutes on a 2-core laptop
    "demo": Scale("demo", 36, 40, 20, (50, 100), (75,), (50, 100), key_train_valid=168, key_awkward=8,
                  key_test=72, key_seconds=10.0, mtat_clips=400, mtat_seconds=10.0, fma_pieces=200,
                  fma_seconds=15.0),
    # larger (not run in tests)
    "full": Scale("full", 24, 84, len(music.NSYNTH_PROGRAMS), (25, 50, 100, 127), (75,), (25, 75, 127),
                  key_train_valid=960, key_awkward=30, key_test=240, key_seconds=30.0, mtat_clips=3200,
                  mtat_seconds=29.0, fma_pieces=2000, fma_seconds=30.0, workers=None),
}


@dataclass(frozen=True)
class Item:
    """One thing to render: its task, running index (seeds its material), split and files."""

    task: str
    index: int
    split: str
    soundfont: str
    path: str  # relative to the output folder
    params: dict = field(default_factory=dict)


def default_out(scale: str, seed: int) -> Path:
    """Where the embedded benchmark of ``scale``/``seed`` is cached (same as roots.embedded_dir)."""
    from .roots import cache_dir

    return cache_dir() / "embedded" / f"{scale}-seed{seed}-v{GENERATOR_VERSION}"


def _item_rng(seed: int, task: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), TASK_CODES[task], int(index)])


def _plan_rng(seed: int, task: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), TASK_CODES[task]])


# --------------------------------------------------------------------------- planning
def _nsynth_items(scale: Scale) -> list[Item]:
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
                        items.append(Item("nsynth", len(items), split, font,
                                          f"nsynth/nsynth-{split}/audio/{note_str}.wav",
                                          {"note_str": note_str, "program": program, "pitch": pitch,
                                           "velocity": velocity, "family": family, "source": source,
                                           "instrument": instrument, "instrument_str": instrument_str}))
    return items


def _balanced_keys(rng: np.random.Generator, n: int) -> list[int]:
    keys = np.tile(np.arange(len(KEY_CLASSES)), math.ceil(n / len(KEY_CLASSES)))[:n]
    return [int(k) for k in rng.permutation(keys)]


def _giantsteps_items(scale: Scale, seed: int) -> list[Item]:
    rng = _plan_rng(seed, "giantsteps")
    items: list[Item] = []
    mtg = "giantsteps/giantsteps-mtg-key-dataset"
    test = "giantsteps/giantsteps-key-dataset"
    plan = [("train_valid", k, "normal") for k in _balanced_keys(rng, scale.key_train_valid)]
    plan += [("train_valid", int(rng.integers(len(KEY_CLASSES))), KEY_AWKWARD_KINDS[i % len(KEY_AWKWARD_KINDS)])
             for i in range(scale.key_awkward)]
    order = rng.permutation(len(plan))  # awkward rows sit among the others, as in the real file
    plan = [plan[i] for i in order]
    plan += [("test", k, "normal") for k in _balanced_keys(rng, scale.key_test)]
    n_mtg = 0
    for split, key_index, kind in plan:
        if split == "test":
            track = str(KEY_TEST_FIRST_ID + len(items) - n_mtg)
            font, path = TEST_SOUNDFONTS[0], f"{test}/audio/{track}.LOFI.mp3"
        else:
            track = str(KEY_MTG_FIRST_ID + n_mtg)
            n_mtg += 1
            font = TRAIN_SOUNDFONTS[int(rng.integers(len(TRAIN_SOUNDFONTS)))]
            path = f"{mtg}/audio/{track}.LOFI.mp3"
        items.append(Item("giantsteps", len(items), split, font, path,
                          {"track": track, "key_index": key_index, "kind": kind}))
    return items


def _mtat_items(scale: Scale, seed: int) -> list[Item]:
    rng = _plan_rng(seed, "mtat")
    styles = list(music.STYLES)
    style_plan = rng.permutation(np.tile(np.arange(len(styles)), math.ceil(scale.mtat_clips / len(styles))))
    items: list[Item] = []
    for i in range(scale.mtat_clips):
        folder = MTAT_FOLDERS[i % len(MTAT_FOLDERS)]
        split = MTAT_SPLITS[folder]
        font = TEST_SOUNDFONTS[0] if split == "test" else TRAIN_SOUNDFONTS[int(rng.integers(len(TRAIN_SOUNDFONTS)))]
        style = styles[int(style_plan[i])]
        seconds = int(round(scale.mtat_seconds))
        name = f"synthetic_{style}-piece_{i:05d}-0-{seconds}.mp3"
        items.append(Item("mtat", i, split, font, f"mtat/{folder}/{name}", {"clip_id": str(i + 1), "style": style,
                                                                           "mp3_path": f"{folder}/{name}"}))
    return items


def _fma_items(scale: Scale, seed: int) -> list[Item]:
    rng = _plan_rng(seed, "fma_medium")
    ids = np.sort(rng.choice(np.arange(FMA_FIRST_TRACK_ID, FMA_MAX_TRACK_ID), size=scale.fma_pieces, replace=False))
    items = []
    for i, tid in enumerate(ids):
        track = f"{int(tid):06d}"
        font = TRAIN_SOUNDFONTS[int(rng.integers(len(TRAIN_SOUNDFONTS)))]
        style = FMA_STYLES[int(rng.integers(len(FMA_STYLES)))]
        items.append(Item("fma_medium", i, "unlabeled", font, f"fma_medium/{track[:3]}/{track}.mp3",
                          {"track": track, "style": style}))
    return items


# --------------------------------------------------------------------------- rendering (worker side)
def _write_audio(path: Path, audio: np.ndarray, **kwargs) -> None:
    """Encode in memory, then write the bytes (soundfile fsyncs files on close: slow for many small files)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, RENDER_SAMPLE_RATE, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def _write_mp3(path: Path, audio: np.ndarray) -> None:
    _write_audio(path, np.clip(audio, -1.0, 1.0).astype(np.float32), format="MP3")


def _fade(audio: np.ndarray) -> np.ndarray:
    n = min(len(audio), int(FADE_SECONDS * RENDER_SAMPLE_RATE))
    if n > 0:
        audio[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return audio


def _peak_gain(audio: np.ndarray) -> float:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return PEAK / peak if peak > 1e-9 else 1.0


def _render_nsynth(synth, item: Item, root: Path, fonts: dict[str, str], seed: int) -> dict:
    p = item.params
    audio = synth.note(fonts[item.soundfont], p["program"], p["pitch"], p["velocity"], NSYNTH_HOLD_SECONDS,
                       NSYNTH_NOTE_SECONDS)
    if audio is None:
        return {"index": item.index, "kept": False, "reason": "program missing in SoundFont"}
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    rms_db = 20 * math.log10(max(rms, 1e-12))
    if rms_db < SILENCE_FLOOR_DB:
        return {"index": item.index, "kept": False, "reason": f"silent ({rms_db:.1f} dBFS)"}
    pcm = np.round(np.clip(audio, -1.0, 1.0) * np.iinfo(np.int16).max).astype(np.int16)
    _write_audio(root / item.path, pcm, format="WAV", subtype="PCM_16")
    return {"index": item.index, "kept": True, "seconds": len(pcm) / RENDER_SAMPLE_RATE}


def _num_samples(seconds: float) -> int:
    return int(round(seconds * RENDER_SAMPLE_RATE))


def _render_giantsteps(synth, item: Item, root: Path, fonts: dict[str, str], seed: int, scale: Scale) -> dict:
    rng = _item_rng(seed, item.task, item.index)
    p = item.params
    key = Key.from_index(p["key_index"])
    piece = None
    if rng.random() < KEY_CHORALE_FRACTION:
        piece = music.chorale_piece(rng, key, scale.key_seconds)
    if piece is None:
        piece = music.arrange(rng, KEY_STYLES[int(rng.integers(len(KEY_STYLES)))], scale.key_seconds, key=key,
                              allow_solo=False)
    n = _num_samples(scale.key_seconds)
    audio = synth.tracks(fonts[item.soundfont], piece.tracks, n)
    audio = _fade(audio * np.float32(_peak_gain(audio)))
    _write_mp3(root / item.path, audio)
    sharps = key.tonic in (1, 3, 6, 8, 10) and rng.random() < KEY_SHARP_SPELLING
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


def _render_mtat(synth, item: Item, root: Path, fonts: dict[str, str], seed: int, scale: Scale) -> dict:
    rng = _item_rng(seed, item.task, item.index)
    style = item.params["style"]
    piece = None
    if music.STYLES[style].chorale:
        key = Key(int(rng.integers(12)), "minor" if rng.random() < music.STYLES[style].minor_probability else "major")
        dynamics = ("soft", "medium", "loud")[int(rng.integers(3))]
        ensemble = MTAT_CHORAL_ENSEMBLES[int(rng.integers(len(MTAT_CHORAL_ENSEMBLES)))]
        piece = music.chorale_piece(rng, key, scale.mtat_seconds, ensemble=ensemble, dynamics=dynamics, style=style)
        if piece is None:  # no chorale available: a classical arrangement, tagged as such
            style = "classical"
    if piece is None:
        piece = music.arrange(rng, style, scale.mtat_seconds)
    n = _num_samples(scale.mtat_seconds)
    audio = synth.tracks(fonts[item.soundfont], piece.tracks, n)
    audio = _fade(audio * np.float32(_peak_gain(audio) * MTAT_DYNAMICS_GAIN[piece.dynamics]))
    _write_mp3(root / item.path, audio)
    return {"index": item.index, "kept": True, "seconds": n / RENDER_SAMPLE_RATE, "tags": piece.tags(),
            "source": piece.source}


def _render_fma(synth, item: Item, root: Path, fonts: dict[str, str], seed: int, scale: Scale) -> dict:
    rng = _item_rng(seed, item.task, item.index)
    piece = music.arrange(rng, item.params["style"], scale.fma_seconds, require_roles=True)
    n = _num_samples(scale.fma_seconds)
    stems = {role: synth.tracks(fonts[item.soundfont], [t for t in piece.tracks if t.role == role], n)
             for role in ROLES}
    mix = np.sum([stems[r] for r in ROLES], axis=0).astype(np.float32)
    gain = np.float32(_peak_gain(mix))
    path = root / item.path
    _write_mp3(path, _fade(mix * gain))
    stem_dir = path.with_suffix(".stems")
    for role in ROLES:
        _write_mp3(stem_dir / f"{role}.mp3", _fade(stems[role] * gain))
    return {"index": item.index, "kept": True, "seconds": n / RENDER_SAMPLE_RATE, "style": piece.style}


def _render_batch(task: str, items: list[Item], root: str, fonts: dict[str, str], seed: int,
                  scale_name: str) -> list[dict]:
    """Render one batch with a fresh synthesiser (runs in a spawned worker process)."""
    from .synth import Synthesiser

    scale = SCALES[scale_name]
    out = Path(root)
    with Synthesiser(RENDER_SAMPLE_RATE, gain=NSYNTH_GAIN if task == "nsynth" else MIX_GAIN) as synth:
        if task == "nsynth":
            return [_render_nsynth(synth, it, out, fonts, seed) for it in items]
        renderer: Callable = {"giantsteps": _render_giantsteps, "mtat": _render_mtat, "fma_medium": _render_fma}[task]
        return [renderer(synth, it, out, fonts, seed, scale) for it in items]


# --------------------------------------------------------------------------- metadata (main process)
def _write_nsynth(root: Path, items: list[Item], results: dict[int, dict]) -> None:
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
                "sample_rate": RENDER_SAMPLE_RATE, "qualities": [0] * len(NSYNTH_QUALITIES), "qualities_str": [],
            }
        folder = root / "nsynth" / f"nsynth-{split}"
        (folder / "audio").mkdir(parents=True, exist_ok=True)
        (folder / "examples.json").write_text(json.dumps(examples, indent=2, sort_keys=True) + "\n")


def _write_giantsteps(root: Path, items: list[Item], results: dict[int, dict]) -> None:
    path = root / "giantsteps" / "giantsteps-mtg-key-dataset" / "annotations" / "annotations.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["ID\tMANUAL KEY\tC"]
    for it in items:
        if it.split != "test":
            r = results[it.index]
            lines.append(f"{it.params['track']}\t{r['label']}\t{r['confidence']}")
    path.write_text("\n".join(lines) + "\n")
    (root / "giantsteps" / "giantsteps-key-dataset" / "annotations" / "key").mkdir(parents=True, exist_ok=True)


def _write_mtat(root: Path, items: list[Item], results: dict[int, dict]) -> None:
    path = root / "mtat" / "annotations_final.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(["clip_id", *music.MTAT_TAGS, "mp3_path"])
        for it in items:
            tags = set(results[it.index]["tags"])
            writer.writerow([it.params["clip_id"], *("1" if t in tags else "0" for t in music.MTAT_TAGS),
                             it.params["mp3_path"]])


# --------------------------------------------------------------------------- orchestration
def _batches(items: list[Item], size: int) -> list[list[Item]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _progress(total: int, desc: str, enabled: bool):
    from ..progress import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not enabled, leave=True, dynamic_ncols=True)


def _run(plans: dict[str, list[Item]], root: Path, fonts: dict[str, str], seed: int, scale: Scale,
         workers: int, progress: bool, while_waiting: Callable[[], None]) -> dict[str, dict[int, dict]]:
    """Render every item in spawned worker processes; results per task, keyed by item index."""
    ctx = multiprocessing.get_context("spawn")
    results: dict[str, dict[int, dict]] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {}
        try:
            for task, items in plans.items():
                size = NSYNTH_BATCH if task == "nsynth" else PIECE_BATCH
                futures[task] = [(pool.submit(_render_batch, task, b, str(root), fonts, seed, scale.name), len(b))
                                 for b in _batches(items, size)]
            while_waiting()
            for task, futs in futures.items():
                with _progress(len(plans[task]), task, progress) as bar:
                    pending = {f: n for f, n in futs}
                    while pending:
                        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                        for f in done:
                            f.result()  # raises a worker's exception here
                            bar.update(pending.pop(f))
                results[task] = {r["index"]: r for f, _ in futs for r in f.result()}
        except BaseException:
            for futs in futures.values():
                for f, _ in futs:
                    f.cancel()
            raise
    return results


def _seconds(items: list[Item], res: dict[int, dict], split: str | None = None) -> float:
    return float(sum(res[it.index].get("seconds", 0.0) for it in items
                     if res[it.index]["kept"] and (split is None or it.split == split)))


def _summary_rows(plans: dict[str, list[Item]], results: dict[str, dict[int, dict]]) -> list[dict]:
    rows = []
    ns, nr = plans["nsynth"], results["nsynth"]
    for split in ("train", "valid", "test"):
        kept = [it for it in ns if it.split == split and nr[it.index]["kept"]]
        rows.append({"dataset": "nsynth", "split": split, "clips": len(kept), "seconds": _seconds(kept, nr),
                     "classes": f"{len({it.params['pitch'] for it in kept})} pitches, "
                                f"{len({it.params['family'] for it in kept})} families",
                     "soundfonts": sorted({it.soundfont for it in kept}),
                     "dropped_silent": sum(1 for it in ns if it.split == split and not nr[it.index]["kept"])})
    gs, gr = plans["giantsteps"], results["giantsteps"]
    for split in ("train_valid", "test"):
        its = [it for it in gs if it.split == split]
        usable = [it for it in its if gr[it.index]["confidence"] == 2 and gr[it.index]["label"] not in ("-",)
                  and "/" not in gr[it.index]["label"]]
        rows.append({"dataset": "giantsteps", "split": split, "clips": len(its), "seconds": _seconds(its, gr),
                     "classes": f"{len({gr[it.index]['key'] for it in usable})} keys"
                                + (f" ({len(its) - len(usable)} awkward rows)" if len(usable) < len(its) else ""),
                     "soundfonts": sorted({it.soundfont for it in its})})
    ms, mr = plans["mtat"], results["mtat"]
    for split in ("train", "valid", "test"):
        its = [it for it in ms if it.split == split]
        tags = {t for it in its for t in mr[it.index]["tags"]}
        rows.append({"dataset": "mtat", "split": split, "clips": len(its), "seconds": _seconds(its, mr),
                     "classes": f"{len(tags)} tags", "soundfonts": sorted({it.soundfont for it in its})})
    fs, fr = plans["fma_medium"], results["fma_medium"]
    rows.append({"dataset": "fma_medium", "split": "unlabeled", "clips": len(fs), "seconds": _seconds(fs, fr),
                 "classes": "- (4 stems each)", "soundfonts": sorted({it.soundfont for it in fs})})
    return rows


def format_summary(meta: dict) -> str:
    """The per-task table of a SYNTHETIC.json (clips, seconds of audio, classes, SoundFonts)."""
    header = ("data set", "split", "clips", "seconds", "classes", "SoundFonts")
    body = [(r["dataset"], r["split"], str(r["clips"]), f"{r['seconds']:.0f}", r["classes"],
             ", ".join(r["soundfonts"])) for r in meta["summary"]]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(header), line(tuple("-" * w for w in widths)), *(line(r) for r in body)]
    wall = meta.get("wall_seconds")
    out.append(f"scale {meta['scale']}, seed {meta['seed']}, generator v{meta['generator_version']}"
               + (f", rendered in {wall:.1f} s" if wall is not None else ""))
    return "\n".join(out)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _check_out(out: Path) -> None:
    if out.exists() and not (out / MARKER).exists():
        if not out.is_dir() or any(out.iterdir()):
            raise FileExistsError(
                f"{out} exists and is not an embedded benchmark (no {MARKER}); refusing to replace it. "
                "Choose another --out or delete the folder."
            )


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """Exclusive lock on ``<parent>/.<name>.lock`` so two processes never render one tree at once."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "a+") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _render_locked(out: Path, scale: str, seed: int, progress: bool) -> dict:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    sc = SCALES[scale]
    out = Path(out).expanduser().absolute()
    _check_out(out)
    from .synth import find_soundfont, soundfont_info

    fonts = {name: str(find_soundfont(name)) for name in SOUNDFONT_ORDER}  # fails early with the apt-get hint
    for stale in out.parent.glob(f".{out.name}.partial-*"):  # left by a killed render (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    tmp.mkdir(parents=True)
    started, t0 = _now(), time.perf_counter()
    try:
        plans = {"nsynth": _nsynth_items(sc), "giantsteps": _giantsteps_items(sc, seed),
                 "mtat": _mtat_items(sc, seed), "fma_medium": _fma_items(sc, seed)}
        workers = max(1, min(sc.workers or os.cpu_count() or 1, os.cpu_count() or 1))
        infos: dict = {}
        results = _run(plans, tmp, fonts, seed, sc, workers, progress,
                       while_waiting=lambda: infos.update({n: soundfont_info(n) for n in SOUNDFONT_ORDER}))
        _write_nsynth(tmp, plans["nsynth"], results["nsynth"])
        _write_giantsteps(tmp, plans["giantsteps"], results["giantsteps"])
        _write_mtat(tmp, plans["mtat"], results["mtat"])
        summary = _summary_rows(plans, results)
        by_split = {
            "nsynth": {"train": list(TRAIN_SOUNDFONTS), "valid": list(TRAIN_SOUNDFONTS), "test": list(TEST_SOUNDFONTS)},
            "giantsteps": {"train": list(TRAIN_SOUNDFONTS), "valid": list(TRAIN_SOUNDFONTS),
                           "test": list(TEST_SOUNDFONTS)},
            "mtat": {"train": list(TRAIN_SOUNDFONTS), "valid": list(TRAIN_SOUNDFONTS), "test": list(TEST_SOUNDFONTS)},
            "fma_medium": {"unlabeled": list(TRAIN_SOUNDFONTS)},
        }
        meta = {
            "generator": __name__, "generator_version": GENERATOR_VERSION, "scale": scale, "seed": seed,
            "sample_rate": RENDER_SAMPLE_RATE, "scale_parameters": asdict(sc),
            "soundfonts": {n: {**infos[n].to_dict(), "splits": "test" if n in TEST_SOUNDFONTS else "train, valid"}
                           for n in SOUNDFONT_ORDER},
            "soundfonts_by_split": by_split,
            "counts": {r["dataset"]: {} for r in summary},
            "seconds": {r["dataset"]: {} for r in summary},
            "summary": summary,
            "tasks": ["nsynth_pitch", "nsynth_instrument", "giantsteps_key", "mtat_top50", "mtat_all", "fma_medium"],
            "mtat_tags": list(music.MTAT_TAGS),
            "started_at": started,
        }
        for r in summary:
            meta["counts"][r["dataset"]][r["split"]] = r["clips"]
            meta["seconds"][r["dataset"]][r["split"]] = round(r["seconds"], 3)
        meta["counts"]["nsynth"]["dropped_silent"] = sum(r.get("dropped_silent", 0) for r in summary)
        meta["finished_at"] = _now()
        meta["wall_seconds"] = round(time.perf_counter() - t0, 2)
        (tmp / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def render(out: Path, scale: str = "demo", seed: int = 0, progress: bool = True) -> dict:
    """Render the benchmark of ``scale`` (:data:`SCALES`) and ``seed`` into ``out``; returns SYNTHETIC.json.

    The tree is rendered into a hidden sibling folder and renamed into place at the end,
    so an interrupted render never leaves a tree that looks complete.  An existing
    rendered tree at ``out`` is replaced; any other non-empty folder is refused.
    """
    out = Path(out).expanduser().absolute()
    with _lock(out):
        return _render_locked(out, scale, seed, progress)


def ensure_rendered(out: Path, scale: str, seed: int) -> Path:
    """``out`` if it holds a rendered benchmark, else render it there first (once across processes)."""
    out = Path(out).expanduser().absolute()
    if (out / MARKER).exists():
        return out
    with _lock(out):
        if not (out / MARKER).exists():  # another process may have finished it while we waited
            print(f"rendering the embedded benchmark (scale {scale}, seed {seed}) into {out}", flush=True)
            _render_locked(out, scale, seed, progress=sys.stderr.isatty())
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m workbench data render --out DIR --scale tiny|demo|full --seed N``."""
    parser = argparse.ArgumentParser(
        prog="python -m workbench data render",
        description="Render the embedded music benchmark (NSynth, GiantSteps key, MagnaTagATune and FMA "
                    "layouts) from MIDI with FluidSynth and General MIDI SoundFonts.")
    parser.add_argument("--scale", choices=list(SCALES), default="demo", help="size preset (default: demo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of all musical material (default: 0)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: the embedded cache, $WORKBENCH_CACHE/embedded/"
                             "<scale>-seed<seed>-v<version>, which the data API reads)")
    parser.add_argument("--force", action="store_true", help="render again even if --out is already rendered")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    out = (args.out or default_out(args.scale, args.seed)).expanduser().absolute()
    if (out / MARKER).exists() and not args.force:
        meta = json.loads((out / MARKER).read_text())
        print(f"already rendered: {out} (use --force to render again)")
        print(format_summary(meta))
        return 0
    print(f"rendering the embedded benchmark (scale {args.scale}, seed {args.seed}) into {out}", flush=True)
    t0 = time.perf_counter()
    meta = render(out, args.scale, args.seed, progress=not args.no_progress)
    print(format_summary(meta))
    print(f"wall time {time.perf_counter() - t0:.1f} s; SoundFonts: "
          + "; ".join(f"{n} ({meta['soundfonts'][n]['splits']})" for n in meta["soundfonts"]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
