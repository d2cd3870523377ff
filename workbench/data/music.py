"""Moved to :mod:`workbench.data.embedded.music`; this name is the same module object, kept for old imports."""

import sys

from .embedded import music as _moved

sys.modules[__name__] = _moved
