"""The synthesiser: General MIDI SoundFonts rendered offline by FluidSynth (pyfluidsynth).

- :func:`find_soundfont` looks a SoundFont up by name (:data:`SOUNDFONTS`) in
  ``$WORKBENCH_SOUNDFONTS`` and a list of known system locations.
- :class:`Synthesiser` renders isolated notes (:meth:`Synthesiser.note`) and multi-track
  pieces (:meth:`Synthesiser.tracks`) to mono float32 at a given sample rate.

Determinism: reverb and chorus are off (their state would carry from item to item), audio
is read as float (no dither), and every render starts from a hard reset (all voices
killed, not merely released).  A synthesiser's output is then a function of the calls
made on it; it is not quite independent of what it rendered before (the first notes of a
fresh FluidSynth differ from later ones by about -40 dB), so create one per *fixed* batch
of items and the output never depends on scheduling.  Never create a synthesiser at
import time or before forking: a pyfluidsynth synth that exists when a process forks
deadlocks the child.  Render in processes started with the ``spawn`` method.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = ["SOUNDFONTS", "SOUNDFONT_ENV", "SoundFont", "SoundFontError", "Synthesiser", "find_soundfont",
           "soundfont_info", "sha256"]

SOUNDFONT_ENV = "WORKBENCH_SOUNDFONTS"  # a folder searched before the system locations
INSTALL_HINT = ("install them with `sudo apt-get install fluid-soundfont-gm minuet-data` (or run `make demo`, "
                f"which does), or put the .sf2 files in a folder named by ${SOUNDFONT_ENV}")
# Name -> file name patterns (first match wins).
SOUNDFONTS: dict[str, tuple[str, ...]] = {
    "FluidR3_GM": ("FluidR3_GM.sf2",),
    "GeneralUser": ("GeneralUser-v1.47.sf2", "GeneralUser*.sf2", "GeneralUser GS*.sf2"),
    "TimGM6mb": ("TimGM6mb.sf2",),
}
# Relative share/ folders (under /usr, /usr/local, the Python prefix, Homebrew) holding SoundFonts.
_SHARE_SUBDIRS = ("sounds/sf2", "soundfonts", "sounds/sf3", "minuet/soundfonts")
_PREFIXES = ("/usr/share", "/usr/local/share", "/opt/homebrew/share")
# The pretty_midi wheel ships TimGM6mb.sf2 inside its package folder.
_PACKAGES_WITH_SOUNDFONTS = ("pretty_midi",)

MIDI_CHANNELS = 16
DRUM_CHANNEL = 9  # MIDI channel 10
DRUM_BANK = 128
MELODIC_BANK = 0
DEFAULT_GAIN = 0.5
# FluidSynth renders in blocks of this many frames; calls are kept whole blocks where it matters.
FLUID_BLOCK = 64


class SoundFontError(FileNotFoundError):
    """A SoundFont that cannot be found or loaded, with the fix in the message."""


def _search_dirs() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get(SOUNDFONT_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    prefixes = [Path(sys.prefix) / "share", *(Path(p) for p in _PREFIXES)]
    conda = os.environ.get("CONDA_PREFIX")
    if conda:
        prefixes.insert(0, Path(conda) / "share")
    for prefix in prefixes:
        dirs += [prefix / sub for sub in _SHARE_SUBDIRS]
    for pkg in _PACKAGES_WITH_SOUNDFONTS:
        spec = importlib.util.find_spec(pkg)
        if spec is not None and spec.submodule_search_locations:
            dirs += [Path(p) for p in spec.submodule_search_locations]
    return dirs


def find_soundfont(name: str) -> Path:
    """Path of SoundFont ``name`` (a key of :data:`SOUNDFONTS`); SoundFontError if missing."""
    if name not in SOUNDFONTS:
        raise ValueError(f"unknown SoundFont {name!r}; known: {', '.join(SOUNDFONTS)}")
    dirs = _search_dirs()
    for d in dirs:
        if not d.is_dir():
            continue
        for pattern in SOUNDFONTS[name]:
            hits = sorted(d.glob(pattern))
            if hits:
                return hits[0].resolve()
    raise SoundFontError(
        f"SoundFont {name} ({SOUNDFONTS[name][0]}) not found in {', '.join(str(d) for d in dirs)}; {INSTALL_HINT}."
    )


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class SoundFont:
    name: str
    path: Path
    sha256: str
    bytes: int

    def to_dict(self) -> dict:
        return {"file": self.path.name, "path": str(self.path), "sha256": self.sha256, "bytes": self.bytes}


def soundfont_info(name: str) -> SoundFont:
    """Name, path, checksum and size of a SoundFont (found with :func:`find_soundfont`)."""
    path = find_soundfont(name)
    return SoundFont(name, path, sha256(path), path.stat().st_size)


class Synthesiser:
    """An offline FluidSynth instance; use as a context manager (``with Synthesiser(sr) as s:``).

    sample_rate: output rate in Hz.  gain: FluidSynth's master gain (float output is not
    clipped, so mixes keep their headroom).
    """

    def __init__(self, sample_rate: int, gain: float = DEFAULT_GAIN):
        try:
            import fluidsynth
        except ImportError as exc:  # the binding or the shared library is missing
            raise ImportError(
                f"pyfluidsynth could not load FluidSynth ({exc}); install the library with "
                "`sudo apt-get install libfluidsynth3` (or run `make demo`) and the binding with "
                "`pip install pyfluidsynth`."
            ) from exc
        self.sample_rate = int(sample_rate)
        self._fs = fluidsynth.Synth(gain=float(gain), samplerate=float(self.sample_rate), channels=MIDI_CHANNELS)
        for option, value in (("synth.reverb.active", 0), ("synth.chorus.active", 0),
                              ("synth.dynamic-sample-loading", 1), ("synth.cpu-cores", 1)):
            self._fs.setting(option, value)
        lib = ctypes.CDLL(fluidsynth.lib)
        self._write_float = lib.fluid_synth_write_float
        self._write_float.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                      ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self._write_float.restype = ctypes.c_int
        self._sfids: dict[str, int] = {}

    # -- lifecycle
    def close(self) -> None:
        if self._fs is not None:
            self._fs.delete()
            self._fs = None

    def __enter__(self) -> "Synthesiser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- SoundFonts and programs
    def load(self, path: str | Path) -> int:
        """Load a SoundFont once; returns its FluidSynth id."""
        key = str(path)
        if key not in self._sfids:
            if not Path(key).is_file():
                raise SoundFontError(f"SoundFont {key} does not exist; {INSTALL_HINT}.")
            sfid = self._fs.sfload(key)
            if sfid < 0:
                raise SoundFontError(f"FluidSynth could not load {key} (corrupt or not a SoundFont 2 file).")
            self._sfids[key] = sfid
        return self._sfids[key]

    def has_preset(self, soundfont: str | Path, bank: int, preset: int) -> bool:
        return bool(self._fs.sfpreset_name(self.load(soundfont), bank, preset))

    def _select(self, channel: int, soundfont: str | Path, program: int, drums: bool) -> bool:
        sfid = self.load(soundfont)
        bank = DRUM_BANK if drums else MELODIC_BANK
        if drums and not self._fs.sfpreset_name(sfid, bank, program):
            program = 0  # kit missing in this SoundFont: the standard kit
        if not self._fs.sfpreset_name(sfid, bank, program):
            return False
        return self._fs.program_select(channel, sfid, bank, program) == 0

    def _render_into(self, left: np.ndarray, right: np.ndarray, start: int, stop: int) -> None:
        if stop > start:
            self._write_float(self._fs.synth, stop - start, left.ctypes.data, start, 1, right.ctypes.data, start, 1)

    def _reset(self) -> None:
        """Reset all channels and silence every voice at once.

        system_reset alone only releases the voices (cymbals and pads ring on into the next
        item); all_sounds_off kills them, and must come after system_reset, whose note-offs
        would otherwise turn the killed voices back into releasing ones.
        """
        self._fs.system_reset()
        for channel in range(MIDI_CHANNELS):
            self._fs.all_sounds_off(channel)

    # -- rendering
    def note(self, soundfont: str | Path, program: int, pitch: int, velocity: int, hold: float,
             duration: float) -> np.ndarray | None:
        """One note held ``hold`` s then released, ``duration`` s in all; None if the program is missing."""
        self._reset()
        if not self._select(0, soundfont, program, drums=False):
            return None
        n_total = int(round(duration * self.sample_rate))
        n_hold = min(int(round(hold * self.sample_rate)), n_total)
        left = np.zeros(n_total, np.float32)
        right = np.zeros(n_total, np.float32)
        self._fs.noteon(0, int(pitch), int(velocity))
        self._render_into(left, right, 0, n_hold)
        self._fs.noteoff(0, int(pitch))
        self._render_into(left, right, n_hold, n_total)
        return (left + right) * np.float32(0.5)

    def tracks(self, soundfont: str | Path, tracks: Iterable, num_samples: int) -> np.ndarray:
        """Mono mix of ``tracks`` (objects with ``program``, ``drums`` and ``notes`` of
        ``start``/``duration``/``pitch``/``velocity`` in seconds), ``num_samples`` long.

        Each melodic track gets its own MIDI channel; drum tracks play on channel 10 from
        bank 128 (a kit missing in the SoundFont falls back to the standard kit).
        """
        self._reset()
        channels = [c for c in range(16) if c != DRUM_CHANNEL]
        events: list[tuple[int, int, int, int, int]] = []  # (sample, on?, channel, pitch, velocity)
        for track in tracks:
            if not track.notes:
                continue
            if track.drums:
                channel = DRUM_CHANNEL
            else:
                if not channels:
                    raise ValueError("more than 15 melodic tracks in one piece; merge some tracks")
                channel = channels.pop(0)
            if not self._select(channel, soundfont, track.program, track.drums):
                raise ValueError(f"program {track.program} (drums={track.drums}) is missing in {soundfont}")
            for n in track.notes:
                on = int(round(n.start * self.sample_rate))
                if on >= num_samples or not 0 < n.velocity <= 127:
                    continue
                off = min(int(round((n.start + n.duration) * self.sample_rate)), num_samples)
                events.append((on, 1, channel, int(n.pitch), int(n.velocity)))
                if not track.drums:
                    events.append((max(off, on + 1), 0, channel, int(n.pitch), 0))
        events.sort(key=lambda e: (e[0], e[1], e[2], e[3], e[4]))  # note-offs before note-ons at one instant
        left = np.zeros(num_samples, np.float32)
        right = np.zeros(num_samples, np.float32)
        pos = 0
        for sample, on, channel, pitch, velocity in events:
            sample = min(sample, num_samples)
            self._render_into(left, right, pos, sample)
            pos = max(pos, sample)
            if on:
                self._fs.noteon(channel, pitch, velocity)
            else:
                self._fs.noteoff(channel, pitch)
        self._render_into(left, right, pos, num_samples)
        return (left + right) * np.float32(0.5)
