"""How much an entry fee can add to item-wise Myerson with many bidders (issue 16's 5x10 target);
results in ``benchmarks/results/entry_fee_bound.{md,json}``.

Issue 16 asks for a strategy-proof 5x10 auction (five additive bidders, ten items, values U[0,1])
2% above item-wise Myerson (6.71875). The shipped ``ama_5x10_fee`` earns +0.62%, mostly from its
entry fee (``zkauction/learn/ama.py``: bidder i pays a fee that depends on the others' bids to take
its favourite option at all). This measures how far any fee of that kind could go: the family of
auctions in which bidder i faces, for each item j, the price max(r, p_j), p_j the others' highest
bid on j, and pays a fee e to buy anything, **r and e any functions of the others' bids**. Every
such auction is strategy-proof (bidder i's prices and fee do not depend on its own bids) and
feasible (a bidder buys item j only above every other bid on it). Item-wise Myerson is r = 1/2, e = 0.

For each sampled context (the others' bids), the best (r, e) on a grid is chosen on ``--draws``
draws of bidder i's values and its revenue measured on as many fresh ones; the auction that does
this in every context is one of the family, so the figure is an unbiased estimate of what that
auction earns (the choice from a finite sample makes it a little less than the family's best). By
symmetry the revenue is n times bidder i's payment. Paired with item-wise Myerson on the same draws,
so the difference has a small standard error.

    python benchmarks/entry_fee_bound.py                      # 5x10, 2,000 contexts (about 4 CPU minutes)
    python benchmarks/entry_fee_bound.py --contexts 200 --no-write
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def itemwise_myerson(n: int, m: int) -> float:
    """Exact: m items, each sold by Myerson's auction to n bidders U[0,1] (reserve 1/2): m times
    n * integral_{1/2}^{1} (2v - 1) v^(n-1) dv (the expected highest virtual value, when positive)."""
    return m * (2 * n * (1 - 2.0 ** -(n + 1)) / (n + 1) - (1 - 2.0 ** -n))


def best_fee(u: np.ndarray, pay: np.ndarray, fees: np.ndarray) -> tuple[float, float]:
    """max over e in ``fees`` of mean((pay + e) [u >= e]) and its argmax (all fees at once)."""
    order = np.argsort(-u)
    us, ps = u[order], pay[order]
    csum = np.concatenate([[0.0], np.cumsum(ps)])
    k = np.searchsorted(-us, -fees, side="right")  # how many draws have u >= e
    rev = (csum[k] + fees * k) / len(u)
    i = int(np.argmax(rev))
    return float(rev[i]), float(fees[i])


def run(n: int, m: int, contexts: int, draws: int, seed: int, reserves: np.ndarray, fees: np.ndarray,
        progress: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    started = time.process_time()
    base, fixed, free = np.zeros(contexts), np.zeros(contexts), np.zeros(contexts)
    chosen = np.zeros((contexts, 2))
    for c in range(contexts):
        p = rng.random((n - 1, m)).max(axis=0)  # the others' highest bid on each item
        fit, test = rng.random((draws, m)), rng.random((draws, m))

        def outcome(v: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
            price = np.maximum(r, p)
            win = v > price
            return ((v - price) * win).sum(1), (price * win).sum(1)  # utility before the fee, payment

        best, e_half = (-1.0, 0.5, 0.0), 0.0
        for r in reserves:
            u, pay = outcome(fit, r)
            rev, e = best_fee(u, pay, fees)
            if rev > best[0]:
                best = (rev, float(r), e)
            if r == 0.5:
                e_half = e  # the best fee at Myerson's reserve
        u, pay = outcome(test, 0.5)
        base[c] = pay.mean()
        fixed[c] = np.where(u >= e_half, pay + e_half, 0.0).mean()
        _, r, e = best
        u, pay = outcome(test, r)
        free[c] = np.where(u >= e, pay + e, 0.0).mean()
        chosen[c] = (r, e)
        if progress and (c + 1) % max(1, contexts // 20) == 0:
            print(f"  {c + 1}/{contexts} contexts, {time.process_time() - started:.0f} CPU s", file=sys.stderr)
    exact = itemwise_myerson(n, m)

    def summary(x: np.ndarray) -> dict:
        d = n * (x - base)
        return {"revenue": exact + float(d.mean()), "gain": float(d.mean()), "gain_se": float(d.std(ddof=1) / np.sqrt(contexts)),
                "gain_pct": 100 * float(d.mean()) / exact, "gain_pct_se": 100 * float(d.std(ddof=1) / np.sqrt(contexts)) / exact}

    return {"setting": f"{n}x{m}", "n": n, "m": m, "contexts": contexts, "draws": draws, "seed": seed,
            "itemwise_myerson": exact, "itemwise_myerson_sampled": float(n * base.mean()),
            "fee_at_half": summary(fixed), "reserve_and_fee": summary(free),
            "share_with_fee": float((chosen[:, 1] > 0).mean()), "mean_fee": float(chosen[:, 1].mean()),
            "mean_reserve": float(chosen[:, 0].mean()), "cpu_s": time.process_time() - started}


def report(rows: list[dict], command: str) -> str:
    out = ["# Entry fees over item-wise Myerson: how far the family goes", "",
           f"Command: `{command}`", "",
           "Bidder i faces price max(r, others' highest bid) per item and a fee e to buy anything, r and e chosen "
           "per context (the others' bids) from a grid on one sample of its values and measured on a fresh one; "
           "revenue = item-wise Myerson (exact) + the paired difference, ± one standard error.", "",
           "| setting | item-wise Myerson | best fee, reserve 1/2 | best reserve and fee | contexts x draws | CPU s |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["fee_at_half"], r["reserve_and_fee"]
        out.append(f"| {r['setting']} | {r['itemwise_myerson']:.5f} | {a['revenue']:.4f} ({a['gain_pct']:+.2f}% ± {a['gain_pct_se']:.2f}) "
                   f"| {b['revenue']:.4f} ({b['gain_pct']:+.2f}% ± {b['gain_pct_se']:.2f}) | {r['contexts']} x {r['draws']} "
                   f"| {r['cpu_s']:.0f} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", default="5x10", help="comma-separated NxM (default 5x10)")
    ap.add_argument("--contexts", type=int, default=2000, help="sampled contexts (the others' bids)")
    ap.add_argument("--draws", type=int, default=8000, help="draws of bidder i's values to choose on, and as many to measure on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="print only; do not write benchmarks/results")
    a = ap.parse_args()
    settings = []
    for s in a.settings.split(","):
        try:
            n, m = (int(x) for x in s.lower().split("x"))
            if n < 2 or m < 1 or n > 64 or m > 64:
                raise ValueError
        except ValueError:
            ap.error(f"--settings {s!r}: expected NxM with 2 <= N <= 64 and 1 <= M <= 64, e.g. 5x10")
        settings.append((n, m))
    if not 1 <= a.contexts <= 10**6 or not 10 <= a.draws <= 10**6:
        ap.error("--contexts must be in 1..10^6 and --draws in 10..10^6")
    reserves = np.round(np.linspace(0.0, 0.7, 15), 6)  # steps of 0.05 (0.5, item-wise Myerson's, among them)
    rows = []
    for n, m in settings:
        fees = np.linspace(0.0, 0.2 * m, 401)
        rows.append(run(n, m, a.contexts, a.draws, a.seed, reserves, fees))
    command = "python benchmarks/entry_fee_bound.py " + " ".join(sys.argv[1:])
    text = report(rows, command.strip())
    print(text)
    if not a.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "entry_fee_bound.md").write_text(text)
        (RESULTS / "entry_fee_bound.json").write_text(json.dumps({"command": command.strip(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
