"""An adversarial review of rounds in blocks (announcement ``block`` B > 1; zkauction/protocol/rounds.py
``play_block``): the cheating auctioneer (it hosts the log, signs for its shills, sees every opening,
may roll back or re-place signed statements) and the framing bidder, played against block mode.

Each test plays one attack and asserts the defence: the honest party refuses (a named error), or the
log's reader, public checks or audit blame exactly the party at fault. A test marked
``xfail(strict=True)`` is a hole: the attack works today; the marker goes with the fix.

A block is driven here step by step as ``play_block`` drives it (batched commitments, every close of
the block in one transaction with its checkpoint, each bidder's openings under one batch signature,
``receive_openings`` / ``close_rounds`` / ``finish_round``), so that an attack can be slipped in
between two steps. Forged logs are in-memory replicas (``Ledger.replicate``) or logs re-placed from
signed statements (``Ledger.append_signed``: a statement is signed for a log, not for a position)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from zkauction.protocol.audit import audit_draw, check_cosigned, check_round, public_checks
from zkauction.protocol.auctioneer import Auctioneer, circuit_outcome_function
from zkauction.protocol.bidder import Bidder, SignedOpening
from zkauction.protocol.checkpoint import ForkError, LogIdentityError, LogView
from zkauction.protocol.local import LocalRun
from zkauction.protocol.log import (
    ChainError, Entry, Ledger, LedgerError, SignedCheckpoint, SigningKey, Statement, entry_hash, verify_signature,
)
from zkauction.protocol.rounds import close_rounds, finish_round, play_block, play_round, receive_openings, run_rounds
from zkauction.protocol.state import (
    BID_COMMITMENT,
    COMMITMENTS_CLOSED,
    DISPUTE,
    OPENING_REJECTED,
    OUTCOME,
    REGISTRATION,
    REVEALS_CLOSED,
    SEED_REVEAL,
    ZERO_SALT,
    ProtocolError,
    absent_commitment,
    opening_message,
    read_state,
    unique_key,
)
from zkauction.zk.commitments import CommitmentError, Opening, make_commitment

from test_blocks import AUCTION, CIRCUIT, PARTICIPATION, SETTING  # noqa: E402  (the same run as tests/test_blocks.py)

HONEST = circuit_outcome_function(CIRCUIT)
STEP = 2.0 ** -CIRCUIT.input_scale

# A block of four rounds with chosen bids: both bidders in rounds 1 and 3, bidder 1 absent in 2 and 4.
P1 = {1: [[0.75, 0.5], [0.25, 0.5]], 2: [[0.5, 0.25], [0.0, 0.0]], 3: [[0.25, 0.75], [0.5, 0.5]], 4: [[0.5, 0.5], [0.0, 0.0]]}


def make_run(tmp_path, *, rounds=4, block=4, name="b.db", audits=1) -> LocalRun:
    return LocalRun.create(tmp_path / name, HONEST, setting=SETTING, participation=PARTICIPATION,
                           input_scale=CIRCUIT.input_scale, auction=AUCTION, rounds=rounds, audits=audits, mode="reveal",
                           seed=3, circuit=CIRCUIT, block=block)


# -- a block, step by step (as play_block takes it) ---------------------------------------------------

def commit_block(run: LocalRun, profiles: dict[int, list[list[float]]]):
    """Step 1: every bidder's commitments of the block, batch-signed, in one transaction.
    Returns (listed {round: [commitment or None]}, present {bidder: [rounds]})."""
    rounds = sorted(profiles)
    items, present = [], {}
    for b in run.bidders:
        present[b.index] = [r for r in rounds if any(profiles[r][b.index])]
        items += b.commitment_items_many(present[b.index], [profiles[r][b.index] for r in present[b.index]])
    logged = run.ledger.append_many(items, batch_sign=True)
    listed = {r: [None] * SETTING.n for r in rounds}
    for e in logged:
        listed[e.round][e.data["bidder"]] = e.data["commitment"]
    return listed, present


def close_block(run: LocalRun, listed, rounds=None, *, checkpoint=True) -> list[Entry]:
    """Step 2: the auctioneer closes the block's rounds in one transaction (with its checkpoint)."""
    a = run.auctioneer
    return run.ledger.append_many([(COMMITMENTS_CLOSED, {"commitments": listed[r]}, a.key, r, unique_key(COMMITMENTS_CLOSED, r))
                                   for r in (rounds or sorted(listed))],
                                  checkpoint_key=a.key if checkpoint else None, batch_sign=True)


def open_block(run: LocalRun, present) -> dict[int, dict[int, SignedOpening]]:
    """Step 3: each bidder checks the checkpointed closes and sends its openings under one signature."""
    return {b.index: dict(zip(present[b.index], b.open_many(present[b.index]))) for b in run.bidders if present[b.index]}


def play_p1(run: LocalRun):
    listed, present = commit_block(run, P1)
    close_block(run, listed)
    return listed, present, open_block(run, present)


def replica(ledger: Ledger, stop: int) -> Ledger:
    """The first ``stop`` entries of ``ledger`` in a fresh in-memory log (the host's forgery starts here)."""
    forged = Ledger.in_memory()
    forged.replicate(ledger.entries(stop=stop))
    return forged


def replace_log(path: Path, entries) -> Ledger:
    """A log holding the signed statements of ``entries`` in the given order (the host re-places them)."""
    led = Ledger.open(path)
    led.append_signed([Statement(e.kind, e.round, e.payload, e.signer, e.signature) for e in entries])
    return led


def outcome_without(run: LocalRun, r: int, listed, sent, drop: int) -> dict:
    """Round r's canonical outcome with bidder ``drop`` left out (what an excluding host logs)."""
    ann = run.auctioneer.announcement()
    bids, salts = [[0.0] * ann.m for _ in range(ann.n)], [ZERO_SALT] * ann.n
    coms, present = [absent_commitment(ann.m, ann.input_scale)] * ann.n, [0] * ann.n
    for i in range(ann.n):
        if i != drop and listed[r][i] is not None:
            o = sent[i][r].opening
            bids[i], salts[i], coms[i], present[i] = list(o.bids), o.salt, listed[r][i], 1
    return {"participants": present, "commitments": coms, **HONEST(bids, salts).to_dict()}


def cosigned(st, i: int) -> SignedCheckpoint:
    """The checkpoint bidder ``i``'s seed reveal co-signs."""
    return SignedCheckpoint.from_dict(st.reveals[i].data["checkpoint"])


def reasons(breaches) -> list[str]:
    return [str(b) for b in breaches]


# ==================================================================================================
# 1. Shill timing
# ==================================================================================================

def test_a_shill_commitment_after_the_blocks_closes_is_not_counted_and_an_outcome_using_it_is_a_breach(tmp_path):
    with make_run(tmp_path) as run:
        a, (honest, shill) = run.auctioneer, run.bidders  # the host signs for bidder 1's key
        listed, present, sent = play_p1(run)  # every close of the block checkpointed, then the openings
        assert present[1] == [1, 3]
        seen = sent[0][2].opening  # the honest opening of round 2, in the host's hands
        tuned = [min(1.0, b + STEP) for b in seen.bids]
        # an honest client refuses to commit once the round is closed...
        with pytest.raises(ProtocolError, match="round 2: the commitments are closed; bidder 1 is too late"):
            shill.commitment_item(2, tuned)
        # ...the host's shill signs anyway, for round 2 and for the later round 4 of the same block
        late = {r: make_commitment(tuned, CIRCUIT.input_scale, salt=shill.salt(r))[0] for r in (2, 4)}
        run.ledger.append_many([(BID_COMMITMENT, {"bidder": 1, "commitment": late[r]}, shill.key, r, None) for r in (2, 4)],
                               batch_sign=True)
        st = read_state(run.ledger)
        assert 1 not in st.commitments[2] and 1 not in st.commitments[4]
        for r in (2, 4):
            assert any(f"bidder 1's commitment for round {r} logged after the round's commitments were closed" in n
                       for n in st.notes), st.notes
        assert st.breaches == []
        # an outcome of round 2 that counts the late shill is the auctioneer's breach
        forged = replica(run.ledger, len(run.ledger))
        ann = a.announcement()
        out = HONEST([list(seen.bids), tuned], [seen.salt, shill.salt(2)])
        forged.append(OUTCOME, {"participants": [1, 1], "commitments": [listed[2][0], late[2]], **out.to_dict()}, a.key,
                      round=2)
        assert any("round 2: bidder 1 must be absent from the outcome (it did not bid)" in s
                   for s in reasons(check_round(read_state(forged), 2)))
        # the honest path: the block's outcomes leave the late commitments out
        clean = receive_openings(a, [1, 2, 3, 4], listed, sent)
        assert clean == [1, 2, 3, 4]
        close_rounds(a, clean, listed)
        assert honest.check_outcome(2) == "ok" and shill.check_outcome(3) == "ok"
        st = read_state(run.ledger)
        assert st.outcomes[2].data["participants"] == [1, 0] and st.outcomes[4].data["participants"] == [1, 0]
        assert public_checks(st) == [] and ann.block == 4
        assert run.audit().status == "valid"


def test_no_opening_of_a_block_leaves_a_bidder_before_every_close_of_the_block_is_checkpointed(tmp_path):
    with make_run(tmp_path) as run:
        a, b0 = run.auctioneer, run.bidders[0]
        listed, present = commit_block(run, P1)
        # the host closes rounds 1 and 2 only (with a checkpoint) and asks for the block's openings
        close_block(run, listed, [1, 2])
        with pytest.raises(ProtocolError, match="round 3: the commitments are not closed in a checkpoint bidder 0 holds"):
            b0.open_many(present[0])
        # rounds 3 and 4 closed, but with no checkpoint covering them: still nothing is sent
        close_block(run, listed, [3, 4], checkpoint=False)
        with pytest.raises(ProtocolError, match="round 3: the commitments are not closed in a checkpoint bidder 0 holds"):
            b0.open_many(present[0])
        # nor does the auctioneer take an opening of a round whose close no checkpoint covers
        early = b0.sign_opening(3, b0._openings[3])
        with pytest.raises(ProtocolError, match="round 3: openings are refused until the round's commitments are closed and checkpointed"):
            a.receive_opening(3, 0, early)
        a.checkpoint()
        sent = open_block(run, present)
        assert sorted(sent[0]) == [1, 2, 3, 4] and all(s.signature.startswith("b1.") for s in sent[0].values())
        assert read_state(run.ledger).breaches == []


def test_next_block_commitments_before_the_outcomes_are_counted_but_its_close_waits(tmp_path):
    with make_run(tmp_path, rounds=8) as run:
        a, b0 = run.auctioneer, run.bidders[0]
        listed, _, sent = play_p1(run)
        # block 2's commitment, logged while block 1's openings are in and its outcomes are not: it
        # hides the bids (Poseidon, secret salt) and is counted; the close of block 2 must wait
        b0.commit(5, run.bids_of_round(5)[0])
        st = read_state(run.ledger)
        assert 0 in st.commitments[5] and st.notes == [] and st.breaches == []
        with pytest.raises(ProtocolError, match="round 5 cannot start before round 1's outcome"):
            a.close_commitments(5)
        with pytest.raises(ProtocolError, match="round 5 cannot start before round 1's outcome"):
            play_block(a, run.bidders, [5, 6, 7, 8], {r: run.bids_of_round(r) for r in range(5, 9)})
        close_rounds(a, receive_openings(a, [1, 2, 3, 4], listed, sent), listed)
        assert run.play() == 4  # block 2, found partly logged, is finished round by round
        st = read_state(run.ledger)
        assert st.breaches == [] and st.notes == [] and st.rounds_done == 8
        assert st.outcomes[5].data["commitments"][0] == st.commitments[5][0]
        assert run.audit().status == "valid"


# ==================================================================================================
# 2. Out-of-order closes
# ==================================================================================================

def test_a_close_far_in_the_future_or_twice_is_a_breach_and_refused(tmp_path):
    with make_run(tmp_path, rounds=12) as run:
        a = run.auctioneer
        listed, _ = commit_block(run, P1)
        close_block(run, listed)
        with pytest.raises(ProtocolError, match="round 12 cannot start before round 5's outcome"):
            a.close_commitments(12)
        with pytest.raises(ProtocolError, match="round must be in 1..12"):
            a.close_commitments(13)
        forged = replica(run.ledger, len(run.ledger))
        for r in (12, 13):
            forged.append(COMMITMENTS_CLOSED, {"commitments": [None, None]}, a.key, round=r)
        forged.append(COMMITMENTS_CLOSED, {"commitments": listed[2]}, a.key, round=2)  # round 2 closed again
        got = [b.reason for b in read_state(forged).breaches]
        assert "round 12's commitments closed before round 5's outcome" in got
        assert "commitments_closed for round 13, outside 1..12" in got
        assert "a second close of round 2's commitments" in got
        assert len(got) == 3


def test_closes_split_and_interleaved_within_a_block_are_fine_but_not_across_blocks(tmp_path):
    with make_run(tmp_path, rounds=8) as run:
        a, bidders = run.auctioneer, run.bidders
        # block 1 played round by round: its closes in four transactions, between its outcomes
        for r in (1, 2, 3):
            play_round(a, bidders, r, run.bids_of_round(r))
        order = [(e.kind, e.round) for e in run.ledger if e.kind in (COMMITMENTS_CLOSED, OUTCOME)]
        assert order == [(k, r) for r in (1, 2, 3) for k in (COMMITMENTS_CLOSED, OUTCOME)]
        for b in bidders:
            if any(run.bids_of_round(4)[b.index]):
                b.commit(4, run.bids_of_round(4)[b.index])
        a.close_commitments(4)
        assert read_state(run.ledger).breaches == []
        # round 5 (block 2) closed while round 4 has no outcome: refused, and a breach if logged
        with pytest.raises(ProtocolError, match="round 5 cannot start before round 4's outcome"):
            a.close_commitments(5)
        forged = replica(run.ledger, len(run.ledger))
        forged.append(COMMITMENTS_CLOSED, {"commitments": [None, None]}, a.key, round=5)
        assert [b.reason for b in read_state(forged).breaches] == ["round 5's commitments closed before round 4's outcome"]
        # the honest run: round 4 finished, block 2 in one pass, a clean audit
        run_rounds(a, bidders, run.bids_of_round, rounds=[4])
        assert run.play() == 4
        assert read_state(run.ledger).breaches == [] and run.audit().status == "valid"


# ==================================================================================================
# 3. The reveal and the audit draw
# ==================================================================================================

def test_round_T_first_gets_no_seed_out_and_a_short_last_block_counts_whole(tmp_path):
    # T = 10 in blocks of 4: the last block is rounds 9 and 10
    with make_run(tmp_path, rounds=10, audits=2) as run:
        a, (b0, b1) = run.auctioneer, run.bidders
        run_rounds(a, run.bidders, run.bids_of_round, rounds=range(1, 9))
        profiles = {9: run.bids_of_round(9), 10: run.bids_of_round(10)}
        listed, present = commit_block(run, profiles)
        close_block(run, listed)
        sent = open_block(run, present)
        assert receive_openings(a, [9, 10], listed, sent) == [9, 10]
        close_rounds(a, [10], listed)  # round T's outcome (and a checkpoint) first, round 9's held back
        cp_10 = a.ledger.latest_checkpoint()
        with pytest.raises(ProtocolError, match="not revealing the audit seed before a checkpoint covers round 9"):
            b0.reveal()
        with pytest.raises(ProtocolError, match="the reveal phase cannot close before round 9's outcome"):
            a.close_reveals()
        forged = replica(run.ledger, len(run.ledger))
        forged.append(REVEALS_CLOSED, {}, a.key)
        assert ["the reveal phase closed before round 9's outcome (the last block, rounds 9..10, is not complete)"] == \
            [b.reason for b in read_state(forged).breaches]
        # a reveal (the host's shill, bidder 1, signs one) logged now does not count...
        early = {"bidder": 1, "seed": b1.seed, "checkpoint": cp_10.to_dict()}
        forged = replica(run.ledger, len(run.ledger))
        forged.append(SEED_REVEAL, early, b1.key)
        st = read_state(forged)
        assert st.reveals == {} and any("bidder 1 revealed its audit seed before round 9's outcome" in n for n in st.notes)
        # ...nor after round 9's outcome, with a checkpoint that covers round T but not round 9
        close_rounds(a, [9], listed)
        forged = replica(run.ledger, len(run.ledger))
        forged.append(SEED_REVEAL, early, b1.key)
        st = read_state(forged)
        assert st.reveals == {} and st.breaches == []
        assert any("carries no checkpoint of this log covering round 10's outcome and every outcome of the last block" in n
                   for n in st.notes), st.notes
        for b in run.bidders:
            b.check_outcomes([r for r in (9, 10) if r in present[b.index]])
        report = run.audit()
        assert report.status == "valid" and report.draw.withheld == [], report.to_dict()


def test_the_order_of_a_blocks_entries_does_not_enter_the_draw_and_a_reorder_after_the_reveals_is_a_fork(tmp_path):
    with make_run(tmp_path, rounds=8, audits=2) as run:
        run.play()
        draw = run.reveal()
        entries = run.ledger.entries()
    last = [e for e in entries if e.kind == OUTCOME and e.round in range(5, 9)]
    seqs = [e.seq for e in last]
    assert seqs == list(range(seqs[0], seqs[0] + 4))  # the last block's outcomes: one transaction
    # the host re-places the same signed statements, the last block's outcomes in reverse order
    reordered = entries[:seqs[0]] + last[::-1] + entries[seqs[-1] + 1:]
    with replace_log(tmp_path / "reordered.db", reordered) as led:
        st = read_state(led)
        assert st.breaches == [] and sorted(st.reveals) == [0, 1]  # an order inside a block is no breach...
        again = audit_draw(st)
        assert (again.rounds, again.digest) == (draw.rounds, draw.digest)  # ...and does not move the draw
        # the bidders co-signed the log as they saw it: the rewritten one is a fork, the auctioneer's
        forks = check_cosigned(led, st)
        assert [(b.seq, b.reason) for b in forks] == [
            (st.reveals[i].seq, f"bidder {i} co-signed another log of {cosigned(st, i).size} entries than this one (fork)")
            for i in (0, 1)]


# ==================================================================================================
# 4. Batch signatures as evidence
# ==================================================================================================

def _reject_with(run, listed, sent, evidence: dict, signer: SigningKey | None = None):
    """A replica of the log after the block's closes with bidder 0 rejected in round 1
    (opening_mismatch, ``evidence``) and round 1's outcome without bidder 0. Returns (ledger, rejection seq)."""
    a = run.auctioneer
    forged = replica(run.ledger, len(run.ledger))
    e = forged.append(OPENING_REJECTED, {"bidder": 0, "reason": "opening_mismatch", "evidence": evidence}, signer or a.key,
                      round=1, unique=unique_key(OPENING_REJECTED, 1, 0))
    forged.append(OUTCOME, outcome_without(run, 1, listed, sent, 0), a.key, round=1)
    return forged, e.seq


def _ev(opening: Opening, signature: str) -> dict:
    return {"bids": list(opening.bids), "salt": opening.salt, "signature": signature}


def _retarget(signature: str, index: int | None = None, path: str | None = None) -> str:
    prefix, i, k, ed, p = signature.split(".")
    return ".".join([prefix, str(index) if index is not None else i, k, ed, path if path is not None else p])


def test_a_rejection_whose_evidence_is_not_the_bidders_signed_opening_of_that_round_is_the_auctioneers_breach(tmp_path):
    with make_run(tmp_path) as run:
        listed, _, sent = play_p1(run)
        o1, o3 = sent[0][1], sent[0][3]  # bidder 0's batch-signed openings of rounds 1 and 3
        i1, i3 = int(o1.signature.split(".")[1]), int(o3.signature.split(".")[1])
        bad1 = dataclasses.replace(o1.opening, bids=(o1.opening.bids[0], o1.opening.bids[1] + STEP))
        cases = {
            # another round's opening of the same batch, its own signature: signed, but for round 3
            "round 3's opening": (_ev(o3.opening, o3.signature), "its evidence is not an opening signed by bidder 0"),
            # round 3's signature string re-indexed to round 1's leaf, on round 3's bids
            "re-indexed": (_ev(o3.opening, _retarget(o3.signature, index=i1)), "its evidence is not an opening signed by bidder 0"),
            # round 1's signature on edited bids, its index or its path edited too
            "edited bids": (_ev(bad1, o1.signature), "its evidence is not an opening signed by bidder 0"),
            "edited index": (_ev(bad1, _retarget(o1.signature, index=i3)), "its evidence is not an opening signed by bidder 0"),
            "swapped path": (_ev(bad1, _retarget(o1.signature, path=o3.signature.split(".")[4])),
                             "its evidence is not an opening signed by bidder 0"),
            # bidder 1's batch signature over bidder 0's round: another key
            "bidder 1's": (_ev(sent[1][1].opening, sent[1][1].signature), "its evidence is not an opening signed by bidder 0"),
            # the bidder's own valid opening of round 1: a false rejection
            "the valid one": (_ev(o1.opening, o1.signature), "the evidence is bidder 0's valid opening: a false rejection"),
        }
        for name, (evidence, why) in cases.items():
            forged, seq = _reject_with(run, listed, sent, evidence)
            st = read_state(forged)
            assert st.breaches == [], name
            got = [b for b in check_round(st, 1) if b.seq == seq]
            assert len(got) == 1 and f"round 1: bidder 0's rejection: opening_mismatch, but {why}" in got[0].reason, (name, got)
        # the honest path for comparison: every opening was good, nothing to reject, nothing to blame
        clean = receive_openings(run.auctioneer, [1, 2, 3, 4], listed, sent)
        close_rounds(run.auctioneer, clean, listed)
        assert public_checks(read_state(run.ledger)) == []


def test_a_bidder_that_batch_signs_two_openings_of_one_round_cannot_frame_the_auctioneer(tmp_path):
    with make_run(tmp_path) as run:
        a, (b0, b1) = run.auctioneer, run.bidders
        listed, present = commit_block(run, P1)
        close_block(run, listed)
        b0.sync()
        good = b0._openings[1]
        bad = dataclasses.replace(good, bids=(good.bids[0], good.bids[1] + STEP))
        # one batch: a bad and the good opening of round 1, the good ones of rounds 2..4
        msgs = [opening_message(run.ledger.log_id, 1, 0, list(o.bids), o.salt) for o in (bad, good)]
        msgs += [opening_message(run.ledger.log_id, r, 0, list(b0._openings[r].bids), b0._openings[r].salt) for r in (2, 3, 4)]
        sigs = b0.key.sign_many(msgs)
        assert all(verify_signature(b0.key.public_hex, m, s) for m, s in zip(msgs, sigs))  # both round-1 openings signed
        sent = {0: {1: SignedOpening(bad, sigs[0]), **{r: SignedOpening(b0._openings[r], s) for r, s in zip((2, 3, 4), sigs[2:])}},
                1: dict(zip(present[1], b1.open_many(present[1])))}
        clean = receive_openings(a, [1, 2, 3, 4], listed, sent)
        assert clean == [2, 3, 4]  # round 1 left the fast path: its bad opening is judged alone
        rej = run.ledger.entries(kind=OPENING_REJECTED, round=1)
        assert [(e.data["bidder"], e.data["reason"]) for e in rej] == [(0, "opening_mismatch")]
        assert rej[0].data["evidence"]["signature"] == sigs[0]
        close_rounds(a, clean, listed)
        # the bidder publishes the other, good, signed opening of round 1 on the log before the outcome
        b0.dispute(1)
        finish_round(a, [b0, b1], 1)
        st = read_state(run.ledger)
        assert 0 in st.disputes[1] and st.outcomes[1].data["participants"] == [0, 0]  # rejected: the round is void
        assert b0.check_outcome(1) == "rejected" and b1.check_outcome(1) == "void"
        # the evidence is a bad opening the bidder signed: the rejection stands, nobody is blamed
        assert public_checks(st) == [] and st.breaches == []
        report = run.audit()
        assert report.status == "valid" and report.penalty_due == 0.0, report.to_dict()


# ==================================================================================================
# 5. Cross-block and cross-log replay
# ==================================================================================================

def test_batch_signed_statements_and_openings_replay_into_no_other_round_block_or_log(tmp_path):
    with make_run(tmp_path, rounds=8) as run:
        a, b0 = run.auctioneer, run.bidders[0]
        listed, _, sent = play_p1(run)
        com = run.ledger.entries(kind=BID_COMMITMENT, round=1)[0]
        assert com.signature.startswith("b1.") and com.signer == b0.key.public_hex
        log_id = run.ledger.log_id
        # the commitment statement of round 1 (block 1) as round 5's (block 2), or as round 2's
        for r in (5, 2):
            with pytest.raises(LedgerError, match="does not verify"):
                Statement(com.kind, r, com.payload, com.signer, com.signature).check(log_id)
            with pytest.raises(LedgerError, match="does not verify"):
                run.ledger.append_signed([Statement(com.kind, r, com.payload, com.signer, com.signature)])
        moved = dataclasses.replace(com, seq=len(run.ledger), round=5, prev_hash=run.ledger.head())
        moved = dataclasses.replace(moved, hash=entry_hash(moved.seq, 5, moved.kind, moved.payload, moved.prev_hash, moved.signer))
        with pytest.raises(ChainError, match="does not verify"):
            replica(run.ledger, len(run.ledger)).replicate([moved])
        # ...into another auction by the same auctioneer with the same bidder keys (another log id)
        other = announce_again(a, audits=2)
        assert other.log_id != log_id
        with pytest.raises(LedgerError, match="does not verify"):
            other.append_signed([Statement(com.kind, com.round, com.payload, com.signer, com.signature)])
        # the signed opening of round 1 is no opening of round 5 nor of the other log
        o = sent[0][1]
        for lid, r in ((log_id, 5), (other.log_id, 1)):
            assert not verify_signature(b0.key.public_hex, opening_message(lid, r, 0, list(o.opening.bids), o.opening.salt),
                                        o.signature)
        # played through: the auctioneer ignores it as round 5's opening (block 2, bidder 0 committed)
        close_rounds(a, receive_openings(a, [1, 2, 3, 4], listed, sent), listed)
        b0.commit(5, list(o.opening.bids))  # the same bids again: only the signature could carry over
        a.close_commitments(5)
        with pytest.raises(CommitmentError, match="round 5: bidder 0's opening is not signed by bidder 0: ignored"):
            a.receive_opening(5, 0, o)
        assert run.ledger.entries(kind=OPENING_REJECTED) == []


def announce_again(a: Auctioneer, **change) -> Ledger:
    """A new in-memory log where ``a`` announces its auction again (same keys and nonce: a deliberate copy), with
    ``change``."""
    ann = a.announcement()
    led = Ledger.in_memory()
    Auctioneer(a.key, led, HONEST).announce(**{
        "n": ann.n, "m": ann.m, "support": ann.support, "input_scale": ann.input_scale, "auction": ann.auction,
        "rounds": ann.rounds, "audits": ann.audits, "penalty": ann.penalty, "mode": ann.mode, "bidders": ann.bidders,
        "third_party": ann.third_party, "deadlines": ann.deadlines, "block": ann.block, "nonce": ann.nonce, **change})
    return led


def test_an_auction_announced_twice_byte_for_byte_gets_no_bidder_to_reuse_its_salts(tmp_path):
    """The log id is the hash of the announcement: announced twice byte for byte (or entry 0 copied), an
    auction has the same id, and a secret's salts and audit seed derive from secret and log id. The
    host learnt round 1's salt from the opening it received; in the copy it could find the bids behind
    the commitment by trying the grid before the close. A secret therefore registers once per log id
    (Bidder.register records the id beside the secret first): a bidder with that secret and no
    checkpoint of the log refuses the copy, with or without its replayed registration."""
    with make_run(tmp_path) as run:
        a, b0 = run.auctioneer, run.bidders[0]
        _, _, sent = play_p1(run)
        twin = announce_again(a)  # the same auction announced again: the same text, so the same entry 0...
        assert twin.get(0) == run.ledger.get(0)  # (...which the host could also just copy: Ledger.replicate)
        record = b0._record_path
        assert record is not None and run.ledger.log_id in json.loads(record.read_text())
        again = Bidder(0, b0.key, twin, secret=b0._secret, record_path=record)  # same key, secret and record; no checkpoint
        with pytest.raises(ProtocolError, match="already registered in log .* refusing"):
            again.register()
        assert twin.entries(kind=REGISTRATION) == []
        # the first auction's registration replayed into the copy: refused as well
        first = run.ledger.entries(kind=REGISTRATION)[0]
        twin.append_signed([Statement(first.kind, first.round, first.payload, first.signer, first.signature)])
        again = Bidder(0, b0.key, twin, secret=b0._secret, record_path=record)
        with pytest.raises(ProtocolError, match="already registered in log"):
            again.register()
        # a new auction (another announcement) with the same secret is another log id: fresh salts
        other = announce_again(a, rounds=a.announcement().rounds + 1, penalty=a.announcement().penalty * 2)
        fresh = Bidder(0, b0.key, other, secret=b0._secret, record_path=record)
        fresh.register()
        assert fresh.salt(1) != sent[0][1].opening.salt and fresh.seed != b0.seed
        # and the bidder that holds its checkpoint resumes its own auction as before
        assert b0.register() is None


# ==================================================================================================
# 6. The fast path against the slow path
# ==================================================================================================

def test_a_close_that_drops_a_bidders_commitment_stops_the_blocks_openings_and_is_a_breach(tmp_path):
    with make_run(tmp_path) as run:
        b0 = run.bidders[0]
        listed, present = commit_block(run, P1)
        censored = {r: list(c) for r, c in listed.items()}
        censored[3][0] = None  # round 3's close leaves bidder 0 out
        close_block(run, censored)
        with pytest.raises(ProtocolError, match="round 3: the closed list does not hold bidder 0's commitment"):
            b0.open_many(present[0])  # not one opening of the block is sent
        assert any(b.reason.startswith("round 3's close lists commitments [None, ") for b in read_state(run.ledger).breaches)


def test_a_block_outcome_not_computed_on_a_bidders_commitment_is_refused_by_the_bidder_and_a_breach(tmp_path):
    with make_run(tmp_path) as run:
        a, b0 = run.auctioneer, run.bidders[0]
        listed, present, sent = play_p1(run)
        # the host logs the block's outcomes in one transaction, bidder 0 silently dropped in round 3
        rows = [(OUTCOME, outcome_without(run, r, listed, sent, 0 if r == 3 else -1), a.key, r, unique_key(OUTCOME, r))
                for r in (1, 2, 3, 4)]
        run.ledger.append_many(rows, checkpoint_key=a.key, batch_sign=True)
        with pytest.raises(ProtocolError, match="round 3: the outcome was not computed on bidder 0's commitment"):
            b0.check_outcomes(present[0])
        seq = run.ledger.entries(kind=OUTCOME, round=3)[0].seq
        assert reasons(check_round(read_state(run.ledger), 3)) == [
            f"ledger entry {seq}: round 3: the outcome does not use bidder 0's logged commitment"]


def test_the_fast_path_accepts_no_opening_the_slow_path_or_the_reader_would_refuse(tmp_path):
    with make_run(tmp_path, rounds=8) as run:
        a, (b0, b1) = run.auctioneer, run.bidders
        listed, present = commit_block(run, {**P1, 3: [[1.5, 0.75], [0.5, 0.5]]})  # bidder 0 commits outside the support
        close_block(run, listed)
        b0.sync()
        log_id = run.ledger.log_id
        mine = b0._openings

        def signed(r, o):
            return SignedOpening(o, b0.key.sign(opening_message(log_id, r, 0, list(o.bids), o.salt)))

        off_grid = Opening((mine[1].bids[0] + STEP / 3, mine[1].bids[1]), mine[1].salt)
        sent = {0: {1: signed(1, off_grid),  # off the grid (signed): not a commitment opening
                    2: SignedOpening(mine[2], "00" * 64),  # not signed: ignored, then no_opening
                    3: signed(3, mine[3]),  # opens its commitment, outside the support
                    4: signed(4, mine[4])},  # the one good opening
                1: dict(zip(present[1], b1.open_many(present[1])))}
        # an opening off the grid fails the block's batched hash: every round is judged alone
        assert receive_openings(a, [1, 2, 3, 4], listed, sent) == []
        got = {e.round: e.data["reason"] for e in run.ledger.entries(kind=OPENING_REJECTED)}
        assert got == {1: "opening_mismatch", 3: "outside_support"}
        assert sorted(a._pending[4]) == [0]  # the good opening, accepted by the slow path
        with pytest.raises(ProtocolError, match="round 1: not every committed bidder's opening is accepted: not a clean round"):
            close_rounds(a, [1], listed)
        b0.abstain(2)  # bidder 0 lets round 2 go (no_opening follows, its abstention covers it)
        for r in (1, 2, 3, 4):
            finish_round(a, [b for b in run.bidders if r in present[b.index]], r, dispute=False)
        st = read_state(run.ledger)
        assert st.rejections[2] == {0: "no_opening"}
        assert public_checks(st) == [] and st.breaches == []  # every rejection justified by its evidence
        assert run.play() == 4 and run.audit().status == "valid"


def test_an_opening_signed_for_another_round_of_the_batch_leaves_the_fast_path_as_no_opening(tmp_path):
    with make_run(tmp_path) as run:
        a, b0 = run.auctioneer, run.bidders[0]
        listed, _, sent = play_p1(run)
        # bidder 0's round-2 opening arrives with round 4's batch signature: it opens the commitment,
        # but bidder 0 never signed it as round 2's, so it could never be shown as evidence
        sent[0][2] = SignedOpening(sent[0][2].opening, sent[0][4].signature)
        clean = receive_openings(a, [1, 2, 3, 4], listed, sent)
        assert clean == [1, 3, 4] and run.ledger.entries(kind=OPENING_REJECTED) == []
        close_rounds(a, clean, listed)
        finish_round(a, [b0], 2)  # no_opening; the honest bidder publishes its opening; the outcome includes it
        st = read_state(run.ledger)
        assert st.rejections[2] == {0: "no_opening"} and 0 in st.disputes[2]
        assert st.outcomes[2].data["participants"] == [1, 0] and public_checks(st) == []
        assert run.audit().status == "valid"


def test_a_bidder_that_opens_and_also_abstains_or_disputes_in_a_clean_round_frames_nobody(tmp_path):
    with make_run(tmp_path) as run:
        a, (b0, b1) = run.auctioneer, run.bidders
        listed, present, sent = play_p1(run)
        b0.abstain(1)  # after sending its (good) opening
        b1.ledger.append(DISPUTE, {"bidder": 1, "bids": list(sent[1][3].opening.bids), "salt": sent[1][3].opening.salt},
                         b1.key, round=3)  # a dispute of a rejection that never was
        clean = receive_openings(a, [1, 2, 3, 4], listed, sent)
        close_rounds(a, clean, listed)
        st = read_state(run.ledger)
        assert clean == [1, 2, 3, 4] and st.outcomes[1].data["participants"] == [1, 1]
        assert st.breaches == [] and public_checks(st) == []
        assert any("bidder 1 disputes a rejection in round 3 that was never logged" in n for n in st.notes)
        assert b0.check_outcomes(present[0]) == ["ok"] * 4
        assert run.audit().status == "valid"


def test_a_bidder_cannot_make_the_blocks_closes_list_what_the_reader_does_not_count(tmp_path):
    with make_run(tmp_path) as run:
        b0 = run.bidders[0]
        real = type(b0).commitment_items_many
        other = make_commitment([0.5, 0.5], CIRCUIT.input_scale)[0]

        def framing(self, rounds, bids):  # bidder 0's client adds two statements the reader will not count
            items = real(self, rounds, bids)
            if self.index == 0:
                items += [(BID_COMMITMENT, {"bidder": 0, "commitment": other}, self.key, 1, None),  # round 1 again
                          (BID_COMMITMENT, {"bidder": 1, "commitment": other}, self.key, 2, None)]  # in bidder 1's name
            return items

        type(b0).commitment_items_many = framing
        try:
            play_block(run.auctioneer, run.bidders, [1, 2, 3, 4], P1)
        except ProtocolError:
            pass  # today: bidder 0's own client refuses the close that lists its second commitment
        finally:
            type(b0).commitment_items_many = real
        st = read_state(run.ledger)
        assert any("bidder 0 committed twice in round 1 (the first counts)" in n for n in st.notes)
        assert any("bid_commitment for bidder 1 not signed by that bidder's key" in n for n in st.notes)
        assert st.breaches == [], reasons(st.breaches)  # the auctioneer closed what the log holds
        assert st.closes[1].data["commitments"][0] == st.commitments[1][0]
        assert st.closes[2].data["commitments"][1] is None


# ==================================================================================================
# 7. LogView.accept's early return
# ==================================================================================================

def test_the_kept_checkpoint_over_a_rewritten_log_is_a_fork(tmp_path):
    with make_run(tmp_path) as run:
        a, b0 = run.auctioneer, run.bidders[0]
        listed, _ = commit_block(run, P1)
        close_block(run, listed)
        b0.sync()
        kept = b0.view.kept
        # the host rewrites round 3's close under the same checkpoint (it holds the key: it re-signs)
        closes = {e.round: e for e in run.ledger.entries(kind=COMMITMENTS_CLOSED)}
        rewritten = Ledger.in_memory()
        rewritten.replicate(run.ledger.entries(stop=closes[3].seq))
        rewritten.append(COMMITMENTS_CLOSED, {"commitments": [listed[3][0], None]}, a.key, round=3)
        rewritten.replicate([])
        rewritten.append(COMMITMENTS_CLOSED, {"commitments": listed[4]}, a.key, round=4)
        assert len(rewritten) == kept.size
        rewritten.storage.put_checkpoint(kept.size, kept.to_json())  # the very checkpoint the bidder holds
        assert b0.view.accept(kept, None) is kept  # the early return: the same signed statement, nothing new
        spy = Bidder(0, b0.key, rewritten, secret=b0._secret)
        spy._view = b0.view
        with pytest.raises(ForkError, match="do not hash to its own checkpoint"):
            spy.sync()
        with pytest.raises(ForkError):
            b0.view.check_included(rewritten, closes[3].seq, rewritten.get(closes[3].seq))


def test_a_view_registered_in_one_log_never_accepts_a_checkpoint_of_another(tmp_path):
    key = SigningKey.generate()
    logs = []
    for x in (1, 2):
        led = Ledger.in_memory()
        led.append("announcement", {"x": x}, key)
        logs.append((led, led.checkpoint(key)))
    (_, cp_a), (led_b, cp_b) = logs
    old = LogView(key.public_hex, tmp_path / "checkpoint.json", log_id=cp_b.log_id)
    old.accept(cp_b, None)
    old.flush()  # auction B's checkpoint, left in the bidder's state folder
    view = LogView(key.public_hex, tmp_path / "checkpoint.json", log_id=cp_a.log_id)  # registered in auction A
    with pytest.raises(LogIdentityError):
        view.observe(led_b)  # the host of both serves log B, at the very checkpoint kept


# ==================================================================================================
# 8. A crash in the middle of a block
# ==================================================================================================

@pytest.mark.parametrize("crash", ["after_closes", "after_openings_stored", "after_first_block", "after_a_rejection"])
def test_a_crash_in_the_middle_of_a_block_loses_and_doubles_no_round(tmp_path, crash):
    run = make_run(tmp_path, rounds=8, audits=2)
    a, b0 = run.auctioneer, run.bidders[0]
    profiles = {r: run.bids_of_round(r) for r in range(1, 5)}
    listed, present = commit_block(run, profiles)
    close_block(run, listed)
    if crash != "after_closes":
        sent = open_block(run, present)
        if crash == "after_a_rejection":  # bidder 0's round-1 opening is bad: round 1 leaves the fast path
            good = sent[0][1].opening
            sent[0][1] = b0.sign_opening(1, dataclasses.replace(good, bids=(good.bids[0], good.bids[1] + STEP)))
        clean = receive_openings(a, [1, 2, 3, 4], listed, sent)
        assert clean == ([2, 3, 4] if crash == "after_a_rejection" else [1, 2, 3, 4])
        a.store.put_rounds({r: dict(a._pending[r]) for r in clean})  # stored; the outcomes not logged yet
        if crash == "after_first_block":
            close_rounds(a, clean, listed)
    size = len(run.ledger)
    run.close()  # ... the process dies here; nothing in memory survives
    with LocalRun(tmp_path / "b.db", HONEST, circuit=CIRCUIT) as again:
        assert len(again.ledger) == size
        assert again.play() == (4 if crash == "after_first_block" else 8)
        st = read_state(again.ledger)
        assert st.breaches == [] and st.notes == [] and st.rounds_done == 8
        for kind in (COMMITMENTS_CLOSED, OUTCOME):
            assert sorted(e.round for e in again.ledger.entries(kind=kind)) == list(range(1, 9))
        for r in range(1, 9):
            want = [i for i in range(2) if any(again.bids_of_round(r)[i])]
            assert sorted(e.data["bidder"] for e in again.ledger.entries(kind=BID_COMMITMENT, round=r)) == want
            rejected = [0] if (crash, r) == ("after_a_rejection", 1) else []
            assert st.rejections.get(r, {}) == {i: "opening_mismatch" for i in rejected}
            assert [i for i, p in enumerate(st.outcomes[r].data["participants"]) if p] == ([] if rejected else want)  # void
        report = again.audit()
        assert report.status == "valid" and report.penalty_due == 0.0, report.to_dict()
