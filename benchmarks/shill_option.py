"""What a shill's option to withdraw after seeing the honest openings is worth to the auctioneer.

The last of n bidder slots is the auctioneer's shill, committed to a constant bid s on every item
(sealed: it cannot depend on the honest bids); the other n - 1 bidders are honest, values drawn from
the setting. Once the honest openings are in, the auctioneer either has the shill open (revenue: the
honest bidders' payments with the shill in the auction; items the shill wins are unsold) or
withdraw. Three rules for a withdrawal:

- ``drop`` (logs announced before the rule existed): the round goes on without the shill, so the
  auctioneer takes max(with the shill, without it) on every profile, chosen after seeing the bids;
- ``void`` (the rule announced now): nothing is sold, so a withdrawal takes 0 and the shill always
  opens: max(with the shill, 0) = with the shill;
- no shill at all: the slot stays empty.

Results in ``benchmarks/results/shill_option.{md,json}``; the net's forward pass in float32 (the
auction the circuit proves, up to its fixed-point rounding).

    .venv/bin/python benchmarks/shill_option.py trained/ama_3x10_menu512 trained/ama_2x2_uniform
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def measure(path: str, profiles: int, grid: list[float], seed: int) -> dict:
    import torch

    from zkauction.learn.checkpoint import load_auction

    net = load_auction(path)
    net.eval()
    n, m = net.setting.n, net.setting.m
    if n < 2:
        raise SystemExit(f"{path}: a shill needs a second bidder slot (n = {n})")
    values = net.setting.sample_values(profiles, generator=torch.Generator().manual_seed(seed))
    honest = list(range(n - 1))
    rows = []
    with torch.no_grad():
        _, p = net(values)
        everyone = p.sum(1)
        empty = values.clone()
        empty[:, n - 1] = 0  # all-zero bids: absent
        _, p = net(empty)
        alone = p[:, honest].sum(1)
        for s in grid:
            shilled = values.clone()
            shilled[:, n - 1] = s
            _, p = net(shilled)
            opened = p[:, honest].sum(1)
            drop = torch.maximum(opened, alone)
            rows.append({"shill_bid": s, "always_open": float(opened.mean()), "always_open_se": float(opened.std() / profiles**0.5),
                         "drop": float(drop.mean()), "drop_se": float(drop.std() / profiles**0.5),
                         "void": float(torch.maximum(opened, torch.zeros_like(opened)).mean()),
                         "withdrawn_share": float((alone > opened).double().mean())})
    best = max(rows, key=lambda r: r["drop"])
    best_open = max(rows, key=lambda r: r["always_open"])
    return {"net": path, "n": n, "m": m, "profiles": profiles, "seed": seed, "all_honest": float(everyone.mean()),
            "shill_slot_empty": float(alone.mean()), "rows": rows, "best_drop": best, "best_always_open": best_open}


def report(results: list[dict], command: str, load: float) -> str:
    out = ["# A shill's option to withdraw after seeing the honest openings", "",
           f"`{command}`; float32 forward passes, 2 cores, load average {load:.2f} at the start.", "",
           "The last bidder slot is the auctioneer's shill, with a constant sealed bid s on every item; revenue is the "
           "honest bidders' payments a round (items the shill wins are unsold). `drop`: a withdrawal leaves the round to "
           "the others, so the auctioneer takes the better of the two after seeing the bids; `void` (now announced): a "
           "withdrawal sells nothing, so the shill always opens.", ""]
    for r in results:
        out += [f"## `{r['net']}` ({r['n']}x{r['m']}, {r['profiles']:,} profiles)", "",
                f"All {r['n']} bidders honest: {r['all_honest']:.4f}. Shill slot empty: {r['shill_slot_empty']:.4f}. "
                f"Best shill that always opens (s = {r['best_always_open']['shill_bid']:g}): "
                f"{r['best_always_open']['always_open']:.4f}. Best shill with the option under `drop` "
                f"(s = {r['best_drop']['shill_bid']:g}): {r['best_drop']['drop']:.4f} "
                f"(+{r['best_drop']['drop'] - max(r['best_always_open']['always_open'], r['shill_slot_empty']):.4f} over "
                "the best without the option).", "",
                "| shill bid s | always opens | with the option, `drop` | with the option, `void` | rounds withdrawn under `drop` |",
                "|---|---|---|---|---|"]
        out += [f"| {x['shill_bid']:g} | {x['always_open']:.4f} ± {x['always_open_se']:.4f} | {x['drop']:.4f} ± {x['drop_se']:.4f} "
                f"| {x['void']:.4f} | {x['withdrawn_share']:.1%} |" for x in r["rows"]]
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nets", nargs="+", help="trained auction folders (n >= 2)")
    ap.add_argument("--profiles", type=int, default=20_000)
    ap.add_argument("--grid", default="0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0", help="the shill's constant bids to try")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    grid = [float(x) for x in a.grid.split(",")]
    load = os.getloadavg()[0]
    t = time.time()
    results = [measure(p, a.profiles, grid, a.seed) for p in a.nets]
    command = "python benchmarks/shill_option.py " + " ".join(a.nets) + (f" --profiles {a.profiles}" if a.profiles != 20_000 else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "shill_option.json").write_text(json.dumps({"command": command, "load": load, "seconds": time.time() - t,
                                                           "results": results}, indent=2) + "\n")
    (RESULTS / "shill_option.md").write_text(report(results, command, load) + "\n")
    print(report(results, command, load))


if __name__ == "__main__":
    main()
