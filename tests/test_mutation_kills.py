"""Tests that kill surviving mutants of the protocol's security checks (see benchmarks/mutation/README.md).

Each test names the check it pins: the mutation driver switched that check off (or moved its
boundary) and the rest of the suite still passed."""

from __future__ import annotations

import re

import json

import pytest
from test_protocol import make_run

from zkauction.protocol.bundle_log import make_log_proof
from zkauction.protocol.state import (
    ANNOUNCEMENT,
    BID_COMMITMENT,
    COMMITMENTS_CLOSED,
    DISPUTE,
    OPENING_REJECTED,
    OPENINGS,
    OUTCOME,
    PROOF,
    REGISTRATION,
    REVEALS_CLOSED,
    SEED_REVEAL,
    Announcement,
    ProtocolError,
    read_state,
)


def test_a_second_announcement_is_the_auctioneers_breach(tmp_path):
    # state._Reader.second_announcement: no test reached it (mutmut: "no tests")
    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.play()
        first = run.ledger.get(0)
        run.ledger.append(ANNOUNCEMENT, first.data, run.auctioneer.key)
        st = read_state(run.ledger)
        assert any("a second announcement" in b.reason for b in st.breaches), st.breaches


def test_an_announcement_of_another_format_is_refused(tmp_path):
    # state.Announcement.from_dict: the format check switched off passed the whole suite
    with make_run(tmp_path, rounds=2, audits=1) as run:
        d = dict(run.ledger.get(0).data)
    assert Announcement.from_dict(d).n == 2
    with pytest.raises(ProtocolError, match="format"):
        Announcement.from_dict(dict(d, format="zkauction-protocol/1"))
    with pytest.raises(ProtocolError, match="format"):
        Announcement.from_dict({k: v for k, v in d.items() if k != "format"})
    with pytest.raises(ProtocolError, match="format"):
        Announcement.from_dict([d])


@pytest.mark.parametrize("change,match", [
    ({"mode": "trust-me"}, "mode"),
    ({"third_party": None}, "mode 'ttp' without"),
    ({"bidders": "ab"}, "distinct bidder keys"),
    ({"rounds": 0}, "need 1 <= k <= T"),
    ({"rounds": 2.0}, "need 1 <= k <= T"),
    ({"audits": 0}, "need 1 <= k <= T"),
    ({"audits": 3}, "need 1 <= k <= T"),
    ({"audits": 1.0}, "need 1 <= k <= T"),
])
def test_an_announcement_with_bad_parameters_is_refused(tmp_path, change, match):
    # state.Announcement.from_dict: the mode and T/k checks switched off passed the whole suite
    # (T/k were only checked through the CLI, in a subprocess)
    with make_run(tmp_path, mode="ttp", rounds=2, audits=1) as run:
        d = dict(run.ledger.get(0).data)
    assert Announcement.from_dict(d).mode == "ttp"
    with pytest.raises(ProtocolError, match=re.escape(match)):
        Announcement.from_dict(dict(d, **change))


def test_a_log_proof_needs_a_logged_outcome_and_a_checkpoint_covering_it(tmp_path):
    # bundle_log.make_log_proof: both guards switched off passed the whole suite
    with make_run(tmp_path, rounds=2, audits=1) as run:
        cps = []
        run.play(on_round=lambda r: cps.append(run.ledger.checkpoint(run.auctioneer.key)))
        out2 = run.ledger.entries(kind=OUTCOME, round=2)[0]
        full = run.ledger.checkpoint(run.auctioneer.key)
        assert make_log_proof(run.ledger, 2, full)["outcome"]["seq"] == out2.seq
        with pytest.raises(ProtocolError, match="no logged outcome"):
            make_log_proof(run.ledger, 3, full)
        with pytest.raises(ProtocolError, match="no checkpoint covers"):
            make_log_proof(run.ledger, 2, None)
        early = [cp for cp in cps if cp.size <= out2.seq]
        assert early
        with pytest.raises(ProtocolError, match="no checkpoint covers"):
            make_log_proof(run.ledger, 2, early[-1])


def _key_of(run, signer):
    for k in [run.auctioneer.key] + [b.key for b in run.bidders]:
        if k.public_hex == signer:
            return k
    raise AssertionError(signer)


def _reasons(ledger):
    st = read_state(ledger)
    return [b.reason for b in st.breaches] + st.notes


def test_replayed_entries_after_the_run_are_each_refused(tmp_path):
    # state._Reader: each handler's first check, switched off, let a replayed entry count
    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.play()
        run.reveal()
        assert not _reasons(run.ledger)
        want = {
            REGISTRATION: "registered after round 1 began",
            BID_COMMITMENT: "logged after the round's commitments were closed",
            COMMITMENTS_CLOSED: "a second close of round 1",
            SEED_REVEAL: "came after the reveal phase closed",
            REVEALS_CLOSED: "a second close of the reveal phase",
        }
        for kind, reason in want.items():
            e = run.ledger.entries(kind=kind)[0]
            run.ledger.append(kind, e.data, _key_of(run, e.signer), round=e.round)
            got = _reasons(run.ledger)
            assert any(reason in r for r in got), (kind, got)


def test_entries_before_their_phase_are_each_refused(tmp_path):
    # state._Reader: the ordering checks (before the outcome, the close, the reveal phase) switched off
    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.register()
        a = run.auctioneer.key
        b0 = run.bidders[0]
        cases = [
            (OUTCOME, {"participants": [1, 1]}, a, 1, "an outcome for round 1 before its commitments were closed"),
            (PROOF, {}, a, 1, "a proof for round 1 before its outcome"),
            (OPENINGS, {}, a, 1, "openings for round 1 before the reveal phase closed"),
            (OPENING_REJECTED, {"bidder": 0, "reason": "no_opening"}, a, 1, "outside the round's opening phase"),
            (DISPUTE, {"bidder": 0}, b0.key, 1, "disputes a rejection in round 1 that was never logged"),
            (SEED_REVEAL, {"bidder": 0, "seed": "00" * 32}, b0.key, None, "revealed its audit seed before round 2's outcome"),
            (REVEALS_CLOSED, {}, a, None, "the reveal phase closed before round 2's outcome"),
            (COMMITMENTS_CLOSED, {"commitments": [None, None]}, a, 2, "closed before round 1's outcome"),
        ]
        for kind, payload, key, rnd, reason in cases:
            run.ledger.append(kind, payload, key, round=rnd)
            got = _reasons(run.ledger)
            assert any(reason in r for r in got), (kind, got)


def test_a_log_whose_entry_0_is_not_the_auctioneers_announcement_is_refused(tmp_path):
    # state.read_announcement: an empty log, and an announcement signed by another key
    from zkauction.protocol.log import Ledger

    with pytest.raises(ProtocolError, match="empty"):
        read_state(Ledger.in_memory())
    with make_run(tmp_path, rounds=2, audits=1) as run:
        d = run.ledger.get(0).data
        other = Ledger.in_memory()
        other.append(ANNOUNCEMENT, d, run.bidders[0].key)
        with pytest.raises(ProtocolError, match="not signed by the auctioneer it names"):
            read_state(other)
        other = Ledger.in_memory()
        other.append(REGISTRATION, {"bidder": 0}, run.bidders[0].key)
        with pytest.raises(ProtocolError, match="expected the auction announcement"):
            read_state(other)


def test_a_log_proof_with_a_wrong_inclusion_proof_is_refused(tmp_path):
    # bundle_log._included: its raise removed, a bundle whose entries are not in the checkpointed log passed
    import dataclasses
    import json

    from test_protocol import zk_run

    from zkauction.protocol.bundle_log import check_log_proof
    from zkauction.zk.bundle import VerificationError

    run, circuit = zk_run(tmp_path, rounds=2)
    run.play()
    run.reveal()
    bundle = run.auctioneer.prove(2, circuit)
    assert check_log_proof(bundle).round == 2
    for what in ("announcement", "outcome"):
        lp = json.loads(json.dumps(bundle.log))
        proof = lp["inclusion"][what]
        assert proof
        lp["inclusion"][what] = ["00" * 32] + proof[1:]
        with pytest.raises(VerificationError, match=f"the {what} entry is not in the log of the checkpoint"):
            check_log_proof(dataclasses.replace(bundle, log=lp))
    # bundle_log.check_log_proof: each step switched off passed the suite
    with pytest.raises(VerificationError, match="carries no log proof"):
        check_log_proof(dataclasses.replace(bundle, log=None))
    lp = json.loads(json.dumps(bundle.log))
    lp["announcement"] = lp["outcome"]
    with pytest.raises(VerificationError, match="not entry 0 of a log"):
        check_log_proof(dataclasses.replace(bundle, log=lp))
    size = bundle.log["checkpoint"]["size"]
    reg = run.ledger.entries(kind=REGISTRATION)[0]
    lp = json.loads(json.dumps(bundle.log))
    lp["outcome"], lp["inclusion"]["outcome"] = reg.to_dict(), run.ledger.inclusion_proof(reg.seq, size)
    with pytest.raises(VerificationError, match="not an outcome signed by the auctioneer"):
        check_log_proof(dataclasses.replace(bundle, log=lp))
    with pytest.raises(VerificationError, match="commitments are not the ones"):
        check_log_proof(dataclasses.replace(bundle, commitments=list(reversed(bundle.commitments))))
    for field in ("manifest_sha256", "vk_sha256"):
        with pytest.raises(VerificationError, match="is not the announced one"):
            check_log_proof(dataclasses.replace(bundle, **{field: "00" * 32}))
    run.close()


def test_a_round_without_an_outcome_has_no_outcome_or_commitments(tmp_path):
    # state.LedgerState.outcome_of / commitments_of: a KeyError instead of the ProtocolError callers catch
    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.play()
        st = read_state(run.ledger)
        assert st.outcome_of(2) and len(st.commitments_of(2)) == 2
        for f in (st.outcome_of, st.commitments_of):
            with pytest.raises(ProtocolError, match="round 3 has no logged outcome"):
                f(3)


@pytest.mark.parametrize("payload", [[1, 2], "x", 3])
def test_an_entry_whose_payload_is_not_an_object_is_refused_not_a_crash(tmp_path, payload):
    # state._Reader.read: without the check a list payload crashed the replay (AttributeError)
    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.play()
        run.ledger.append(PROOF, payload, run.auctioneer.key, round=1)
        assert any("proof payload is not an object" in r for r in _reasons(run.ledger))


@pytest.mark.parametrize("rnd", [0, 3])
def test_a_round_entry_outside_1_to_T_is_refused(tmp_path, rnd):
    # state._Reader.read: the round range check switched off
    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.play()
        run.ledger.append(PROOF, {}, run.auctioneer.key, round=rnd)
        assert any(f"proof for round {rnd}, outside 1..2" in r for r in _reasons(run.ledger))


def test_select_audit_rounds_refuses_k_outside_1_to_T():
    """k = 0 would audit nothing; k > T would never finish drawing."""
    from zkauction.protocol.audit import select_audit_rounds
    from zkauction.protocol.state import AuditError

    for k in (0, 11, -1):
        with pytest.raises(AuditError, match=r"audits k must be in \[1, T=10\]"):
            select_audit_rounds(b"\x01" * 32, 10, k)
    assert select_audit_rounds(b"\x01" * 32, 10, 10) == list(range(1, 11))


@pytest.mark.parametrize("field,value", [("commitments", 1), ("participants", 1), ("allocation", 1), ("payment", 1)])
def test_an_outcome_of_the_wrong_shape_is_a_breach(tmp_path, field, value):
    from zkauction.protocol.audit import check_round
    from zkauction.protocol.local import play_round
    from zkauction.protocol.state import OUTCOME, read_state

    with make_run(tmp_path, rounds=2, audits=1) as run:
        real = run.ledger.append_many

        def short(items, **kw):  # the host logs an outcome with one row too few
            return real([(k, dict(p, **{field: p[field][:value]}) if k == OUTCOME else p, key, r, u)
                         for k, p, key, r, u in items], **kw)

        run.ledger.append_many = short
        try:
            play_round(run.auctioneer, run.bidders, 1, [[0.5, 0.25], [0.75, 0.5]])
        except ProtocolError as e:  # an honest bidder notices at once
            assert "the outcome is malformed" in str(e)
        run.ledger.append_many = real
        reasons = [str(b) for b in check_round(read_state(run.ledger), 1)]
    assert any("the outcome must list 2 commitments, participants, allocation rows of 2 and payments" in r for r in reasons)


@pytest.mark.parametrize("profile,change,needle", [
    ([[0.5, 0.25], [0.75, 0.5]], {"allocation": [[-0.5, 0.0], [1.0, 0.0]]}, "bidder 0's allocation [-0.5, 0.0] is outside [0, 1]"),
    ([[0.5, 0.25], [0.75, 0.5]], {"allocation": [[1.0, 0.0], [1.0, 0.0]]}, "item 0 is allocated more than once"),
    ([[0.5, 0.25], [0.0, 0.0]], {"allocation": [[0.0, 0.0], [1.0, 0.0]]}, "absent bidder 1 was allocated items or charged"),
    ([[0.5, 0.25], [0.0, 0.0]], {"allocation": [[0.0, 0.0], [0.0, 0.0]], "payment": [0.0, 0.25]},
     "absent bidder 1 was allocated items or charged"),
    ([[0.5, 0.25], [0.75, 0.5]], {"allocation": [[1.0, 0.0], [0.0, 1.0]], "payment": [1.5, 0.0]}, "bidder 0 pays 1.5, outside [0, 1]"),
    ([[0.5, 0.25], [0.75, 0.5]], {"allocation": [[1.0, 0.0], [0.0, 1.0]], "payment": [-0.25, 0.0]}, "bidder 0 pays -0.25"),
])
def test_infeasible_or_irrational_outcomes_are_breaches(tmp_path, profile, change, needle):
    from zkauction.protocol.audit import check_round
    from zkauction.protocol.local import play_round
    from zkauction.protocol.state import OUTCOME, read_state

    with make_run(tmp_path, rounds=2, audits=1) as run:
        real = run.ledger.append_many

        def lie(items, **kw):
            return real([(k, dict(p, **change) if k == OUTCOME else p, key, r, u) for k, p, key, r, u in items], **kw)

        run.ledger.append_many = lie
        try:
            play_round(run.auctioneer, run.bidders, 1, profile)
        except ProtocolError as e:  # a winner charged beyond its bids' worth notices at once
            assert "(individual rationality)" in str(e)
        run.ledger.append_many = real
        reasons = [str(b) for b in check_round(read_state(run.ledger), 1)]
    assert any(needle in r for r in reasons), reasons


def test_a_bidder_checks_every_outcome_it_takes_part_in(tmp_path):
    """The honest client refuses an outcome it cannot see under its kept checkpoint, and names an
    outcome that leaves its commitment out without a logged rejection."""
    from zkauction.protocol.state import OUTCOME, absent_commitment

    with make_run(tmp_path, rounds=2, audits=1) as run:
        b0, b1 = run.bidders
        b0.commit(1, [0.5, 0.25])
        b1.commit(1, [0.75, 0.5])
        with pytest.raises(ProtocolError, match="round 1: no outcome covered by a checkpoint bidder 0 holds"):
            b0.check_outcome(1)
        run.auctioneer.close_commitments(1)
        run.auctioneer.receive_opening(1, 1, b1.open(1))
        b0.open(1)  # sent, and dropped by the host, which then logs an outcome without it and no rejection
        close = run.ledger.entries(kind="commitments_closed", round=1)[0].data["commitments"]
        out = run.auctioneer.outcome([[0.0, 0.0], list(b1._openings[1].bids)], ["00" * 32, b1._openings[1].salt])
        run.ledger.append_many([(OUTCOME, {"participants": [0, 1], "commitments": [absent_commitment(2, 12), close[1]],
                                           **out.to_dict()}, run.auctioneer.key, 1, "outcome/1")],
                               checkpoint_key=run.auctioneer.key)
        with pytest.raises(ProtocolError, match="round 1: the outcome was not computed on bidder 0's commitment"):
            b0.check_outcome(1)
        # and the other bidder, whose commitment it used, sees a round that sells with bidder 0 left out
        with pytest.raises(ProtocolError, match="round 1: the outcome sells while bidder 0, whose commitment was closed"):
            b1.check_outcome(1)


def test_a_cosigned_checkpoint_longer_than_the_log_is_a_truncation(tmp_path):
    """A bidder co-signs a checkpoint the auctioneer signed for more entries than the log it then
    presents: evidence of a cut log (the checkpoint's signature makes it the auctioneer's)."""
    from zkauction.protocol.audit import check_cosigned
    from zkauction.protocol.log import SignedCheckpoint
    from zkauction.protocol.state import SEED_REVEAL, read_state

    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.play()
        b = run.bidders[0]
        longer = SignedCheckpoint.sign(run.auctioneer.key, run.ledger.log_id, len(run.ledger) + 10, "ab" * 32)
        run.ledger.append(SEED_REVEAL, {"bidder": 0, "seed": b.seed, "checkpoint": longer.to_dict()}, b.key)
        run.bidders[1].reveal()
        st = read_state(run.ledger)
        assert 0 in st.reveals
        reasons = [b.reason for b in check_cosigned(run.ledger, st)]
    assert any("co-signed a log of" in r and "(truncated)" in r for r in reasons), reasons


def test_reveal_mode_checks_the_published_openings(tmp_path):
    """Reveal mode: the published openings must open the commitments the outcome names, be well
    formed, one per bidder, and give the published allocation and payment."""
    from zkauction.protocol.audit import check_round_openings
    from zkauction.protocol.state import read_state
    from zkauction.zk.circuit import Outcome

    with make_run(tmp_path, rounds=2, audits=1) as run:
        from zkauction.protocol.local import play_round

        play_round(run.auctioneer, run.bidders, 1, [[0.5, 0.25], [0.75, 0.5]])
        st = read_state(run.ledger)
        bids, salts = run.auctioneer.round_inputs(1)
        fn = run.outcome
        check_round_openings(st, 1, bids, salts, fn)  # the honest openings pass
        other = [list(bids[0]), [0.5, 0.5]]
        with pytest.raises(ProtocolError, match="round 1: bidder 1's opening does not match the commitment the outcome names"):
            check_round_openings(st, 1, other, salts, fn)
        with pytest.raises(ProtocolError, match="round 1: bidder 0's opening is malformed: bid must be non-negative"):
            check_round_openings(st, 1, [[-0.5, 0.5], bids[1]], salts, fn)
        with pytest.raises(ProtocolError, match="round 1: the openings are malformed: bidder 0's salt must be 64 hex"):
            check_round_openings(st, 1, bids, ["zz", salts[1]], fn)
        with pytest.raises(ProtocolError, match="round 1: the openings are malformed: they must list the bids and the salts of 2 bidders"):
            check_round_openings(st, 1, bids[:1], salts[:1], fn)
        real = fn(bids, salts)
        swapped = Outcome(tuple(reversed(real.allocation)), real.payment)
        assert swapped.allocation != real.allocation
        with pytest.raises(ProtocolError, match="round 1: published allocation"):
            check_round_openings(st, 1, bids, salts, lambda b, s: swapped)
        with pytest.raises(ProtocolError, match="round 1: published payment"):
            check_round_openings(st, 1, bids, salts, lambda b, s: Outcome(real.allocation, (real.payment[0] + 0.5, real.payment[1])))


def test_a_cosigned_checkpoint_of_another_history_is_a_fork(tmp_path):
    from zkauction.protocol.audit import check_cosigned
    from zkauction.protocol.log import SignedCheckpoint
    from zkauction.protocol.state import SEED_REVEAL, read_state

    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.play()
        b = run.bidders[0]
        other = SignedCheckpoint.sign(run.auctioneer.key, run.ledger.log_id, len(run.ledger), "cd" * 32)
        run.ledger.append(SEED_REVEAL, {"bidder": 0, "seed": b.seed, "checkpoint": other.to_dict()}, b.key)
        reasons = [x.reason for x in check_cosigned(run.ledger, read_state(run.ledger))]
    assert any("co-signed another log of" in r and "(fork)" in r for r in reasons), reasons


def test_the_zk_audit_checks_each_audited_rounds_proof_entry(tmp_path):
    """zk mode, with the proof check itself injected (real proofs: tests/test_demo.py): a missing
    proof, no circuit, a proof naming another round, a failed check and an unreadable bundle are
    each a failed verdict naming the round."""
    from zkauction.protocol.audit import Auditor
    from zkauction.protocol.state import PROOF, read_state
    from zkauction.zk.bundle import ProofBundle, VerificationError

    with make_run(tmp_path, mode="zk", rounds=2, audits=2) as run:
        run.play()
        st = read_state(run.ledger)
        assert Auditor(run.ledger).check_audited_round(st, 3).reason.startswith("round 3: no outcome was logged")
        a = Auditor(run.ledger, circuit="C", verify_bundle=lambda *a, **k: None)
        assert a.check_audited_round(st, 1).reason == "round 1: the auctioneer logged no proof"

        def bundle(r, round_id):
            return ProofBundle(proof={}, manifest_sha256="aa" * 32, vk_sha256="bb" * 32, commitments=tuple(st.commitments_of(r)),
                               outcome=st.outcome_of(r), ezkl_version="x", round_id=round_id).to_dict()

        run.ledger.append(PROOF, bundle(1, 2), run.auctioneer.key, round=1)  # names round 2
        run.ledger.append(PROOF, {"not": "a bundle"}, run.auctioneer.key, round=2)
        st = read_state(run.ledger)
        assert a.check_audited_round(st, 1).reason == "round 1: the logged proof names round 2"
        assert a.check_audited_round(st, 2).reason.startswith("round 2: unreadable proof bundle")
        assert Auditor(run.ledger).check_audited_round(st, 1).reason == "round 1: no circuit given to verify the proof"

    with make_run(tmp_path, mode="zk", rounds=1, audits=1, name="b.db") as run:
        run.play()
        st = read_state(run.ledger)
        ok = ProofBundle(proof={}, manifest_sha256="aa" * 32, vk_sha256="bb" * 32, commitments=tuple(st.commitments_of(1)),
                         outcome=st.outcome_of(1), ezkl_version="x", round_id=1)
        run.ledger.append(PROOF, ok.to_dict(), run.auctioneer.key, round=1)
        st = read_state(run.ledger)

        def fails(*args, **kw):
            raise VerificationError("proof", "ezkl rejected the proof")

        v = Auditor(run.ledger, circuit="C", verify_bundle=fails).check_audited_round(st, 1)
        assert not v.valid and v.reason == "round 1: proof check failed: ezkl rejected the proof"
        assert Auditor(run.ledger, circuit="C", verify_bundle=lambda *a, **k: None).check_audited_round(st, 1).valid


def test_entries_by_the_wrong_role_and_second_registrations_do_not_count(tmp_path):
    from zkauction.protocol.state import OUTCOME, REGISTRATION, read_state, seed_commitment

    with make_run(tmp_path, rounds=2, audits=1) as run:
        b0 = run.bidders[0]
        run.ledger.append(REGISTRATION, {"bidder": 0, "announcement": run.ledger.log_id,
                                         "seed_commitment": seed_commitment(0, "11" * 32)}, b0.key)
        run.play()
        run.ledger.append(OUTCOME, {"participants": [0, 0]}, b0.key, round=2)  # a bidder signing an outcome
        st = read_state(run.ledger)
    assert st.registrations[0] == seed_commitment(0, b0.seed)  # the first registration counts
    assert any("bidder 0 registered twice (the first counts)" in n for n in st.notes)
    assert any("outcome signed by bidder 0, not by the auctioneer" in n for n in st.notes)
    assert not st.breaches


def test_bundle_log_checks_name_a_malformed_proof_and_a_round_without_outcome(tmp_path):
    import dataclasses

    from test_protocol import _fake_bundle

    from zkauction.protocol.bundle_log import check_bundle_against_ledger, check_log_proof
    from zkauction.protocol.state import read_state
    from zkauction.zk.bundle import VerificationError

    with _zk_like(tmp_path) as run:
        from zkauction.protocol.local import run_rounds

        run_rounds(run.auctioneer, run.bidders, run.bids_of_round, [1])  # only round 1 is played
        st = read_state(run.ledger)
        b = _fake_bundle(st, 1)
        with pytest.raises(VerificationError, match="malformed log proof"):
            check_log_proof(dataclasses.replace(b, log={"checkpoint": {}}))
        with pytest.raises(VerificationError, match="the bundle carries no log proof"):
            check_log_proof(b)
        assert check_bundle_against_ledger(b, run.ledger) == 1
        with pytest.raises(VerificationError, match="round 2: no outcome is logged for this round"):
            check_bundle_against_ledger(dataclasses.replace(b, round_id=2), run.ledger)


def _zk_like(tmp_path):
    from test_protocol import PARTICIPATION, SETTING, small_net

    from zkauction.protocol.auctioneer import net_outcome_function
    from zkauction.protocol.local import LocalRun

    return LocalRun.create(tmp_path / "b.db", net_outcome_function(small_net()), setting=SETTING, participation=PARTICIPATION,
                           input_scale=12, auction={"name": "c", "manifest_sha256": "aa" * 32, "vk_sha256": "bb" * 32},
                           rounds=3, audits=1, mode="zk", seed=1)


def test_reveal_and_ttp_audits_need_their_answers(tmp_path):
    from zkauction.protocol.audit import Auditor
    from zkauction.protocol.state import TTP_VERDICT, read_state

    with make_run(tmp_path, mode="reveal", rounds=1, audits=1) as run:
        run.play()
        st = read_state(run.ledger)
        assert Auditor(run.ledger, outcome=run.outcome).check_audited_round(st, 1).reason == \
            "round 1: the auctioneer published no openings"
        run.reveal()
        run.answer_audit([1])
        st = read_state(run.ledger)
        assert Auditor(run.ledger).check_audited_round(st, 1).reason == "round 1: no auction given to recompute the outcome"
        assert Auditor(run.ledger, outcome=run.outcome).check_audited_round(st, 1).valid
    with make_run(tmp_path, mode="ttp", rounds=1, audits=1, name="t.db") as run:
        run.play()
        st = read_state(run.ledger)
        assert Auditor(run.ledger).check_audited_round(st, 1).reason == "round 1: the trusted third party logged no verdict"
        run.ledger.append(TTP_VERDICT, {"round": 1, "mode": "ttp", "valid": False, "reason": "round 1: it said no"},
                          run.third_party.key, round=1)
        st = read_state(run.ledger)
        v = Auditor(run.ledger).check_audited_round(st, 1)
        assert not v.valid and v.reason == "round 1: it said no"


def test_commitment_items_refuse_other_bids_and_a_closed_round(tmp_path):
    with make_run(tmp_path, rounds=2, audits=1) as run:
        b0, b1 = run.bidders
        run.ledger.append_many([b0.commitment_item(1, [0.5, 0.25])])
        assert b0.commitment_item(1, [0.5, 0.25]) is None  # already logged: nothing to append
        with pytest.raises(ProtocolError, match="bidder 0 already committed to other bids in round 1"):
            b0.commitment_item(1, [0.25, 0.25])
        run.auctioneer.close_commitments(1)
        with pytest.raises(ProtocolError, match="round 1: the commitments are closed; bidder 1 is too late"):
            b1.commitment_item(1, [0.5, 0.5])


def test_the_bidder_client_refuses_what_it_must(tmp_path):
    """Other bids for a logged commitment, opening a round it never committed in, a close that
    leaves out its own commitment (the sealed commit phase), and a dispute without an opening."""
    from zkauction.protocol.state import COMMITMENTS_CLOSED

    with make_run(tmp_path, rounds=2, audits=1) as run:
        b0, b1 = run.bidders
        b0.commit(1, [0.5, 0.25])
        with pytest.raises(ProtocolError, match="bidder 0 already committed to other bids in round 1"):
            b0.commit(1, [0.25, 0.25])
        with pytest.raises(ProtocolError, match="bidder 1 has no commitment for round 1"):
            b1.open(1)
        with pytest.raises(ProtocolError, match="bidder 1 has no opening for round 1 to publish"):
            b1.dispute(1)
        # the host closes the round without bidder 0's commitment (and checkpoints it)
        run.ledger.append_many([(COMMITMENTS_CLOSED, {"commitments": [None, None]}, run.auctioneer.key, 1, "commitments_closed/1")],
                               checkpoint_key=run.auctioneer.key)
        with pytest.raises(ProtocolError, match="round 1: the closed list does not hold bidder 0's commitment"):
            b0.open(1)


def test_the_honest_auctioneer_refuses_its_own_mistakes(tmp_path):
    """Operator safety: a second announcement, a bad mode or penalty, a round out of range or out of
    order are refused before anything is written."""
    with make_run(tmp_path, rounds=3, audits=1) as run:
        a = run.auctioneer
        size = len(run.ledger)
        kw = dict(n=2, m=2, support=[[[0, 1], [0, 1]]] * 2, input_scale=12, auction={"name": "x"}, rounds=3, audits=1,
                  penalty=1.0, mode="reveal", bidders=[b.key.public_hex for b in run.bidders])
        with pytest.raises(ProtocolError, match="the log already holds an auction"):
            a.announce(**kw)
        from zkauction.protocol.auctioneer import Auctioneer
        from zkauction.protocol.log import Ledger

        fresh = Auctioneer(a.key, Ledger.in_memory(), run.outcome)
        with pytest.raises(ProtocolError, match="mode must be one of"):
            fresh.announce(**dict(kw, mode="secret"))
        with pytest.raises(ProtocolError, match="the penalty must be a non-negative number"):
            fresh.announce(**dict(kw, penalty=-1.0))
        for r in (0, 4):
            with pytest.raises(ProtocolError, match=r"round must be in 1..3"):
                a.close_commitments(r)
        with pytest.raises(ProtocolError, match="round 2 cannot start before round 1's outcome"):
            a.close_commitments(2)
        assert len(run.ledger) == size


def test_the_auctioneer_names_malformed_openings_and_refuses_steps_out_of_order(tmp_path):
    from zkauction.protocol.local import play_round
    from zkauction.protocol.state import read_state
    from zkauction.zk.commitments import CommitmentError, Opening

    with make_run(tmp_path, rounds=2, audits=1) as run:
        b0, b1 = run.bidders
        b0.commit(1, [0.5, 0.25])
        run.auctioneer.close_commitments(1)
        real = b0.open(1).opening
        with pytest.raises(CommitmentError, match=r"\(malformed_opening\)"):
            run.auctioneer.receive_opening(1, 0, b0.sign_opening(1, Opening(real.bids[:1], real.salt)))
        assert read_state(run.ledger).rejections[1] == {0: "malformed_opening"}
        with pytest.raises(ProtocolError, match="the reveal phase cannot close before round 2's outcome"):
            run.auctioneer.close_reveals()
        run.auctioneer.close_round(1)
        with pytest.raises(ProtocolError, match="round 1 already has an outcome"):
            run.auctioneer.close_round(1)
        play_round(run.auctioneer, run.bidders, 2, [[0.5, 0.5], [0.25, 0.25]])


def test_announcements_and_payloads_that_cannot_be_read_are_named(tmp_path):
    from zkauction.protocol.log import entry_hash, statement_hash
    from zkauction.protocol.state import PROTOCOL_FORMAT, REGISTRATION, Announcement, read_state
    from zkauction.protocol.storage import Entry

    with pytest.raises(ProtocolError, match="announcement: missing field"):
        Announcement.from_dict({"format": PROTOCOL_FORMAT})
    with make_run(tmp_path, rounds=1, audits=1) as run:
        b0 = run.bidders[0]
        run.ledger.append("bid_commitment", {"bidder": 0}, b0.key, round=1)  # no commitment in it
        last = run.ledger.storage.last()
        h = entry_hash(last.seq + 1, None, REGISTRATION, "{not json", last.hash, b0.key.public_hex)
        bad = Entry(last.seq + 1, None, REGISTRATION, "{not json", last.hash, h, b0.key.public_hex, b0.key.sign(bytes.fromhex(statement_hash(run.ledger.log_id, None, REGISTRATION, "{not json", b0.key.public_hex))))
        run.ledger.storage.append_many([(bad, None)])
        notes = read_state(run.ledger).notes
    assert any("malformed bid_commitment payload" in n for n in notes), notes
    assert any("registration payload is not JSON" in n for n in notes), notes


def test_log_proofs_name_a_foreign_checkpoint_and_an_uncovered_outcome(tmp_path):
    import dataclasses

    from test_protocol import _fake_bundle

    from zkauction.protocol.bundle_log import check_bundle_against_ledger, check_log_proof, make_log_proof
    from zkauction.protocol.log import SignedCheckpoint
    from zkauction.protocol.state import OUTCOME, read_state
    from zkauction.zk.bundle import VerificationError

    with _zk_like(tmp_path) as run:
        from zkauction.protocol.local import run_rounds

        run_rounds(run.auctioneer, run.bidders, run.bids_of_round, [1, 2])
        st = read_state(run.ledger)
        cp = run.ledger.latest_checkpoint()
        b = dataclasses.replace(_fake_bundle(st, 2), log=make_log_proof(run.ledger, 2, cp))
        assert check_log_proof(b).round == 2
        lp = dict(b.log, checkpoint=SignedCheckpoint.sign(run.auctioneer.key, "ab" * 32, cp.size, cp.root).to_dict())
        with pytest.raises(VerificationError, match="the checkpoint is for another log than the announcement's"):
            check_log_proof(dataclasses.replace(b, log=lp))
        # an outcome the log's newest checkpoint does not cover
        run.bidders[0].commit(3, [0.5, 0.5])
        run.auctioneer.close_commitments(3)
        run.auctioneer.receive_opening(3, 0, run.bidders[0].open(3))
        out = run.auctioneer.outcome([list(run.bidders[0]._openings[3].bids), [0.0, 0.0]],
                                     [run.bidders[0]._openings[3].salt, "00" * 32])
        from zkauction.protocol.state import absent_commitment

        close = run.ledger.entries(kind="commitments_closed", round=3)[0].data["commitments"]
        run.ledger.append(OUTCOME, {"participants": [1, 0], "commitments": [close[0], absent_commitment(2, 12)],
                                    **out.to_dict()}, run.auctioneer.key, round=3)  # no checkpoint after it
        st = read_state(run.ledger)
        with pytest.raises(VerificationError, match="round 3: the outcome is not covered by the checkpoint"):
            check_bundle_against_ledger(_fake_bundle(st, 3), run.ledger)


def test_a_bundle_for_another_verifying_key_is_named(tmp_path):
    import dataclasses

    from test_protocol import _fake_bundle

    from zkauction.protocol.bundle_log import check_bundle_against_ledger
    from zkauction.protocol.state import read_state
    from zkauction.zk.bundle import VerificationError

    with _zk_like(tmp_path) as run:
        run.play()
        st = read_state(run.ledger)
        with pytest.raises(VerificationError, match="round 2: the bundle's verifying key is not the announced one"):
            check_bundle_against_ledger(dataclasses.replace(_fake_bundle(st, 2), vk_sha256="cc" * 32), run.ledger)


def test_bundles_checked_against_a_log_without_a_round_a_checkpoint_or_an_intact_outcome(tmp_path):
    import dataclasses

    from test_protocol import _fake_bundle

    from zkauction.protocol.bundle_log import check_bundle_against_ledger
    from zkauction.protocol.log import Ledger
    from zkauction.protocol.state import read_state
    from zkauction.protocol.storage import Entry, MemoryStorage
    from zkauction.zk.bundle import VerificationError

    with _zk_like(tmp_path) as run:
        run.play()
        st = read_state(run.ledger)
        b = _fake_bundle(st, 2)
        with pytest.raises(VerificationError, match="the bundle names no round"):
            check_bundle_against_ledger(dataclasses.replace(b, round_id=None), run.ledger)
        entries = run.ledger.entries()
        checkpoint = run.ledger.latest_checkpoint()
    bare = MemoryStorage()  # the same entries, no checkpoint stored with them
    bare.append_many([(e, None) for e in entries])
    with pytest.raises(VerificationError, match="the log has no signed checkpoint"):
        check_bundle_against_ledger(b, Ledger(bare))
    out = st.outcomes[2]
    forged = dict(json.loads(out.payload), payment=[0.0, 0.0])
    tampered = [e if e.seq != out.seq else Entry(e.seq, e.round, e.kind, json.dumps(forged), e.prev_hash, e.hash, e.signer,
                                                 e.signature) for e in entries]
    store = MemoryStorage()
    store.append_many([(e, None) for e in tampered])
    store.put_checkpoint(checkpoint.size, checkpoint.to_json())
    with pytest.raises(VerificationError, match=f"ledger entry {out.seq}: hash mismatch"):
        check_bundle_against_ledger(b, Ledger(store))


def test_reveals_rejections_disputes_and_abstentions_out_of_rule_do_not_count(tmp_path):
    """A reveal of another seed than the registered one (a shill choosing the draw), a second reveal,
    a reveal whose checkpoint does not cover round T; a rejection of a bidder that never committed;
    a dispute after the reveal phase; an abstention outside its round's opening phase."""
    from zkauction.protocol.log import SignedCheckpoint
    from zkauction.protocol.state import ABSTENTION, OPENING_REJECTED, SEED_REVEAL, read_state

    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.play()
        b0, b1 = run.bidders
        early = SignedCheckpoint.sign(run.auctioneer.key, run.ledger.log_id, 3, run.ledger.root(3))
        run.ledger.append(SEED_REVEAL, {"bidder": 1, "seed": b1.seed, "checkpoint": early.to_dict()}, b1.key)
        run.ledger.append(SEED_REVEAL, {"bidder": 0, "seed": "11" * 32, "checkpoint": b0.sync().to_dict()}, b0.key)
        for _ in range(2):  # the true seed, twice: the first counts
            run.ledger.append(SEED_REVEAL, {"bidder": 0, "seed": b0.seed, "checkpoint": b0.view.kept.to_dict()}, b0.key)
        run.ledger.append(ABSTENTION, {"bidder": 1}, b1.key, round=1)  # after round 1's outcome
        run.auctioneer.close_reveals()
        st = read_state(run.ledger)
        notes = " | ".join(st.notes)
        assert "bidder 1's reveal carries no checkpoint of this log covering round 2's outcome" in notes
        assert "bidder 0's revealed seed does not match its registration's seed commitment" in notes
        assert "bidder 0 revealed twice (the first counts)" in notes
        assert "bidder 1's abstention in round 1 is not between its commitment and the outcome" in notes
        assert st.reveals[0].data["seed"] == b0.seed and 1 not in st.reveals
        assert "every round is audited" in __import__("zkauction.protocol.audit", fromlist=["audit_draw"]).audit_draw(st).fallback
    with make_run(tmp_path, rounds=2, audits=1, name="b.db") as run:
        run.bidders[0].commit(1, [0.5, 0.5])
        run.auctioneer.close_commitments(1)
        run.ledger.append(OPENING_REJECTED, {"bidder": 1, "reason": "no_opening"}, run.auctioneer.key, round=1)
        assert any("rejection of bidder 1 in round 1, which has no logged commitment" in b.reason
                   for b in read_state(run.ledger).breaches)
