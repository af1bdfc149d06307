"""The bidder client: ``zkauction bidder init`` / ``zkauction bidder run``.

A bidder keeps, in its own state folder (0700, files 0600): its Ed25519 key, its secret (salts and
audit seed derive from it and the log id) and the last checkpoint it accepted. Against a server it
does what the protocol's :class:`~zkauction.protocol.bidder.Bidder` does over a local log, over HTTP:
registers (signs the announcement, only if it names its key and what it was told), commits or passes
each round, opens only once a checkpoint it holds covers the round's close with its commitment in it,
checks every outcome it takes part in, disputes a ``no_opening`` rejection, reveals its seed after
round T and verifies every audited round's proof (zk mode) against the log.

Every step is idempotent, so when the server goes away (killed, restarted) the client waits and does
the step again; openings and passes, which the server keeps in memory only, are sent again.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from zkauction.errors import ZkAuctionError
from zkauction.protocol.audit import liveness_limit_s
from zkauction.protocol.bidder import Bidder, NotCovered
from zkauction.protocol.checkpoint import CheckpointError, ForkError
from zkauction.protocol.log import SigningKey
from zkauction.protocol.private import private_folder, write_private
from zkauction.protocol.state import OUTCOME, AuditError, ProtocolError, first_entry
from zkauction.service.engine import pass_message
from zkauction.service.bids import BidsFileError, parse_bids  # noqa: F401  (imported from here too)
from zkauction.service.remote import Malformed, Refused, RemoteLog, Unavailable

BidSource = Callable[[int], "list[float] | None"]


class AuditFailed(ProtocolError):
    """The log this bidder holds shows a breach: the auctioneer owes the penalty."""

    exit_code = 1


class _NotAnswered(ProtocolError):
    """The log this bidder holds does not (yet) show an audited round's answer."""


def init_state(state: str | Path) -> str:
    """Create a bidder's state folder (key and secret) if it has none; return its public key."""
    d = private_folder(Path(state))
    if not (d / "key.pem").is_file():
        SigningKey.generate().save(d / "key.pem")
        write_private(d / "secret", secrets.token_hex(32) + "\n")
    return SigningKey.load(d / "key.pem").public_hex


@dataclass
class ClientReport:
    index: int
    rounds_bid: int = 0
    rounds_passed: int = 0
    outcomes_checked: int = 0
    disputes: int = 0
    not_disputed: int = 0  # no_opening rejections left undisputed (dispute=False: the bids stay private, the round void)
    rounds_missed: int = 0  # rounds with bids whose checkpointed close does not list this bidder
    retries: int = 0
    proofs_verified: list[int] = field(default_factory=list)
    audit_rounds: list[int] = field(default_factory=list)
    checkpoint_size: int = 0
    consistency_checks: int = 0
    breaches: list[str] = field(default_factory=list)
    srs: dict[str, Any] | None = None  # the label of the SRS the audit proofs were verified against
    unconfirmed: str | None = None  # a bidder never co-signed the log: why the audit is not valid

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class BidderClient:
    """One bidder against the server at ``url`` (see the module docstring)."""

    def __init__(self, url: str, state: str | Path, bids: BidSource, *, expected: dict[str, Any] | None = None,
                 circuit: Any = None, retry_for: float = 120.0, log: Callable[[str], None] | None = None,
                 dispute: bool = True, trusted_srs: Iterable[str] = ()):
        state = Path(state)
        if not (state / "key.pem").is_file():
            raise ProtocolError(f"{state}: no bidder state here (create it with `zkauction bidder init --state {state}`)")
        self.key = SigningKey.load(state / "key.pem")
        self.remote = RemoteLog(url)
        self.bids = bids
        self.circuit = circuit
        self.retry_for = retry_for
        self.say = log or (lambda s: None)
        self.report = ClientReport(-1)  # the index once the announcement is read (retries count from here)
        self._disputed: set[int] = set()
        self._begun = False  # whether the run reached round 1 (from there on, no answer is timed as silence)
        self._replica: Any = None  # the log its kept checkpoint commits to, as far as read (_held_log)
        self.dispute = dispute
        self.trusted_srs = list(trusted_srs)
        ann = self._retry(lambda: self._announcement())
        if self.key.public_hex not in ann.bidders:
            raise ProtocolError("the announcement does not name this bidder's key: not taking part")
        from zkauction.protocol.announcement import deadlines_problem

        problem = deadlines_problem(ann.deadlines)
        if problem:  # without them no verifier could ever call the auctioneer silent
            raise ProtocolError(f"{problem}: not taking part")
        self.index = ann.bidders.index(self.key.public_hex)
        if circuit is not None:  # the terms the circuit fixes, from its own files, never the server's word
            from zkauction.protocol.announcement import circuit_terms

            expected = {**(expected or {}), **circuit_terms(circuit)}
        self.bidder = Bidder(self.index, self.key, self.remote, secret=bytes.fromhex((state / "secret").read_text().strip()),
                             view_path=state / "checkpoint.json", expected=expected, record_path=state / "logs.json")
        self.report.index = self.index
        if (state / "checkpoint.json").is_file():  # restarted past the registrations (the announcement, n of them)
            from zkauction.protocol.checkpoint import SignedCheckpoint

            try:
                self._begun = SignedCheckpoint.load(state / "checkpoint.json").size > 1 + ann.n
            except ZkAuctionError:
                pass  # (the bidder's LogView names an unreadable one)
        self.limit = liveness_limit_s(ann)  # how long the run may stand still before the auctioneer is silent

    def _announcement(self) -> Any:
        from zkauction.protocol.state import read_announcement

        return read_announcement(self.remote)[0]

    def _retry(self, step: Callable[[], Any], limit: float | None = None) -> Any:
        """``step``, again while the server gives no usable answer (:class:`Unavailable`: unreachable,
        a refused read, a malformed answer): before round 1 for ``retry_for`` seconds, then an error;
        from round 1 on until the announced deadlines pass (``limit``, by default :attr:`limit`), then
        the auctioneer is silent (the eighteenth review: a host that went dark between two status
        waits ended the client with "unreachable", exit 2, no penalty)."""
        start, delay = time.monotonic(), 0.05
        while True:
            try:
                return step()
            except (Unavailable, NotCovered, CheckpointError) as e:  # (NotCovered: the log does not show it yet)
                if isinstance(e, CheckpointError) and not (self._begun or limit is not None):
                    raise  # (before round 1: a log this bidder must refuse, refused)
                if isinstance(e, ForkError):
                    self._fork(e)  # two histories the auctioneer signed: AuditFailed; else no answer (a garbled proof)
                waited = time.monotonic() - start
                if self._begun or limit is not None:
                    lim = self.limit if limit is None else limit
                    if waited > lim:
                        self._silent(f"no usable answer from the server for {waited:.1f} s, longer than the "
                                     f"announced deadlines together ({lim:g} s): {e}")
                elif waited > self.retry_for:
                    if not isinstance(e, Unavailable):
                        raise
                    raise ProtocolError(f"the server has been unreachable for {self.retry_for:g} s: {e}") from None
                self.report.retries += 1
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _wait(self, round: int, phase: int, resend: Callable[[dict[str, Any] | None], None] | None = None,
              poll: float = 10.0, limit: float | None | str = "announced") -> dict[str, Any]:
        """Wait until the run reaches (round, phase); ``resend`` is called after every reconnect or
        unsatisfied wait of ``poll`` seconds (what the server may have lost in a restart), with the
        status that wait ended on (None after a reconnect: not known).

        From round 1 on, a run that does not move past the furthest point it reached (by the server's
        status; a status going back and forth does not count) for ``limit`` seconds, by default the
        announced deadlines together (:func:`~zkauction.protocol.audit.liveness_limit_s`, this
        client's clock), is the auctioneer's silence: :class:`AuditFailed`, the penalty is due. A
        host that learnt the audit draw from the revealed seeds could otherwise stay silent whenever
        its lie was drawn, or stop before round T, and leave the verdict pending for ever. A server
        that cannot be reached, or refuses to say where the run is, counts as standing still (before
        round 1, where nothing is late, it is an error after ``retry_for`` seconds, as before)."""
        if limit == "announced":
            limit = self.limit if (round, phase) > (1, 0) else None
        lost, last_ok, s = False, time.monotonic(), None
        furthest, since = None, time.monotonic()
        while True:
            try:
                if lost and resend is not None:
                    try:
                        resend(s)
                    except Refused as e:
                        self.say(f"bidder {self.index}: resend refused: {e}")
                s = None
                s = self.remote.status(round, phase, wait=poll)
                last_ok = time.monotonic()
                lost = True  # an unsatisfied wait: send again, in case the server restarted meanwhile
                at = (s["round"], s["phase"])
                if at >= (round, phase):
                    self._begun = self._begun or at >= (1, 0)
                    return s
                if s.get("error"):  # from round 1 on, a run that stops is silent like one that stands still
                    if limit is None:
                        raise ProtocolError(f"the server's run stopped: {s['error']}")
                    self._silent(f"the server's run stopped at round {at[0]}, phase {at[1]}: {str(s['error'])[:200]}")
                if furthest is None or at > furthest:
                    furthest, since = at, time.monotonic()
            except (Unavailable, Refused, NotCovered) as e:  # (a refused status request says nothing either)
                if limit is None and time.monotonic() - last_ok > self.retry_for:
                    raise ProtocolError(f"the server has been unreachable for {self.retry_for:g} s: {e}") from None
                self.report.retries += 1
                lost = True
                time.sleep(0.2)
            if limit is not None and time.monotonic() - since > limit:
                where = "no answer from the server" if furthest is None else f"round {furthest[0]}, phase {furthest[1]}"
                self._silent(f"the run has not gone past {where} for {time.monotonic() - since:.1f} s, longer than "
                             f"the announced deadlines together ({limit:g} s)")

    def run(self) -> ClientReport:
        """The whole run (see the module docstring). A server whose log is not an extension of the
        checkpoint this bidder kept is a fork; if the auctioneer signed both histories, that is its
        breach with the penalty due (:class:`AuditFailed`, :meth:`_fork`)."""
        try:
            return self._run()
        except ForkError as e:
            self._fork(e)
            raise

    def _fork(self, e: ForkError) -> None:
        """The log the server serves now, read in full under its newest checkpoint, with the checkpoint
        this bidder kept as evidence (:func:`~zkauction.protocol.checkpoint.equivocation`): two histories
        the auctioneer signed are :class:`AuditFailed`, else ``e`` stands (the eighteenth review: a
        split view was only ever a fork to the bidder, never a verdict)."""
        from zkauction.protocol.audit import Auditor
        from zkauction.service.remote import verified_replica

        kept = self.bidder.view.kept
        try:
            cp = self.remote.latest_checkpoint()
            if cp is None or kept is None:
                return
            cp.verify(self.bidder.announcement.auctioneer)
            replica = verified_replica(self.remote, cp, deadline=time.monotonic() + min(self.limit, 60.0))
            report = Auditor(replica, checkpoints=[kept, cp]).audit()  # (cp vouches for the replica)
        except ZkAuctionError:
            return
        if any("two histories of one log" in str(x) for x in report.breaches):
            self.report.breaches = [str(x) for x in report.breaches]
            raise AuditFailed(f"bidder {self.index}: {e}; the auctioneer signed the checkpoint this bidder kept (size "
                              f"{kept.size}) and one of another history of the same log: the penalty is due") from None

    def _run(self) -> ClientReport:
        b, ann = self.bidder, self.bidder.announcement
        self._retry(b.register)
        for r in range(1, ann.rounds + 1):
            self._wait(r, 0)
            if self._retry(lambda: first_entry(self.remote, OUTCOME, r, ann.auctioneer)) is not None:
                self._check_played(r)  # played before this client (re)started: its outcome is checked all the same
                continue
            bids = self.bids(r)
            if bids is None or self.bidder.committed_bids(bids) is None:  # (bids that snap to all zeros are none)
                self._retry(lambda: self._pass_quietly(r))  # (409: the commit phase is over, as good as passed)
                self.report.rounds_passed += 1
                self._wait(r, 3, resend=lambda _: self._pass_quietly(r))
                continue
            try:
                self._retry(lambda: b.commit(r, bids))
            except (Refused, ProtocolError) as e:
                self.say(f"bidder {self.index}: round {r}: commitment not logged ({e})")
                self._wait(r, 3)
                self._check_played(r)  # committed before a restart after all? the close says, verified
                continue
            self.report.rounds_bid += 1
            self._wait(r, 1)
            self._retry(lambda: self._open(r))
            s = self._wait(r, 2, resend=lambda _: self._open(r))
            if s["round"] == r and s["phase"] == 2:
                self._retry(lambda: self._dispute_if_rejected(r))
            # until the outcome: a restarted server lost the openings it held in memory, and may reject
            # this bidder for no_opening after it has opened; every 2 s, send the opening again if the run
            # is back in the opening phase, and dispute such a rejection before the dispute deadline
            self._wait(r, 3, resend=lambda status: self._deliver(r, status), poll=2.0)
            self._retry(lambda: b.check_outcome(r))
            self.report.outcomes_checked += 1
        T = ann.rounds
        self._wait(T + 1, 0)
        self._retry(b.reveal)
        self._wait(T + 1, 1)
        limit = liveness_limit_s(ann, self._rounds_to_answer())  # (answer_s per audited round)
        self._wait(T + 1, 2, limit=limit)
        self._final_audit(limit)
        if b._view is not None:
            b._view.flush()
            self.report.checkpoint_size = b._view.kept.size
            self.report.consistency_checks = b._view.checks
        return self.report

    def _held_log(self, deadline: float | None = None) -> tuple[Any, Any]:
        """The log its kept checkpoint commits to (synced first), as a verified replica, and its reading:
        the replica of an earlier call extended, read by ``deadline`` (``time.monotonic()``, else
        :class:`Unavailable`; a host slow-walking its pages held the verdict for hours)."""
        from zkauction.protocol.state import read_state
        from zkauction.service.remote import verified_replica

        try:
            self._replica = verified_replica(self.remote, self.bidder.sync(), self._replica, deadline)
        except (Malformed, CheckpointError):
            self._replica = None  # (not extended from a read that failed: read afresh next time)
            raise
        return self._replica, read_state(self._replica)

    def _rounds_to_answer(self) -> int:
        """How many rounds the auctioneer must answer, from the log this client holds (T, every round,
        while that log does not show the draw: the most an honest server may have to prove)."""
        from zkauction.protocol.audit import audit_draw

        try:
            return len(audit_draw(self._held_log(time.monotonic() + self.limit)[1]).rounds)
        except ZkAuctionError:
            return self.bidder.announcement.rounds

    def _final_audit(self, limit: float | None) -> None:
        """:meth:`_verify_audit`, waiting (up to ``limit``) while the log it holds does not yet show
        what the server's status says is done (the reveal phase closed, every drawn round answered):
        a host that says it is finished and never answers is silent, not an error."""
        end = None if limit is None else time.monotonic() + limit
        while True:
            try:
                return self._retry(lambda: self._verify_audit(end), limit)
            except (AuditError, _NotAnswered) as e:
                if end is None:
                    raise
                if time.monotonic() > end:
                    self._silent(f"the server says the audit is answered, but the log this bidder holds does not "
                                 f"show it after {limit:g} s ({e})")
                time.sleep(1.0)

    def _silent(self, why: str) -> None:
        """The auctioneer stopped answering past the announced deadlines: the verdict any verifier with
        this client's clock reaches on the log it holds (invalid, the penalty due)."""
        from zkauction.protocol.audit import Auditor

        try:
            replica, st = self._held_log(time.monotonic() + min(self.limit, 60.0))
            verdict = Auditor(replica, checkpoints=[k for k in [self.bidder.view.kept] if k]).audit(st, overdue=True)
            self.report.breaches = [str(x) for x in verdict.breaches]
            why = f"{why}; the verdict on the log it holds: {verdict.status}, {verdict.reason}"
        except ZkAuctionError as e:  # (the log as it stands could not be read, whatever the host served: said)
            why = f"{why} (the log could not be read: {e})"
        if self.bidder._view is not None:  # what it holds, on its own disk first
            self.bidder._view.flush(durable=True)
        raise AuditFailed(f"bidder {self.index}: the auctioneer is silent: {why}: the penalty is due")

    def _check_played(self, r: int) -> None:
        """A round that got its outcome while this client was down (or whose commit phase it missed):
        if the checkpointed close lists its commitment of the round's bids (an inclusion proof, not
        the server's answer to a filtered query), check the outcome as if it had been there (computed
        on that commitment, no charge beyond its bids' worth); if not, the round went on without it."""
        bids = self.bids(r)
        if bids is None or self.bidder.committed_bids(bids) is None:
            return
        if not self._retry(lambda: self.bidder.resume_round(r, bids)):
            self.report.rounds_missed += 1
            self.say(f"bidder {self.index}: round {r} went on without this bidder (its close does not list it)")
            return
        self._retry(lambda: self.bidder.check_outcome(r))
        self.report.outcomes_checked += 1

    def _pass(self, r: int) -> None:
        sig = self.key.sign(pass_message(self.bidder._log_id, r, self.index))
        self.remote.send(f"/api/rounds/{r}/pass", {"bidder": self.index, "signature": sig})

    def _pass_quietly(self, r: int) -> None:
        try:
            self._pass(r)
        except Refused:
            pass  # the commit phase is over

    def _dispute_if_rejected(self, r: int) -> None:
        """Publish the opening of round ``r`` on the log (a dispute) if the auctioneer logged a
        ``no_opening`` rejection of this bidder; once a round. Too late (the round has its outcome,
        void for want of it): said, and the outcome is checked as any other."""
        if r in self._disputed or not self.bidder.rejected_for_no_opening(r):
            return
        if not self.dispute:  # its bids stay off the public log; the round goes void at the dispute deadline
            self._disputed.add(r)
            self.report.not_disputed += 1
            self.say(f"bidder {self.index}: round {r}: rejected for no_opening; not disputing (--no-dispute): "
                     "the round will be void")
            return
        try:
            self.bidder.dispute(r)
        except Refused as e:
            self.say(f"bidder {self.index}: round {r}: dispute not logged ({e})")
            return
        self._disputed.add(r)
        self.report.disputes += 1

    def _deliver(self, r: int, s: dict[str, Any] | None = None) -> None:
        """While waiting for round ``r``'s outcome: where the run is now (``s``, the status the last wait
        ended on, or asked afresh) decides (a restarted server is back in the opening phase: the opening
        again; in the closing phase: a dispute if rejected)."""
        if s is None:
            s = self.remote.status()
        if s["round"] == r and s["phase"] == 1:
            self._open(r)
        elif s["round"] == r and s["phase"] == 2:
            self._dispute_if_rejected(r)

    def _open(self, r: int) -> None:
        signed = self.bidder.open(r)
        try:
            self.remote.send(f"/api/rounds/{r}/opening", {"bidder": self.index, "bids": list(signed.opening.bids),
                                                         "salt": signed.opening.salt, "signature": signed.signature})
        except Refused as e:
            if e.status != 409:  # 409: the opening phase is over (the outcome or a rejection decides)
                raise

    def _verify_audit(self, deadline: float | None = None) -> None:
        """:meth:`_check_audit`; when it finds a breach, the checkpoint covering it goes to this
        bidder's disk first (a host that then drops the tail and answers honestly is a rollback or a
        fork to the bidder's next run, the seventeenth review)."""
        try:
            self._check_audit(deadline)
        except ZkAuctionError as e:
            if not isinstance(e, (Unavailable, _NotAnswered, AuditError)) and self.bidder._view is not None:
                self.bidder._view.flush(durable=True)
            raise

    def _check_audit(self, deadline: float | None = None) -> None:
        """Every audited round, read from the log the kept checkpoint commits to (a verified replica,
        the protocol's reader: the server's answers to filtered queries are not evidence): the draw
        from the seed reveals that count, and (zk mode, with the circuit) each drawn round's proof
        against that round's logged outcome; (reveal and ttp modes, with the circuit) each drawn
        round as any auditor checks it: recomputed on its published openings, or the announced third
        party's verdict."""
        from zkauction.protocol.audit import announced_terms, audit_draw, check_cosigned, public_checks

        ann = self.bidder.announcement
        replica, st = self._held_log(deadline)
        # every round's public checks too, on the copy the kept checkpoint commits to: a rejection or an
        # outcome the server showed this client during the run is judged here against the real log; and
        # the checkpoints the other bidders co-signed in their seed reveals (a split view shows there)
        breaches = announced_terms(ann, self.circuit) + public_checks(st) + check_cosigned(replica, st)
        self.report.breaches = [str(x) for x in breaches]
        if breaches:
            raise AuditFailed(f"bidder {self.index}: the log shows a breach by the auctioneer: {breaches[0]}")
        draw = audit_draw(st)  # AuditError while the reveal phase is open in the log it holds
        rounds = self.report.audit_rounds = draw.rounds
        if draw.withheld:  # every round is checked; still, those bidders never co-signed this log
            from zkauction.protocol.audit import unconfirmed_reason

            self.report.unconfirmed = unconfirmed_reason(draw)
            self.say(f"bidder {self.index}: audit UNCONFIRMED: {self.report.unconfirmed}")
        if self.circuit is None:
            return
        if ann.mode != "zk":
            from zkauction.protocol.audit import Auditor
            from zkauction.protocol.auctioneer import circuit_outcome_function

            outcome = circuit_outcome_function(self.circuit) if ann.mode == "reveal" else None
            auditor = Auditor(replica, circuit=self.circuit, outcome=outcome)
            for r in rounds:
                if r not in st.answers:
                    raise _NotAnswered(f"bidder {self.index}: audited round {r} has no {ann.mode} answer in the log it holds")
                v = auditor.check_audited_round(st, r)
                if not v.valid:
                    raise AuditFailed(f"bidder {self.index}: audited round {r} fails ({ann.mode}): {v.reason}")
            return
        from zkauction.zk.bundle import BundleError, ProofBundle, VerificationError, verify_bundle

        for r in rounds:
            if r not in st.proofs or r not in st.outcomes:
                raise _NotAnswered(f"bidder {self.index}: audited round {r} has no proof in the log it holds")
            try:  # (the auctioneer's signed answer: an unreadable one fails the round, as for every auditor)
                bundle = ProofBundle.from_dict(st.proofs[r].data)
            except BundleError as e:
                raise AuditFailed(f"bidder {self.index}: audited round {r}: unreadable proof bundle: {e}") from None
            if bundle.round_id != r:
                raise AuditFailed(f"bidder {self.index}: the proof logged for round {r} names round {bundle.round_id!r}")
            try:
                res = verify_bundle(bundle, self.circuit, expected_commitments=st.commitments_of(r),
                                    expected_outcome=st.outcome_of(r), trusted_srs=self.trusted_srs)
            except VerificationError as e:
                raise VerificationError(e.check, f"audited round {r}: {e.reason}") from None
            self.report.proofs_verified.append(r)
            if self.report.srs is None:
                self.report.srs = res.srs.to_dict()
                self.say(f"bidder {self.index}: {res.srs}")
