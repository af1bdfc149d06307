"""An upper bound on the revenue of every Bayesian incentive-compatible auction (so of every exactly
strategy-proof one) for n i.i.d. additive bidders and two items with values U[0,1], from a linear
program on a grid; results in ``benchmarks/results/frontier_bound.{md,json}``.

Issue 16 asks for an exactly strategy-proof 2x2 auction at 0.878; every family tried here stops at
0.875 (``frontier_probes.md``). This bounds from above what any such auction can reach. By symmetry
an optimal auction can be taken bidder-symmetric, so it is described by one bidder's interim
allocation q(v) in [0,1]^2 and interim utility U(v) (expectations over the others' values). Each
constraint below holds for every Bayesian-IC auction, so the LP's optimum is an upper bound at any
grid size K (up to the solver's tolerance, about 1e-7); it tightens as K grows:

- IC between grid types: U(t') >= U(t) + q(t).(t' - t) (type t' does not report t). A stencil of
  nearby pairs is imposed up front; every violated pair among all grid pairs is added as a cut.
- Revenue per bidder, E[q.v - U], equals int U(1,y)dy + int U(x,1)dx - 3 int int U (divergence
  theorem on the unit square, U convex). The edge integrals are bounded above by chords (U is
  convex), the area integral below by the tangent planes at each cell's corners.
- Border's condition for symmetric reduced forms: n int_S q_j <= 1 - (1 - |S|)^n for every set S of
  types. Used for "staircase" sets, upper in v_j row by row (q_j is non-decreasing in v_j, so its
  level sets are of this kind), with int_S q_j = sum over rows of int (U(1,y) - U(a_row,y)) dy
  bounded below by tangents and chords; the most violated staircase (a dynamic programme over
  rows, for every area) is added as a cut until none is violated.

With one bidder (where Border's condition is only q <= 1) this converges to Manelli and Vincent's
0.54920 from above (the check rows in the results). The numbers bound Bayesian-IC auctions, a larger class than dominant-
strategy ones, so the true strategy-proof optimum may lie well below them.

    python benchmarks/frontier_bound.py                        # K = 10, 20 (about 10 minutes)
    python benchmarks/frontier_bound.py --grids 10,20,30       # K = 30 adds about 40 minutes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MANELLI_VINCENT = 0.54920  # 1 bidder, 2 items, U[0,1] (shared/REFERENCE.md)
TOL = 1e-9


class Grid:
    """Variables U, q1, q2 at the (K+1)^2 grid types t = (a/K, b/K); index a*(K+1) + b."""

    def __init__(self, k: int, bidders: int, radius: int = 2) -> None:
        if k < 2 or bidders < 1 or radius < 1:
            raise ValueError("need K >= 2, bidders >= 1, radius >= 1")
        self.k, self.n, self.h, self.p = k, bidders, 1.0 / k, (k + 1) ** 2
        self.aa, self.bb = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
        self.objective = self._objective()
        self.stencil = self.ic_rows(*self._stencil_pairs(radius))

    def ix(self, a, b):
        return a * (self.k + 1) + b

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self.p
        return x[:p], x[p:2 * p], x[2 * p:]

    def _objective(self) -> np.ndarray:
        """c with c.x >= the revenue of every auction whose grid values are x (all n bidders)."""
        k, h, p = self.k, self.h, self.p
        c = np.zeros(3 * p)
        for b in range(k):  # edges v1 = 1 and v2 = 1: chords
            for e in (self.ix(k, b), self.ix(k, b + 1), self.ix(b, k), self.ix(b + 1, k)):
                c[e] += h / 2
        for a in range(k):  # -3 * area: tangent planes at the four corners of each cell
            for b in range(k):
                for ca, cb in ((a, b), (a + 1, b), (a, b + 1), (a + 1, b + 1)):
                    t, w = self.ix(ca, cb), -3 * h * h / 4
                    c[t] += w
                    c[p + t] += w * (a + 0.5 - ca) * h
                    c[2 * p + t] += w * (b + 0.5 - cb) * h
        return c * self.n

    def _stencil_pairs(self, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """(t, t') for every grid type t and every primitive direction of length at most ``radius``."""
        k, ts, t2s = self.k, [], []
        for da in range(-radius, radius + 1):
            for db in range(-radius, radius + 1):
                if (da, db) == (0, 0) or math.gcd(da, db) != 1:
                    continue
                m = (self.aa + da >= 0) & (self.aa + da <= k) & (self.bb + db >= 0) & (self.bb + db <= k)
                ts.append(self.ix(self.aa[m], self.bb[m]))
                t2s.append(self.ix(self.aa[m] + da, self.bb[m] + db))
        return np.concatenate(ts), np.concatenate(t2s)

    def ic_rows(self, t, t2) -> sp.csr_matrix:
        """Rows U(t) + q(t).(t' - t) - U(t') <= 0 for the index pairs (t[i], t2[i])."""
        k, h, p = self.k, self.h, self.p
        t, t2 = np.asarray(t, dtype=int), np.asarray(t2, dtype=int)
        (a1, b1), (a2, b2) = np.divmod(t, k + 1), np.divmod(t2, k + 1)
        r = np.arange(len(t))
        vals = np.concatenate([np.ones(len(t)), (a2 - a1) * h, (b2 - b1) * h, -np.ones(len(t))])
        return sp.csr_matrix((vals, (np.tile(r, 4), np.concatenate([t, p + t, 2 * p + t, t2]))), shape=(len(t), 3 * p))

    def border_row(self, th: tuple[int, ...], item: int) -> tuple[np.ndarray, float]:
        """(row, rhs): row.x <= rhs is Border's condition for the staircase set with threshold th[r]
        (an index 0..K, K for none) in row r, for item 1 (rows along v2) or item 2 (mirrored)."""
        k, h, p = self.k, self.h, self.p
        row, area = np.zeros(3 * p), 0.0
        for r, a in enumerate(th):
            if a >= k:
                continue
            area += (k - a) * h * h
            if item == 1:
                e0, e1, s0, s1, tq = self.ix(k, r), self.ix(k, r + 1), self.ix(a, r), self.ix(a, r + 1), 2 * p
            else:
                e0, e1, s0, s1, tq = self.ix(r, k), self.ix(r + 1, k), self.ix(r, a), self.ix(r + 1, a), p
            row[e0] += h / 2
            row[tq + e0] += h * h / 4
            row[e1] += h / 2
            row[tq + e1] -= h * h / 4
            row[s0] -= h / 2
            row[s1] -= h / 2
        return row * self.n, 1 - (1 - area) ** self.n

    def violated_sets(self, x: np.ndarray, top: int = 30) -> list[tuple[float, tuple[int, ...]]]:
        """The most violated staircase sets (violation, thresholds), best per area, both items."""
        k, h = self.k, self.h
        u, q1, q2 = (v.reshape(k + 1, k + 1) for v in self.split(x))
        out = []
        for uu, qt in ((u, q2), (u.T, q1.T)):
            states = k * k + 1
            best = np.full(states, -np.inf)
            best[0] = 0.0
            choices = []
            for r in range(k):
                edge = h / 2 * (uu[k, r] + uu[k, r + 1]) + h * h / 4 * (qt[k, r] - qt[k, r + 1])
                new, choice = best.copy(), np.full(states, k)
                for a in range(k):
                    cells = k - a
                    cand = np.full(states, -np.inf)
                    cand[cells:] = best[:-cells] + edge - h / 2 * (uu[a, r] + uu[a, r + 1])
                    better = cand > new
                    new[better], choice[better] = cand[better], a
                best = new
                choices.append(choice)
            viol = self.n * best - (1 - (1 - np.arange(states) * h * h) ** self.n)
            for s in np.argsort(-viol)[:top]:
                if viol[s] <= TOL:
                    break
                th, left = [k] * k, int(s)
                for r in range(k - 1, -1, -1):
                    th[r] = int(choices[r][left])
                    left -= k - th[r] if th[r] < k else 0
                out.append((float(viol[s]), tuple(th)))
        return out

    def violated_ic(self, x: np.ndarray, top: int = 4000) -> tuple[list[tuple[int, int]], float]:
        """Grid pairs (t, t') whose IC constraint x violates, worst first, and the worst violation."""
        u, q1, q2 = self.split(x)
        pts = np.stack([self.aa.ravel(), self.bb.ravel()], 1) * self.h
        v = (u[:, None] + q1[:, None] * (pts[None, :, 0] - pts[:, None, 0])
             + q2[:, None] * (pts[None, :, 1] - pts[:, None, 1]) - u[None, :])
        worst = np.argsort(-v.ravel())[:top]
        pairs = [divmod(int(f), self.p) for f in worst if v.flat[f] > TOL]
        return pairs, float(v.max())


def upper_bound(k: int, bidders: int, radius: int = 2, log=print, max_iterations: int = 0) -> dict:
    """Solve the LP by cutting planes; the bound and how it was reached. Every iterate is itself an
    upper bound (its LP has fewer constraints than the full one), so stopping after
    ``max_iterations`` (0: until no cut is violated) still gives a valid, looser bound."""
    g = Grid(k, bidders, radius)
    sets = {tuple([a] * k) for a in range(k)}  # {v_j >= a/K}
    rows, rhs, ic_pairs = [], [], {}  # ic_pairs: the (t, t') imposed, in order

    def add(th) -> None:
        for item in (1, 2):
            row, b = g.border_row(th, item)
            rows.append(row)
            rhs.append(b)

    for th in sorted(sets):
        add(th)
    start, it = time.process_time(), 0
    while True:
        it += 1
        parts, b = [g.stencil, sp.csr_matrix(np.array(rows))], [np.zeros(g.stencil.shape[0]), np.array(rhs)]
        if ic_pairs:
            parts.append(g.ic_rows(*zip(*ic_pairs)))
            b.append(np.zeros(len(ic_pairs)))
        res = linprog(-g.objective, A_ub=sp.vstack(parts).tocsr(), b_ub=np.concatenate(b),
                      bounds=[(0, None)] * g.p + [(0, 1)] * (2 * g.p), method="highs")
        if res.status != 0:
            raise RuntimeError(f"LP failed at K={k}: {res.message}")
        x, value = res.x, -res.fun
        cuts = [th for _, th in g.violated_sets(x) if th not in sets] if bidders > 1 else []
        new_ic, ic_viol = g.violated_ic(x)
        new_ic = [pair for pair in new_ic if pair not in ic_pairs]  # one already imposed: solver tolerance
        for th in cuts:
            sets.add(th)
            add(th)
        ic_pairs.update(dict.fromkeys(new_ic))
        log(f"  K={k} n={bidders} iteration {it}: bound {value:.5f}, +{len(cuts)} Border sets, "
            f"+{len(new_ic)} IC pairs (worst {ic_viol:.1e}), {time.process_time() - start:.0f} CPU s")
        converged = not cuts and not new_ic
        if converged or it == max_iterations:
            break
    return {"K": k, "bidders": bidders, "bound": value, "converged": converged, "iterations": it, "border_sets": len(sets),
            "ic_pairs_added": len(ic_pairs), "stencil_rows": g.stencil.shape[0], "cpu_s": time.process_time() - start,
            "x": x}


def report(res: dict) -> str:
    out = ["# Upper bound on Bayesian-IC (so on strategy-proof) revenue, 2 items, values U[0,1]", "",
           f"`{res['command']}`; {res['cores']} cores, load average {res['load']:.1f} at the start.", "",
           "Each bound holds at its K (LP over the grid; benchmarks/frontier_bound.py explains why). "
           "The estimate extrapolates the last two bounds assuming an error proportional to 1/K^2 (the "
           "one-bidder rows show how well that holds); it is an estimate, not a bound.", "",
           "| bidders | K | upper bound | iterations | Border sets | IC pairs added | CPU s |", "|---|---|---|---|---|---|---|"]
    for r in res["runs"]:
        its = f"{r['iterations']}" + ("" if r.get("converged", True) else " (stopped early)")
        out.append(f"| {r['bidders']} | {r['K']} | {r['bound']:.4f} | {its} | {r['border_sets']} | "
                   f"{r['ic_pairs_added']} | {r['cpu_s']:.0f} |")
    out.append("")
    for n, e in sorted(res["estimates"].items()):
        known = f" (known optimum {MANELLI_VINCENT})" if n == "1" else ""
        out.append(f"- {n} bidder(s): extrapolated optimum about {e:.4f}{known}.")
    out += ["", "Shipped 2x2 AMA (exactly strategy-proof): 0.8749 ± 0.0004; issue 16's target 0.878."]
    return "\n".join(out) + "\n"


def extrapolate(runs: list[dict]) -> dict[str, float]:
    est = {}
    for n in sorted({r["bidders"] for r in runs}):
        rs = sorted((r for r in runs if r["bidders"] == n), key=lambda r: r["K"])
        if len(rs) >= 2:
            (k1, b1), (k2, b2) = (rs[-2]["K"], rs[-2]["bound"]), (rs[-1]["K"], rs[-1]["bound"])
            est[str(n)] = b2 - (b1 - b2) / ((k2 / k1) ** 2 - 1)
    return est


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grids", default="10,20", help="comma-separated grid sizes K (default 10,20)")
    ap.add_argument("--bidders", type=int, default=2, help="bidders (default 2)")
    ap.add_argument("--check-grids", default="10,20", help="grid sizes of the one-bidder check ('' for none)")
    ap.add_argument("--max-iterations", type=int, default=0, help="stop each LP after this many rounds of cuts "
                    "(0, the default: until none is violated); an early stop still bounds, more loosely")
    args = ap.parse_args()
    try:
        grids = sorted({int(s) for s in args.grids.split(",") if s})
        checks = sorted({int(s) for s in args.check_grids.split(",") if s})
    except ValueError:
        ap.error("--grids and --check-grids take comma-separated integers")
    if not grids or min(grids + checks) < 2 or args.bidders < 2 or args.max_iterations < 0:
        ap.error("need grid sizes >= 2, --bidders >= 2 and --max-iterations >= 0")
    load = os.getloadavg()[0]
    runs = []
    for n, ks in ((1, checks), (args.bidders, grids)):
        for k in ks:
            r = upper_bound(k, n, max_iterations=args.max_iterations)
            r.pop("x")
            runs.append(r)
    res = {"command": "python benchmarks/frontier_bound.py " + " ".join(
        f"--{a.replace('_', '-')} {v}" for a, v in vars(args).items()), "cores": os.cpu_count(), "load": load,
        "runs": runs, "estimates": extrapolate(runs)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "frontier_bound.json").write_text(json.dumps(res, indent=1) + "\n")
    (RESULTS / "frontier_bound.md").write_text(report(res))
    print(report(res))


if __name__ == "__main__":
    main()
