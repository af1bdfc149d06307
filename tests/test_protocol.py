"""The repeated-auction protocol (Algorithm 1) over the signed ledger, with a plain auction net as
the announced auction (reveal and trusted-third-party modes; zk mode runs in tests/test_demo.py)."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from zkauction.zk.bundle import ProofBundle, VerificationError
from zkauction.zk.circuit import Outcome
from zkauction.zk.commitments import CommitmentError, Opening
from zkauction.protocol.log import Ledger, SigningKey
from zkauction.learn.nets import RegretNet
from zkauction.protocol.audit import audit_selection, check_bundle_against_ledger, select_audit_rounds, selection_digest
from zkauction.protocol.local import LocalRun
from zkauction.protocol.roles import net_outcome_function
from zkauction.protocol.state import AUDIT_SELECTION, AuditError, BID_COMMITMENT, OUTCOME, ProtocolError, SEED_REVEAL, absent_commitment, read_state
from zkauction.learn.setting import AuctionSetting, ParticipationModel

SETTING = AuctionSetting(2, 2)
PARTICIPATION = ParticipationModel.independent([0.7, 0.9])


def small_net():
    torch.manual_seed(0)
    net = RegretNet(SETTING, PARTICIPATION, depth=2, width=16)
    net.eval()
    return net


def make_run(tmp_path, mode="reveal", rounds=12, audits=2, name="a.db", **kw):
    fn = net_outcome_function(small_net())
    return LocalRun.create(
        tmp_path / name, fn, setting=SETTING, participation=PARTICIPATION, input_scale=12,
        auction={"name": "test-net"}, rounds=rounds, audits=audits, mode=mode, seed=7, **kw,
    )


@pytest.mark.parametrize("mode", ["reveal", "ttp"])
def test_honest_run_passes_the_audit(tmp_path, mode):
    with make_run(tmp_path, mode) as run:
        assert run.play() == 12
        report = run.audit()
        assert report.valid and report.penalty_due == 0.0
        assert len(report.rounds) == 2 and all(v.valid for v in report.verdicts)
        st = read_state(run.ledger)
        assert st.result.data["valid"] is True and not st.anomalies
        # zk secrecy of the log: no bid appears in the ledger outside the audited rounds' openings
        for r in range(1, 13):
            for e in run.ledger.entries(round=r, kind=BID_COMMITMENT):
                assert set(e.data) == {"bidder", "commitment"}
        # every bidder finds its own commitment in the outcomes of the rounds it bid in
        for r in range(1, 13):
            for b in run.bidders:
                if st.outcomes[r].data["participants"][b.index]:
                    b.check_own_commitment(r, st)


@pytest.mark.parametrize("mode", ["reveal", "ttp"])
def test_dishonest_auctioneer_changing_one_payment_fails_that_rounds_audit(tmp_path, mode):
    # k = T: every round is audited, so the lie in round 3 is certainly looked at.
    with make_run(tmp_path, mode, rounds=6, audits=6) as run:
        honest = run.auctioneer.outcome

        def dishonest(bids, salts):
            out = honest(bids, salts)
            if run.auctioneer.ledger.entries(kind=OUTCOME, round=2) and not run.auctioneer.ledger.entries(kind=OUTCOME, round=3):
                out = Outcome(out.allocation, (out.payment[0] + 0.125,) + out.payment[1:])
            return out

        run.auctioneer.outcome = dishonest
        run.play()
        report = run.audit()
    assert run.ledger is not None
    with Ledger.open(tmp_path / "a.db") as ledger:
        check = ledger.verify_chain()  # the lie is in the content, not in the chain
        assert check.n_entries > 6
    assert report.failed == [3] and not report.valid
    bad = [v for v in report.verdicts if not v.valid][0]
    assert bad.round == 3 and bad.reason.startswith("round 3:") and "payment" in bad.reason
    assert report.penalty_due == pytest.approx(7 * 2.0)  # (T + 1) * aRgt*


def test_bad_opening_is_rejected_logged_and_treated_as_absent(tmp_path):
    with make_run(tmp_path, rounds=3, audits=3) as run:
        bids = run.bids_of_round(1)
        present = [i for i in range(2) if any(bids[i])]
        assert present, "seed 7 should give a present bidder in round 1"
        i = present[0]
        opening = run.bidders[i].bid(1, bids[i], 12)
        forged = Opening(tuple(min(1.0, b + 0.25) for b in opening.bids), opening.salt)
        with pytest.raises(CommitmentError, match=f"round 1: bidder {i}'s opening is rejected: opening does not match"):
            run.auctioneer.receive_opening(1, i, forged)
        with pytest.raises(CommitmentError, match="earlier opening was rejected"):  # the rejection stands
            run.auctioneer.receive_opening(1, i, opening)
        for j in present[1:]:
            run.auctioneer.receive_opening(1, j, run.bidders[j].bid(1, bids[j], 12))
        out = run.auctioneer.close_round(1)
        st = read_state(run.ledger)
        assert "opening does not match commitment" in st.rejections[1][i]
        assert out.data["participants"][i] == 0
        assert out.data["commitments"][i] == absent_commitment(2, 12)
        assert out.data["payment"][i] == 0.0
        run.play()
        assert run.audit().valid  # the honest auctioneer computed round 1 without the bad bidder


def test_bids_outside_the_support_are_rejected(tmp_path):
    with make_run(tmp_path, rounds=2, audits=1) as run:
        opening = run.bidders[0].bid(1, [1.5, 0.5], 12)
        with pytest.raises(CommitmentError, match="outside the support"):
            run.auctioneer.receive_opening(1, 0, opening)
        with pytest.raises(CommitmentError, match="no commitment of this bidder"):
            run.auctioneer.receive_opening(1, 1, opening)
        run.auctioneer.close_round(1)
        st = read_state(run.ledger)
        assert "outside the support" in st.rejections[1][0] and st.outcomes[1].data["participants"] == [0, 0]


def test_audit_selection_waits_for_all_reveals_and_depends_on_each(tmp_path):
    with make_run(tmp_path, rounds=40, audits=3) as run:
        with pytest.raises(AuditError, match="only 0 of 40 rounds"):
            audit_selection(run.ledger)
        with pytest.raises(ProtocolError, match="not revealing"):
            run.bidders[0].reveal_audit_seed()
        run.play()
        with pytest.raises(AuditError, match=r"waiting for audit-seed reveals from bidder\(s\) 0, 1"):
            audit_selection(run.ledger)
        run.bidders[1].reveal_audit_seed()
        with pytest.raises(AuditError, match=r"bidder\(s\) 0$"):
            audit_selection(run.ledger)
        run.bidders[0].reveal_audit_seed()
        sel = audit_selection(run.ledger)
        st = read_state(run.ledger)
        assert sel.rounds == select_audit_rounds(selection_digest(st.reveals, st.outcomes[40].hash), 40, 3)
        assert len(set(sel.rounds)) == 3 and all(1 <= r <= 40 for r in sel.rounds)
        assert sel.head == st.outcomes[40].hash and sel.revealed == [0, 1]

    # Changing any single reveal (or the head) changes the selection.
    reveals = {0: "11" * 32, 1: "22" * 32, 2: "33" * 32}
    head = "ab" * 32
    base = select_audit_rounds(selection_digest(reveals, head), 10_000, 3)
    for i in reveals:
        for byte in range(0, 32, 7):
            changed = dict(reveals)
            b = bytearray.fromhex(changed[i])
            b[byte] ^= 1
            changed[i] = b.hex()
            assert select_audit_rounds(selection_digest(changed, head), 10_000, 3) != base
    assert select_audit_rounds(selection_digest(reveals, "ac" * 32), 10_000, 3) != base


def test_selection_is_uniform_without_replacement():
    counts = [0] * 10
    for s in range(3000):
        for r in select_audit_rounds(s.to_bytes(4, "big"), 10, 2):
            counts[r - 1] += 1
    assert sum(counts) == 6000
    assert all(abs(c - 600) < 100 for c in counts), counts


def test_a_bidder_that_never_reveals_is_declared_missing_and_left_out(tmp_path):
    with make_run(tmp_path, rounds=8, audits=2) as run:
        run.play()
        report = run.audit(withhold=[1])
        st = read_state(run.ledger)
        assert st.missing == {1} and set(st.reveals) == {0}
        sel = st.selection.data
        assert sel["revealed"] == [0] and sel["missing"] == [1] and sel["fallback"] is None
        assert sel["rounds"] == select_audit_rounds(selection_digest({0: st.reveals[0]}, st.outcomes[8].hash), 8, 2)
        assert report.valid
        # a reveal after the phase closed does not count
        run.ledger.append(SEED_REVEAL, {"bidder": 1, "seed": run.bidders[1].seed}, run.bidders[1].key)
        st = read_state(run.ledger)
        assert 1 not in st.reveals and any("declared missing" in a[2] for a in st.anomalies)


def test_no_reveal_at_all_audits_every_round(tmp_path):
    with make_run(tmp_path, rounds=5, audits=1) as run:
        run.play()
        report = run.audit(withhold=[0, 1])
        assert report.rounds == [1, 2, 3, 4, 5] and report.valid
        assert "every round is audited" in read_state(run.ledger).selection.data["fallback"]


def test_entries_by_the_wrong_party_do_not_count(tmp_path):
    with make_run(tmp_path, rounds=3, audits=1) as run:
        stranger = SigningKey.generate()
        run.ledger.append(OUTCOME, {"participants": [0, 0], "commitments": [], "allocation": [], "payment": []}, stranger, round=1)
        run.ledger.append(BID_COMMITMENT, {"bidder": 0, "commitment": "00" * 32}, run.bidders[1].key, round=1)
        run.ledger.append(AUDIT_SELECTION, {"rounds": [1]}, run.bidders[0].key)
        st = read_state(run.ledger)
        assert 1 not in st.outcomes and 1 not in st.commitments and st.selection is None
        reasons = [a[2] for a in st.anomalies]
        assert "outcome not signed by the auctioneer" in reasons[0]
        assert "bid_commitment for bidder 0 not signed by that bidder's key" in reasons[1]
        assert "audit_selection not signed by the auditor" in reasons[2]
        run.play()
        rep = run.audit()
        assert rep.valid  # strangers' and bidders' noise is not the auctioneer's fault


def test_a_second_outcome_for_a_round_fails_the_audit(tmp_path):
    with make_run(tmp_path, rounds=3, audits=1) as run:
        run.play()
        first = run.ledger.entries(kind=OUTCOME, round=2)[0].data
        first["payment"] = [0.0, 0.0]
        run.ledger.append(OUTCOME, first, run.auctioneer.key, round=2)
        rep = run.audit()
        assert not rep.valid and rep.penalty_due > 0
        assert any("a second outcome for round 2" in a for a in rep.anomalies)


def _fake_bundle(st, r, **change):
    ann = st.announcement
    b = ProofBundle(
        proof={}, manifest_sha256=ann.auction["manifest_sha256"], vk_sha256=ann.auction["vk_sha256"],
        commitments=tuple(st.commitments_of(r)), outcome=st.outcome_of(r), ezkl_version="x", round_id=r,
    )
    return dataclasses.replace(b, **change)


def test_check_bundle_against_ledger(tmp_path):
    # an announcement with circuit hashes, so the bundle's hashes can be compared
    fn = net_outcome_function(small_net())
    run = LocalRun.create(tmp_path / "b.db", fn, setting=SETTING, participation=PARTICIPATION, input_scale=12,
                          auction={"name": "c", "manifest_sha256": "aa" * 32, "vk_sha256": "bb" * 32},
                          rounds=3, audits=1, mode="zk", seed=1)
    run.play()
    st = read_state(run.ledger)
    assert check_bundle_against_ledger(_fake_bundle(st, 2), run.ledger) == 2
    out = st.outcome_of(2)
    lie = Outcome(out.allocation, (out.payment[0] + 2**-12,) + out.payment[1:])
    with pytest.raises(VerificationError, match="round 2: published payment") as err:
        check_bundle_against_ledger(_fake_bundle(st, 2, outcome=lie), run.ledger)
    assert err.value.check == "ledger"
    with pytest.raises(VerificationError, match="round 2: bidder 1's commitment"):
        check_bundle_against_ledger(_fake_bundle(st, 2, commitments=(st.commitments_of(2)[0], "00" * 32)), run.ledger)
    with pytest.raises(VerificationError, match="round 2: the bundle's circuit manifest"):
        check_bundle_against_ledger(_fake_bundle(st, 2, manifest_sha256="cc" * 32), run.ledger)
    with pytest.raises(VerificationError, match="the bundle is for round 2, not round 3"):
        check_bundle_against_ledger(_fake_bundle(st, 2), run.ledger, round=3)
    run.close()


DRIVER = r"""
import sys, torch
sys.path.insert(0, {tests!r})
from test_protocol import make_run, small_net
from pathlib import Path
from zkauction.protocol.local import LocalRun
from zkauction.protocol.roles import net_outcome_function
db = Path(sys.argv[1])
if not db.exists():
    run = make_run(db.parent, rounds=int(sys.argv[2]), audits=2, name=db.name)
else:
    run = LocalRun(db, net_outcome_function(small_net()))
run.play(on_round=lambda r: print(r, flush=True))
"""


def test_killed_mid_run_the_ledger_is_consistent_and_the_run_resumes(tmp_path):
    T = 60
    db = tmp_path / "k.db"
    script = DRIVER.format(tests=os.path.dirname(__file__))
    proc = subprocess.Popen([sys.executable, "-c", script, str(db), str(T)], stdout=subprocess.PIPE, text=True)
    try:
        while True:
            line = proc.stdout.readline()
            assert line, "driver exited early"
            if int(line) >= 15:
                break
        time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with Ledger.open(db) as ledger:
        ledger.verify_chain()
        st = read_state(ledger)
        done = st.rounds_done
        assert 15 <= done < T and not st.anomalies
        assert sorted(st.outcomes) == list(range(1, done + 1))
        for r in range(1, done + 1):  # every committed round intact: its commitments are the logged ones
            coms = st.outcomes[r].data["commitments"]
            for i, c in st.commitments.get(r, {}).items():
                assert coms[i] == c
    with LocalRun(db, net_outcome_function(small_net())) as run:  # resume
        assert run.play() == T - done
        st = read_state(run.ledger)
        assert st.rounds_done == T and not st.anomalies
        # The audit in reveal mode publishes openings from the auctioneer's store, including rounds
        # from before the crash, and recomputes every audited outcome.
        report = run.audit()
        assert report.valid
        assert all(run.auctioneer.round_inputs(r) for r in range(1, T + 1))


@pytest.mark.parametrize("mode", ["reveal", "ttp"])
def test_outcome_computed_on_substituted_bids_fails_the_audit(tmp_path, mode):
    """The auctioneer swaps a bidder's commitment for one of its own making (and can open it): the
    openings are consistent with the outcome, but not with what the bidder logged."""
    from zkauction.zk.commitments import make_commitment

    with make_run(tmp_path, mode, rounds=3, audits=3) as run:
        bids = run.bids_of_round(1)
        present = [i for i in range(2) if any(bids[i])]
        for i in present:
            run.bidders[i].bid(1, bids[i], 12)
        i = present[0]
        fake_com, fake_open = make_commitment([0.9, 0.9], 12)
        fake_bids = [list(r) for r in bids]
        fake_bids[i] = list(fake_open.bids)
        salts = ["0" * 64] * 2
        coms = [absent_commitment(2, 12)] * 2
        parts = [0, 0]
        for j in present:
            o = run.bidders[j]._openings[1] if j != i else fake_open
            fake_bids[j], salts[j], parts[j] = list(o.bids), o.salt, 1
            coms[j] = read_state(run.ledger).commitments[1][j] if j != i else fake_com
            run.auctioneer.store.put(1, j, o)
        out = run.auctioneer.outcome(fake_bids, salts)
        run.ledger.append(OUTCOME, {"participants": parts, "commitments": coms, **out.to_dict()}, run.auctioneer.key, round=1)
        run.play()
        report = run.audit()
    assert report.failed == [1]
    reason = [v.reason for v in report.verdicts if not v.valid][0]
    assert reason == f"round 1: the outcome does not use bidder {i}'s logged commitment"


def test_a_bidder_that_commits_but_never_opens_is_absent(tmp_path):
    with make_run(tmp_path, rounds=2, audits=2) as run:
        run.bidders[1].bid(1, [0.5, 0.25], 12)  # committed, opening never sent
        opening = run.bidders[0].bid(1, [0.75, 0.5], 12)
        run.auctioneer.receive_opening(1, 0, opening)
        out = run.auctioneer.close_round(1)
        assert out.data["participants"] == [1, 0]
        assert read_state(run.ledger).rejections[1] == {1: "no opening was received"}
        run.play()
        assert run.audit().valid
