"""``zkauction demo --network``: the demo's flow with every party in its own process, over HTTP on
127.0.0.1: the auctioneer is a ``zkauction serve`` subprocess (port chosen by the system), each
bidder a ``zkauction bidder run`` subprocess with its own key, secret and bids file (simulated
truthful bids, as the local demo's), and a monitor (this process) follows the log, checks every
entry, checkpoint and round, and computes the audit's verdict with the circuit's public artefacts.

Like the local demo it uses the shipped circuit compiled from the auction's weights (else a fresh
compile), with a dev SRS: INSECURE, for demos and tests only.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from zkauction.protocol.state import ProtocolError


def _circuit(trained: Path, out: Path, echo: Any) -> tuple[Any, str]:
    """The shipped circuit for ``trained`` (used in place), a reused one in ``out/circuit``, or a fresh compile."""
    from zkauction.protocol.demo import _same_weights, load_circuit, shipped_circuit

    shipped = shipped_circuit(trained)
    if shipped is not None and (shipped / "pk.key").is_file():
        echo(f"      using the shipped circuit {shipped} (compiled from these weights)")
        return load_circuit(shipped), f"shipped {shipped}"
    circuit_dir = out / "circuit"
    if _same_weights(circuit_dir, trained):
        echo(f"      reusing the compiled circuit in {circuit_dir}")
        return load_circuit(circuit_dir), f"reused {circuit_dir}"
    if shipped is not None:
        shutil.rmtree(circuit_dir, ignore_errors=True)
        shutil.copytree(shipped, circuit_dir)
        circuit = load_circuit(circuit_dir)
        circuit.ensure_proving_key()
        echo(f"      using the shipped circuit {shipped} (proving key regenerated in {circuit_dir})")
        return circuit, f"shipped {shipped}"
    from zkauction.zk.compile import compile_auction

    echo(f"      compiling to {circuit_dir} with a locally generated SRS")
    kind = json.loads((trained / "config.json").read_text()).get("kind")
    circuit = compile_auction(trained, circuit_dir, dev_srs=True, **({"max_logrows": 12} if kind == "ama" else {}))
    return circuit, "compiled"


def _cli() -> list[str]:
    return [sys.executable, "-m", "zkauction.cli"]


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_port(port_file: Path, server: subprocess.Popen, log: Path, timeout: float) -> int:
    import httpx

    end = time.monotonic() + timeout
    port = None
    while time.monotonic() < end:
        if server.poll() is not None:
            raise ProtocolError(f"the server exited ({server.returncode}): {log.read_text()[-1500:]}")
        if port is None and port_file.is_file() and port_file.read_text().strip():
            port = int(port_file.read_text())
        if port is not None:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=2.0).raise_for_status()
                return port
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise ProtocolError(f"the server did not answer within {timeout:g} s (see {log})")


def run_network_demo(
    out: str | Path = "demo-out",
    *,
    auction: str | Path | None = None,
    rounds: int = 200,
    audits: int = 2,
    seed: int = 0,
    echo: Any = print,
    timeout: float = 900.0,
    deadlines: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Serve, bid from separate processes, audit in zk, verify from a monitor; returns the summary
    (also written to ``out/network/summary.json``)."""
    from zkauction.protocol.auctioneer import circuit_outcome_function
    from zkauction.protocol.audit import Auditor
    from zkauction.protocol.demo import INSECURE, demo_folders, print_report
    from zkauction.protocol.local import simulated_bids
    from zkauction.protocol.state import read_state
    from zkauction.service.client import init_state
    from zkauction.service.monitor import Monitor
    from zkauction.service.remote import Unavailable

    t_all = time.perf_counter()
    trained, out = demo_folders(auction, out, rounds, audits)
    timings: dict[str, float] = {}
    end = time.monotonic() + timeout

    echo(f"[1/5] auction {trained}")
    t = time.perf_counter()
    circuit, source = _circuit(trained, out, echo)
    timings["circuit_s"] = time.perf_counter() - t
    echo(f"      logrows {circuit.logrows}, input scale {circuit.input_scale}; WARNING: {INSECURE}")
    setting = circuit.auction_setting()
    participation = circuit.participation_model()

    net = out / "network"
    shutil.rmtree(net, ignore_errors=True)
    net.mkdir(parents=True)
    keys, bid_files = [], []
    rows: list[list[str]] = [["round," + ",".join(f"b{j + 1}" for j in range(setting.m))] for _ in range(setting.n)]
    for r in range(1, rounds + 1):
        profile = simulated_bids(setting, participation, seed, r)
        for i in range(setting.n):
            if any(float(x) != 0 for x in profile[i]):  # an absent bidder lists no bids: it passes the round
                rows[i].append(",".join([str(r)] + [repr(float(x)) for x in profile[i]]))
    for i in range(setting.n):
        keys.append(init_state(net / f"bidder{i}"))
        bid_files.append(net / f"bids{i}.csv")
        bid_files[-1].write_text("\n".join(rows[i]) + "\n")
    (net / "bidders.txt").write_text("\n".join(keys) + "\n")

    dl = {"commit_s": 10.0, "open_s": 10.0, "dispute_s": 30.0, "reveal_s": 60.0, **(deadlines or {})}
    echo(f"[2/5] the auctioneer's server on 127.0.0.1 (a separate process), log {net / 'auction.db'}")
    server_log = net / "server.log"
    port_file = net / "port"
    server = None
    procs: list[subprocess.Popen] = []
    try:
        with open(server_log, "wb") as log:
            server = subprocess.Popen(
                _cli() + ["serve", "--circuit", str(circuit.dir), "--db", str(net / "auction.db"),
                          "--bidders", str(net / "bidders.txt"), "--rounds", str(rounds), "--audits", str(audits),
                          "--mode", "zk", "--port", "0", "--port-file", str(port_file),
                          "--commit-s", str(dl["commit_s"]), "--open-s", str(dl["open_s"]), "--dispute-s", str(dl["dispute_s"]), "--reveal-s", str(dl["reveal_s"])],
                stdout=log, stderr=log, start_new_session=True)
        t = time.perf_counter()
        port = _wait_port(port_file, server, server_log, max(1.0, end - time.monotonic()))
        url = f"http://127.0.0.1:{port}"
        timings["server_start_s"] = time.perf_counter() - t
        echo(f"      {url}/ answering after {timings['server_start_s']:.1f} s (web view at /)")

        echo(f"[3/5] {setting.n} bidder processes (`zkauction bidder run`, each its own key and bids file), "
             f"{rounds} rounds")
        t_play = time.perf_counter()
        for i in range(setting.n):
            with open(net / f"bidder{i}.log", "wb") as err:
                procs.append(subprocess.Popen(
                    _cli() + ["bidder", "run", "--url", url, "--state", str(net / f"bidder{i}"), "--bids", str(bid_files[i]),
                              "--circuit", str(circuit.dir), "--json"],
                    stdout=subprocess.PIPE, stderr=err, start_new_session=True))

        echo("[4/5] a monitor follows the log (every entry, checkpoint and round) until the audit is answered")
        outcome = circuit_outcome_function(circuit)
        mon = Monitor(url, circuit=circuit, outcome=outcome)
        last = [0]

        def progress() -> None:
            st = mon.report.rounds_checked
            if st >= last[0] + max(1, rounds // 4) or (st == rounds and last[0] < rounds):
                last[0] = st
                echo(f"      round {st}/{rounds} checked by the monitor ({time.perf_counter() - t_play:.1f} s)")

        while True:
            if time.monotonic() > end:
                raise ProtocolError(f"no audit verdict after {timeout:g} s")
            if server.poll() is not None:
                raise ProtocolError(f"the server exited ({server.returncode}): {server_log.read_text()[-1500:]}")
            for i, p in enumerate(procs):
                if p.poll() not in (None, 0):
                    raise ProtocolError(f"bidder {i} failed: {(net / f'bidder{i}.log').read_text()[-1500:]}")
            done = False
            try:
                done = mon.poll()
            except Unavailable:
                pass  # the server is starting or busy: the next poll
            progress()
            if done:
                break
            time.sleep(0.3)
        reports = []
        for i, p in enumerate(procs):
            stdout, _ = p.communicate(timeout=max(1.0, end - time.monotonic()))
            if p.returncode != 0:
                raise ProtocolError(f"bidder {i} failed: {(net / f'bidder{i}.log').read_text()[-1500:]}")
            reports.append(json.loads(stdout.decode().strip().splitlines()[-1]))
        timings["play_and_audit_s"] = time.perf_counter() - t_play
    finally:
        for p in procs:
            _stop(p)
        _stop(server)

    echo("[5/5] the audit's verdict, computed by the monitor from its verified replica")
    if mon._view is not None:
        mon._view.flush()
    report = Auditor(mon.replica, circuit=circuit, outcome=outcome, checkpoints=mon._held()).audit()
    print_report(report, echo)
    st = read_state(mon.replica)
    outs = [st.outcomes[r].data for r in range(1, rounds + 1)]
    revenue = sum(sum(o["payment"]) for o in outs)
    present = sum(sum(o["participants"]) for o in outs)
    check = mon.replica.verify_chain()
    proofs_ok = all(sorted(b["proofs_verified"]) == sorted(b["audit_rounds"]) and b["audit_rounds"] for b in reports)
    summary = {
        "network": True,
        "auction": str(trained),
        "circuit": str(circuit.dir),
        "circuit_source": source,
        "logrows": circuit.logrows,
        "url": url,
        "bidder_processes": len(reports),
        "rounds": rounds,
        "audits": audits,
        "audited_rounds": reports[0]["audit_rounds"] if reports else [],
        "rounds_per_s": rounds / timings["play_and_audit_s"],
        "revenue_per_round": revenue / rounds,
        "bids": present,
        "ledger_entries": check.n_entries,
        "log_root": check.root,
        "monitor": mon.report.to_dict(),
        "bidders": reports,
        "audit_valid": report.valid,
        "verified": proofs_ok and bool(mon.report.verdict and mon.report.verdict.get("valid")),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    summary["timings_s"]["total_s"] = round(time.perf_counter() - t_all, 1)
    (net / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    echo("")
    echo("summary (network)")
    echo(f"  auction             {trained} (circuit logrows {circuit.logrows}, {INSECURE.split(':')[0]})")
    echo(f"  processes           server {url} + {len(reports)} bidder processes + this monitor, all on 127.0.0.1")
    echo(f"  rounds              {rounds} at {summary['rounds_per_s']:.2f} rounds/s over HTTP (play and audit; "
         "every bidder's checks, each statement logged durably)")
    echo(f"  revenue per round   {summary['revenue_per_round']:.4f} ({present} bids)")
    echo(f"  audited rounds      {summary['audited_rounds']}: {'all valid' if report.valid else 'FAILED'}")
    for b in reports:
        echo(f"  bidder {b['index']}            bid {b['rounds_bid']}, passed {b['rounds_passed']}, checked "
             f"{b['outcomes_checked']} outcomes, verified proofs {b['proofs_verified']}, kept checkpoint size "
             f"{b['checkpoint_size']}")
    m = mon.report
    echo(f"  monitor             {m.entries} entries, {m.rounds_checked} rounds checked, {m.checkpoints} checkpoints "
         f"({m.consistency_checks} consistency proofs); audit {'VALID' if report.valid else 'INVALID'}")
    echo(f"  log                 {check.n_entries} entries, chain verified, Merkle root {check.root[:16]}...")
    echo(f"  timings             circuit {timings['circuit_s']:.1f} s, server start {timings['server_start_s']:.1f} s, "
         f"rounds + audit {timings['play_and_audit_s']:.1f} s, total {summary['timings_s']['total_s']:.1f} s")
    echo(f"  files               {net}/ (summary.json, auction.db, server.log, bidder states and bids)")
    return summary
