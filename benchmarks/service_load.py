"""Loopback load test of the auction service: many bidder processes, server processes SIGKILLed
mid-run and restarted, then the audit and a monitor's verification of every log.

    nice .venv/bin/python benchmarks/service_load.py [--servers 25] [--rounds 40] [--kills 3]

Design (the shipped circuit is a 2-bidder auction, and a 50-bidder circuit is far too big to
compile and prove here): ``--servers`` independent auctions, each its own ``zkauction serve``
process (its own log, SQLite with an fsync per transaction, its own port on 127.0.0.1) with 2 bidders;
every bidder is its own OS process (``multiprocessing``, forkserver) running the service's
:class:`~zkauction.service.client.BidderClient` against its server's URL. 25 servers x 2 = 50
bidder processes; 25 x 40 = 1,000 rounds in total (40 per auction, not 1,000 per auction).

Kills: at each of ``--kills`` points of the run (evenly spaced by rounds done, over all servers),
EVERY server process gets SIGKILL, and is restarted at once with the same ``--db``, state folder and
port; the clients retry and re-send what the server kept only in memory (openings, passes).

Round latency (client side, wall clock of one machine, CLOCK_MONOTONIC): for round r of one
auction, from the first moment one of its bidders saw the round open for commitments (its status
long-poll returned round r, commit phase) to the last moment one of its bidders saw the round's
outcome (status: round r done); it includes the bidders' own checks (checkpoint consistency,
inclusion proofs of the close and of the outcome) and any restart the round spanned.

``lost_rounds`` is computed from each final log, as replicated and verified by a monitor: a round
of 1..T without exactly one outcome, or whose close lacks a commitment a bidder got logged (the
bidder process records every commitment the server acknowledged), counts as lost; ``void_rounds``
counts rounds whose close lists a commitment and whose outcome sells nothing (every bidder is
honest, so a void round is one a restart cost). ``audit_valid``
is the monitors' verdict (every log's chain, checkpoints, each round's public checks, the audit).
The audit is in ``reveal`` mode (the drawn rounds' openings are published and the monitor
recomputes their outcomes): 25 servers proving at the same moment would not fit this machine's
memory; zk proving cost is measured in prove_cost.md.

Writes benchmarks/results/service_load.{md,json}. Stops by itself after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results"
CIRCUIT = ROOT / "circuits" / "ama_2x2_uniform"


# ------------------------------------------------------------------------------------ bidder process

def bidder_process(url: str, state: str, bids_csv: str, out: str, retry_for: float) -> None:
    """One bidder (a separate OS process): the service's client, timestamps and acknowledged
    commitments recorded on the side."""
    from zkauction.service.client import BidderClient, parse_bids

    class TimedClient(BidderClient):
        def _wait(self, round: int, phase: int, resend: Any = None, **kw: Any) -> dict[str, Any]:
            s = super()._wait(round, phase, resend, **kw)
            if phase in (0, 3):
                seen.setdefault(round, {}).setdefault(phase, time.monotonic())
            return s

    seen: dict[int, dict[int, float]] = {}
    logged: dict[int, str] = {}
    result: dict[str, Any] = {"url": url, "state": state}
    try:
        table = parse_bids(Path(bids_csv).read_text(), name=bids_csv)
        client = TimedClient(url, state, table.get, retry_for=retry_for)
        commit = client.bidder.commit

        def recording_commit(r: int, bids: Any) -> str:
            c = commit(r, bids)  # returns only once the server acknowledged the logged entry
            logged[r] = c
            return c

        client.bidder.commit = recording_commit  # type: ignore[method-assign]
        result["index"] = client.index
        result["report"] = client.run().to_dict()
    except Exception as e:  # recorded; the parent counts it
        result["error"] = f"{type(e).__name__}: {e}"
    result["seen"] = {r: [v.get(0), v.get(3)] for r, v in seen.items()}
    result["logged"] = logged
    Path(out).write_text(json.dumps(result))


# ------------------------------------------------------------------------------------ the servers

class Server:
    def __init__(self, i: int, work: Path, rounds: int, audits: int, deadlines: dict[str, float]):
        self.i, self.dir = i, work / f"s{i:02d}"
        self.dir.mkdir(parents=True)
        self.db = self.dir / "auction.db"
        self.rounds, self.audits, self.deadlines = rounds, audits, deadlines
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.kills = 0

    def cmd(self) -> list[str]:
        c = [sys.executable, "-m", "zkauction.cli", "serve", "--circuit", str(CIRCUIT), "--db", str(self.db),
             "--port", str(self.port), "--port-file", str(self.dir / "port"), "--mode", "reveal",
             "--commit-s", str(self.deadlines["commit_s"]), "--open-s", str(self.deadlines["open_s"]),
             "--reveal-s", str(self.deadlines["reveal_s"])]
        if not self.db.exists():
            c += ["--bidders", str(self.dir / "keys"), "--rounds", str(self.rounds), "--audits", str(self.audits)]
        return c

    def start(self) -> None:
        (self.dir / "port").unlink(missing_ok=True)
        log = open(self.dir / "serve.log", "ab")
        self.proc = subprocess.Popen(self.cmd(), cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def wait_port(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            p = self.dir / "port"
            if p.is_file() and p.read_text().strip():
                self.port = int(p.read_text())
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server {self.i} exited: {(self.dir / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"server {self.i}: no port after {timeout} s")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


_HTTP: Any = None


def status_of(servers: list[Server]) -> dict[int, dict[str, Any]]:
    global _HTTP
    import httpx

    if _HTTP is None:  # one client (httpx.get would build an SSL context per call: seconds under load)
        _HTTP = httpx.Client(timeout=5.0)
    out = {}
    for s in servers:
        try:
            out[s.i] = _HTTP.get(s.url + "/api/status").json()
        except Exception:
            pass
    return out


def rounds_done(st: dict[str, Any]) -> int:
    return st["rounds"] if st["round"] > st["rounds"] else max(0, st["round"] - 1) + (st["phase"] == 3)


class LoadSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(5.0):
            self.samples.append(os.getloadavg()[0])


# ------------------------------------------------------------------------------------ the run

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", type=int, default=25, help="auctions (server processes), 2 bidder processes each")
    ap.add_argument("--rounds", type=int, default=40, help="T per auction")
    ap.add_argument("--audits", type=int, default=2)
    ap.add_argument("--kills", type=int, default=3, help="kill waves (every server SIGKILLed and restarted)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="hard stop, seconds")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--out", type=Path, default=OUT / "service_load")
    args = ap.parse_args()
    command = "nice .venv/bin/python benchmarks/service_load.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    from zkauction.learn.setting import AuctionSetting, ParticipationModel
    from zkauction.protocol.local import simulated_bids
    from zkauction.service.client import init_state

    t_start = time.monotonic()
    deadline = t_start + args.timeout
    load_start = os.getloadavg()
    sampler = LoadSampler()
    sampler.start()
    work = args.work or Path(tempfile.mkdtemp(prefix="zkauction-load-"))
    work.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((CIRCUIT / "manifest.json").read_text())
    setting = AuctionSetting.from_dict(manifest["setting"])
    participation = ParticipationModel.from_dict(manifest.get("participation", {}), setting.n)
    deadlines = {"commit_s": 30.0, "open_s": 30.0, "reveal_s": 120.0}

    servers = [Server(i, work, args.rounds, args.audits, deadlines) for i in range(args.servers)]
    bidders: list[tuple[Server, int, Path, Path]] = []
    for s in servers:
        keys = []
        rows: list[list[list[str]]] = [[["round"] + [f"b{j + 1}" for j in range(setting.m)]] for _ in range(setting.n)]
        for r in range(1, args.rounds + 1):
            profile = simulated_bids(setting, participation, s.i, r)
            for b in range(setting.n):
                if any(x != 0 for x in profile[b]):
                    rows[b].append([str(r)] + [repr(float(x)) for x in profile[b]])
        for b in range(setting.n):
            state = s.dir / f"bidder{b}"
            keys.append(init_state(state))
            bids = s.dir / f"bids{b}.csv"
            bids.write_text("\n".join(",".join(row) for row in rows[b]) + "\n")
            bidders.append((s, b, state, bids))
        (s.dir / "keys").write_text("\n".join(keys) + "\n")

    print(f"{len(servers)} servers, {len(bidders)} bidder processes, {args.rounds} rounds each "
          f"({args.rounds * len(servers)} in total), {args.kills} kill waves; work {work}", flush=True)
    for s in servers:
        s.start()
    for s in servers:
        s.wait_port(max(1.0, deadline - time.monotonic()))
    t_up = time.monotonic()
    print(f"servers listening after {t_up - t_start:.1f} s", flush=True)

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["zkauction.service.client"])
    procs = []
    for s, b, state, bids in bidders:
        p = ctx.Process(target=bidder_process, args=(s.url, str(state), str(bids), str(s.dir / f"result{b}.json"), 1200.0))
        p.start()
        procs.append(p)

    total = args.rounds * len(servers)
    thresholds = [total * (k + 1) / (args.kills + 1) for k in range(args.kills)]
    kill_log: list[dict[str, Any]] = []
    timed_out = False
    known: dict[int, dict[str, Any]] = {}  # each server's last answered status
    up: set[int] = set()  # servers that answered since the last kill wave
    while any(p.is_alive() for p in procs):
        if time.monotonic() > deadline:
            timed_out = True
            break
        time.sleep(1.0)
        if thresholds:
            st = status_of(servers)
            known.update(st)
            up.update(st)
            done = sum(rounds_done(v) for v in known.values())
            # a wave only once every server came back from the last one (it kills running servers)
            if done >= thresholds[0] and len(up) == len(servers):
                thresholds.pop(0)
                up.clear()
                t0 = time.monotonic()
                where = {i: f"r{v['round']}:{v['phase_name']}" for i, v in known.items()}
                for s in servers:
                    s.kill()
                for s in servers:
                    s.start()
                kill_log.append({"t_s": round(t0 - t_up, 1), "rounds_done": done, "at": where})
                print(f"kill wave {len(kill_log)}: {len(servers)} servers SIGKILLed at {done}/{total} rounds done "
                      f"({t0 - t_up:.0f} s), restarted", flush=True)
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()) if not timed_out else 0)
        if p.is_alive():
            timed_out = True
            p.kill()
    t_clients = time.monotonic()

    verdicts: dict[int, Any] = {}
    lost: list[str] = []
    void: list[str] = []  # honest bidders only: a void round is one the protocol lost (a restart)
    monitor_s = 0.0
    results = []
    if not timed_out:
        from zkauction.protocol.auctioneer import circuit_outcome_function
        from zkauction.protocol.state import COMMITMENTS_CLOSED, OUTCOME
        from zkauction.service.monitor import Monitor
        from zkauction.zk.circuit import Circuit

        circuit = Circuit.load(CIRCUIT)
        outcome = circuit_outcome_function(circuit)
        for s, b, _, _ in bidders:
            results.append((s, json.loads((s.dir / f"result{b}.json").read_text())))
        tm = time.monotonic()
        for s in servers:
            mon = Monitor(s.url, circuit=circuit, outcome=outcome)
            try:
                rep = mon.follow(interval=0.5, timeout=max(1.0, min(300.0, deadline - time.monotonic())))
                verdicts[s.i] = rep.verdict
            except Exception as e:
                verdicts[s.i] = {"valid": False, "reason": f"{type(e).__name__}: {e}"}
                continue
            log = mon.replica  # verified replica of the final log
            outs: dict[int, list[Any]] = {}
            for e in log.entries(kind=OUTCOME):
                outs.setdefault(e.round, []).append(e)
            closes = {e.round: e for e in log.entries(kind=COMMITMENTS_CLOSED)}
            for r in range(1, args.rounds + 1):
                if len(outs.get(r, [])) != 1:
                    lost.append(f"server {s.i} round {r}: {len(outs.get(r, []))} outcomes")
                elif closes.get(r) is not None and any(c is not None for c in closes[r].data["commitments"]) \
                        and not any(outs[r][0].data["participants"]):
                    void.append(f"server {s.i} round {r}: void (a committed bidder left out, nothing sold)")
            for s2, res in results:
                if s2 is not s:
                    continue
                for r, c in res["logged"].items():
                    r = int(r)
                    close = closes.get(r)
                    if close is None or close.data["commitments"][res["index"]] != c:
                        lost.append(f"server {s.i} round {r}: bidder {res['index']}'s logged commitment is not in the close")
        monitor_s = time.monotonic() - tm
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.terminate()
            try:
                s.proc.wait(10)
            except subprocess.TimeoutExpired:
                s.kill()
    sampler.stop.set()
    t_end = time.monotonic()

    # round latency, per auction and round: first bidder seeing the commit phase -> last bidder seeing the outcome
    lat: list[float] = []
    starts, ends = [], []
    errors = [f"server {s.i}: {res['error']}" for s, res in results if "error" in res]
    by_server: dict[int, list[dict[str, Any]]] = {}
    for s, res in results:
        by_server.setdefault(s.i, []).append(res)
    for i, rs in by_server.items():
        for r in range(1, args.rounds + 1):
            t0s = [res["seen"].get(str(r), [None, None])[0] for res in rs]
            t3s = [res["seen"].get(str(r), [None, None])[1] for res in rs]
            t0s, t3s = [t for t in t0s if t is not None], [t for t in t3s if t is not None]
            if t0s and t3s:
                lat.append(max(t3s) - min(t0s))
                starts.append(min(t0s))
                ends.append(max(t3s))
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else float("nan")

    play_s = (max(ends) - min(starts)) if starts else float("nan")
    valid = bool(verdicts) and len(verdicts) == len(servers) and all((v or {}).get("valid") for v in verdicts.values())
    summary = {
        "design": f"{len(servers)} auctions x {setting.n} bidders (one server process each, one OS process per bidder), "
                  f"T = {args.rounds} per auction; reveal-mode audit, k = {args.audits} per auction",
        "servers": len(servers),
        "bidder_processes": len(bidders),
        "rounds_per_auction": args.rounds,
        "rounds": len(lat),
        "rounds_total_announced": total,
        "rounds_per_s": len(lat) / play_s if lat else 0.0,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": lat[-1] * 1000 if lat else float("nan"),
        "mean_ms": statistics.mean(lat) * 1000 if lat else float("nan"),
        "lost_rounds": len(lost) if not timed_out else None,
        "lost_detail": lost[:20],
        "void_rounds": len(void) if not timed_out else None,
        "void_detail": void[:20],
        "audit_valid": valid,
        "server_kills": sum(s.kills for s in servers),
        "kill_waves": kill_log,
        "client_errors": errors,
        "client_retries": sum(res.get("report", {}).get("retries", 0) for _, res in results),
        "timed_out": timed_out,
        "wall_s": round(t_end - t_start, 1),
        "startup_s": round(t_up - t_start, 1),
        "play_s": round(play_s, 1),
        "clients_done_s": round(t_clients - t_start, 1),
        "monitor_s": round(monitor_s, 1),
        "cores": os.cpu_count(),
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "load_1min_mean_during": round(statistics.mean(sampler.samples), 2) if sampler.samples else None,
        "load_1min_max_during": round(max(sampler.samples), 2) if sampler.samples else None,
        "durable": True,
        "command": command,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(summary))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("kill_waves", "lost_detail", "void_detail")}, indent=2))
    if args.work is None and not timed_out and valid and not lost and not void:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if (valid and not lost and not void and not timed_out and not errors) else 1


def markdown(s: dict[str, Any]) -> str:
    waves = "\n".join(f"| {k + 1} | {w['t_s']} | {w['rounds_done']} |" for k, w in enumerate(s["kill_waves"]))
    return f"""# Service load test (loopback)

`{s['command']}`

**Design.** {s['design']}. The shipped circuit is a 2-bidder auction (a 50-bidder circuit would be far
too big to compile and prove here), so 50 bidder processes means {s['servers']} independent auctions run
at once: {s['servers']} `zkauction serve` processes (each its own SQLite log, fsync per transaction, its own
port on 127.0.0.1) and {s['bidder_processes']} bidder processes (one `BidderClient` each). The
{s['rounds_total_announced']} rounds are {s['rounds_per_auction']} per auction, not 1,000 per auction.
{len(s['kill_waves'])} times during the run **every** server process was SIGKILLed and restarted on the same
log, state and port ({s['server_kills']} kills in all); the clients retried and re-sent openings and passes.
Then each server answered its audit (reveal mode: the drawn rounds' openings published) and a monitor per
server replicated and verified the whole log (chain, checkpoints and consistency, each round's public
checks, the audit verdict with the outcomes recomputed).

**Round latency** is measured on the client side: per auction and round, from the first moment one of
its bidders saw the round open for commitments to the last moment one of its bidders saw the outcome
(so it includes the bidders' checks and any restart the round spanned). **Lost rounds** come from the
final logs (the monitors' verified replicas): a round without exactly one outcome, or whose close lacks
a commitment the server acknowledged to a bidder. **Void rounds**: a round whose close lists a
commitment and whose outcome sells nothing (a committed bidder left out after the dispute deadline);
every bidder here is honest, so each one is a round the protocol lost to a restart.

| metric | value |
|---|---|
| rounds (with an outcome seen by the bidders) | {s['rounds']} of {s['rounds_total_announced']} |
| rounds/s (all auctions together, first commit phase to last outcome) | {s['rounds_per_s']:.2f} |
| round latency p50 / p90 / p99 / max | {s['p50_ms']:.0f} / {s['p90_ms']:.0f} / {s['p99_ms']:.0f} / {s['max_ms']:.0f} ms |
| lost rounds | {s['lost_rounds']} |
| void rounds (a committed honest bidder left out: nothing sold) | {s.get('void_rounds')} |
| audit valid (all monitors) | {s['audit_valid']} |
| server kills (SIGKILL) | {s['server_kills']} |
| client errors / retries | {len(s['client_errors'])} / {s['client_retries']} |
| wall: total / startup / play / monitors | {s['wall_s']} / {s['startup_s']} / {s['play_s']} / {s['monitor_s']} s |
| cores | {s['cores']} |
| load average at start (1/5/15 min) | {s['load_start']} |
| load average at end | {s['load_end']} |
| 1-min load during the run, mean / max | {s['load_1min_mean_during']} / {s['load_1min_max_during']} |

Kill waves (seconds after the servers first listened; rounds done over all auctions):

| wave | t (s) | rounds done |
|---|---|---|
{waves}

The machine is shared (other engineers' jobs run on the same 2 cores): read the numbers with the load.
"""


if __name__ == "__main__":
    sys.exit(main())
