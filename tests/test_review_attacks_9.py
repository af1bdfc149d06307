"""A seventeenth review attacked the sixteenth's defences (README, "A seventeenth review"): the
split-view defence held; the silence clocks could be escaped by a cheating host and could accuse an
honest one; two parties stopped on a breach without writing the checkpoint that covers it. Each
test here played the attack against the code before the fix (where it worked) and the defence now.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import threading
import time

import httpx
import pytest
from test_mutation_kills_service import URL, LogServer, bidder_state, local_run, monitor_of, replica_of, served_client  # noqa: F401
from test_review_attacks_8 import client, timed_run

from zkauction.errors import ZkAuctionError
from zkauction.protocol.audit import audit_draw, liveness_limit_s
from zkauction.protocol.local import private_dir
from zkauction.protocol.log import SignedCheckpoint
from zkauction.protocol.state import OPENINGS, ProtocolError, read_state
from zkauction.service.client import AuditFailed, BidderClient
from zkauction.service.monitor import Monitor
from zkauction.service.remote import RemoteLog


def test_a_status_going_back_and_forth_does_not_restart_the_clients_clock(tmp_path, served_client):
    run = timed_run(tmp_path)  # T = 3
    try:
        run.play()
        run.auctioneer.checkpoint()
        flip = itertools.cycle([{"round": 4, "phase": 0}, {"round": 4, "phase": 1}])  # never closes the reveals
        served_client.server = LogServer(run.ledger, status=lambda: next(flip))
        c = client(run, tmp_path)
        t0 = time.monotonic()
        with pytest.raises(AuditFailed, match="has not gone past round 4, phase 1"):
            c._wait(4, 2, poll=0.01)
        assert time.monotonic() - t0 < 3
    finally:
        run.close()


def test_a_refused_status_counts_as_standing_still(tmp_path, served_client):
    run = timed_run(tmp_path)
    try:
        run.play()
        run.auctioneer.checkpoint()
        server = LogServer(run.ledger, status={"round": 1, "phase": 1})
        served_client.server = server
        c = client(run, tmp_path, retry_for=0.05)

        def handle(request, base=server.handle):
            if request.url.path == "/api/status":
                return httpx.Response(409, json={"detail": "busy"})
            return base(request)

        c.remote.http = httpx.Client(base_url=URL, transport=httpx.MockTransport(handle))
        with pytest.raises(AuditFailed, match="no answer from the server for"):
            c._wait(1, 3, resend=lambda s: None, poll=0.01)  # (it spun for ever on 409s before)
    finally:
        run.close()


def test_a_host_that_goes_dark_after_the_draw_is_silent_once_the_deadlines_pass(tmp_path, served_client):
    run = timed_run(tmp_path)
    try:
        run.play()
        for b in run.bidders:
            b.reveal()
        run.auctioneer.checkpoint()
        served_client.server = LogServer(run.ledger, status={"round": 4, "phase": 0})
        c = client(run, tmp_path, limit=0.3, retry_for=0.05)

        def dark(request):
            raise httpx.ConnectError("connection refused")

        c.remote.http = httpx.Client(base_url=URL, transport=httpx.MockTransport(dark))
        with pytest.raises(AuditFailed, match="the auctioneer is silent.*the log could not be read"):
            c._wait(4, 2, poll=0.01)  # (before: "unreachable", exit 2, no penalty)
        # before round 1 nothing is late: unreachable stays an error after retry_for
        with pytest.raises(ProtocolError, match="unreachable for 0.05 s") as e:
            c._wait(1, 0, poll=0.01)
        assert not isinstance(e.value, AuditFailed)
    finally:
        run.close()


def test_a_host_that_says_it_is_finished_but_never_closes_the_reveals_is_silent(tmp_path, served_client):
    run = timed_run(tmp_path)
    try:
        run.play()
        for b in run.bidders:
            b.reveal()
        run.auctioneer.checkpoint()  # the host knows the draw; the log never closes the reveal phase
        served_client.server = LogServer(run.ledger, status={"round": 4, "phase": 2})
        c = client(run, tmp_path, keep_checkpoint=True)
        with pytest.raises(AuditFailed, match="says the audit is answered, but the log this bidder holds does not show it"):
            c._final_audit(0.3)  # (before: AuditError, exit 2, no penalty)
    finally:
        run.close()


def test_an_honest_host_answering_every_round_gets_answer_s_per_round(tmp_path, served_client):
    """A withheld seed draws every round: the honest engine proves T rounds while its status stays at
    (T+1, 1). The client's limit for that wait is answer_s per round to answer, from the log."""
    run = timed_run(tmp_path, rounds=4)
    try:
        run.play()
        run.bidders[0].reveal()  # bidder 1 withholds its seed
        run.auctioneer.close_reveals()
        run.auctioneer.checkpoint()
        assert audit_draw(read_state(run.ledger)).rounds == [1, 2, 3, 4]
        served_client.server = LogServer(run.ledger, status={"round": 5, "phase": 1})
        c = client(run, tmp_path)
        ann = read_state(run.ledger).announcement
        assert c._rounds_to_answer() == 4
        assert liveness_limit_s(ann, 4) - liveness_limit_s(ann, 1) == 3 * ann.deadlines["answer_s"]
    finally:
        run.close()


class Trickle:
    """A host that answers every request with headers at once, then one byte a second."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            while not self.stop.is_set():
                c.sendall(b" ")
                time.sleep(0.2)
        except OSError:
            pass
        c.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def test_an_answer_that_never_ends_is_cut_at_twice_the_request_limit(tmp_path, served_client):
    t = Trickle()
    run = timed_run(tmp_path)
    try:
        r = RemoteLog(t.url, timeout=0.5)
        t0 = time.monotonic()
        with pytest.raises(ProtocolError, match="the answer took longer than 1 s"):
            r.entries()
        assert time.monotonic() - t0 < 5
        mon = Monitor(t.url)
        mon.remote = RemoteLog(t.url, timeout=0.5)
        with pytest.raises(ProtocolError, match="no verdict after 1 s"):  # (it stayed in its first poll)
            mon.follow(interval=0.05, timeout=1.0)
        run.play()
        run.auctioneer.checkpoint()
        served_client.server = LogServer(run.ledger, status={"round": 4, "phase": 0})
        c = client(run, tmp_path, limit=0.5)
        c.remote = RemoteLog(t.url, timeout=0.2)  # from now on the host trickles
        with pytest.raises(AuditFailed, match="the auctioneer is silent"):
            c._wait(4, 2, poll=0.01)
    finally:
        t.close()
        run.close()


def test_the_clients_final_check_writes_the_checkpoint_covering_a_breach_first(tmp_path, served_client):
    run, fn = local_run(tmp_path, rounds=3)
    try:
        run.play()
        draw = run.reveal()
        run.auctioneer.checkpoint()
        s = len(run.ledger)
        cheat = replica_of(run.ledger, s)
        for r in (draw.rounds[0], next(q for q in (1, 2, 3) if q not in draw.rounds)):
            bids, salts = run.auctioneer.round_inputs(r)
            cheat.append(OPENINGS, {"bids": bids, "salts": salts}, run.auctioneer.key, round=r)
        cheat.checkpoint(run.auctioneer.key)
        run.answer_audit(draw.rounds)  # the honest continuation of the same prefix
        run.auctioneer.checkpoint()
        st = bidder_state(run, 0, tmp_path / "s0")
        shutil.copy(private_dir(run.db) / "bidder_0.checkpoint.json", st / "checkpoint.json")
        served_client.server = LogServer(cheat)
        c = BidderClient(URL, st, lambda r: None, retry_for=5)
        with pytest.raises(AuditFailed, match="the audit did not draw"):
            c._verify_audit()
        assert SignedCheckpoint.load(st / "checkpoint.json").size == len(cheat)  # on disk
        served_client.server = LogServer(run.ledger)  # the host drops the tail and answers honestly
        with pytest.raises(ZkAuctionError, match="fork|rolled back|not the ones"):
            BidderClient(URL, st, lambda r: None, retry_for=5)._verify_audit()
    finally:
        run.close()


@pytest.mark.parametrize("deadlines", [{}, {"commit_s": 1.0, "note": "see the terms"},
                                       {"commit_s": 1e308, "answer_s": 1e308}, {"answer_s": 1e12}])
def test_bidders_and_monitors_refuse_an_announcement_that_switches_the_silence_clock_off(tmp_path, served_client,
                                                                                         deadlines):
    from test_protocol import PARTICIPATION, SETTING, small_net

    from zkauction.protocol.auctioneer import net_outcome_function
    from zkauction.protocol.local import LocalRun
    from zkauction.service.monitor import MonitorAlert

    fn = net_outcome_function(small_net())
    run = LocalRun.create(tmp_path / "t.db", fn, setting=SETTING, participation=PARTICIPATION, input_scale=12,
                          auction={"name": "test-net"}, rounds=3, audits=1, mode="reveal", seed=7, deadlines=deadlines)
    try:
        run.auctioneer.checkpoint()
        served_client.server = LogServer(run.ledger, status={"round": 0, "phase": 0})
        with pytest.raises(ProtocolError, match="not taking part"):
            BidderClient(URL, bidder_state(run, 0, tmp_path / "s0"), lambda r: None, retry_for=5)
        run.play()
        for b in run.bidders:
            b.reveal()
        run.auctioneer.checkpoint()  # the host knows the draw and never closes the reveal phase
        said = []
        mon = monitor_of(LogServer(run.ledger), outcome=fn, say=said.append)
        assert mon.poll() is False and "no bidder client takes part in such an auction" in said[0]
        mon.check_live(now=0.0)  # the monitor's clock runs on the defaults (fails closed): silent all the same
        with pytest.raises(MonitorAlert, match="the auctioneer is silent"):
            mon.check_live(now=10.0**6)
    finally:
        run.close()


def test_a_breach_no_checkpoint_covered_yet_is_kept_and_its_drop_named_on_the_next_run(tmp_path):
    """monitor.py _pin(tail=True): the monitor reads (and alerts on) entries no checkpoint covers
    yet, and kept only its checkpoint: a host that served a breaching entry before signing a
    checkpoint over it, then dropped it and played on honestly, got 'valid' from the same --state.
    Now the hashes of that tail go to --state too (monitor.evidence.json), and the next run names the
    log that does not hold them."""
    from zkauction.protocol.state import COMMITMENTS_CLOSED, OUTCOME
    from zkauction.service.monitor import MonitorAlert

    run, fn = local_run(tmp_path, rounds=2)
    try:
        run.play()
        run.answer_audit(run.reveal().rounds)
        run.auctioneer.checkpoint()
        s = run.ledger.entries(kind=OUTCOME, round=1)[0].seq + 1  # the honest log goes on at entry s
        cheat = replica_of(run.ledger, s)
        cheat.checkpoint(run.auctioneer.key)  # a checkpoint of the honest prefix (size s)
        close = run.ledger.entries(kind=COMMITMENTS_CLOSED, round=1)[0]
        cheat.append(COMMITMENTS_CLOSED, close.data, run.auctioneer.key, round=1)  # the breach, signed, no checkpoint
        mon = monitor_of(LogServer(cheat), state=tmp_path / "mon", outcome=fn)
        with pytest.raises(MonitorAlert, match="a second close of round 1"):
            mon.follow(interval=0.01, timeout=10)
        assert SignedCheckpoint.load(tmp_path / "mon" / "monitor.checkpoint.json").size == s
        assert (tmp_path / "mon" / "monitor.evidence.json").is_file()
        mon2 = monitor_of(LogServer(run.ledger), state=tmp_path / "mon", outcome=fn)
        with pytest.raises(MonitorAlert, match=f"fork: entry {s} is not the one this monitor saw signed"):
            mon2.follow(interval=0.01, timeout=20)  # (before: valid, the breach forgotten)
        # a finished log that ends before entries the monitor saw signed: a rollback
        import json

        (tmp_path / "mon2").mkdir(mode=0o700)
        (tmp_path / "mon2" / "monitor.evidence.json").write_text(json.dumps({str(len(run.ledger) + 3): "ab" * 32}))
        mon3 = monitor_of(LogServer(run.ledger), state=tmp_path / "mon2", outcome=fn)
        with pytest.raises(MonitorAlert, match=f"rollback: the log ends at {len(run.ledger)} entries; this monitor saw"):
            mon3.follow(interval=0.01, timeout=20)
        (tmp_path / "mon2" / "monitor.evidence.json").write_text("[1, 2]")
        with pytest.raises(ProtocolError, match="not this monitor's evidence"):
            monitor_of(LogServer(run.ledger), state=tmp_path / "mon2", outcome=fn)
    finally:
        run.close()
