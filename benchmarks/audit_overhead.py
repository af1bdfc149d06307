"""Per-round cost of the credible protocol (Algorithm 1) against the default protocol of appendix A.1.

Same auction, same bids. The default protocol solicits bids and runs the auction: nothing else (no
commitments, no ledger, no audit). Ours: each present bidder commits (Poseidon) and signs; the
auctioneer checks each opening against its commitment, computes the canonical (circuit fixed-point)
outcome, signs it and appends it to the SQLite ledger; after T rounds, k rounds are drawn from the
bidders' seeds and proven in zero knowledge, and each proof is verified. Proving is amortised over T.

    .venv/bin/python benchmarks/audit_overhead.py [--circuit demo-out/circuit] [--rounds 200]

Writes benchmarks/results/audit_overhead.md (and .json). Without --circuit it uses (and if needed
compiles, with an INSECURE dev SRS) the demo auction's circuit in demo-out/circuit.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zkauction.zk import commitments  # noqa: E402  (sets EZKL_REPO_PATH)
from zkauction.zk.bundle import verify_bundle  # noqa: E402
from zkauction.learn.checkpoint import load_auction  # noqa: E402
from zkauction.zk.circuit import Circuit  # noqa: E402
from zkauction.zk.compile import compile_auction  # noqa: E402
from zkauction.zk.witness import canonical_outcome  # noqa: E402
from zkauction.protocol.log import Ledger, SigningKey, verify_signature  # noqa: E402
from zkauction.protocol.local import LocalRun, run_rounds, simulated_bids
from zkauction.protocol.auctioneer import circuit_outcome_function
from zkauction.protocol.state import read_state
from zkauction.learn.setting import AuctionSetting, ParticipationModel  # noqa: E402

T_GRID = (100, 1_000, 10_000, 100_000)
K_GRID = (1, 2, 5)


def timeit(fn, repeat: int) -> float:
    """Median seconds per call."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuit", type=Path, default=ROOT / "demo-out" / "circuit")
    ap.add_argument("--auction", type=Path, default=None, help="trained auction to compile if --circuit is missing")
    ap.add_argument("--rounds", type=int, default=200, help="rounds actually played for each protocol")
    ap.add_argument("--proofs", type=int, default=2, help="proofs timed")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "audit_overhead.md")
    args = ap.parse_args()
    torch.set_num_threads(1)

    if not (args.circuit / "manifest.json").is_file():
        from zkauction.cli.protocol import default_demo_auction

        trained = args.auction or default_demo_auction()
        print(f"compiling {trained} -> {args.circuit} (INSECURE dev SRS)")
        compile_auction(trained, args.circuit, dev_srs=True)
    circuit = Circuit.load(args.circuit)
    setting = AuctionSetting.from_dict(circuit.manifest["setting"])
    participation = ParticipationModel.from_dict(circuit.manifest.get("participation", {}), setting.n)
    trained_dir = Path(circuit.manifest["net"]["trained_dir"])
    net = load_auction(trained_dir) if (trained_dir / "config.json").is_file() else None
    T = args.rounds
    bids = {r: simulated_bids(setting, participation, 0, r) for r in range(1, T + 1)}
    present = sum(1 for r in bids for row in bids[r] if any(row))
    S = circuit.input_scale
    zero = "0" * 64

    # --- default protocol (appendix A.1): solicit bids, run the auction ------------------------------
    results: dict[str, float] = {}
    if net is not None:
        t = time.perf_counter()
        with torch.no_grad():
            for r in range(1, T + 1):
                net(torch.tensor(bids[r], dtype=torch.float32)[None])
        results["default_torch_s"] = (time.perf_counter() - t) / T
    # --- primitives ----------------------------------------------------------------------------------
    key = SigningKey.generate()
    row = [commitments.snap_bid(0.37, S)] * setting.m
    salt = commitments.new_salt()
    sig = key.sign(b"x" * 32)
    prim = {
        "poseidon_commit_s": timeit(lambda: commitments.commit(row, salt, S), 200),
        "ed25519_sign_s": timeit(lambda: key.sign(b"x" * 32), 200),
        "ed25519_verify_s": timeit(lambda: verify_signature(key.public_hex, b"x" * 32, sig), 200),
    }
    with tempfile.TemporaryDirectory() as tmp:
        with Ledger.open(Path(tmp) / "l.db") as ledger:
            prim["ledger_append_s"] = timeit(lambda: ledger.append("x", {"commitment": salt}, key, round=1), 200)
        with Ledger.open(Path(tmp) / "n.db", durable=False) as ledger:
            prim["ledger_append_normal_s"] = timeit(lambda: ledger.append("x", {"commitment": salt}, key, round=1), 200)
        with Ledger.in_memory() as ledger:
            prim["ledger_append_memory_s"] = timeit(lambda: ledger.append("x", {"commitment": salt}, key, round=1), 200)

    # --- our protocol: real runs over SQLite ledgers (fsync per append, and without), interleaved
    # round by round with the default protocol's canonical outcome, so that load from other jobs
    # hits all three alike.
    tmp_fast, tmp_run = tempfile.TemporaryDirectory(), tempfile.TemporaryDirectory()
    common = dict(setting=setting, participation=participation, input_scale=S, mode="zk", seed=0, circuit=circuit,
                  auction={"name": circuit.dir.name, "manifest_sha256": circuit.manifest_sha256(),
                           "vk_sha256": circuit.vk_sha256()}, rounds=T)
    fast = LocalRun.create(Path(tmp_fast.name) / "fast.db", circuit_outcome_function(circuit), audits=1,
                           durable=False, **common)
    run = LocalRun.create(Path(tmp_run.name) / "auction.db", circuit_outcome_function(circuit), audits=args.proofs,
                          **common)
    spent = {"default_canonical_s": 0.0, "ours_round_normal_s": 0.0, "ours_round_s": 0.0}
    for r in range(1, T + 1):
        t = time.perf_counter()
        canonical_outcome(circuit, [[commitments.snap_bid(x, S) for x in row] for row in bids[r]], [zero] * setting.n)
        spent["default_canonical_s"] += time.perf_counter() - t
        for name, lr in (("ours_round_normal_s", fast), ("ours_round_s", run)):
            t = time.perf_counter()
            run_rounds(lr.auctioneer, lr.bidders, lambda q: bids[q], [r])  # same bids as the default protocol
            spent[name] += time.perf_counter() - t
    results.update({k: v / T for k, v in spent.items()})
    fast.close()
    tmp_fast.cleanup()
    with tmp_run, run:
        t = time.perf_counter()
        sel = run.reveal()
        results["reveal_select_s"] = time.perf_counter() - t
        circuit.ensure_proving_key()
        prove_times, verify_times = [], []
        for r in sel.rounds:
            t = time.perf_counter()
            bundle = run.auctioneer.prove(r, circuit)
            prove_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            verify_bundle(bundle, circuit)
            verify_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        report = run.verdict()
        results["audit_check_s"] = time.perf_counter() - t
        assert report.valid, report
        t = time.perf_counter()
        run.ledger.verify_chain()
        results["chain_check_per_entry_s"] = (time.perf_counter() - t) / len(run.ledger)
        results["entries_per_round"] = len(run.ledger) / T
        proof_bytes = len(json.dumps(read_state(run.ledger).proofs[sel.rounds[0]].data))
    results["prove_s"] = statistics.median(prove_times)
    results["verify_s"] = statistics.median(verify_times)

    # --- amortised table -----------------------------------------------------------------------------
    base = results.get("default_torch_s", results["default_canonical_s"])
    rows = []
    for T_ in T_GRID:
        for k in K_GRID:
            if k > T_:
                continue
            audit = results["reveal_select_s"] + k * (results["prove_s"] + results["verify_s"])
            per_round = results["ours_round_s"] + audit / T_
            rows.append((T_, k, per_round, 1 / per_round, 1 / base, per_round / base))

    lines = [
        "# Audit overhead: Algorithm 1 against the default protocol (appendix A.1)",
        "",
        f"Auction: circuit `{circuit.dir}` ({circuit.manifest.get('net', {}).get('kind')}, n={setting.n}, m={setting.m}, "
        f"logrows {circuit.logrows}, INSECURE dev SRS); {T} rounds played per protocol, same bids "
        f"({present} bids from truthful simulated bidders, participation {participation.to_dict()['probabilities']}).",
        "",
        f"Machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        "torch threads 1; the shared 2-core machine **under concurrent load from other jobs**, so absolute "
        "figures are pessimistic and noisy; ratios are more telling.",
        "",
        "Command: `.venv/bin/python benchmarks/audit_overhead.py` "
        f"(`--circuit {args.circuit}` `--rounds {T}`)",
        "",
        "## Per round",
        "",
        "| protocol | per round | rounds/s |",
        "|---|---|---|",
    ]
    if "default_torch_s" in results:
        lines.append(f"| default (A.1), auction in PyTorch | {results['default_torch_s'] * 1e3:.3f} ms | {1 / results['default_torch_s']:.0f} |")
    lines += [
        f"| default (A.1), canonical outcome (ezkl witness) | {results['default_canonical_s'] * 1e3:.2f} ms | {1 / results['default_canonical_s']:.1f} |",
        f"| ours, rounds only (commit, sign, check openings, canonical outcome, sign, log), fsync per append | {results['ours_round_s'] * 1e3:.2f} ms | {1 / results['ours_round_s']:.1f} |",
        f"| ours, same, SQLite synchronous=NORMAL (safe against a killed process, not a power cut) | {results['ours_round_normal_s'] * 1e3:.2f} ms | {1 / results['ours_round_normal_s']:.1f} |",
        "",
        f"Protocol overhead beyond computing the canonical outcome: "
        f"{(results['ours_round_s'] - results['default_canonical_s']) * 1e3:.1f} ms per round with an fsync per append, "
        f"{(results['ours_round_normal_s'] - results['default_canonical_s']) * 1e3:.1f} ms without "
        "(bidders' Poseidon commitments and signatures, the auctioneer's opening checks, signed SQLite appends).",
        "",
        f"Ledger entries per round: {results['entries_per_round']:.2f}. Chain check: {results['chain_check_per_entry_s'] * 1e6:.0f} us per entry.",
        "",
        "Primitives (median):",
        "",
        "| primitive | cost |",
        "|---|---|",
        f"| Poseidon commitment ({setting.m} bids + salt) | {prim['poseidon_commit_s'] * 1e6:.0f} us |",
        f"| Ed25519 sign (pycryptodome) | {prim['ed25519_sign_s'] * 1e6:.0f} us |",
        f"| Ed25519 verify (pycryptodome) | {prim['ed25519_verify_s'] * 1e6:.0f} us |",
        f"| ledger append (SQLite WAL, synchronous=FULL: an fsync per entry; signing included) | {prim['ledger_append_s'] * 1e6:.0f} us |",
        f"| ledger append (SQLite WAL, synchronous=NORMAL: survives process crashes, not power cuts) | {prim['ledger_append_normal_s'] * 1e6:.0f} us |",
        f"| ledger append (in memory: hashing and signing only) | {prim['ledger_append_memory_s'] * 1e6:.0f} us |",
        "",
        "## Audit",
        "",
        f"Reveal + selection: {results['reveal_select_s']:.2f} s; prove one round: {results['prove_s']:.2f} s; "
        f"verify one proof: {results['verify_s']:.3f} s; auditor's checks of the {args.proofs} logged proofs "
        f"(chain replay, bundle-vs-ledger, ezkl verify): {results['audit_check_s']:.2f} s; proof bundle {proof_bytes / 1024:.0f} KB.",
        "",
        "## Amortised over T (rounds + audit of k rounds: reveal, select, prove, verify)",
        "",
        "| T | k | ours per round | ours rounds/s | default rounds/s | ours / default |",
        "|---|---|---|---|---|---|",
    ]
    for T_, k, per_round, ours_rps, base_rps, ratio in rows:
        lines.append(f"| {T_} | {k} | {per_round * 1e3:.2f} ms | {ours_rps:.1f} | {base_rps:.0f} | {ratio:.0f}x |")
    lines += [
        "",
        "The rounds themselves dominate once T is in the hundreds: proving k rounds costs k x "
        f"{results['prove_s']:.1f} s once per run. Per round, the floor is the auctioneer's opening checks and the "
        "canonical outcome (an ezkl witness); the default protocol pays neither, and is not credible.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    args.out.with_suffix(".json").write_text(json.dumps({"results": results, "primitives": prim, "rows": rows}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
