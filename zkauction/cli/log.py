"""Log commands: ``zkauction log checkpoint`` (the signed checkpoint as JSON) and ``zkauction log
verify`` (the full replay: chain, Merkle root against the checkpoint, every round's public checks,
the bidders' co-signed checkpoints and, given an older checkpoint, consistency). Read-only: they open
the log without the writer's lock, so anyone can run them while the auctioneer is writing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from zkauction.errors import ZkAuctionError

DB_HELP = "the log: an SQLite file, or a postgresql://USER@HOST/DB?log=NAME URL"
log_app = typer.Typer(help="Read and verify a transparency log (read-only).", no_args_is_help=True)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _open(db: str | Path) -> Any:
    from zkauction.protocol.log import Ledger, LedgerError
    from zkauction.protocol.storage_pg import is_postgres_url

    if not is_postgres_url(db) and not Path(db).is_file():
        _fail(f"--db {db}: no such log file")
    try:
        return Ledger.open(db, writer=False)
    except LedgerError as e:
        _fail(f"--db: {e}" if is_postgres_url(db) else f"--db {db}: {e}")  # the error names a URL without its password


def db_name(db: str | Path) -> str:
    """``--db`` for messages: a URL without its password."""
    from zkauction.protocol.storage_pg import is_postgres_url, redact_url

    return redact_url(db) if is_postgres_url(db) else str(db)


def _pinned(ledger: Any, err: Any, since: Any) -> bool:
    """Whether the chain failure ``err`` lies in entries a checkpoint the announced auctioneer signed
    (the log's stored one, or ``since``) vouches for, and that checkpoint pins it."""
    from zkauction.protocol.checkpoint import attested_size, stored_checkpoint
    from zkauction.protocol.entries import pinned_failure
    from zkauction.protocol.state import read_announcement

    try:
        ann, _ = read_announcement(ledger, signatures=False)
        cps = [c for c in (stored_checkpoint(ledger, ann.auctioneer), since) if c is not None]
        return err.seq < attested_size(ledger, cps, ann.auctioneer) and pinned_failure(getattr(err, "entry", None), err)
    except ZkAuctionError:
        return False


def verify_log(ledger: Any, since: Any = None) -> dict[str, Any]:
    """Every check ``log verify`` makes, in order; returns a report, raises nothing for a failed
    check (``ok`` False and ``failure`` naming the first one). Only the entries a checkpoint the
    announced auctioneer signed pins (its newest stored, and ``since``) are judged: statements are
    signed without their place, so anyone holding a copy can re-place, cut or damage the rest. A
    breach among them is ``LOG INVALID``; a copy that fails elsewhere is ``damaged`` (not evidence
    against the auctioneer: the twentieth to twenty-fifth reviews)."""
    from zkauction.protocol.audit import check_cosigned, public_checks
    from zkauction.protocol.checkpoint import CheckpointError, attested_size, equivocation, pinned_log, stored_checkpoint
    from zkauction.protocol.entries import pinned_failure
    from zkauction.protocol.log import ChainError
    from zkauction.protocol.state import ProtocolError, read_announcement, read_state

    report: dict[str, Any] = {"ok": False, "entries": len(ledger), "checks": []}

    def passed(name: str, detail: str) -> None:
        report["checks"].append({"check": name, "ok": True, "detail": detail})

    def failed(name: str, detail: str, damaged: bool = False) -> dict[str, Any]:
        report["checks"].append({"check": name, "ok": False, "detail": detail})
        report["failure"] = f"{name}: {detail}"
        if damaged:
            report["damaged"] = True
        return report

    def damaged_copy(e: Any, why: str = "no checkpoint the auctioneer signed pins this") -> dict[str, Any]:
        return failed("chain", f"{e} (a damaged copy: {why}; not evidence against it)", damaged=True)

    # 1. the chain of the whole copy: a failure a checkpoint of the auctioneer's pins is its own at once;
    #    any other is damage to this copy, named after the entries that are pinned were judged
    damage = None
    try:
        chain = ledger.verify_chain()
        passed("chain", f"{chain.n_entries} entries, root {chain.root[:16]}...")
    except ChainError as e:
        if _pinned(ledger, e, since):
            return failed("chain", str(e))
        damage = e
    # 2. the announcement; a checkpoint the caller brought must be this log's, signed by its auctioneer
    #    (else it is no evidence about the log, and the caller's usage error: the twenty-first review)
    try:  # (its signature: with the entries a checkpoint pins, below)
        ann, _ = read_announcement(ledger, signatures=False)
    except (ProtocolError, ChainError) as e:
        return damaged_copy(damage) if damage is not None else failed("announcement", str(e))
    if since is not None:
        if since.log_id != ledger.log_id:  # (the re-keyed log: the caller's is another; no verdict on this one)
            report["another_log"] = True
            return failed("consistency", f"the log is {ledger.log_id[:16]}..., not the log {since.log_id[:16]}... of the "
                                         "checkpoint kept")
        try:
            since.verify(ann.auctioneer)
        except CheckpointError as e:
            report["usage"] = True
            return failed("consistency", f"the checkpoint given is no evidence about this log: {e}")
    # 3. what the auctioneer's checkpoints (the log's newest, and the caller's) pin; two of them over two
    #    histories are its equivocation (the penalty); entries no checkpoint of its pins are evidence of nothing
    cp = stored_checkpoint(ledger, ann.auctioneer)  # (rows of junk, another log's or anyone else's: evidence of nothing)
    held = [c for c in (cp, since) if c is not None]
    attested = attested_size(ledger, held, ann.auctioneer)
    for c in held:
        try:
            why = equivocation(ledger, c, ann.auctioneer, attested)
        except CheckpointError:  # (held are this log's and signed: not expected, and evidence of nothing)
            continue
        if why:
            report["penalty_due"] = ann.penalty
            return failed("consistency", f"{why}: the penalty {ann.penalty:g} is due")
    if not attested and damage is not None:
        return damaged_copy(damage)
    if not attested:
        return failed("checkpoint", f"no checkpoint the auctioneer signed vouches for these {len(ledger)} entries (none "
                      "stored, a copy short of its checkpoint, re-placed, or with a checkpoint not the auctioneer's): not "
                      "evidence against it", damaged=True)
    if cp is not None and cp.size <= attested:  # (signed, so the root at its size is its own)
        report["checkpoint"] = cp.to_dict()
        passed("checkpoint", f"size {cp.size}, root {cp.root[:16]}..., signed by the announced auctioneer")
    if since is not None and since.size <= attested:
        passed("consistency", f"extends the kept checkpoint of size {since.size}")
    # 4. the pinned entries: chain (a failure there is the auctioneer's where its checkpoint pins it; a spoiled
    #    signature, which the leaf does not cover, is read past: the content and signer are pinned), then every
    #    round's public checks and the bidders' co-signed checkpoints
    try:
        log, spoiled = pinned_log(ledger, attested, verified=damage is None)  # (step 1 verified the whole chain)
    except ChainError as e:
        return failed("chain", str(e)) if pinned_failure(getattr(e, "entry", None), e) else damaged_copy(e)
    st = read_state(log, signatures=spoiled is None)
    breaches = public_checks(st) + check_cosigned(log, st)
    if breaches:
        report["breaches"] = [str(b) for b in breaches]
        return failed("public checks", str(breaches[0]))
    passed("public checks", f"{st.rounds_done} of {st.announcement.rounds} rounds, {len(st.reveals)} co-signed "
                            f"checkpoints, in the first {attested} entries")
    # 5. the rest of the copy: what nothing pins is only checked, never held against the auctioneer
    if spoiled or damage is not None:
        return damaged_copy(spoiled or damage, "a checkpoint pins an entry's content, not its signature" if spoiled
                            else "no checkpoint the auctioneer signed pins this")
    short = [c for c in held if c.size > attested]
    if short:
        c = short[0]
        why = (f"the log has {len(ledger)} entries, fewer than the {c.size} of the checkpoint" if c.size > len(ledger) else
               f"the log's first {c.size} entries are not the ones of the checkpoint")
        return failed("checkpoint" if c is cp else "consistency",
                      f"{why} {'it holds' if c is cp else 'kept'}: rolled back or truncated, or a fork or rewrite, by its "
                      f"host or in this copy; the first {attested} entries, which a checkpoint the auctioneer signed "
                      "vouches for, hold no breach (ask for the log again: a host that serves none extending its "
                      "checkpoints is silent once the deadlines pass, `zkauction audit`)", damaged=True)
    if attested < len(ledger):
        report["not_vouched_for"] = len(ledger) - attested
    report["ok"] = True
    return report


def register(app: typer.Typer) -> None:
    app.add_typer(log_app, name="log")

    @app.command("show")
    def show_round(
        what: str = typer.Argument(..., help="what to show: round"),
        r: int = typer.Argument(..., help="the round R"),
        db: Optional[str] = typer.Option(None, "--db", help="the log (default: $ZKAUCTION_DB or ./auction.db)"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """`zkauction show round R`: the same as `zkauction log show --round R`."""
        from zkauction.cli.protocol import default_db

        if what != "round":
            _fail(f"show {what!r}: only 'show round R' is known")
        if not 0 <= r < 2**63:
            _fail(f"show round {r}: not a round number (0 to 2^63 - 1)")
        show_cmd(default_db(None) if db is None else db, r, as_json)


@log_app.command("checkpoint")
def checkpoint_cmd(db: str = typer.Option(..., "--db", help=DB_HELP)) -> None:
    """Print the log's newest checkpoint signed by its announced auctioneer as JSON (keep it: `log
    verify --since` checks later views against it). Rows of another log or signer are passed over."""
    from zkauction.protocol.checkpoint import stored_checkpoint
    from zkauction.protocol.state import ProtocolError, read_announcement

    ledger = _open(db)
    try:
        cp = stored_checkpoint(ledger, read_announcement(ledger, signatures=False)[0].auctioneer)
    except ProtocolError as e:
        _fail(f"{db_name(db)}: {e}", 1)
    finally:
        ledger.close()
    if cp is None:
        _fail(f"{db_name(db)}: the log has no signed checkpoint", 1)
    typer.echo(json.dumps(cp.to_dict(), indent=2, sort_keys=True))


@log_app.command("verify")
def verify_cmd(
    db: str = typer.Option(..., "--db", help=DB_HELP),
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
    if report.get("usage"):  # a checkpoint of another log, or not its auctioneer's: no verdict either way
        _fail(f"--since {since}: {report['failure'].removeprefix('consistency: ')}")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for c in report["checks"]:
            typer.echo(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")
        typer.echo("log verified" if report["ok"] else f"COPY DAMAGED: {report['failure']}" if report.get("damaged")
                   else f"ANOTHER LOG: {report['failure']}" if report.get("another_log")
                   else f"LOG INVALID: {report['failure']}")
    if not report["ok"]:
        raise typer.Exit(1)


def _entry_line(e: Any) -> dict[str, Any]:
    """One entry as the listing shows it: no bids (there are none in zk mode except in openings
    the auctioneer published for audit), payloads shortened to what a reader scans for. A payload
    that is not a JSON object is named (`log verify` names every such problem)."""
    from zkauction.protocol.log import LedgerError

    try:
        d = e.data
    except ValueError:  # (json.JSONDecodeError)
        d = None
    if not isinstance(d, dict):
        raise LedgerError(f"entry {e.seq}: its payload is not a JSON object (a damaged log: `zkauction log verify` "
                          "names every problem)")
    brief: dict[str, Any] = {k: v for k, v in d.items() if k in ("bidder", "reason", "participants", "payment", "allocation",
                                                                   "commitment", "valid", "round_id")}
    if "commitments" in d and isinstance(d["commitments"], list):
        brief["commitments"] = [c[:12] + "..." if isinstance(c, str) else c for c in d["commitments"]]
    if e.kind == "announcement":
        brief = {"auction": d.get("auction", {}).get("name"), "T": d.get("rounds"), "k": d.get("audits"),
                 "penalty": d.get("penalty"), "mode": d.get("mode"), "n": d.get("n"), "m": d.get("m")}
    return {"seq": e.seq, "round": e.round, "kind": e.kind, "signer": e.signer[:12] + "...", **brief}


@log_app.command("ls")
def ls_cmd(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    kind: Optional[str] = typer.Option(None, "--kind", help="only entries of this kind (e.g. outcome)"),
    round: Optional[int] = typer.Option(None, "--round", min=0, max=2**63 - 1, help="only entries of this round"),
    limit: int = typer.Option(50, "--limit", help="at most this many entries (0: all)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
) -> None:
    """List log entries (read-only), newest last."""
    if limit < 0:
        _fail(f"--limit {limit}: must be 0 (all) or positive")
    ledger = _open(db)
    try:
        rows = [_entry_line(e) for e in ledger.entries(kind=kind, round=round)]
    finally:
        ledger.close()
    rows = rows[-limit:] if limit else rows
    for r in rows:
        if as_json:
            typer.echo(json.dumps(r))
        else:
            rest = {k: v for k, v in r.items() if k not in ("seq", "round", "kind", "signer")}
            typer.echo(f"{r['seq']:>6}  {'' if r['round'] is None else r['round']:>5}  {r['kind']:<19} {json.dumps(rest)}")


def round_summary(ledger: Any, r: int) -> dict[str, Any]:
    """One round as every verifier sees it: commitments, rejections, outcome, public checks, audit."""
    from zkauction.protocol.audit import audit_draw, check_round
    from zkauction.protocol.checkpoint import attested_size, stored_checkpoint
    from zkauction.protocol.state import AuditError, ProtocolError, read_announcement, read_state, round_state

    # only the entries the log's checkpoint (signed by its auctioneer) pins: anyone holding the file can
    # add or re-place the rest, which `log verify` does not judge either (the twenty-sixth review)
    ann, _ = read_announcement(ledger)
    if not 1 <= r <= ann.rounds:
        raise ProtocolError(f"--round {r}: the auction has rounds 1..{ann.rounds}")
    pinned = attested_size(ledger, [c for c in [stored_checkpoint(ledger, ann.auctioneer)] if c], ann.auctioneer)
    st = round_state(ledger, r, stop=pinned)
    out = st.outcomes.get(r)
    summary: dict[str, Any] = {
        "round": r, "commitments": st.commitments.get(r, {}), "closed": r in st.closes,
        "rejections": st.rejections.get(r, {}), "published_openings": sorted(st.disputes.get(r, {})),
        "outcome": None if out is None else {k: out.data[k] for k in ("participants", "allocation", "payment")},
        "public_checks": [] if not pinned else [str(b) for b in st.breaches + check_round(st, r)] if out is not None
        else ["pending: no outcome yet"],
        "pinned_entries": pinned,  # (0: not judged, no checkpoint the auctioneer signed pins this copy)
    }
    try:
        draw = audit_draw(read_state(ledger, stop=pinned))
        summary["audited"] = r in draw.rounds
    except AuditError as e:
        summary["audited"] = f"not drawn yet ({e})"
    summary["proof_logged"] = r in st.proofs
    return summary


@log_app.command("show")
def show_cmd(
    db: str = typer.Option(..., "--db", help=DB_HELP),
    round: int = typer.Option(..., "--round", min=0, max=2**63 - 1, help="the round R to show"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One round: commitments, rejections, outcome, its public checks and whether it is audited."""
    from zkauction.protocol.state import ProtocolError

    ledger = _open(db)
    try:
        s = round_summary(ledger, round)
    except ProtocolError as e:
        _fail(str(e))
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    typer.echo(f"round {round}: {len(s['commitments'])} commitment(s), {'closed' if s['closed'] else 'NOT closed'}")
    for i, c in sorted(s["commitments"].items()):
        typer.echo(f"  bidder {i}: {c[:16]}...")
    for i, reason in sorted(s["rejections"].items()):
        typer.echo(f"  bidder {i} rejected: {reason}")
    if s["outcome"] is not None:
        o = s["outcome"]
        typer.echo(f"  outcome: participants {o['participants']}, allocation {o['allocation']}, payment {o['payment']}")
    checks = s["public_checks"]
    typer.echo("  public checks: " + ("not judged (no checkpoint the auctioneer signed pins this copy's entries: "
                                      "`zkauction log verify`)" if not s["pinned_entries"] else
                                      "all hold" if not checks else "; ".join(checks)))
    typer.echo(f"  audited: {s['audited']}; proof logged: {s['proof_logged']}")
