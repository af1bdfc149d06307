"""Found by the fifteenth adversarial review (the liveness change of b522df0: a committed bidder that
falls silent voids its round once the server's dispute deadline passed; that argument held). The
test plays a failure that worked on the code it was written against (b522df0) and asserts what
happens now."""

from __future__ import annotations

import threading

import pytest

from test_service import CIRCUIT, FAST, Server

from zkauction.protocol.audit import public_checks
from zkauction.protocol.log import Ledger
from zkauction.protocol.state import DISPUTE, OPENING_REJECTED, OUTCOME, read_state
from zkauction.service.client import BidderClient
from zkauction.service.engine import engine_for
from zkauction.zk.circuit import Circuit


@pytest.fixture(scope="module")
def circuit():
    return Circuit.load(CIRCUIT)


class PortServer(Server):
    """:class:`test_service.Server` that can be killed and started again on its port, so that a
    restarted server answers at the same URL its clients know."""

    def kill(self) -> None:
        """As close to a SIGKILL as a thread allows: no graceful wait for the clients' long polls."""
        self.server.should_exit = True
        self.server.force_exit = True
        self.thread.join(20)
        self.sock.close()
        self.engine.close()


def port_service(tmp_path, circuit, *, n_rounds, audits, mode, deadlines):
    """:func:`test_service.make_service` on a :class:`PortServer`."""
    from zkauction.protocol.log import SigningKey
    from zkauction.service.client import init_state
    from zkauction.service.engine import announce

    keys = [init_state(tmp_path / f"b{i}") for i in range(2)]
    d = tmp_path / "auctioneer"
    d.mkdir(mode=0o700)
    SigningKey.generate().save(d / "auctioneer.pem")
    with Ledger.open(tmp_path / "a.db") as ledger:
        announce(ledger, SigningKey.load(d / "auctioneer.pem"), circuit, bidders=keys, rounds=n_rounds, audits=audits,
                 penalty=None, mode=mode, deadlines={**FAST, **deadlines})
    return PortServer(engine_for(tmp_path / "a.db", d, circuit))


def test_a_server_restart_during_the_dispute_wait_voids_a_round_in_which_every_honest_bidder_delivered(tmp_path, circuit):
    """The server's restart (a crash, the load test's SIGKILL) while it waits for a ``no_opening``
    bidder's dispute. The README: "after a SIGKILL the server resumes from the log and the clients
    send again what it kept in memory (openings, passes)". Bidder 1 is honest but slow: its opening
    misses ``open_s``, it is rejected for ``no_opening`` and will dispute (its published opening
    cures the rejection). Bidder 0 is honest and opened in time; its client is now waiting for the
    outcome (``_wait(r, 3)``, no resend). The server restarts in the window: bidder 0's opening was in
    memory only, so after ``open_s`` the restarted server rejects bidder 0 for ``no_opening`` too,
    and bidder 0's client, past its dispute step, neither sends its opening again nor disputes.
    Before b522df0 that deadlock stalled the round for ever; now, after ``dispute_s``, the round is
    void: nothing sold in a round where both honest bidders delivered their openings (the honest
    operator loses the round's revenue) and the log shows honest bidder 0 as a bidder that committed
    and fell silent (what the README calls a malicious bidder voiding rounds). Every check passes,
    so nobody is told.

    Missing defence: the client, while it waits for the outcome of a round it opened in, must send
    its opening again after a reconnect (as ``_wait(r, 2, resend=...)`` does) and dispute any
    ``no_opening`` rejection of itself that appears before the outcome (not only once, right after
    phase 2 starts)."""
    srv = port_service(tmp_path, circuit, n_rounds=1, audits=1, mode="reveal", deadlines={"open_s": 1.0, "dispute_s": 8.0})
    db, state = tmp_path / "a.db", tmp_path / "auctioneer"
    restarted = threading.Event()
    waiting_to_dispute = threading.Event()
    bids = {(0, 1): [0.75, 0.25], (1, 1): [0.5, 0.875]}
    reports, errors = {}, []

    def go(i):
        try:
            c = BidderClient(srv.url, tmp_path / f"b{i}", lambda r: bids.get((i, r)), circuit=circuit, retry_for=60.0,
                             expected={"manifest_sha256": circuit.manifest_sha256(), "vk_sha256": circuit.vk_sha256()})
            if i == 1:  # slow: its opening misses the opening phase, its dispute comes a few seconds later
                c._open = lambda r: None
                real_dispute = c.bidder.dispute

                def slow_dispute(r):
                    waiting_to_dispute.set()
                    restarted.wait(30)
                    return real_dispute(r)

                c.bidder.dispute = slow_dispute
            reports[i] = c.run()
        except Exception as e:  # reported to the test
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:
        assert waiting_to_dispute.wait(30), "bidder 1 was never rejected for no_opening"
        assert (srv.engine.status.round, srv.engine.status.phase) == (1, 2)  # waiting for bidder 1's dispute
        assert [e.data["bidder"] for e in srv.engine.ledger.entries(kind=OPENING_REJECTED, round=1)] == [1]  # 0 opened
        srv.kill()  # the server goes down here and comes back on the same port, resuming from its log
        srv = PortServer(engine_for(db, state, circuit), port=srv.port)
        restarted.set()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads) and errors == [], errors  # both clients ran to the end
        with Ledger.open(db, writer=False) as ledger:
            st = read_state(ledger)
            assert public_checks(st) == []  # nothing any verifier can name
            rejected = {e.data["bidder"]: e.data["reason"] for e in ledger.entries(kind=OPENING_REJECTED, round=1)}
            disputed = sorted(e.data["bidder"] for e in ledger.entries(kind=DISPUTE, round=1))
            out = ledger.entries(kind=OUTCOME, round=1)[0].data
        # both honest bidders delivered: bidder 0 its opening (before the restart), bidder 1 its dispute
        assert disputed == [1]
        assert 0 not in rejected, f"honest bidder 0 opened in time and is logged as {rejected.get(0)!r} with no dispute"
        assert out["participants"] == [1, 1], f"the round is void ({out['participants']}): nothing sold"
    finally:
        restarted.set()
        try:
            srv.kill()
        except Exception:
            pass
