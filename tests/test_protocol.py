"""The repeated-auction protocol (Algorithm 1) over the transparency log, with a plain auction net
as the announced auction (reveal and trusted-third-party modes; zk mode runs in tests/test_demo.py).
The cheating auctioneer's attacks are in tests/test_attacks.py."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from zkauction.learn.nets import RegretNet
from zkauction.learn.setting import AuctionSetting, ParticipationModel
from zkauction.protocol.audit import Auditor, audit_draw, check_round, draw_digest, select_audit_rounds
from zkauction.protocol.bundle_log import check_bundle_against_ledger
from zkauction.protocol.credibility import round_gain_bound
from zkauction.protocol.local import LocalRun
from zkauction.protocol.log import Ledger, SigningKey
from zkauction.protocol.auctioneer import net_outcome_function
from zkauction.protocol.state import (
    BID_COMMITMENT,
    OUTCOME,
    REJECTION_REASONS,
    AuditError,
    ProtocolError,
    absent_commitment,
    read_state,
)
from zkauction.zk.bundle import ProofBundle, VerificationError
from zkauction.zk.circuit import Outcome
from zkauction.zk.commitments import CommitmentError, Opening

SETTING = AuctionSetting(2, 2)
PARTICIPATION = ParticipationModel.independent([0.7, 0.9])


def small_net():
    torch.manual_seed(0)
    net = RegretNet(SETTING, PARTICIPATION, depth=2, width=16)
    net.eval()
    return net


def within_bids(fn, share=0.5):
    """``fn``'s outcome with every payment moved ``share`` of the way up to the allocation's worth at
    the bidder's own bids: a wrong outcome inside every public bound that no winner's own check sees
    (it stays individually rational); only an audit can."""

    def f(bids, salts):
        out = fn(bids, salts)
        worth = [sum(a * b for a, b in zip(al, bs)) for al, bs in zip(out.allocation, bids)]
        return Outcome(out.allocation, tuple(p + share * max(0.0, w - p) for p, w in zip(out.payment, worth)))

    return f


def make_run(tmp_path, mode="reveal", rounds=12, audits=2, name="a.db", auction=None, **kw):
    fn = net_outcome_function(small_net())
    return LocalRun.create(
        tmp_path / name, fn, setting=SETTING, participation=PARTICIPATION, input_scale=12,
        auction=auction or {"name": "test-net"}, rounds=rounds, audits=audits, mode=mode, seed=7, **kw,
    )


def zk_run(tmp_path, rounds, name="z.db"):
    """A zk-mode run of the shipped 2x2 affine maximizer circuit (for tests that prove a round)."""
    from pathlib import Path

    from zkauction.protocol.auctioneer import circuit_outcome_function
    from zkauction.zk.circuit import Circuit

    circuit = Circuit.load(Path(__file__).resolve().parents[1] / "circuits" / "ama_2x2_uniform")
    run = LocalRun.create(tmp_path / name, circuit_outcome_function(circuit), setting=SETTING,
                          participation=PARTICIPATION, input_scale=circuit.input_scale,
                          auction={"name": "ama", "manifest_sha256": circuit.manifest_sha256(), "vk_sha256": circuit.vk_sha256(),
                                   "output_scale": min(circuit.output_scales.values())},
                          rounds=rounds, audits=1, mode="zk", seed=2, circuit=circuit)
    return run, circuit


def present_bidders(run, r):
    return [i for i in range(2) if any(run.bids_of_round(r)[i])]


@pytest.mark.parametrize("mode", ["reveal", "ttp"])
def test_honest_run_passes_the_audit(tmp_path, mode):
    with make_run(tmp_path, mode) as run:
        assert run.play() == 12
        report = run.audit()
        assert report.status == "valid" and report.penalty_due == 0.0, report.to_dict()
        assert len(report.rounds) == 2 and all(v.valid for v in report.verdicts)
        st = read_state(run.ledger)
        assert not st.breaches and not st.notes
        # zk secrecy of the log: no bid appears outside the audited rounds' openings
        for r in range(1, 13):
            for e in run.ledger.entries(round=r, kind=BID_COMMITMENT):
                assert set(e.data) == {"bidder", "commitment"}
        # every bidder holds a checkpoint of the whole log (minus the audit's answers) and co-signed it
        for b in run.bidders:
            assert b.view.kept.size >= st.reveals[b.index].data["checkpoint"]["size"]
            assert st.reveals[b.index].data["checkpoint"]["size"] > st.outcomes[12].seq


def test_dishonest_payment_fails_that_rounds_audit(tmp_path):
    # k = T: every round is audited, so the lie in round 3 is certainly looked at.
    with make_run(tmp_path, rounds=6, audits=6) as run:
        honest = run.auctioneer.outcome

        def dishonest(bids, salts):
            out = honest(bids, salts)
            if run.ledger.entries(kind=OUTCOME, round=2) and not run.ledger.entries(kind=OUTCOME, round=3):
                out = Outcome(out.allocation, tuple(min(p + 0.001, 0.5) if a[0] > 0 else p
                                                    for p, a in zip(out.payment, out.allocation)))
            return out

        run.auctioneer.outcome = dishonest
        run.play()
        report = run.audit()
        assert run.ledger.verify_chain().n_entries > 6  # the lie is in the content, not in the chain
    assert report.status == "invalid" and report.failed == [3]
    bad = [v for v in report.verdicts if not v.valid][0]
    assert bad.reason.startswith("round 3:") and "payment" in bad.reason
    # (T + 1) x the most a round can take within the public checks: aRgt* = 2 and float rounding
    assert report.penalty_due == pytest.approx(7 * 2.0, rel=1e-5) == 7 * round_gain_bound(SETTING.support, None)


def test_bad_opening_is_rejected_with_a_reason_code_and_the_bidder_is_absent(tmp_path):
    with make_run(tmp_path, rounds=3, audits=3) as run:
        present = present_bidders(run, 1)
        assert present, "seed 7 should give a present bidder in round 1"
        i = present[0]
        bids = run.bids_of_round(1)
        for j in present:
            run.bidders[j].commit(1, bids[j])
        run.auctioneer.close_commitments(1)
        signed = run.bidders[i].open(1)
        opening = signed.opening
        with pytest.raises(CommitmentError, match="not signed by bidder"):  # unsigned: ignored, nothing logged
            run.auctioneer.receive_opening(1, i, dataclasses.replace(signed, signature="00" * 64))
        # a misbehaving bidder signs and sends a bad opening
        forged = run.bidders[i].sign_opening(1, Opening(tuple(min(1.0, b + 0.25) for b in opening.bids), opening.salt))
        with pytest.raises(CommitmentError, match=f"round 1: bidder {i}'s opening is rejected \\(opening_mismatch\\)"):
            run.auctioneer.receive_opening(1, i, forged)
        with pytest.raises(CommitmentError, match="no open commitment"):  # the rejection stands
            run.auctioneer.receive_opening(1, i, signed)
        for j in present[1:]:
            run.auctioneer.receive_opening(1, j, run.bidders[j].open(1))
        out = run.auctioneer.close_round(1)
        st = read_state(run.ledger)
        assert st.rejections[1][i] == "opening_mismatch" and "opening_mismatch" in REJECTION_REASONS
        assert out.data["participants"][i] == 0
        assert out.data["commitments"][i] == absent_commitment(2, 12)
        assert out.data["payment"][i] == 0.0
        # the bidder then publishes its good opening to frame the auctioneer: the logged evidence
        # (its own signed bad opening) justifies the rejection
        run.bidders[i].dispute(1)
        st = read_state(run.ledger)
        assert st.rejection_entries[1][i].data["evidence"]["signature"] == forged.signature
        assert not check_round(st, 1)
        run.play()
        assert run.audit().valid


def test_bids_outside_the_support_are_rejected(tmp_path):
    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.bidders[0].commit(1, [1.5, 0.5])
        run.auctioneer.close_commitments(1)
        with pytest.raises(CommitmentError, match="outside_support"):
            run.auctioneer.receive_opening(1, 0, run.bidders[0].open(1))
        with pytest.raises(CommitmentError, match="no open commitment"):
            run.auctioneer.receive_opening(1, 1, run.bidders[0].open(1))
        run.auctioneer.close_round(1)
        st = read_state(run.ledger)
        assert st.rejections[1] == {0: "outside_support"} and st.outcomes[1].data["participants"] == [0, 0]
        # a dispute with that opening does not show the rejection false: it was outside the support
        run.bidders[0].dispute(1)
        assert not check_round(read_state(run.ledger), 1)


def test_a_bidder_that_commits_but_never_opens_voids_the_round(tmp_path):
    with make_run(tmp_path, rounds=2, audits=2) as run:
        run.bidders[1].commit(1, [0.5, 0.25])  # committed, opening never sent
        run.bidders[0].commit(1, [0.75, 0.5])
        run.auctioneer.close_commitments(1)
        run.auctioneer.receive_opening(1, 0, run.bidders[0].open(1))
        with pytest.raises(ProtocolError, match=r"bidder\(s\) \[1\] committed but neither opened"):
            run.auctioneer.close_round(1)  # the honest auctioneer does not exclude on its own word
        run.bidders[1].abstain(1)
        out = run.auctioneer.close_round(1)
        assert out.data["participants"] == [0, 0] and out.data["payment"] == [0.0, 0.0]  # nothing sold
        assert read_state(run.ledger).rejections[1] == {1: "no_opening"}
        assert run.bidders[0].check_outcome(1) == "void"
        run.play()
        assert run.audit().valid


def test_openings_wait_for_the_checkpointed_close(tmp_path):
    """Sealed commit phase: the auctioneer refuses openings before the close is checkpointed, and a
    bidder does not release its opening before a checkpoint it accepted covers the close."""
    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.bidders[0].commit(1, [0.5, 0.5])
        with pytest.raises(ProtocolError, match="not closed in a checkpoint bidder 0 holds"):
            run.bidders[0].open(1)
        opening = run.bidders[0]._openings[1]
        with pytest.raises(ProtocolError, match="openings are refused until the round's commitments are closed"):
            run.auctioneer.receive_opening(1, 0, opening)
        run.auctioneer.close_commitments(1)
        run.auctioneer.receive_opening(1, 0, run.bidders[0].open(1))


def test_audit_draw_waits_for_the_reveal_phase_and_depends_on_every_seed(tmp_path):
    with make_run(tmp_path, rounds=40, audits=3) as run:
        with pytest.raises(AuditError, match="0 of 40 rounds played"):
            audit_draw(read_state(run.ledger))
        with pytest.raises(ProtocolError, match="not revealing the audit seed"):
            run.bidders[0].reveal()
        run.play()
        run.bidders[1].reveal()
        with pytest.raises(AuditError, match="the reveal phase is open"):
            audit_draw(read_state(run.ledger))
        run.bidders[0].reveal()
        run.auctioneer.close_reveals()
        st = read_state(run.ledger)
        draw = audit_draw(st)
        seeds = {i: run.bidders[i].seed for i in range(2)}
        assert draw.rounds == select_audit_rounds(draw_digest(st.log_id, seeds), 40, 3)
        assert len(set(draw.rounds)) == 3 and draw.revealed == [0, 1] and draw.fallback is None

    # Changing any single seed (or the log id) changes the draw.
    seeds = {0: "11" * 32, 1: "22" * 32, 2: "33" * 32}
    log_id = "ab" * 32
    base = select_audit_rounds(draw_digest(log_id, seeds), 10_000, 3)
    for i in seeds:
        for byte in range(0, 32, 7):
            changed = dict(seeds)
            b = bytearray.fromhex(changed[i])
            b[byte] ^= 1
            changed[i] = b.hex()
            assert select_audit_rounds(draw_digest(log_id, changed), 10_000, 3) != base
    assert select_audit_rounds(draw_digest("ac" * 32, seeds), 10_000, 3) != base


def test_selection_is_uniform_without_replacement():
    counts = [0] * 10
    for s in range(3000):
        for r in select_audit_rounds(s.to_bytes(4, "big"), 10, 2):
            counts[r - 1] += 1
    assert sum(counts) == 6000
    assert all(abs(c - 600) < 100 for c in counts), counts


@pytest.mark.parametrize("withhold", [[1], [0, 1]])
def test_a_withheld_seed_audits_every_round(tmp_path, withhold):
    with make_run(tmp_path, rounds=5, audits=1) as run:
        run.play()
        report = run.audit(withhold=withhold)
        # every round checked and sound, but not valid: the bidder(s) withholding never co-signed this log
        assert report.rounds == [1, 2, 3, 4, 5] and report.status == "unconfirmed" and report.penalty_due == 0
        assert report.draw.withheld == withhold and "every round is audited" in report.draw.fallback
        # a reveal after the phase closed does not count (and is not the auctioneer's breach)
        if withhold == [1]:
            run.ledger.append("seed_reveal", {"bidder": 1, "seed": run.bidders[1].seed,
                                              "checkpoint": {"size": len(run.ledger), "root": run.ledger.root()}},
                              run.bidders[1].key)
            st = read_state(run.ledger)
            assert 1 not in st.reveals and any("after the reveal phase closed" in n for n in st.notes)
            assert not st.breaches


def test_a_strangers_entries_are_the_hosts_breach(tmp_path):
    """The auctioneer hosts the log: an entry signed by nobody in the announcement should never have
    been accepted. A bidder's own rule-breaking entries only do not count."""
    with make_run(tmp_path, rounds=3, audits=1) as run:
        run.play()
        stranger = SigningKey.generate()
        run.ledger.append(BID_COMMITMENT, {"bidder": 0, "commitment": "00" * 32}, run.bidders[1].key, round=3)
        st = read_state(run.ledger)
        assert not st.breaches and any("not signed by that bidder's key" in n for n in st.notes)
        run.ledger.append(OUTCOME, {"participants": [0, 0]}, stranger, round=1)
        st = read_state(run.ledger)
        assert any("signed by unknown signer" in b.reason for b in st.breaches)


def test_a_second_outcome_for_a_round_is_a_breach(tmp_path):
    with make_run(tmp_path, rounds=3, audits=1) as run:
        run.play()
        first = run.ledger.entries(kind=OUTCOME, round=2)[0].data
        first["payment"] = [0.0, 0.0]
        run.ledger.append(OUTCOME, first, run.auctioneer.key, round=2)  # bypasses the uniqueness key
        run.auctioneer.checkpoint()
        rep = run.audit()
        assert rep.status == "invalid" and rep.penalty_due > 0
        assert any("a second outcome for round 2" in str(b) for b in rep.breaches)


def _fake_bundle(st, r, **change):
    ann = st.announcement
    b = ProofBundle(
        proof={}, manifest_sha256=ann.auction["manifest_sha256"], vk_sha256=ann.auction["vk_sha256"],
        commitments=tuple(st.commitments_of(r)), outcome=st.outcome_of(r), ezkl_version="x", round_id=r,
    )
    return dataclasses.replace(b, **change)


def test_check_bundle_against_ledger(tmp_path):
    fn = net_outcome_function(small_net())
    run = LocalRun.create(tmp_path / "b.db", fn, setting=SETTING, participation=PARTICIPATION, input_scale=12,
                          auction={"name": "c", "manifest_sha256": "aa" * 32, "vk_sha256": "bb" * 32},
                          rounds=3, audits=1, mode="zk", seed=1)
    run.play()
    st = read_state(run.ledger)
    assert check_bundle_against_ledger(_fake_bundle(st, 2), run.ledger) == 2
    out = st.outcome_of(2)
    lie = Outcome(out.allocation, (out.payment[0] + 2**-12,) + out.payment[1:])
    with pytest.raises(VerificationError, match="round 2: the proven outcome is not the published one") as err:
        check_bundle_against_ledger(_fake_bundle(st, 2, outcome=lie), run.ledger)
    assert err.value.check == "ledger"
    with pytest.raises(VerificationError, match="round 2: the bundle's commitments are not the ones"):
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
from zkauction.protocol.auctioneer import net_outcome_function
db = Path(sys.argv[1])
if not db.exists():
    run = make_run(db.parent, rounds=int(sys.argv[2]), audits=2, name=db.name)
else:
    run = LocalRun(db, net_outcome_function(small_net()))
run.play(on_round=lambda r: print(r, flush=True))
"""


def test_killed_mid_run_the_log_is_consistent_and_the_run_resumes(tmp_path):
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
    with Ledger.open(db, writer=False) as ledger:
        ledger.verify_chain()
        st = read_state(ledger)
        done = st.rounds_done
        assert 15 <= done < T and not st.breaches
        assert sorted(st.outcomes) == list(range(1, done + 1))
        for r in range(1, done + 1):  # every committed round intact: its commitments are the logged ones
            assert not check_round(st, r)
    with LocalRun(db, net_outcome_function(small_net())) as run:  # resume: every party's state is on its side
        assert run.play() == T - done
        st = read_state(run.ledger)
        assert st.rounds_done == T and not st.breaches
        report = run.audit()
        assert report.valid, report.to_dict()
        assert all(run.auctioneer.round_inputs(r) for r in range(1, T + 1))


def test_the_verdict_is_computed_by_anyone_from_the_log(tmp_path):
    """No verdict is logged: a fresh reader of the file (no keys) reaches the same verdict."""
    with make_run(tmp_path, rounds=4, audits=2) as run:
        run.play()
        mine = run.audit()
    with Ledger.open(tmp_path / "a.db", writer=False) as ledger:
        theirs = Auditor(ledger, outcome=net_outcome_function(small_net())).audit()
    assert theirs.to_dict() == mine.to_dict() and theirs.valid
