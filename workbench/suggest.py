"""The one "did you mean" of the package: close matches for a misspelt name.

>>> did_you_mean("nsynth_pich", ["nsynth_pitch", "mtat_top50"])
' (did you mean nsynth_pitch?)'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean", "close_matches", "name_hints"]


def close_matches(value: object, known: Iterable[object], n: int = 3) -> list[str]:
    """Up to ``n`` known names close to ``value`` (difflib's ratio, cutoff 0.6)."""
    return difflib.get_close_matches(str(value), [str(k) for k in known], n=n)


def did_you_mean(value: object, known: Iterable[object], n: int = 3, sep: str = ", ") -> str:
    """``" (did you mean a, b?)"`` for the close matches of ``value``, or ``""``."""
    close = close_matches(value, known, n)
    return f" (did you mean {sep.join(close)}?)" if close else ""


def name_hints(names: Iterable[str], known: Iterable[str]) -> str:
    """``"a (did you mean b?), c"``: unknown names, each with its closest known name."""
    known = list(known)
    return ", ".join(f"{u}{did_you_mean(u, known, n=1)}" for u in names)
