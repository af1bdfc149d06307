"""The auction as a service, over real HTTP on 127.0.0.1: the auctioneer's server (uvicorn in a
thread here; `zkauction serve` in tests/test_netdemo.py), bidder clients, the monitor, bad requests
and a cheating server."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from zkauction.protocol.checkpoint import ForkError, LogView, RollbackError
from zkauction.protocol.log import Ledger, SigningKey, Statement
from zkauction.protocol.audit import public_checks
from zkauction.protocol.state import BID_COMMITMENT, OUTCOME, ProtocolError, read_state
from zkauction.service.client import BidderClient, BidsFileError, init_state, parse_bids
from zkauction.service.engine import Engine, announce, engine_for
from zkauction.service.monitor import Monitor, MonitorAlert
from zkauction.service.remote import Refused, RemoteLog
from zkauction.service.server import create_app
from zkauction.zk.circuit import Circuit, Outcome

ROOT = Path(__file__).resolve().parents[1]
CIRCUIT = ROOT / "circuits" / "ama_2x2_uniform"
FAST = {"commit_s": 3.0, "open_s": 3.0, "reveal_s": 10.0}


@pytest.fixture(scope="module")
def circuit():
    return Circuit.load(CIRCUIT)


class Server:
    """uvicorn serving ``create_app(engine)`` on a loopback port (0: a free one), in a thread."""

    def __init__(self, engine: Engine, port: int = 0):
        self.engine = engine
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (a restart binds its port again)
        sock.bind(("127.0.0.1", port))
        self.sock, self.port = sock, sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(engine), log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        end = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < end, "the server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.engine.close()


def make_service(tmp_path, circuit, *, n_rounds=3, audits=1, mode="zk", outcome=None, db=None, deadlines=None):
    keys = [init_state(tmp_path / f"b{i}") for i in range(2)]
    d = tmp_path / "auctioneer"
    d.mkdir(mode=0o700)
    SigningKey.generate().save(d / "auctioneer.pem")
    db = db or tmp_path / "a.db"
    with Ledger.open(db) as ledger:
        announce(ledger, SigningKey.load(d / "auctioneer.pem"), circuit, bidders=keys, rounds=n_rounds, audits=audits,
                 penalty=None, mode=mode, deadlines={**FAST, **(deadlines or {})})
    engine = engine_for(db, d, circuit)
    if outcome is not None:
        engine.auctioneer.outcome = outcome
    return Server(engine)


def run_clients(url, tmp_path, circuit, bids_of, retry_for=120.0):
    reports, errors = {}, []

    def go(i):
        try:
            c = BidderClient(url, tmp_path / f"b{i}", lambda r: bids_of(i, r), circuit=circuit, retry_for=retry_for,
                             expected={"manifest_sha256": circuit.manifest_sha256(), "vk_sha256": circuit.vk_sha256()})
            reports[i] = c.run()
        except Exception as e:  # reported to the test
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    return threads, reports, errors


def clients_errors(srv, tmp_path, circuit):
    """Both bidders' clients run against ``srv`` to the end (then the server stops): their errors."""
    try:
        threads, _, errors = run_clients(srv.url, tmp_path, circuit, lambda i, r: BIDS.get((i, r)))
        for t in threads:
            t.join(120)
    finally:
        srv.stop()
    return errors


BIDS = {(0, 1): [0.75, 0.25], (1, 1): [0.5, 0.875], (0, 2): [0.625, 0.5], (0, 3): [0.25, 0.5], (1, 3): [0.875, 0.125]}


def test_an_honest_run_over_http_is_checked_by_every_party(tmp_path, circuit):
    srv = make_service(tmp_path, circuit, n_rounds=3, audits=2)
    try:
        threads, reports, errors = run_clients(srv.url, tmp_path, circuit, lambda i, r: BIDS.get((i, r)))
        mon = Monitor(srv.url, state=tmp_path / "mon", circuit=circuit)
        report = mon.follow(timeout=120, interval=0.2)
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert report.verdict["valid"] and report.rounds_checked == 3 and report.consistency_checks > 0
        assert (tmp_path / "mon" / "monitor.checkpoint.json").is_file()
        r0, r1 = reports[0], reports[1]
        assert (r0.rounds_bid, r0.rounds_passed, r1.rounds_bid, r1.rounds_passed) == (3, 0, 2, 1)
        assert r0.proofs_verified == r0.audit_rounds and len(r0.audit_rounds) == 2 and r1.proofs_verified == r0.audit_rounds
        # the SRS the proofs were verified against is labelled by its hash (the test circuit's dev SRS: untrusted)
        assert r0.srs == report.verdict["srs"] and r0.srs["trusted"] is False and r0.srs["source"] == "untrusted"
        assert r0.unconfirmed is None and r1.unconfirmed is None
        assert r0.consistency_checks > 3
        # the log holds commitments, never bids or salts; the outcome of round 2 has bidder 1 absent
        log = srv.engine.ledger
        text = "\n".join(e.payload for e in log.entries() if e.kind != "proof")
        assert "0.875" not in text and "0.625" not in text
        assert json.loads(log.entries(kind=OUTCOME, round=2)[0].payload)["participants"] == [1, 0]
        assert log.verify_chain().n_entries == len(log)
        # the public log API serves proofs that check against the signed checkpoint
        remote = RemoteLog(srv.url)
        view = LogView(srv.engine.ann.auctioneer)
        view.observe(remote)
        for seq in (0, 5, len(log) - 1):
            view.check_included(remote, seq)
    finally:
        srv.stop()


@pytest.mark.parametrize("why", ["silent", "no_dispute"])
def test_a_bidder_that_commits_and_falls_silent_voids_its_round_and_the_run_goes_on(tmp_path, circuit, why):
    """Liveness: bidder 1 commits in round 2, then neither opens nor disputes its no_opening
    rejection nor abstains (it crashed, or means harm). The round used to wait for it for ever (the
    log has no trusted time). Now the server waits until the announced dispute deadline, then leaves
    it out: the round is void, nothing sold (voiding gives the auctioneer nothing a shill's
    abstention did not, so its own clock is enough), and the run goes on; every party's checks pass.
    ``no_dispute``: its opening was lost on the way (or the server lied) and the client runs with
    ``dispute=False`` (``bidder run --no-dispute``): its bids never reach the public log, the round is
    void the same way."""
    srv = make_service(tmp_path, circuit, deadlines={"dispute_s": 1.0, "open_s": 1.0})
    reports, errors = {}, []
    bids = {**BIDS, (1, 2): [0.5, 0.5]}

    def go(i):
        try:
            c = BidderClient(srv.url, tmp_path / f"b{i}", lambda r: bids.get((i, r)), circuit=circuit, retry_for=60.0,
                             expected={"manifest_sha256": circuit.manifest_sha256(), "vk_sha256": circuit.vk_sha256()})
            if i == 1:  # silent in round 2 once committed (or its opening lost, and it does not dispute)
                real_open, real_rejected = c._open, c.bidder.rejected_for_no_opening
                c._open = lambda r: None if r == 2 else real_open(r)
                if why == "silent":
                    c.bidder.rejected_for_no_opening = lambda r: False if r == 2 else real_rejected(r)
                else:
                    c.dispute = False
            reports[i] = c.run()
        except Exception as e:  # reported to the test
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i,), daemon=True) for i in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        assert not any(t.is_alive() for t in threads), "the run stalled on the silent bidder"
        assert errors == [], errors
        with Ledger.open(tmp_path / "a.db", writer=False) as ledger:
            st = read_state(ledger)
            assert public_checks(st) == []
            out = [e for e in ledger.entries(kind=OUTCOME, round=2)]
            assert len(out) == 1 and out[0].data["participants"] == [0, 0] and out[0].data["payment"] == [0.0, 0.0]
            assert [e.data["participants"] for e in ledger.entries(kind=OUTCOME, round=3)] == [[1, 1]]
            assert ledger.entries(kind="dispute") == []  # bidder 1's bids never reached the public log
        assert reports[0].outcomes_checked == 3 and reports[1].disputes == 0
        assert reports[1].not_disputed == (1 if why == "no_dispute" else 0)
    finally:
        srv.stop()


def test_the_service_runs_on_postgresql_in_reveal_mode(tmp_path, circuit):
    """The same run with the log in PostgreSQL (the server option), audited in reveal mode; skipped
    without a test server unless CI requires it (see tests/test_storage_backends.py)."""
    import os
    import uuid

    url = os.environ.get("ZKAUCTION_TEST_PG_URL")
    if not url:
        if os.environ.get("CI") or os.environ.get("ZKAUCTION_REQUIRE_PG"):
            pytest.fail("ZKAUCTION_TEST_PG_URL is not set (.ci/run starts a PostgreSQL)")
        pytest.skip("no PostgreSQL test server (ZKAUCTION_TEST_PG_URL unset; scripts/pg.sh start)")
    db = url + ("&" if "?" in url else "?") + f"log=svc_{uuid.uuid4().hex[:12]}"
    srv = make_service(tmp_path, circuit, n_rounds=2, audits=1, mode="reveal", db=db)
    try:
        threads, reports, errors = run_clients(srv.url, tmp_path, circuit, lambda i, r: BIDS.get((i, r)))
        from zkauction.protocol.auctioneer import circuit_outcome_function

        report = Monitor(srv.url, circuit=circuit, outcome=circuit_outcome_function(circuit)).follow(timeout=120, interval=0.2)
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert report.verdict["valid"] and report.rounds_checked == 2
        assert srv.engine.ledger.entries(kind="openings")  # the audited round's openings, published
    finally:
        srv.stop()
    with Ledger.open(db, writer=False) as reader:
        assert reader.verify_chain().n_entries == report.entries


def test_bad_requests_get_a_4xx_naming_the_problem_and_change_nothing(tmp_path, circuit):
    srv = make_service(tmp_path, circuit, n_rounds=2)
    try:
        http = httpx.Client(base_url=srv.url, timeout=10)
        size = len(srv.engine.ledger)
        bidder = SigningKey.load(tmp_path / "b0" / "key.pem")
        log_id = srv.engine.log_id
        good = Statement.sign(bidder, log_id, "registration", {"bidder": 0, "announcement": log_id, "seed_commitment": "00" * 32})
        cases = [
            ({"statements": [{**good.to_dict(), "signer": "xyz"}]}, 422, "signer"),
            ({"statements": [{k: v for k, v in good.to_dict().items() if k != "payload"}]}, 422, "payload"),
            ({"statements": [{**good.to_dict(), "signature": "ab" * 64}]}, 400, "does not verify"),
            ({"statements": [Statement.sign(SigningKey.generate(), log_id, "registration", {"bidder": 0}).to_dict()]}, 400,
             "not a bidder"),
            ({"statements": [Statement.sign(bidder, log_id, "outcome", {"bidder": 0}, round=1).to_dict()]}, 400, "may submit only"),
            ({"statements": [Statement.sign(bidder, log_id, "registration", {"bidder": 1}).to_dict()]}, 400, "payload.bidder"),
            ({"statements": [Statement.sign(bidder, log_id, BID_COMMITMENT, {"bidder": 0, "commitment": "zz"}, round=1).to_dict()]},
             400, "commitment"),
            ({"statements": []}, 422, "statements"),
            ({"statements": [{**Statement.sign(bidder, log_id, BID_COMMITMENT, {"bidder": 0, "commitment": "00" * 32},
                                               round=2**70).to_dict()}]}, 422, "round"),
        ]
        for body, status, needle in cases:
            r = http.post("/api/statements", json=body)
            assert r.status_code == status, (body, r.text)
            assert needle in r.text, (needle, r.text)
        r = http.post("/api/statements", content=b'{"statements": [' + b" " * (70 * 1024) + b"]}",
                      headers={"content-type": "application/json"})
        assert r.status_code == 413 and "exceeds the limit" in r.text
        r = http.post("/api/rounds/1/opening", content=b'{"bidder": 0, "bids": [NaN, 0.5], "salt": "' + b"00" * 32 +
                      b'", "signature": "' + b"ab" * 64 + b'"}', headers={"content-type": "application/json"})
        assert r.status_code == 422 and "bids" in r.text
        r = http.post("/api/rounds/1/opening", json={"bidder": 0, "bids": [0.5, 0.5], "salt": "00" * 32, "signature": "ab" * 64})
        assert r.status_code == 409 and "opening phase" in r.text
        r = http.post("/api/rounds/1/pass", json={"bidder": 1, "signature": "ab" * 64})
        assert r.status_code == 400 and "not signed by that bidder" in r.text
        for path, params, status, needle in [  # every read endpoint, bad parameters
            ("/api/status", {"phase": 9}, 422, "phase"), ("/api/status", {"wait": 600}, 422, "wait"),
            ("/api/status", {"round": -1}, 422, "round"), ("/api/log/entries", {"start": -1}, 422, "start"),
            ("/api/log/entries", {"kind": "x" * 100}, 422, "kind"), ("/api/log/consistency", {"old": 50, "new": 1}, 400, "old"),
            ("/api/log/consistency", {}, 422, "old"), ("/api/log/inclusion", {"seq": 0, "size": 99}, 400, "size"),
            ("/api/log/entry/abc", {}, 422, "seq"), ("/api/summary", {"limit": 0}, 422, "limit"),
            ("/api/nothing", {}, 404, ""), ("/api/log/entries", {"round": 2**70}, 422, "round"),
            ("/api/log/entry/" + str(2**70), {}, 404, "no entry"), ("/api/status", {"round": 2**70}, 422, "round"),
        ]:
            r = http.get(path, params=params)
            assert r.status_code == status and needle in r.text, (path, params, r.status_code, r.text)
        assert http.delete("/api/log/entry/0").status_code == 405 and http.put("/api/statements", json={}).status_code == 405
        r = http.post("/api/statements", content=b"not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        r = http.post("/api/rounds/x/pass", json={"bidder": 0, "signature": "ab" * 64})
        assert r.status_code == 422 and "round" in r.text
        assert http.get("/api/log/inclusion", params={"seq": 99}).status_code == 400
        assert http.get("/api/log/entry/99").status_code == 404
        assert http.get("/api/log/entries", params={"limit": 5000}).status_code == 422
        assert len(srv.engine.ledger) == size  # nothing logged, nothing changed
        # a good registration, sent twice: logged once (idempotent)
        assert http.post("/api/statements", json={"statements": [good.to_dict()]}).status_code == 200
        assert http.post("/api/statements", json={"statements": [good.to_dict()]}).status_code == 200
        assert len(srv.engine.ledger) == size + 1
    finally:
        srv.stop()


def test_a_bidder_started_before_the_server_retries_then_names_the_unreachable_server(tmp_path):
    init_state(tmp_path / "b")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there
    with pytest.raises(ProtocolError, match="the server has been unreachable for 0.3 s"):
        BidderClient(url, tmp_path / "b", lambda r: None, retry_for=0.3)


def test_the_server_never_logs_a_copy_of_another_bidders_commitment(tmp_path, circuit):
    """A commitment names bids and a salt, not a bidder: a copy would open with the other bidder's
    opening (a shill bidding exactly that bid). The honest server refuses it (409), and anything but
    the canonical lower-case spelling (400): the eighth review's bidder sent its own commitment in
    upper case, which the reader recorded as sent and the honest close listed lower-cased, so every
    verifier named the honest auctioneer's breach (penalty due)."""
    srv = make_service(tmp_path, circuit, n_rounds=2)
    try:
        remote, log_id = RemoteLog(srv.url), srv.engine.log_id
        keys = [SigningKey.load(tmp_path / f"b{i}" / "key.pem") for i in range(2)]
        for i, k in enumerate(keys):
            remote.append("registration", {"bidder": i, "announcement": log_id, "seed_commitment": f"{i}" * 64}, k)
        assert remote.status(1, 0, wait=10.0)["round"] == 1
        c = "1a" * 31 + "00"
        remote.append(BID_COMMITMENT, {"bidder": 0, "commitment": c}, keys[0], round=1)
        size = len(srv.engine.ledger)
        with pytest.raises(Refused, match="already another bidder's") as err:
            remote.append(BID_COMMITMENT, {"bidder": 1, "commitment": c}, keys[1], round=1)
        assert err.value.status == 409
        own = "3c" * 31 + "0a"
        for spelling in (c.upper(), own.upper(), own[:-1] + "A"):
            with pytest.raises(Refused, match="lower-case hex") as err:
                remote.append(BID_COMMITMENT, {"bidder": 1, "commitment": spelling}, keys[1], round=1)
            assert err.value.status == 400
        assert len(srv.engine.ledger) == size
        remote.append(BID_COMMITMENT, {"bidder": 1, "commitment": own}, keys[1], round=1)
        assert remote.status(1, 1, wait=10.0)["phase"] >= 1  # closed, listing both as logged
        assert public_checks(read_state(srv.engine.ledger)) == []
    finally:
        srv.stop()


def test_the_monitor_names_an_announcement_misstating_the_circuits_terms_at_once(tmp_path, circuit):
    from zkauction.protocol.auctioneer import Auctioneer
    from zkauction.protocol.demo import auction_info

    keys = [init_state(tmp_path / f"b{i}") for i in range(2)]
    d = tmp_path / "auctioneer"
    d.mkdir(mode=0o700)
    key = SigningKey.generate()
    key.save(d / "auctioneer.pem")
    with Ledger.open(tmp_path / "a.db") as ledger:  # the circuit's hashes, at input scale 11 (its own is 10)
        Auctioneer(key, ledger, None).announce(
            n=2, m=2, support=[[[0.0, 1.0]] * 2] * 2, input_scale=circuit.input_scale + 1, auction=auction_info(circuit),
            rounds=2, audits=1, penalty=10.0, mode="zk", bidders=keys, third_party=None, deadlines=FAST)
    srv = Server(engine_for(tmp_path / "a.db", d, circuit))
    try:
        with pytest.raises(MonitorAlert, match="breach: ledger entry 0: the announcement's input_scale is 11, but the circuit's is 10"):
            Monitor(srv.url, circuit=circuit).poll()
        assert Monitor(srv.url).poll() is False  # without the circuit there is nothing to compare with
    finally:
        srv.stop()


def test_a_server_that_lies_in_the_outcome_is_named_by_the_monitor(tmp_path, circuit, monkeypatch):
    """The auctioneer's outcome function charges more than the allocated value allows (and gives
    an item twice): the public checks of that round name it, without any proof."""
    from zkauction.service import client as client_module

    def lie(bids, salts):  # item 0 to both (free: no winner's own check sees it, the public checks do)
        return Outcome(((1.0, 1.0), (1.0, 0.0)), (0.0, 0.0))

    # once the server is gone, a client waits out the announced deadlines (here 10 s) and calls it silent
    monkeypatch.setattr(client_module, "liveness_limit_s", lambda ann, answers=1: 10.0)
    srv = make_service(tmp_path, circuit, n_rounds=2, outcome=lie)
    try:
        threads, reports, errors = run_clients(srv.url, tmp_path, circuit, lambda i, r: BIDS.get((i, r)), retry_for=1.0)
        mon = Monitor(srv.url, circuit=circuit)
        with pytest.raises(MonitorAlert, match="breach: .*round 1"):
            mon.follow(timeout=60, interval=0.2)
    finally:
        srv.stop()
    for t in threads:  # the clients give up once the server is gone
        t.join(60)
        assert not t.is_alive()


def test_every_bidder_client_runs_the_public_checks_on_the_log_it_holds(tmp_path, circuit):
    """No monitor needed: at the end each client reads the log its kept checkpoint commits to and
    names the lying round itself (the audit may well have drawn another round)."""
    from zkauction.service.client import AuditFailed

    def lie(bids, salts):  # item 0 to both (free: no winner's own check sees it, the public checks do)
        return Outcome(((1.0, 1.0), (1.0, 0.0)), (0.0, 0.0))

    # reveal mode: in zk mode the honest server's own check refuses to log a proof of the lie (the
    # run stops there, see tests/test_pool.py); here the run ends and the clients judge the log
    errors = clients_errors(make_service(tmp_path, circuit, n_rounds=2, outcome=lie, mode="reveal"), tmp_path, circuit)
    assert len(errors) == 2 and all(isinstance(e, AuditFailed) for e in errors), errors
    assert all("breach by the auctioneer" in str(e) and "round 1" in str(e) for e in errors), errors
    assert all(e.exit_code == 1 for e in errors)


def test_in_reveal_mode_every_bidder_client_recomputes_the_audited_rounds(tmp_path, circuit):
    """Winners pay halfway up to their bids' worth in every round: inside every public bound and each
    winner's own check; the audit's published openings show it, and each client says so itself."""
    from test_protocol import within_bids

    from zkauction.protocol.auctioneer import circuit_outcome_function
    from zkauction.service.client import AuditFailed

    srv = make_service(tmp_path, circuit, n_rounds=2, audits=2, mode="reveal",
                       outcome=within_bids(circuit_outcome_function(circuit)))
    try:
        # a bidder that agreed to zk mode only (`zkauction bidder run`'s default) does not take part
        c = BidderClient(srv.url, tmp_path / "b0", lambda r: None, expected={"mode": "zk"})
        with pytest.raises(ProtocolError, match="the announcement's mode is 'reveal', not the 'zk' this bidder was told"):
            c.bidder.announcement
    except BaseException:
        srv.stop()
        raise
    errors = clients_errors(srv, tmp_path, circuit)
    assert len(errors) == 2 and all(isinstance(e, AuditFailed) for e in errors), errors
    assert all("fails (reveal): round 1: published payment" in str(e) for e in errors), errors


def test_a_server_showing_another_history_is_refused_by_a_client_that_kept_a_checkpoint(tmp_path, circuit):
    """Two servers under the same auctioneer key and announcement (the same log id), whose logs
    diverge after registration: a client that accepted one cannot be shown the other."""
    srv = make_service(tmp_path, circuit, n_rounds=2)
    key = srv.engine.key
    try:
        remote = RemoteLog(srv.url)
        view = LogView(srv.engine.ann.auctioneer)
        for i in range(2):
            bk = SigningKey.load(tmp_path / f"b{i}" / "key.pem")
            remote.append("registration", {"bidder": i, "announcement": srv.engine.log_id, "seed_commitment": "11" * 32}, bk)
        end = time.monotonic() + 20
        while srv.engine.status.round < 1:
            assert time.monotonic() < end
            time.sleep(0.05)
        view.observe(remote)
        kept = view.kept.size
    finally:
        srv.stop()
    # the same announcement, other registrations: another history of the same log id
    import shutil

    other = tmp_path / "other"
    other.mkdir()
    with Ledger.open(tmp_path / "a.db", writer=False) as src, Ledger.open(other / "a.db") as dst:
        dst.storage.append_many([(src.get(0), None)])
        dst2 = Ledger(dst.storage)
        for i in range(2):
            bk = SigningKey.load(tmp_path / f"b{i}" / "key.pem")
            dst2.append("registration", {"bidder": i, "announcement": src.log_id, "seed_commitment": "22" * 32}, bk)
        dst2.checkpoint(key)
    shutil.copytree(tmp_path / "auctioneer", other / "auctioneer")
    srv2 = Server(engine_for(other / "a.db", other / "auctioneer", circuit))
    try:
        with pytest.raises((ForkError, RollbackError)):
            view.observe(RemoteLog(srv2.url))
        assert view.kept.size == kept
    finally:
        srv2.stop()


def test_bids_files_are_checked_line_by_line_before_anything_is_sent():
    assert parse_bids("round,a,b\n1,0.5,0.25\n3,0.75,1\n") == {1: [0.5, 0.25], 3: [0.75, 1.0]}
    assert parse_bids('{"round": 2, "bids": [0.5, 0.5]}\n\n{"round": 4, "bids": [1, 0]}\n') == {2: [0.5, 0.5], 4: [1.0, 0.0]}
    for text, needle in [
        ("round,a,b\n1,0.5,x\n", "line 2, field bid 2: 'x'"),
        ("1,0.5,nan\n", "line 1, field bid 2"),
        ("0,0.5,0.5\n", "line 1, field round"),
        ("1,0.5,0.5\n1,0.5,0.5\n", "line 2, field round: round 1 is listed twice"),
        ('{"round": 1, "bids": [0.5]}\n{"round": 2}\n', "line 2: expected an object with 'round' and 'bids'"),
        ('{"round": 1, "bids": [0.5, true]}\n', "line 1, field bid 2"),
        ('{"round": 1.5, "bids": [0.5]}\n', "line 1, field round"),
        ('{"round": 1, "bids": [0.5]\n', "line 1: not JSON"),
    ]:
        with pytest.raises(BidsFileError, match=needle.replace("(", r"\(")):
            parse_bids(text)
    with pytest.raises(BidsFileError, match="line 1, field bids: 1 bids, the auction has 2 items"):
        parse_bids("1,0.5\n", m=2)


def test_cli_bidder_run_refuses_a_bad_bids_file_with_exit_2(tmp_path):
    import subprocess
    import sys

    init_state(tmp_path / "b")
    (tmp_path / "bids.csv").write_text("round,a,b\n1,0.5,0.5\n2,0.5,oops\n")
    p = subprocess.run([sys.executable, "-m", "zkauction", "bidder", "run", "--url", "http://127.0.0.1:9", "--state",
                        str(tmp_path / "b"), "--bids", str(tmp_path / "bids.csv")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "line 3, field bid 2: 'oops'" in p.stderr, p.stderr
    (tmp_path / "ok.csv").write_text("1,0.5,0.5\n")
    p = subprocess.run([sys.executable, "-m", "zkauction", "bidder", "run", "--url", "http://127.0.0.1:9", "--state",
                        str(tmp_path / "b"), "--bids", str(tmp_path / "ok.csv"), "--mode", "ttp"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--mode 'ttp': expected zk or reveal" in p.stderr, p.stderr
    (tmp_path / "keys").write_text("not-a-key\n")
    p = subprocess.run([sys.executable, "-m", "zkauction", "serve", "--circuit", str(CIRCUIT), "--db", str(tmp_path / "x.db"),
                        "--bidders", str(tmp_path / "keys"), "--rounds", "2", "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "line 1: not an Ed25519 public key" in p.stderr, p.stderr
    (tmp_path / "keys2").write_text("\n".join(init_state(tmp_path / f"k{i}") for i in range(2)) + "\n")
    p = subprocess.run([sys.executable, "-m", "zkauction", "serve", "--circuit", str(CIRCUIT), "--db", str(tmp_path / "y.db"),
                        "--bidders", str(tmp_path / "keys2"), "--rounds", "2", "--penalty", "3", "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--penalty 3 is not above 4.02344 (T x aRgt*, with the public checks' rounding)" in p.stderr, p.stderr
    assert not (tmp_path / "y.db").exists() or (tmp_path / "y.db").stat().st_size == 0
    assert not (tmp_path / "x.db").exists() or (tmp_path / "x.db").stat().st_size == 0
