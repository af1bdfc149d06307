"""Attacks found by the thirteenth adversarial review (the networked bidder client and monitor against
a lying server; block mode). Each test plays the cheating auctioneer and fails on the code it was
written against (bec8133): the attack worked there. The defences: the bidder client checks the
announced terms against the circuit it holds (``BidderClient``), a monitor checks the served log
against the checkpoint it kept (``Monitor._check_checkpoint``), and a reader of the server's pages
refuses pages that do not move on (``RemoteLog.entries``)."""

from __future__ import annotations

import json

import httpx
import pytest

from test_service import FAST, Server, circuit  # noqa: F401  (circuit: the module fixture)
from test_service_attacks import BIDS3, bidder, client, run_all

from zkauction.protocol.announcement import default_penalty
from zkauction.protocol.audit import Auditor, draw_digest, select_audit_rounds
from zkauction.protocol.auctioneer import Auctioneer
from zkauction.protocol.log import Ledger, SigningKey
from zkauction.service.client import init_state
from zkauction.service.engine import DEFAULT_DEADLINES, engine_for
from zkauction.zk.circuit import Outcome


def service_announcing(tmp_path, circuit, *, n_rounds=3, audits=1, **auction):
    """The real server, announcing ``circuit`` (its manifest and vk hashes) with the entries of
    ``auction`` stated otherwise than the circuit's own files (e.g. ``output_scale=1``), the penalty
    just what the bidders' check asks for the terms as announced."""
    from zkauction.learn.setting import AuctionSetting
    from zkauction.protocol.demo import auction_info

    keys = [init_state(tmp_path / f"b{i}") for i in range(2)]
    d = tmp_path / "auctioneer"
    d.mkdir(mode=0o700)
    SigningKey.generate().save(d / "auctioneer.pem")
    setting = AuctionSetting.from_dict(circuit.manifest["setting"])
    info = {**auction_info(circuit), **auction}
    with Ledger.open(tmp_path / "a.db") as ledger:
        Auctioneer(SigningKey.load(d / "auctioneer.pem"), ledger, lambda b, s: None).announce(
            n=2, m=2, support=setting.support, input_scale=circuit.input_scale, auction=info, rounds=n_rounds,
            audits=audits, penalty=default_penalty(n_rounds, setting.support, info["output_scale"]), mode="zk",
            bidders=keys, deadlines={**DEFAULT_DEADLINES, **FAST})
    return Server(engine_for(tmp_path / "a.db", d, circuit))


def test_a_bidder_client_given_the_circuit_checks_the_announced_terms_against_it(tmp_path, circuit):
    """The auctioneer announces the client's circuit (its manifest and vk hashes, which the client was
    told) but states its outcome grid as 2^-1 instead of 2^-10 (``output_scale`` 1). That loosens every
    tolerance that scale sets: the public checks let a payment exceed its allocation's worth at the top
    of the support by n/2 = 1, and the winner's own check (``own_outcome_problem``) lets it pay up to
    (1 + its bids)/2 more than its bids are worth. The auctioneer then charges bidder 0, in a round the
    draw does not pick, 0.4 more than its allocation is worth at its own bids. The Auditor and the
    monitor, given the circuit, name the misstated term at entry 0 (penalty due). But a BidderClient
    given the same circuit (``circuit=``, expected = the circuit's hashes, as tests/test_service*.py
    build it) never compares the announcement's terms with the circuit (only ``zkauction bidder run``
    adds ``circuit_terms`` to ``expected``; ``_verify_audit`` skips ``announced_terms``): it registers,
    accepts the overcharge, verifies the drawn round's proof and reports success."""
    srv = service_announcing(tmp_path, circuit, n_rounds=3, audits=1, output_scale=1)
    try:
        seeds = {i: bidder(tmp_path, srv, i)[0].seed for i in range(2)}
        drawn = select_audit_rounds(draw_digest(srv.engine.log_id, seeds), 3, 1)
        honest = srv.engine.auctioneer.outcome
        charged = []

        def overcharge(bids, salts):
            out = honest(bids, salts)
            a0 = [float(x) for x in out.allocation[0]]
            worth = sum(x * float(b) for x, b in zip(a0, bids[0]))
            played = len(charged) + 1  # (rounds are closed in order, one outcome each)
            if played not in drawn and sum(a0) > 0:
                pay = list(out.payment)
                pay[0] = round((worth + 0.4) * 1024) / 1024
                charged.append((played, pay[0], worth))
                return Outcome(out.allocation, tuple(pay))
            charged.append(None)
            return out

        srv.engine.auctioneer.outcome = overcharge
        bids = lambda i: (lambda r: BIDS3[r][i])  # noqa: E731
        got = run_all([client(tmp_path, srv, i, bids(i), circuit) for i in range(2)])
        lies = [c for c in charged if c]
        with Ledger.open(tmp_path / "a.db", writer=False) as log:
            report = Auditor(log, circuit=circuit).audit()
        assert not report.valid and "output_scale" in str(report.breaches[0])  # every verifier with the circuit
        assert isinstance(got[0], Exception), (
            f"bidder 0's client, given the circuit, accepted the auction: overcharged {lies} (round, paid, worth at "
            f"its bids), proofs verified {got[0].proofs_verified}; the Auditor says {report.breaches[0]}")
        # the defence: each client compares the announcement with the circuit's own terms before it
        # registers, so it never takes part (nothing is played, nobody is overcharged)
        assert all(isinstance(g, Exception) and "output_scale" in str(g) for g in got.values()), got
        assert lies == []
    finally:
        srv.stop()


def served(ledger, upto, checkpoint):
    """An httpx client for a server holding ``ledger`` that serves only its first ``upto`` entries
    (rolled back) and ``checkpoint`` as its newest signed one."""

    def handle(request):
        p, q = request.url.path, request.url.params
        if p == "/api/log/entries":
            start = int(q.get("start", 0))
            stop = min(upto, int(q["stop"])) if "stop" in q else upto
            es = [ledger.get(s).to_dict() for s in range(start, stop)]
            return httpx.Response(200, json={"entries": es, "size": upto, "more": False})
        if p.startswith("/api/log/entry/"):
            s = int(p.rsplit("/", 1)[1])
            if s >= upto:
                return httpx.Response(404, json={"detail": "no such entry"})
            return httpx.Response(200, json=ledger.get(s).to_dict())
        if p == "/api/log/checkpoint":
            return httpx.Response(200, json={"checkpoint": checkpoint.to_dict(), "size": upto})
        return httpx.Response(404, json={"detail": p})

    return httpx.Client(base_url="http://auctioneer.test", transport=httpx.MockTransport(handle))


def test_a_monitor_holding_a_checkpoint_names_a_rollback_even_when_shown_a_larger_checkpoint(tmp_path):
    """A monitor run with ``--state`` keeps the last checkpoint it accepted, so that a later run
    refuses any view that is not a proven extension of it (monitor.py docstring). The auctioneer's
    log holds a breach at its end (here: a second, overcharging outcome of round 1, logged and
    checkpointed after the audit); a first monitor run names it (MonitorAlert) and keeps the
    checkpoint covering it. The auctioneer then rolls its log back to the entries before the breach
    (a valid audit) and serves that, with a checkpoint claiming more entries than it serves (its old
    one). ``Monitor._check_checkpoint`` sets such a checkpoint aside unchecked ("signed after our
    fetch"), and ``_audit_done`` only asks that the kept checkpoint be at least as large as the
    replica: so the second run never compares the replica with the checkpoint it holds and reports
    the truncated log VALID, while the checkpoint on its own disk commits to the breach."""
    from test_protocol import make_run

    from zkauction.protocol.state import OUTCOME
    from zkauction.service.monitor import Monitor, MonitorAlert

    with make_run(tmp_path, "reveal", rounds=4, audits=1) as run:
        run.play()
        assert run.audit().valid
        honest_size = len(run.ledger)
        out = run.ledger.entries(kind=OUTCOME, round=1)[0].data
        worse = {**out, "payment": [float(p) + 0.25 for p in out["payment"]]}
        run.ledger.append(OUTCOME, worse, run.auctioneer.key, round=1, checkpoint_key=run.auctioneer.key)
        full = run.ledger.latest_checkpoint()
        assert full.size == honest_size + 1
        outcome = run.auctioneer.outcome

        first = Monitor("http://auctioneer.test", state=tmp_path / "mon", outcome=outcome)
        first.remote.http = served(run.ledger, full.size, full)
        with pytest.raises(MonitorAlert, match="second outcome"):
            first.follow(timeout=10, interval=0.05)
        kept = json.loads((tmp_path / "mon" / "monitor.checkpoint.json").read_text())
        assert kept["size"] == full.size  # the breach is under the checkpoint on the monitor's disk

        second = Monitor("http://auctioneer.test", state=tmp_path / "mon", outcome=outcome)
        second.remote.http = served(run.ledger, honest_size, full)  # rolled back by one entry
        try:
            report = second.follow(timeout=10, interval=0.05)
        except (MonitorAlert, Exception) as e:  # noqa: BLE001  (named the rollback, or at least no verdict)
            report = e
        assert not hasattr(report, "verdict"), (
            f"the monitor holding a checkpoint of {kept['size']} entries reported the log rolled back to "
            f"{honest_size} entries {report.verdict['status']} (rounds checked {report.rounds_checked})")


def test_a_server_that_pages_for_ever_does_not_hold_the_monitor_past_its_timeout(tmp_path):
    """``RemoteLog.entries`` follows the server's ``more`` flag from the last entry of each page,
    without checking that a page moves forward. A server that answers every page with entry 0 and
    ``more: true`` keeps it asking for page 1 for ever, each answer quick (no request timeout fires)
    and appended to a list that grows without bound. Everything that reads the log goes through it
    (the monitor's poll, the bidder client's lookups and its verified replica), so ``zkauction monitor
    --timeout`` never gives up with "no verdict" and a bidder client's ``retry_for`` never ends its
    wait: they spin and fill memory until killed. (Here the transport stops the loop after 3,000 pages.)"""
    from test_protocol import make_run

    from zkauction.protocol.state import ProtocolError
    from zkauction.service.monitor import Monitor

    class Spun(BaseException):
        pass

    with make_run(tmp_path, "reveal", rounds=2, audits=1) as run:
        first = run.ledger.get(0).to_dict()
        pages = []

        def handle(request):
            pages.append(request.url.params.get("start"))
            if len(pages) > 3000:
                raise Spun(f"{len(pages)} pages asked for in one poll")
            if request.url.path == "/api/log/entries":
                return httpx.Response(200, json={"entries": [first], "size": 10**6, "more": True})
            return httpx.Response(404, json={"detail": "no"})

        mon = Monitor("http://auctioneer.test", outcome=run.auctioneer.outcome)
        mon.remote.http = httpx.Client(base_url="http://auctioneer.test", transport=httpx.MockTransport(handle))
        try:
            mon.follow(timeout=0.5, interval=0.05)
            got = "a verdict"
        except ProtocolError as e:
            got = f"{type(e).__name__}: {e}"
        except Spun as e:
            got = f"still looping: {e}"
        assert not got.startswith("still looping"), got
