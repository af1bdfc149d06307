"""The exact strategy-proof and Bayesian optima on finite 2x2 settings (benchmarks/dsic_gap.py): Yao's
known gap is reproduced, a true auction is feasible in the DSIC LP and earns no more than its optimum,
the optimum is itself truthful and feasible, and non-implementable allocations are refused."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("dsic_gap", ROOT / "benchmarks" / "dsic_gap.py")
dg = importlib.util.module_from_spec(spec)
assert spec.loader is not None
spec.loader.exec_module(dg)


def test_yao_two_point_gap_is_reproduced_exactly():
    """Values {1, 2} equally likely: selling separately earns 3, the DSIC optimum 25/8, the BIC one
    51/16, exactly 2% more (Yao, EC 2017)."""
    s = dg.Setting([1.0, 2.0])
    dsic, bic = dg.dsic_optimum(s)["revenue"], dg.bic_optimum(s)["revenue"]
    assert dg.itemwise_optimum(s) == pytest.approx(3.0, abs=1e-7)
    assert dsic == pytest.approx(25 / 8, abs=1e-7)
    assert bic == pytest.approx(51 / 16, abs=1e-7)
    assert bic / dsic == pytest.approx(1.02, abs=1e-7)


def test_one_value_support_sells_both_items_at_that_value():
    s = dg.Setting([0.7])
    for rev in (dg.dsic_optimum(s)["revenue"], dg.bic_optimum(s)["revenue"], dg.itemwise_optimum(s)):
        assert rev == pytest.approx(1.4, abs=1e-7)


def _symmetrised_ama(s, boosts, weight2):
    """Bidder 1's allocation a(t1, t2) of the AMA averaged with its mirror image, and the least truthful
    utilities for it: a bidder-symmetric strategy-proof auction, so a point of the DSIC LP."""
    a, _, _ = dg.ama_outcomes(s, boosts, weight2)
    alloc = (a[:, :, 0] + a[:, :, 1].transpose(1, 0, 2)) / 2  # (t1, t2, item)
    u = dg.least_utilities(s.types, alloc.transpose(1, 0, 2)).T  # contexts are bidder 2's types
    return alloc, u


@pytest.mark.parametrize("boosts,weight2", [
    (dg._symmetric_boosts(-0.5, -1.0, -1.0), 1.0),  # second price, reserve 1/2 per item
    (dg._symmetric_boosts(-0.55, -0.9, -1.2), 1.0),
    (np.linspace(-0.9, 0.1, 9), 1.3),  # asymmetric boosts and weights
])
def test_a_true_auction_is_feasible_in_the_dsic_lp_and_earns_at_most_its_optimum(boosts, weight2):
    s = dg.Setting((np.arange(4) + 0.5) / 4)
    c, a_ub, b_ub, bounds = dg.dsic_lp(s)
    alloc, u = _symmetrised_ama(s, boosts, weight2)
    x = np.concatenate([alloc.ravel(), u.ravel()])
    assert (a_ub @ x <= b_ub + 1e-9).all()
    assert all(lo - 1e-12 <= v <= (hi if hi is not None else np.inf) + 1e-12 for v, (lo, hi) in zip(x, bounds))
    revenue = -c @ x
    # the LP's objective is the auction's revenue (mirroring keeps it; least utilities are the largest payments)
    assert revenue == pytest.approx(dg.ama_revenue(s, boosts, weight2), abs=1e-9)
    assert dg.ama_revenue(s, boosts, weight2, own_payments=True) <= revenue + 1e-9
    assert revenue <= dg.dsic_optimum(s)["revenue"] + 1e-7


def test_the_dsic_optimum_is_a_truthful_feasible_auction_checked_by_brute_force():
    s = dg.Setting((np.arange(3) + 0.5) / 3)
    opt = dg.dsic_optimum(s)
    a, u = opt["allocation"], opt["utility"]
    assert (a >= -1e-9).all() and (u >= -1e-9).all()
    for t1, t2 in itertools.product(range(s.t), repeat=2):
        assert (a[t1, t2] + a[t2, t1] <= 1 + 1e-7).all()  # bidder 2's allocation is the mirror image
        for r in range(s.t):  # type t1 reporting r against t2 gains nothing
            assert u[t1, t2] >= u[r, t2] + (s.types[t1] - s.types[r]) @ a[r, t2] - 1e-7
    payments = (s.types[:, None, :] * a).sum(axis=2) - u
    assert 2 * (np.outer(s.f, s.f) * payments).sum() == pytest.approx(opt["revenue"], abs=1e-7)


def test_optima_are_ordered():
    s = dg.Setting((np.arange(3) + 0.5) / 3)
    item, dsic, bic = dg.itemwise_optimum(s), dg.dsic_optimum(s)["revenue"], dg.bic_optimum(s)["revenue"]
    assert item <= dsic + 1e-9 <= bic + 2e-9
    assert bic > dsic + 1e-4  # a real gap at K = 3


def test_least_utilities_refuse_an_allocation_that_no_payment_makes_truthful():
    types = np.array([[0.0, 0.0], [1.0, 0.0]])
    decreasing = np.array([[[1.0, 0.0], [0.0, 0.0]]])  # the higher type gets less
    with pytest.raises(ValueError, match="not implementable"):
        dg.least_utilities(types, decreasing)
    assert dg.least_utilities(types, decreasing[:, ::-1]).tolist() == [[0.0, 0.0]]


def test_the_command_writes_its_results_and_refuses_bad_grids(tmp_path):
    out = tmp_path / "gap"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "dsic_gap.py"), "--grids", "2", "--no-ama",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| {1, 2} (Yao) | 3.12500 | 3.18750 | 1.0200 |" in out.with_suffix(".md").read_text()
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "dsic_gap.py"), "--grids", "2,x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--grids" in bad.stderr


def test_the_ama_search_reaches_the_dsic_optimum_at_k3_and_never_passes_it():
    """At K = 3 an affine maximizer is a strategy-proof optimum (the line searches find it); a search
    claiming more than the LP optimum would be a bug in one of them."""
    s = dg.Setting((np.arange(3) + 0.5) / 3)
    found = dg.best_ama(s, steps=7, restarts=1, candidates=60, log=lambda *a: None)
    dsic = dg.dsic_optimum(s)["revenue"]
    assert found["revenue"] == pytest.approx(dsic, abs=1e-7)
    assert found["revenue"] <= dsic + 1e-9
    assert dg.ama_revenue(s, np.array(found["boosts"]), found["weight2"]) == pytest.approx(found["revenue"], abs=1e-12)


def test_cutting_planes_reach_the_full_lps_optimum_and_leave_no_violated_row():
    for values in ((np.arange(4) + 0.5) / 4, [1.0, 2.0, 4.5]):
        s = dg.Setting(values)
        full = dg.dsic_optimum(s)
        for radius in (1, 0):  # neighbours first, or no IC row at all to start with
            cut = dg.dsic_optimum(s, cuts=True, radius=radius, log=lambda *a: None)
            assert cut["revenue"] == pytest.approx(full["revenue"], abs=1e-7)
            assert dg.dsic_violations(s, cut["allocation"], cut["utility"]).max() <= 1e-7
            assert cut["rows"] < full["rows"]
        assert cut["rounds"] > 1  # from nothing, rows had to be added


def test_violations_are_what_a_misreport_gains():
    s = dg.Setting([0.2, 0.9])
    rng = np.random.default_rng(3)
    alloc, util = rng.random((s.t, s.t, 2)), rng.random((s.t, s.t))
    v = dg.dsic_violations(s, alloc, util)
    for c, t, p in itertools.product(range(s.t), repeat=3):
        gain = s.types[t] @ alloc[p, c] - (s.types[p] @ alloc[p, c] - util[p, c]) - util[t, c]
        assert v[c, t, p] == pytest.approx(gain, abs=1e-12)
