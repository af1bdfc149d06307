"""What checking a proof against the log costs at two log lengths: `zkauction verify proof.json --db D`
as a whole process, on a 16-round and a 3,000-round log of the shipped 2x2 affine maximizer.

    .venv/bin/python benchmarks/verify_cost.py [--long 3000] [--repeat 5]

Writes benchmarks/results/verify_cost.{md,json}. The check is one index lookup, one inclusion proof
and a comparison of roots (zkauction.protocol.bundle_log), so the two times should be close; the full
replay is `zkauction log verify`, timed here too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CIRCUIT = ROOT / "circuits" / "ama_2x2_uniform"
OUT = ROOT / "benchmarks" / "results"
ZK = [sys.executable, "-m", "zkauction.cli"]


def best_of(cmd: list[str], repeat: int, cwd: Path) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {r.stdout}{r.stderr}")
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", type=int, default=16)
    ap.add_argument("--long", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    results: dict[str, object] = {"load_start": os.getloadavg(), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, T in (("short", args.short), ("long", args.long)):
            d = tmp / label
            d.mkdir()
            t = time.perf_counter()
            subprocess.run(ZK + ["run", "--circuit", str(CIRCUIT), "--rounds", str(T), "--db", "a.db", "--json"],
                           cwd=d, check=True, capture_output=True)
            build = time.perf_counter() - t
            subprocess.run(ZK + ["prove", "--db", "a.db", "--round", "1", "--out", "p.json"], cwd=d, check=True,
                           capture_output=True)
            entries = json.loads(subprocess.run(ZK + ["log", "checkpoint", "--db", "a.db"], cwd=d, check=True,
                                                capture_output=True, text=True).stdout)["size"]
            results[label] = {
                "rounds": T, "log_entries": entries, "build_s": build,
                "verify_db_s": best_of(ZK + ["verify", "p.json", "--db", "a.db"], args.repeat, d),
                "verify_bundle_only_s": best_of(ZK + ["verify", "p.json"], args.repeat, d),
                "log_verify_s": best_of(ZK + ["log", "verify", "--db", "a.db"], 1, d),
            }
    results["load_end"] = os.getloadavg()
    s, lg = results["short"], results["long"]
    results["ratio_verify_db"] = lg["verify_db_s"] / s["verify_db_s"]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "verify_cost.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Checking a proof against the log, at two log lengths",
        "",
        f"`benchmarks/verify_cost.py`; best of {args.repeat} whole processes (`python -m zkauction.cli ...`); "
        f"{results['cores']} cores, load average {results['load_start'][0]:.2f} at the start, {results['load_end'][0]:.2f} at the end.",
        "",
        "| log | rounds | entries | `verify p.json --db` | `verify p.json` (no log) | `log verify` (full replay, once) |",
        "|---|---|---|---|---|---|",
    ]
    for label in ("short", "long"):
        r = results[label]
        lines.append(f"| {label} | {r['rounds']} | {r['log_entries']} | {r['verify_db_s']:.3f} s | "
                     f"{r['verify_bundle_only_s']:.3f} s | {r['log_verify_s']:.2f} s |")
    lines += ["", f"Ratio long / short for `verify --db`: **{results['ratio_verify_db']:.2f}** (target: at most 1.5)."]
    (OUT / "verify_cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
