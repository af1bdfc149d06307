"""Attacks found by the twelfth adversarial review (disagreement between the verification paths of
one log, the void rule and the penalty). Each test plays the cheating auctioneer (or a party that
frames an honest one) and failed on the code it was written against (fd2b95b): the attack worked
there. The defences: ``storage.parse_json`` (a depth bound for every payload and checkpoint read)
and ``Ledger.entries`` (a lookup returns exactly the entries of the full read)."""

from __future__ import annotations

import pytest

from test_protocol import make_run
from test_service import circuit  # noqa: F401  (the module fixture)
from test_review_attacks_2 import BOTH, opened_round_1
from test_review_attacks_3 import round_1_paying

from zkauction.protocol.audit import Auditor
from zkauction.protocol.log import Statement, statement_hash
from zkauction.protocol.state import OUTCOME, read_state


def verdict_or_crash(fn):
    """What a verifier gives: its value, or the exception that stopped it (a verifier that raises
    gives no verdict, so no penalty is ever computed)."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001  (any exception is the finding)
        return f"crash: {type(e).__name__}: {str(e)[:80]}"


def place_raw(ledger, key, kind, payload_text, round=None):
    """The host places an entry it signed itself, its payload text as it likes (JSON, not canonical):
    it signs its own statements and writes its own database."""
    h = statement_hash(ledger.log_id, round, kind, payload_text, key.public_hex)
    st = Statement(kind, round, payload_text, key.public_hex, key.sign(bytes.fromhex(h)))
    return ledger._place([st], None, key)[0]


def test_an_auctioneers_entry_nested_too_deep_for_the_json_parser_is_a_breach_not_a_crash(tmp_path):
    """The auctioneer overcharges bidder 0 in round 1 (3.5 for two items worth at most 2 at the top of
    the support: a public-check breach, penalty due), then signs and logs one more entry whose payload
    is valid JSON nested 5,000 deep. check_entry (the chain replay every verifier starts with) and the
    reader parse payloads with json.loads, which raises RecursionError, a RuntimeError nobody catches
    (only JSONDecodeError, ChainError, ValueError...). So `zkauction audit`, `log verify`, the monitor,
    the bidder client's final check and the web verdict all raise: no verdict, no penalty due, for
    a log that plainly shows a breach. The entry must be the auctioneer's breach ("payload is not
    JSON" / not canonical), and the audit invalid."""
    from zkauction.cli.log import verify_log

    with make_run(tmp_path, rounds=2, audits=1) as run:
        a = run.auctioneer
        round_1_paying(run, [3.5, 0.0])
        assert Auditor(run.ledger, outcome=run.outcome).audit().status == "invalid"  # the breach, before the trick
        depth = 5000
        place_raw(run.ledger, a.key, "outcome", '{"x":' + "[" * depth + "]" * depth + "}", round=2)
        run.ledger.checkpoint(a.key)
        audit = verdict_or_crash(lambda: Auditor(run.ledger, outcome=run.outcome).audit().status)
        log_verify = verdict_or_crash(lambda: verify_log(run.ledger)["ok"])
        state = verdict_or_crash(lambda: len(read_state(run.ledger).breaches) > 0)
        assert (audit, log_verify, state) == ("invalid", False, True), (audit, log_verify, state)


def test_a_doctored_index_that_repeats_one_entry_and_hides_another_passes_the_lookup_count(tmp_path):
    """The eleventh review's fix (fd2b95b) checks a lookup by round against how many entries of that
    round the full read counted. The host, which owns the SQLite file, builds the round index as a
    WITHOUT ROWID table whose records are (round, k, seq), so it may list one seq twice, and swaps it
    in for ``entries_round`` with PRAGMA writable_schema: the lookup of round 1 now returns a bidder's
    commitment twice and never the second, overcharging outcome (payment 1.9 of bidder 0), the same
    count as the full read. `zkauction log show --round 1` and `verify --db` (round_state: lookups)
    call round 1 clean (the repeated commitment is a bidder's note, "committed twice"), while
    `log verify` and the audit (replays) name "a second outcome for round 1": the eleventh review's
    disagreement again. A lookup now also refuses a repeated or out-of-order sequence number and an
    entry that is not the full read's (its Merkle leaf): `log show` names the doctored index."""
    import sqlite3

    from zkauction.cli.log import round_summary
    from zkauction.protocol.log import Ledger, LedgerError

    db = tmp_path / "a.db"
    with make_run(tmp_path, rounds=2, audits=1) as run:
        a = run.auctioneer
        opened_round_1(run)
        honest = a.close_round(1)
        lie = {**honest.data, "payment": [1.9, honest.data["payment"][1]]}
        hidden = run.ledger.append(OUTCOME, lie, a.key, round=1, checkpoint_key=a.key)
        db = run.db
        rows = [(e.round, e.seq) for e in run.ledger.entries(start=1) if e.round is not None and e.seq != hidden.seq]
    twice = rows[0]  # bidder 0's commitment of round 1, listed twice in place of the hidden outcome
    fake = sorted(rows + [twice])
    con = sqlite3.connect(str(db))
    con.execute("CREATE TABLE fake (round INTEGER, k INTEGER, seq INTEGER, PRIMARY KEY (round, k)) WITHOUT ROWID")
    con.executemany("INSERT INTO fake VALUES (?, ?, ?)", [(r, k, s) for k, (r, s) in enumerate(fake)])
    con.commit()
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'fake'").fetchone()
    con.execute("PRAGMA writable_schema = ON")
    con.execute("UPDATE sqlite_master SET rootpage = ? WHERE name = 'entries_round'", (root,))
    con.commit()
    con.close()
    with Ledger.open(db, writer=False) as ledger:
        assert ledger.verify_chain().n_entries == len(ledger)  # the table itself is untouched
        replay = [b.reason for b in read_state(ledger).breaches]
        assert any("a second outcome for round 1" in x for x in replay), replay
        lookups = verdict_or_crash(lambda: round_summary(ledger, 1)["public_checks"])
        assert lookups != [], "log show (lookups) calls round 1 clean; the replay names: " + replay[0]
        with pytest.raises(LedgerError, match="the log's lookup of round 1 returned entry .*: a damaged or doctored index"):
            round_summary(ledger, 1)


def test_json_deeper_than_the_bound_is_not_json_at_any_stack_depth():
    """The defence of the first attack: every payload and checkpoint read goes through
    ``storage.parse_json``, which refuses nesting deeper than MAX_JSON_DEPTH as a JSONDecodeError
    (what every reader already catches) instead of a RecursionError that depends on how deep the
    caller's stack is; brackets inside strings do not count."""
    import json

    from zkauction.protocol.storage import MAX_JSON_DEPTH, parse_json

    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json.loads(ok) == parse_json(ok)
    assert parse_json('{"a": "' + "[{" * 500 + '\\"[", "b": [1]}') == {"a": "[{" * 500 + '"[', "b": [1]}
    for deep in ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), '{"x":' + "[" * 5000 + "]" * 5000 + "}"):
        with pytest.raises(json.JSONDecodeError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
            parse_json(deep)
    with pytest.raises(json.JSONDecodeError):
        parse_json("[" * 100)  # not JSON either way


def test_a_bidders_statement_nested_too_deep_is_refused_and_the_server_goes_on(tmp_path, circuit):
    """A bidder's statement whose payload is valid JSON nested 5,000 deep made the honest server's
    statement check raise RecursionError (a 500 for that request); now it is not canonical JSON: 400,
    nothing logged, and the server answers the next request."""
    from test_service import make_service
    from test_service_attacks import post, registered

    from zkauction.service.remote import Refused

    srv = make_service(tmp_path, circuit, n_rounds=1, mode="reveal")
    try:
        (b0, k0, remote), _ = registered(tmp_path, srv)
        log_id, size = srv.engine.log_id, len(srv.engine.ledger)
        text = '{"bidder":0,"x":' + "[" * 5000 + "]" * 5000 + "}"
        st = Statement("bid_commitment", 1, text, k0.public_hex,
                       k0.sign(bytes.fromhex(statement_hash(log_id, 1, "bid_commitment", text, k0.public_hex))))
        with pytest.raises(Refused) as e:
            post(remote, st)
        assert e.value.status == 400 and "canonical" in str(e.value)
        assert remote.status()["round"] == 1 and len(srv.engine.ledger) == size
    finally:
        srv.stop()


@pytest.mark.parametrize("payload", ['["no_opening",0]', '{"commitments":"x"}', '{"commitments":[]}', "7"])
def test_an_auctioneers_malformed_close_or_rejection_is_named_not_a_crash_of_the_bidder(tmp_path, payload):
    """From the twelfth review's minor list: an auctioneer-signed rejection (or close) whose payload
    is a list, a number or lacks its fields made Bidder.check_outcome and rejected_no_opening raise
    AttributeError / KeyError / IndexError, stopping an honest bidder's client with a traceback. Such
    an entry reads as one without the field (``Entry.fields``); a malformed close is a ProtocolError
    naming the auctioneer's breach; the reader names both breaches."""
    from zkauction.protocol.state import COMMITMENTS_CLOSED, OPENING_REJECTED, ProtocolError, rejected_no_opening

    with make_run(tmp_path, rounds=2, audits=1) as run:
        a, first, second = run.auctioneer, *run.bidders
        first.commit(1, BOTH[0])
        second.commit(1, BOTH[1])
        if payload.startswith('["'):
            close = a.close_commitments(1)
            place_raw(run.ledger, a.key, OPENING_REJECTED, payload, round=1)
            out = {"participants": [0, 1], "commitments": close.data["commitments"], "allocation": [[0.0, 0.0], [1.0, 1.0]],
                   "payment": [0.0, 0.5]}  # bidder 0 left out on the strength of that "rejection"
            run.ledger.append(OUTCOME, out, a.key, round=1, checkpoint_key=a.key)
            assert rejected_no_opening(run.ledger, 1, 0, a.key.public_hex) is False
            with pytest.raises(ProtocolError, match="round 1: the outcome was not computed on bidder 0's commitment"):
                first.check_outcome(1)
        else:
            place_raw(run.ledger, a.key, COMMITMENTS_CLOSED, payload, round=1)
            run.ledger.checkpoint(a.key)
            with pytest.raises(ProtocolError, match=r"round 1: the close is malformed \(no list of 2 commitments\): "
                                                    "the auctioneer's breach; the opening is not sent"):
                first.open(1)
        assert read_state(run.ledger).breaches != []
