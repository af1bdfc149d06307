"""Audits in one proof, or one proof per audited round: which costs less?

An experiment for issue 14 ("Per-round speed"). The audit proves k rounds. Today each is its own
proof of the one-round circuit (n hashed inputs: each bidder's Poseidon commitment is a public
instance; outcome public). The alternative: one circuit over k rounds, k*n hashed inputs (so each
bidder's commitment of each round is still a public instance) and the k outcomes concatenated,
proven once. This script builds both from the same trained auction with the same ezkl steps as
``zkauction/zk/compile.py`` (hashed inputs, fixed parameters, public outputs, input scale pinned,
calibration on the setting's tweaked data, the same comparison decomposition, ``--max-logrows`` as
the shipped circuit), with an INSECURE dev SRS in a temporary folder, and measures, in the same run:

- the one-round circuit: setup once, then k separate proofs and verifications (real bids, fresh salts);
- the k-round circuit for each k: setup, one proof, one verification;

wall seconds and CPU seconds (this process, all of ezkl's threads), logrows, key and proof sizes.
Each proof's hashed-input instances are checked to equal the commitments the bidders would publish.

    .venv/bin/python benchmarks/batched_audit_proof.py [--ks 2,4,8] [--auction trained/ama_2x2_uniform]

Writes benchmarks/results/batched_audit_proof.{md,json}. Proving keys live only in the temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zkauction.zk.commitments as commitments  # noqa: E402  (sets EZKL_REPO_PATH)
import ezkl  # noqa: E402
from zkauction.learn.checkpoint import load_auction  # noqa: E402
from zkauction.learn.data import sample_tweaked  # noqa: E402
from zkauction.zk.bundle import proof_instances  # noqa: E402
from zkauction.zk.circuit import DEFAULT_INPUT_SCALE, DEFAULT_LOOKUP_SAFETY_MARGIN, _ezkl, _quiet  # noqa: E402
from zkauction.zk.compile import _calibration_json, circuit_mask_logit, default_decomp_legs  # noqa: E402

OUT = ROOT / "benchmarks" / "results"


def cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    t, c = time.perf_counter(), cpu()
    out = fn()
    return out, time.perf_counter() - t, cpu() - c


class KRounds(nn.Module):
    """k rounds of one auction: k*n inputs ``[1, m + 1]`` (round-major: round 0's bidders first), each
    bids and a salt slot; the salts are dropped, the k bid profiles go through the net as a batch of k
    (the same per-round arithmetic, laid out k times). Outputs allocation [k, n, m], payment [k, n]."""

    def __init__(self, net: nn.Module, k: int):
        super().__init__()
        self.net, self.k, self.n, self.m = net, k, net.setting.n, net.setting.m

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bids = torch.stack([x[:, : self.m] for x in inputs], dim=1)  # [1, k*n, m]
        return self.net(bids.reshape(self.k, self.n, self.m))


def build(net: nn.Module, k: int, work: Path, max_logrows: int, scale: int) -> dict[str, Any]:
    """Export, settings, calibrate, compile, dev SRS, setup: the k-round circuit in ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    n, m = net.setting.n, net.setting.m
    onnx_path = work / "model.onnx"
    example = tuple(torch.rand(1, m + 1) for _ in range(k * n))
    with warnings.catch_warnings(), circuit_mask_logit(net):
        warnings.simplefilter("ignore")
        torch.onnx.export(KRounds(net, k).eval(), example, str(onnx_path), opset_version=17, do_constant_folding=True,
                          input_names=[f"r{j}_bidder_{i}" for j in range(k) for i in range(n)],
                          output_names=["allocation", "payment"], dynamo=False)
    run_args = ezkl.PyRunArgs()
    run_args.input_visibility, run_args.param_visibility, run_args.output_visibility = "hashed", "fixed", "public"
    run_args.input_scale = run_args.param_scale = scale
    run_args.ignore_range_check_inputs_outputs = True
    run_args.decomp_base, run_args.decomp_legs = 2**scale, default_decomp_legs(scale)
    settings, cal = work / "settings.json", work / "calibration.json"
    one = _calibration_json(net, 64, 0, scale)["input_data"]  # per bidder: 66 frames of m bids + salt slot
    cal.write_text(json.dumps({"input_data": [one[i] for _ in range(k) for i in range(n)]}))
    r: dict[str, Any] = {"k": k}

    def calibrate() -> None:
        _ezkl(ezkl.gen_settings, str(onnx_path), str(settings), py_run_args=run_args)
        with _quiet():
            _ezkl(ezkl.calibrate_settings, str(cal), str(onnx_path), str(settings), "resources",
                  lookup_safety_margin=DEFAULT_LOOKUP_SAFETY_MARGIN, scales=[scale], max_logrows=max_logrows)

    _, r["calibrate_s"], r["calibrate_cpu_s"] = timed(calibrate)
    st = json.loads(settings.read_text())
    assert st["run_args"]["input_scale"] == scale
    r["logrows"], r["num_rows"] = int(st["run_args"]["logrows"]), int(st["num_rows"])
    r["lookup_range"] = st["run_args"]["lookup_range"]
    compiled = work / "model.compiled"
    _ezkl(ezkl.compile_circuit, str(onnx_path), str(compiled), str(settings))
    srs = work / f"kzg{r['logrows']}.srs"
    _, r["gen_srs_s"], _ = timed(lambda: _ezkl(ezkl.gen_srs, str(srs), r["logrows"]))
    vk, pk = work / "vk.key", work / "pk.key"

    def setup() -> None:
        with _quiet():
            _ezkl(ezkl.setup, str(compiled), str(vk), str(pk), srs_path=str(srs))

    _, r["setup_s"], r["setup_cpu_s"] = timed(setup)
    r["pk_bytes"], r["vk_bytes"] = pk.stat().st_size, vk.stat().st_size
    r["_paths"] = {"compiled": compiled, "settings": settings, "vk": vk, "pk": pk, "srs": srs, "work": work}
    return r


def prove_verify(c: dict[str, Any], rounds: list[tuple[list[list[float]], list[str]]], scale: int, tag: str) -> dict[str, Any]:
    """One proof of ``rounds`` (bids, salts per round) with circuit ``c``, then its verification."""
    p = c["_paths"]
    data, wit, proof = p["work"] / f"input_{tag}.json", p["work"] / f"witness_{tag}.json", p["work"] / f"proof_{tag}.json"
    data.write_text(json.dumps({"input_data": [commitments.bid_felts(row, scale) + [salt]
                                               for bids, salts in rounds for row, salt in zip(bids, salts)]}))

    def prove() -> None:
        with _quiet():
            w = _ezkl(ezkl.gen_witness, str(data), str(p["compiled"]), str(wit))
            lo, hi = c["lookup_range"]
            assert lo <= int(w["min_lookup_inputs"]) and int(w["max_lookup_inputs"]) <= hi, "outside the lookup range"
            _ezkl(ezkl.prove, str(wit), str(p["compiled"]), str(p["pk"]), str(proof), srs_path=str(p["srs"]))

    _, prove_s, prove_cpu = timed(prove)

    def verify() -> None:
        with _quiet():
            _ezkl(ezkl.verify, str(proof), str(p["settings"]), str(p["vk"]), srs_path=str(p["srs"]))

    _, verify_s, verify_cpu = timed(verify)
    doc = json.loads(proof.read_text())
    want = [commitments.commit(row, salt, scale) for bids, salts in rounds for row, salt in zip(bids, salts)]
    got, _ = proof_instances(doc, len(want))
    assert list(got) == want, "the proof's hashed-input instances are not the bidders' commitments"
    return {"prove_s": prove_s, "prove_cpu_s": prove_cpu, "verify_s": verify_s, "verify_cpu_s": verify_cpu,
            "proof_bytes": len(json.dumps(doc))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--auction", type=Path, default=ROOT / "trained" / "ama_2x2_uniform")
    ap.add_argument("--ks", default="2,4,8", help="batch sizes (audited rounds in one proof)")
    ap.add_argument("--max-logrows", type=int, default=8, help="calibration cap, as the shipped circuit (8)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ks = [int(x) for x in args.ks.split(",")]
    scale = DEFAULT_INPUT_SCALE
    net = load_auction(args.auction)
    n = net.setting.n
    frames = sample_tweaked(net.setting, net.participation, max(ks), 7).values
    rounds = [([list(commitments.snap_bids(row.tolist(), scale)) for row in f], [commitments.new_salt() for _ in range(n)])
              for f in frames]
    load0 = os.getloadavg()
    t_all, c_all = time.perf_counter(), cpu()
    with tempfile.TemporaryDirectory(prefix="zkauction-batched-") as tmp:
        single = build(net, 1, Path(tmp) / "k1", args.max_logrows, scale)
        single_proofs = []
        for j in range(max(ks)):
            single_proofs.append(prove_verify(single, [rounds[j]], scale, f"r{j}"))
            print(f"1-round proof {j + 1}: {single_proofs[-1]['prove_cpu_s']:.2f} s CPU", flush=True)
        batched = []
        for k in ks:
            c = build(net, k, Path(tmp) / f"k{k}", args.max_logrows, scale)
            c.update(prove_verify(c, rounds[:k], scale, "all"))
            c["load_after"] = os.getloadavg()[0]
            batched.append(c)
            print(f"k={k}: logrows {c['logrows']}, setup {c['setup_cpu_s']:.1f} s CPU, prove {c['prove_cpu_s']:.1f} s CPU", flush=True)
    load1 = os.getloadavg()
    for c in [single] + batched:
        c.pop("_paths")
    for key in ("prove_s", "prove_cpu_s", "verify_s", "verify_cpu_s", "proof_bytes"):
        single[key + "_each"] = [p[key] for p in single_proofs]
    rows = []
    for c in batched:
        k = c["k"]
        sep = {key: sum(p[key] for p in single_proofs[:k]) for key in ("prove_s", "prove_cpu_s", "verify_s", "verify_cpu_s", "proof_bytes")}
        rows.append({"k": k, "batched": c, "separate": sep,
                     "prove_cpu_ratio": c["prove_cpu_s"] / sep["prove_cpu_s"],
                     "prove_verify_cpu_ratio": (c["prove_cpu_s"] + c["verify_cpu_s"]) / (sep["prove_cpu_s"] + sep["verify_cpu_s"]),
                     "with_setup_cpu_ratio": (c["setup_cpu_s"] + c["prove_cpu_s"] + c["verify_cpu_s"])
                     / (single["setup_cpu_s"] + sep["prove_cpu_s"] + sep["verify_cpu_s"])})
    result = {"auction": str(args.auction.relative_to(ROOT) if args.auction.is_relative_to(ROOT) else args.auction),
              "max_logrows": args.max_logrows, "input_scale": scale, "single": single, "rows": rows,
              "load_start": load0, "load_end": load1, "cores": os.cpu_count(),
              "total_s": time.perf_counter() - t_all, "total_cpu_s": cpu() - c_all}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "batched_audit_proof.json").write_text(json.dumps(result, indent=2) + "\n")
    write_md(result, args)


def write_md(res: dict[str, Any], args: argparse.Namespace) -> None:
    s = res["single"]
    lines = [
        "# Audits in one proof against one proof per audited round",
        "",
        f"`benchmarks/batched_audit_proof.py --ks {args.ks} --max-logrows {args.max_logrows}` on `{res['auction']}`; "
        f"{res['cores']} cores shared with other jobs, load average {res['load_start'][0]:.2f} at the start and "
        f"{res['load_end'][0]:.2f} at the end (1 min). Both circuits built in the same run with the same ezkl steps "
        f"as `zkauction/zk/compile.py` (input scale {res['input_scale']}, calibration capped at logrows "
        f"{res['max_logrows']}, INSECURE dev SRS in a temporary folder). CPU is this process's CPU seconds (all of "
        "ezkl's threads), much less sensitive to the load than wall seconds. Every proof's hashed-input "
        "instances were checked to equal the bidders' commitments.",
        "",
        f"One-round circuit: logrows {s['logrows']} ({s['num_rows']} rows), setup {s['setup_s']:.2f} s wall / "
        f"{s['setup_cpu_s']:.2f} s CPU, proving key {s['pk_bytes'] / 2**20:.1f} MB; per proof (median of "
        f"{len(s['prove_cpu_s_each'])}): prove {sorted(s['prove_s_each'])[len(s['prove_s_each']) // 2]:.2f} s wall / "
        f"{sorted(s['prove_cpu_s_each'])[len(s['prove_cpu_s_each']) // 2]:.2f} s CPU, verify "
        f"{sorted(s['verify_cpu_s_each'])[len(s['verify_cpu_s_each']) // 2]:.3f} s CPU, proof "
        f"{s['proof_bytes_each'][0] / 1024:.0f} KB.",
        "",
        "| k | circuit | logrows | rows | setup wall / CPU | prove wall / CPU | verify wall / CPU | proving key | proofs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        b, p = r["batched"], r["separate"]
        lines.append(f"| {r['k']} | one proof of the {r['k']}-round circuit | {b['logrows']} | {b['num_rows']} | "
                     f"{b['setup_s']:.2f} / {b['setup_cpu_s']:.2f} s | {b['prove_s']:.2f} / {b['prove_cpu_s']:.2f} s | "
                     f"{b['verify_s']:.3f} / {b['verify_cpu_s']:.3f} s | {b['pk_bytes'] / 2**20:.1f} MB | {b['proof_bytes'] / 1024:.0f} KB |")
        lines.append(f"| {r['k']} | {r['k']} proofs of the one-round circuit | {s['logrows']} | {s['num_rows']} | "
                     f"{s['setup_s']:.2f} / {s['setup_cpu_s']:.2f} s (once) | {p['prove_s']:.2f} / {p['prove_cpu_s']:.2f} s | "
                     f"{p['verify_s']:.3f} / {p['verify_cpu_s']:.3f} s | {s['pk_bytes'] / 2**20:.1f} MB | {p['proof_bytes'] / 1024:.0f} KB |")
    lines += ["", "Batched over separate, CPU seconds (below 1: the batched proof is cheaper):", "",
              "| k | prove | prove + verify | setup + prove + verify |", "|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['k']} | {r['prove_cpu_ratio']:.2f} | {r['prove_verify_cpu_ratio']:.2f} | {r['with_setup_cpu_ratio']:.2f} |")
    lines += ["", f"Whole run: {res['total_s']:.0f} s wall, {res['total_cpu_s']:.0f} s CPU.", ""]
    (OUT / "batched_audit_proof.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
