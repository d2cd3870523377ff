"""The verdict rule of the claims report: pure functions of per-seed values, no I/O.

A claim has one or more *parts*. A part names a metric, an expectation ``expect`` and its
conditions, each ``{"label", "x", "values"}`` with one value per pretraining seed:

``greater`` / ``less``
    exactly two conditions; the second is compared with the first by a one-sided Welch
    t-test on the per-seed values (``greater``: H1 mean(second) > mean(first)).
``increasing`` / ``decreasing``
    two or more conditions with numeric ``x``; Spearman's ρ over every (x, value) pair,
    one-sided in the expected direction.
``none``
    no difference / no trend expected: two conditions → two-sided Welch t-test; more (with
    numeric ``x``) → two-sided Spearman test. A part may name one side (``side="less"``:
    only a drop of the second condition counts, as in "costs little"): then the Welch test
    is one-sided in that direction.

A part **holds** when p < :data:`ALPHA` in the expected direction, **fails** when p < ALPHA
the other way (for the one-sided tests: the one-sided test in the opposite direction), and
is **inconclusive** otherwise. For ``none``: holds when p ≥ ALPHA, fails when p < ALPHA.
A part whose test is undefined (fewer than two values in a condition for Welch, fewer than
three pairs or no variation for Spearman, p not a number) is inconclusive and says why.
Zero variance in both conditions is decided exactly: equal means give t = 0 (one-sided
p = 0.5, two-sided p = 1), different means give t = ±inf (p = 0 in the direction of the
difference, 1 against it).

A claim combines its parts (:func:`claim_verdict`): **pending** while any part lacks its
values, else **fails** if any part fails, else **holds** if every part holds, else
**inconclusive**.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["ALPHA", "EXPECTS", "VERDICTS", "RULE", "welch", "spearman", "part_verdict", "claim_verdict"]

#: Significance level of every test.
ALPHA = 0.05
EXPECTS = ("greater", "less", "increasing", "decreasing", "none")
#: Part and claim verdicts; ``pending`` only while values are missing.
VERDICTS = ("holds", "fails", "inconclusive", "pending")
#: The rule in words, written into ``claims.json``.
RULE = (
    f"Each part compares per-pretraining-seed values. expect 'greater'/'less': two conditions, the second "
    f"compared with the first by a one-sided Welch t-test; 'increasing'/'decreasing': Spearman's rho over every "
    f"(x, value) pair, one-sided; 'none': two-sided Welch (two conditions; one-sided where the part names a side, "
    f"e.g. 'a drop only') or two-sided Spearman (more). A part "
    f"holds when p < {ALPHA} in the expected direction, fails when p < {ALPHA} the other way, is inconclusive "
    f"otherwise; for 'none' it holds when p >= {ALPHA} and fails when p < {ALPHA}. An undefined test (n < 2 in "
    f"a condition, < 3 pairs, no variation) is inconclusive. A claim is pending while any part lacks values, "
    f"else fails if any part fails, holds if every part holds, and is inconclusive otherwise."
)


def _values(v: Sequence[float]) -> np.ndarray:
    arr = np.asarray([float(x) for x in v], dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"per-seed values must be finite numbers, got {list(v)!r}")
    return arr


def welch(first: Sequence[float], second: Sequence[float], alternative: str = "greater") -> tuple[float, float]:
    """Welch's t statistic of ``second`` against ``first`` and its p-value.

    alternative: ``"greater"`` (H1: mean(second) > mean(first)), ``"less"`` or
    ``"two-sided"``. Returns ``(t, p)``; ``(nan, nan)`` when a condition has fewer than
    two values. Zero variance in both conditions is decided exactly (module docstring).
    """
    from scipy import stats

    a, b = _values(first), _values(second)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    if alternative not in ("greater", "less", "two-sided"):
        raise ValueError(f"alternative must be 'greater', 'less' or 'two-sided', got {alternative!r}")
    if a.var(ddof=1) == 0 and b.var(ddof=1) == 0:
        diff = b.mean() - a.mean()
        if diff == 0:
            return 0.0, (1.0 if alternative == "two-sided" else 0.5)
        t = math.copysign(math.inf, diff)
        if alternative == "two-sided":
            return t, 0.0
        return t, 0.0 if (diff > 0) == (alternative == "greater") else 1.0
    res = stats.ttest_ind(b, a, equal_var=False, alternative=alternative)
    return float(res.statistic), float(res.pvalue)


def spearman(x: Sequence[float], y: Sequence[float], alternative: str = "greater") -> tuple[float, float]:
    """Spearman's ρ of the pairs (x, y) and its p-value (scipy's t approximation; ties get
    average ranks). ``(nan, nan)`` with fewer than three pairs or without variation in x or y."""
    from scipy import stats

    xs, ys = _values(x), _values(y)
    if len(xs) != len(ys):
        raise ValueError(f"spearman: {len(xs)} x values for {len(ys)} y values")
    if len(xs) < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return math.nan, math.nan
    res = stats.spearmanr(xs, ys, alternative=alternative)
    return float(res.statistic), float(res.pvalue)


def _direction(expect: str) -> str:
    return {"greater": "greater", "increasing": "greater", "less": "less", "decreasing": "less"}[expect]


def _opposite(direction: str) -> str:
    return "less" if direction == "greater" else "greater"


def part_verdict(expect: str, conditions: Sequence[dict], alpha: float = ALPHA, side: str | None = None) -> dict:
    """Test one part: ``{"test", "statistic", "p_value", "verdict", "note"}``.

    conditions: ``[{"label", "x", "values": [...]}, …]`` in the order the expectation reads
    them (for greater/less: the reference first). A condition with no values makes the part
    ``pending``. ``p_value`` is the p of the test in the expected direction (two-sided for
    ``none``); a part fails on the one-sided test in the opposite direction.
    side: for ``none`` with two conditions, ``"less"`` or ``"greater"`` tests only that
    direction of the second against the first (default: two-sided).
    """
    if side not in (None, "less", "greater"):
        raise ValueError(f"side must be None, 'less' or 'greater', got {side!r}")
    if expect not in EXPECTS:
        raise ValueError(f"expect must be one of {EXPECTS}, got {expect!r}")
    conditions = list(conditions)
    if any(not c.get("values") for c in conditions):
        missing = [str(c.get("label")) for c in conditions if not c.get("values")]
        return {"test": None, "statistic": None, "p_value": None, "verdict": "pending",
                "note": f"no values yet for {', '.join(missing)}"}
    pairwise = expect in ("greater", "less") or (expect == "none" and len(conditions) == 2)
    if pairwise:
        if len(conditions) != 2:
            raise ValueError(f"expect={expect!r} compares exactly two conditions, got {len(conditions)}")
        test_fn, args, name = welch, (conditions[0]["values"], conditions[1]["values"]), "welch_t"
        why = "fewer than two values in a condition"
    else:
        if len(conditions) < 2:
            raise ValueError(f"expect={expect!r} needs at least two conditions with numeric x")
        xs, ys = [], []
        for c in conditions:
            if c.get("x") is None or isinstance(c["x"], (list, tuple, str)):
                raise ValueError(f"expect={expect!r} needs a numeric x per condition; {c.get('label')!r} has "
                                 f"x={c.get('x')!r}")
            xs += [float(c["x"])] * len(c["values"])
            ys += [float(v) for v in c["values"]]
        test_fn, args, name = spearman, (xs, ys), "spearman"
        why = "fewer than three (x, value) pairs or no variation"
    if expect == "none":  # no trend expected: two-sided, or the one side a pairwise part names
        sided = side if pairwise else None
        stat, p = test_fn(*args, sided or "two-sided")
        test, p_other = (f"{name}_two_sided" if sided is None else f"{name}_one_sided_{sided}"), None
    else:
        d = _direction(expect)
        stat, p = test_fn(*args, d)
        _, p_other = test_fn(*args, _opposite(d))
        test = f"{name}_one_sided"
    out = {"test": test, "statistic": None if math.isnan(stat) else stat,
           "p_value": None if math.isnan(p) else p, "verdict": "inconclusive", "note": ""}
    if math.isnan(p):
        out["note"] = f"test undefined: {why}"
        return out
    if expect == "none":
        out["verdict"] = "holds" if p >= alpha else "fails"
    elif p < alpha:
        out["verdict"] = "holds"
    elif p_other is not None and not math.isnan(p_other) and p_other < alpha:
        out["verdict"] = "fails"
    return out


def claim_verdict(part_verdicts: Sequence[str]) -> str:
    """Combine part verdicts: pending > fails > holds (all) > inconclusive."""
    verdicts = list(part_verdicts)
    if not verdicts:
        return "pending"
    unknown = [v for v in verdicts if v not in VERDICTS]
    if unknown:
        raise ValueError(f"unknown part verdict(s) {unknown}; expected {VERDICTS}")
    if "pending" in verdicts:
        return "pending"
    if "fails" in verdicts:
        return "fails"
    if all(v == "holds" for v in verdicts):
        return "holds"
    return "inconclusive"
