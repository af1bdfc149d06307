"""The networked protocol attacked, over real HTTP on 127.0.0.1: a malicious bidder framing the honest
auctioneer through statements its engine admits but the protocol's reader does not count, and the
cheating auctioneer's server answering one client differently from the log it commits to (a proxy
in front of the real server that rewrites answers: ``httpx.Client(transport=...)`` in a RemoteLog).

Each test plays an attack that worked before its defence (named in the test's docstring) and
asserts the defence. tests/test_service.py has the honest run and the ``Server`` helper."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import httpx
import pytest

from test_service import circuit, make_service  # noqa: F401  (circuit: the module fixture)

from zkauction.protocol.audit import Auditor, draw_digest, public_checks, select_audit_rounds
from zkauction.protocol.auctioneer import circuit_outcome_function
from zkauction.protocol.bidder import Bidder
from zkauction.protocol.log import Ledger, SignedCheckpoint, SigningKey, Statement
from zkauction.protocol.state import (
    BID_COMMITMENT,
    OPENINGS,
    REGISTRATION,
    REVEALS_CLOSED,
    ProtocolError,
    read_state,
    seed_commitment,
)
from zkauction.service.client import AuditFailed, BidderClient
from zkauction.service.engine import pass_message
from zkauction.service.monitor import Monitor
from zkauction.service.remote import Refused, RemoteLog
from zkauction.zk.circuit import Outcome
from zkauction.zk.commitments import commit


# ------------------------------------------------------------------------------------------ helpers


def bidder(tmp_path, srv, i):
    """Bidder ``i`` driven step by step over HTTP (its key and secret from its state folder)."""
    key = SigningKey.load(tmp_path / f"b{i}" / "key.pem")
    remote = RemoteLog(srv.url)
    secret = bytes.fromhex((tmp_path / f"b{i}" / "secret").read_text().strip())
    return Bidder(i, key, remote, secret=secret), key, remote


def registered(tmp_path, srv):
    """Both bidders (as :func:`bidder`) registered, once round 1's commit phase is open."""
    (b0, k0, remote), (b1, k1, r1) = bidder(tmp_path, srv, 0), bidder(tmp_path, srv, 1)
    b0.register()
    b1.register()
    remote.status(1, 0, wait=10)
    return (b0, k0, remote), (b1, k1, r1)


def post(remote, st: Statement):
    return remote.request("POST", "/api/statements", json={"statements": [st.to_dict()]})


def send_pass(remote, key, log_id, r, i):
    remote.send(f"/api/rounds/{r}/pass", {"bidder": i, "signature": key.sign(pass_message(log_id, r, i))})


def reached(remote, r, phase, wait=15.0):
    """Whether the run reaches (round ``r``, ``phase``) or later within ``wait`` seconds."""
    s = remote.status(r, phase, wait=wait)
    return (s["round"], s["phase"]) >= (r, phase)


def log_breaches(tmp_path):
    """Every breach the server's log shows (read from the database, as any verifier would)."""
    with Ledger.open(tmp_path / "a.db", writer=False) as log:
        return [str(b) for b in public_checks(read_state(log))]


class Proxy(httpx.BaseTransport):
    """The cheating auctioneer's front end: forwards every request to the real server and passes
    each GET's JSON answer through ``rewrite(path, params, answer, fetch)`` (``fetch(path, params)``
    asks the real server for something else)."""

    def __init__(self, rewrite, status=None):
        self.inner = httpx.Client(timeout=120)
        self.rewrite = rewrite
        self.status = status  # if given, /api/status is answered with it, without asking the server
        self.sent: list[bytes] = []  # every request body the client sent (what the auctioneer learns)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request.content)
        if self.status is not None and request.url.path == "/api/status":
            return httpx.Response(200, json=self.status)
        r = self.inner.send(httpx.Request(request.method, request.url, headers=request.headers, content=request.content))
        if request.method != "GET" or r.status_code != 200:
            return httpx.Response(r.status_code, content=r.content, headers={"content-type": r.headers.get("content-type", "")})
        base = f"{request.url.scheme}://{request.url.host}:{request.url.port}"

        def fetch(path, params):
            return self.inner.get(base + path, params=params).json()

        return httpx.Response(200, json=self.rewrite(request.url.path, dict(request.url.params), r.json(), fetch))


def proxied(url, rewrite, status=None) -> httpx.Client:
    return httpx.Client(base_url=url, transport=Proxy(rewrite, status), timeout=120)


def client(tmp_path, srv, i, bids, circuit, *, rewrite=None, status=None):
    c = BidderClient(srv.url, tmp_path / f"b{i}", bids, circuit=circuit, retry_for=20.0,
                     expected={"manifest_sha256": circuit.manifest_sha256(), "vk_sha256": circuit.vk_sha256()})
    if rewrite is not None:
        c.remote.http = proxied(srv.url, rewrite, status)
    return c


def run_all(clients):
    """Run the clients to the end in threads; {index: report or the exception it raised}."""
    out = {}

    def go(c):
        try:
            out[c.index] = c.run()
        except Exception as e:  # the test inspects it
            out[c.index] = e

    threads = [threading.Thread(target=go, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return out


def lie_in(srv, bids_of_round):
    """The auctioneer's outcome function charges nothing in the rounds whose bids are given (an
    outcome that passes every public check, but not the announced auction's)."""
    honest = srv.engine.auctioneer.outcome
    targets = [sorted(map(tuple, b)) for b in bids_of_round]

    def fn(bids, salts):
        out = honest(bids, salts)
        if sorted(tuple(map(float, b)) for b in bids) in targets:
            return Outcome(out.allocation, tuple(0.0 for _ in out.payment))
        return out

    srv.engine.auctioneer.outcome = fn


BIDS3 = {1: [[0.75, 0.25], [0.5, 0.875]], 2: [[0.625, 0.5], [0.875, 0.75]], 3: [[0.875, 0.875], [0.75, 0.625]]}


# ------------------------------------------------------------- a malicious bidder against the honest auctioneer


def test_a_bidder_index_written_as_a_float_cannot_frame_the_honest_auctioneer(tmp_path, circuit):
    """``{"bidder": 1.0}`` equals 1 in Python: the engine admitted such a commitment and the reader
    counted it, but the auctioneer's close skipped it (not an int), so the honest close "omitted a
    logged commitment": a breach, the penalty due. Defence: the engine admits only an integer
    bidder index (engine.py ``Engine.submit``) and the reader counts no other (state.py ``_Reader.read``)."""
    srv = make_service(tmp_path, circuit, n_rounds=1, mode="reveal")
    try:
        (b0, k0, remote), (b1, k1, _) = registered(tmp_path, srv)
        log_id = srv.engine.log_id
        com = commit([0.5, 0.5], b1.salt(1), srv.engine.ann.input_scale)
        try:
            post(remote, Statement.sign(k1, log_id, BID_COMMITMENT, {"bidder": 1.0, "commitment": com}, round=1))
        except Refused as e:
            assert e.status == 400 and "bidder" in str(e)
            b1.commit(1, [0.5, 0.5])
        send_pass(remote, k0, log_id, 1, 0)
        assert reached(remote, 1, 1)
        assert log_breaches(tmp_path) == []
    finally:
        srv.stop()


def test_a_malformed_registration_cannot_start_the_rounds_and_frame_the_auctioneer(tmp_path, circuit):
    """A registration without a seed commitment was admitted and counted by the engine (it counted
    registration entries), which then started round 1; the reader does not count it, so every entry
    the auctioneer logged afterwards was "logged before every bidder registered": a breach each.
    Defence: the engine admits a registration only with a well-formed seed commitment, and the
    auctioneer starts round 1 only once the reader counts n registrations (engine.py ``_admissible``,
    ``Engine._registered``; auctioneer.py ``close_commitments``)."""
    srv = make_service(tmp_path, circuit, n_rounds=1, mode="reveal")
    try:
        (b0, k0, remote), (b1, k1, _) = bidder(tmp_path, srv, 0), bidder(tmp_path, srv, 1)
        log_id = srv.engine.log_id
        b0.register()
        try:
            post(remote, Statement.sign(k1, log_id, REGISTRATION, {"bidder": 1, "announcement": log_id}))
        except Refused as e:
            assert e.status == 400 and "seed_commitment" in str(e)
            b1.register()
        remote.status(1, 0, wait=10)
        for i, k in ((0, k0), (1, k1)):
            send_pass(remote, k, log_id, 1, i)
        assert reached(remote, 1, 3)
        assert log_breaches(tmp_path) == []
    finally:
        srv.stop()


def test_a_dispute_sent_before_the_rejection_cannot_frame_the_auctioneer(tmp_path, circuit):
    """A bidder commits, never opens, and publishes its opening as a ``dispute`` during the opening
    phase, before any rejection. The engine logged it; the reader does not count a dispute of a
    rejection not yet logged; the auctioneer's close_round counted it anyway and included the bidder
    after its own ``no_opening`` rejection: "rejected, yet in the outcome", a breach. Defence: the
    engine admits a dispute only against a logged ``no_opening`` rejection (engine.py ``_admissible``)
    and close_round includes exactly the disputes every verifier counts (auctioneer.py
    ``close_round`` via ``audit.published_openings``)."""
    srv = make_service(tmp_path, circuit, n_rounds=1, mode="reveal")
    try:
        (b0, k0, remote), (b1, k1, _) = registered(tmp_path, srv)
        log_id = srv.engine.log_id
        send_pass(remote, k0, log_id, 1, 0)
        b1.commit(1, [0.5, 0.5])
        assert reached(remote, 1, 1)
        try:
            b1.dispute(1)  # too early: nothing is rejected yet
        except Refused as e:
            assert e.status == 409 and "no_opening" in str(e)
        assert reached(remote, 1, 2)  # the deadline passed: no_opening logged
        try:
            b1.abstain(1)
        except Refused:
            pass  # the round is over already (before the defence)
        assert reached(remote, 1, 3)
        assert log_breaches(tmp_path) == []
    finally:
        srv.stop()


# ----------------------------------------------------------- the server answering a client's questions falsely


def test_a_server_cannot_choose_the_rounds_a_bidder_checks_by_serving_other_seed_reveals(tmp_path, circuit):
    """The auctioneer lies in the round the real draw audits and serves one bidder another seed for
    bidder 1 (in the reveal and in the registration it reads the seed commitment from), so that the
    bidder's own draw picks an honest round. Before: the client read both entries without checking
    them against its kept checkpoint, verified the honest round's proof and reported success.
    Defence: the client computes the draw and finds the proofs in a verified replica of the log
    its kept checkpoint commits to, read by the protocol's reader (client.py ``_verify_audit``,
    remote.py ``verified_replica``)."""
    srv = make_service(tmp_path, circuit, n_rounds=3, audits=1)
    try:
        log_id = srv.engine.log_id
        seeds = {i: bidder(tmp_path, srv, i)[0].seed for i in range(2)}
        drawn = select_audit_rounds(draw_digest(log_id, seeds), 3, 1)
        lie_in(srv, [BIDS3[drawn[0]]])
        fake = next(s for s in (hashlib.sha3_256(str(c).encode()).hexdigest() for c in range(100))
                    if select_audit_rounds(draw_digest(log_id, {0: seeds[0], 1: s}), 3, 1) != drawn)
        shown = select_audit_rounds(draw_digest(log_id, {0: seeds[0], 1: fake}), 3, 1)[0]
        answer = srv.engine._answer_audit

        async def answer_and_prove_the_shown_round():  # a proof reveals nothing: any round may be proven
            await answer()
            a = srv.engine.auctioneer
            bids, salts = a.round_inputs(shown)
            bundle = await asyncio.get_running_loop().run_in_executor(None, srv.engine._prove, shown, bids, salts)
            a.log_proof(shown, bundle, srv.engine.circuit)  # an honest round: its proof verifies

        srv.engine._answer_audit = answer_and_prove_the_shown_round

        def forge(e):
            import json

            d = json.loads(e["payload"])
            if e["kind"] == "seed_reveal" and d.get("bidder") == 1:
                d["seed"] = fake
            elif e["kind"] == REGISTRATION and d.get("bidder") == 1:
                d["seed_commitment"] = seed_commitment(1, fake)
            else:
                return e
            return {**e, "payload": json.dumps(d, sort_keys=True, separators=(",", ":"))}

        def rewrite(path, params, answer, fetch):
            if path == "/api/log/entries":
                return {**answer, "entries": [forge(e) for e in answer["entries"]]}
            if path.startswith("/api/log/entry/"):
                return forge(answer)
            return answer

        bids = lambda i: (lambda r: BIDS3[r][i])  # noqa: E731
        got = run_all([client(tmp_path, srv, 0, bids(0), circuit, rewrite=rewrite), client(tmp_path, srv, 1, bids(1), circuit)])
        with Ledger.open(tmp_path / "a.db", writer=False) as log:
            assert not Auditor(log, circuit=circuit).audit().valid  # the attack is real: round `drawn` lies
        assert isinstance(got[0], Exception), f"bidder 0 accepted the audit: {got[0]}"
    finally:
        srv.stop()


def test_a_server_cannot_pass_another_rounds_proof_off_as_the_audited_one(tmp_path, circuit):
    """Both rounds are audited (k = T = 2); round 2's outcome is a lie, so its proof (of the real
    outcome) does not verify against it. Asked for round 2's proof and outcome, the server answers
    with round 1's (real entries, signed, in the log). Before: the client checked only that each
    entry is in the log, not that it is round 2's, verified round 1 twice and reported round 2
    verified. Defence: as above, the audited rounds' proofs and outcomes come from the verified
    replica, read by round (client.py ``_verify_audit``)."""
    srv = make_service(tmp_path, circuit, n_rounds=2, audits=2)
    try:
        lie_in(srv, [BIDS3[2]])
        swapping = []

        def rewrite(path, params, answer, fetch):
            if path == "/api/log/entries" and params.get("kind") == "proof":
                swapping.append(True)  # the audit check has begun
            if swapping and path == "/api/log/entries" and params.get("kind") in ("proof", "outcome") \
                    and params.get("round") == "2":
                return fetch(path, {**params, "round": "1"})
            return answer

        bids = lambda i: (lambda r: BIDS3[r][i])  # noqa: E731
        got = run_all([client(tmp_path, srv, 0, bids(0), circuit, rewrite=rewrite), client(tmp_path, srv, 1, bids(1), circuit)])
        assert isinstance(got[1], Exception)  # the bidder shown the real log refuses round 2's proof
        assert isinstance(got[0], Exception) and "round 2" in str(got[0]), f"bidder 0 accepted the audit: {got[0]}"
    finally:
        srv.stop()


# ---------------------------------------------------------------------------- the server against the monitor


@pytest.mark.parametrize("shown", ["prefix", "beyond"])
def test_the_monitor_gives_no_verdict_on_entries_no_signed_checkpoint_covers(tmp_path, circuit, shown):
    """The server serves the monitor every entry but only a checkpoint of a prefix (the log up to
    the reveal phase's close: the audit's answer is never signed into a tree head), or one claiming
    more entries than it serves (which the monitor set aside to check "next time"). Before: the
    monitor computed the verdict from the unsigned tail and reported it valid, with no checkpoint
    binding it (the auctioneer could show everyone else another tail). Defence: the verdict waits
    for an accepted checkpoint that covers every entry it reads (monitor.py ``_audit_done``)."""
    srv = make_service(tmp_path, circuit, n_rounds=2, audits=1, mode="reveal")
    try:
        bids = lambda i: (lambda r: BIDS3[r][i])  # noqa: E731
        got = run_all([client(tmp_path, srv, i, bids(i), circuit) for i in range(2)])
        assert all(not isinstance(g, Exception) for g in got.values()), got
        with Ledger.open(tmp_path / "a.db", writer=False) as log:
            closed = log.entries(kind=REVEALS_CLOSED)[0].seq
            assert log.entries(kind=OPENINGS) and len(log) > closed + 1
            size = closed + 1 if shown == "prefix" else len(log) + 3
            root = log.root(size) if shown == "prefix" else "ab" * 32
            cp = SignedCheckpoint.sign(srv.engine.key, log.log_id, size, root)

        def rewrite(path, params, answer, fetch):
            if path == "/api/log/checkpoint":
                return {"checkpoint": cp.to_dict(), "size": answer["size"]}
            return answer

        mon = Monitor(srv.url, circuit=circuit, outcome=circuit_outcome_function(circuit))
        mon.remote.http = proxied(srv.url, rewrite)
        with pytest.raises(ProtocolError, match="no verdict"):
            report = mon.follow(timeout=4, interval=0.2)
            pytest.fail(f"the monitor gave a verdict on unsigned entries: {report.verdict and report.verdict['status']}, "
                        f"checkpoint kept {mon._view.kept and mon._view.kept.size} of {report.entries} entries")
        # the honest server's own checkpoint covers everything: the same monitor then concludes
        mon.remote.http = httpx.Client(base_url=srv.url, timeout=30)
        assert mon.follow(timeout=30, interval=0.2).verdict["valid"]
    finally:
        srv.stop()


def test_a_server_cannot_make_a_bidder_reveal_its_seed_before_round_T(tmp_path, circuit):
    """The server tells a bidder the run is over (status) and answers "round r's outcome?" with an
    entry it made up (seq 0, signed by nobody). Before: the client skipped the rounds as played, and
    Bidder.reveal only compared the outcome's claimed seq with its kept checkpoint's size, so it sent
    its audit seed at once: with its shills' seeds, the auctioneer then knew the draw before playing
    a round, and could lie in every round it will not be audited on. Defence: the bidder reveals only
    once round T's outcome, checked by an inclusion proof under its kept checkpoint, is in the log
    (bidder.py ``Bidder.reveal``), and ``first_entry`` returns only an entry of the round asked for
    (state.py)."""
    srv = make_service(tmp_path, circuit, n_rounds=2, audits=1)
    try:
        auctioneer = srv.engine.ann.auctioneer

        def rewrite(path, params, answer, fetch):
            if path == "/api/log/entries" and params.get("kind") == "outcome":
                made_up = {"seq": 0, "round": int(params["round"]), "kind": "outcome", "payload": "{}",
                           "prev_hash": "0" * 64, "hash": "1" * 64, "signer": auctioneer, "signature": "2" * 128}
                return {**answer, "entries": [made_up]}
            return answer

        over = {"round": 3, "phase": 2, "phase_name": "finished", "rounds": 2, "error": None}
        c = client(tmp_path, srv, 0, lambda r: BIDS3[r][0], circuit, rewrite=rewrite, status=over)
        c.limit = 2.0  # (the announced deadlines, shortened: the client waits for the log, then calls it silent)
        seed = c.bidder.seed
        with pytest.raises(AuditFailed, match="the auctioneer is silent"):
            c.run()
        leaked = [body for body in c.remote.http._transport.sent if seed.encode() in body]
        assert not leaked, "the bidder sent its audit seed before round T was played"
    finally:
        srv.stop()
