"""A remote auctioneer's log, seen over HTTP: :class:`RemoteLog` reads like a
:class:`~zkauction.protocol.log.Ledger` (entries, checkpoint, inclusion and consistency proofs), so
the same :class:`~zkauction.protocol.bidder.Bidder`, :class:`~zkauction.protocol.checkpoint.LogView`
and readers run against it unchanged; its appends sign *statements* locally and submit them.

Nothing the server says is trusted: the parties that use it check what they act on (kept
checkpoints, consistency and inclusion proofs, signatures), exactly as over a local file the
auctioneer controls. Connection failures raise :class:`Unavailable` (the caller retries); a refusal
(4xx) raises :class:`Refused` with the server's reason.
"""

from __future__ import annotations

import json
import socket
import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import httpx

from zkauction.protocol.checkpoint import ForkError
from zkauction.protocol.log import ChainError, Entry, Ledger, LedgerError, SignedCheckpoint, SigningKey, Statement
from zkauction.errors import ZkAuctionError
from zkauction.protocol.state import ProtocolError
from zkauction.protocol.storage import parse_json


class Unavailable(ProtocolError):
    """No usable answer: the server cannot be reached, answered 5xx, refused to serve the public log
    or answered something malformed (:class:`Malformed`). Retried; from round 1 on, past the
    announced deadlines, it is the auctioneer's silence (the eighteenth review: a refused or malformed
    read ended the monitor and the clients at once, exit 2, no penalty)."""


class Malformed(Unavailable):
    """The server answered, but not in the API's shape (a field missing, a list for an object, entries
    out of order): named, and no answer."""


class Refused(ProtocolError):
    """The server refused the request (4xx): ``status`` and its reason."""

    def __init__(self, status: int, detail: Any):
        super().__init__(f"refused ({status}): {detail}")
        self.status = status
        self.detail = detail


MAX_ENTRIES_PER_CALL = 50_000  # entries one RemoteLog.entries call collects (pages of the server's size)
MAX_ENTRIES_SECONDS = 120.0  # and the time it takes: the caller asks again from where it ended
MAX_ANSWER_BYTES = 256 * 2**20  # one answer (a page of 1,000 entries with proofs is a few MB)


class _Storage:
    def __init__(self, log: "RemoteLog"):
        self.log = log

    def get(self, seq: int) -> Entry | None:
        return self.log._get_entry(seq)


class RemoteLog:
    """The log at ``url`` (``http://127.0.0.1:8000``)."""

    def __init__(self, url: str, *, timeout: float = 30.0, client: httpx.Client | None = None):
        self.url = url.rstrip("/")
        try:
            parsed = httpx.URL(self.url)
            parsed.port  # (a malformed port raises here)
        except (httpx.InvalidURL, ValueError, TypeError) as e:
            raise ProtocolError(f"{url}: not a server URL ({e}); expected e.g. http://127.0.0.1:8000") from None
        if parsed.port is not None and not 1 <= parsed.port <= 65535:  # (httpx takes 99999 and wraps it)
            raise ProtocolError(f"{url}: not a server URL (port {parsed.port} is not in 1..65535)")
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ProtocolError(f"{url}: not a server URL (http:// or https:// and a host, e.g. http://127.0.0.1:8000)")
        # TCP_NODELAY: a POST's body is written after its headers; Nagle would hold it for the server's ACK
        nodelay = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self.http = client or httpx.Client(base_url=self.url, timeout=timeout, transport=nodelay)
        self.timeout = timeout
        self.storage = _Storage(self)
        self._first: Entry | None = None
        self._size = 0
        self._cp: SignedCheckpoint | None = None

    def close(self) -> None:
        self.http.close()

    # ---------------------------------------------------------------- HTTP

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """One request, read in full within twice its time limit (httpx's limit is per read: a host
        sending one byte a second held the monitor and the clients for ever, no silence clock ever
        reached, the seventeenth review) and within MAX_ANSWER_BYTES."""
        limit = 2 * float(kw.get("timeout") or self.timeout)
        end = time.monotonic() + limit
        try:
            with self.http.stream(method, path, **kw) as r:
                body, size = [], 0
                for chunk in r.iter_bytes():
                    body.append(chunk)
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise Unavailable(f"{self.url}{path}: an answer larger than {MAX_ANSWER_BYTES} bytes")
                    if time.monotonic() > end:
                        raise Unavailable(f"{self.url}{path}: the answer took longer than {limit:g} s")
                status, text = r.status_code, b"".join(body).decode("utf-8", "replace")
        except httpx.TransportError as e:
            raise Unavailable(f"{self.url}: {type(e).__name__}: {e}") from None
        if status >= 500:
            raise Unavailable(f"{self.url}{path}: server error {status}: {text[:200]}")
        if status >= 400:
            try:
                detail = json.loads(text).get("detail", text)
            except (ValueError, RecursionError, AttributeError):
                detail = text[:200]
            if method == "GET" and not (status == 404 and path.startswith(("/api/log/entry/", "/api/log/checkpoint"))):
                # a read: refusing it is no answer (404 says only that an entry or a checkpoint is not there yet)
                raise Unavailable(f"{self.url}{path}: the server refused to serve the log ({status}): {str(detail)[:200]}")
            raise Refused(status, detail)
        try:
            return parse_json(text)
        except (ValueError, RecursionError):  # (a JSON answer nested too deep for the parser)
            raise Malformed(f"{self.url}{path}: a malformed answer (not JSON)") from None

    @contextmanager
    def _answer(self, path: str) -> Iterator[None]:
        """Reading a server's answer: one of another shape (a field missing, a list for an object, a
        size that is no number) is the server's fault, named, not a KeyError or TypeError escaping
        the monitor and the clients as a crash (the sixteenth review)."""
        try:
            yield
        except Unavailable:
            raise
        except ZkAuctionError as e:  # (an entry of the wrong shape: Entry.from_dict's LedgerError)
            raise Malformed(f"{self.url}{path}: a malformed answer ({str(e)[:200]})") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise Malformed(f"{self.url}{path}: a malformed answer ({type(e).__name__}: {str(e)[:80]})") from None

    def status(self, round: int = 0, phase: int = 0, wait: float = 0.0) -> dict[str, Any]:
        d = self.request("GET", "/api/status", params={"round": round, "phase": phase, "wait": wait},
                         timeout=wait + self.timeout)
        if not isinstance(d, dict) or any(type(d.get(k)) is not int for k in ("round", "phase")):
            raise Malformed(f"{self.url}/api/status: a malformed answer (round and phase must be integers)")
        return d

    # ---------------------------------------------------------------- Ledger's reading interface

    def _get_entry(self, seq: int) -> Entry | None:
        if seq == 0 and self._first is not None:
            return self._first
        try:
            d = self.request("GET", f"/api/log/entry/{seq}")
        except Refused as r:
            if r.status == 404:
                return None
            raise
        with self._answer(f"/api/log/entry/{seq}"):
            e = Entry.from_dict(d)
        if seq == 0:
            self._first = e
        return e

    def get(self, seq: int) -> Entry:
        e = self._get_entry(seq)
        if e is None:
            raise LedgerError(f"the log has no entry {seq}")
        return e

    def entries(self, kind: str | None = None, round: int | None = None, start: int = 0,
                stop: int | None = None, deadline: float | None = None) -> list[Entry]:
        """The server's entries from ``start`` (to ``stop``), page by page. Every page must move on:
        entries in order after the last one, within ``stop``, each the next one when nothing is
        filtered, and a page saying ``more`` must hold some, else :class:`ProtocolError` (a server
        that answered every page with entry 0 and "more" held its reader in an endless loop).

        One call returns at most the entries up to the size the server stated on its first page, and
        at most :data:`MAX_ENTRIES_PER_CALL`: a server that kept sending fresh pages, each saying more
        follow, held its reader past any timeout with memory growing (the sixteenth review); the caller
        asks again from where this call ended (the monitor on its next poll, :func:`verified_replica`
        until its checkpoint's size)."""
        out: list[Entry] = []
        first, last = start, start - 1
        stated: int | None = None
        end = time.monotonic() + MAX_ENTRIES_SECONDS
        end = end if deadline is None else min(end, deadline)
        while True:
            params: dict[str, Any] = {"start": start}
            for k, v in (("stop", stop), ("kind", kind), ("round", round)):
                if v is not None:
                    params[k] = v
            page = self.request("GET", "/api/log/entries", params=params)
            with self._answer("/api/log/entries"):
                got = [Entry.from_dict(d) for d in page["entries"]]
                size = int(page["size"])
                more = bool(page.get("more"))
            for e in got:
                if (type(e.seq) is not int or e.seq <= last or (stop is not None and e.seq >= stop)
                        or (kind is None and round is None and e.seq != last + 1)):
                    raise Malformed(f"{self.url}: the server's entries from {first} are not in order: entry {e.seq!r} "
                                        f"after {last}{'' if stop is None else f' (stop {stop})'}")
                last = e.seq
            out.extend(got)
            self._size = max(self._size, size)
            stated = size if stated is None else stated
            if not more or last + 1 >= stated or len(out) >= MAX_ENTRIES_PER_CALL or time.monotonic() > end:
                return out
            if not got:
                raise Malformed(f"{self.url}: the server's page of entries from {start} is empty but says more follow")
            start = last + 1

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return self._size

    @property
    def log_id(self) -> str:
        return self.get(0).hash

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        try:
            d = self.request("GET", "/api/log/checkpoint")
        except Refused as r:
            if r.status == 404:
                return None
            raise
        with self._answer("/api/log/checkpoint"):
            self._size = int(d["size"])
            self._cp = SignedCheckpoint.from_dict(d["checkpoint"])
        return self._cp

    def root(self, size: int | None = None) -> str:
        if self._cp is not None and size == self._cp.size:
            return self._cp.root  # the server's own claim; what binds it is the consistency proof
        d = self.request("GET", "/api/log/consistency", params={"old": 0, "new": size})
        with self._answer("/api/log/consistency"):
            return str(d["root"])

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[str]:
        params = {"seq": seq} if size is None else {"seq": seq, "size": size}
        d = self.request("GET", "/api/log/inclusion", params=params)
        with self._answer("/api/log/inclusion"):
            return [str(h) for h in d["proof"]]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[str]:
        params = {"old": old_size} if new_size is None else {"old": old_size, "new": new_size}
        d = self.request("GET", "/api/log/consistency", params=params)
        with self._answer("/api/log/consistency"):
            return [str(h) for h in d["proof"]]

    # ---------------------------------------------------------------- appends: signed here, placed there

    def append(self, kind: str, payload: Any, key: SigningKey, round: int | None = None, *, unique: str | None = None,
               checkpoint_key: SigningKey | None = None) -> Entry:
        return self.append_many([(kind, payload, key, round, unique)])[0]

    def append_many(self, items: Sequence[tuple[str, Any, SigningKey, int | None, str | None]], **_: Any) -> list[Entry]:
        log_id = self.log_id
        sts = [Statement.sign(key, log_id, kind, payload, rnd) for kind, payload, key, rnd, _u in items]
        got = self.request("POST", "/api/statements", json={"statements": [s.to_dict() for s in sts]})
        with self._answer("/api/statements"):
            entries = [Entry.from_dict(d) for d in got["entries"]]
        if len(entries) != len(sts):  # zip below stops at the shorter list
            raise ProtocolError(f"the server answered {len(sts)} statements with {len(entries)} entries")
        for s, e in zip(sts, entries):  # the server placed what was signed, nothing else
            if (e.kind, e.round, e.payload, e.signer, e.signature) != (s.kind, s.round, s.payload, s.signer, s.signature):
                raise ProtocolError(f"the server logged entry {e.seq} other than the statement submitted")
        return entries

    def send(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, json=body)


def verified_replica(remote: RemoteLog, cp: SignedCheckpoint, replica: Ledger | None = None,
                     deadline: float | None = None) -> Ledger:
    """The log that ``cp`` (a checkpoint the caller accepted) commits to, as an in-memory replica:
    its first ``cp.size`` entries fetched in full, each checked (sequence, link, hash, signature) and
    their Merkle root equal to ``cp``'s. What is read from it (with the protocol's reader, first entry
    counts) is then what every verifier holding the same checkpoint reads, not what filtered queries,
    which the server answers as it likes (another round's entry, a forged payload), returned.

    ``replica``: one built by an earlier call under a checkpoint that ``cp`` extends (a prefix of
    this log), extended in place rather than fetched again; ``deadline`` (``time.monotonic()``):
    past it, :class:`Unavailable` (what arrived stays in ``replica``). A host sending one entry a page,
    each page just inside its time limit, held a client for hours per reading of the whole log (the
    eighteenth review)."""
    r = Ledger.in_memory() if replica is None or len(replica) > cp.size else replica
    while len(r) < cp.size:
        if deadline is not None and time.monotonic() > deadline:
            raise Unavailable(f"{remote.url}: {len(r)} of the {cp.size} entries of the checkpoint arrived in time")
        got = remote.entries(start=len(r), stop=cp.size, deadline=deadline)
        if not got:
            break
        try:
            r.replicate(got[: cp.size - len(r)])
        except ChainError as e:  # entries that do not chain or verify: no answer, evidence of nothing
            raise Malformed(f"{remote.url}: the server's entries from {len(r)} do not verify: {e}") from None
    if len(r) != cp.size or r.root(cp.size) != cp.root:
        raise ForkError(f"the {len(r)} entries the server served are not the log of the checkpoint of size {cp.size} kept")
    return r
