"""How far the affine maximizer is from the best exactly strategy-proof auction, and how far that is
from the best Bayesian one, on discretised 2x2 settings; results in ``benchmarks/results/dsic_gap.{md,json}``.

Issue 16 asks for a strategy-proof 2x2 auction (two additive bidders, two items, values U[0,1]) at
0.878. The affine maximizers stop at 0.875 and ``frontier_bound.py`` bounds every Bayesian-IC
auction by 0.898 (about 0.894 extrapolated), which leaves open where the dominant-strategy optimum
lies. On a finite type space both optima are linear programs, so this compares, with each value of
an item drawn uniformly from K points (the midpoints (i + 1/2)/K of U[0,1]'s K cells by default):

- **DSIC**: the best dominant-strategy IC and ex-post IR auction. Variables per profile (t1, t2):
  bidder 1's allocation a(t1, t2) in [0,1]^2 and utility u(t1, t2) >= 0; bidder 2's are a(t2, t1)
  and u(t2, t1) (an optimal auction can be taken bidder-symmetric: averaging an auction with its
  mirror image keeps every linear constraint and the revenue), so feasibility is
  a_j(t1, t2) + a_j(t2, t1) <= 1, and IC is u(t, s) >= u(t', s) + (t - t').a(t', s) for every report
  t' of every type t against every s. Exact: the IC rows start with each type's eight grid neighbours
  and every violated row is added until none is (``--no-cuts``: all K^6 at once; the same optimum;
  up to K = 11 the neighbours alone sufficed, at K = 12 the first round left 149 rows violated).
- **BIC**: the best Bayesian IC and interim IR auction: the same ex-post allocations, but IC and IR
  on the interim allocation Q(t) = E_s a(t, s) and interim utility U(t) only.
- **AMA**: the best affine maximizer found over the nine deterministic outcomes (each item to bidder
  1, bidder 2 or nobody): a grid search over the bidder- and item-symmetric boosts, Nelder-Mead over
  all nine and bidder 2's weight, exact line searches over each boost at its breakpoints, random
  restarts (:func:`best_ama`). Its revenue is exact on the finite distribution, with the largest
  payments that keep its allocation truthful there (:func:`least_utilities`), as the LPs' auctions
  may charge; ties are broken toward the AMA's own revenue, which keeps it strategy-proof (every tied
  outcome gives each bidder the same utility). A search's best: the best AMA may earn a little more.
- **item-wise**: each item sold by the optimal single-item auction for the discrete distribution
  (its DSIC LP with one item).

A check: with values {1, 2} equally likely, Yao (EC 2017) proves the Bayesian optimum exceeds the
dominant-strategy one by exactly 2%; the first row reproduces it.

    python benchmarks/dsic_gap.py                       # K = 2..8 (about 12 CPU minutes)
    python benchmarks/dsic_gap.py --grids 2,3,4,5,6,7,8,9 --no-cuts  # the results file (30 CPU minutes)
    python benchmarks/dsic_gap.py --grids 10,11 --no-yao --no-ama      # K = 10, 11 (10 CPU minutes)
    python benchmarks/dsic_gap.py --grids 4,6 --no-ama  # LPs only
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog, minimize

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUTCOMES = list(itertools.product(range(3), repeat=2))  # (owner of item 1, owner of item 2): 0 nobody


class Setting:
    """Two i.i.d. additive bidders, two items, each item's value drawn from ``values`` with ``probs``."""

    def __init__(self, values, probs=None) -> None:
        self.values = np.asarray(values, dtype=float)
        k = len(self.values)
        self.probs = np.full(k, 1.0 / k) if probs is None else np.asarray(probs, dtype=float)
        if self.values.ndim != 1 or k < 1 or self.probs.shape != (k,) or abs(self.probs.sum() - 1) > 1e-12:
            raise ValueError("values and probs must be equal-length 1-D and probs must sum to 1")
        grid = np.array(list(itertools.product(range(k), repeat=2)))
        self.types = self.values[grid]  # (T, 2): type t's values of items 1 and 2
        self.f = self.probs[grid].prod(axis=1)  # (T,): its probability
        self.t = len(self.types)


def _solve(c, a_ub, b_ub, bounds, a_eq=None, b_eq=None, method="highs") -> tuple[float, np.ndarray, float]:
    started = time.process_time()
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method=method)
    if res.status != 0:
        raise RuntimeError(f"LP failed: {res.message}")
    return -res.fun, res.x, time.process_time() - started


def _ic_rows(diff: np.ndarray, u_report, u_true, a_report: np.ndarray, n: int) -> sp.csr_matrix:
    """Rows u(t') - u(t) + (t - t').a(t') <= 0, one per misreport: ``diff`` (rows, 2) holds t - t', the
    other arguments the columns of u(t'), u(t) and a(t', j) (rows, 2) among n."""
    cols = np.stack([u_report, u_true, a_report[:, 0], a_report[:, 1]], axis=1)
    vals = np.stack([np.ones(len(diff)), -np.ones(len(diff)), diff[:, 0], diff[:, 1]], axis=1)
    rows = np.repeat(np.arange(len(diff)), 4)
    return sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(len(diff), n))


def _feasibility_rows(t: int, a_col, n: int) -> sp.csr_matrix:
    """a_j(t1, t2) + a_j(t2, t1) <= 1 for t1 <= t2 (on the diagonal 2 a_j <= 1)."""
    i1, i2 = np.triu_indices(t)
    m = len(i1)
    rows = np.repeat(np.arange(2 * m), 2)
    cols = np.concatenate([np.stack([a_col(i1, i2, j), a_col(i2, i1, j)], axis=1).ravel() for j in range(2)])
    return sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(2 * m, n))


def dsic_lp(s: Setting, triples: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
            ) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray, list]:
    """The DSIC LP as (c, A_ub, b_ub, bounds), minimising c.x: x holds a(t1, t2, j) at 2 (t1 T + t2) + j,
    then u(t1, t2) at 2 T^2 + t1 T + t2 (bidder 1's allocation and utility; bidder 2's are the mirror).
    IC rows for every (opponent type s2, type t, report t') unless ``triples`` names a subset."""
    t = s.t
    n_a = 2 * t * t
    n = n_a + t * t
    if triples is None:
        ctx, tt, pp = np.nonzero(np.broadcast_to(~np.eye(t, dtype=bool), (t, t, t)))
        triples = (ctx, tt, pp)
    ctx, tt, pp = triples
    ic = _ic_rows(s.types[tt] - s.types[pp], n_a + pp * t + ctx, n_a + tt * t + ctx,
                  np.stack([2 * (pp * t + ctx), 2 * (pp * t + ctx) + 1], axis=1), n)
    feas = _feasibility_rows(t, lambda x, y, j: 2 * (x * t + y) + j, n)
    weight = np.outer(s.f, s.f)  # P(t1) P(t2)
    c = np.zeros(n)
    c[0:n_a:2] = -2 * (weight * s.types[:, 0][:, None]).ravel()
    c[1:n_a:2] = -2 * (weight * s.types[:, 1][:, None]).ravel()
    c[n_a:] = 2 * weight.ravel()
    a_ub = sp.vstack([ic, feas]).tocsr()
    b_ub = np.concatenate([np.zeros(ic.shape[0]), np.ones(feas.shape[0])])
    return c, a_ub, b_ub, [(0, 1)] * n_a + [(0, None)] * (t * t)


def dsic_violations(s: Setting, alloc: np.ndarray, util: np.ndarray) -> np.ndarray:
    """V[s2, t, t'] = what type t gains by reporting t' against s2 (bidder 1's view; > 0: not truthful)."""
    a = alloc.transpose(1, 0, 2)  # [s2, t', j]
    u = util.T  # [s2, t]
    return (u[:, None, :] - u[:, :, None] + np.einsum("tj,cpj->ctp", s.types, a)
            - (s.types[None] * a).sum(axis=2)[:, None, :])


def dsic_optimum(s: Setting, cuts: bool = False, tol: float = 1e-8, radius: int = 1, log=print) -> dict:
    """The best bidder-symmetric dominant-strategy IC, ex-post IR auction (an exact LP). With ``cuts``,
    IC rows start with each type's grid neighbours within ``radius`` steps per item (0: none) and every
    violated row is added until none is: the same optimum with far fewer rows."""
    started = time.process_time()
    t = s.t
    n_a = 2 * t * t
    triples, rounds = None, 0
    if cuts:
        k = int(round(np.sqrt(t)))
        ia, ib = np.divmod(np.arange(t), k)
        near = ((np.abs(ia[:, None] - ia[None]) <= radius) & (np.abs(ib[:, None] - ib[None]) <= radius)
                & ~np.eye(t, dtype=bool))
        triples = np.nonzero(np.broadcast_to(near, (t, t, t)))
    while True:
        c, a_ub, b_ub, bounds = dsic_lp(s, triples)
        # interior point (with crossover): 3 times faster than the simplex at K = 7, the same optimum
        rev, x, _ = _solve(c, a_ub, b_ub, bounds, method="highs-ipm")
        alloc, util = x[:n_a].reshape(t, t, 2), x[n_a:].reshape(t, t)
        if not cuts:
            break
        rounds += 1
        viol = dsic_violations(s, alloc, util)
        new = np.nonzero(viol > tol)
        log(f"      cuts round {rounds}: {a_ub.shape[0]} rows, revenue {rev:.6f}, {len(new[0])} violated")
        if not len(new[0]):
            break
        triples = tuple(np.concatenate([old, add]) for old, add in zip(triples, new))
    return {"revenue": rev, "cpu_s": time.process_time() - started, "rows": a_ub.shape[0], "columns": len(c),
            "rounds": rounds, "allocation": alloc, "utility": util}


def bic_optimum(s: Setting) -> dict:
    """The best bidder-symmetric Bayesian IC, interim IR auction (an exact LP over ex-post allocations)."""
    t = s.t
    n_a = 2 * t * t
    a_col = lambda x, y, j: 2 * (x * t + y) + j  # noqa: E731
    q0 = n_a  # Q(t, j) at q0 + 2 t + j, U(t) at q0 + 2 T + t
    u0 = q0 + 2 * t
    n = u0 + t
    tt, pp = np.nonzero(~np.eye(t, dtype=bool))  # type tt does not report pp
    ic = _ic_rows(s.types[tt] - s.types[pp], u0 + pp, u0 + tt, np.stack([q0 + 2 * pp, q0 + 2 * pp + 1], axis=1), n)
    feas = _feasibility_rows(t, a_col, n)
    # Q(t, j) - sum_s P(s) a(t, s, j) = 0
    rows, cols, vals = [], [], []
    for x in range(t):
        for j in range(2):
            r = 2 * x + j
            rows.append(r), cols.append(q0 + r), vals.append(1.0)
            rows += [r] * t
            cols += [a_col(x, y, j) for y in range(t)]
            vals += list(-s.f)
    eq = sp.csr_matrix((vals, (rows, cols)), shape=(2 * t, n))
    c = np.zeros(n)
    c[q0:u0:2] = -2 * s.f * s.types[:, 0]
    c[q0 + 1:u0:2] = -2 * s.f * s.types[:, 1]
    c[u0:] = 2 * s.f
    a_ub = sp.vstack([ic, feas]).tocsr()
    b_ub = np.concatenate([np.zeros(ic.shape[0]), np.ones(feas.shape[0])])
    bounds = [(0, 1)] * n_a + [(0, 1)] * (2 * t) + [(0, None)] * t
    rev, _, cpu = _solve(c, a_ub, b_ub, bounds, eq, np.zeros(2 * t))
    return {"revenue": rev, "cpu_s": cpu, "rows": a_ub.shape[0] + 2 * t, "columns": n}


def itemwise_optimum(s: Setting) -> float:
    """Both items sold separately, each by the optimal dominant-strategy single-item auction for the
    discrete distribution (an exact LP on two bidders' values of one item)."""
    v, f, k = s.values, s.probs, len(s.values)
    n_a = k * k  # a(x, y) at x k + y (bidder 1 with value v[x] against v[y]); u at n_a + x k + y
    n = 2 * n_a
    rows, cols, vals = [], [], []
    r = 0
    for y in range(k):
        for x in range(k):
            for z in range(k):
                if x != z:  # value v[x] does not report v[z]: u(z,y) - u(x,y) + (v[x]-v[z]) a(z,y) <= 0
                    rows += [r, r, r]
                    cols += [n_a + z * k + y, n_a + x * k + y, z * k + y]
                    vals += [1.0, -1.0, v[x] - v[z]]
                    r += 1
    for x in range(k):
        for y in range(x, k):
            rows += [r, r]
            cols += [x * k + y, y * k + x]
            vals += [1.0, 1.0]
            r += 1
    a_ub = sp.csr_matrix((vals, (rows, cols)), shape=(r, n))
    b_ub = np.zeros(r)
    b_ub[-(k * (k + 1) // 2):] = 1.0
    w = np.outer(f, f)
    c = np.concatenate([-2 * (w * v[:, None]).ravel(), 2 * w.ravel()])
    rev, _, _ = _solve(c, a_ub, b_ub, [(0, 1)] * n_a + [(0, None)] * n_a)
    return 2 * rev  # two items


def ama_outcomes(s: Setting, boosts: np.ndarray, weight2: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The AMA's allocation a(t1, t2, bidder, item) and payments p(t1, t2, bidder) on every profile, ties
    broken toward revenue. ``boosts`` has one entry per outcome of OUTCOMES."""
    alloc = np.array([[[o[j] == b for j in range(2)] for b in (1, 2)] for o in OUTCOMES], dtype=float)  # (9, 2, 2)
    v1 = s.types[:, None, :]  # (T, 1, 2)
    v2 = s.types[None, :, :]
    own1 = np.einsum("xyj,oj->xyo", np.broadcast_to(v1, (s.t, s.t, 2)), alloc[:, 0])  # bidder 1's value per outcome
    own2 = np.einsum("xyj,oj->xyo", np.broadcast_to(v2, (s.t, s.t, 2)), alloc[:, 1])
    w_1 = own1 + boosts  # the part not of bidder 2
    w_2 = weight2 * own2 + boosts
    total = own1 + weight2 * own2 + boosts
    h1 = w_2.max(axis=2, keepdims=True)  # max without bidder 1
    h2 = w_1.max(axis=2, keepdims=True)
    pay1 = h1 - w_2  # bidder 1's payment at each outcome
    pay2 = (h2 - w_1) / weight2
    best = total.max(axis=2, keepdims=True)
    tied = total >= best - 1e-9
    revenue = np.where(tied, pay1 + pay2, -np.inf)  # ties: toward the AMA's own revenue
    choice = revenue.argmax(axis=2)
    pick = lambda arr: np.take_along_axis(arr, choice[..., None], axis=2)[..., 0]  # noqa: E731
    a = alloc[choice]  # (T, T, 2 bidders, 2 items)
    p = np.stack([pick(pay1), pick(pay2)], axis=2)
    return a, p, choice


def least_utilities(types: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    """The least utilities u >= 0 with u(t) >= u(t') + (t - t').alloc(t') for every pair of types (so the
    largest payments t.alloc(t) - u(t) that keep an allocation rule truthful on the finite type space),
    for each context (the other bidder's type): alloc (C, T, 2) -> u (C, T). A longest-path fixpoint; an
    allocation that is not implementable (a profitable cycle of reports) raises."""
    gain = types @ alloc.transpose(0, 2, 1) - (types[None] * alloc).sum(axis=2)[:, None, :]  # (C, t, t')
    u = np.zeros(alloc.shape[:2])
    for _ in range(len(types) + 1):
        new = np.maximum(0.0, (u[:, None, :] + gain).max(axis=2))
        if np.allclose(new, u, rtol=0, atol=1e-12):
            return new
        u = new
    raise ValueError("the allocation rule is not implementable: a cycle of misreports gains")


def ama_revenue(s: Setting, boosts: np.ndarray, weight2: float = 1.0, own_payments: bool = False) -> float:
    """The AMA's revenue with its own (continuum) payments, or, by default, with the largest payments that
    keep its allocation rule truthful on the finite type space, as the LPs' auctions may charge."""
    a, p, _ = ama_outcomes(s, boosts, weight2)
    w = np.outer(s.f, s.f)
    if own_payments:
        return float((w * p.sum(axis=2)).sum())
    a1 = a[:, :, 0].transpose(1, 0, 2)  # context: bidder 2's type
    a2 = a[:, :, 1]  # context: bidder 1's type
    rev = 0.0
    for alloc, weights in ((a1, w.T), (a2, w)):
        u = least_utilities(s.types, alloc)
        rev += float((weights * ((s.types[None] * alloc).sum(axis=2) - u)).sum())
    return rev


def _symmetric_boosts(single: float, bundle: float, split: float) -> np.ndarray:
    """Boosts shared by outcomes alike under swapping bidders or items; nothing sold at 0 (so a boost of
    -r per item sold is a second-price auction with reserve r on each item)."""
    out = []
    for o in OUTCOMES:
        sold = [x for x in o if x]
        out.append(0.0 if not sold else single if len(sold) == 1 else bundle if sold[0] == sold[1] else split)
    return np.array(out)


def best_ama(s: Setting, steps: int = 11, sweeps: int = 2, candidates: int = 300, restarts: int = 0, log=print) -> dict:
    """The best AMA found: a grid over the symmetric boosts (single, bundle, split) in [-2 span, 0] with
    span the largest value (a positive boost on a sale only gives items away), refined by two finer grids
    around the best point; then Nelder-Mead over the nine boosts and bidder 2's weight; then ``sweeps``
    rounds of exact line searches, one boost at a time: the revenue changes only where the boost makes
    that outcome tie the best other one at some profile, so it is evaluated at those breakpoints and
    between them (the ``candidates`` nearest the current value); then ``restarts`` more line searches,
    each from a random perturbation of the best point so far (the revenue is piecewise constant in the
    boosts, with many local optima)."""
    started = time.process_time()
    span = float(s.values.max())
    best = (-np.inf, None)
    centre, width = np.full(3, -span), span
    for _ in range(3):  # coarse grid, then two finer ones around the best point
        axis = np.linspace(-width, width, steps)
        for d in itertools.product(axis, repeat=3):
            point = centre + np.array(d)
            rev = ama_revenue(s, _symmetric_boosts(*point))
            if rev > best[0] + 1e-12:
                best = (rev, point)
        centre, width = best[1], 2 * width / (steps - 1)
    symmetric = best[0]
    start = np.concatenate([_symmetric_boosts(*best[1]), [0.0]])  # last: log of bidder 2's weight
    f = lambda z: -ama_revenue(s, z[:9], float(np.exp(z[9])))  # noqa: E731
    res = minimize(f, start, method="Nelder-Mead",
                   options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 1500, "initial_simplex": _simplex(start, 0.05 * span)})
    nelder_mead = -res.fun
    boosts, weight2 = (res.x[:9], float(np.exp(res.x[9]))) if nelder_mead > symmetric else (start[:9], 1.0)
    rev = max(symmetric, nelder_mead)
    rev, boosts = _line_searches(s, boosts, weight2, rev, sweeps, candidates)
    searched = rev
    rng = np.random.default_rng(0)
    for _ in range(restarts):  # from random perturbations of the best point so far
        trial_b = boosts + rng.normal(0.0, 0.08 * span, len(boosts))
        trial_w = weight2 * float(np.exp(rng.normal(0.0, 0.05)))
        r, b = _line_searches(s, trial_b, trial_w, ama_revenue(s, trial_b, trial_w), sweeps, candidates)
        if r > rev + 1e-12:
            rev, boosts, weight2 = r, b, trial_w
    log(f"    AMA: symmetric grid {symmetric:.6f}, Nelder-Mead {nelder_mead:.6f}, line searches {searched:.6f}, "
        f"{restarts} restarts {rev:.6f}")
    return {"revenue": rev, "symmetric_revenue": symmetric, "nelder_mead_revenue": nelder_mead,
            "line_search_revenue": searched, "boosts": boosts.tolist(), "weight2": weight2,
            "cpu_s": time.process_time() - started}


def _line_searches(s: Setting, boosts: np.ndarray, weight2: float, rev: float, sweeps: int,
                   candidates: int) -> tuple[float, np.ndarray]:
    """Up to ``sweeps`` rounds of exact line searches over each boost in turn (weight fixed)."""
    for _ in range(sweeps):
        improved = False
        for k in range(len(OUTCOMES)):
            for c in _breakpoint_candidates(s, boosts, weight2, k, candidates):
                trial = boosts.copy()
                trial[k] = c
                r = ama_revenue(s, trial, weight2)
                if r > rev + 1e-12:
                    rev, boosts, improved = r, trial, True
        if not improved:
            break
    return rev, boosts


def _breakpoint_candidates(s: Setting, boosts: np.ndarray, weight2: float, k: int, count: int) -> np.ndarray:
    """Values of boost k where outcome k ties the best other outcome at some profile, the midpoints
    between them and one beyond each end: the ``count`` nearest to the current boost."""
    alloc = np.array([[[o[j] == b for j in range(2)] for b in (1, 2)] for o in OUTCOMES], dtype=float)
    own = (s.types @ alloc[:, 0].T)[:, None, :] + weight2 * (s.types @ alloc[:, 1].T)[None, :, :]  # (T, T, 9)
    others = np.delete(own + boosts, k, axis=2).max(axis=2)
    points = np.unique(np.round((others - own[:, :, k]).ravel(), 12))
    mids = (points[1:] + points[:-1]) / 2
    cand = np.concatenate([points, mids, [points[0] - 0.01, points[-1] + 0.01]])
    return cand[np.argsort(np.abs(cand - boosts[k]))[:count]]


def _simplex(x0: np.ndarray, step: float) -> np.ndarray:
    return np.vstack([x0] + [x0 + step * np.eye(len(x0))[i] for i in range(len(x0))])


def run(label: str, s: Setting, ama: bool, restarts: int = 0, candidates: int = 300, cuts: bool = True,
        log=print) -> dict:
    log(f"{label}: {s.t} types per bidder, {s.t ** 2} profiles")
    d = dsic_optimum(s, cuts=cuts, log=log)
    log(f"    DSIC {d['revenue']:.6f} ({d['rows']} rows, {d['cpu_s']:.1f} CPU s)")
    b = bic_optimum(s)
    log(f"    BIC  {b['revenue']:.6f} ({b['cpu_s']:.1f} CPU s)")
    row = {"setting": label, "values": s.values.tolist(), "types": s.t, "dsic": d["revenue"], "bic": b["revenue"],
           "itemwise": itemwise_optimum(s), "dsic_rows": d["rows"], "dsic_cut_rounds": d["rounds"],
           "dsic_cpu_s": round(d["cpu_s"], 2),
           "bic_cpu_s": round(b["cpu_s"], 2)}
    if ama:
        a = best_ama(s, candidates=candidates, restarts=restarts, log=log)
        row.update(ama=a["revenue"], ama_symmetric=a["symmetric_revenue"], ama_nelder_mead=a["nelder_mead_revenue"],
                   ama_line_search=a["line_search_revenue"], ama_boosts=a["boosts"], ama_weight2=a["weight2"],
                   ama_own_payments=ama_revenue(s, np.array(a["boosts"]), a["weight2"], own_payments=True),
                   ama_cpu_s=round(a["cpu_s"], 2))
    return row


def report(rows: list[dict], command: str) -> str:
    grids = [r for r in rows if r["setting"].startswith("K = ") and int(r["setting"][4:]) >= 3]
    cut = [1 - r["ama_own_payments"] / r["ama"] for r in grids if "ama" in r]
    own_gap = f", {100 * min(cut):.1f}% to {100 * max(cut):.1f}% less for K >= 3" if cut else ""
    lines = [
        "# Strategy-proof versus Bayesian optimum, and the affine maximizer, on discretised 2x2 settings",
        "",
        f"`{command}` (exact LPs with HiGHS; `benchmarks/dsic_gap.py` explains each column). Two i.i.d. additive",
        "bidders, two items; each item's value uniform on the listed points (K points: the midpoints of U[0,1]'s",
        "K cells). Revenue is exact on the finite distribution. The AMA columns are an affine maximizer's",
        "allocation rule with the largest payments that keep it truthful on the grid, as the LPs' auctions may",
        f"charge; with its own (VCG-style) payments the same auction earns the next column{own_gap}: the",
        "grids reward charging at grid thresholds, one reason their revenues stand far above the continuum's",
        "(about 0.88 for 2x2 U[0,1]). Only ratios are compared across them.",
        "",
        "| values | DSIC optimum | BIC optimum | BIC / DSIC | best AMA found | AMA / DSIC | same AMA, own payments | item-wise | DSIC LP rows (final) | DSIC CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ama = (f"{r['ama']:.5f} | {r['ama'] / r['dsic']:.4f} | {r['ama_own_payments']:.5f}" if "ama" in r
               else "- | - | -")
        lines.append(f"| {r['setting']} | {r['dsic']:.5f} | {r['bic']:.5f} | {r['bic'] / r['dsic']:.4f} | {ama} | "
                     f"{r['itemwise']:.5f} | {r['dsic_rows']} | {r['dsic_cpu_s']} |")
    if grids:
        gap = [r["bic"] / r["dsic"] for r in grids]
        lines += ["", f"For K = 3 to {grids[-1]['setting'][4:]}: the Bayesian optimum exceeds the strategy-proof one by "
                  f"{100 * (min(gap) - 1):.2f}% to {100 * (max(gap) - 1):.2f}%."]
        ratio = [r["ama"] / r["dsic"] for r in grids if "ama" in r]
        if ratio:
            lines.append(f"Where searched, the best affine maximizer found earns {100 * (1 - max(ratio)):.2f}% to {100 * (1 - min(ratio)):.2f}% "
                         "less than the strategy-proof optimum (a search's best: the best AMA may do a little better).")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grids", default="2,3,4,5,6,7,8", help="comma-separated K: values (i + 1/2)/K, i < K (default 2..8)")
    ap.add_argument("--no-yao", action="store_true", help="skip the {1, 2} check row")
    ap.add_argument("--no-ama", action="store_true", help="skip the AMA search")
    ap.add_argument("--no-cuts", action="store_true",
                    help="impose every DSIC IC row at once (K^6 rows) instead of neighbours plus violated rows")
    ap.add_argument("--ama-max-k", type=int, default=8, help="search the AMA only for K up to this (default 8)")
    ap.add_argument("--restarts", type=int, default=6, help="random restarts of the AMA's line searches (default 6)")
    ap.add_argument("--candidates", type=int, default=120,
                    help="breakpoints tried per boost in each line search, nearest first (default 120)")
    ap.add_argument("--out", default=str(RESULTS / "dsic_gap"), help="results stem (.md and .json)")
    args = ap.parse_args()
    try:
        grids = [int(g) for g in args.grids.split(",") if g.strip()]
    except ValueError:
        ap.error(f"--grids: not a comma-separated list of integers: {args.grids!r}")
    if any(k < 1 or k > 16 for k in grids):
        ap.error("--grids: each K must be between 1 and 16 (the DSIC LP has up to K^6 rows)")
    if args.restarts < 0 or args.candidates < 1:
        ap.error("--restarts must be >= 0 and --candidates >= 1")
    rows = []
    if not args.no_yao:
        rows.append(run("{1, 2} (Yao)", Setting([1.0, 2.0]), not args.no_ama, args.restarts, args.candidates,
                        not args.no_cuts))
    for k in grids:
        rows.append(run(f"K = {k}", Setting((np.arange(k) + 0.5) / k), not args.no_ama and k <= args.ama_max_k,
                        args.restarts, args.candidates, not args.no_cuts))
    command = "python benchmarks/dsic_gap.py" + "".join(f" {a}" for a in os.sys.argv[1:])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n")
    out.with_suffix(".md").write_text(report(rows, command))
    print(report(rows, command))


if __name__ == "__main__":
    main()
