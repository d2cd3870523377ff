"""Musical material for the embedded benchmark: General MIDI tables, keys, arrangements.

Everything here is plain data and seeded generation; nothing touches audio.  A
:class:`Piece` is a list of :class:`Track` s (one General MIDI program or drum kit each,
with a role: ``bass``, ``drums``, ``melody`` or ``accompaniment``) plus the facts it was
built from (key, tempo, meter, style, dynamics), so every label written by
:mod:`workbench.data.render` is true by construction:

- :func:`arrange` builds a multi-instrument piece in a :class:`Style` (progressions
  typical of the key, voice-led chords, a bass line, a melody, GM drum patterns);
- :func:`chorale_piece` takes a Bach chorale from the music21 corpus, transposed to the
  requested key (only chorales whose key signature and final bass note agree are used);
- :func:`Piece.tags` lists the MagnaTagATune-style tags (:data:`MTAT_TAGS`) the piece has.

All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..tasks import KEY_CLASSES, NSYNTH_FAMILIES

__all__ = [
    "Note", "Track", "Piece", "Key", "Style", "STYLES", "ROLES", "MTAT_TAGS", "NSYNTH_PROGRAMS",
    "nsynth_family", "nsynth_source", "instrument_tags", "arrange", "chorale_piece", "chorale_paths",
    "key_name", "DRUM_KITS", "GENRE_STYLES",
]

ROLES = ("bass", "drums", "melody", "accompaniment")

# --------------------------------------------------------------------------- General MIDI
# NSynth family of each pitched GM program (program numbers 0-127, GM order).  Programs
# left out (timpani, orchestra hit, pads, sound effects, percussive 112-127) are not used
# for isolated notes.
_FAMILY_RANGES: tuple[tuple[range, str], ...] = (
    (range(0, 8), "keyboard"), (range(8, 16), "mallet"), (range(16, 21), "organ"), (range(21, 24), "reed"),
    (range(24, 32), "guitar"), (range(32, 40), "bass"), (range(40, 47), "string"), (range(48, 52), "string"),
    (range(52, 55), "vocal"), (range(56, 64), "brass"), (range(64, 72), "reed"), (range(72, 80), "flute"),
    (range(80, 88), "synth_lead"), (range(104, 108), "guitar"), (range(108, 109), "mallet"),
    (range(109, 110), "reed"), (range(110, 111), "string"), (range(111, 112), "reed"),
)
_ELECTRONIC = frozenset({2, 4, 5, 7, 16, 17, 18, *range(26, 32), *range(33, 38)})
_SYNTHETIC = frozenset({38, 39, 50, 51, 54, 62, 63, *range(80, 88)})
NSYNTH_SOURCES = ("acoustic", "electronic", "synthetic")  # NSynth's instrument_source order

# Isolated-note programs in the order scales take them: round-robin over the 11 families so
# that the first N programs cover as many families as possible.
NSYNTH_PROGRAMS: tuple[int, ...] = (
    0, 33, 40, 24, 56, 73, 65, 11, 19, 81, 52,      # piano, finger bass, violin, nylon guitar, trumpet,
                                                    # flute, alto sax, vibraphone, church organ, saw lead, choir
    4, 38, 42, 27, 61, 75, 71, 12, 16, 80, 53,      # e-piano, synth bass, cello, clean e-guitar, brass section,
                                                    # pan flute, clarinet, marimba, drawbar organ, square lead, voice
    6, 32, 48, 25, 57, 72, 68, 13, 17, 82, 54,      # harpsichord, acoustic bass, strings, steel guitar, trombone,
                                                    # piccolo, oboe, xylophone, perc. organ, calliope, synth voice
)


def nsynth_family(program: int) -> str:
    """NSynth instrument family of a pitched GM program; ValueError for unpitched/unused ones."""
    for r, fam in _FAMILY_RANGES:
        if program in r:
            return fam
    raise ValueError(f"GM program {program} has no NSynth family (timpani, orchestra hit, pads, effects and "
                     "percussive programs are not used for isolated notes).")


def nsynth_source(program: int) -> str:
    """NSynth instrument source (acoustic / electronic / synthetic) of a GM program."""
    if program in _SYNTHETIC:
        return "synthetic"
    return "electronic" if program in _ELECTRONIC else "acoustic"


assert all(nsynth_family(p) in NSYNTH_FAMILIES for p in NSYNTH_PROGRAMS)

# MagnaTagATune-style instrument tags of the GM programs the arranger uses.
_INSTRUMENT_TAGS: dict[int, tuple[str, ...]] = {
    **{p: ("piano",) for p in range(0, 6)}, 6: ("harpsichord",), 11: ("vibraphone",), 12: ("marimba",),
    **{p: ("organ",) for p in range(16, 21)}, 22: ("harmonica",), **{p: ("guitar",) for p in range(24, 32)},
    **{p: ("bass",) for p in range(32, 38)}, 38: ("bass", "synth"), 39: ("bass", "synth"),
    40: ("violin",), 41: ("strings",), 42: ("cello",), 43: ("strings",), 44: ("strings",), 45: ("strings",),
    46: ("harp",), 48: ("strings",), 49: ("strings",), 50: ("strings", "synth"), 52: ("choir",),
    53: ("voice",), 54: ("voice", "synth"), 56: ("trumpet",), 57: ("brass",), 58: ("brass",), 60: ("brass",),
    61: ("brass",), **{p: ("sax",) for p in range(64, 68)}, 68: ("oboe",), 71: ("clarinet",),
    **{p: ("flute",) for p in range(72, 76)}, **{p: ("synth",) for p in range(80, 96)}, 104: ("sitar",),
    105: ("banjo",), 110: ("violin",),
}
VOCAL_PROGRAMS = frozenset({52, 53, 54})


def instrument_tags(program: int) -> tuple[str, ...]:
    """The instrument tags a GM program contributes to a piece (empty if it has none)."""
    return _INSTRUMENT_TAGS.get(program, ())


# GM percussion (channel 10) note numbers.
KICK, SIDE_STICK, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE = 36, 37, 38, 39, 42, 44, 46, 49, 51
TAMBOURINE, SHAKER, CLAVES = 54, 70, 75
HIGH_BONGO, LOW_BONGO, MUTE_CONGA, HIGH_CONGA, LOW_CONGA = 60, 61, 62, 63, 64
TOMS = (50, 48, 47, 45, 43, 41)
DRUM_KITS = {"standard": 0, "room": 8, "power": 16, "electronic": 24, "tr808": 25, "jazz": 32, "brush": 40}

# --------------------------------------------------------------------------- keys
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
NATURAL_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class (0 = C) and mode (``major`` / ``minor``)."""

    tonic: int
    mode: str

    @classmethod
    def from_index(cls, index: int) -> "Key":
        """Key of :data:`KEY_CLASSES` ``[index]`` (0-11 major, 12-23 minor)."""
        return cls(index % 12, "minor" if index >= 12 else "major")

    @property
    def index(self) -> int:
        return self.tonic + (12 if self.mode == "minor" else 0)

    @property
    def scale(self) -> tuple[int, ...]:
        """Pitch classes of the (major or natural minor) scale."""
        base = MAJOR_SCALE if self.mode == "major" else NATURAL_MINOR_SCALE
        return tuple((self.tonic + s) % 12 for s in base)

    @property
    def leading_tone(self) -> int:
        return (self.tonic + 11) % 12

    def __str__(self) -> str:
        return KEY_CLASSES[self.index]


def key_name(key: Key, sharps: bool = False) -> str:
    """``Eb minor`` (flat spelling, as :data:`KEY_CLASSES`) or ``D# minor`` (sharp spelling)."""
    return f"{(_SHARP_NAMES if sharps else _FLAT_NAMES)[key.tonic]} {key.mode}"


# Chords as (root offset from the tonic, quality); roman numerals per mode.
_QUALITIES = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "dom7": (0, 4, 7, 10),
              "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10), "hdim7": (0, 3, 6, 10)}
_ROMAN = {
    "major": {"I": (0, "maj"), "ii": (2, "min"), "iii": (4, "min"), "IV": (5, "maj"), "V": (7, "maj"),
              "vi": (9, "min"), "V7": (7, "dom7"), "Imaj7": (0, "maj7"), "ii7": (2, "min7"), "vi7": (9, "min7"),
              "IVmaj7": (5, "maj7"), "I7": (0, "dom7"), "IV7": (5, "dom7")},
    "minor": {"i": (0, "min"), "iio": (2, "dim"), "III": (3, "maj"), "iv": (5, "min"), "V": (7, "maj"),
              "VI": (8, "maj"), "VII": (10, "maj"), "V7": (7, "dom7"), "i7": (0, "min7"), "iiø7": (2, "hdim7"),
              "iv7": (5, "min7")},
}
# Progressions typical of each mode (one chord per bar), looped; pieces end on the tonic.
PROGRESSIONS = {
    "major": (("I", "IV", "V", "I"), ("I", "vi", "IV", "V"), ("I", "V", "vi", "IV"), ("I", "IV", "I", "V"),
              ("I", "ii", "V", "I"), ("I", "iii", "IV", "V"), ("I", "IV", "ii", "V"), ("I", "vi", "ii", "V")),
    "minor": (("i", "iv", "V", "i"), ("i", "VI", "III", "VII"), ("i", "VII", "VI", "V"), ("i", "iv", "VII", "III"),
              ("i", "iio", "V", "i"), ("i", "VI", "iv", "V"), ("i", "III", "iv", "V"), ("i", "iv", "i", "V")),
}
JAZZ_PROGRESSIONS = {
    "major": (("ii7", "V7", "Imaj7", "Imaj7"), ("Imaj7", "vi7", "ii7", "V7"), ("Imaj7", "IVmaj7", "ii7", "V7")),
    "minor": (("iiø7", "V7", "i7", "i7"), ("i7", "iv7", "iiø7", "V7"), ("i7", "VI", "iiø7", "V7")),
}


@dataclass(frozen=True)
class Chord:
    root: int  # pitch class
    pcs: tuple[int, ...]  # pitch classes, root first


def chord(key: Key, numeral: str) -> Chord:
    """The chord ``numeral`` (e.g. ``"V7"``, ``"iv"``) in ``key``; V in minor has the raised leading tone."""
    try:
        offset, quality = _ROMAN[key.mode][numeral]
    except KeyError:
        raise ValueError(f"unknown chord {numeral!r} in a {key.mode} key; known: {sorted(_ROMAN[key.mode])}") from None
    root = (key.tonic + offset) % 12
    return Chord(root, tuple((root + i) % 12 for i in _QUALITIES[quality]))


# --------------------------------------------------------------------------- pieces
@dataclass(frozen=True)
class Note:
    start: float  # seconds
    duration: float  # seconds
    pitch: int  # MIDI note number (GM percussion note on drum tracks)
    velocity: int


@dataclass(frozen=True)
class Track:
    role: str  # one of ROLES
    program: int  # GM program, or the drum kit preset (bank 128) when drums
    notes: tuple[Note, ...]
    drums: bool = False


@dataclass(frozen=True)
class Piece:
    tracks: tuple[Track, ...]
    seconds: float
    key: Key
    tempo: float  # quarter notes (beats) per minute
    beats_per_bar: int
    style: str
    dynamics: str = "medium"  # "soft", "medium" or "loud"
    source: str = "generated"  # or "chorale:<bwv>"
    solo: bool = False  # arranged for one instrument

    @property
    def programs(self) -> tuple[int, ...]:
        return tuple(sorted({t.program for t in self.tracks if not t.drums and t.notes}))

    @property
    def has_drums(self) -> bool:
        return any(t.drums and t.notes for t in self.tracks)

    def tags(self) -> list[str]:
        """The :data:`MTAT_TAGS` that are true of this piece, in :data:`MTAT_TAGS` order."""
        tags = {self.style}
        instruments = set()
        for p in self.programs:
            tags.update(instrument_tags(p))
            instruments.add(p)
        tags.add("drums" if self.has_drums else "no drums")
        tags.add("vocal" if instruments & VOCAL_PROGRAMS else "no vocals")
        if self.tempo >= FAST_TEMPO:
            tags.add("fast")
        elif self.tempo <= SLOW_TEMPO:
            tags.add("slow")
        tags.add(self.key.mode)
        tags.add("triple meter" if self.beats_per_bar == 3 else "quadruple meter")
        if self.dynamics in ("loud", "soft"):
            tags.add(self.dynamics)
        if self.solo:
            tags.add("solo")
        unknown = tags - set(MTAT_TAGS)
        if unknown:
            raise RuntimeError(f"piece has tags outside MTAT_TAGS: {sorted(unknown)}")
        return [t for t in MTAT_TAGS if t in tags]


SOLO_POLYPHONIC = frozenset({0, 4, 6, 24, 25, 46})  # programs that play a solo with both hands (chords + bass)
FAST_TEMPO = 130.0  # bpm at or above which a piece is tagged "fast"
SLOW_TEMPO = 80.0  # bpm at or below which a piece is tagged "slow"


@dataclass(frozen=True)
class Style:
    """How :func:`arrange` orchestrates a piece: tempo range, meters, programs and patterns per role."""

    name: str
    tempo: tuple[float, float]
    meters: tuple[int, ...] = (4,)
    minor_probability: float = 0.5
    drum_pattern: str | None = None
    drum_kits: tuple[str, ...] = ("standard",)
    bass: tuple[int, ...] = ()
    bass_patterns: tuple[str, ...] = ("root",)
    accompaniment: tuple[int, ...] = ()
    accompaniment_patterns: tuple[str, ...] = ("block",)
    melody: tuple[int, ...] = ()
    solo_probability: float = 0.0
    jazz_harmony: bool = False
    chorale: bool = False  # material from the Bach chorales (choral style)
    progressions: dict | None = None  # mode -> progressions (one chord per bar); None: the usual tables


STYLES: dict[str, Style] = {s.name: s for s in (
    Style("classical", (60, 132), (3, 4), 0.45, None, bass=(42, 43), bass_patterns=("root", "root_fifth"),
          accompaniment=(0, 6, 48, 46), accompaniment_patterns=("arpeggio", "block", "waltz"),
          melody=(40, 73, 71, 68), solo_probability=0.2),
    Style("choral", (60, 96), (4,), 0.5, None, accompaniment=(19,), melody=(52,), chorale=True),
    Style("rock", (100, 170), (4,), 0.5, "rock", ("standard", "power", "room"), bass=(33, 34),
          bass_patterns=("pulse8", "root_fifth"), accompaniment=(29, 30), accompaniment_patterns=("power", "strum"),
          melody=(30, 18)),
    Style("electronic", (118, 150), (4,), 0.6, "electronic", ("electronic", "tr808"), bass=(38, 39),
          bass_patterns=("octave", "pulse8"), accompaniment=(88, 89, 90, 50),
          accompaniment_patterns=("block", "offbeat"),
          melody=(80, 81, 84, 87)),
    Style("ambient", (55, 84), (4,), 0.5, None, bass=(38, 89), bass_patterns=("root",),
          accompaniment=(88, 89, 91, 94, 95, 49, 12), accompaniment_patterns=("block", "arpeggio"),
          melody=(75, 73, 11)),
    Style("jazz", (90, 190), (4, 3), 0.3, "jazz", ("jazz", "brush"), bass=(32,), bass_patterns=("walking",),
          accompaniment=(0, 4), accompaniment_patterns=("comp",), melody=(65, 66, 56, 11), solo_probability=0.15,
          jazz_harmony=True),
    Style("country", (95, 145), (4, 3), 0.1, "country", ("standard", "room"), bass=(32, 33),
          bass_patterns=("root_fifth",), accompaniment=(25, 105), accompaniment_patterns=("strum", "arpeggio"),
          melody=(110, 22, 105)),
    Style("indian", (70, 120), (4,), 0.5, "hand", ("standard",), accompaniment=(20,),
          accompaniment_patterns=("drone",), melody=(104, 73), solo_probability=0.2),
    Style("pop", (85, 130), (4,), 0.3, "pop", ("standard", "room"), bass=(33, 34, 38),
          bass_patterns=("root_fifth", "pulse8"), accompaniment=(0, 4, 24, 25, 61),
          accompaniment_patterns=("pulse", "arpeggio", "strum"), melody=(53, 54, 73, 12)),
)}

# Every tag a piece can carry; the CSV columns of the embedded MagnaTagATune (<= 50).
MTAT_TAGS: tuple[str, ...] = (
    *STYLES,
    "piano", "harpsichord", "organ", "guitar", "bass", "synth", "violin", "cello", "strings", "harp", "choir",
    "voice", "trumpet", "brass", "sax", "oboe", "clarinet", "flute", "sitar", "banjo", "harmonica",
    "vibraphone", "marimba",
    "drums", "no drums", "vocal", "no vocals", "fast", "slow", "major", "minor", "triple meter",
    "quadruple meter", "loud", "soft", "solo",
)
assert len(MTAT_TAGS) <= 50 and len(set(MTAT_TAGS)) == len(MTAT_TAGS)

# The twelve-bar blues (one chord per bar), major and minor.
BLUES_PROGRESSIONS = {
    "major": (("I7", "IV7", "I7", "I7", "IV7", "IV7", "I7", "I7", "V7", "IV7", "I7", "V7"),),
    "minor": (("i7", "iv7", "i7", "i7", "iv7", "iv7", "i7", "i7", "V7", "iv7", "i7", "V7"),),
}
# Styles for GTZAN's genres that STYLES lacks (kept apart so MTAT and FMA stay as they are).
GENRE_STYLES: dict[str, Style] = {s.name: s for s in (
    Style("blues", (70, 120), (4,), 0.3, "blues", ("standard", "jazz"), bass=(32, 33),
          bass_patterns=("walking", "root_fifth"), accompaniment=(0, 4, 26, 27), accompaniment_patterns=("comp", "pulse"),
          melody=(22, 26, 65, 66), progressions=BLUES_PROGRESSIONS),
    Style("disco", (110, 130), (4,), 0.4, "disco", ("standard", "room"), bass=(33, 36, 38), bass_patterns=("octave",),
          accompaniment=(48, 28, 4), accompaniment_patterns=("offbeat", "pulse"), melody=(48, 61, 80)),
    Style("hiphop", (80, 98), (4,), 0.7, "hiphop", ("tr808", "standard"), bass=(38, 39, 33),
          bass_patterns=("root", "root_fifth"), accompaniment=(4, 0, 88, 11), accompaniment_patterns=("block", "arpeggio"),
          melody=(53, 80, 11, 73)),
    Style("metal", (130, 190), (4,), 0.85, "metal", ("power", "standard"), bass=(33, 34), bass_patterns=("pulse8",),
          accompaniment=(30, 29), accompaniment_patterns=("power",), melody=(30,)),
    Style("reggae", (65, 90), (4,), 0.4, "reggae", ("standard", "room"), bass=(33, 34), bass_patterns=("root_fifth",),
          accompaniment=(27, 16, 4), accompaniment_patterns=("offbeat",), melody=(53, 56, 65, 22)),
)}
assert {t for ts in _INSTRUMENT_TAGS.values() for t in ts} <= set(MTAT_TAGS)

# Velocity ranges of the dynamics classes.
DYNAMICS = {"soft": (38, 60), "medium": (66, 92), "loud": (100, 124)}
# Pitch ranges (MIDI) per role; the melody range is moved to suit the instrument.
BASS_RANGE = (33, 52)
CHORD_RANGE = (52, 76)
MELODY_CENTRE = 72
_LOW_MELODY = frozenset({42, 43, 32, 33, 34, 70, 57, 58})
_HIGH_MELODY = frozenset({72, 73, 74, 75, 79, 11, 12, 13, 40, 110})


def _velocity(rng: np.random.Generator, dynamics: str, accent: float = 0.0) -> int:
    lo, hi = DYNAMICS[dynamics]
    v = rng.integers(lo, hi + 1) + accent
    return int(np.clip(round(v), 1, 127))


def _nearest(pc: int, target: float, lo: int = 0, hi: int = 127) -> int:
    """The MIDI pitch of pitch class ``pc`` nearest to ``target`` within [lo, hi]."""
    base = pc + 12 * round((target - pc) / 12)
    while base < lo:
        base += 12
    while base > hi:
        base -= 12
    return int(base)


def _voice(ch: Chord, previous: list[int] | None, lo: int, hi: int) -> list[int]:
    """Close-position voicing of ``ch`` in [lo, hi], the one moving least from ``previous``."""
    pcs = list(ch.pcs[:4])
    candidates = []
    for inversion in range(len(pcs)):
        order = pcs[inversion:] + pcs[:inversion]
        for start in range(lo, lo + 12):
            if start % 12 != order[0]:
                continue
            notes = [start]
            for pc in order[1:]:
                n = notes[-1] + 1
                while n % 12 != pc:
                    n += 1
                notes.append(n)
            if notes[-1] <= hi:
                candidates.append(notes)
            up = [n + 12 for n in notes]
            if up[-1] <= hi:
                candidates.append(up)
    if not candidates:
        raise ValueError(f"cannot voice chord {ch} within MIDI {lo}-{hi}")
    centre = (lo + hi) / 2
    if previous is None:
        return min(candidates, key=lambda c: (abs(float(np.mean(c)) - centre), c))
    return min(candidates, key=lambda c: (sum(min(abs(a - b) for b in previous) for a in c), c))


# --------------------------------------------------------------------------- patterns
def _bass_line(rng, chords, key: Key, pattern: str, beats: int, beat: float, dyn: str) -> list[Note]:
    notes: list[Note] = []
    for bar, ch in enumerate(chords):
        t0 = bar * beats * beat
        root = _nearest(ch.root, 40, *BASS_RANGE)
        fifth = _nearest(ch.pcs[2], root + 7, *BASS_RANGE)
        nxt = chords[bar + 1] if bar + 1 < len(chords) else ch
        if pattern == "root":
            notes.append(Note(t0, beats * beat * 0.95, root, _velocity(rng, dyn, 4)))
        elif pattern == "root_fifth":
            if beats == 3:
                notes.append(Note(t0, beat * 0.9, root, _velocity(rng, dyn, 6)))
                notes.append(Note(t0 + beat, beat * 0.8, fifth, _velocity(rng, dyn)))
                notes.append(Note(t0 + 2 * beat, beat * 0.8, fifth, _velocity(rng, dyn)))
            else:
                notes.append(Note(t0, 2 * beat * 0.9, root, _velocity(rng, dyn, 6)))
                notes.append(Note(t0 + 2 * beat, 2 * beat * 0.9, fifth, _velocity(rng, dyn)))
        elif pattern in ("pulse8", "octave"):
            for i in range(beats * 2):
                p = root + 12 if (pattern == "octave" and i % 2) else root
                notes.append(Note(t0 + i * beat / 2, beat / 2 * 0.8, p, _velocity(rng, dyn, 6 if i == 0 else 0)))
        elif pattern == "walking":
            target = _nearest(nxt.root, root, *BASS_RANGE)
            line = [root]
            tones = [_nearest(pc, root + 5, *BASS_RANGE) for pc in ch.pcs[1:]]
            line += list(rng.choice(tones, size=max(beats - 2, 0)))
            line.append(target + (1 if rng.random() < 0.5 else -1))  # chromatic approach
            for i, p in enumerate(line[:beats]):
                notes.append(Note(t0 + i * beat, beat * 0.9, int(p), _velocity(rng, dyn, 4 if i == 0 else 0)))
        else:
            raise ValueError(f"unknown bass pattern {pattern!r}")
    return notes


def _accompaniment(rng, chords, key: Key, pattern: str, beats: int, beat: float, dyn: str) -> list[Note]:
    notes: list[Note] = []
    voicing = None
    for bar, ch in enumerate(chords):
        t0 = bar * beats * beat
        voicing = _voice(ch, voicing, *CHORD_RANGE)
        bar_len = beats * beat
        if pattern == "block":
            notes += [Note(t0, bar_len * 0.98, p, _velocity(rng, dyn, -6)) for p in voicing]
        elif pattern == "pulse":
            for b in range(beats):
                notes += [Note(t0 + b * beat, beat * 0.7, p, _velocity(rng, dyn, 4 if b == 0 else -4)) for p in voicing]
        elif pattern == "waltz":
            for b in range(1, beats):
                notes += [Note(t0 + b * beat, beat * 0.7, p, _velocity(rng, dyn, -6)) for p in voicing]
        elif pattern == "offbeat":
            for b in range(beats):
                notes += [Note(t0 + (b + 0.5) * beat, beat * 0.4, p, _velocity(rng, dyn, -4)) for p in voicing]
        elif pattern == "comp":
            hits = sorted(rng.choice(np.arange(beats * 2), size=min(3, beats * 2), replace=False))
            for h in hits:
                notes += [Note(t0 + h * beat / 2, beat * 0.6, p, _velocity(rng, dyn, -6)) for p in voicing]
        elif pattern == "arpeggio":
            seq = voicing + voicing[-2:0:-1]
            for i in range(beats * 2):
                notes.append(Note(t0 + i * beat / 2, beat * 0.9, seq[i % len(seq)], _velocity(rng, dyn, -4)))
        elif pattern == "strum":
            for b in range(beats):
                for j, p in enumerate(voicing if b % 2 == 0 else voicing[::-1]):
                    notes.append(Note(t0 + b * beat + j * STRUM_SPREAD, beat * 0.85, p,
                                      _velocity(rng, dyn, 6 if b == 0 else 0)))
        elif pattern == "power":
            root = _nearest(ch.root, 47, 40, 55)
            for i in range(beats * 2):
                notes += [Note(t0 + i * beat / 2, beat / 2 * 0.85, p, _velocity(rng, dyn, 6 if i % 2 == 0 else 0))
                          for p in (root, root + 7, root + 12)]
        elif pattern == "drone":
            if bar == 0:
                tonic = _nearest(key.tonic, 50, 43, 58)
                length = len(chords) * bar_len
                notes += [Note(0.0, length, p, _velocity(rng, dyn, -8)) for p in (tonic, tonic + 7, tonic + 12)]
        else:
            raise ValueError(f"unknown accompaniment pattern {pattern!r}")
    return notes


STRUM_SPREAD = 0.012  # seconds between the strings of a strum


def _melody_range(program: int) -> tuple[int, int]:
    if program in _LOW_MELODY:
        return 48, 72
    if program in _HIGH_MELODY:
        return 67, 91
    return 60, 84


# Rhythm cells for one beat (durations in beats; a negative value is a rest).
_CELLS = ((1.0,), (0.5, 0.5), (0.75, 0.25), (1.0,), (0.5, 0.5), (-0.5, 0.5), (0.25, 0.25, 0.5))


def _melody(rng, chords, key: Key, beats: int, beat: float, dyn: str, program: int, phrase_bars: int = 2) -> list[Note]:
    lo, hi = _melody_range(program)
    scale = sorted(key.scale)
    notes: list[Note] = []
    prev = _nearest(chords[0].pcs[0 if rng.random() < 0.5 else 2], (lo + hi) / 2, lo, hi)
    for bar, ch in enumerate(chords):
        t0 = bar * beats * beat
        tones = set(ch.pcs)
        if key.mode == "minor" and key.leading_tone in tones:  # melodies over V use the raised 7th
            allowed = sorted((set(scale) - {(key.tonic + 10) % 12}) | {key.leading_tone})
        else:
            allowed = scale
        last_bar = bar == len(chords) - 1
        end_of_phrase = (bar + 1) % phrase_bars == 0 or last_bar
        close_at = max(beats - 2, 1)
        b = 0.0
        while b < beats - 1e-9:
            if end_of_phrase and b >= close_at - 1e-9:
                # a long note on a chord tone (the tonic at the very end) closes the phrase
                pc = key.tonic if last_bar else int(rng.choice(ch.pcs[:3]))
                p = _nearest(pc, prev, lo, hi)
                notes.append(Note(t0 + b * beat, (beats - b) * beat * 0.95, p, _velocity(rng, dyn, 2)))
                prev = p
                break
            cell = _CELLS[rng.integers(len(_CELLS))] if rng.random() < 0.85 else (2.0,)
            if b + sum(abs(c) for c in cell) > beats + 1e-9:
                cell = (beats - b,)
            for d in cell:
                if d < 0:
                    b += -d
                    continue
                strong = abs(b - round(b)) < 1e-9
                if strong:
                    cands = [_nearest(pc, prev, lo, hi) for pc in tones]
                    cands = [c for c in cands if abs(c - prev) <= 7] or cands
                    p = int(rng.choice(sorted(cands)))
                else:
                    step = int(rng.choice((-2, -1, -1, 1, 1, 2)))
                    idx = min(range(len(allowed)), key=lambda i: abs(allowed[i] - prev % 12))
                    pc = allowed[(idx + step) % len(allowed)]
                    p = _nearest(pc, prev + np.sign(step) * 2, lo, hi)
                notes.append(Note(t0 + b * beat, d * beat * 0.92, p, _velocity(rng, dyn, 4 if strong else -2)))
                prev = p
                b += d
    return notes


# Drum patterns on a grid of steps per beat: {drum note: steps where it hits}.
_STEPS_PER_BEAT = 4
_DRUM_PATTERNS: dict[str, dict[int, dict[int, tuple[int, ...]]]] = {
    # beats per bar -> {note: steps}
    "rock": {4: {KICK: (0, 8, 10), SNARE: (4, 12), CLOSED_HAT: (0, 2, 4, 6, 8, 10, 12, 14)}},
    "pop": {4: {KICK: (0, 6, 8), SNARE: (4, 12), CLOSED_HAT: (0, 2, 4, 6, 8, 10, 12, 14), TAMBOURINE: (4, 12)}},
    "electronic": {4: {KICK: (0, 4, 8, 12), CLAP: (4, 12), OPEN_HAT: (2, 6, 10, 14),
                       CLOSED_HAT: tuple(range(16))}},
    "jazz": {4: {RIDE: (0, 4, 7, 8, 12, 15), PEDAL_HAT: (4, 12), KICK: (0,)},
             3: {RIDE: (0, 4, 7, 8), PEDAL_HAT: (4, 8), KICK: (0,)}},
    "country": {4: {KICK: (0, 8), SIDE_STICK: (4, 12), CLOSED_HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
                3: {KICK: (0,), SIDE_STICK: (4, 8), CLOSED_HAT: (0, 4, 8)}},
    "hand": {4: {LOW_CONGA: (0, 6, 10), HIGH_CONGA: (3, 8, 14), MUTE_CONGA: (4, 12), HIGH_BONGO: (2, 11, 15),
                 SHAKER: tuple(range(0, 16, 2))}},
    "light": {4: {SHAKER: tuple(range(0, 16, 2)), CLAVES: (0, 6, 12), LOW_BONGO: (0, 8)},
              3: {SHAKER: tuple(range(0, 12, 2)), CLAVES: (0,), LOW_BONGO: (0,)}},
}
_DRUM_PATTERNS.update({  # the GTZAN genres' patterns
    "blues": {4: {KICK: (0, 8), SNARE: (4, 12), RIDE: (0, 3, 4, 7, 8, 11, 12, 15)}},
    "disco": {4: {KICK: (0, 4, 8, 12), SNARE: (4, 12), OPEN_HAT: (2, 6, 10, 14), CLOSED_HAT: (0, 4, 8, 12)}},
    "hiphop": {4: {KICK: (0, 7, 10), SNARE: (4, 12), CLOSED_HAT: (0, 2, 4, 6, 8, 10, 12, 14)}},
    "metal": {4: {KICK: (0, 2, 4, 6, 8, 10, 12, 14), SNARE: (4, 12), CRASH: (0,), RIDE: (2, 6, 10, 14)}},
    "reggae": {4: {KICK: (8,), SIDE_STICK: (8,), CLOSED_HAT: (2, 6, 10, 14)}},  # the one drop
})
_GENERIC_TRIPLE = {KICK: (0,), SNARE: (4, 8), CLOSED_HAT: (0, 2, 4, 6, 8, 10)}
FILL_EVERY_BARS = 4


def _drums(rng, bars: int, beats: int, beat: float, dyn: str, pattern: str) -> list[Note]:
    grid = _DRUM_PATTERNS[pattern].get(beats) or _GENERIC_TRIPLE
    step = beat / _STEPS_PER_BEAT
    swing = step * 0.33 if pattern == "jazz" else 0.0
    notes: list[Note] = []
    for bar in range(bars):
        t0 = bar * beats * beat
        fill = pattern in ("rock", "pop", "country") and bar % FILL_EVERY_BARS == FILL_EVERY_BARS - 1
        for drum, steps in grid.items():
            for s in steps:
                if fill and s >= (beats - 1) * _STEPS_PER_BEAT:
                    continue
                accent = 8 if s % _STEPS_PER_BEAT == 0 else -6
                t = t0 + s * step + (swing if s % 2 else 0.0)
                notes.append(Note(t, step, drum, _velocity(rng, dyn, accent)))
        if fill:
            for j, s in enumerate(range((beats - 1) * _STEPS_PER_BEAT, beats * _STEPS_PER_BEAT)):
                notes.append(Note(t0 + s * step, step, TOMS[j % len(TOMS)], _velocity(rng, dyn, 6)))
        if bar % FILL_EVERY_BARS == 0 and bar > 0 and pattern in ("rock", "pop", "electronic", "country"):
            notes.append(Note(t0, beat, CRASH, _velocity(rng, dyn, 4)))
    return notes


# --------------------------------------------------------------------------- arrangements
def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def arrange(
    rng: np.random.Generator,
    style: Style | str,
    seconds: float,
    key: Key | None = None,
    dynamics: str | None = None,
    require_roles: bool = False,
    allow_solo: bool = True,
) -> Piece:
    """A seeded multi-instrument piece of at least ``seconds`` in ``style``.

    key: the key (drawn from the style's mode probability if None).  dynamics: ``soft``,
    ``medium`` or ``loud`` (drawn if None).  require_roles: give the piece all four
    :data:`ROLES` (a light percussion part and a root bass where the style has none), as
    the multi-source pool needs one stem per role.  allow_solo: let the style's solo
    probability produce a one-instrument piece.
    """
    style = STYLES[style] if isinstance(style, str) else style
    if style.chorale:
        raise ValueError("the choral style draws on the Bach chorales: use chorale_piece()")
    if key is None:
        key = Key(int(rng.integers(12)), "minor" if rng.random() < style.minor_probability else "major")
    if dynamics is None:
        dynamics = _pick(rng, ("soft", "medium", "medium", "loud")) if style.name != "ambient" else "soft"
    tempo = float(np.round(rng.uniform(*style.tempo)))
    beats = int(_pick(rng, style.meters))
    beat = 60.0 / tempo
    bars = int(math.ceil(seconds / (beats * beat)))
    table = style.progressions or (JAZZ_PROGRESSIONS if style.jazz_harmony else PROGRESSIONS)
    progression = _pick(rng, table[key.mode])
    numerals = [progression[i % len(progression)] for i in range(bars)]
    tonic = "i" if key.mode == "minor" else "I"
    numerals[-1] = tonic
    chords = [chord(key, n) for n in numerals]

    solo = allow_solo and not require_roles and rng.random() < style.solo_probability
    tracks: list[Track] = []
    if solo:
        polyphonic = tuple(p for p in style.accompaniment if p in SOLO_POLYPHONIC)
        if rng.random() < 0.5 and polyphonic:
            program = _pick(rng, polyphonic)
            pattern = "arpeggio"
            tracks.append(Track("accompaniment", program,
                                tuple(_accompaniment(rng, chords, key, pattern, beats, beat, dynamics))))
            tracks.append(Track("bass", program, tuple(_bass_line(rng, chords, key, "root", beats, beat, dynamics))))
        else:
            program = _pick(rng, style.melody)
            tracks.append(Track("melody", program, tuple(_melody(rng, chords, key, beats, beat, dynamics, program))))
        return Piece(tuple(tracks), seconds, key, tempo, beats, style.name, dynamics, solo=True)

    drum_pattern = style.drum_pattern or ("light" if require_roles else None)
    if drum_pattern is not None:
        kit = DRUM_KITS[_pick(rng, style.drum_kits)]
        tracks.append(Track("drums", kit, tuple(_drums(rng, bars, beats, beat, dynamics, drum_pattern)), drums=True))
    bass_programs = style.bass or ((32,) if require_roles else ())
    if bass_programs:
        pattern = _pick(rng, style.bass_patterns)
        tracks.append(Track("bass", _pick(rng, bass_programs),
                            tuple(_bass_line(rng, chords, key, pattern, beats, beat, dynamics))))
    if style.accompaniment:
        patterns = tuple(p for p in style.accompaniment_patterns if p != "waltz" or beats == 3) or ("block",)
        tracks.append(Track("accompaniment", _pick(rng, style.accompaniment),
                            tuple(_accompaniment(rng, chords, key, _pick(rng, patterns), beats, beat, dynamics))))
    if style.melody:
        program = _pick(rng, style.melody)
        tracks.append(Track("melody", program, tuple(_melody(rng, chords, key, beats, beat, dynamics, program))))
    return Piece(tuple(tracks), seconds, key, tempo, beats, style.name, dynamics)


# --------------------------------------------------------------------------- chorales
# Ensembles for the four chorale voices (soprano, alto, tenor, bass).
CHORALE_ENSEMBLES: dict[str, tuple[int, int, int, int]] = {
    "choir": (52, 52, 52, 52), "organ": (19, 19, 19, 19), "strings": (40, 41, 42, 43),
    "brass": (56, 60, 57, 58), "woodwinds": (73, 68, 71, 70), "piano": (0, 0, 0, 0),
}
_CHORALE_ROLES = ("melody", "accompaniment", "accompaniment", "bass")
_CHORALE_NAME = re.compile(r"^bwv[\d.]+\.mxl$")
CHORALE_TEMPO = (66.0, 96.0)  # quarter notes per minute
MAX_CHORALE_TRIES = 40  # chorales examined for one piece before giving up


@lru_cache(maxsize=1)
def chorale_paths() -> tuple[Path, ...]:
    """The Bach chorales (``bwv*.mxl``) of the music21 corpus, sorted by name."""
    from music21 import corpus

    return tuple(sorted((Path(p) for p in corpus.getComposer("bach") if _CHORALE_NAME.match(Path(p).name)),
                        key=lambda p: p.name))


@dataclass(frozen=True)
class _Chorale:
    name: str
    key: Key
    beats_per_bar: int
    voices: tuple[tuple[tuple[float, float, int], ...], ...]  # per voice: (offset, duration, midi) in quarters


_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def _musicxml_root(path: str):
    """The score element of a compressed (.mxl) or plain MusicXML file."""
    import xml.etree.ElementTree as ET
    import zipfile

    if not zipfile.is_zipfile(path):
        return ET.parse(path).getroot()
    with zipfile.ZipFile(path) as z:
        name = None
        if "META-INF/container.xml" in z.namelist():
            rootfile = ET.fromstring(z.read("META-INF/container.xml")).find(".//rootfile")
            name = rootfile.get("full-path") if rootfile is not None else None
        if name is None:
            name = next(n for n in z.namelist() if n.endswith(".xml") and not n.startswith("META-INF"))
        return ET.fromstring(z.read(name))


def _read_part(part) -> tuple[list[tuple[float, float, int]], int | None, str | None, int | None]:
    """Notes (offset, duration in quarters, MIDI; tied notes merged) and the first key/meter of a part."""
    divisions, t, last_start = 1.0, 0.0, 0.0
    notes: list[tuple[float, float, int]] = []
    open_ties: dict[int, int] = {}
    fifths = mode = beats = None
    for measure in part.iter("measure"):
        for el in measure:
            if el.tag == "attributes":
                divisions = float(el.findtext("divisions", divisions))
                if fifths is None and el.find("key/fifths") is not None:
                    fifths, mode = int(el.findtext("key/fifths")), el.findtext("key/mode")
                if beats is None and el.find("time/beats") is not None:
                    beats = int(el.findtext("time/beats").split("+")[0])
            elif el.tag == "backup":
                t -= float(el.findtext("duration", 0)) / divisions
            elif el.tag == "forward":
                t += float(el.findtext("duration", 0)) / divisions
            elif el.tag == "note":
                if el.find("grace") is not None:
                    continue
                dur = float(el.findtext("duration", 0)) / divisions
                if el.find("chord") is not None:
                    start = last_start
                else:
                    start, last_start = t, t
                    t += dur
                pitch = el.find("pitch")
                if pitch is None:
                    continue
                midi = (12 * (int(pitch.findtext("octave")) + 1) + _STEPS[pitch.findtext("step")]
                        + int(round(float(pitch.findtext("alter", 0)))))
                ties = {tie.get("type") for tie in el.findall("tie")}
                if "stop" in ties and midi in open_ties:
                    i = open_ties.pop(midi)
                    s0, d0, _ = notes[i]
                    notes[i] = (s0, start + dur - s0, midi)
                    if "start" in ties:
                        open_ties[midi] = i
                    continue
                notes.append((start, dur, midi))
                if "start" in ties:
                    open_ties[midi] = len(notes) - 1
    return notes, fifths, mode, beats


@lru_cache(maxsize=512)
def _load_chorale(path: str) -> _Chorale | None:
    """A four-voice chorale whose key signature and final bass note agree on a key; else None."""
    parts = [_read_part(p) for p in _musicxml_root(path).findall("part")]
    if len(parts) != 4 or not parts[3][0] or parts[0][1] is None:
        return None
    _, fifths, mode, beats = parts[0]
    final_pc = max(parts[3][0])[2] % 12  # the bass note that starts last
    major_tonic = (7 * fifths) % 12
    if final_pc == major_tonic:
        k = Key(major_tonic, "major")
    elif final_pc == (major_tonic + 9) % 12:
        k = Key(final_pc, "minor")
    else:
        return None  # modal or half-cadence ending: the label would not be certain
    if mode in ("major", "minor") and mode != k.mode:
        return None
    voices = tuple(tuple(sorted(notes)) for notes, *_ in parts)
    return _Chorale(Path(path).stem, k, 3 if beats == 3 else 4, voices)


def chorale_piece(rng: np.random.Generator, key: Key, seconds: float, ensemble: str | None = None,
                  dynamics: str = "medium", style: str = "choral",
                  tempo_range: tuple[float, float] = CHORALE_TEMPO) -> Piece | None:
    """The opening ``seconds`` of a Bach chorale in ``key`` (transposed), or None if none fits.

    Chorales are examined in a seeded order; the first whose key (from its key signature
    and final bass note) has the requested mode is transposed by at most a tritone.
    """
    paths = chorale_paths()
    if not paths:
        return None
    order = rng.permutation(len(paths))[:MAX_CHORALE_TRIES]
    ensemble = ensemble or _pick(rng, tuple(CHORALE_ENSEMBLES))
    programs = CHORALE_ENSEMBLES[ensemble]
    tempo = float(np.round(rng.uniform(*tempo_range)))
    beat = 60.0 / tempo
    for i in order:
        ch = _load_chorale(str(paths[int(i)]))
        if ch is None or ch.key.mode != key.mode:
            continue
        shift = (key.tonic - ch.key.tonic) % 12
        if shift > 6:
            shift -= 12
        tracks = []
        for voice, program, role in zip(ch.voices, programs, _CHORALE_ROLES):
            notes = tuple(Note(off * beat, dur * beat * 0.97, midi + shift, _velocity(rng, dynamics))
                          for off, dur, midi in voice if off * beat < seconds)
            tracks.append(Track(role, program, notes))
        return Piece(tuple(tracks), seconds, key, tempo, ch.beats_per_bar, style, dynamics, f"chorale:{ch.name}")
    return None

