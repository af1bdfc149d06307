"""Rounds per second of the credible protocol with every check, beside the default protocol of the
paper's appendix A.1 on the same bids, measured in the same run.

    .venv/bin/python benchmarks/round_throughput.py [--rounds 300] [--circuit circuits/NAME ...]
        [--compile trained/ama_3x10_uniform --compile-rounds 100]

``--compile TRAINED`` compiles a trained auction that ships no circuit (the 3x10's proving key is
424 MB) into a temporary folder with an INSECURE dev SRS, the proving key deleted after setup: the
run only needs the outcome function and the verifying key's hash. Each setting records whether its
outcomes came from the exact fixed-point evaluator or from ezkl's witness (the fallback for a
circuit the evaluator does not support, or a round it flags).

"In blocks" (``--block B``, default 64; the announcement's ``block``): each step of a block's
rounds is taken at once (one signature per party and step, one transaction and checkpoint), with
every check of every round kept (zkauction/protocol/rounds.py: play_block); the default protocol is then also
run in blocks (one batched evaluation, one signature, one transaction a block). Both are also
measured one round at a time.

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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zkauction.protocol.auctioneer import circuit_outcome_function  # noqa: E402
from zkauction.protocol.demo import auction_info, load_circuit  # noqa: E402
from zkauction.protocol.local import LocalRun, simulated_bids  # noqa: E402
from zkauction.protocol.log import Ledger, SigningKey  # noqa: E402
from zkauction.zk.commitments import snap_bids  # noqa: E402
from zkauction.zk.fixedpoint import FixedPointEvaluator, UnsupportedCircuit  # noqa: E402

OUT = ROOT / "benchmarks" / "results"


def compile_into(trained: Path, tmp: Path) -> tuple[Path, dict[str, float]]:
    """Compile ``trained`` into ``tmp/<name>`` (dev SRS, no fidelity check, proving key deleted)."""
    import resource

    from zkauction.zk.compile import compile_auction

    def cpu() -> float:
        u = resource.getrusage(resource.RUSAGE_SELF)
        return u.ru_utime + u.ru_stime

    out = tmp / Path(trained).name
    t, c = time.perf_counter(), cpu()
    compile_auction(trained, out, dev_srs=True, fidelity_samples=0, keep_pk=False)
    return out, {"compile_s": time.perf_counter() - t, "compile_cpu_s": cpu() - c}


def evaluator_report(circuit, bids: dict[int, list[list[float]]]) -> dict[str, object]:
    """Which computation gives the outcomes: the exact evaluator (and how many rounds it flagged, sent
    to ezkl's witness) or ezkl's witness for every round (the evaluator's refusal)."""
    import numpy as np

    try:
        ev = FixedPointEvaluator.from_circuit(circuit)
    except UnsupportedCircuit as e:
        return {"outcomes_from": "ezkl witness (exact evaluator refused the circuit)", "unsupported": str(e)}
    rows = np.array([[snap_bids(b, circuit.input_scale) for b in bids[r]] for r in sorted(bids)], dtype=np.float64)
    flagged = int((~ev.evaluate(rows).valid).sum())
    return {"outcomes_from": "exact fixed-point evaluator", "rounds_flagged_to_witness": flagged}


def measure(circuit_dir: Path, T: int, tmp: Path, extra: dict[str, float] | None = None, block: int = 64) -> dict[str, object]:
    circuit = load_circuit(circuit_dir)
    setting = circuit.auction_setting()
    participation = circuit.participation_model()
    t0 = time.perf_counter()
    outcome = circuit_outcome_function(circuit)  # built once (evaluator with its ezkl probes)
    build_s = time.perf_counter() - t0
    bids = {r: simulated_bids(setting, participation, 0, r) for r in range(1, T + 1)}
    how = evaluator_report(circuit, bids)
    zero = ["00" * 32] * setting.n
    many = getattr(outcome, "many", None)

    def cpu_wall(fn: Any) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - t0, time.process_time() - c0

    # default protocol (appendix A.1): outcome on the bids, logged signed and durable, one round at a time
    def default_rounds() -> None:
        key = SigningKey.generate()
        with Ledger.open(tmp / f"default_{circuit_dir.name}.db") as ledger:
            for r in range(1, T + 1):
                snapped = [list(snap_bids(b, circuit.input_scale)) for b in bids[r]]
                out = outcome(snapped, zero)
                ledger.append("outcome", {"bids": snapped, **out.to_dict()}, key, round=r)

    # the same in blocks: a block's outcomes in one batched evaluation, one signature, one transaction
    def default_blocks() -> None:
        key = SigningKey.generate()
        with Ledger.open(tmp / f"default_blocks_{circuit_dir.name}.db") as ledger:
            for start in range(1, T + 1, block):
                rs = range(start, min(start + block, T + 1))
                snapped = [[list(snap_bids(b, circuit.input_scale)) for b in bids[r]] for r in rs]
                outs = many([(b, zero) for b in snapped]) if many else [outcome(b, zero) for b in snapped]
                ledger.append_many([("outcome", {"bids": b, **o.to_dict()}, key, r, None) for r, b, o in zip(rs, snapped, outs)],
                                   batch_sign=True)

    # ours, every check: one round at a time, then in blocks
    entries = {}

    def ours(b: int, tag: str = "") -> Any:
        def go() -> None:
            run = LocalRun.create(tmp / f"ours_{b}{tag}_{circuit_dir.name}.db", outcome, setting=setting, participation=participation,
                                  input_scale=circuit.input_scale, auction=auction_info(circuit), rounds=T, audits=1,
                                  mode="zk", circuit=circuit, block=b)
            run.bids_of_round = lambda r: bids[r]
            t0, c0 = time.perf_counter(), time.process_time()
            played = run.play()
            entries[b] = (len(run.ledger), time.perf_counter() - t0, time.process_time() - c0)
            run.close()
            assert played == T
        return go

    ours(block, "_warm")()  # warm-up (imports, evaluator caches), not counted
    d1 = cpu_wall(default_rounds)
    db = cpu_wall(default_blocks)
    ours(1)()
    o1 = entries[1][1:]
    ours(block)()
    ob = entries[block][1:]
    return {
        "circuit": circuit_dir.name, "n": setting.n, "m": setting.m, "rounds": T, "block": block, "logrows": circuit.logrows,
        **how, "outcome_function_build_s": build_s, **(extra or {}),
        "rounds_per_s": T / ob[0], "cpu_s_per_round": ob[1] / T,
        "default_rounds_per_s": T / db[0], "default_cpu_s_per_round": db[1] / T,
        "ratio_per_round_cost": ob[0] / db[0], "ratio_cpu_per_round": ob[1] / db[1],
        "one_at_a_time": {"rounds_per_s": T / o1[0], "cpu_s_per_round": o1[1] / T,
                          "default_rounds_per_s": T / d1[0], "default_cpu_s_per_round": d1[1] / T,
                          "ratio_cpu_per_round": o1[1] / d1[1]},
        "ratio_cpu_blocks_vs_default_one_at_a_time": ob[1] / d1[1],
        "log_entries_per_round": entries[block][0] / T,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--circuit", type=Path, action="append", default=None,
                    help="compiled circuit folder(s) (default: circuits/ama_2x2_uniform)")
    ap.add_argument("--compile", type=Path, action="append", default=[], metavar="TRAINED",
                    help="trained auction(s) to compile into a temporary folder and measure too")
    ap.add_argument("--compile-rounds", type=int, default=None, help="rounds for the --compile settings (default --rounds)")
    ap.add_argument("--block", type=int, default=64, help="rounds per block (default 64)")
    args = ap.parse_args()
    circuits = args.circuit or [ROOT / "circuits" / "ama_2x2_uniform"]
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(c, args.rounds, Path(tmp), block=args.block) for c in circuits]
        for trained in args.compile:
            load_c = os.getloadavg()
            folder, extra = compile_into(trained, Path(tmp) / "compiled")
            extra["load_at_compile"] = load_c[0]
            rows.append(measure(folder, args.compile_rounds or args.rounds, Path(tmp), extra, block=args.block))
    load1 = os.getloadavg()
    result = {"settings": {f"{r['n']}x{r['m']}": r for r in rows}, "load_start": load0, "load_end": load1,
              "cores": os.cpu_count()}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "round_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Per-round throughput: the credible protocol with every check, beside the default protocol",
        "",
        f"`benchmarks/round_throughput.py --rounds {args.rounds} --block {args.block}"
        + "".join(f" --compile {c}" for c in args.compile)
        + (f" --compile-rounds {args.compile_rounds}" if args.compile_rounds else "")
        + f"`; {os.cpu_count()} cores shared with other jobs, load average "
        f"{load0[0]:.2f} at the start and {load1[0]:.2f} at the end (1 min). Both protocols compute the outcome "
        "the same way (the exact fixed-point evaluator) and log to SQLite with an fsync per transaction. "
        "**In blocks**: each protocol takes a block's rounds in one pass (ours: zkauction.protocol.rounds.play_block; the "
        "default: one batched evaluation, one signature and one transaction a block). **One at a time**: a "
        "transaction (and a signature per entry) a round. Wall figures depend on the load; the CPU figures "
        "(process time, both cores) and the ratios much less.",
        "",
        "| setting | circuit | rounds | block | ours rounds/s | default rounds/s | ours CPU ms/round | default CPU ms/round | CPU ratio | log entries/round |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        one = r["one_at_a_time"]
        lines.append(f"| {r['n']}x{r['m']} | {r['circuit']} | {r['rounds']} | {r['block']} | {r['rounds_per_s']:.0f} | "
                     f"{r['default_rounds_per_s']:.0f} | {r['cpu_s_per_round'] * 1e3:.3f} | {r['default_cpu_s_per_round'] * 1e3:.3f} | "
                     f"{r['ratio_cpu_per_round']:.1f}x | {r['log_entries_per_round']:.1f} |")
        lines.append(f"| {r['n']}x{r['m']} | {r['circuit']} | {r['rounds']} | 1 | {one['rounds_per_s']:.0f} | "
                     f"{one['default_rounds_per_s']:.0f} | {one['cpu_s_per_round'] * 1e3:.3f} | {one['default_cpu_s_per_round'] * 1e3:.3f} | "
                     f"{one['ratio_cpu_per_round']:.1f}x | |")
    lines.append("")
    for r in rows:
        lines.append(f"- {r['n']}x{r['m']}: ours in blocks against the default one round at a time (one durable append a round): "
                     f"CPU ratio {r['ratio_cpu_blocks_vs_default_one_at_a_time']:.2f}x.")
    for r in rows:
        note = f"- {r['n']}x{r['m']} (`{r['circuit']}`, logrows {r['logrows']}): outcomes from the {r['outcomes_from']}"
        if "rounds_flagged_to_witness" in r:
            note += f", {r['rounds_flagged_to_witness']} of {r['rounds']} rounds flagged to ezkl's witness"
        if "unsupported" in r:
            note += f" ({r['unsupported']})"
        if "compile_s" in r:
            note += (f"; compiled in the run into a temporary folder (dev SRS, proving key deleted): "
                     f"{r['compile_s']:.1f} s wall, {r['compile_cpu_s']:.1f} s CPU, load {r['load_at_compile']:.1f}")
        lines.append(note + ".")
    (OUT / "round_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
