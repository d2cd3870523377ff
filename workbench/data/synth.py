"""Moved to :mod:`workbench.data.embedded.synth`; this name is the same module object, kept for old imports."""

import sys

from .embedded import synth as _moved

sys.modules[__name__] = _moved
