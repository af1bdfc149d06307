"""A nineteenth review (README, "A nineteenth review"): a helper attacked the eighteenth review's
defences and found nine holes, among them a way to frame the honest auctioneer with a re-placed log.
Each test played the attack against the code before the fix (comments marked "(before)") and the
defence now."""

from __future__ import annotations

import time

import httpx
import pytest
from test_mutation_kills_service import URL, LogServer, bidder_state, local_run, monitor_of, served_client  # noqa: F401
from test_review_attacks_8 import client, timed_run

from zkauction.protocol.audit import Auditor
from zkauction.protocol.log import Entry, Ledger, SignedCheckpoint, entry_hash, leaf_hash_of
from zkauction.protocol.state import SEED_REVEAL
from zkauction.service.client import AuditFailed
from zkauction.service.monitor import MonitorAlert


def _rechain(entries):
    """A ledger of ``entries`` (each signed by its author) placed in this order: the statement
    signatures cover neither the sequence number nor the link, so anyone can re-place them."""
    r = Ledger.in_memory()
    prev = "0" * 64
    for seq, e in enumerate(entries):
        h = entry_hash(seq, e.round, e.kind, e.payload, prev, e.signer)
        e2 = Entry(seq, e.round, e.kind, e.payload, prev, h, e.signer, e.signature)
        r.storage.append_many([(e2, None)])
        r.tree.append(leaf_hash_of(e2))
        r._head = h
        prev = h
    return r


# ------------------------------------------------------------------------------------------------
# 1. Framing: a log re-placed by anyone from the honest log's signed entries, plus the honest final
#    checkpoint, is "two histories signed by the auctioneer" (log verify --since, Auditor(checkpoints=))


def test_a_log_replaced_from_signed_entries_does_not_make_the_honest_auctioneers_checkpoint_an_equivocation(tmp_path):
    from zkauction.cli.log import verify_log

    run, fn = local_run(tmp_path)
    try:
        run.play()
        kept = run.auctioneer.checkpoint()  # a checkpoint every bidder held after round T (before the reveals)
        run.answer_audit(run.reveal().rounds)
        final = run.auctioneer.checkpoint()  # the honest auctioneer's final checkpoint: one history only
        honest = run.ledger
        assert Auditor(honest, outcome=fn, checkpoints=[kept, final]).audit().status == "valid"
        assert verify_log(honest, since=final)["ok"]
        # a bidder (or anyone) swaps the two seed reveals (signed by their bidders, order immaterial to
        # every check) and attaches the honest checkpoint `kept`, which covers the prefix it left alone
        es = honest.entries()
        i, j = [e.seq for e in es if e.kind == SEED_REVEAL][:2]
        es[i], es[j] = es[j], es[i]
        forged = _rechain(es)
        forged.storage.put_checkpoint(kept.size, kept.to_json())
        report = verify_log(forged, since=final)
        # the honest auctioneer signed no second history: the entries after `kept` were ordered by the
        # forger, not by any checkpoint the auctioneer signed
        assert "penalty_due" not in report, report["failure"]
        verdict = Auditor(forged, outcome=fn, checkpoints=[final]).audit()
        assert not any("two histories" in str(b) for b in verdict.breaches), verdict.reason
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------
# 2. Framing: the same auction announced twice byte for byte (the README's own case) has one log id;
#    a checkpoint of the abandoned first attempt is "two histories" against the honest second run


def test_a_checkpoint_of_an_earlier_byte_identical_auction_is_no_equivocation_of_the_honest_one(tmp_path):
    import secrets as _secrets

    from test_block_attacks import announce_again

    from zkauction.cli.log import verify_log
    from zkauction.protocol.bidder import Bidder

    run, fn = local_run(tmp_path)
    try:
        run.play()
        run.answer_audit(run.reveal().rounds)
        run.auctioneer.checkpoint()
        assert Auditor(run.ledger, outcome=fn).audit().status == "valid"
        # the honest auctioneer's first attempt at the same auction (abandoned before round 1, e.g. its
        # database lost or moved): only bidder 1 (the attacker) registered there, and kept the checkpoint
        first = announce_again(run.auctioneer, nonce=None)  # (announced afresh: a fresh nonce)
        assert first.log_id != run.ledger.log_id  # (before nonces: the same log id)
        Bidder(1, run.bidders[1].key, first, secret=_secrets.token_bytes(32)).register()
        old = first.checkpoint(run.auctioneer.key)  # the honest engine checkpoints each registration
        from zkauction.protocol.checkpoint import CheckpointError

        with pytest.raises(CheckpointError, match="no evidence about this log"):
            Auditor(run.ledger, outcome=fn, checkpoints=[old]).audit()
        assert "penalty_due" not in verify_log(run.ledger, since=old)
        # a deliberate copy (the same nonce, the same log id) with another history is the auctioneer's equivocation
        copy = announce_again(run.auctioneer)
        assert copy.log_id == run.ledger.log_id
        Bidder(1, run.bidders[1].key, copy, secret=_secrets.token_bytes(32)).register()
        other = copy.checkpoint(run.auctioneer.key)
        assert Auditor(run.ledger, outcome=fn, checkpoints=[other]).audit().status == "invalid"
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------
# 3. The cheating host ends a bidder client with "fork" (exit 1, no penalty) by garbling one proof:
#    the log read in full extends the kept checkpoint, so _fork finds no equivocation and re-raises


@pytest.mark.parametrize("garbled", ["/api/log/inclusion", "/api/log/consistency"])
def test_a_garbled_proof_is_no_answer_not_a_fork_that_ends_the_client_without_a_verdict(tmp_path, served_client, garbled):
    run = timed_run(tmp_path)
    try:
        run.play()
        for b in run.bidders:
            b.reveal()
        run.auctioneer.checkpoint()  # the host knows the draw: its lie is drawn, it never closes the reveals
        server = LogServer(run.ledger, status={"round": 4, "phase": 2})  # "finished"
        served_client.server = server
        c = client(run, tmp_path, keep_checkpoint=True, limit=0.5, retry_for=0.05)

        def handle(request, base=server.handle):
            if request.url.path == garbled and request.url.params.get("old") != "0":
                return httpx.Response(200, json={"proof": ["00" * 32], "root": "00" * 32, "seq": 0, "size": 1,
                                                 "old": 1, "new": 1})
            return base(request)

        c.remote.http = httpx.Client(base_url=URL, transport=httpx.MockTransport(handle))
        t0 = time.monotonic()
        # secure: a proof that does not verify while the log itself extends the kept checkpoint is a
        # malformed answer, waited through and then the auctioneer's silence (penalty due); before: ForkError
        # "not in the log of the checkpoint kept" / "not an extension", exit 1, no verdict, no penalty
        with pytest.raises(AuditFailed, match="silent"):
            c.run()
        assert time.monotonic() - t0 < 30
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------
# 4. Errors the silence clock does not cover: a garbled entry (ChainError) or a rolled-back checkpoint
#    (RollbackError) in the client's last check, or in _silent itself, end the client without a verdict


def _garbled_entries(server):
    """Pages of entries with their first entry's signature garbled (no entry anyone signed: a malformed answer)."""
    def handle(request, base=server.handle):
        r = base(request)
        if request.url.path == "/api/log/entries":
            d = r.json()
            if d["entries"]:
                d["entries"][0]["signature"] = "00" * 64
            return httpx.Response(200, json=d)
        return r
    return handle


def _rolled_back(run, server):
    """The host's own older checkpoint (a real signature) and a log cut to it."""
    size = len(run.ledger) - 3
    cp = SignedCheckpoint.sign(run.auctioneer.key, run.ledger.log_id, size, run.ledger.root(size))
    server.size, server.checkpoint = size, cp
    return server.handle


@pytest.mark.parametrize("attack", ["garbled entry", "rolled back"])
def test_what_the_host_serves_for_the_last_check_cannot_end_the_client_without_a_verdict(tmp_path, served_client, attack):
    run = timed_run(tmp_path)
    try:
        run.play()
        for b in run.bidders:
            b.reveal()
        run.auctioneer.checkpoint()  # the host knows the draw; it never closes the reveal phase
        server = LogServer(run.ledger, status={"round": 4, "phase": 2})  # "finished"
        served_client.server = server
        c = client(run, tmp_path, keep_checkpoint=True, limit=0.5, retry_for=0.05)
        c._begun = True
        handle = _garbled_entries(server) if attack == "garbled entry" else _rolled_back(run, server)
        c.remote.http = httpx.Client(base_url=URL, transport=httpx.MockTransport(handle))
        # (before) ChainError "ledger entry N: signature ... does not verify" / RollbackError "rolled back or
        # truncated", exit 1, no verdict, no penalty (the host chose the moment: its lie was drawn)
        with pytest.raises(AuditFailed, match="penalty is due"):
            c._final_audit(0.5)
    finally:
        run.close()


def test_an_error_while_silent_reads_the_log_still_names_the_silence(tmp_path, served_client):
    """client.py _silent catches ProtocolError/Unavailable/Refused only; LedgerError (ChainError,
    ForkError, RollbackError) is none of them: the host that has been silent past the limit garbles
    the page _silent reads, and the client ends with that error instead of AuditFailed."""
    run = timed_run(tmp_path)
    try:
        run.play()
        run.auctioneer.checkpoint()
        server = LogServer(run.ledger, status={"round": 4, "phase": 0})  # never closes the reveals
        served_client.server = server
        c = client(run, tmp_path, limit=0.2)
        c.remote.http = httpx.Client(base_url=URL, transport=httpx.MockTransport(_garbled_entries(server)))
        with pytest.raises(AuditFailed, match="the auctioneer is silent"):
            c._wait(4, 2, poll=0.01)
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------
# 5. The monitor: a garbled entry, an unsigned checkpoint, a signed one inconsistent with the kept one


def test_a_garbled_entry_is_no_answer_to_the_monitor_not_an_end_without_a_verdict(tmp_path):
    run = timed_run(tmp_path)
    try:
        run.play()
        run.auctioneer.checkpoint()
        server = LogServer(run.ledger, size=len(run.ledger) - 2, checkpoint=None)
        mon = monitor_of(server, outcome=run.outcome)
        assert mon.poll() is False and mon.progress() is not None  # the run began
        server.size, server.checkpoint = None, "latest"
        mon.remote.http = httpx.Client(base_url=URL, transport=httpx.MockTransport(_garbled_entries(server)))
        mon.check_live()
        mon._progress_since -= 10.0**6  # (the announced deadlines passed)
        # (before) ChainError "ledger entry N: signature ... does not verify", exit 1, report.verdict None
        with pytest.raises(MonitorAlert, match="silent"):
            mon.follow(interval=0.01, timeout=10, retry_for=0.05)
        assert mon.report.verdict and mon.report.verdict["status"] == "invalid"
    finally:
        run.close()


def test_an_unsigned_checkpoint_is_no_answer_to_the_monitor_not_a_fork_without_a_verdict(tmp_path):
    run = timed_run(tmp_path)
    try:
        run.play()
        run.auctioneer.checkpoint()
        server = LogServer(run.ledger)
        mon = monitor_of(server, outcome=run.outcome)
        assert mon.poll() is False
        n = len(run.ledger)
        real = run.ledger.latest_checkpoint()
        junk = SignedCheckpoint(real.log_id, n, "ab" * 32, real.signer, "00" * 64)  # signed by nobody
        server.checkpoint = junk
        mon.check_live()
        mon._progress_since -= 10.0**6
        # (before) MonitorAlert "fork: the server's signed checkpoint of size N is not the root of the entries
        # it served" at once (the signature is checked only after the root), verdict None, no penalty
        with pytest.raises(MonitorAlert) as e:
            mon.follow(interval=0.01, timeout=10, retry_for=0.05)
        assert mon.report.verdict and mon.report.verdict["status"] == "invalid", str(e.value)
    finally:
        run.close()


def test_a_signed_checkpoint_inconsistent_with_the_kept_one_is_the_monitors_verdict_not_just_a_fork(tmp_path):
    run = timed_run(tmp_path)
    try:
        run.play()
        run.auctioneer.checkpoint()
        server = LogServer(run.ledger)
        mon = monitor_of(server, outcome=run.outcome)
        assert mon.poll() is False
        n = len(run.ledger)
        assert mon._view.kept.size == n
        # the auctioneer signs a second history of its first n - 1 entries (the kept checkpoint, whose
        # entries the monitor holds, proves the first): self-contained evidence (checkpoint.equivocation)
        other = SignedCheckpoint.sign(run.auctioneer.key, run.ledger.log_id, n - 1, "ab" * 32)
        from zkauction.protocol.checkpoint import equivocation

        assert equivocation(mon.replica, other, run.auctioneer.key.public_hex, len(mon.replica))
        server.checkpoint = other
        with pytest.raises(MonitorAlert, match="fork"):
            mon.poll()
        # (before) report.verdict None (the branch that compares the served checkpoint with the entries never
        # asks _fork_verdict), no penalty
        assert mon.report.verdict and mon.report.verdict["status"] == "invalid"
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------
# 6. A monitor restarted with --state: a host that serves nothing (or a prefix before the last
#    registration, stating more) holds it for ever: progress() is None, so nothing is ever timed


@pytest.mark.parametrize("served", ["empty log", "prefix stating more"])
def test_a_restarted_monitor_is_not_held_for_ever_by_a_log_cut_before_round_1(tmp_path, served):
    run = timed_run(tmp_path)
    try:
        run.play()
        run.auctioneer.checkpoint()
        state = tmp_path / "mon"
        first = monitor_of(LogServer(run.ledger), state=state, outcome=run.outcome)
        assert first.poll() is False
        first._pin()
        assert SignedCheckpoint.load(state / "monitor.checkpoint.json").size == len(run.ledger)
        if served == "empty log":
            server = LogServer(run.ledger, size=0, checkpoint=None)
        else:  # the announcement alone, and a stated size that never arrives
            server = LogServer(run.ledger, size=1, checkpoint=None)
            base = server.handle

            def handle(request):
                r = base(request)
                if request.url.path == "/api/log/entries":
                    d = r.json()
                    d["size"] = len(run.ledger)
                    return httpx.Response(200, json=d)
                return r
        again = monitor_of(server, state=state, outcome=run.outcome)
        if served != "empty log":
            again.remote.http = httpx.Client(base_url=URL, transport=httpx.MockTransport(handle))
        # (before: ProtocolError "no verdict after 5 s" and, with the CLI's default --timeout None, never:
        # the monitor holds the host's signed checkpoint of the whole run and never named anything)
        assert again.poll() is False and again.progress() is not None  # timed: the log stands short of its checkpoint
        again.check_live()
        again._progress_since -= 10.0**6  # (the announced deadlines passed)
        with pytest.raises(MonitorAlert, match="the auctioneer is silent: the server serves .* short of the checkpoint"):
            again.follow(interval=0.05, timeout=5, retry_for=0.5)
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------
# 7. progress(): the eighteenth review counted only drawn answers once the reveals CLOSED; before
#    that, any proof (the reader takes one for any round with an outcome, "a proof reveals nothing")
#    still restarts the monitor's clock: a host that knows the draw from the revealed seeds and never
#    closes the reveal phase logs one junk proof per limit, T times


def test_junk_proofs_while_the_reveal_phase_is_held_open_do_not_reset_the_monitors_clock(tmp_path):
    from test_review_attacks_11 import _zk_timed_run

    from zkauction.protocol.audit import liveness_limit_s
    from zkauction.protocol.state import PROOF, read_state, unique_key

    run, circuit = _zk_timed_run(tmp_path, rounds=6)
    try:
        run.play()
        for b in run.bidders:
            b.reveal()
        run.auctioneer.checkpoint()  # every seed is out: the host knows the draw; it never closes the reveals
        mon = monitor_of(LogServer(run.ledger), circuit=circuit)
        assert mon.poll() is False
        limit = liveness_limit_s(read_state(run.ledger).announcement)
        mon.check_live(now=0.0)
        a = run.auctioneer
        junk = {"format": "zkauction-proof/1", "round_id": 1, "proof": {}, "manifest_sha256": "0" * 64,
                "vk_sha256": "0" * 64, "commitments": [], "outcome": {"allocation": [], "payment": []}, "ezkl_version": "x"}
        a.ledger.append(PROOF, junk, a.key, round=1, unique=unique_key(PROOF, 1), checkpoint_key=a.key)
        assert mon.poll() is False
        mon.check_live(now=limit - 1)
        assert read_state(run.ledger).breaches == []  # the junk entry is no breach
        # (before) the clock restarted at limit - 1; nothing the run waits for (the reveal close) moved
        with pytest.raises(MonitorAlert, match="the auctioneer is silent"):
            mon.check_live(now=limit + 1)
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------
# 8. Auditor(checkpoints=): a checkpoint beyond the log's end returns `pending` before the audited
#    rounds are checked: a log that already shows a failed audited round (final: the first answer
#    counts) is `pending` for anyone holding any later checkpoint of the auctioneer's


def test_a_checkpoint_beyond_the_log_does_not_mask_a_failed_audited_round(tmp_path):
    from zkauction.zk.circuit import Outcome

    def lying(fn):
        return lambda bids, salts: Outcome(fn(bids, salts).allocation, tuple(0.0 for _ in bids))

    run, honest = local_run(tmp_path, lying, rounds=3, audits=3)
    try:
        run.play()
        run.answer_audit(run.reveal().rounds)
        run.auctioneer.checkpoint()
        assert Auditor(run.ledger, outcome=honest).audit().status == "invalid"  # the lie is in the log given
        n = len(run.ledger)
        later = SignedCheckpoint.sign(run.auctioneer.key, run.ledger.log_id, n + 1, "ab" * 32)  # one more entry
        verdict = Auditor(run.ledger, outcome=honest, checkpoints=[later]).audit()
        # (before) "pending: the log given ends at N entries, before a checkpoint of size N + 1"
        assert verdict.status == "invalid", verdict.reason
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------
# 9. The client's own zk check (not Auditor.check_audited_round): an unreadable proof entry for the
#    drawn round ends every zk client with exit 2 (BundleError / ProtocolError), no verdict, no
#    penalty, where every Auditor (monitor, `zkauction audit`) says invalid


@pytest.mark.parametrize("proof", [{"junk": 1}, "round_id"], ids=["unreadable", "another round"])
def test_an_unreadable_proof_of_the_drawn_round_is_the_clients_verdict_not_an_error(tmp_path, served_client, proof):
    from test_review_attacks_11 import _zk_timed_run

    from zkauction.protocol.audit import audit_draw
    from zkauction.protocol.state import PROOF, read_state, unique_key

    run, circuit = _zk_timed_run(tmp_path, rounds=3)
    try:
        run.play()
        for b in run.bidders:
            b.reveal()
        a = run.auctioneer
        a.close_reveals()
        d = audit_draw(read_state(run.ledger)).rounds[0]
        if proof == "round_id":
            proof = {"format": "zkauction-proof/1", "round_id": d + 1000, "proof": {}, "manifest_sha256": "0" * 64,
                     "vk_sha256": "0" * 64, "commitments": [], "outcome": {"allocation": [], "payment": []},
                     "ezkl_version": "x"}
        a.ledger.append(PROOF, proof, a.key, round=d, unique=unique_key(PROOF, d), checkpoint_key=a.key)
        a.checkpoint()
        assert Auditor(run.ledger, circuit=circuit).audit().status == "invalid"  # every auditor's verdict
        served_client.server = LogServer(run.ledger, status={"round": 4, "phase": 2})
        c = client(run, tmp_path, keep_checkpoint=True, limit=0.5)
        c.circuit = circuit
        c._begun = True
        # (before) BundleError "..." (exit 2) / ProtocolError "the proof logged for round d names round ..." (exit 2)
        with pytest.raises(AuditFailed):
            c._final_audit(0.5)
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------
# Found while fixing the first: the same re-placing framed the honest auctioneer without any other
# party's checkpoint. The Auditor and `log verify` judged every entry of the log given, so a copy with
# two entries after its last checkpoint swapped (an outcome before its close) was the auctioneer's
# breach; and a copy with one signature damaged (the entry hash does not cover it) "did not verify":
# invalid, the penalty due. Now only the entries a checkpoint the auctioneer signed vouches for are
# judged, and a failure that checkpoint does not pin is a damaged copy (pending), not evidence.


def _placed(entries):
    """A ledger holding ``entries`` exactly as given (hashes and signatures untouched)."""
    r = Ledger.in_memory()
    for e in entries:
        r.storage.append_many([(e, None)])
        r.tree.append(leaf_hash_of(e))
        r._head = e.hash
    return r


def test_a_log_replaced_after_its_checkpoint_shows_no_breach_of_the_honest_auctioneer(tmp_path):
    from zkauction.cli.log import verify_log
    from zkauction.protocol.audit import public_checks
    from zkauction.protocol.state import COMMITMENTS_CLOSED, OUTCOME, read_state

    run, fn = local_run(tmp_path, rounds=3)
    try:
        run.play()
        honest = run.ledger
        close2, out2 = honest.entries(kind=COMMITMENTS_CLOSED, round=2)[0], honest.entries(kind=OUTCOME, round=2)[0]
        kept = SignedCheckpoint.sign(run.auctioneer.key, honest.log_id, close2.seq, honest.root(close2.seq))
        es = honest.entries()[: out2.seq + 1]
        es[close2.seq], es[out2.seq] = es[out2.seq], es[close2.seq]  # round 2's outcome before its close
        forged = _rechain(es)
        forged.storage.put_checkpoint(kept.size, kept.to_json())
        assert public_checks(read_state(forged))  # read in full, the copy shows the auctioneer's breach
        report = Auditor(forged, outcome=fn).audit()  # (before: invalid, the penalty due)
        assert report.status == "pending" and not report.breaches, report.to_dict()
        got = verify_log(forged)  # (before: LOG INVALID, "public checks")
        assert got["ok"] and got["not_vouched_for"] == len(forged) - kept.size, got
    finally:
        run.close()


def test_a_copy_with_a_damaged_signature_is_no_evidence_against_the_auctioneer(tmp_path):
    run, fn = local_run(tmp_path, rounds=2)
    try:
        run.play()
        run.answer_audit(run.reveal().rounds)
        final = run.auctioneer.checkpoint()
        es = run.ledger.entries()
        q = next(e.seq for e in es if e.signer == run.auctioneer.key.public_hex and e.seq > 0)
        e = es[q]
        es[q] = Entry(e.seq, e.round, e.kind, e.payload, e.prev_hash, e.hash, e.signer, "00" * 64)
        copy = _placed(es)
        copy.storage.put_checkpoint(final.size, final.to_json())
        assert copy.root(final.size) == final.root  # the checkpoint still vouches for every entry's hash
        report = Auditor(copy, outcome=fn).audit()  # (before: invalid, "the log does not verify", penalty due)
        assert report.status == "pending" and "damaged copy" in report.reason, report.to_dict()
        # where the checkpoint pins the failure (content that hashes to the signed leaf), it is evidence
        assert Auditor(run.ledger, outcome=fn).audit().status == "valid"
    finally:
        run.close()
