"""Tests written for the mutants of the block-mode checks that survived the focused suite
(benchmarks/mutation/README.md, "Sixth run: block mode"). Each test names the check it pins
(file, function); the mutant is the check switched off (``disable``), one clause of it dropped
(``drop``) or its raise removed (``remove``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from test_block_attacks import (
    HONEST,
    P1,
    announce_again,
    close_block,
    commit_block,
    make_run,
    open_block,
    replica,
)

from zkauction.protocol import entries, merkle
from zkauction.protocol.announcement import Announcement
from zkauction.protocol.auctioneer import Auctioneer
from zkauction.protocol.audit import public_checks
from zkauction.protocol.bidder import Bidder
from zkauction.protocol.checkpoint import CheckpointError, LogView
from zkauction.protocol.log import (
    Ledger,
    LedgerError,
    SignedCheckpoint,
    SigningKey,
    Statement,
    verify_signature,
)
from zkauction.protocol.rounds import (
    close_rounds,
    finish_round,
    play_block,
    play_round,
    receive_openings,
)
from zkauction.protocol.state import (
    COMMITMENTS_CLOSED,
    OPENING_REJECTED,
    OUTCOME,
    REGISTRATION,
    SEED_REVEAL,
    ProtocolError,
    read_state,
    round_state,
    unique_key,
)
from zkauction.zk import commitments


class Serving:
    """The host's view of the log as it serves it to one party: the real log, except that asking for
    the entries of ``(kind, round)`` gets ``swap[(kind, round)]`` (entries of a forged history)."""

    def __init__(self, real: Ledger, swap: dict[tuple[str, int], list[Any]]):
        self._real, self._swap = real, swap

    def entries(self, kind=None, round=None, start=0, stop=None):
        if (kind, round) in self._swap:
            return list(self._swap[(kind, round)])
        return self._real.entries(kind=kind, round=round, start=start, stop=stop)

    def __len__(self):
        return len(self._real)

    def __getattr__(self, name):
        return getattr(self._real, name)


# -- rounds.py ---------------------------------------------------------------------------------------

def test_a_block_that_may_not_start_yet_is_refused_and_logs_nothing(tmp_path):
    """rounds.py ``_fresh``: block 2 before block 1's outcomes, block 1 before every registration
    (the honest auctioneer would otherwise log closes the reader holds against it); ``play_block``
    of no rounds does nothing."""
    with make_run(tmp_path, rounds=8) as run:
        a, bidders = run.auctioneer, run.bidders
        size = len(run.ledger)
        profiles = {r: P1[r - 4] for r in (5, 6, 7, 8)}
        with pytest.raises(ProtocolError, match="round 5 cannot start before round 1's outcome"):
            play_block(a, bidders, [5, 6, 7, 8], profiles)
        assert len(run.ledger) == size  # not a commitment, not a close
        assert play_block(a, bidders, [], {}) is None and len(run.ledger) == size
        # the same auction announced on a new log, no bidder registered yet
        twin = announce_again(a)
        a2 = Auctioneer(a.key, twin, HONEST)
        fresh = [Bidder(b.index, b.key, twin, secret=bytes(32)) for b in bidders]
        with pytest.raises(ProtocolError, match="round 1 cannot start before every bidder has registered"):
            play_block(a2, fresh, [1, 2, 3, 4], P1)
        assert len(twin) == 1
        run.play()
        assert read_state(run.ledger).breaches == []


def test_an_opening_outside_the_support_alone_leaves_the_fast_path_and_is_rejected(tmp_path):
    """rounds.py ``receive_openings``, the support clause (``_support_problem``): a bidder that
    committed to (and opens) a bid outside the announced support, every other opening of the block
    good. The fast path must not take it: an outcome computed on it would be the auctioneer's breach."""
    with make_run(tmp_path) as run:
        a = run.auctioneer
        listed, present = commit_block(run, {**P1, 3: [[1.5, 0.75], [0.5, 0.5]]})  # bidder 0, round 3: 1.5 > 1
        close_block(run, listed)
        sent = open_block(run, present)
        clean = receive_openings(a, [1, 2, 3, 4], listed, sent)
        assert clean == [1, 2, 4]
        assert {e.round: e.data["reason"] for e in run.ledger.entries(kind=OPENING_REJECTED)} == {3: "outside_support"}
        close_rounds(a, clean, listed)
        finish_round(a, [b for b in run.bidders if 3 in present[b.index]], 3, dispute=False)
        st = read_state(run.ledger)
        assert st.outcomes[3].data["participants"] == [0, 0]  # bidder 0 left out: the round is void
        assert st.breaches == [] and public_checks(st) == []
        assert run.audit().status == "valid"


# -- bidder.py ---------------------------------------------------------------------------------------

def test_a_bidder_never_commits_a_block_round_to_other_bids(tmp_path):
    """bidder.py ``commitment_items_many``: a round already committed to other bids (a resumed client
    given other bids) is refused; the kept opening stays the one of the logged commitment."""
    with make_run(tmp_path) as run:
        b0 = run.bidders[0]
        first = b0.commitment_items_many([1, 2], [P1[1][0], P1[2][0]])
        assert b0.commitment_items_many([1, 2], [P1[1][0], P1[2][0]]) == first  # the same bids: idempotent
        kept = b0._openings[2]
        with pytest.raises(ProtocolError, match="bidder 0 already committed to other bids in round 2"):
            b0.commitment_items_many([2], [[0.25, 0.25]])
        assert b0._openings[2] == kept and b0._commitments[2] == first[1][1]["commitment"]


def _forged(run, e, payload) -> Any:
    """Entry ``e`` re-made with ``payload``, signed by the auctioneer, at ``e``'s position in a forged
    copy of the log (a well-formed, signed entry that the checkpoint does not cover)."""
    forged = replica(run.ledger, e.seq)
    out = forged.append(e.kind, payload, run.auctioneer.key, round=e.round, unique=unique_key(e.kind, e.round))
    assert out.seq == e.seq and out.hash != e.hash
    return out


def test_a_bidder_sends_no_opening_on_a_close_the_checkpoint_does_not_cover(tmp_path):
    """bidder.py ``_checked_opening``: ``view.check_included`` of the close. The host logs a close
    that drops bidder 0's commitment (checkpointed) and serves bidder 0 a close of the same round and
    position, signed by the auctioneer, that lists it: bidder 0 must not open (the host would see its
    bids while its commitment is not in the round)."""
    with make_run(tmp_path, rounds=2, block=1) as run:
        a, b0 = run.auctioneer, run.bidders[0]
        run.ledger.append_many([b.commitment_item(1, P1[1][b.index]) for b in run.bidders])
        coms = [b0._commitments[1], run.bidders[1]._commitments[1]]
        real, = run.ledger.append_many([(COMMITMENTS_CLOSED, {"commitments": [None, coms[1]]}, a.key, 1,
                                         unique_key(COMMITMENTS_CLOSED, 1))], checkpoint_key=a.key)
        b0.ledger = Serving(run.ledger, {(COMMITMENTS_CLOSED, 1): [_forged(run, real, {"commitments": coms})]})
        with pytest.raises(CheckpointError, match=f"entry {real.seq} is not in the log of the checkpoint kept"):
            b0.open(1)
        b0.ledger = run.ledger  # served the real close: refused as ever (its commitment is not listed)
        with pytest.raises(ProtocolError, match="does not hold bidder 0's commitment"):
            b0.open(1)


def test_a_bidder_takes_no_outcome_the_checkpoint_does_not_cover_as_its_round(tmp_path):
    """bidder.py ``check_outcome``: ``view.check_included`` of the outcome. The host serves bidder 0
    an outcome of round 1, signed by the auctioneer, at the logged outcome's position, that is not the
    logged one (here: computed on bidder 0's commitment while the logged one is not): refused."""
    with make_run(tmp_path, rounds=2, block=1) as run:
        a, b0 = run.auctioneer, run.bidders[0]
        play_round(a, run.bidders, 1, P1[1])
        real = run.ledger.entries(kind=OUTCOME, round=1)[0]
        fake = dict(real.data, payment=[p + 0.25 for p in real.data["payment"]])
        b0.ledger = Serving(run.ledger, {(OUTCOME, 1): [_forged(run, real, fake)]})
        with pytest.raises(CheckpointError, match=f"entry {real.seq} is not in the log of the checkpoint kept"):
            b0.check_outcome(1)
        b0.ledger = run.ledger
        assert b0.check_outcome(1) == "ok"


def test_a_record_of_log_ids_that_cannot_be_read_is_named(tmp_path):
    """bidder.py ``_registered_logs``: a record file that is not JSON is refused with its name (not a
    raw error), and the bidder registers nothing."""
    with make_run(tmp_path) as run:
        b0 = run.bidders[0]
        twin = announce_again(run.auctioneer, rounds=5, penalty=100.0)
        record = tmp_path / "logs.json"
        record.write_text("{not json")
        again = Bidder(0, b0.key, twin, secret=b0._secret, record_path=record)
        with pytest.raises(ProtocolError, match="logs.json: not this bidder's record of log ids"):
            again.register()
        assert len(twin) == 1


# -- checkpoint.py -----------------------------------------------------------------------------------

def test_check_tail_checks_nothing_and_says_so_when_it_cannot(tmp_path):
    """checkpoint.py ``LogView.check_tail``: no entries, no kept checkpoint, a host without a frontier:
    False (the caller then checks each entry by its inclusion proof), and nothing is taken as checked."""
    with make_run(tmp_path) as run:
        listed, _ = commit_block(run, P1)
        closes = close_block(run, listed)
        b0 = run.bidders[0]
        b0.sync()
        view = b0.view
        assert view.check_tail(run.ledger, []) is False and view._tail == {}
        assert LogView(run.auctioneer.key.public_hex).check_tail(run.ledger, closes) is False

        class NoFrontier:  # a host that offers no frontier (e.g. an older server)
            def __getattr__(self, name):
                if name == "frontier":
                    raise AttributeError(name)
                return getattr(run.ledger, name)

        assert view.check_tail(NoFrontier(), closes) is False and view._tail == {}
        assert view.check_tail(run.ledger, closes) is True and sorted(view._tail) == [e.seq for e in closes]


# -- entries.py ---------------------------------------------------------------------------------------

def test_a_batch_signature_counts_between_2_and_max_batch_messages(monkeypatch):
    """entries.py ``_batch_root``: a "batch" of one message (count 1, empty path) is not a batch
    signature even when the key signed exactly what it would sign (a second spelling of a plain
    signature); a count above MAX_BATCH verifies nothing. ``SigningKey.sign_many`` refuses more than
    MAX_BATCH messages."""
    key = SigningKey.from_seed(bytes(range(32)))
    msg = b"one message"
    one = key.sign(entries._batch_message(1, merkle.leaf_hash(msg)))
    assert not verify_signature(key.public_hex, msg, f"b1.0.1.{one}.")
    msgs = [b"m" + bytes([i]) for i in range(5)]
    sigs = key.sign_many(msgs)
    assert all(verify_signature(key.public_hex, m, s) for m, s in zip(msgs, sigs))
    entries._BATCH_VERIFIED.clear()
    monkeypatch.setattr(entries, "MAX_BATCH", 4)
    assert not any(verify_signature(key.public_hex, m, s) for m, s in zip(msgs, sigs))
    with pytest.raises(LedgerError, match="at most 4 messages, got 5"):
        key.sign_many(msgs)
    assert len(key.sign_many(msgs[:4])) == 4


def test_a_message_that_is_not_bytes_verifies_nothing_in_either_form():
    """entries.py ``verify_signature``: the message must be bytes. ``bytes()`` of a list of ints (or of
    a memoryview) is the signed message, so without the type check a batch signature would verify a
    list standing for the message; the plain form must answer the same. Never raises."""
    key = SigningKey.from_seed(bytes(range(32)))
    msgs = [b"first message", b"second message"]
    batch = key.sign_many(msgs)
    plain = key.sign(msgs[0])
    assert verify_signature(key.public_hex, msgs[0], batch[0]) and verify_signature(key.public_hex, msgs[0], plain)
    assert verify_signature(key.public_hex, bytearray(msgs[0]), batch[0])
    for other in (list(msgs[0]), memoryview(msgs[0]), msgs[0].decode(), tuple(msgs[0])):
        assert verify_signature(key.public_hex, other, batch[0]) is False
        assert verify_signature(key.public_hex, other, plain) is False


def test_a_reveal_whose_checkpoint_the_auctioneer_never_signed_is_not_counted(tmp_path):
    """state.py ``_Reader.reveal``: ``cp.verify(auctioneer)`` of the checkpoint a seed reveal carries
    (the bidder's co-signature of the log it saw). A bidder that reveals with a checkpoint of another
    root (not signed by the auctioneer) must not have it counted: counted, it would stand as the
    auctioneer's signed word for a log it never had (a framing bidder's fork). It is a note, not a
    breach; the run is audited without that bidder's seed. A second reveal of an honest bidder is
    not sent (bidder.py ``Bidder.reveal``)."""
    with make_run(tmp_path) as run:
        run.play()
        b0, b1 = run.bidders
        cp = b0.sync()
        forged = {**cp.to_dict(), "root": "00" * 32}
        e = run.ledger.append(SEED_REVEAL, {"bidder": 0, "seed": b0.seed, "checkpoint": forged}, b0.key,
                              unique=unique_key(SEED_REVEAL, bidder=0))
        assert b1.reveal() is not None and b1.reveal() is None
        assert len(run.ledger.entries(kind=SEED_REVEAL)) == 2
        st = read_state(run.ledger)
        assert 0 not in st.reveals and 1 in st.reveals and st.breaches == []
        assert any(n.startswith(f"ledger entry {e.seq}: bidder 0's reveal carries no checkpoint signed by the auctioneer")
                   for n in st.notes)
        assert run.audit(withhold=[0]).status == "unconfirmed"  # no breach: bidder 0 co-signed nothing


def test_a_statement_of_a_kind_or_round_of_another_type_is_not_signed():
    """entries.py ``Statement.sign_many``: the kind a non-empty string, the round an int (not a bool) or
    None; the signer's own refusal, before anything is signed."""
    key = SigningKey.from_seed(bytes(range(32)))
    log_id = "ab" * 32
    for kind, round in ((5, 1), (b"bid", 1), ("", 1), ("bid", True), ("bid", 1.0), ("bid", "1")):
        with pytest.raises(LedgerError, match="kind must be a non-empty string|round must be an integer or None"):
            Statement.sign(key, log_id, kind, {"x": 1}, round)
        with pytest.raises(LedgerError):
            Statement.sign_many(key, log_id, [("bid", {"x": 1}, 1, None), (kind, {"x": 2}, round, None)])
    assert Statement.sign(key, log_id, "bid", {"x": 1}, 1).round == 1


def test_root_with_tail_takes_a_non_negative_integer_start():
    """merkle.py ``root_with_tail``: ``start`` is a leaf count (``_check_count``); a negative one has a
    frontier shape of its own (-2: one hash of a 2-leaf tree) and must not give a root."""
    h = merkle.leaf_hash(b"x")
    assert merkle.root_with_tail(2, [merkle.node_hash(h, h)], [h]) == merkle.root_from_leaf_hashes([h, h, h])
    for start in (-2, -1, 1.5):
        with pytest.raises(merkle.MerkleError, match="start must be a non-negative integer"):
            merkle.root_with_tail(start, [merkle.node_hash(h, h)], [h])


def test_root_with_tail_takes_32_byte_hashes_only():
    """merkle.py ``root_with_tail``: every frontier hash and leaf hash is checked (``_check_hash``):
    a short, long or text hash is an error, not hashed into some root."""
    h = merkle.leaf_hash(b"x")
    for bad in (h[:31], h + b"\x00", h.hex()):
        with pytest.raises(merkle.MerkleError, match="frontier hash"):
            merkle.root_with_tail(1, [bad], [h])
        with pytest.raises(merkle.MerkleError, match="leaf hash"):
            merkle.root_with_tail(1, [h], [h, bad])


def test_a_reveal_carrying_the_auctioneers_checkpoint_of_another_log_is_not_counted(tmp_path):
    """state.py ``_Reader.reveal``, the log-id clause: a checkpoint the auctioneer really signed, but for
    another of its logs (same size and root here, so only the log id differs), is no co-signature of
    this log. Counted, a bidder could present another auction's checkpoint as this log's."""
    with make_run(tmp_path) as run:
        run.play()
        b0 = run.bidders[0]
        cp = b0.sync()
        other = SignedCheckpoint.sign(run.auctioneer.key, "cd" * 32, cp.size, cp.root)
        other.verify(run.auctioneer.key.public_hex)  # the auctioneer's own signature
        e = run.ledger.append(SEED_REVEAL, {"bidder": 0, "seed": b0.seed, "checkpoint": other.to_dict()}, b0.key,
                              unique=unique_key(SEED_REVEAL, bidder=0))
        st = read_state(run.ledger)
        assert 0 not in st.reveals and st.breaches == []
        assert f"ledger entry {e.seq}: bidder 0's reveal carries no checkpoint of this log covering round 4's outcome" \
            " and every outcome of the last block (not counted)" in st.notes


def test_round_state_checks_each_registration_it_counts(tmp_path):
    """state.py ``round_state``: ``check_entry`` of each registration (what a verifier of one round,
    e.g. ``check_bundle_against_ledger``, relies on for "every bidder registered"). A registration
    served with a signature its bidder never made is refused, not counted."""
    with make_run(tmp_path) as run:
        reg = run.ledger.entries(kind=REGISTRATION)
        assert round_state(run.ledger, 1).registered
        forged = dataclasses.replace(reg[0], signature=run.bidders[1].key.sign(b"something else"))
        served = Serving(run.ledger, {(REGISTRATION, None): [forged, *reg[1:]]})
        with pytest.raises(LedgerError, match="signature"):
            round_state(served, 1)


def test_a_commitment_needs_a_bid_one_at_a_time_or_batched():
    """zk/commitments.py ``commit`` and ``commit_many``: no bids is no commitment (the hash of the salt
    alone would be one), in either form; the two forms agree otherwise."""
    salt = commitments.new_salt()
    with pytest.raises(commitments.CommitmentError, match="at least one bid"):
        commitments.commit([], salt, 8)
    with pytest.raises(commitments.CommitmentError, match="at least one bid"):
        commitments.commit_many([([0.5], salt), ([], salt)], 8)
    assert commitments.commit_many([([0.5, 0.25], salt)], 8) == [commitments.commit([0.5, 0.25], salt, 8)]


def test_an_announcement_lists_exactly_n_distinct_bidder_keys():
    """announcement.py ``Announcement.from_dict``, the length clause: three keys for two bidders, one
    of them twice (the set has n keys, the list does not), is refused; so is each other clause."""
    a, b = "cd" * 32, "ef" * 32
    ann = Announcement(4, 1, 1.0, "reveal", 2, 2, 8, [[[0.0, 1.0]] * 2] * 2, {}, "ab" * 32, [a, b], None, {}, block=2)
    assert Announcement.from_dict(ann.to_dict()).bidders == [a, b]
    for bidders in ([a, b, a], [a, a], [a], (a, b)):
        with pytest.raises(ProtocolError, match="expected 2 distinct bidder keys"):
            Announcement.from_dict({**ann.to_dict(), "bidders": bidders})


def test_no_seed_reveal_on_an_outcome_of_round_T_the_checkpoint_does_not_cover(tmp_path):
    """bidder.py ``Bidder.reveal``: ``view.check_included`` of each outcome of the last block. The host
    has not logged round T's outcome, and serves a bidder one, signed by the auctioneer, at a position
    the kept checkpoint covers (where another entry is): the bidder must not reveal its audit seed
    (once the seeds are out the host knows the draw, and could still choose round T's outcome)."""
    with make_run(tmp_path, rounds=2, block=1) as run:
        a, b0 = run.auctioneer, run.bidders[0]
        play_round(a, run.bidders, 1, P1[1])
        out1 = run.ledger.entries(kind=OUTCOME, round=1)[0]
        forged = replica(run.ledger, out1.seq)
        fake = forged.append(OUTCOME, out1.data, a.key, round=2, unique=unique_key(OUTCOME, 2))
        assert fake.seq == out1.seq < run.ledger.latest_checkpoint().size
        b0.ledger = Serving(run.ledger, {(OUTCOME, 2): [fake]})
        with pytest.raises(CheckpointError, match=f"entry {fake.seq} is not in the log of the checkpoint kept"):
            b0.reveal()
        assert run.ledger.entries(kind=SEED_REVEAL) == []
        b0.ledger = run.ledger
        with pytest.raises(ProtocolError, match="not revealing the audit seed before a checkpoint covers round 2"):
            b0.reveal()
