"""Log commands: ``zkauction log checkpoint`` (the signed checkpoint as JSON) and ``zkauction log
verify`` (the full replay: chain, Merkle root against the checkpoint, every round's public checks,
the bidders' co-signed checkpoints and, given an older checkpoint, consistency). Read-only: they open
the log without the writer's lock, so anyone can run them while the auctioneer is writing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

log_app = typer.Typer(help="Read and verify a transparency log (read-only).", no_args_is_help=True)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _open(db: Path) -> Any:
    from zkauction.protocol.log import Ledger, LedgerError

    if not db.is_file():
        _fail(f"--db {db}: no such log file")
    try:
        return Ledger.open(db, writer=False)
    except LedgerError as e:
        _fail(f"--db {db}: {e}")


def verify_log(ledger: Any, since: Any = None) -> dict[str, Any]:
    """Every check ``log verify`` makes, in order; returns a report, raises nothing for a failed
    check (``ok`` False and ``failure`` naming the first one)."""
    from zkauction.protocol.audit import check_cosigned, public_checks
    from zkauction.protocol.checkpoint import CheckpointError, check_log_extends
    from zkauction.protocol.log import ChainError
    from zkauction.protocol.state import ProtocolError, read_state

    report: dict[str, Any] = {"ok": False, "entries": len(ledger), "checks": []}

    def passed(name: str, detail: str) -> None:
        report["checks"].append({"check": name, "ok": True, "detail": detail})

    def failed(name: str, detail: str) -> dict[str, Any]:
        report["checks"].append({"check": name, "ok": False, "detail": detail})
        report["failure"] = f"{name}: {detail}"
        return report

    # 1. the chain: every entry's hash, link and signature
    try:
        chain = ledger.verify_chain()
    except ChainError as e:
        return failed("chain", str(e))
    passed("chain", f"{chain.n_entries} entries, root {chain.root[:16]}...")
    # 2. the announcement, and the newest checkpoint: signed by the announced auctioneer, same log,
    #    and the entries hash to its root
    try:
        st = read_state(ledger)
        cp = ledger.latest_checkpoint()
        if cp is None:
            return failed("checkpoint", "the log has no signed checkpoint")
        cp.verify(st.announcement.auctioneer)
        check_log_extends(ledger, cp)
    except (ProtocolError, CheckpointError) as e:
        return failed("checkpoint", str(e))
    report["checkpoint"] = cp.to_dict()
    passed("checkpoint", f"size {cp.size}, root {cp.root[:16]}..., signed by the announced auctioneer")
    # 3. consistency with a checkpoint the caller kept
    if since is not None:
        try:
            check_log_extends(ledger, since)  # first: another log (re-keyed) is named as such
            since.verify(st.announcement.auctioneer)
        except CheckpointError as e:
            return failed("consistency", str(e))
        passed("consistency", f"extends the kept checkpoint of size {since.size}")
    # 4. every round's public checks and the bidders' co-signed checkpoints
    breaches = public_checks(st) + check_cosigned(ledger, st)
    if breaches:
        report["breaches"] = [str(b) for b in breaches]
        return failed("public checks", str(breaches[0]))
    passed("public checks", f"{st.rounds_done} of {st.announcement.rounds} rounds, {len(st.reveals)} co-signed checkpoints")
    report["ok"] = True
    return report


def register(app: typer.Typer) -> None:
    app.add_typer(log_app, name="log")


@log_app.command("checkpoint")
def checkpoint_cmd(db: Path = typer.Option(..., "--db", help="the log (SQLite file)")) -> None:
    """Print the log's newest signed checkpoint as JSON (keep it: `log verify --since` checks later
    views against it)."""
    ledger = _open(db)
    try:
        cp = ledger.latest_checkpoint()
    finally:
        ledger.close()
    if cp is None:
        _fail(f"{db}: the log has no signed checkpoint", 1)
    typer.echo(json.dumps(cp.to_dict(), indent=2, sort_keys=True))


@log_app.command("verify")
def verify_cmd(
    db: Path = typer.Option(..., "--db", help="the log (SQLite file)"),
    since: Optional[Path] = typer.Option(None, "--since", help="a checkpoint JSON kept earlier: the log must extend it"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Replay the whole log: chain, checkpoint, consistency with --since, every round's public checks.
    Exit 0 when all hold, 1 naming the first failure, 2 for a usage error."""
    from zkauction.protocol.checkpoint import CheckpointError, SignedCheckpoint

    kept = None
    if since is not None:
        try:
            kept = SignedCheckpoint.load(since)
        except CheckpointError as e:
            _fail(f"--since: {e}")
    ledger = _open(db)
    try:
        report = verify_log(ledger, kept)
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for c in report["checks"]:
            typer.echo(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")
        typer.echo("log verified" if report["ok"] else f"LOG INVALID: {report['failure']}")
    if not report["ok"]:
        raise typer.Exit(1)
