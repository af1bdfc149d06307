"""Differential test of the exact fixed-point evaluator (zkauction.zk.fixedpoint) against ezkl's
witness, at scale, with the speed of both measured in the same run.

For each circuit: build the evaluator (FixedPointEvaluator.from_circuit, with its ezkl.table and
witness-probe guards), draw profiles with ``differential_profiles`` (the support's edges, absent
bidders, equal bids, coarse-grid ties, both sides of outcome changes found by sweeping one bid over
the grid, random profiles), and compare every round's outcome with ``witness.canonical_outcome``
(one ezkl witness per round, as the protocol computes it today). Circuits: the shipped
``circuits/ama_2x2_uniform``, and freshly compiled tiny ones of the other kinds (a 1x2 affine
maximizer, a tiny tanh RegretNet with non-zero biases, the trained 2x2 RegretNet).

Speeds: the evaluator on the whole batch (``evaluate``), ``canonical_outcomes`` (input checks and
Outcome objects included), ``fast_outcome_function`` one round at a time, and ezkl's witness one
round at a time. The report records the machine and its load average at the start and the end::

    nice .venv/bin/python benchmarks/fixedpoint_diff.py                 # all circuits, default sizes
    .venv/bin/python benchmarks/fixedpoint_diff.py --circuits ama_2x2_uniform --profiles 2000
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
os.environ.setdefault("EZKL_REPO_PATH", str(ROOT / ".ezkl"))
RESULTS = ROOT / "benchmarks" / "results"
JSON_OUT = RESULTS / "fixedpoint_diff.json"
MD_OUT = RESULTS / "fixedpoint_diff.md"

TINY = {"input_scale": 8, "mask_logit": 10.0, "decomp_base": 256, "decomp_legs": 4, "max_logrows": 12,
        "calibration_samples": 100, "fidelity_samples": 0, "keep_pk": False}
# name -> (source, compile options or None for a shipped circuit, default profiles, note)
CIRCUITS: dict[str, tuple[str, dict[str, Any] | None, int, str]] = {
    "ama_2x2_uniform": ("circuits/ama_2x2_uniform", None, 10_000, "shipped affine maximizer (full menu), as committed"),
    "ama_1x2_uniform": ("trained/ama_1x2_uniform", TINY, 10_000, "1x2 affine maximizer, compiled here (S=8)"),
    "regret_d1_w8_tanh": ("untrained:tanh", TINY, 10_000, "tiny RegretNet (tanh, softmax, sigmoid), random non-zero biases (S=8)"),
    "regret_2x2_trained": ("trained/2x2_regretnet", {**TINY, "max_logrows": 16}, 2_000, "trained RegretNet, depth 3, width 100 (S=8)"),
}


def build_circuit(name: str, work: Path) -> Any:
    from zkauction.zk.circuit import Circuit
    from zkauction.zk.compile import compile_auction

    src, options, _, _ = CIRCUITS[name]
    if options is None:
        return Circuit.load(ROOT / src)
    if src.startswith("untrained:"):
        import torch

        from zkauction.learn.checkpoint import save_checkpoint
        from zkauction.learn.nets import RegretNet
        from zkauction.learn.setting import AuctionSetting, ParticipationModel

        torch.manual_seed(0)
        net = RegretNet(AuctionSetting(2, 2), ParticipationModel.independent([0.7, 0.9]), depth=1, width=8,
                        activation=src.split(":")[1])
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        save_checkpoint(net, work / f"trained_{name}")
        src = str(work / f"trained_{name}")
    return compile_auction(ROOT / src if not Path(src).is_absolute() else Path(src), work / name, dev_srs=True, **options)


def rate(rounds: int, seconds: float) -> float:
    return round(rounds / seconds, 1) if seconds > 0 else float("inf")


def measure(name: str, profiles: int, seed: int, work: Path) -> dict[str, Any]:
    import numpy as np

    from zkauction.zk.commitments import int_to_felt
    from zkauction.zk.fixedpoint import FixedPointEvaluator, to_outcome
    from zkauction.zk.outcome import canonical_outcomes, fast_outcome_function
    from zkauction.zk.witness import canonical_outcome

    circuit = build_circuit(name, work)
    t = time.perf_counter()
    ev = FixedPointEvaluator.from_circuit(circuit)
    build_s = time.perf_counter() - t
    bids = ev.differential_profiles(circuit.support, profiles, seed=seed)
    t = time.perf_counter()
    res = ev.evaluate(bids)
    evaluate_s = time.perf_counter() - t
    t = time.perf_counter()
    batch = canonical_outcomes(circuit, bids.tolist(), evaluator=ev)
    batch_s = time.perf_counter() - t
    fast = fast_outcome_function(circuit)
    salts = [int_to_felt(0)] * circuit.n
    k_fast = min(2000, profiles)
    t = time.perf_counter()
    fast_out = [fast(bids[r].tolist(), salts) for r in range(k_fast)]
    fast_s = time.perf_counter() - t
    mismatched: list[dict[str, Any]] = []
    t = time.perf_counter()
    for r in range(profiles):
        want = canonical_outcome(circuit, bids[r].tolist(), salts)
        got = to_outcome(res.allocation[r], res.payment[r]) if res.valid[r] else None
        if want != got or batch[r] != want or (r < k_fast and fast_out[r] != want):
            mismatched.append({"round": r, "bids": bids[r].tolist(), "witness": want.to_dict(),
                               "evaluator": got.to_dict() if got else None})
        if (r + 1) % 1000 == 0:
            print(f"  {name}: {r + 1}/{profiles} rounds, {len(mismatched)} mismatches", flush=True)
    witness_s = time.perf_counter() - t
    absent = (~bids.any(axis=2)).any(axis=1)
    return {
        "circuit": name, "note": CIRCUITS[name][3], "kind": circuit.manifest["net"]["kind"],
        "n": circuit.n, "m": circuit.m, "input_scale": circuit.input_scale, "logrows": circuit.logrows,
        "output_scales": circuit.output_scales, "lookup_range": list(ev.lookup_range), "onnx_ops": ev.ops,
        "profiles": profiles, "seed": seed, "mismatches": len(mismatched), "mismatch_examples": mismatched[:5],
        "rounds_left_to_ezkl": int((~res.valid).sum()),
        "profiles_with_absent_bidder": int(absent.sum()),
        "profiles_with_equal_bids": int(sum(circuit.n > 1 and bool(b.any()) and all(np.array_equal(b[0], x) for x in b)
                                            for b in bids)),
        "evaluator_build_s": round(build_s, 3),
        "evaluate_rounds_per_s": rate(profiles, evaluate_s),
        "canonical_outcomes_rounds_per_s": rate(profiles, batch_s),
        "fast_outcome_function_rounds_per_s": rate(k_fast, fast_s),
        "witness_rounds_per_s": rate(profiles, witness_s),
        "speedup_batch": round(witness_s / batch_s, 1),
        "speedup_single_round": round((witness_s / profiles) / (fast_s / k_fast), 1),
    }


def write_report(doc: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    JSON_OUT.write_text(json.dumps(doc, indent=2) + "\n")
    m = doc["machine"]
    lines = [
        "# Exact fixed-point evaluator vs ezkl's witness",
        "",
        f"Generated by `benchmarks/fixedpoint_diff.py` on {doc['date']} (ezkl {doc['ezkl_version']}, numpy {doc['numpy']}).",
        (f"Machine: {m['cpu_count']} cores ({m['processor']}), load average {m['load_average_start']} at the start, "
         f"{m['load_average_end']} at the end (1, 5, 15 min)."),
        "",
        "Every profile's outcome from `FixedPointEvaluator` is compared with `witness.canonical_outcome` (one ezkl",
        "witness per round); `canonical_outcomes` and `fast_outcome_function` are checked against it too. Profiles:",
        "the support's edges, absent bidders, equal bids, coarse-grid ties, both sides of outcome changes (menu-score",
        "ties) and random profiles (`FixedPointEvaluator.differential_profiles`). Speeds are rounds per second,",
        "measured in the same run: the evaluator on the whole batch, `canonical_outcomes` (input checks and Outcome",
        "objects included), `fast_outcome_function` one round at a time, ezkl's witness one round at a time.",
        "",
        "| circuit | kind | n x m | profiles | mismatches | left to ezkl | evaluate | canonical_outcomes | fast, 1 round | witness | speedup batch / 1 round |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['circuit']} | {r['kind']} | {r['n']}x{r['m']} | {r['profiles']:,} | **{r['mismatches']}** | "
            f"{r['rounds_left_to_ezkl']} | {r['evaluate_rounds_per_s']:,.0f}/s | {r['canonical_outcomes_rounds_per_s']:,.0f}/s | "
            f"{r['fast_outcome_function_rounds_per_s']:,.0f}/s | {r['witness_rounds_per_s']:.1f}/s | "
            f"{r['speedup_batch']:,.0f}x / {r['speedup_single_round']:,.0f}x |"
        )
    lines += ["", "Circuits:", ""]
    for r in doc["results"]:
        lines.append(f"- `{r['circuit']}`: {r['note']}; input scale {r['input_scale']}, logrows {r['logrows']}, output scales "
                     f"{r['output_scales']}, lookup range {r['lookup_range']}; {r['profiles_with_absent_bidder']:,} profiles with "
                     f"an absent bidder, {r['profiles_with_equal_bids']:,} with equal bids; ONNX ops {', '.join(r['onnx_ops'])}.")
    lines.append("")
    MD_OUT.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuits", nargs="*", default=list(CIRCUITS), choices=list(CIRCUITS))
    ap.add_argument("--profiles", type=int, default=None, help="profiles per circuit (default: per circuit, 10,000 or 2,000)")
    ap.add_argument("--seed", type=int, default=20240611)
    args = ap.parse_args(argv)

    import ezkl
    import numpy as np

    from zkauction.learn.checkpoint import machine_description

    machine = machine_description()
    machine["load_average_start"] = machine.pop("load_average")
    doc: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "ezkl_version": ezkl.__version__,
                           "numpy": np.__version__, "machine": machine, "results": []}
    with tempfile.TemporaryDirectory(prefix="fixedpoint-diff-") as tmp:
        for name in args.circuits:
            profiles = args.profiles or CIRCUITS[name][2]
            print(f"{name}: {profiles} profiles", flush=True)
            doc["results"].append(measure(name, profiles, args.seed, Path(tmp)))
            doc["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
            write_report(doc)
            r = doc["results"][-1]
            print(f"{name}: {r['mismatches']} mismatches; evaluator {r['canonical_outcomes_rounds_per_s']:,.0f}/s, "
                  f"witness {r['witness_rounds_per_s']:.1f}/s", flush=True)
    return 1 if any(r["mismatches"] for r in doc["results"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
