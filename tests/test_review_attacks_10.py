"""An eighteenth review (README, "An eighteenth review"): a host that stops answering in a way the
silence clocks did not time. The client timed only its waits for the run's status, the monitor
nothing once the server could not be reached: a host that went dark (or answered with refusals or
malformed answers) between two waits, or to the monitor at any time, made each party end with
"unreachable" or a malformed-answer error (exit 2, no penalty) instead of naming its silence. Each
test here played the attack against the code before the fix and the defence now.
"""

from __future__ import annotations

import time

import httpx
import pytest
from test_mutation_kills_service import URL, LogServer, monitor_of, served_client  # noqa: F401
from test_review_attacks_8 import client, timed_run

from zkauction.protocol.state import ProtocolError
from zkauction.service.client import AuditFailed
from zkauction.service.monitor import MonitorAlert
from zkauction.service.remote import RemoteLog, Unavailable


def _after(server, answer):
    """``server``'s transport, every request answered by ``answer`` (a function of the request) once
    ``switch[0]`` is set."""
    switch = [False]

    def handle(request):
        return answer(request) if switch[0] else server.handle(request)

    return switch, httpx.Client(base_url=URL, transport=httpx.MockTransport(handle))


def _dark(request):
    raise httpx.ConnectError("connection refused", request=request)


DARK = ("dark", _dark, "the log could not be read")
REFUSING = ("refusing reads", lambda request: httpx.Response(403, json={"detail": "forbidden"}), "")
MALFORMED = ("malformed", lambda request: httpx.Response(200, json={"entries": "x", "round": "1"}), "")


@pytest.mark.parametrize("name, answer, said", [DARK, REFUSING, MALFORMED], ids=lambda x: x if isinstance(x, str) else "")
def test_a_host_that_stops_answering_between_two_waits_is_silent_to_the_client(tmp_path, served_client, name, answer, said):
    """client.py _retry: after round 1 began, a step other than a status wait (reading the outcome,
    the log for the final check) gave up after retry_for with "unreachable" (exit 2) or stopped at
    the first refused or malformed answer; the host chose the moment, once the round's bids were in.
    Now every step after round 1 waits to the announced deadlines, then the auctioneer is silent."""
    run = timed_run(tmp_path)
    try:
        run.play()
        run.auctioneer.checkpoint()
        served_client.server = LogServer(run.ledger, status={"round": 2, "phase": 0})
        c = client(run, tmp_path, limit=0.4, retry_for=0.05)
        c._wait(2, 0, poll=0.01)  # the run has begun: from here on, no answer is the host's silence
        switch, c.remote.http = _after(served_client.server, answer)
        switch[0] = True
        t0 = time.monotonic()
        with pytest.raises(AuditFailed, match=f"the auctioneer is silent: no usable answer from the server for .*{said}"):
            c._retry(lambda: c.bidder.check_outcome(1))
        assert time.monotonic() - t0 >= 0.4  # waited to the limit, not retry_for
    finally:
        run.close()


def test_before_round_1_a_dark_server_stays_an_error_after_retry_for(tmp_path, served_client):
    run = timed_run(tmp_path)
    try:
        run.play()
        served_client.server = LogServer(run.ledger, status={"round": 1, "phase": 0})
        c = client(run, tmp_path, limit=5.0, retry_for=0.05)
        c.remote.http = httpx.Client(base_url=URL, transport=httpx.MockTransport(_dark))
        with pytest.raises(ProtocolError, match="unreachable for 0.05 s") as e:
            c._retry(lambda: c.bidder.check_outcome(1))
        assert not isinstance(e.value, AuditFailed)
    finally:
        run.close()


@pytest.mark.parametrize("name, answer, said", [DARK, REFUSING, MALFORMED], ids=lambda x: x if isinstance(x, str) else "")
def test_a_host_that_stops_answering_the_monitor_after_the_run_began_is_silent(tmp_path, name, answer, said):
    """monitor.py follow: a server unreachable for retry_for after the run began ended the monitor
    with "unreachable" (exit 2); a refused or malformed answer ended it at once. Now it waits to the
    announced deadlines and names the silence, with the verdict on the log it holds (invalid)."""
    run = timed_run(tmp_path)
    try:
        run.play()
        run.auctioneer.checkpoint()
        server = LogServer(run.ledger)
        mon = monitor_of(server, outcome=run.outcome)
        assert mon.poll() is False  # following the run: every bidder registered, rounds played
        switch, mon.remote.http = _after(server, answer)
        switch[0] = True
        mon.check_live(now=time.monotonic() - 10**6)  # (the run's clock started long ago: past any limit)
        with pytest.raises(MonitorAlert, match="the auctioneer is silent") as e:
            mon.follow(interval=0.01, timeout=20, retry_for=0.05)
        assert mon.report.verdict["status"] == "invalid", mon.report.verdict
        assert "unreachable" not in str(e.value)
    finally:
        run.close()


def test_before_the_run_begins_the_monitor_gives_up_on_a_dark_server_after_retry_for(tmp_path):
    from zkauction.service.monitor import Monitor

    mon = Monitor(URL)
    mon.remote = RemoteLog(URL, client=httpx.Client(base_url=URL, transport=httpx.MockTransport(_dark)))
    with pytest.raises(ProtocolError, match="unreachable for 0.2 s"):
        mon.follow(interval=0.02, timeout=10, retry_for=0.2)


@pytest.mark.parametrize("answer", [{"entries": "x", "size": 1}, {"round": "1", "phase": 0}, [1, 2]])
def test_a_malformed_answer_is_no_answer_not_a_reason_to_stop(answer):
    """remote.py: a malformed answer is named (the sixteenth review) and, like a refused read, counts
    as no answer (Unavailable): the parties wait through it on the silence clock, and a host cannot
    end them with it."""
    r = RemoteLog(URL, client=httpx.Client(base_url=URL, transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json=answer))))
    for f in (r.entries, r.status, r.latest_checkpoint, lambda: r.consistency_proof(1)):
        with pytest.raises(Unavailable, match="malformed answer"):
            f()
    r = RemoteLog(URL, client=httpx.Client(base_url=URL, transport=httpx.MockTransport(
        lambda request: httpx.Response(403, json={"detail": "forbidden"}))))
    with pytest.raises(Unavailable, match="refused to serve the log \\(403\\): forbidden"):
        r.entries()
