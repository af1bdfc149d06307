"""The LP upper bound on Bayesian-IC revenue (benchmarks/frontier_bound.py): true auctions are
feasible in it and its objective over-estimates their revenue; infeasible or non-IC reduced forms
are caught; the bounds sit where they must."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("frontier_bound", ROOT / "benchmarks" / "frontier_bound.py")
fb = importlib.util.module_from_spec(spec)
assert spec.loader is not None
spec.loader.exec_module(fb)

BUNDLE = (4 - math.sqrt(2)) / 3


def embed(g, mechanism) -> np.ndarray:
    """x (U, q1, q2 at the grid types) of a reduced form given as v -> (U, q1, q2)."""
    pts = np.stack([g.aa.ravel(), g.bb.ravel()], 1) * g.h
    vals = np.array([mechanism(v) for v in pts])
    return np.concatenate([vals[:, 0], vals[:, 1], vals[:, 2]])


def manelli_vincent(v):
    """The optimal one-bidder menu: each item at 2/3, the bundle at (4 - sqrt 2)/3."""
    options = [(0.0, 0.0, 0.0), (v[0] - 2 / 3, 1.0, 0.0), (v[1] - 2 / 3, 0.0, 1.0), (v[0] + v[1] - BUNDLE, 1.0, 1.0)]
    return max(options, key=lambda o: o[0])


def itemwise_myerson(v):
    """Interim reduced form of second price with reserve 1/2 per item, two bidders."""
    u = sum((x * x - 0.25) / 2 for x in v if x >= 0.5)
    return (u, *(x if x >= 0.5 else 0.0 for x in v))


def posted_prices(v, p=0.5):
    """Each item at price p to whoever wants it, ties broken by a coin: q_j = (1 + p)/2 above p."""
    c = (1 + p) / 2
    return (sum(max(x - p, 0.0) * c for x in v), *(c if x >= p else 0.0 for x in v))


def _sum_cdf(s):  # CDF of the sum of two U[0,1] values
    return 0.0 if s <= 0 else s * s / 2 if s <= 1 else 1 - (2 - s) ** 2 / 2 if s < 2 else 1.0


BUNDLE_RESERVE = math.sqrt(2 / 3)


def bundle_auction(v):
    """Second price for the bundle with reserve sqrt(2/3): both items to the higher sum above it."""
    from scipy.integrate import quad

    s = v[0] + v[1]
    if s < BUNDLE_RESERVE:
        return (0.0, 0.0, 0.0)
    return (quad(_sum_cdf, BUNDLE_RESERVE, s, points=[1.0])[0], _sum_cdf(s), _sum_cdf(s))


def _bundle_revenue():
    from scipy.integrate import quad

    def per_sum(s):  # a bidder with sum s pays s G(s) - int_r^s G
        return (s * _sum_cdf(s) - quad(_sum_cdf, BUNDLE_RESERVE, s, points=[1.0])[0]) * (s if s <= 1 else 2 - s)

    return 2 * quad(per_sum, BUNDLE_RESERVE, 2, points=[1.0], limit=200)[0]


@pytest.mark.parametrize("k", [6, 9])
@pytest.mark.parametrize("bidders,mechanism,revenue", [
    (1, manelli_vincent, 0.54920), (2, itemwise_myerson, 5 / 6), (2, posted_prices, 0.75), (2, bundle_auction, None),
], ids=["manelli-vincent", "itemwise-myerson", "posted-prices", "bundle-auction"])
def test_a_true_auction_is_feasible_and_its_revenue_is_over_estimated(k, bidders, mechanism, revenue):
    revenue = _bundle_revenue() if revenue is None else revenue
    g = fb.Grid(k, bidders)
    x = embed(g, mechanism)
    assert (g.stencil @ x).max() <= 1e-12
    assert g.violated_ic(x)[0] == []
    assert g.violated_sets(x) == []
    for a in range(k):
        for item in (1, 2):
            row, rhs = g.border_row(tuple([a] * k), item)
            assert row @ x <= rhs + 1e-12
    assert g.objective @ x >= revenue
    assert g.objective @ x <= revenue + 3 / k ** 2  # the discretisation error shrinks like 1/K^2


def test_over_allocation_and_misreporting_are_caught():
    g = fb.Grid(8, 2)
    # both bidders get item j whenever v_j >= 1/2: 2 * 1/2 > 1 - (1/2)^2, Border fails
    greedy = embed(g, lambda v: (sum(max(x - 0.5, 0) for x in v), *(1.0 if x >= 0.5 else 0.0 for x in v)))
    assert g.violated_sets(greedy) and g.violated_ic(greedy)[0] == []
    # allocation decreasing in value: a high type prefers a low type's report
    lying = embed(g, lambda v: (0.0, 1.0 - v[0], 0.0))
    pairs, worst = g.violated_ic(lying)
    assert pairs and worst > 0.1


def test_bounds_converge_from_above():
    one = [fb.upper_bound(k, 1, log=lambda s: None)["bound"] for k in (6, 8)]
    assert fb.MANELLI_VINCENT < one[1] < one[0] < 0.6
    two = fb.upper_bound(8, 2, log=lambda s: None)
    assert 0.8749 < two["bound"] < 0.96  # above the shipped AMA, and Border binds (two free bidders: 1.1)
    g = fb.Grid(8, 2)
    assert g.violated_sets(two["x"]) == [] and g.violated_ic(two["x"])[0] == []


@pytest.mark.parametrize("argv", [["--grids", "x"], ["--grids", "1"], ["--bidders", "1"], ["--max-iterations", "-1"]])
def test_bad_arguments_exit_2(argv):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "frontier_bound.py"), *argv],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "error" in r.stderr


def test_an_early_stop_is_a_looser_bound():
    full = fb.upper_bound(8, 2, log=lambda s: None)
    early = fb.upper_bound(8, 2, log=lambda s: None, max_iterations=2)
    assert full["converged"] and not early["converged"] and early["iterations"] == 2
    assert early["bound"] > full["bound"] + 1e-3
