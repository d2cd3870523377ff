"""Task metadata as data (HEAR style): what is predicted, how it is scored, how it is probed.

Each task names the data set folder it reads (``dataset``), the loader that turns
that folder into a manifest, its prediction ``kind``, an ordered ``metrics`` list whose
first entry selects models, and the paper's probe settings (SemiSupCon Table 5).
Class lists that depend on the data (e.g. MTAT's 50 most frequent tags) are filled in
by the loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["KINDS", "ProbeSpec", "Task", "TASKS", "UnknownTaskError", "get_spec", "NSYNTH_FAMILIES",
           "NSYNTH_PITCHES", "KEY_CLASSES"]

KINDS = ("multilabel", "multiclass", "regression", "unlabeled")


class UnknownTaskError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class ProbeSpec:
    """The downstream probe of GUIDE 2.5: ``hidden`` None means linear."""

    hidden: int | None = 512
    dropout: float = 0.1
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Task:
    name: str
    dataset: str
    kind: str
    classes: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    probe: ProbeSpec = field(default_factory=ProbeSpec)
    description: str = ""

    @property
    def num_outputs(self) -> int:
        return len(self.classes)

    def with_classes(self, classes: list[str]) -> "Task":
        return replace(self, classes=list(classes))


NSYNTH_PITCHES = [str(p) for p in range(9, 121)]  # MIDI 9..120 -> 112 classes, in order
NSYNTH_FAMILIES = [
    "bass", "brass", "flute", "guitar", "keyboard", "mallet",
    "organ", "reed", "string", "synth_lead", "vocal",
]
_TONICS = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]
KEY_CLASSES = [f"{t} major" for t in _TONICS] + [f"{t} minor" for t in _TONICS]

_TAG = ["roc_auc", "average_precision"]
_CLS = ["accuracy"]

TASKS: dict[str, Task] = {t.name: t for t in [
    Task("nsynth_pitch", "nsynth", "multiclass", NSYNTH_PITCHES, ["accuracy", "chroma_accuracy"],
         ProbeSpec(512, 0.0), "NSynth note pitch, MIDI 9-120"),
    Task("nsynth_instrument", "nsynth", "multiclass", NSYNTH_FAMILIES, _CLS,
         ProbeSpec(512, 0.1), "NSynth instrument family"),
    Task("giantsteps_key", "giantsteps", "multiclass", KEY_CLASSES, ["weighted_score", "accuracy"],
         ProbeSpec(None, 0.2), "global key, 24 classes, enharmonics folded"),
    Task("mtat_top50", "mtat", "multilabel", [], _TAG, ProbeSpec(512, 0.1),
         "MagnaTagATune, 50 most frequent tags"),
    Task("mtat_all", "mtat", "multilabel", [], _TAG, ProbeSpec(512, 0.1), "MagnaTagATune, all 188 tags"),
    Task("mtg_top50", "mtg_jamendo", "multilabel", [], _TAG, ProbeSpec(512, 0.1), "MTG-Jamendo top 50"),
    Task("mtg_genre", "mtg_jamendo", "multilabel", [], _TAG, ProbeSpec(512, 0.1), "MTG-Jamendo genre"),
    Task("mtg_mood", "mtg_jamendo", "multilabel", [], _TAG, ProbeSpec(512, 0.1), "MTG-Jamendo mood/theme"),
    Task("mtg_instrument", "mtg_jamendo", "multilabel", [], _TAG, ProbeSpec(512, 0.1),
         "MTG-Jamendo instrument"),
    Task("gtzan_genre", "gtzan", "multiclass", [], _CLS, ProbeSpec(512, 0.1),
         "GTZAN genre, fault-filtered split"),
    Task("vocalset_singer", "vocalset", "multiclass", [], _CLS, ProbeSpec(None, 0.2), "VocalSet singer"),
    Task("vocalset_technique", "vocalset", "multiclass", [], _CLS, ProbeSpec(None, 0.2),
         "VocalSet technique, singer-disjoint test"),
    Task("medleydb_instrument", "medleydb", "multiclass", [], _CLS, ProbeSpec(None, 0.2),
         "MedleyDB stem instrument, top 20"),
    Task("emomusic", "emomusic", "regression", [], ["r2", "r2_arousal", "r2_valence"],
         ProbeSpec(None, 0.1), "EmoMusic static arousal and valence"),
    Task("fma_medium", "fma_medium", "unlabeled", [], [], ProbeSpec(), "FMA medium, unlabeled pool"),
    Task("fma_genre", "fma_medium", "multiclass", [], _CLS, ProbeSpec(512, 0.1), "FMA top genre (16)"),
    Task("folder", "folder", "unlabeled", [], [], ProbeSpec(), "any directory of audio files"),
]}


def get_spec(name: str) -> Task:
    """The static task description; raises a clear error for unknown names."""
    if not isinstance(name, str) or name not in TASKS:
        import difflib

        close = difflib.get_close_matches(str(name), TASKS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownTaskError(
            f"unknown task {name!r}.{hint} Known tasks: {', '.join(sorted(TASKS))}."
        )
    return TASKS[name]
