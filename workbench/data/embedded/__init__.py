"""The embedded benchmark: a labelled music benchmark rendered from MIDI, deterministic from a seed.

Real music audio cannot ship with the workbench, so it renders its own: General MIDI
SoundFonts played by FluidSynth (:mod:`.synth`) from seeded musical material
(:mod:`.music`: Bach chorales from the music21 corpus transposed to every key, generated
progressions with bass lines, melodies and GM drum patterns).  Each stand-in data set is
one module written in the on-disk layout of the real data set it stands in for, so the
same loaders read both: :mod:`.nsynth`, :mod:`.giantsteps`, :mod:`.mtat`,
:mod:`.fma_medium`.  :mod:`.runner` renders them all into one tree with a
``SYNTHETIC.json`` (generator version and each data set's version, seed, SoundFonts
with sha256, counts);
:mod:`.scales` holds the sizes, :mod:`.items` the seeding and audio writing.

Labels are true by construction (each module says how).  SoundFonts: train and valid
splits (and the unlabeled pool) use FluidR3_GM and GeneralUser GS; every test split uses
TimGM6mb, a sample set never heard in training.  Everything is rendered at
:data:`RENDER_SAMPLE_RATE` mono; loaders resample.

This package imports nothing above it in :mod:`workbench.data` but the task tables:
root resolution (:mod:`workbench.data.roots`) calls it, never the other way round.
CLI: ``python -m workbench data render`` (:mod:`workbench.data.render`).
"""

from .items import RENDER_SAMPLE_RATE, TEST_SOUNDFONTS, TRAIN_SOUNDFONTS, Item
from .runner import (DATASET_VERSIONS, EMBEDDED_DATASETS, GENERATOR_VERSION, MARKER, STAND_INS, ensure_rendered,
                     folder_name, format_summary, render, rendered_datasets)
from .scales import SCALES, Scale

__all__ = ["DATASET_VERSIONS", "EMBEDDED_DATASETS", "GENERATOR_VERSION", "MARKER", "RENDER_SAMPLE_RATE", "SCALES",
           "STAND_INS", "Scale", "TEST_SOUNDFONTS", "TRAIN_SOUNDFONTS", "Item", "ensure_rendered", "folder_name",
           "format_summary", "render", "rendered_datasets"]
