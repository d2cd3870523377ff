"""Sizes of the embedded benchmark: :data:`SCALES` (``tiny`` for tests, ``demo`` the default, ``full``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..tasks import NSYNTH_PITCHES
from . import music

__all__ = ["Scale", "SCALES"]


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
    gtzan_clips: tuple[int, int, int] = (2, 1, 1)  # clips per genre in train / valid / test
    gtzan_seconds: float = 4.0
    emomusic_songs: int = 24
    emomusic_seconds: float = 5.0
    mtg_tracks: int = 24
    mtg_seconds: float = 5.0
    medleydb_tracks: int = 8
    medleydb_seconds: float = 4.0

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
                  key_seconds=5.0, mtat_clips=48, mtat_seconds=4.0, fma_pieces=4, fma_seconds=5.0),
    # the default everywhere: minutes on a 2-core laptop
    "demo": Scale("demo", 36, 40, 20, (50, 100), (75,), (50, 100), key_train_valid=480, key_awkward=8,
                  key_test=120, key_seconds=8.0, mtat_clips=400, mtat_seconds=10.0, fma_pieces=200,
                  fma_seconds=15.0, gtzan_clips=(20, 5, 10), gtzan_seconds=8.0, emomusic_songs=240,
                  emomusic_seconds=8.0, mtg_tracks=300, mtg_seconds=8.0, medleydb_tracks=60, medleydb_seconds=8.0),
    # larger (not run in tests)
    "full": Scale("full", 24, 84, len(music.NSYNTH_PROGRAMS), (25, 50, 100, 127), (75,), (25, 75, 127),
                  key_train_valid=960, key_awkward=30, key_test=240, key_seconds=30.0, mtat_clips=3200,
                  mtat_seconds=29.0, fma_pieces=2000, fma_seconds=30.0, workers=None, gtzan_clips=(40, 13, 26),
                  gtzan_seconds=30.0, emomusic_songs=744, emomusic_seconds=45.0, mtg_tracks=2000, mtg_seconds=30.0,
                  medleydb_tracks=120, medleydb_seconds=30.0),
}
