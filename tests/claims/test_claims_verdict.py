"""The claims verdict rule on hand-made values, p-values computed independently here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from workbench.claims.verdict import ALPHA, claim_verdict, part_verdict, spearman, welch


def _t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with df degrees of freedom, via the regularised incomplete beta."""
    x = df / (df + t * t)
    tail = 0.5 * special.betainc(df / 2, 0.5, x)
    return tail if t >= 0 else 1 - tail


def _welch_by_hand(a, b):
    """Welch's t of b against a and the Welch–Satterthwaite degrees of freedom, written out."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (b.mean() - a.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return t, df


def _cond(label, values, x=None):
    return {"label": label, "x": x, "values": list(values)}


def test_welch_matches_the_formula_written_out():
    a, b = [0.61, 0.63, 0.60], [0.70, 0.66, 0.73, 0.69]
    t, df = _welch_by_hand(a, b)
    stat, p = welch(a, b, "greater")
    assert stat == pytest.approx(t, rel=1e-10)
    assert p == pytest.approx(_t_sf(t, df), rel=1e-8)
    _, p_less = welch(a, b, "less")
    assert p_less == pytest.approx(1 - _t_sf(t, df), rel=1e-8)
    _, p_two = welch(a, b, "two-sided")
    assert p_two == pytest.approx(2 * min(_t_sf(t, df), 1 - _t_sf(t, df)), rel=1e-8)


def test_greater_holds_fails_and_is_inconclusive():
    low, high = [0.50, 0.52, 0.51], [0.60, 0.62, 0.61]
    assert part_verdict("greater", [_cond("a", low), _cond("b", high)])["verdict"] == "holds"
    # the other way round: significant in the opposite direction -> fails
    out = part_verdict("greater", [_cond("a", high), _cond("b", low)])
    assert out["verdict"] == "fails"
    assert out["p_value"] > 1 - ALPHA  # p of the expected direction
    # overlapping values -> inconclusive
    assert part_verdict("greater", [_cond("a", [0.5, 0.6, 0.55]), _cond("b", [0.52, 0.61, 0.56])])["verdict"] \
        == "inconclusive"
    # less mirrors greater
    assert part_verdict("less", [_cond("a", high), _cond("b", low)])["verdict"] == "holds"
    assert part_verdict("less", [_cond("a", low), _cond("b", high)])["verdict"] == "fails"


def test_one_value_per_condition_is_inconclusive_not_an_error():
    out = part_verdict("greater", [_cond("a", [0.5]), _cond("b", [0.9])])
    assert out["verdict"] == "inconclusive" and out["p_value"] is None and "fewer than two" in out["note"]
    assert math.isnan(welch([0.5], [0.9, 0.8])[1])


def test_zero_variance_is_decided_exactly():
    assert welch([0.5, 0.5], [0.5, 0.5], "greater") == (0.0, 0.5)
    assert welch([0.5, 0.5], [0.5, 0.5], "two-sided") == (0.0, 1.0)
    assert welch([0.5, 0.5], [0.7, 0.7], "greater") == (math.inf, 0.0)
    assert welch([0.5, 0.5], [0.7, 0.7], "less") == (math.inf, 1.0)
    assert part_verdict("greater", [_cond("a", [0.5, 0.5]), _cond("b", [0.7, 0.7])])["verdict"] == "holds"
    assert part_verdict("less", [_cond("a", [0.5, 0.5]), _cond("b", [0.7, 0.7])])["verdict"] == "fails"
    assert part_verdict("none", [_cond("a", [0.5, 0.5]), _cond("b", [0.5, 0.5])])["verdict"] == "holds"
    # one condition constant, the other not: the ordinary Welch formula applies
    t, df = _welch_by_hand([0.5, 0.5, 0.5], [0.6, 0.7, 0.65])
    stat, p = welch([0.5, 0.5, 0.5], [0.6, 0.7, 0.65])
    assert stat == pytest.approx(t) and p == pytest.approx(_t_sf(t, df), rel=1e-8)


def _spearman_by_hand(x, y):
    """Spearman's rho as Pearson's r of average ranks, its t statistic and n - 2 dof."""
    def ranks(v):
        v = np.asarray(v, float)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(1, len(v) + 1)
        for value in np.unique(v):  # ties: average rank
            r[v == value] = r[v == value].mean()
        return r
    rx, ry = ranks(x), ranks(y)
    rho = np.corrcoef(rx, ry)[0, 1]
    n = len(x)
    t = rho * math.sqrt((n - 2) / (1 - rho ** 2))
    return rho, t, n - 2


def test_spearman_matches_ranks_written_out_with_ties():
    x = [0.0, 0.0, 0.1, 0.1, 0.25, 0.25, 0.5, 0.5]  # every x twice (two seeds): ties in x
    y = [0.80, 0.81, 0.81, 0.83, 0.82, 0.84, 0.86, 0.85]  # a tie in y too
    rho, t, df = _spearman_by_hand(x, y)
    stat, p = spearman(x, y, "greater")
    assert stat == pytest.approx(rho, rel=1e-10)
    assert p == pytest.approx(_t_sf(t, df), rel=1e-8)
    conds = [_cond(f"x={xv}", [y[i] for i in range(len(x)) if x[i] == xv], xv) for xv in (0.0, 0.1, 0.25, 0.5)]
    out = part_verdict("increasing", conds)
    assert out["test"] == "spearman_one_sided" and out["verdict"] == "holds"
    assert out["statistic"] == pytest.approx(rho)
    assert part_verdict("decreasing", conds)["verdict"] == "fails"


def test_spearman_undefined_cases():
    assert math.isnan(spearman([1, 2], [0.1, 0.2])[1])  # fewer than three pairs
    assert math.isnan(spearman([1, 1, 1], [0.1, 0.2, 0.3])[1])  # no variation in x
    out = part_verdict("increasing", [_cond("a", [0.5, 0.5], 1), _cond("b", [0.5, 0.5], 2)])
    assert out["verdict"] == "inconclusive" and "no variation" in out["note"]


def test_none_expectation():
    flat = [_cond(f"p={p}", v, p) for p, v in ((0.05, [0.80, 0.83]), (0.25, [0.82, 0.80]), (0.5, [0.81, 0.82]))]
    out = part_verdict("none", flat)
    assert out["test"] == "spearman_two_sided" and out["p_value"] >= ALPHA and out["verdict"] == "holds"
    trend = [_cond(f"p={p}", v, p) for p, v in ((0.05, [0.70, 0.71]), (0.25, [0.75, 0.76]), (0.5, [0.80, 0.81]),
                                                (0.75, [0.85, 0.86]))]
    assert part_verdict("none", trend)["verdict"] == "fails"
    # two conditions: two-sided Welch
    ssl, worse, better = [0.80, 0.81, 0.82], [0.70, 0.71, 0.72], [0.90, 0.91, 0.92]
    out = part_verdict("none", [_cond("ssl", ssl), _cond("support", worse)])
    assert out["test"] == "welch_t_two_sided" and out["verdict"] == "fails"
    assert part_verdict("none", [_cond("ssl", ssl), _cond("support", better)])["verdict"] == "fails"
    # one side named ("costs little": only a drop counts): a gain holds, a drop fails
    out = part_verdict("none", [_cond("ssl", ssl), _cond("support", better)], side="less")
    assert out["test"] == "welch_t_one_sided_less" and out["verdict"] == "holds"
    assert out["p_value"] == pytest.approx(welch(ssl, better, "less")[1])
    assert part_verdict("none", [_cond("ssl", ssl), _cond("support", worse)], side="less")["verdict"] == "fails"


def test_missing_values_make_a_part_pending_and_bad_input_is_refused():
    assert part_verdict("greater", [_cond("a", [0.5, 0.6]), _cond("b", [])])["verdict"] == "pending"
    with pytest.raises(ValueError, match="expect must be one of"):
        part_verdict("bigger", [_cond("a", [1, 2]), _cond("b", [1, 2])])
    with pytest.raises(ValueError, match="exactly two"):
        part_verdict("greater", [_cond("a", [1, 2]), _cond("b", [1, 2]), _cond("c", [1, 2])])
    with pytest.raises(ValueError, match="numeric x"):
        part_verdict("increasing", [_cond("a", [1, 2]), _cond("b", [1, 2])])
    with pytest.raises(ValueError, match="finite"):
        welch([0.5, float("nan")], [0.5, 0.6])


def test_claim_combination():
    assert claim_verdict(["holds", "holds"]) == "holds"
    assert claim_verdict(["holds", "inconclusive"]) == "inconclusive"
    assert claim_verdict(["holds", "fails", "inconclusive"]) == "fails"
    assert claim_verdict(["fails", "pending"]) == "pending"  # unfinished cells: no verdict yet
    assert claim_verdict([]) == "pending"
    with pytest.raises(ValueError):
        claim_verdict(["maybe"])
