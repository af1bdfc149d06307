"""Rounds per second of the credible protocol with every check, beside the default protocol of the
paper's appendix A.1 on the same bids, measured in the same run.

    .venv/bin/python benchmarks/round_throughput.py [--rounds 300] [--circuit circuits/NAME ...]

"Every check": each bidder registers, commits (Poseidon), checks the checkpointed close (signature,
consistency and inclusion proofs) before sending its signed opening; the auctioneer checks the
signature and the opening (Poseidon) and the support, computes the canonical outcome, logs it
(signed, SQLite, one fsync per transaction) and signs a checkpoint; each bidder checks the outcome.
The default protocol: the bidders send their bids, the auctioneer computes the same canonical
outcome and logs it signed (one durable append a round). Both compute the outcome the same way
(the exact fixed-point evaluator), so the ratio is the protocol's own cost.

Writes benchmarks/results/round_throughput.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zkauction.learn.setting import AuctionSetting, ParticipationModel  # noqa: E402
from zkauction.protocol.auctioneer import circuit_outcome_function  # noqa: E402
from zkauction.protocol.demo import auction_info, load_circuit  # noqa: E402
from zkauction.protocol.local import LocalRun, simulated_bids  # noqa: E402
from zkauction.protocol.log import Ledger, SigningKey  # noqa: E402
from zkauction.zk.commitments import snap_bids  # noqa: E402

OUT = ROOT / "benchmarks" / "results"


def measure(circuit_dir: Path, T: int, tmp: Path) -> dict[str, object]:
    circuit = load_circuit(circuit_dir)
    setting = AuctionSetting.from_dict(circuit.manifest["setting"])
    participation = ParticipationModel.from_dict(circuit.manifest.get("participation", {}), setting.n)
    outcome = circuit_outcome_function(circuit)  # built once (evaluator with its ezkl probes)
    bids = {r: simulated_bids(setting, participation, 0, r) for r in range(1, T + 1)}
    zero = ["00" * 32] * setting.n

    # default protocol (appendix A.1): outcome on the bids, logged signed and durable
    key = SigningKey.generate()
    t0, c0 = time.perf_counter(), time.process_time()
    with Ledger.open(tmp / f"default_{circuit_dir.name}.db") as ledger:
        for r in range(1, T + 1):
            snapped = [list(snap_bids(b, circuit.input_scale)) for b in bids[r]]
            out = outcome(snapped, zero)
            ledger.append("outcome", {"bids": snapped, **out.to_dict()}, key, round=r)
    default_s, default_cpu = time.perf_counter() - t0, time.process_time() - c0

    # ours, every check
    run = LocalRun.create(tmp / f"ours_{circuit_dir.name}.db", outcome, setting=setting, participation=participation,
                          input_scale=circuit.input_scale, auction=auction_info(circuit), rounds=T, audits=1,
                          mode="zk", circuit=circuit)
    run.bids_of_round = lambda r: bids[r]
    t0, c0 = time.perf_counter(), time.process_time()
    played = run.play()
    ours_s, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    entries = len(run.ledger)
    run.close()
    assert played == T
    return {
        "circuit": circuit_dir.name, "n": setting.n, "m": setting.m, "rounds": T,
        "rounds_per_s": T / ours_s, "default_rounds_per_s": T / default_s,
        "ratio_per_round_cost": ours_s / default_s,
        "cpu_s_per_round": ours_cpu / T, "default_cpu_s_per_round": default_cpu / T,
        "log_entries_per_round": entries / T,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--circuit", type=Path, action="append", default=None,
                    help="compiled circuit folder(s) (default: circuits/ama_2x2_uniform)")
    args = ap.parse_args()
    circuits = args.circuit or [ROOT / "circuits" / "ama_2x2_uniform"]
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(c, args.rounds, Path(tmp)) for c in circuits]
    load1 = os.getloadavg()
    result = {"settings": {f"{r['n']}x{r['m']}": r for r in rows}, "load_start": load0, "load_end": load1,
              "cores": os.cpu_count()}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "round_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Per-round throughput: the credible protocol with every check, beside the default protocol",
        "",
        f"`benchmarks/round_throughput.py --rounds {args.rounds}`; {os.cpu_count()} cores, load average "
        f"{load0[0]:.2f} at the start and {load1[0]:.2f} at the end (1 min). Both protocols compute the outcome "
        "with the exact fixed-point evaluator and log to SQLite with an fsync per transaction.",
        "",
        "| setting | circuit | rounds | ours rounds/s | default rounds/s | cost ratio | ours CPU ms/round | default CPU ms/round | log entries/round |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['n']}x{r['m']} | {r['circuit']} | {r['rounds']} | {r['rounds_per_s']:.1f} | "
                     f"{r['default_rounds_per_s']:.1f} | {r['ratio_per_round_cost']:.1f}x | {r['cpu_s_per_round'] * 1e3:.2f} | "
                     f"{r['default_cpu_s_per_round'] * 1e3:.2f} | {r['log_entries_per_round']:.1f} |")
    (OUT / "round_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
