"""A sixteenth review (README, "A sixteenth review") played the cheating auctioneer once more and got
around the audit twice:

- **A split view that censors each honest bidder in the other's fork.** The host copies its log
  after the registrations; fork A shows bidder 0 a log in which bidder 1 never bids and never
  reveals its seed, fork B the mirror image. In each fork a seed is missing, so every round is
  audited, and the host answers every round honestly for that fork: each fork was ``valid``, no
  co-signature crossed forks, and every item was sold to both bidders. Now a log is valid only
  when every registered bidder co-signed it (revealed its seed with the checkpoint it accepted):
  each fork is ``unconfirmed``, naming the bidder to compare checkpoints with.
- **Silence once the draw is known.** The host reads the draw off the revealed seeds before it
  must close the reveal phase; when its lie is drawn it never answers, and the verdict stayed
  ``pending`` with no penalty for ever (as it did for a host that stops before round T). Now the
  announcement's deadlines bind: a verifier whose own clock says the run has stood still longer
  than all of them together (``liveness_limit_s``) reaches ``invalid``, the penalty due: the
  Auditor (``overdue=True``), the monitor and the bidder client.

The same review found that the bidder client and the monitor verified proofs without labelling the
SRS (``--trusted-srs``, the label in their reports: ``tests/test_service.py``).
"""

from __future__ import annotations

import random
import shutil
import sqlite3

import pytest
from test_mutation_kills_service import URL, LogServer, bidder_state, monitor_of, served_client  # noqa: F401
from test_protocol import PARTICIPATION, SETTING, make_run, small_net, within_bids

from zkauction.protocol.audit import Auditor, audit_draw, liveness_limit_s, public_checks
from zkauction.protocol.auctioneer import Auctioneer, OpeningStore, net_outcome_function
from zkauction.protocol.bidder import Bidder
from zkauction.protocol.local import LocalRun, private_dir
from zkauction.protocol.log import Ledger, SigningKey
from zkauction.protocol.rounds import play_round
from zkauction.protocol.state import OUTCOME, read_state
from zkauction.service.client import AuditFailed, BidderClient
from zkauction.service.monitor import MonitorAlert
from zkauction.zk.circuit import Outcome

DEADLINES = {"commit_s": 1.0, "open_s": 1.0, "dispute_s": 1.0, "reveal_s": 1.0, "answer_s": 1.0}


def second_price_with_reserve(bs, salts, reserve=0.25):
    alloc, pay = [[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0]
    for j in range(2):
        w, s = sorted(range(2), key=lambda i: -float(bs[i][j]))
        if float(bs[w][j]) >= reserve:
            alloc[w][j] = 1.0
            pay[w] += max(reserve, float(bs[s][j]))
    return Outcome(tuple(map(tuple, alloc)), tuple(pay))


def test_a_split_view_that_censors_each_bidder_in_the_others_fork_is_never_valid(tmp_path):
    T, fn = 4, second_price_with_reserve
    run = make_run(tmp_path, rounds=T, audits=1)
    d, src = private_dir(run.db), run.db
    run.close()
    rng = random.Random(1)
    bids = {r: [[round(rng.uniform(0.3, 1), 3) for _ in range(2)] for _ in range(2)] for r in range(1, T + 1)}
    akey = SigningKey.load(d / "auctioneer.pem")
    for i in (0, 1):
        db = tmp_path / f"fork{i}.db"
        s, t = sqlite3.connect(src), sqlite3.connect(db)
        s.backup(t), s.close(), t.close()
        led = Ledger.open(db)
        a = Auctioneer(akey, led, fn, store=OpeningStore())
        b = Bidder(i, SigningKey.load(d / f"bidder_{i}.pem"), led, view_path=tmp_path / f"b{i}.json",
                   secret=bytes.fromhex((d / f"bidder_{i}.secret").read_text().strip()))
        for r in range(1, T + 1):  # the other honest bidder: censored in this fork
            play_round(a, [b], r, [bids[r][j] if j == i else [0.0, 0.0] for j in range(2)])
        b.reveal()
        a.close_reveals()
        for r in audit_draw(read_state(led)).rounds:
            a.publish_openings(r)
        report = Auditor(led, outcome=fn).audit()
        # every round is sound for this fork, so no penalty on it alone; but not valid: the other
        # bidder never co-signed it, and the verdict says whom to compare checkpoints with
        assert report.status == "unconfirmed" and not report.valid and report.penalty_due == 0, report.to_dict()
        assert report.rounds == list(range(1, T + 1)) and report.draw.withheld == [1 - i]
        assert f"bidder(s) {1 - i} revealed no seed, so never co-signed this log" in report.reason
        assert read_state(led).outcome_of(1).allocation[i] == (1.0, 1.0)  # (the item, sold in both forks)
        led.close()


def test_valid_needs_every_co_signature_and_a_lie_is_still_invalid_when_a_seed_is_missing(tmp_path):
    with make_run(tmp_path / "a", rounds=3, audits=1) as run:
        run.play()
        assert run.audit().status == "valid"  # (every bidder revealed: every one co-signed this log)
    with make_run(tmp_path / "b", rounds=3, audits=1) as run:
        honest, lie = run.auctioneer.outcome, within_bids(run.auctioneer.outcome, share=1.0)
        run.auctioneer.outcome = lambda b, s: (lie if len(run.ledger.entries(kind=OUTCOME)) == 1 else honest)(b, s)
        run.play()
        report = run.audit(withhold=[1])  # every round audited: the lie in round 2 is found
        assert report.status == "invalid" and report.failed == [2] and report.penalty_due > 0, report.to_dict()


def test_a_host_that_stays_silent_after_the_draw_or_stops_before_round_T_owes_the_penalty(tmp_path):
    with make_run(tmp_path / "a", rounds=4, audits=1) as run:
        run.play()
        for b in run.bidders:
            b.reveal()  # the host now knows the draw; whatever it is, it never closes the reveal phase
        assert run.auditor().audit().status == "pending"  # (by the log alone: nothing is late)
        report = run.auditor().audit(overdue=True)  # the verifier's clock: the deadlines have passed
        assert report.status == "invalid" and report.penalty_due == read_state(run.ledger).announcement.penalty
        assert "silent past the announced deadlines" in report.reason and "reveal phase is open" in report.reason
        assert "no answer within the announced deadlines" in str(report.breaches[0])
    with make_run(tmp_path / "b", rounds=4, audits=1) as run:
        for r in (1, 2):  # then it stops: round T never comes, nor does the audit
            play_round(run.auctioneer, run.bidders, r, run.bids_of_round(r))
        report = run.auditor().audit(overdue=True)
        assert report.status == "invalid" and "2 of 4 rounds played" in report.reason, report.to_dict()
    with make_run(tmp_path / "c", rounds=2, audits=1) as run:  # answered in time: overdue changes nothing
        run.play()
        run.answer_audit(run.reveal().rounds)
        assert run.auditor().audit(overdue=True).status == "valid"


def test_the_liveness_limit_fails_closed_and_bidders_refuse_deadlines_that_would_switch_it_off():
    """A seventeenth review: liveness_limit_s failed open (None for a string, inf on overflow, any
    size, unknown names added), so a host could switch every silence clock off in its own
    announcement. Now malformed values count as the defaults and huge ones as a day, and bidders
    refuse such announcements (deadlines_problem)."""
    from zkauction.protocol.announcement import DEFAULT_DEADLINES, MAX_DEADLINE_S, deadlines_problem
    from zkauction.protocol.audit import LIVENESS_GRACE_S
    from zkauction.protocol.state import Announcement

    ann = Announcement.__new__(Announcement)
    default = sum(DEFAULT_DEADLINES.values()) + LIVENESS_GRACE_S
    for deadlines, limit in ((DEADLINES, 5.0 + LIVENESS_GRACE_S), ({}, default), ({"commit_s": "x"}, default),
                             ({"commit_s": float("inf")}, default), ({"commit_s": -1.0}, default), ([1, 2], default),
                             (None, default), ({"commit_s": 1e308, "answer_s": 1e308}, default - 610 + 2 * MAX_DEADLINE_S),
                             ({"note": 10.0**12}, default)):
        object.__setattr__(ann, "deadlines", deadlines)
        assert liveness_limit_s(ann) == limit, deadlines
    object.__setattr__(ann, "deadlines", DEADLINES)
    assert liveness_limit_s(ann, answers=5) == 9.0 + LIVENESS_GRACE_S  # answer_s per audited round
    assert deadlines_problem(DEFAULT_DEADLINES) is None and deadlines_problem(DEADLINES) is None
    for bad, why in (([1], "must be an object"), ({"note": 1.0}, "none of"), ({"commit_s": "x"}, "number of seconds"),
                     ({"answer_s": 1e12}, "number of seconds"), ({"open_s": 0}, "number of seconds"),
                     ({"open_s": True}, "number of seconds")):
        assert why in deadlines_problem(bad), bad


def timed_run(tmp_path, rounds=3):
    fn = net_outcome_function(small_net())
    return LocalRun.create(tmp_path / "t.db", fn, setting=SETTING, participation=PARTICIPATION, input_scale=12,
                           auction={"name": "test-net"}, rounds=rounds, audits=1, mode="reveal", seed=7,
                           deadlines=DEADLINES)


def test_the_monitor_names_a_run_that_stands_still_past_the_announced_deadlines(tmp_path):
    run = timed_run(tmp_path)
    try:
        run.play()
        for b in run.bidders:
            b.reveal()
        run.auctioneer.checkpoint()
        mon = monitor_of(LogServer(run.ledger), outcome=run.outcome)
        assert mon.poll() is False  # the reveal phase is open: no verdict yet
        limit = liveness_limit_s(read_state(run.ledger).announcement)
        mon.check_live(now=1000.0)
        mon.check_live(now=1000.0 + limit - 1)  # within the deadlines: nothing said
        with pytest.raises(MonitorAlert, match="the auctioneer is silent: the run has not moved for"):
            mon.check_live(now=1000.0 + limit + 1)
        assert mon.report.verdict["status"] == "invalid" and mon.report.verdict["penalty_due"] > 0
        # a run that moves is not silent: each step starts the clock again
        run.auctioneer.close_reveals()
        run.auctioneer.checkpoint()
        mon = monitor_of(LogServer(run.ledger), outcome=run.outcome)
        mon.poll()
        mon.check_live(now=2000.0)
        run.answer_audit(audit_draw(read_state(run.ledger)).rounds)
        run.auctioneer.checkpoint()
        assert mon.poll() is True  # the verdict, valid
        mon.check_live(now=2000.0 + limit + 1)
    finally:
        run.close()


def test_the_monitor_does_not_time_a_run_whose_bidders_have_not_all_registered(tmp_path):
    run = timed_run(tmp_path)
    try:
        mon = monitor_of(LogServer(run.ledger, size=2), outcome=run.outcome)  # the announcement, one registration
        mon.poll()
        assert mon.progress() is None
        mon.check_live(now=0.0)
        mon.check_live(now=10.0**6)
    finally:
        run.close()


def client(run, tmp_path, limit=0.2, retry_for=5.0, keep_checkpoint=False):
    """Bidder 0's client against the served log, its silence limit shortened for a test (None: the
    announced one)."""
    s = bidder_state(run, 0, tmp_path / "s0")
    if keep_checkpoint:
        shutil.copy(private_dir(run.db) / "bidder_0.checkpoint.json", s / "checkpoint.json")
    c = BidderClient(URL, s, lambda r: None, retry_for=retry_for)
    if limit is not None:
        c.limit = limit
    return c


def test_the_bidder_client_takes_a_run_standing_still_for_the_auctioneers_silence(tmp_path, served_client):
    run = timed_run(tmp_path)
    try:
        run.play()
        run.auctioneer.checkpoint()
        served_client.server = LogServer(run.ledger, status={"round": 4, "phase": 0})  # never closes the reveals
        c = client(run, tmp_path, limit=None)
        assert c.limit == liveness_limit_s(read_state(run.ledger).announcement)
        c.limit = 0.2  # (the announced 65 s, shortened for the test)
        with pytest.raises(AuditFailed, match=r"the auctioneer is silent: the run has not gone past round 4, phase 0 for .*"
                                              r"verdict on the log it holds: invalid, .*the reveal phase is open.*"
                                              r"the penalty is due"):
            c._wait(4, 2, poll=0.01)
        # before round 1 (registrations) nothing is late: the client waits as long as it is told to
        served_client.server.status = {"round": 0, "phase": 0}
        calls = []

        def status():
            calls.append(1)
            return {"round": 0, "phase": 0} if len(calls) < 40 else {"round": 1, "phase": 0}

        served_client.server.status = status
        assert c._wait(1, 0, poll=0.01)["round"] == 1 and len(calls) == 40
    finally:
        run.close()


@pytest.mark.parametrize("cmd", [["bidder", "run", "--url", "http://127.0.0.1:9", "--bids", "BIDS", "--state", "S"],
                                 ["monitor", "http://127.0.0.1:9", "--timeout", "1"],
                                 ["serve", "--circuit", "C", "--db", "DB", "--answer-s", "0"]])
def test_the_new_options_refuse_bad_values_with_exit_2(tmp_path, cmd):
    from test_review_cli_16 import _check

    bids = tmp_path / "bids.csv"
    bids.write_text("1,0.5,0.3\n")
    cmd = [{"BIDS": str(bids), "S": str(tmp_path / "s"), "DB": str(tmp_path / "a.db"), "C": str(tmp_path)}.get(x, x)
           for x in cmd]
    if cmd[0] == "serve":
        _check(cmd, 2, "--answer-s 0")
    else:
        _check(cmd + ["--trusted-srs", "abc"], 2, "--trusted-srs 'abc'", "64 hex")


def test_an_entry_holding_an_integer_too_long_for_python_is_named_not_a_crash(tmp_path):
    """storage.parse_json: json.loads raises a plain ValueError on an integer of more than 4,300
    digits (valid JSON), which no verifier caught: an auctioneer that logged one after cheating left
    the monitor, the bidder clients and ``zkauction audit`` without a verdict. Now it is unreadable
    JSON like any other: the log does not verify, the verdict is invalid, the penalty due."""
    from zkauction.protocol.entries import Statement, statement_hash
    from zkauction.protocol.log import ChainError
    from zkauction.protocol.storage import parse_json

    with pytest.raises(ValueError, match="unreadable number"):
        parse_json('{"zz":' + "9" * 5000 + "}")
    with make_run(tmp_path, rounds=2, audits=1) as run:
        run.play()
        text = '{"zz":' + "9" * 5000 + "}"
        k = run.auctioneer.key
        sig = k.sign(bytes.fromhex(statement_hash(run.ledger.log_id, 3, "note", text, k.public_hex)))
        run.ledger._place([Statement("note", 3, text, k.public_hex, sig)], None, None)  # what a host can store
        run.ledger.checkpoint(k)  # (and sign for: evidence only where a checkpoint of the auctioneer's covers it)
        with pytest.raises(ChainError, match="not valid JSON"):
            run.ledger.verify_chain()
        with pytest.raises(ChainError, match="not valid JSON"):
            Ledger.in_memory().replicate(list(run.ledger.entries()))
        assert run.ledger.get(len(run.ledger) - 1).fields == {}
        report = run.auditor().audit()
        assert report.status == "invalid" and "the log does not verify" in report.reason and report.penalty_due > 0


def overcharge(fn):
    """``fn``'s outcome with every winner charged 1 more than its allocation is worth at the top of
    the support: a breach of the public checks and of every winner's own check."""
    def f(bids, salts):
        out = fn(bids, salts)
        return Outcome(out.allocation, tuple(p + (1.0 if sum(a) else 0.0) * (1 + sum(a))
                                             for p, a in zip(out.payment, out.allocation)))
    return f


def test_a_monitor_that_stops_on_a_breach_keeps_the_checkpoint_that_covers_it(tmp_path):
    """monitor.py poll: the checkpoint covering a breach lived in memory only (written every 64
    entries or after a valid verdict), so a host that rolled its log back past the breach and played
    the round again honestly got a valid verdict from the same monitor (same ``--state``). Now a
    failed check writes it first: the rewritten log is a fork to the next run."""
    from zkauction.protocol.log import SignedCheckpoint

    fn = net_outcome_function(small_net())
    run = LocalRun.create(tmp_path / "o.db", overcharge(fn), setting=SETTING, participation=PARTICIPATION,
                          input_scale=12, auction={"name": "test-net"}, rounds=2, audits=1, mode="reveal", seed=7,
                          deadlines=DEADLINES)
    try:
        run.auctioneer.checkpoint()
        mon = monitor_of(LogServer(run.ledger), state=tmp_path / "mon", outcome=fn)
        assert mon.poll() is False  # following the run from its start (its first checkpoint kept on disk)
        with pytest.raises(Exception):
            run.play()  # the bidders refuse the overcharge
        run.auctioneer.checkpoint()
        out = run.ledger.entries(kind=OUTCOME)[0]
        with pytest.raises(MonitorAlert, match="breach"):
            mon.follow(interval=0.01, timeout=20)
        kept = SignedCheckpoint.load(tmp_path / "mon" / "monitor.checkpoint.json")
        assert kept.size > out.seq  # on disk: the rollback past the outcome is now a fork or a rollback
        # the bidder that refused the outcome pinned the checkpoint covering it too (Bidder.check_outcome)
        winner = next(i for i, a in enumerate(out.data["allocation"]) if sum(a))
        mine = SignedCheckpoint.load(private_dir(run.db) / f"bidder_{winner}.checkpoint.json")
        assert mine.size > out.seq
    finally:
        run.close()


def test_a_server_sending_pages_without_end_does_not_hold_its_reader(monkeypatch):
    """remote.py entries: a server answering every page with fresh entries and "more" kept the
    monitor in one poll past any timeout, memory growing. Now one call stops at the size the server
    stated on its first page, and at MAX_ENTRIES_PER_CALL."""
    import httpx

    from zkauction.service import remote as remote_module
    from zkauction.service.remote import RemoteLog

    def junk(start, n):
        return [dict(seq=q, round=None, kind="x", payload="{}", prev_hash="0" * 64, hash="0" * 64, signer="0" * 64,
                     signature="0") for q in range(start, start + n)]

    def endless(grows):
        def handle(request):
            s = int(request.url.params.get("start", 0))
            return httpx.Response(200, json={"size": s + 100 if grows else 10**12, "more": True, "entries": junk(s, 100)})
        return handle

    r = RemoteLog(URL, client=httpx.Client(base_url=URL, transport=httpx.MockTransport(endless(True))))
    assert len(r.entries()) == 100  # what the first page said the log held
    monkeypatch.setattr(remote_module, "MAX_ENTRIES_PER_CALL", 1000)
    r = RemoteLog(URL, client=httpx.Client(base_url=URL, transport=httpx.MockTransport(endless(False))))
    assert len(r.entries()) == 1000


@pytest.mark.parametrize("answer, where", [({"entries": [], "more": False}, "KeyError: 'size'"),
                                           ([], "TypeError"),
                                           ({"entries": [], "size": "abc", "more": False}, "ValueError"),
                                           ({"entries": [5], "size": 1, "more": False}, "an entry must be an object")])
def test_a_malformed_answer_from_the_server_is_named_not_a_crash(answer, where):
    import httpx

    from zkauction.errors import ZkAuctionError
    from zkauction.protocol.state import ProtocolError
    from zkauction.service.remote import RemoteLog

    r = RemoteLog(URL, client=httpx.Client(base_url=URL, transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json=answer if request.url.path != "/api/status" else {"round": "1"}))))
    with pytest.raises(ZkAuctionError, match=where):  # (a ProtocolError, or a LedgerError naming the entry)
        r.entries()
    with pytest.raises(ProtocolError, match="round and phase must be integers"):
        r.status()
    for f in (r.latest_checkpoint, lambda: r.inclusion_proof(0), lambda: r.consistency_proof(1)):
        with pytest.raises(ProtocolError, match="a malformed answer"):
            f()


@pytest.mark.parametrize("mode", ["reveal", "zk"])
def test_openings_published_for_a_round_not_drawn_or_in_zk_mode_are_the_auctioneers_breach(tmp_path, mode):
    """state.py openings_entry: published openings reveal bids, so only the audited rounds', and only
    in reveal mode (zk promises that no bid is ever published); the reader checked neither, so a host
    could publish every round's bids on the signed log at no cost. Now each is a breach."""
    from zkauction.protocol.state import OPENINGS

    with make_run(tmp_path, mode=mode, rounds=4, audits=1) as run:
        run.play()
        draw = run.reveal()
        r = next(q for q in range(1, 5) if q not in draw.rounds) if mode == "reveal" else draw.rounds[0]
        bids, salts = run.auctioneer.round_inputs(r)
        run.ledger.append(OPENINGS, {"bids": bids, "salts": salts}, run.auctioneer.key, round=r,
                          checkpoint_key=run.auctioneer.key)
        st = read_state(run.ledger)
        why = "the audit did not draw" if mode == "reveal" else "in zk mode, where no bid is ever published"
        assert any(why in b.reason for b in public_checks(st)), public_checks(st)
        if mode == "zk":
            assert r not in st.openings
        else:
            run.answer_audit(draw.rounds)
        report = run.auditor().audit()
        assert report.status == "invalid" and any(why in str(b) for b in report.breaches), report.to_dict()


def test_the_server_admits_an_abstention_only_from_a_bidder_that_committed(tmp_path):
    """engine.py _admissible: an abstention from a bidder with no commitment in the round was logged
    and never counted (the web view listed it); the server admits only what the reader counts."""
    from test_mutation_kills_service import fresh_engine, refused, submit

    from zkauction.protocol.log import Statement
    from zkauction.protocol.state import ABSTENTION
    from zkauction.service.engine import Status
    from zkauction.zk.circuit import Circuit

    engine, (k0, k1) = fresh_engine(tmp_path, Circuit.load("circuits/ama_2x2_uniform"))
    try:
        engine.status = Status(1, 2)
        (r,) = submit(engine, Statement.sign(k1, engine.log_id, ABSTENTION, {"bidder": 1}, round=1))
        refused(r, 409, "bidder 1 has none")
        assert len(engine.ledger) == 1
    finally:
        engine.close()
