"""The monitor: ``zkauction monitor URL``. Anyone, no key needed.

It keeps a verified replica of the server's log (every entry's hash, link and signature checked as
it arrives; the replica's Merkle root must equal every signed checkpoint the server shows, and each
checkpoint must be a proven extension of the one kept, in ``--state`` across runs), reads it with the
protocol's own reader, runs every public check of each round as soon as the round's outcome is
logged, and once the audit is answered computes the verdict like any auditor (zk proofs verified
with the circuit's public artefacts). It stops at the first failure, naming it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from zkauction.errors import ZkAuctionError
from zkauction.protocol.checkpoint import CheckpointError, ForkError, LogIdentityError, LogView, check_log_extends
from zkauction.protocol.log import ChainError, Ledger
from zkauction.protocol.state import ProtocolError, _Reader, read_announcement
from zkauction.service.remote import Malformed, RemoteLog, Unavailable


class MonitorAlert(ProtocolError):
    """A check the monitor made failed: the log shows a breach, a fork or a rollback."""

    exit_code = 1


@dataclass
class MonitorReport:
    entries: int = 0
    rounds_checked: int = 0
    checkpoints: int = 0
    consistency_checks: int = 0
    breaches: list[str] = field(default_factory=list)
    verdict: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Monitor:
    def __init__(self, url: str, *, state: str | Path | None = None, circuit: Any = None, outcome: Any = None,
                 trusted_srs: list[str] | None = None, say: Callable[[str], None] | None = None):
        self.remote = RemoteLog(url)
        self.circuit, self.outcome = circuit, outcome
        self.trusted_srs = list(trusted_srs or [])
        self.say = say or (lambda s: None)
        self.replica = Ledger.in_memory()
        self.report = MonitorReport()
        self.state_path = None if state is None else Path(state) / "monitor.checkpoint.json"
        if state is not None:
            from zkauction.protocol.private import private_folder

            private_folder(Path(state))
        self._reader: _Reader | None = None
        self._view: LogView | None = None
        self._checked = 0  # rounds whose public checks ran
        self._kept_checked = False  # whether the entries served extend the checkpoint kept from an earlier run
        self._resumed_size = 0  # the size of a checkpoint kept from an earlier run: a log served short of it is timed
        if self.state_path is not None and self.state_path.is_file():
            from zkauction.protocol.checkpoint import SignedCheckpoint

            try:
                self._resumed_size = SignedCheckpoint.load(self.state_path).size
            except ZkAuctionError:
                pass  # (LogView names an unreadable one)
        self._progress_at: tuple[int, ...] | None = None  # the run's progress last seen, and since when
        self._progress_since = time.monotonic()
        # signed entries it saw beyond any checkpoint when it stopped on a failed check (--state): the
        # log must hold each at its place on a later run, or the host dropped them (a fork)
        self.evidence_path = None if state is None else Path(state) / "monitor.evidence.json"
        self._evidence: dict[int, str] = {}
        if self.evidence_path is not None and self.evidence_path.is_file():
            import json

            try:
                self._evidence = {int(k): str(v) for k, v in json.loads(self.evidence_path.read_text()).items()}
            except (ValueError, TypeError, AttributeError):
                raise ProtocolError(f"{self.evidence_path}: not this monitor's evidence (a JSON object of entry "
                                    "numbers and hashes)") from None

    def poll(self) -> bool:
        """Fetch what is new, check it; True once the audit has a verdict. On a failed check (a
        breach, a fork, a rollback) the checkpoint this monitor accepted, which covers it, goes to
        ``--state`` first: a host that then rolls its log back and replays the round honestly is a
        fork to the monitor's next run, not a valid log (the sixteenth review)."""
        try:
            return self._poll()
        except ZkAuctionError as e:
            if not isinstance(e, Unavailable):
                self._pin(tail=True)
            raise

    def _pin(self, tail: bool = False) -> None:
        """The kept checkpoint to ``--state``; with ``tail``, also the hashes of the entries it read
        beyond it (signed, verified on arrival): a host that drops a breach no checkpoint covered yet
        and plays on honestly is named on the next run (the seventeenth review)."""
        if self._view is not None:
            self._view.flush(durable=True)
        if tail and self.evidence_path is not None and self._view is not None and self._view.kept is not None:
            from zkauction.protocol.private import write_private
            import json

            seen = {e.seq: e.hash for e in self.replica.entries(start=self._view.kept.size)}
            if seen:
                self._evidence.update(seen)
                write_private(self.evidence_path, json.dumps({str(k): v for k, v in sorted(self._evidence.items())}),
                              durable=True)

    def _check_evidence(self) -> None:
        for seq, h in self._evidence.items():
            if seq < len(self.replica) and self.replica.get(seq).hash != h:
                raise MonitorAlert(f"fork: entry {seq} is not the one this monitor saw signed on an earlier run "
                                   f"({self.evidence_path.name})")

    def _poll(self) -> bool:
        r = self.replica
        new, before, garbled = self.remote.entries(start=len(r)), len(r), None
        try:
            r.replicate(new)
        except ChainError as e:  # entries that do not chain or verify: no answer (timed), evidence of nothing;
            new, garbled = new[: len(r) - before], e  # those before it are kept (and read below)
        self.report.entries = len(r)
        if not len(r):
            if garbled is not None:
                raise Malformed(f"{self.remote.url}: the server's first entry does not verify: {garbled}")
            return False
        if self._reader is None:
            ann, first = read_announcement(r)
            from zkauction.protocol.audit import announced_terms

            bad = announced_terms(ann, self.circuit)  # the terms the circuit fixes, from its own files
            if bad:
                raise MonitorAlert(f"breach: {bad[0]}")
            from zkauction.protocol.announcement import deadlines_problem

            problem = deadlines_problem(ann.deadlines)
            if problem:  # (its silence clock runs on the default deadlines: liveness_limit_s fails closed)
                self.say(f"monitor: {problem}; no bidder client takes part in such an auction")
            self._reader = _Reader(ann, first)
            self._view = LogView(ann.auctioneer, self.state_path, log_id=first.hash)
        for e in new:
            if e.seq > 0:
                self._reader.read(e)
        if garbled is not None:
            raise Malformed(f"{self.remote.url}: the server's entries from {len(r)} do not verify: {garbled}")
        self._check_checkpoint()
        self._check_evidence()
        st = self._reader.st
        if st.breaches:
            raise MonitorAlert(f"breach: {st.breaches[0]}")
        from zkauction.protocol.audit import check_round

        while self._checked + 1 in st.outcomes:
            problems = check_round(st, self._checked + 1)
            if problems:
                raise MonitorAlert(f"breach: {problems[0]}")
            self._checked += 1
        self.report.rounds_checked = self._checked
        return self._audit_done(st)

    def _check_checkpoint(self) -> None:
        r, view = self.replica, self._view
        if view.kept is not None and not self._kept_checked:  # (kept from an earlier run, --state)
            if len(r) < view.kept.size and len(self.remote) > len(r):
                return  # one read ends at 50,000 entries or 120 s: the rest on the next poll (a server that
                # states more than it ever serves stands still: its silence, by check_live)
            if len(r) < view.kept.size:  # the server served every entry it has: fewer than it signed for
                raise Malformed(f"rollback: the server serves {len(r)} entries, fewer than the {view.kept.size} of the "
                                "checkpoint this monitor holds")
            try:
                check_log_extends(r, view.kept)
            except LogIdentityError as e:  # another log (re-keyed): this monitor's state is not about it
                raise MonitorAlert(f"fork: {e}") from None
            except CheckpointError as e:  # not an extension of it: a fork, if proven; else no answer (timed)
                self._fork_or_no_answer(str(e), view.kept, self.remote.latest_checkpoint())
            self._kept_checked = True
        cp = self.remote.latest_checkpoint()
        if cp is None:
            return
        try:  # (one signed by nobody is no checkpoint: no answer, timed)
            cp.verify(self._reader.st.announcement.auctioneer)
        except CheckpointError as e:
            raise Malformed(f"{self.remote.url}: the server's checkpoint is not the auctioneer's: {e}") from None
        if cp.size > len(r):  # signed after our fetch: checked on the next poll
            return
        if r.root(cp.size) != cp.root:
            if view.kept is not None and cp.size <= view.kept.size:  # two histories it signed, both in hand
                self._fork_or_no_answer(f"the server's signed checkpoint of size {cp.size} is not the root of the "
                                        f"entries of the checkpoint of size {view.kept.size} this monitor holds", view.kept, cp)
            # a tail served that its own signed checkpoint does not cover: evidence of nothing, no answer
            raise Malformed(f"{self.remote.url}: the server's signed checkpoint of size {cp.size} is not the root of "
                            "the entries it served")
        if view.kept is not None and cp.size < view.kept.size:  # (an older one: no answer, timed; the twentieth review)
            raise Malformed(f"rollback: the server's newest checkpoint covers {cp.size} entries, "
                            f"this monitor holds one of {view.kept.size}")
        proof = r.consistency_proof(view.kept.size, cp.size) if view.kept is not None and view.kept.size else []
        try:
            view.accept(cp, proof)
        except ForkError as e:
            self._fork_or_no_answer(str(e), view.kept, cp)
        self.report.checkpoints += 1
        self.report.consistency_checks = view.checks

    def _held(self) -> list[Any]:
        """The checkpoint this monitor accepted: what vouches for its replica to the Auditor."""
        return [] if self._view is None or self._view.kept is None else [self._view.kept]

    def _fork_or_no_answer(self, why: str, *cps: Any) -> None:
        """A fork proven by two checkpoints the auctioneer signed (:meth:`_fork_verdict`) is its breach
        (:class:`MonitorAlert`, the verdict invalid); one the host's choice of checkpoint leaves
        unproven (it served an older one, or a log cut at it) is no answer, timed to its silence (the
        twentieth review: it ended the monitor with "fork", no verdict)."""
        self._fork_verdict(*cps)
        if self.report.verdict is not None:
            raise MonitorAlert(f"fork: {why}")
        raise Malformed(f"{self.remote.url}: {why} (not proven by two checkpoints the auctioneer signed: no answer)")

    def _fork_verdict(self, *cps: Any) -> None:
        """The served log and a checkpoint this monitor holds disagree: if the auctioneer signed one
        that vouches for the served entries and another over a different history of them (same log
        id), the verdict on the served log with both as evidence is invalid, the penalty due
        (report.verdict)."""
        from zkauction.protocol.audit import Auditor

        try:
            report = Auditor(self.replica, circuit=self.circuit, outcome=self.outcome, trusted_srs=self.trusted_srs,
                             checkpoints=[c for c in cps if c is not None]).audit()
        except ZkAuctionError:  # another log (re-keyed), or the server gone: no evidence about this one
            return
        if report.status == "invalid":
            self.report.verdict = report.to_dict()

    def _audit_done(self, st: Any) -> bool:
        if st.reveals_closed is None:
            return False
        # the verdict reads every entry of the replica: it waits until a signed checkpoint this monitor
        # accepted covers them all (else the server could show it a tail it never commits to)
        if self._view is None or self._view.kept is None or self._view.kept.size != len(self.replica):
            return False
        if self._evidence and max(self._evidence) >= len(self.replica):
            raise MonitorAlert(f"rollback: the log ends at {len(self.replica)} entries; this monitor saw signed entries "
                               f"up to {max(self._evidence)} on an earlier run ({self.evidence_path.name})")
        from zkauction.protocol.audit import Auditor, audit_draw

        draw = audit_draw(st)
        if not all(r in st.answers for r in draw.rounds):
            return False
        report = Auditor(self.replica, circuit=self.circuit, outcome=self.outcome, trusted_srs=self.trusted_srs,
                         checkpoints=self._held()).audit()
        self.report.verdict = report.to_dict()
        if not report.valid:  # invalid, or unconfirmed (a bidder never co-signed this log)
            raise MonitorAlert(f"the audit is {report.status}: {report.reason or report.failed}")
        return True

    def progress(self) -> tuple[int, ...] | None:
        """Where the run stands in the log (None before every bidder registered: the rounds have not
        begun, and nothing is late yet). Entries that move no round, phase or answer do not count."""
        st = self._reader.st if self._reader is not None else None
        if len(self.replica) < self._resumed_size:  # resumed on a checkpoint it kept, the log served short of it
            return ("short", len(self.replica))
        if st is None or not st.registered:
            return None
        answers = 0  # only answers to the draw move the audit, so none before it is closed (a junk "proof"
        if st.reveals_closed is not None:  # of an undrawn round reset the clock: the eighteenth review)
            from zkauction.protocol.audit import AuditError, audit_draw

            try:
                answers = len(set(audit_draw(st).rounds) & set(st.answers))
            except AuditError:
                pass
        return (len(st.closes), sum(map(len, st.rejections.values())), len(st.outcomes), len(st.reveals),
                int(st.reveals_closed is not None), answers)

    def check_live(self, now: float | None = None) -> None:
        """MonitorAlert once the run has stood still (:meth:`progress`) longer than the announced
        deadlines together (:func:`~zkauction.protocol.audit.liveness_limit_s`) by this monitor's
        clock: the auctioneer is silent, and the verdict on the log as it stands is invalid."""
        now = time.monotonic() if now is None else now
        at = self.progress()
        if at is None or at != self._progress_at:
            self._progress_at, self._progress_since = at, now
            return
        from zkauction.protocol.audit import Auditor, liveness_limit_s

        if self._reader is None or not self._reader.st.registered:  # resumed, and the log served stands short of it
            limit = liveness_limit_s(self._reader.st.announcement if self._reader else None)
            if now - self._progress_since > limit:
                self._pin(tail=True)
                raise MonitorAlert(f"the auctioneer is silent: the server serves {len(self.replica)} entries, short of the "
                                   f"checkpoint this monitor holds, for {now - self._progress_since:.0f} s (limit {limit:g} s)")
            return
        limit = liveness_limit_s(self._reader.st.announcement)
        if now - self._progress_since > limit:
            report = Auditor(self.replica, circuit=self.circuit, outcome=self.outcome,
                             trusted_srs=self.trusted_srs, checkpoints=self._held()).audit(overdue=True)
            self.report.verdict = report.to_dict()
            self._pin(tail=True)
            if report.status == "valid":  # every answer is in, but no checkpoint the monitor accepted covers it
                raise MonitorAlert(f"the auctioneer is silent: no signed checkpoint covers the {len(self.replica)} "
                                   f"entries after {now - self._progress_since:.0f} s (limit {limit:g} s)")
            raise MonitorAlert(f"the auctioneer is silent: the run has not moved for {now - self._progress_since:.0f} s, "
                               f"longer than the announced deadlines together ({limit:g} s): {report.reason}")

    def follow(self, *, interval: float = 0.5, timeout: float | None = None, retry_for: float = 120.0) -> MonitorReport:
        """Poll until the audit has a valid verdict (returns), a check fails or the run stands still
        past the announced deadlines (raises :class:`MonitorAlert`) or ``timeout`` seconds pass (raises).
        A server that gives no usable answer (:class:`Unavailable`) is waited for: before the run
        began for ``retry_for`` seconds (then an error), after it began like a run standing still,
        until the deadlines pass (then the auctioneer is silent; the eighteenth review)."""
        start = last_ok = time.monotonic()
        while True:
            try:
                if self.poll():
                    if self._view is not None:
                        self._view.flush()
                    return self.report
                self.check_live()
                last_ok = time.monotonic()
            except Unavailable as e:  # (unreachable, a refused read, a malformed answer: no answer)
                if self.progress() is not None:  # the run began: timed like a run standing still
                    self.check_live()
                elif time.monotonic() - last_ok > retry_for:
                    raise ProtocolError(f"the server has been unreachable for {retry_for:g} s: {e}") from None
            if timeout is not None and time.monotonic() - start > timeout:
                raise ProtocolError(f"no verdict after {timeout:g} s (log size {len(self.replica)}, "
                                    f"{self._checked} rounds checked)")
            time.sleep(interval)


__all__ = ["Monitor", "MonitorAlert", "MonitorReport"]
