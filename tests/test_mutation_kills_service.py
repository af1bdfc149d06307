"""Tests written for the mutants of the networked parties (zkauction/service/) that the service tests
let survive (benchmarks/mutation/README.md, "Fifth run"). Each plays a malformed request, a
statement at the wrong time, or a server that lies to the party under test, and asserts the
refusal or the alarm.

Most run without a real server: the engine is driven directly on its event loop, and the remote
parties (RemoteLog, BidderClient, Monitor) talk to :class:`LogServer`, an ``httpx.MockTransport``
that serves a log built locally, as a cheating auctioneer's server would serve it (another
checkpoint, fewer entries, an error page, an answer for another statement)."""

from __future__ import annotations

import asyncio
import json
import shutil

import httpx
import pytest

from test_service import circuit, make_service  # noqa: F401  (circuit: the module fixture)
from test_service_attacks import reached, registered, send_pass

from zkauction.protocol.checkpoint import ForkError
from zkauction.protocol.entries import Statement
from zkauction.protocol.local import LocalRun, private_dir
from zkauction.protocol.log import Ledger, LedgerError, SignedCheckpoint, SigningKey, leaf_hash_of
from zkauction.protocol.state import (ABSTENTION, BID_COMMITMENT, COMMITMENTS_CLOSED, DISPUTE, PROOF, REGISTRATION,
                                      REVEALS_CLOSED, SEED_REVEAL, ProtocolError, read_state, seed_commitment, unique_key)
from zkauction.service import client as client_module
from zkauction.service.client import AuditFailed, BidderClient, init_state
from zkauction.service.engine import DEFAULT_DEADLINES, Rejected, Status, announce, engine_for, pass_message
from zkauction.service.monitor import Monitor, MonitorAlert
from zkauction.service.remote import Malformed, Refused, RemoteLog, Unavailable, verified_replica
from zkauction.zk.commitments import commit

URL = "http://auctioneer.test"


# ------------------------------------------------------------------------------------------ helpers


class LogServer:
    """An auctioneer's server as an httpx transport, over ``ledger``: it serves the first ``size``
    entries (all by default) and ``checkpoint`` (the ledger's newest by default; None: none yet).
    ``status`` (a dict, or a callable returning one or raising) answers /api/status; ``post``
    (a callable (path, body) -> JSON) answers POSTs."""

    def __init__(self, ledger, *, size=None, checkpoint="latest", status=None, post=None):
        self.ledger, self.size, self.checkpoint, self.status, self.post = ledger, size, checkpoint, status, post

    def n(self):
        return len(self.ledger) if self.size is None else self.size

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, q = request.url.path, request.url.params
        if request.method == "POST":
            return httpx.Response(200, json=self.post(path, json.loads(request.content)))
        if path == "/api/status":
            s = self.status() if callable(self.status) else self.status
            return httpx.Response(200, json=s)
        if path == "/api/log/entries":
            stop = min(int(q.get("stop", self.n())), self.n())
            rnd = q.get("round")
            got = self.ledger.storage.scan(int(q.get("start", 0)), q.get("kind"), None if rnd is None else int(rnd), stop)
            return httpx.Response(200, json={"entries": [e.to_dict() for e in got], "size": self.n(), "more": False})
        if path.startswith("/api/log/entry/"):
            seq = int(path.rsplit("/", 1)[1])
            if seq >= self.n():
                return httpx.Response(404, json={"detail": f"the log has no entry {seq}"})
            return httpx.Response(200, json=self.ledger.get(seq).to_dict())
        if path == "/api/log/checkpoint":
            cp = self.ledger.latest_checkpoint() if self.checkpoint == "latest" else self.checkpoint
            if cp is None:
                return httpx.Response(404, json={"detail": "the log has no signed checkpoint yet"})
            return httpx.Response(200, json={"checkpoint": cp.to_dict(), "size": self.n()})
        if path == "/api/log/consistency":
            old, new = int(q["old"]), int(q.get("new", self.n()))
            proof = self.ledger.consistency_proof(old, new) if old else []
            return httpx.Response(200, json={"old": old, "new": new, "proof": proof, "root": self.ledger.root(new)})
        if path == "/api/log/inclusion":
            seq, size = int(q["seq"]), int(q.get("size", self.n()))
            return httpx.Response(200, json={"seq": seq, "size": size, "proof": self.ledger.inclusion_proof(seq, size)})
        return httpx.Response(404, json={"detail": "not found"})

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=URL, transport=httpx.MockTransport(self.handle))

    def remote(self) -> RemoteLog:
        return RemoteLog(URL, client=self.client())


def local_run(tmp_path, outcome=None, *, mode="reveal", rounds=3, audits=1, auction=None, input_scale=12):
    from test_protocol import PARTICIPATION, SETTING, small_net

    from zkauction.protocol.auctioneer import net_outcome_function

    fn = net_outcome_function(small_net())
    return LocalRun.create(tmp_path / "l.db", outcome(fn) if outcome else fn, setting=SETTING, participation=PARTICIPATION,
                           input_scale=input_scale, auction=auction or {"name": "test-net"}, rounds=rounds, audits=audits,
                           mode=mode, seed=7, deadlines=DEFAULT_DEADLINES), fn  # (as served: bidders refuse none)


def replica_of(ledger, upto):
    """A new in-memory ledger holding ``ledger``'s first ``upto`` entries (to continue differently)."""
    r = Ledger.in_memory()
    for e in ledger.entries(stop=upto):
        r.storage.append_many([(e, None)])
        r.tree.append(leaf_hash_of(e))
        r._head = e.hash
    return r


def bidder_state(run, i, dest):
    """Bidder ``i`` of a local run as a client's state folder (its key and secret)."""
    dest.mkdir(mode=0o700)
    shutil.copy(private_dir(run.db) / f"bidder_{i}.pem", dest / "key.pem")
    shutil.copy(private_dir(run.db) / f"bidder_{i}.secret", dest / "secret")
    return dest


@pytest.fixture
def served_client(monkeypatch):
    """BidderClient's RemoteLog pointed at a LogServer (set ``served_client.server`` first)."""
    class Holder:
        server: LogServer | None = None

    h = Holder()
    monkeypatch.setattr(client_module, "RemoteLog", lambda url: h.server.remote())
    return h


def fresh_engine(tmp_path, circuit, rounds=2):
    """An announced run's engine, not started: the test sets its status and submits directly."""
    keys = [init_state(tmp_path / f"b{i}") for i in range(2)]
    d = tmp_path / "auctioneer"
    d.mkdir(mode=0o700)
    SigningKey.generate().save(d / "auctioneer.pem")
    with Ledger.open(tmp_path / "a.db") as ledger:
        announce(ledger, SigningKey.load(d / "auctioneer.pem"), circuit, bidders=keys, rounds=rounds, audits=1,
                 penalty=None, mode="reveal")
    return engine_for(tmp_path / "a.db", d, circuit), [SigningKey.load(tmp_path / f"b{i}" / "key.pem") for i in range(2)]


def submit(engine, *sts):
    async def go():
        return await asyncio.gather(*(engine.submit(st) for st in sts), return_exceptions=True)

    return asyncio.run(go())


def refused(result, status, match):
    assert isinstance(result, Rejected), f"admitted: {result}"
    assert result.status == status and match in str(result), (result.status, str(result))


# ------------------------------------------------------------------- the engine: who may say what, when


def test_an_engine_opened_with_another_key_than_the_announced_auctioneer_refuses_to_run(tmp_path, circuit):
    """engine.py Engine.__init__: a server started with the wrong key would log entries the reader
    blames on nobody it knows (every one a breach of the announced auctioneer's log); engine_for
    closes the log it opened and raises."""
    engine, _ = fresh_engine(tmp_path, circuit)
    engine.close()
    SigningKey.generate().save(tmp_path / "auctioneer" / "auctioneer.pem")
    with pytest.raises(ProtocolError, match="not the auctioneer the log's announcement names"):
        engine_for(tmp_path / "a.db", tmp_path / "auctioneer", circuit)
    with Ledger.open(tmp_path / "a.db") as again:  # closed by engine_for: a writer can open it again
        assert len(again) == 1


def test_the_auctioneer_announces_only_as_many_bidder_keys_as_the_circuit_has_bidders(tmp_path, circuit):
    keys = [SigningKey.generate().public_hex for _ in range(3)]
    with Ledger.open(tmp_path / "a.db") as ledger, pytest.raises(ProtocolError, match="circuit is for 2 bidders; 3"):
        announce(ledger, SigningKey.generate(), circuit, bidders=keys, rounds=2, audits=1, penalty=None, mode="reveal")
    with Ledger.open(tmp_path / "a.db") as ledger:
        assert len(ledger) == 0


def test_per_round_statements_need_a_round_and_registrations_take_none(tmp_path, circuit):
    engine, (k0, k1) = fresh_engine(tmp_path, circuit)
    try:
        log_id = engine.log_id
        engine.status = Status(1, 0)
        com = "0" * 63 + "1"
        (r,) = submit(engine, Statement.sign(k0, log_id, BID_COMMITMENT, {"bidder": 0, "commitment": com}))
        refused(r, 400, "bid_commitment needs round")
        engine.status = Status(0, 0)
        reg = {"bidder": 0, "announcement": log_id, "seed_commitment": "11" * 32}
        (r,) = submit(engine, Statement.sign(k0, log_id, REGISTRATION, reg, round=1))
        refused(r, 400, "registration takes no round")
        assert len(engine.ledger) == 1
    finally:
        engine.close()


def test_a_statement_sent_twice_at_once_does_not_sink_the_other_bidders_statements(tmp_path, circuit):
    """engine.py Engine.submit's "being logged by another request": statements arriving together
    are logged in one transaction, so the same statement twice in one batch (a bidder's retry, or
    a malicious bidder on purpose) would fail the whole batch: every other bidder's statement in it
    refused too. The second copy is refused on its own."""
    engine, (k0, k1) = fresh_engine(tmp_path, circuit)
    try:
        log_id = engine.log_id
        reg = lambda i, k: Statement.sign(k, log_id, REGISTRATION,  # noqa: E731
                                          {"bidder": i, "announcement": log_id, "seed_commitment": f"{i + 1}" * 64})
        first, again, other = submit(engine, reg(0, k0), reg(0, k0), reg(1, k1))
        refused(again, 409, "is being logged by another request")
        assert first.kind == other.kind == REGISTRATION and len(engine.ledger) == 3
        (same,) = submit(engine, reg(0, k0))  # once logged, the same statement again is answered with its entry
        assert same == first
    finally:
        engine.close()


def test_registrations_only_before_round_1_closes_and_only_for_this_announcement(tmp_path, circuit):
    engine, (k0, k1) = fresh_engine(tmp_path, circuit)
    try:
        log_id = engine.log_id
        other = {"bidder": 0, "announcement": "ab" * 32, "seed_commitment": "11" * 32}
        (r,) = submit(engine, Statement.sign(k0, log_id, REGISTRATION, other))
        refused(r, 409, "another announcement")
        late = {"bidder": 1, "announcement": log_id, "seed_commitment": "22" * 32}
        for s in (Status(1, 1), Status(2, 0)):
            engine.status = s
            (r,) = submit(engine, Statement.sign(k1, log_id, REGISTRATION, late))
            refused(r, 409, "registration closed")
        assert len(engine.ledger) == 1
    finally:
        engine.close()


def test_statements_outside_their_phase_are_refused(tmp_path, circuit):
    """A commitment for another round than the one in its commit phase, or after that phase; an
    abstention or dispute before the close; a seed reveal before round T's outcome (which would let
    the auctioneer compute the draw before playing): each 409, nothing logged."""
    engine, (k0, k1) = fresh_engine(tmp_path, circuit)
    try:
        log_id = engine.log_id
        com = {"bidder": 0, "commitment": "0" * 63 + "1"}
        for s, rnd in ((Status(1, 0), 2), (Status(1, 1), 1), (Status(1, 3), 1)):
            engine.status = s
            (r,) = submit(engine, Statement.sign(k0, log_id, BID_COMMITMENT, com, round=rnd))
            refused(r, 409, f"round {rnd} is not in its commit phase")
        for s, rnd in ((Status(1, 0), 1), (Status(1, 1), 2)):
            engine.status = s
            for kind in (ABSTENTION, DISPUTE):
                (r,) = submit(engine, Statement.sign(k1, log_id, kind, {"bidder": 1}, round=rnd))
                refused(r, 409, f"{kind} of round {rnd} only between its close and its outcome")
        for s in (Status(0, 0), Status(2, 1), Status(3, 1)):  # T = 2: only (3, 0) is the reveal phase
            engine.status = s
            (r,) = submit(engine, Statement.sign(k0, log_id, SEED_REVEAL, {"bidder": 0, "seed": "11" * 32}))
            refused(r, 409, "seed reveals only in the reveal phase")
        assert len(engine.ledger) == 1
    finally:
        engine.close()


def test_a_pass_is_taken_only_in_its_rounds_commit_phase(tmp_path, circuit):
    """A signed pass for round 2 sent during round 1 would otherwise be kept and end round 2's
    commit phase early, before that bidder (or the others) had a chance to commit."""
    engine, (k0, _) = fresh_engine(tmp_path, circuit)
    try:
        engine.status = Status(1, 0)
        with pytest.raises(Rejected, match="round 2 is not in its commit phase") as e:
            engine.receive_pass(2, 0, k0.sign(pass_message(engine.log_id, 2, 0)))
        assert e.value.status == 409 and engine.passes == {}
        engine.receive_pass(1, 0, k0.sign(pass_message(engine.log_id, 1, 0)))
        assert engine.passes == {1: {0}}
    finally:
        engine.close()


def test_an_opening_without_an_open_commitment_is_a_400_not_a_server_error(tmp_path, circuit):
    """engine.py receive_opening turns the auctioneer's CommitmentError into a 400 naming it (an
    unhandled one is a 500, which clients read as "server down" and retry for minutes)."""
    srv = make_service(tmp_path, circuit, n_rounds=1, mode="reveal")
    try:
        (b0, k0, remote), (b1, k1, _) = registered(tmp_path, srv)
        b0.commit(1, [0.5, 0.5])
        send_pass(remote, k1, srv.engine.log_id, 1, 1)
        assert reached(remote, 1, 1)
        signed = b0.open(1)
        body = {"bids": list(signed.opening.bids), "salt": signed.opening.salt, "signature": signed.signature}
        with pytest.raises(Refused) as e:  # bidder 1 passed: it has nothing to open
            remote.send("/api/rounds/1/opening", {**body, "bidder": 1})
        assert e.value.status == 400 and "bidder 1 has no open commitment" in str(e.value)
        with pytest.raises(Refused) as e:  # another bidder's signature
            remote.send("/api/rounds/1/opening", {**body, "bidder": 0, "signature": k1.sign(b"x")})
        assert e.value.status == 400 and "not signed by bidder 0" in str(e.value)
    finally:
        srv.stop()


# -------------------------------------------------------------- RemoteLog: what the server's answers mean


@pytest.mark.parametrize("answer, method, raised, status", [
    (httpx.Response(503, text="overloaded"), "GET", Unavailable, None),
    (httpx.Response(403, json={"detail": "no"}), "POST", Refused, 403),
    (httpx.Response(403, json={"detail": "no"}), "GET", Unavailable, None),
    (httpx.Response(404, json={"detail": "no"}), "GET", Unavailable, None),
    (httpx.Response(200, text="<html>a captive portal</html>"), "GET", Malformed, None),
    ("connect", "GET", Unavailable, None),
])
def test_remote_answers_are_classified_retry_or_refusal(answer, method, raised, status):
    """A 5xx, a non-JSON answer, a connection failure and a refused read are Unavailable (the
    clients retry; from round 1 on, until the deadlines pass); a 4xx to a submission is Refused (the
    server's decision on it)."""
    def handle(request):
        if answer == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        return answer

    remote = RemoteLog(URL, client=httpx.Client(base_url=URL, transport=httpx.MockTransport(handle)))
    with pytest.raises(raised) as e:
        remote.request(method, "/api/status")
    if status is not None:
        assert e.value.status == status
    assert raised is Refused or not isinstance(e.value, Refused)


def test_a_refusal_to_serve_an_entry_or_checkpoint_is_not_read_as_absence(tmp_path):
    """A 404 means "no such entry / no checkpoint yet"; any other refusal is no answer (retried),
    not taken for an empty log (a bidder would then, e.g., decide it has not registered)."""
    run, _ = local_run(tmp_path)
    try:
        remote = LogServer(run.ledger).remote()
        assert remote.get(1).seq == 1 and remote.storage.get(len(run.ledger)) is None
        with pytest.raises(LedgerError, match=f"no entry {len(run.ledger)}"):
            remote.get(len(run.ledger))
        assert LogServer(run.ledger, checkpoint=None).remote().latest_checkpoint() is None

        def forbidden(request):
            return httpx.Response(403, json={"detail": "forbidden"})

        remote = RemoteLog(URL, client=httpx.Client(base_url=URL, transport=httpx.MockTransport(forbidden)))
        for ask in (lambda: remote.storage.get(3), lambda: remote.latest_checkpoint()):
            with pytest.raises(Unavailable, match="refused to serve the log \\(403\\): forbidden"):
                ask()
    finally:
        run.close()


@pytest.mark.parametrize("change", [{"payload": "other"}, {"round": 2}, {"kind": DISPUTE}, "none", "extra", None])
def test_a_server_that_logs_something_else_than_the_signed_statement_is_caught(tmp_path, change):
    """remote.py append_many: the server answers a submission with the entry it logged; a server
    that logged another payload, round or kind than what the bidder signed (or claims it did), or
    answers with fewer or more entries than statements submitted, is named at once (before the
    count check, an empty answer passed the check: ``zip`` stopped at once, and ``append`` failed
    with a raw IndexError)."""
    run, _ = local_run(tmp_path, rounds=2)
    try:
        key = run.bidders[0].key

        def post(path, body):
            sts = [Statement.from_dict(d) for d in body["statements"]]
            entries = [e.to_dict() for e in run.ledger.append_signed(sts)]
            if change == "none":  # claims success, logged nothing
                return {"entries": []}
            if change == "extra":  # and an entry nobody submitted
                return {"entries": entries + [run.ledger.get(1).to_dict()]}
            if change is not None:
                v = change.get("payload")
                entries[0].update({**change, **({"payload": json.dumps({"bidder": 0, "x": 1})} if v else {})})
            return {"entries": entries}

        remote = LogServer(run.ledger, post=post).remote()
        if change is None:
            e = remote.append(ABSTENTION, {"bidder": 0}, key, round=1)
            assert (e.kind, e.round, e.signer) == (ABSTENTION, 1, key.public_hex)
        elif isinstance(change, str):
            with pytest.raises(ProtocolError, match=f"the server answered 1 statements with {0 if change == 'none' else 2} entries"):
                remote.append(ABSTENTION, {"bidder": 0}, key, round=1)
        else:
            with pytest.raises(ProtocolError, match="the server logged entry .* other than the statement submitted"):
                remote.append(ABSTENTION, {"bidder": 0}, key, round=1)
    finally:
        run.close()


def test_a_verified_replica_refuses_a_server_that_serves_fewer_entries_than_its_checkpoint(tmp_path):
    """remote.py verified_replica: the kept checkpoint covers the whole run; a server that stops
    serving entries before its end (hiding the last round's outcome, say) yields no replica."""
    run, _ = local_run(tmp_path)
    try:
        run.play()
        run.auctioneer.checkpoint()
        cp = run.ledger.latest_checkpoint()
        assert len(verified_replica(LogServer(run.ledger).remote(), cp)) == cp.size
        with pytest.raises(ForkError, match=f"are not the log of the checkpoint of size {cp.size}"):
            verified_replica(LogServer(run.ledger, size=cp.size - 2).remote(), cp)
    finally:
        run.close()


# ------------------------------------------------------------------------------------------ the monitor


def monitor_of(server, **kw):
    mon = Monitor(URL, **kw)
    mon.remote = server.remote()
    return mon


def test_the_monitor_names_a_breach_of_the_reader_while_the_run_is_in_progress(tmp_path):
    """monitor.py poll: a breach the reader finds (here the auctioneer closes round 1's commitments
    a second time) is named as soon as the entry is served, not only by the final verdict."""
    run, _ = local_run(tmp_path)
    try:
        run.play()
        close = run.ledger.entries(kind=COMMITMENTS_CLOSED, round=1)[0]
        run.ledger.append(COMMITMENTS_CLOSED, close.data, run.auctioneer.key, round=1)
        run.auctioneer.checkpoint()
        with pytest.raises(MonitorAlert, match="breach: .*a second close of round 1's commitments"):
            monitor_of(LogServer(run.ledger)).poll()
    finally:
        run.close()


def test_the_monitor_names_a_signed_checkpoint_that_is_not_the_root_of_the_entries(tmp_path):
    run, _ = local_run(tmp_path)
    try:
        run.play()
        n = len(run.ledger)
        bad = SignedCheckpoint.sign(run.auctioneer.key, run.ledger.log_id, n - 1, "ab" * 32)
        # (entries no checkpoint of the auctioneer's vouches for, and one that does not fit them: evidence of
        # nothing, so no answer, timed to its silence; the nineteenth review)
        with pytest.raises(Malformed, match=f"the server's signed checkpoint of size {n - 1} is not the root"):
            monitor_of(LogServer(run.ledger, checkpoint=bad)).poll()
        assert monitor_of(LogServer(run.ledger)).poll() is False  # the real one: no alarm, no verdict yet
    finally:
        run.close()


def test_the_monitor_names_a_server_that_goes_back_to_an_older_checkpoint(tmp_path):
    run, _ = local_run(tmp_path)
    try:
        run.play()
        run.auctioneer.checkpoint()
        server = LogServer(run.ledger)
        mon = monitor_of(server)
        mon.poll()
        assert mon._view.kept.size == len(run.ledger)
        old = 5
        server.checkpoint = SignedCheckpoint.sign(run.auctioneer.key, run.ledger.log_id, old, run.ledger.root(old))
        # named, and no answer (timed to its silence: an older checkpoint once ended the monitor with no
        # verdict, the twentieth review)
        with pytest.raises(Malformed, match=f"rollback: .* covers {old} entries, this monitor holds one of {len(run.ledger)}"):
            mon.poll()
    finally:
        run.close()


def test_the_monitor_names_another_history_than_the_checkpoint_it_kept_from_an_earlier_run(tmp_path):
    """monitor.py _check_checkpoint: the monitor keeps its checkpoint in --state; restarted against
    a server showing another history of the same log (same announcement, other entries after it),
    the consistency check against the kept checkpoint fails: an alarm, never a silent acceptance."""
    run, _ = local_run(tmp_path)
    try:
        state = tmp_path / "mon"
        kept = 3
        cp_a = SignedCheckpoint.sign(run.auctioneer.key, run.ledger.log_id, kept, run.ledger.root(kept))
        mon = monitor_of(LogServer(run.ledger, size=kept, checkpoint=cp_a), state=state)
        mon.poll()
        mon._view.flush()
        other = replica_of(run.ledger, 2)  # the announcement and one registration, then another history
        for r in (1, 2, 3):
            other.append("outcome", {"x": r}, run.auctioneer.key, round=r)
        cp_b = SignedCheckpoint.sign(run.auctioneer.key, other.log_id, len(other), other.root(len(other)))
        assert cp_b.size > kept and other.root(kept) != run.ledger.root(kept)
        with pytest.raises(MonitorAlert, match="fork: "):
            monitor_of(LogServer(other, checkpoint=cp_b), state=state).poll()
    finally:
        run.close()


def test_the_monitor_raises_an_invalid_audit_and_does_not_report_it_as_a_verdict(tmp_path):
    """Outcomes that pass every public check but are not the announced auction's (no one pays):
    the published openings show it; the monitor stops with the alarm, it does not return."""
    from zkauction.zk.circuit import Outcome

    def lying(fn):
        return lambda bids, salts: Outcome(fn(bids, salts).allocation, tuple(0.0 for _ in bids))

    run, honest = local_run(tmp_path, lying, rounds=3, audits=3)
    try:
        from zkauction.protocol.audit import Auditor

        run.play()
        run.answer_audit(run.reveal().rounds)
        run.auctioneer.checkpoint()
        assert not Auditor(run.ledger, outcome=honest).audit().valid  # the lie is real
        with pytest.raises(MonitorAlert, match="the audit is invalid"):
            monitor_of(LogServer(run.ledger), outcome=honest).follow(interval=0.01, timeout=20)
    finally:
        run.close()


def test_the_monitor_gives_up_on_an_unreachable_server_after_retry_for(tmp_path):
    def down(request):
        raise httpx.ConnectError("connection refused", request=request)

    mon = Monitor(URL)
    mon.remote = RemoteLog(URL, client=httpx.Client(base_url=URL, transport=httpx.MockTransport(down)))
    with pytest.raises(ProtocolError, match="unreachable for 0.2 s"):
        mon.follow(interval=0.02, timeout=10, retry_for=0.2)


# ------------------------------------------------------------------------------------ the bidder client


def test_a_client_without_bidder_state_or_not_named_by_the_announcement_takes_no_part(tmp_path, served_client):
    run, _ = local_run(tmp_path)
    try:
        served_client.server = LogServer(run.ledger)
        with pytest.raises(ProtocolError, match="no bidder state here"):
            BidderClient(URL, tmp_path / "empty", lambda r: None)
        init_state(tmp_path / "stranger")
        with pytest.raises(ProtocolError, match="does not name this bidder's key"):
            BidderClient(URL, tmp_path / "stranger", lambda r: None)
        assert BidderClient(URL, bidder_state(run, 1, tmp_path / "b1"), lambda r: None).index == 1
    finally:
        run.close()


def _status_then_reached(first, times=40):
    """/api/status answered by ``first`` (a dict, or an exception to raise) ``times`` times, then
    "finished" (so a client that ignores what it was told returns, instead of hanging the test)."""
    calls = []

    def status():
        calls.append(1)
        if len(calls) <= times:
            if isinstance(first, Exception):
                raise first
            return first
        return {"round": 99, "phase": 3, "error": None}

    return status


@pytest.mark.parametrize("answer, match", [
    ({"round": 0, "phase": 0, "error": "ProtocolError: zk mode: the server needs the circuit"}, "the server's run stopped"),
    (Unavailable("connection refused"), "unreachable for 0.3 s"),
])
def test_a_waiting_client_stops_when_the_run_stopped_or_the_server_is_gone(tmp_path, served_client, answer, match):
    """Before round 1 (where nothing is late) an unreachable server is an error after retry_for;
    from round 1 on the client waits through it until the announced deadlines pass, then calls the
    auctioneer silent (test_review_attacks_9.py)."""
    run, _ = local_run(tmp_path)
    try:
        served_client.server = LogServer(run.ledger)
        c = BidderClient(URL, bidder_state(run, 0, tmp_path / "b0"), lambda r: None, retry_for=0.3)
        calls = _status_then_reached(answer, times=20)
        c.remote.status = lambda *a, **k: calls()
        with pytest.raises(ProtocolError, match=match):
            c._wait(1, 0)
        if not isinstance(answer, Exception):  # from round 1 on, a stopped run is the auctioneer's silence
            calls = _status_then_reached(answer, times=20)
            c.remote.status = lambda *a, **k: calls()
            with pytest.raises(AuditFailed, match="the auctioneer is silent: the server.s run stopped at round 0"):
                c._wait(2, 0)
    finally:
        run.close()


def test_a_refused_status_is_waited_through_like_an_unreachable_server(tmp_path, served_client):
    """A refused status request says nothing about the run: the client waits on (a seventeenth
    review: with a resend to make, a 409 on every status spun the wait for ever, unclocked), until
    retry_for before round 1, until the announced deadlines after (then the auctioneer is silent)."""
    run, _ = local_run(tmp_path)
    try:
        served_client.server = LogServer(run.ledger)
        c = BidderClient(URL, bidder_state(run, 0, tmp_path / "b0"), lambda r: None, retry_for=0.3)
        calls = _status_then_reached(Refused(403, "forbidden"), times=50)
        c.remote.status = lambda *a, **k: calls()
        with pytest.raises(ProtocolError, match="unreachable for 0.3 s: refused \\(403\\): forbidden"):
            c._wait(1, 0)
        calls = _status_then_reached(Refused(403, "forbidden"), times=2)
        c.remote.status = lambda *a, **k: calls()
        assert c._wait(2, 0)["round"] == 99  # refused twice, then reached
        resent = []
        calls = _status_then_reached(Refused(403, "forbidden"), times=2)
        c.remote.status = lambda *a, **k: calls()
        c._wait(2, 0, resend=lambda _: resent.append(1))  # with something to resend: logged, waits on
    finally:
        run.close()


def test_a_client_opening_refused_as_bad_says_so_and_one_refused_as_late_waits(tmp_path, served_client):
    """client.py _open: a 409 (the opening phase is over: the log decides) is expected; a 400 (the
    server calls the opening malformed) is not swallowed."""
    from zkauction.protocol.bidder import SignedOpening
    from zkauction.zk.commitments import Opening

    run, _ = local_run(tmp_path)
    try:
        answers = []
        served_client.server = LogServer(run.ledger)
        c = BidderClient(URL, bidder_state(run, 0, tmp_path / "b0"), lambda r: None)
        c.bidder.open = lambda r: SignedOpening(Opening((0.5, 0.5), "00" * 32), "ab" * 64)

        def refuse(request):
            answers.append(request.url.path)
            return httpx.Response(status, json={"detail": f"refused with {status}"})

        c.remote.http = httpx.Client(base_url=URL, transport=httpx.MockTransport(refuse))
        status = 409
        c._open(1)
        status = 400
        with pytest.raises(Refused, match="refused with 400"):
            c._open(1)
        assert answers == ["/api/rounds/1/opening"] * 2
    finally:
        run.close()


def zk_like_run(tmp_path, circuit):
    """A local zk-mode run announcing ``circuit`` and its terms, whose rounds are played by a small
    net (the tests log the proofs they need)."""
    from zkauction.protocol.demo import auction_info

    return local_run(tmp_path, mode="zk", rounds=3, audits=1, auction=auction_info(circuit),
                     input_scale=circuit.input_scale)[0]


def test_the_client_names_an_audited_round_without_a_proof_or_with_another_rounds_label(tmp_path, served_client, circuit):
    """client.py _verify_audit: after the audit, every drawn round must have its proof in the log
    the kept checkpoint commits to, labelled with that round."""
    from test_protocol import _fake_bundle

    run = zk_like_run(tmp_path, circuit)
    try:
        run.play()
        draw = run.reveal()
        run.auctioneer.checkpoint()
        served_client.server = LogServer(run.ledger)
        c = BidderClient(URL, bidder_state(run, 0, tmp_path / "b0"), lambda r: None, circuit=circuit)
        (r,) = draw.rounds
        with pytest.raises(ProtocolError, match=f"audited round {r} has no proof in the log it holds"):
            c._verify_audit()
        other = 1 if r != 1 else 2
        bundle = _fake_bundle(read_state(run.ledger), r, round_id=other)
        run.ledger.append(PROOF, bundle.to_dict(), run.auctioneer.key, round=r)
        run.auctioneer.checkpoint()
        with pytest.raises(ProtocolError, match=f"the proof logged for round {r} names round {other}"):
            c._verify_audit()
    finally:
        run.close()


def test_an_engine_that_cannot_answer_the_audit_stops_the_run_and_says_why(tmp_path, circuit):
    """engine.py: in zk mode a server started without the circuit cannot prove the drawn rounds; the
    run stops with that reason (``Engine.error``, which /api/status shows the clients), and
    ``Engine.run`` raises it instead of ending as if the audit had been answered."""
    from zkauction.service.engine import Engine

    run = zk_like_run(tmp_path, circuit)
    try:
        run.play()
        run.reveal()
        engine = Engine(run.ledger, run.auctioneer.key, run.outcome, store=run.auctioneer.store)
        with pytest.raises(ProtocolError, match="zk mode: the server needs the circuit"):
            asyncio.run(engine.run())
        assert "needs the circuit" in engine.error and engine.status == Status(4, 1)
    finally:
        run.close()


def test_a_bids_file_whose_bids_are_not_a_list_is_named():
    from zkauction.service.client import BidsFileError, parse_bids

    for bids in ('"0.5"', '{"a": 1}', "0.5"):
        with pytest.raises(BidsFileError, match="line 1, field bids: expected a list of numbers"):
            parse_bids('{"round": 1, "bids": %s}\n' % bids)


def test_the_log_api_refuses_proof_queries_outside_the_log(tmp_path, circuit):
    """server.py: inclusion and consistency proofs only for sizes the log has, entries only that
    exist; each a 4xx naming the parameter (never a 500, which clients retry as "server down")."""
    srv = make_service(tmp_path, circuit, n_rounds=1, mode="reveal")
    try:
        http = httpx.Client(base_url=srv.url, timeout=10)
        n = len(srv.engine.ledger)
        for path, params, status, needle in [
            ("/api/log/inclusion", {"seq": 0, "size": n + 1}, 400, f"size: {n + 1} is not in 1..{n}"),
            ("/api/log/inclusion", {"seq": n, "size": n}, 400, f"seq: {n} is not below the tree size {n}"),
            ("/api/log/consistency", {"old": n + 1}, 400, f"old: {n + 1} is larger than new: {n}"),
            ("/api/log/consistency", {"old": 1, "new": n + 5}, 400, f"size: {n + 5} is not in 1..{n}"),
            ("/api/log/entry/-1", {}, 404, "the log has no entry -1"),
        ]:
            r = http.get(path, params=params)
            assert r.status_code == status and needle in r.text, (path, params, r.status_code, r.text)
        r = http.get("/api/log/consistency", params={"old": 1, "new": n})
        assert r.status_code == 200 and r.json()["root"] == srv.engine.ledger.root(n)
    finally:
        srv.stop()


def test_a_dispute_before_its_rejection_is_refused_so_that_it_cannot_block_the_real_one(tmp_path, circuit):
    """engine.py _admissible: a dispute sent before the auctioneer's ``no_opening`` rejection is not
    counted by the reader; logged, it would stand for that bidder's dispute of the round (the engine
    answers the same statement with the entry already logged, and the reader counts one dispute per
    bidder and round), so the bidder's real dispute, after the rejection, would never count. It is
    refused; after the rejection the same dispute is admitted."""
    engine, (k0, k1) = fresh_engine(tmp_path, circuit)
    try:
        log_id = engine.log_id
        salt = "01" + "00" * 31
        engine.ledger.append(BID_COMMITMENT, {"bidder": 1, "commitment": commit([0.5, 0.5], salt, engine.ann.input_scale)}, k1, round=1)
        engine.status = Status(1, 1)
        dispute = Statement.sign(k1, log_id, DISPUTE, {"bidder": 1, "bids": [0.5, 0.5], "salt": salt}, round=1)
        (r,) = submit(engine, dispute)
        refused(r, 409, "a dispute of round 1 answers a no_opening rejection, and bidder 1 has none")
        assert len(engine.ledger) == 2
        engine.ledger.append("opening_rejected", {"bidder": 1, "reason": "no_opening"}, engine.key, round=1)
        engine.status = Status(1, 2)
        (e,) = submit(engine, dispute)
        assert e.kind == DISPUTE and e.seq == 3
    finally:
        engine.close()


def test_the_client_refuses_an_audited_rounds_proof_that_does_not_verify(tmp_path, served_client, circuit):
    """client.py _verify_audit: the drawn round's logged proof is checked with the circuit's
    verifying key; one that does not verify fails the client's audit, naming the round (it is not
    added to ``proofs_verified``). The service tests never reach this: there the honest engine
    refuses to log a proof that does not verify, and the run stops first."""
    from test_protocol import _fake_bundle

    from zkauction.zk.bundle import VerificationError

    run = zk_like_run(tmp_path, circuit)
    try:
        run.play()
        (r,) = run.reveal().rounds
        # the round's commitments and outcome, this circuit and ezkl version: all but a proof
        bundle = _fake_bundle(read_state(run.ledger), r, ezkl_version=circuit.manifest["ezkl_version"])
        run.ledger.append(PROOF, bundle.to_dict(), run.auctioneer.key, round=r)
        run.auctioneer.checkpoint()
        served_client.server = LogServer(run.ledger)
        c = BidderClient(URL, bidder_state(run, 0, tmp_path / "b0"), lambda r: None, circuit=circuit)
        with pytest.raises(VerificationError, match=f"audited round {r}: ") as err:
            c._verify_audit()
        assert err.value.check == "proof" and c.report.proofs_verified == []
    finally:
        run.close()


def test_a_restarted_client_checks_the_rounds_played_while_it_was_down(tmp_path, served_client):
    """client.py _check_played: a round that got its outcome while the client was down is checked
    all the same (the host could otherwise charge a winner beyond its bids' worth in exactly the
    rounds it kept the client away from), even when the server hides the bidder's commitment from
    its answers: the checkpointed close decides whether it took part."""
    from zkauction.protocol.rounds import finish_round
    from zkauction.zk.circuit import Outcome

    run, fn = local_run(tmp_path, rounds=3)
    try:
        a, b0, b1 = run.auctioneer, *run.bidders
        bids = {0: [0.75, 0.5], 1: [0.5, 0.875]}
        for b in (b0, b1):
            b.commit(1, bids[b.index])
        a.close_commitments(1)
        a.receive_opening(1, 0, b0.open(1))
        a.receive_opening(1, 1, b1.open(1))
        honest = fn([bids[0], bids[1]], ["00" * 32] * 2)
        a.outcome = lambda bs, salts: Outcome(((1.0, 1.0), (0.0, 0.0)), (1.5, 0.0))  # 1.5 for bids worth 1.25
        finish_round(a, [b1], 1)  # bidder 0's client is down: nobody of its own checks round 1
        a.checkpoint()

        class HidingCommitments(LogServer):  # filtered queries for commitments answered with none
            def handle(self, request):
                got = super().handle(request)
                if request.url.path == "/api/log/entries" and request.url.params.get("kind") == "bid_commitment":
                    return httpx.Response(200, json={**got.json(), "entries": []})
                return got

        served_client.server = HidingCommitments(run.ledger)
        c = BidderClient(URL, bidder_state(run, 0, tmp_path / "b0"), lambda r: bids[0] if r == 1 else None)
        with pytest.raises(ProtocolError, match=r"round 1: bidder 0 pays 1.5 for an allocation worth 1.25"):
            c._check_played(1)  # whether it took part is read from the checkpointed close, not a filtered query
        assert honest.payment[0] < 1.5
        c._check_played(2)  # no bids of its own in round 2: nothing to check
        assert c.report.outcomes_checked == 0
    finally:
        run.close()


def test_the_client_names_a_bidder_that_co_signed_another_history(tmp_path, served_client):
    """client.py _verify_audit: each seed reveal carries the checkpoint its bidder accepted; a host
    that showed another bidder another history of the same log (a split view: each told it won every
    item) is named by the root that bidder co-signed, also by the client, not only by an auditor."""
    from zkauction.service.client import AuditFailed

    run, _ = local_run(tmp_path, rounds=2)
    try:
        a, b0, b1 = run.auctioneer, *run.bidders
        run.play()
        b0.reveal()
        size = len(run.ledger)
        other = replica_of(run.ledger, size - 1)  # the same log id, another entry at the end
        other.append(REVEALS_CLOSED, {}, a.key, unique=REVEALS_CLOSED)
        forked = other.checkpoint(a.key)  # signed by the auctioneer, shown to bidder 1 only
        run.ledger.append(SEED_REVEAL, {"bidder": 1, "seed": b1.seed, "checkpoint": forked.to_dict()}, b1.key,
                          unique=unique_key(SEED_REVEAL, bidder=1))
        a.close_reveals()
        served_client.server = LogServer(run.ledger)
        c = BidderClient(URL, bidder_state(run, 0, tmp_path / "b0"), lambda r: None)
        with pytest.raises(AuditFailed, match="bidder 1 co-signed another log of .* entries than this one \\(fork\\)"):
            c._verify_audit()
    finally:
        run.close()


def test_a_seed_reveal_carrying_a_checkpoint_of_another_history_is_refused(tmp_path, circuit):
    """engine.py _admissible: the checkpoint in a seed reveal is what its bidder co-signs; one that is
    not of this log (say, of an earlier byte-identical auction, signed by the same auctioneer) would
    be logged as the honest auctioneer's fork. The server refuses it and takes an honest one."""
    engine, (k0, _) = fresh_engine(tmp_path, circuit)
    try:
        key = engine.auctioneer.key
        ours = engine.ledger.checkpoint(key)
        other = SignedCheckpoint.sign(key, engine.log_id, ours.size, "00" * 32)
        engine.status = Status(3, 0)  # T = 2: the reveal phase
        (r,) = submit(engine, Statement.sign(k0, engine.log_id, SEED_REVEAL, {"bidder": 0, "seed": "11" * 32,
                                                                             "checkpoint": other.to_dict()}))
        refused(r, 400, "payload.checkpoint: not a checkpoint of this log")
        # an honest one: the seed its registration committed to, under a checkpoint the auctioneer signed
        engine.status = Status(0, 0)
        (r,) = submit(engine, Statement.sign(k0, engine.log_id, REGISTRATION, {
            "bidder": 0, "announcement": engine.log_id, "seed_commitment": seed_commitment(0, "11" * 32)}))
        assert not isinstance(r, Exception), r
        ours = engine.ledger.checkpoint(key)
        engine.status = Status(3, 0)
        size = len(engine.ledger)
        (r,) = submit(engine, Statement.sign(k0, engine.log_id, SEED_REVEAL, {"bidder": 0, "seed": "22" * 32,
                                                                             "checkpoint": ours.to_dict()}))
        refused(r, 400, "revealed seed does not match its registration")  # (the sixteenth review: never counted)
        forged = {**ours.to_dict(), "signature": "00" * 64}
        (r,) = submit(engine, Statement.sign(k0, engine.log_id, SEED_REVEAL, {"bidder": 0, "seed": "11" * 32,
                                                                             "checkpoint": forged}))
        refused(r, 400, "checkpoint signed by the auctioneer")
        (r,) = submit(engine, Statement.sign(k0, engine.log_id, SEED_REVEAL, {"bidder": 0, "seed": "11" * 32,
                                                                             "checkpoint": ours.to_dict()}))
        assert not isinstance(r, Exception) and len(engine.ledger) == size + 1, r
    finally:
        engine.close()
