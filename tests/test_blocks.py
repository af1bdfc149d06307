"""Rounds in blocks (announcement ``block`` B > 1; zkauction/protocol/rounds.py: play_block): the same protocol and
checks as one round at a time, each step taken for a whole block (one signature per party and step,
one transaction, one checkpoint). The attacks are those of a host who would use the block to act
out of order: close a block before the previous one is complete, draw the audit early, or slip a
bad outcome into the fast path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from zkauction.learn.setting import AuctionSetting, ParticipationModel
from zkauction.protocol.announcement import Announcement, block_of, previous_block
from zkauction.protocol.audit import public_checks
from zkauction.protocol.auctioneer import circuit_outcome_function
from zkauction.protocol.rounds import play_block
from zkauction.protocol.local import LocalRun
from zkauction.protocol.log import Ledger, Statement
from zkauction.protocol.state import (
    BID_COMMITMENT,
    COMMITMENTS_CLOSED,
    OPENING_REJECTED,
    OUTCOME,
    ProtocolError,
    read_state,
)
from zkauction.zk.circuit import Circuit

from test_protocol import within_bids

ROOT = Path(__file__).resolve().parents[1]
SETTING = AuctionSetting(2, 2)
PARTICIPATION = ParticipationModel.independent([0.8, 0.9])
CIRCUIT = Circuit.load(ROOT / "circuits" / "ama_2x2_uniform")
AUCTION = {"name": "ama", "manifest_sha256": CIRCUIT.manifest_sha256(), "vk_sha256": CIRCUIT.vk_sha256(),
           "output_scale": min(CIRCUIT.output_scales.values())}


def make_run(tmp_path, *, rounds=20, block=8, name="b.db", outcome=None, mode="reveal", audits=3):
    return LocalRun.create(tmp_path / name, outcome or circuit_outcome_function(CIRCUIT), setting=SETTING,
                           participation=PARTICIPATION, input_scale=CIRCUIT.input_scale, auction=AUCTION,
                           rounds=rounds, audits=audits, mode=mode, seed=3, circuit=CIRCUIT, block=block)


def outcomes(ledger: Ledger) -> dict[int, dict]:
    return {e.round: e.data for e in ledger.entries(kind=OUTCOME)}


def test_block_helpers_and_the_announcement_field():
    ann = Announcement(20, 2, 1.0, "reveal", 2, 2, 8, [[[0.0, 1.0]] * 2] * 2, {}, "ab" * 32, ["cd" * 32, "ef" * 32], None, {}, block=8)
    assert list(block_of(ann, 1)) == list(range(1, 9)) and list(block_of(ann, 17)) == [17, 18, 19, 20]
    assert list(previous_block(ann, 5)) == [] and list(previous_block(ann, 9)) == list(range(1, 9))
    assert list(previous_block(ann, 20)) == list(range(9, 17))
    assert Announcement.from_dict(ann.to_dict()).block == 8
    one = dataclasses.replace(ann, block=1)
    assert "block" not in one.to_dict()  # one round at a time: the announcement's bytes are unchanged
    assert Announcement.from_dict(one.to_dict()).block == 1
    assert list(previous_block(one, 7)) == [6]
    for bad in (0, 21, 2.0, True, "8"):
        with pytest.raises(ProtocolError, match="block"):
            Announcement.from_dict({**ann.to_dict(), "block": bad})


def test_an_honest_run_in_blocks_logs_what_one_round_at_a_time_logs_and_passes_the_audit(tmp_path):
    with make_run(tmp_path, block=1, name="one.db") as one:
        one.play()
        per_round = outcomes(one.ledger)
    with make_run(tmp_path, block=8) as run:
        proofs = []
        real = run.ledger.inclusion_proof
        run.ledger.inclusion_proof = lambda *a: proofs.append(a) or real(*a)
        assert run.play() == 20
        assert proofs == []  # each bidder checked each block's closes and outcomes in one pass (check_tail)
        st = read_state(run.ledger)
        assert st.breaches == [] and st.notes == [] and st.rounds_done == 20
        # the same bids give the same allocations, payments and participants, block or not
        strip = lambda d: {k: v for k, v in d.items() if k != "commitments"}  # noqa: E731 (salts differ per log)
        assert {r: strip(d) for r, d in outcomes(run.ledger).items()} == {r: strip(d) for r, d in per_round.items()}
        # a block's statements of one party and kind carry one batch signature each
        closes = run.ledger.entries(kind=COMMITMENTS_CLOSED)
        assert all(e.signature.startswith("b1.") for e in closes[:8]) and len({e.signature.split(".")[3] for e in closes[:8]}) == 1
        assert run.ledger.verify_chain().n_entries == len(run.ledger)
        report = run.audit()
        assert report.status == "valid" and report.penalty_due == 0.0, report.to_dict()


def test_closing_a_block_before_the_previous_block_is_complete_is_a_breach_and_refused(tmp_path):
    with make_run(tmp_path, rounds=8, block=4) as run:
        a = run.auctioneer
        play_block(a, run.bidders, [1, 2, 3, 4], {r: run.bids_of_round(r) for r in range(1, 5)})
        # round 4's outcome removed from view: build a log where block 2 closes while round 4 is open
        with Ledger.open(tmp_path / "forged.db") as forged:
            for e in run.ledger:
                if e.kind == OUTCOME and e.round == 4:
                    break
                forged.replicate([e])
            with pytest.raises(ProtocolError, match="round 5 cannot start before round 4's outcome"):
                type(a)(a.key, forged, a.outcome).close_commitments(5)
            forged.append(COMMITMENTS_CLOSED, {"commitments": [None, None]}, a.key, round=5)
            st = read_state(forged)
            assert any("round 5's commitments closed before round 4's outcome" in b.reason for b in st.breaches)
        # within a block, closing every round before any outcome is the rule, not a breach
        assert read_state(run.ledger).breaches == []


def test_no_audit_seed_before_every_outcome_of_the_last_block(tmp_path):
    with make_run(tmp_path, rounds=8, block=4) as run:
        a = run.auctioneer
        play_block(a, run.bidders, [1, 2, 3, 4], {r: run.bids_of_round(r) for r in range(1, 5)})
        # the last block: rounds 5..8; round 8 (T) gets its outcome first, round 5 none yet
        play_block(a, run.bidders, [5, 6, 7, 8], {r: run.bids_of_round(r) for r in range(5, 9)})
        with Ledger.open(tmp_path / "early.db") as early:
            # the host re-places the signed statements without round 5's outcome (statements are
            # signed for the log, not for a position)
            early.append_signed([Statement(e.kind, e.round, e.payload, e.signer, e.signature)
                                 for e in run.ledger if not (e.kind == OUTCOME and e.round == 5)])
            early.checkpoint(a.key)
            with pytest.raises(ProtocolError, match="before round 5's outcome"):
                type(a)(a.key, early, a.outcome).close_reveals()
            b0 = type(run.bidders[0])(0, run.bidders[0].key, early, secret=run.bidders[0]._secret)
            with pytest.raises(ProtocolError, match="covers round 5"):
                b0.reveal()
            early.append("reveals_closed", {}, a.key)
            st = read_state(early)
            assert any("the reveal phase closed before round 5's outcome (the last block" in b.reason for b in st.breaches)


def test_bad_and_missing_openings_in_a_block_leave_the_fast_path_and_are_judged_as_ever(tmp_path):
    with make_run(tmp_path, rounds=8, block=8) as run:
        b0, b1 = run.bidders
        real_open_many = type(b0).open_many
        present = [r for r in range(1, 9) if any(run.bids_of_round(r)[0]) and any(run.bids_of_round(r)[1])]
        bad, missing = present[0], present[1]

        def tampering_open_many(self, rounds):
            if self.index != 0 or bad not in rounds:
                return real_open_many(self, rounds)
            # bidder 0 opens round `bad` with another salt, batch-signed with the rest: a bad opening it owns
            kept = self._openings[bad]
            self._openings[bad] = dataclasses.replace(kept, salt=f"{int(kept.salt[:2], 16) ^ 1:02x}" + kept.salt[2:])
            try:
                return real_open_many(self, rounds)
            finally:
                self._openings[bad] = kept

        def dropping_open_many(self, rounds):  # bidder 1's opening of round `missing` never arrives
            signed = tampering_open_many(self, rounds)
            return [None if (self.index == 1 and r == missing) else s for r, s in zip(rounds, signed)]

        type(b0).open_many = dropping_open_many
        try:

            assert run.play() == 8
        finally:
            type(b0).open_many = real_open_many
        st = read_state(run.ledger)
        assert st.rejections[bad] == {0: "opening_mismatch"}
        assert st.rejections[missing] == {1: "no_opening"} and 1 in st.disputes[missing]
        assert st.outcomes[bad].data["participants"][0] == 0
        assert st.outcomes[missing].data["participants"][1] == 1  # the published opening counts
        assert public_checks(st) == [] and st.breaches == []
        # the rejection's evidence is bidder 0's batch-signed opening: it verifies on its own
        ev = run.ledger.entries(kind=OPENING_REJECTED, round=bad)[0].data["evidence"]
        assert ev["signature"].startswith("b1.")
        assert run.audit().status == "valid"


def test_a_wrong_outcome_in_the_fast_path_is_caught_by_the_audit(tmp_path):
    honest = circuit_outcome_function(CIRCUIT)

    cheat = within_bids(honest)  # in every round: winners pay halfway up to their bids' worth
    cheat.many = lambda rounds: [cheat(b, s) for b, s in rounds]
    with make_run(tmp_path, rounds=8, block=4, outcome=cheat, audits=1) as run:
        run.play()
        run.outcome = honest  # the verifiers' own copy of the announced auction
        report = run.audit()
        assert report.status == "invalid" and report.penalty_due > 0, report.to_dict()
        assert report.failed == report.rounds


def test_a_block_interrupted_after_its_commitments_is_finished_round_by_round(tmp_path):
    with make_run(tmp_path, rounds=8, block=4) as run:
        items = []
        for b in run.bidders:
            rs = [r for r in range(1, 5) if any(run.bids_of_round(r)[b.index])]
            items += b.commitment_items_many(rs, [run.bids_of_round(r)[b.index] for r in rs])
        run.ledger.append_many(items, batch_sign=True)  # ... and the host crashes here
    with LocalRun(tmp_path / "b.db", circuit_outcome_function(CIRCUIT), circuit=CIRCUIT) as again:
        assert again.play() == 8
        st = read_state(again.ledger)
        assert st.breaches == [] and st.rounds_done == 8
        assert len(again.ledger.entries(kind=BID_COMMITMENT, round=1)) == len([i for i in range(2) if any(again.bids_of_round(1)[i])])
        assert again.audit().status == "valid"
