"""An eighteenth review (README, "An eighteenth review"), the protocol core: a malformed outcome in
an audited round crashed the verdict, junk answers to undrawn rounds reset the monitor's silence
clock, and a split view stayed `unconfirmed` even once the bidders compared checkpoints. Each test
played the attack against the code before the fix (a review helper wrote them) and the defence now.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

import pytest
from test_mutation_kills_service import URL, LogServer, served_client  # noqa: F401
from test_protocol import PARTICIPATION, SETTING, make_run

from zkauction.protocol.audit import Auditor, audit_draw, liveness_limit_s, public_checks
from zkauction.protocol.auctioneer import outcome_inputs
from zkauction.protocol.local import LocalRun
from zkauction.protocol.log import Ledger
from zkauction.protocol.rounds import play_round
from zkauction.protocol.state import COMMITMENTS_CLOSED, OUTCOME, PROOF, read_state, unique_key

ROOT = Path(__file__).resolve().parents[1]
CIRCUIT = ROOT / "circuits" / "ama_2x2_uniform"


def _open_round(run, r, profile, bidders):
    """Round ``r`` up to the openings: ``bidders`` commit ``profile``, the close, their openings."""
    a = run.auctioneer
    items = [b.commitment_item(r, profile[b.index]) for b in bidders]
    a.ledger.append_many([i for i in items if i is not None])
    a.close_commitments(r)
    for b in bidders:
        a.receive_opening(r, b.index, b.open(r))
    ann = a.announcement()
    accepted = dict(a._pending.get(r, {}))
    a.store.put_round(r, accepted)
    close = a.ledger.entries(kind=COMMITMENTS_CLOSED, round=r)[0]
    return ann, accepted, outcome_inputs(ann, close.data["commitments"], accepted)


# 1. A malformed outcome in an audited round crashes Auditor.audit (no verdict, no penalty) --------

def test_a_short_outcome_in_an_audited_reveal_round_is_invalid_not_a_crash(tmp_path):
    """Reveal mode. In round 2 the host logs an outcome whose commitments / participants lists stop
    after bidder 0 (bidder 1, its shill, is dropped from the lists, allocation and payment are the
    real ones). The honest bidder 0's own check passes ("ok": its commitment is used, it pays no
    more than its bids' worth); the public checks name the malformed outcome, but Auditor.audit()
    then checks the audited round anyway and check_round_openings indexes logged[1]: IndexError,
    for every caller of Auditor.audit (zkauction audit, LocalRun.verdict, the web verdict), with
    or without overdue=True. No verdict, no penalty due."""
    run = make_run(tmp_path, mode="reveal", rounds=2, audits=2)  # k = T: every round audited
    try:
        a = run.auctioneer
        play_round(a, run.bidders, 1, [[0.5, 0.6], [0.7, 0.2]])
        _, _, (bids, salts, coms, present) = _open_round(run, 2, [[0.5, 0.6], [0.7, 0.2]], run.bidders)
        out = a.outcome(bids, salts)
        a.ledger.append_many([(OUTCOME, {"participants": present[:1], "commitments": coms[:1], **out.to_dict()},
                               a.key, 2, unique_key(OUTCOME, 2))], checkpoint_key=a.key)
        assert run.bidders[0].check_outcome(2) == "ok"  # the honest bidder sees nothing wrong
        for b in run.bidders:
            b.reveal()
        a.close_reveals()
        for r in (1, 2):
            a.publish_openings(r)
        a.checkpoint()
        assert any("round 2: the outcome must list 2 commitments" in str(b) for b in public_checks(read_state(run.ledger)))
        for overdue in (False, True):
            report = run.auditor().audit(overdue=overdue)  # (before: IndexError)
            assert report.status == "invalid" and report.penalty_due > 0, report.to_dict()
    finally:
        run.close()


def test_an_outcome_without_commitments_in_an_audited_zk_round_is_invalid_not_a_crash(tmp_path):
    """zk mode (the shipped 2x2 circuit; nothing is proven). Round 2 is a round only the host's
    shill (bidder 1) bids in: the honest bidder 0 sits it out, so no honest check reads its outcome.
    The host logs that outcome without a "commitments" field and a junk proof entry for it (the
    reader takes any proof once the outcome is logged). Once round 2 is drawn (k = T here; a
    shill's withheld seed draws every round for any k), Auditor._check_zk calls
    st.commitments_of(2): KeyError escapes Auditor.audit()."""
    from zkauction.protocol.auctioneer import circuit_outcome_function
    from zkauction.zk.circuit import Circuit

    circuit = Circuit.load(CIRCUIT)
    run = LocalRun.create(tmp_path / "z.db", circuit_outcome_function(circuit), setting=SETTING,
                          participation=PARTICIPATION, input_scale=circuit.input_scale,
                          auction={"name": "ama", "manifest_sha256": circuit.manifest_sha256(),
                                   "vk_sha256": circuit.vk_sha256(), "output_scale": min(circuit.output_scales.values())},
                          rounds=2, audits=2, mode="zk", seed=2, circuit=circuit)
    try:
        a = run.auctioneer
        play_round(a, run.bidders, 1, [[0.5, 0.75], [0.25, 0.5]])
        shill = run.bidders[1]
        _, _, (bids, salts, coms, present) = _open_round(run, 2, [[0.0, 0.0], [0.5, 0.5]], [shill])
        out = a.outcome(bids, salts)
        a.ledger.append_many([(OUTCOME, {"participants": present, **out.to_dict()}, a.key, 2, unique_key(OUTCOME, 2))],
                             checkpoint_key=a.key)
        assert run.bidders[0].check_outcome(2) == "ok"  # (it did not bid in round 2)
        for b in run.bidders:
            b.reveal()
        a.close_reveals()
        junk = {"format": "zkauction-proof/1", "round_id": 2, "proof": {}, "manifest_sha256": circuit.manifest_sha256(),
                "vk_sha256": circuit.vk_sha256(), "commitments": coms, "outcome": out.to_dict(), "ezkl_version": "x"}
        a.ledger.append(PROOF, junk, a.key, round=2, unique=unique_key(PROOF, 2), checkpoint_key=a.key)
        assert audit_draw(read_state(run.ledger)).rounds == [1, 2]
        for overdue in (False, True):
            report = run.auditor().audit(overdue=overdue)  # (before: KeyError)
            assert report.status == "invalid" and report.penalty_due > 0, report.to_dict()
    finally:
        run.close()


# 2. Junk proofs of rounds nobody drew keep the monitor's silence clock running for ever --------

def _zk_timed_run(tmp_path, rounds, audits=1):
    from test_mutation_kills_service import DEFAULT_DEADLINES

    from zkauction.protocol.auctioneer import circuit_outcome_function
    from zkauction.zk.circuit import Circuit

    circuit = Circuit.load(CIRCUIT)
    run = LocalRun.create(tmp_path / "m.db", circuit_outcome_function(circuit), setting=SETTING,
                          participation=PARTICIPATION, input_scale=circuit.input_scale,
                          auction={"name": "ama", "manifest_sha256": circuit.manifest_sha256(),
                                   "vk_sha256": circuit.vk_sha256(), "output_scale": min(circuit.output_scales.values())},
                          rounds=rounds, audits=audits, mode="zk", seed=2, circuit=circuit, deadlines=DEFAULT_DEADLINES)
    return run, circuit


def test_junk_proofs_of_undrawn_rounds_do_not_reset_the_monitors_silence_clock(tmp_path):
    """zk mode, T = 6, k = 1. Every bidder revealed, the reveal phase is closed, the draw is known
    (round d) and the host does not answer it (its lie is there, or it just stalls). Just before the
    monitor's limit it logs a "proof" of a round the audit did NOT draw: a junk entry nobody ever
    verifies (the reader takes any proof of a round with an outcome, Auditor checks only drawn
    rounds). Monitor.progress() counts len(st.answers), so the clock starts again; doing it for
    each of the T - k undrawn rounds keeps the monitor at `pending` for (T - k + 1) x the limit
    instead of one limit (T = 10^4 rounds at the default deadlines: about 89 days; at the most a
    bidder accepts, a day per deadline: years). Secure: only answers of the drawn rounds move an
    audit whose draw is known."""
    from test_mutation_kills_service import monitor_of

    from zkauction.service.monitor import MonitorAlert

    run, circuit = _zk_timed_run(tmp_path, rounds=6)
    try:
        run.play()
        for b in run.bidders:
            b.reveal()
        run.auctioneer.close_reveals()
        run.auctioneer.checkpoint()
        st = read_state(run.ledger)
        drawn = audit_draw(st).rounds
        undrawn = [r for r in range(1, 7) if r not in drawn]
        mon = monitor_of(LogServer(run.ledger), circuit=circuit)
        assert mon.poll() is False  # waiting for the drawn round's proof
        limit = liveness_limit_s(st.announcement)
        mon.check_live(now=0.0)
        a = run.auctioneer
        u = undrawn[0]
        junk = {"format": "zkauction-proof/1", "round_id": u, "proof": {}, "manifest_sha256": "0" * 64,
                "vk_sha256": "0" * 64, "commitments": [], "outcome": {"allocation": [], "payment": []}, "ezkl_version": "x"}
        a.ledger.append(PROOF, junk, a.key, round=u, unique=unique_key(PROOF, u), checkpoint_key=a.key)
        assert mon.poll() is False
        mon.check_live(now=limit - 1)  # (the junk entry is seen in time)
        assert read_state(run.ledger).breaches == []  # the junk entry is no breach
        with pytest.raises(MonitorAlert, match="the auctioneer is silent"):
            mon.check_live(now=limit + 1)  # the drawn round is as unanswered as at 0.0
    finally:
        run.close()


# 3. The split view stays `unconfirmed` even once the bidders compare checkpoints -----------------

def split_view(tmp_path, T=4):
    """The sixteenth review's split view: two forks of one log, each signed by the auctioneer, bidder i
    shown fork i (the other never bids nor reveals); returns (forks, kept checkpoints, outcome fn, dbs)."""
    from test_review_attacks_8 import second_price_with_reserve

    from zkauction.protocol.announcement import DEFAULT_DEADLINES
    from zkauction.protocol.auctioneer import Auctioneer, OpeningStore
    from zkauction.protocol.bidder import Bidder
    from zkauction.protocol.local import private_dir
    from zkauction.protocol.log import SigningKey

    fn = second_price_with_reserve
    run = make_run(tmp_path, rounds=T, audits=1, deadlines=DEFAULT_DEADLINES)
    d, src = private_dir(run.db), run.db
    run.close()
    rng = random.Random(1)
    bids = {r: [[round(rng.uniform(0.3, 1), 3) for _ in range(2)] for _ in range(2)] for r in range(1, T + 1)}
    akey = SigningKey.load(d / "auctioneer.pem")
    forks, kept, dbs = [], [], []
    for i in (0, 1):
        db = tmp_path / f"fork{i}.db"
        s, t = sqlite3.connect(src), sqlite3.connect(db)
        s.backup(t), s.close(), t.close()
        led = Ledger.open(db)
        a = Auctioneer(akey, led, fn, store=OpeningStore())
        b = Bidder(i, SigningKey.load(d / f"bidder_{i}.pem"), led, view_path=tmp_path / f"b{i}.json",
                   secret=bytes.fromhex((d / f"bidder_{i}.secret").read_text().strip()))
        for r in range(1, T + 1):
            play_round(a, [b], r, [bids[r][j] if j == i else [0.0, 0.0] for j in range(2)])
        b.reveal()
        a.close_reveals()
        for r in audit_draw(read_state(led)).rounds:
            a.publish_openings(r)
        a.checkpoint()
        b.sync()
        forks.append(led)
        kept.append(b.view.kept)
        dbs.append(db)
    return forks, kept, fn, dbs


def test_a_split_view_is_invalid_once_a_verifier_holds_both_forks_signed_checkpoints(tmp_path, served_client):
    """The sixteenth review's split view (each honest bidder shown a fork in which the other never
    bid nor revealed; every item sold in both forks: 6.0 against 5.4 for one honest log) is now
    `unconfirmed` in each fork, "no penalty on it alone; compare checkpoints with them". Compare
    them: bidder 1 hands its kept checkpoint (signed by the auctioneer, same log id) to a verifier
    of fork 0. The two signed checkpoints are a self-contained proof that the auctioneer signed two
    histories of one log; yet no verifier turns it into a verdict: Auditor.audit() has no way to
    take it and says `unconfirmed`, penalty 0; the monitor given it in --state stops with
    "fork: ..." and no verdict (report.verdict None); `log verify --since` prints FAIL consistency,
    no penalty. So the double sale is never `invalid`. Secure: equivocation (two auctioneer-signed
    checkpoints of one log id that are not one history) is `invalid`, the penalty due."""
    from test_mutation_kills_service import monitor_of

    from zkauction.protocol.local import private_dir
    from zkauction.protocol.log import SigningKey
    from zkauction.service.monitor import MonitorAlert

    T = 4
    forks, kept, fn, _ = split_view(tmp_path, T)
    d = private_dir(tmp_path / "a.db")
    try:
        assert kept[0].log_id == kept[1].log_id  # one log id, two signed histories
        assert Auditor(forks[0], outcome=fn).audit().status == "unconfirmed"
        # bidder 1 compares checkpoints: its kept one goes into the state of a monitor of fork 0
        state = tmp_path / "monitor-state"
        state.mkdir(mode=0o700)
        (state / "monitor.checkpoint.json").write_text(kept[1].to_json())
        mon = monitor_of(LogServer(forks[0]), state=state, outcome=fn)
        with pytest.raises(MonitorAlert) as alert:
            mon.follow(interval=0.0, timeout=5)
        assert "fork" in str(alert.value)
        verdict = mon.report.verdict  # (before: None, a fork named, never a verdict)
        assert verdict is not None and verdict["status"] == "invalid" and verdict["penalty_due"] > 0, (str(alert.value), verdict)
        assert any("two histories of one log" in b for b in verdict["breaches"]), verdict
        # any verifier holding both: the Auditor given the other fork's checkpoint, and `log verify --since`
        report = Auditor(forks[0], outcome=fn, checkpoints=[kept[1]]).audit()
        assert report.status == "invalid" and report.penalty_due > 0, report.to_dict()
        assert Auditor(forks[0], outcome=fn, checkpoints=[kept[0]]).audit().status == "unconfirmed"  # its own: no news
        from zkauction.cli.log import verify_log

        got = verify_log(forks[0], kept[1])
        assert not got["ok"] and "two histories of one log" in got["failure"] and got["penalty_due"] > 0, got
        assert verify_log(forks[0], kept[0])["ok"]
        # a checkpoint of another log, or not signed by this log's auctioneer, is no evidence: said
        from zkauction.protocol.checkpoint import CheckpointError
        from zkauction.protocol.log import SignedCheckpoint

        forged = SignedCheckpoint.sign(SigningKey.generate(), kept[1].log_id, kept[1].size, kept[1].root)
        with pytest.raises(CheckpointError):
            Auditor(forks[0], outcome=fn, checkpoints=[forged]).audit()
        # bidder 1's own client, served fork 0 with the checkpoint it kept of fork 1: the penalty, not just "fork"
        from zkauction.service.client import AuditFailed, BidderClient

        s1 = tmp_path / "s1"
        s1.mkdir(mode=0o700)
        for src_name, dest_name in (("bidder_1.pem", "key.pem"), ("bidder_1.secret", "secret")):
            shutil.copy(d / src_name, s1 / dest_name)
        (s1 / "checkpoint.json").write_text(kept[1].to_json())
        served_client.server = LogServer(forks[0], status={"round": T + 1, "phase": 2})
        with pytest.raises(AuditFailed, match="signed the checkpoint this bidder kept .* another history .* penalty is due"):
            BidderClient(URL, s1, lambda r: None, retry_for=1).run()  # (before: ForkError, "fork", no verdict)
    finally:
        for led in forks:
            led.close()
