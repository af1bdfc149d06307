"""Service commands: ``serve`` (the auctioneer over HTTP), ``bidder init`` / ``bidder run`` (a bidder
client with its own key and state), ``monitor`` (anyone: follow and check a server's log)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Optional

import typer


def _usage(message: str) -> None:
    from zkauction.protocol.state import ProtocolError

    raise ProtocolError(message)


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        _usage(f"{path}: not UTF-8 text")


def _read_keys(path: Path) -> list[str]:
    keys = []
    for no, line in enumerate(_text(path).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) != 64 or any(c not in "0123456789abcdef" for c in line):
            _usage(f"{path}, line {no}: not an Ed25519 public key (64 lowercase hex digits)")
        keys.append(line)
    if len(set(keys)) != len(keys):
        _usage(f"{path}: a bidder key is listed twice")
    return keys


def start_service(db: str, state: Path, circuit_dir: Path, *, bidders: Optional[Path], rounds: Optional[int],
                  audits: int, penalty: Optional[float], mode: str, deadlines: dict[str, float], durable: bool) -> Any:
    """Announce on an empty ``db`` (with a new auctioneer key in ``state``), or resume; the engine."""
    from zkauction.protocol.log import Ledger, SigningKey, announcing
    from zkauction.protocol.private import private_folder
    from zkauction.service.engine import announce, engine_for
    from zkauction.zk.circuit import Circuit

    from zkauction.protocol.storage_pg import is_postgres_url as is_url

    circuit = Circuit.load(circuit_dir)
    if is_url(db):
        with Ledger.open(db) as probe:  # a PostgreSQL log: empty until announced
            fresh = len(probe) == 0
    else:
        fresh = not Path(db).exists() or Path(db).stat().st_size == 0
    if fresh:
        if bidders is None or rounds is None:
            _usage(f"{db}: no auction there yet; give --bidders FILE and --rounds T to announce one")
        if rounds < 1 or not 1 <= audits <= rounds:
            _usage(f"--rounds {rounds}, --audits {audits}: need 1 <= k <= T")
        if mode not in ("zk", "reveal"):
            _usage(f"--mode {mode!r}: the service runs zk or reveal")
        from zkauction.protocol.announcement import circuit_terms, penalty_problem

        problem = penalty_problem(penalty, rounds, circuit.support, circuit_terms(circuit)["output_scale"])
        if problem:
            _usage(problem)
        keys = _read_keys(bidders)
        if len(keys) != circuit.n:
            _usage(f"{bidders}: {len(keys)} bidder key(s), the circuit is for {circuit.n} bidders")
        d = private_folder(state)
        if not (d / "auctioneer.pem").is_file():
            SigningKey.generate().save(d / "auctioneer.pem")
        with announcing(db, durable=durable) as ledger:
            announce(ledger, SigningKey.load(d / "auctioneer.pem"), circuit, bidders=keys, rounds=rounds, audits=audits,
                     penalty=penalty, mode=mode, deadlines=deadlines)
    engine = engine_for(db, state, circuit, durable=durable)
    if engine.ann.auction.get("manifest_sha256") != circuit.manifest_sha256():
        _usage(f"{circuit_dir} is not the circuit {db} announces")
    return engine


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_cmd(
        circuit: Path = typer.Option(..., "--circuit", help="compiled circuit folder (circuits/NAME)"),
        db: str = typer.Option(..., "--db", help="the log: an SQLite file or a postgresql://...?log=NAME URL; "
                               "an announced run there is resumed"),
        state: Optional[Path] = typer.Option(None, "--state", help="auctioneer's key and openings (default <db>.auctioneer/)"),
        bidders: Optional[Path] = typer.Option(None, "--bidders", help="file of the bidders' public keys, one per line (to announce)"),
        rounds: Optional[int] = typer.Option(None, "--rounds", help="T (to announce)"),
        audits: int = typer.Option(1, "--audits", help="k, the number of audited rounds"),
        penalty: Optional[float] = typer.Option(None, "--penalty", help="penalty (default (T+1) x aRgt*, with the public checks' rounding)"),
        mode: str = typer.Option("zk", "--mode", help="zk or reveal"),
        commit_s: float = typer.Option(10.0, "--commit-s", help="commit phase deadline, seconds"),
        open_s: float = typer.Option(10.0, "--open-s", help="opening phase deadline, seconds"),
        dispute_s: float = typer.Option(30.0, "--dispute-s", help="after a no_opening rejection, how long the round waits "
                                        "for the bidder's published opening or abstention before it is void, seconds"),
        reveal_s: float = typer.Option(60.0, "--reveal-s", help="seed reveal deadline, seconds"),
        answer_s: float = typer.Option(600.0, "--answer-s", help="per audited round, from the close of the reveal "
                                       "phase (proving included), seconds; a verifier that sees the run stand still "
                                       "longer than all deadlines together takes silence for a breach"),
        host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
        port: int = typer.Option(8000, "--port", help="port (0: any free port, printed)"),
        port_file: Optional[Path] = typer.Option(None, "--port-file", help="write the port here once listening"),
        durable: bool = typer.Option(True, "--durable/--no-durable", help="fsync every transaction (default) or "
                                     "survive a killed process only"),
    ) -> None:
        """Run the auctioneer as an HTTP service (the log's only writer; the web view at /)."""
        import socket

        from zkauction.protocol.announcement import MAX_DEADLINE_S

        for name, v in (("--commit-s", commit_s), ("--open-s", open_s), ("--dispute-s", dispute_s), ("--reveal-s", reveal_s),
                        ("--answer-s", answer_s)):
            if not 0 < v <= MAX_DEADLINE_S:  # (bidders refuse longer deadlines)
                _usage(f"{name} {v}: must be a positive number of seconds, at most {MAX_DEADLINE_S:g} (a day)")
        if not 0 <= port <= 65535:
            _usage(f"--port {port}: not a port number")
        from zkauction.protocol.storage_pg import is_postgres_url as is_url

        if state is None and is_url(db):
            _usage("--state DIR is required with a PostgreSQL --db (the auctioneer's key and openings stay on this machine)")
        state = state or Path(db).with_name(Path(db).name + ".auctioneer")
        engine = start_service(db, state, circuit, bidders=bidders, rounds=rounds, audits=audits, penalty=penalty,
                               mode=mode, deadlines={"commit_s": commit_s, "open_s": open_s, "dispute_s": dispute_s, "reveal_s": reveal_s,
                                                    "answer_s": answer_s},
                               durable=durable)
        import uvicorn

        from zkauction.service.server import create_app

        # proto IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on sockets that say they are TCP;
        # without it Nagle holds each response's body behind its headers (~40 ms a request on loopback)
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            _usage(f"cannot listen on {host}:{port}: {e.strerror}")
        bound = sock.getsockname()[1]
        shown = db.split("@")[-1] if is_url(db) else db  # never the password
        typer.echo(f"zkauction auctioneer on http://{host}:{bound}/ (log {shown}, T={engine.ann.rounds}, "
                   f"n={engine.ann.n}, mode {engine.ann.mode})", err=True)
        if port_file is not None:
            port_file.write_text(f"{bound}\n")
        config = uvicorn.Config(create_app(engine), log_level="warning", access_log=False)
        uvicorn.Server(config).run(sockets=[sock])

    bidder_app = typer.Typer(help="A bidder client: its own key and state, against an auctioneer's server.",
                             no_args_is_help=True)
    app.add_typer(bidder_app, name="bidder")

    @bidder_app.command("init")
    def bidder_init(state: Path = typer.Option(..., "--state", help="the bidder's state folder (created 0700)")) -> None:
        """Create a bidder key and secret (if none) and print the public key to give the auctioneer."""
        from zkauction.service.client import init_state

        typer.echo(init_state(state))

    @bidder_app.command("run")
    def bidder_run(
        url: str = typer.Option(..., "--url", help="the auctioneer's server, e.g. http://127.0.0.1:8000"),
        state: Path = typer.Option(..., "--state", help="the bidder's state folder (from `bidder init`)"),
        bids: Path = typer.Option(..., "--bids", help="bids file, CSV (round,b1,...,bm) or JSONL "
                                  "({\"round\": r, \"bids\": [...]}); '-' reads stdin"),
        circuit: Optional[Path] = typer.Option(None, "--circuit", help="the circuit you were told of: its hashes must be "
                                               "the announced ones, and audit proofs are verified with it"),
        mode: str = typer.Option("zk", "--mode", help="the verification mode you agree to: zk (no bid is ever "
                                 "published) or reveal (the audited rounds' bids are); another is refused"),
        dispute: bool = typer.Option(True, "--dispute/--no-dispute", help="answer a no_opening rejection by "
                                     "publishing your opening on the log (default), or not: your bids stay off the "
                                     "public log and the round is void (nothing sold) at the server's dispute deadline"),
        trusted_srs: list[str] = typer.Option([], "--trusted-srs", help="SHA-256 of a ceremony SRS to trust (repeatable); "
                                              "any other SRS is labelled UNTRUSTED"),
        as_json: bool = typer.Option(False, "--json", help="print the client's report as JSON"),
    ) -> None:
        """Take part in the auction: register, commit/open each round, check outcomes, reveal, verify.
        Refuses an announcement in another mode than --mode, or (with --circuit) of other circuit terms,
        or with a penalty too small to make deviating unprofitable. Exit 1 when the log shows a breach,
        the auctioneer falls silent past the announced deadlines, or the audit is unconfirmed (another
        bidder never co-signed the log)."""
        from zkauction.service.client import BidderClient, parse_bids
        from zkauction.zk.srs import check_pins

        try:
            pins = check_pins(trusted_srs)
        except ValueError as e:
            _usage(str(e))

        text = sys.stdin.read() if str(bids) == "-" else _text(bids)
        table = parse_bids(text, name="stdin" if str(bids) == "-" else str(bids))
        if mode not in ("zk", "reveal"):
            _usage(f"--mode {mode!r}: expected zk or reveal (a trusted-third-party auction needs that party's key)")
        expected, circ = {"mode": mode}, None
        if circuit is not None:
            from zkauction.zk.circuit import Circuit

            from zkauction.protocol.announcement import circuit_terms

            circ = Circuit.load(circuit)
            expected.update(circuit_terms(circ))  # refuses an announcement of other scales, supports or n, m
        client = BidderClient(url, state, table.get, expected=expected, circuit=circ,
                              log=lambda s: typer.echo(s, err=True), dispute=dispute, trusted_srs=pins)
        m = client.bidder.announcement.m
        bad = next((r for r, b in table.items() if len(b) != m), None)
        if bad is not None:
            _usage(f"{bids}: round {bad} has {len(table[bad])} bids, the auction has {m} items")
        report = client.run()
        if as_json:
            typer.echo(json.dumps(report.to_dict()))
        else:
            typer.echo(f"bidder {report.index}: bid in {report.rounds_bid} rounds, passed {report.rounds_passed}, "
                       f"checked {report.outcomes_checked} outcomes, verified proofs of rounds {report.proofs_verified}, "
                       f"kept checkpoint of size {report.checkpoint_size}")
            if report.srs is not None:
                from zkauction.zk.srs import SrsLabel

                typer.echo(f"bidder {report.index}: {SrsLabel(**report.srs)}")
            if report.unconfirmed:
                typer.echo(f"bidder {report.index}: audit UNCONFIRMED: {report.unconfirmed}")
        if report.unconfirmed:
            raise typer.Exit(1)

    @app.command("monitor")
    def monitor_cmd(
        url: str = typer.Argument(..., help="the auctioneer's server"),
        state: Optional[Path] = typer.Option(None, "--state", help="keep the last checkpoint here across runs"),
        circuit: Optional[Path] = typer.Option(None, "--circuit", help="public artefacts to verify zk proofs"),
        timeout: Optional[float] = typer.Option(None, "--timeout", help="give up after this many seconds"),
        trusted_srs: list[str] = typer.Option([], "--trusted-srs", help="SHA-256 of a ceremony SRS to trust (repeatable); "
                                              "any other SRS is labelled UNTRUSTED"),
        as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    ) -> None:
        """Follow a server's log: check every entry, checkpoint and round; verify the audit. Exit 1 on
        the first failure (named: a breach, a fork, a rollback, an unconfirmed audit, or a run standing
        still longer than the announced deadlines together), 0 once the audit is valid."""
        from zkauction.service.monitor import Monitor
        from zkauction.zk.srs import SrsLabel, check_pins

        try:
            pins = check_pins(trusted_srs)
        except ValueError as e:
            _usage(str(e))

        circ = outcome = None
        if circuit is not None:
            from zkauction.protocol.auctioneer import circuit_outcome_function
            from zkauction.zk.circuit import Circuit

            circ = Circuit.load(circuit)
            outcome = circuit_outcome_function(circ)  # reveal mode: the audit recomputes the outcomes
        mon = Monitor(url, state=state, circuit=circ, outcome=outcome, trusted_srs=pins, say=lambda s: typer.echo(s, err=True))
        report = mon.follow(timeout=timeout)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), default=str))
        else:
            v = report.verdict or {}
            typer.echo(f"monitor: {report.entries} entries, {report.rounds_checked} rounds checked, "
                       f"{report.checkpoints} checkpoints ({report.consistency_checks} consistency proofs); "
                       f"audit {'VALID' if v.get('valid') else v}")
            if v.get("srs"):
                typer.echo(f"monitor: {SrsLabel(**v['srs'])}")
