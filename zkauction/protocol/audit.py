"""The audit, as a function of the log that every verifier computes itself (the paper's Algorithm 1,
lines 9-14): the public checks of every round, the audit draw, and the check of each audited round.

Nothing here writes to the log and nothing is taken from a logged verdict: a bidder, a regulator or
anyone with the log and the announced circuit's public artefacts reaches the same verdict.

**The draw cannot be ground.** It uses only the bidders' audit seeds, committed in their
registrations before round 1 and revealed after the checkpoint that closes round T, and the log id
(fixed before any seed was chosen). Nothing the auctioneer writes after registration enters it: not
the log's head, not a rejection's text, not the order of entries. If any registered seed is not
revealed when the auctioneer closes the reveal phase, every round is audited: a withheld seed (a
shill's, or a censored honest one) widens the audit, it never chooses it.

**Valid needs every bidder's co-signature.** Each seed reveal carries the checkpoint its bidder
accepted (:func:`check_cosigned`), so once every registered bidder has revealed, no bidder can have
been shown another history of the rounds. A bidder whose seed is missing never co-signed this log:
it went offline, or the auctioneer showed it another one (a split view that censors each honest
bidder in the other's fork looks, in each fork, like an absent bidder). Such a log, every round
checked and sound, is ``unconfirmed``, never ``valid``: no penalty is due on it alone, and the
bidders it names are the ones to compare checkpoints with.

**Silence is a breach once the announced deadlines pass.** The log has no trusted clock, so the
verifier brings its own: ``Auditor.audit(overdue=True)`` (the bidder client and the monitor set it
once :func:`liveness_limit_s` seconds pass by their clock without the run moving) turns a verdict
that is still waiting on the auctioneer into ``invalid`` with the penalty due. Without it, a host
that learnt the draw from the revealed seeds could stay silent whenever its lie was drawn.

**Every round is checked, not only the audited ones** (:func:`check_round`; the reading's own
breaches, such as one commitment logged for two bidders, in :func:`public_checks`): the close lists
exactly the logged commitments, one outcome after it naming exactly those commitments (rejected
bidders absent), allocations feasible, absent bidders get nothing and pay nothing, payments between
0 and the allocated value at the top of the support (individual rationality as far as it is
checkable without bids), every rejection has a reason from the closed set and, for a bad opening,
the bidder's own signed opening as evidence that is indeed bad (else it is a false rejection), and a
bidder rejected for ``no_opening`` who published a valid opening before the outcome is in it (one
that did neither nor abstain leaves the round void where the announcement voids rounds, and is a
breach under the old ``drop`` rule).

**The announcement states its circuit's terms** (:func:`announced_terms`): a verifier holding the
circuit checks input and output scales, supports, n and m against the circuit's own files. What
only a bidder can check, its own bids' worth against its payment, is :func:`own_outcome_problem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from zkauction.protocol.announcement import (  # noqa: F401  (liveness_limit_s: imported from here too)
    LIVENESS_GRACE_S,
    liveness_limit_s,
    misstated_terms,
)
from zkauction.protocol.checkpoint import CheckpointError, attested_size, equivocation, pinned_log, stored_checkpoint
from zkauction.protocol.credibility import DEFAULT_TOLERANCE, output_step, public_tolerance
from zkauction.protocol.entries import outcome_digest, pinned_failure
from zkauction.protocol.log import ChainError, Ledger, LedgerError, SignedCheckpoint, verify_signature
from zkauction.protocol.state import (
    Announcement,
    EVIDENCE_REASONS,
    AuditError,
    Breach,
    LedgerState,
    OutcomeFunction,
    ProtocolError,
    absent_commitment,
    opening_message,
    openings_problem,
    read_announcement,
    read_state,
)
from zkauction.protocol.draw import (  # noqa: F401  (the draw lives in draw.py; imported from here too)
    DRAW_DOMAIN,
    AuditDraw,
    audit_draw,
    draw_digest,
    select_audit_rounds,
    unconfirmed_reason,
)
from zkauction.zk import commitments
from zkauction.zk.circuit import Outcome

# --------------------------------------------------------------------------------------------------
# Public checks of every round


def valid_opening(st: LedgerState, bidder: int, commitment: str, bids: Any, salt: Any) -> str | None:
    """None if (bids, salt) is a valid opening of ``commitment`` within the support, else why not."""
    ann = st.announcement
    try:
        if not isinstance(bids, list) or len(bids) != ann.m:
            return f"expected {ann.m} bids"
        commitments.check_opening(commitment, commitments.Opening(tuple(float(b) for b in bids), str(salt)), ann.input_scale)
    except (commitments.CommitmentError, TypeError, ValueError, ArithmeticError) as e:
        return f"not an opening of the logged commitment ({str(e)[:200]})"
    if all(float(b) == 0 for b in bids):
        return "all-zero bids"
    for j, b in enumerate(bids):
        lo, hi = ann.support[bidder][j]
        if not lo <= float(b) <= hi:
            return f"bid for item {j} is {b}, outside [{lo}, {hi}]"
    return None


def grid_step(ann: Announcement) -> float | None:
    """The outcome grid's step, 2^-output_scale for a circuit's fixed-point outputs; None for float
    outcomes."""
    return output_step(ann.term("output_scale"))


def tolerance(st: LedgerState) -> float:
    """How far rounding may carry a feasible outcome: one grid step per bidder, or
    :data:`DEFAULT_TOLERANCE` for float outcomes."""
    return public_tolerance(st.announcement.n, st.announcement.term("output_scale"))


def own_outcome_problem(ann: Announcement, i: int, bids: Sequence[float], d: dict[str, Any]) -> str | None:
    """What bidder ``i`` sees wrong in an outcome computed on its opening ``bids`` that nobody
    without its bids can: it pays more than its allocation is worth at its own bids, beyond rounding
    (every auction zkauction announces is individually rational; the public checks can only bound a
    payment by the top of the support). None if nothing is."""
    try:
        a = [float(x) for x in d["allocation"][i]]
        pay = float(d["payment"][i])
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError):
        return f"the outcome is malformed (no allocation or payment of bidder {i})"
    value = sum(x * float(b) for x, b in zip(a, bids))
    if not pay <= value + (grid_step(ann) or DEFAULT_TOLERANCE) * (1 + sum(abs(float(b)) for b in bids)):
        return (f"bidder {i} pays {pay:g} for an allocation worth {value:g} at its own bids {list(bids)}: "
                "the announced auction never charges more than that (individual rationality)")
    return None


def check_round(st: LedgerState, r: int) -> list[Breach]:
    """Every public check of round ``r`` (see the module docstring)."""
    ann = st.announcement
    n, m = ann.n, ann.m
    if r not in st.closes:
        return [Breach(None, r, f"round {r}: its commitments were never closed")]
    if r not in st.outcomes:
        return [Breach(None, r, f"round {r}: no outcome was logged")]
    e = st.outcomes[r]
    d = e.data
    out: list[Breach] = []

    def breach(reason: str) -> None:
        out.append(Breach(e.seq, r, f"round {r}: {reason}"))

    coms, present = d.get("commitments"), d.get("participants")
    alloc, pay = d.get("allocation"), d.get("payment")
    if not (isinstance(coms, list) and len(coms) == n and isinstance(present, list) and len(present) == n
            and isinstance(alloc, list) and len(alloc) == n and all(isinstance(a, list) and len(a) == m for a in alloc)
            and isinstance(pay, list) and len(pay) == n):
        breach(f"the outcome must list {n} commitments, participants, allocation rows of {m} and payments")
        return out
    # (finite real numbers only: the reader never records an outcome that Outcome.from_dict refuses)
    logged, rejected = st.commitments.get(r, {}), st.rejections.get(r, {})
    absent = absent_commitment(m, ann.input_scale)
    for i in sorted(rejected):
        problem = rejection_problem(st, r, i)
        if problem:
            out.append(Breach(st.rejection_entries[r][i].seq, r, f"round {r}: bidder {i}'s rejection: {problem}"))
    cured = published_openings(st, r, before=e.seq)
    for i, reason in sorted(rejected.items()):  # (void: the round sold nothing, checked below)
        if reason == "no_opening" and i not in cured and ann.exclusion != "void":
            abstained = st.abstentions.get(r, {}).get(i)
            if abstained is None or abstained.seq > e.seq:
                out.append(Breach(st.rejection_entries[r][i].seq, r, f"round {r}: bidder {i} was rejected for no_opening, "
                                  "but neither published a valid opening nor abstained before the outcome"))
    left_out = [i for i in sorted(logged) if i in rejected and i not in cured]
    void = ann.exclusion == "void" and bool(left_out)  # (announced: a withdrawal after the openings never pays)
    for i in range(n):
        if i in logged and (i not in rejected or i in cured) and not void:
            if coms[i] != logged[i] or present[i] != 1:
                breach(f"the outcome does not use bidder {i}'s logged commitment")
        elif coms[i] != absent or present[i] != 0:
            why = ("its opening was rejected" if i in rejected else "it did not bid") if not void else (
                f"the round is void: bidder {left_out[0]}'s commitment was closed in it and left out")
            breach(f"bidder {i} must be absent from the outcome ({why})")
    tol = tolerance(st)
    for j in range(m):
        total = sum(float(alloc[i][j]) for i in range(n))
        if not total <= 1 + tol:
            breach(f"item {j} is allocated more than once (sum {total:g})")
    for i in range(n):
        a = [float(x) for x in alloc[i]]
        if not all(-tol <= x <= 1 + tol for x in a):
            breach(f"bidder {i}'s allocation {a} is outside [0, 1]")
        if present[i] == 0 and (any(x != 0 for x in a) or float(pay[i]) != 0):
            breach(f"absent bidder {i} was allocated items or charged")
        top = sum(x * ann.support[i][j][1] for j, x in enumerate(a))
        if not -tol <= float(pay[i]) <= top + tol:
            breach(f"bidder {i} pays {pay[i]}, outside [0, {top:g}] (its allocation at the top of its support)")
    return out


def rejection_problem(st: LedgerState, r: int, i: int) -> str | None:
    """None if the rejection of bidder ``i`` in round ``r`` is justified by the log, else why not:
    an evidence reason needs the bidder's signed opening, and that opening must indeed be bad."""
    e = st.rejection_entries[r][i]
    reason = st.rejections[r][i]
    if reason not in EVIDENCE_REASONS:
        return None
    ev = e.data.get("evidence")
    try:
        msg = opening_message(st.log_id, r, i, ev["bids"], ev["salt"])
        signed = verify_signature(st.announcement.bidders[i], msg, str(ev["signature"]))
    except (KeyError, TypeError, ValueError, LedgerError):
        signed = False
    if not signed:
        return f"{reason}, but its evidence is not an opening signed by bidder {i}"
    if valid_opening(st, i, st.commitments[r][i], ev["bids"], ev["salt"]) is None:
        return f"{reason}, but the evidence is bidder {i}'s valid opening: a false rejection"
    return None


def published_openings(st: LedgerState, r: int, before: int) -> set[int]:
    """Bidders rejected for ``no_opening`` in round ``r`` who published a valid opening on the log
    (``dispute``) before entry ``before`` (the outcome): the outcome must include them."""
    out = set()
    for i, d in st.disputes.get(r, {}).items():
        if st.rejections.get(r, {}).get(i) == "no_opening" and d.seq < before:
            if valid_opening(st, i, st.commitments[r][i], d.data.get("bids"), d.data.get("salt")) is None:
                out.add(i)
    return out


def public_checks(st: LedgerState) -> list[Breach]:
    """Every breach the log shows: the reading's, and every round's public checks. Rounds after
    the last outcome are pending (not breaches) until the auctioneer closes the reveal phase."""
    ann = st.announcement
    out = list(st.breaches)
    last = max(st.outcomes, default=0)
    upto = ann.rounds if st.reveals_closed is not None else last
    for r in range(1, upto + 1):
        out.extend(check_round(st, r))
    if st.openings:  # published bids only of the audited rounds (the reader takes them only after the draw)
        drawn = set(audit_draw(st).rounds)
        out.extend(Breach(e.seq, r, f"round {r}'s openings published, but the audit did not draw round {r}")
                   for r, e in sorted(st.openings.items()) if r not in drawn)
    return out


def check_cosigned(ledger: Ledger, st: LedgerState) -> list[Breach]:
    """Each seed reveal carries the checkpoint its bidder accepted: the log must extend every one of
    them. A log that does not was shown differently to that bidder (fork) or cut (truncation)."""
    out = []
    for i, e in sorted(st.reveals.items()):
        cp = SignedCheckpoint.from_dict(e.data["checkpoint"])  # signed by the auctioneer: checked on reading
        problem = cosigned_problem(ledger, cp)
        if problem:
            out.append(Breach(e.seq, None, f"bidder {i} co-signed {problem}"))
    return out


def cosigned_problem(ledger: Ledger, cp: SignedCheckpoint) -> str | None:
    """Why checkpoint ``cp`` is not one of ``ledger`` (None if it is): what a co-signature shows."""
    if cp.size > len(ledger):
        return f"a log of {cp.size} entries; this one has {len(ledger)} (truncated)"
    if ledger.root(cp.size) != cp.root:
        return f"another log of {cp.size} entries than this one (fork)"
    return None


# --------------------------------------------------------------------------------------------------
# The audited rounds


@dataclass(frozen=True)
class Verdict:
    round: int
    mode: str
    valid: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _compare_outcomes(round: int, published: Outcome, expected: Outcome, what: str) -> None:
    if published.payment != expected.payment:
        raise ProtocolError(f"round {round}: published payment {list(published.payment)} but {what} {list(expected.payment)}")
    if published.allocation != expected.allocation:
        raise ProtocolError(f"round {round}: published allocation {[list(r) for r in published.allocation]} but {what} "
                            f"{[list(r) for r in expected.allocation]}")


def check_round_openings(st: LedgerState, round: int, bids: Sequence[Sequence[float]], salts: Sequence[str],
                         outcome: OutcomeFunction) -> None:
    """Reveal / third-party check: the openings open the commitments the outcome names, every
    participant's opening is one the auctioneer had to accept (within the support: a shill's bid
    outside it moves prices beyond any bid it may make), and the announced auction gives the
    published outcome on them."""
    ann = st.announcement
    logged = st.commitments_of(round)
    present = st.outcomes[round].data["participants"]
    problem = openings_problem(ann.n, ann.m, bids, salts)
    if problem:
        raise ProtocolError(f"round {round}: the openings are malformed: {problem}")
    for i in range(ann.n):
        try:
            got = commitments.commit(list(map(float, bids[i])), salts[i], ann.input_scale)
        except (commitments.CommitmentError, ValueError, ArithmeticError) as e:
            raise ProtocolError(f"round {round}: bidder {i}'s opening is malformed: {e}") from None
        if got != logged[i]:
            raise ProtocolError(f"round {round}: bidder {i}'s opening does not match the commitment the outcome names")
        problem = valid_opening(st, i, logged[i], list(bids[i]), salts[i]) if present[i] == 1 else None
        if problem:
            raise ProtocolError(f"round {round}: bidder {i} is in the outcome, but its opening is one the auctioneer "
                                f"must reject: {problem}")
    _compare_outcomes(round, st.outcome_of(round), outcome(bids, salts), "the announced auction gives")


@dataclass
class AuditReport:
    """The verdict every verifier computes. ``status``: ``pending`` (the audit cannot be decided
    yet: ``reason`` says why), ``valid`` or ``invalid`` (the penalty is due)."""

    status: str
    reason: str
    draw: AuditDraw | None
    verdicts: list[Verdict] = field(default_factory=list)
    breaches: list[Breach] = field(default_factory=list)
    penalty_due: float = 0.0
    srs: dict[str, Any] | None = None
    log_size: int = 0

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    @property
    def rounds(self) -> list[int]:
        return self.draw.rounds if self.draw else []

    @property
    def failed(self) -> list[int]:
        return [v.round for v in self.verdicts if not v.valid]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "valid": self.valid,
                "draw": self.draw.to_dict() if self.draw else None, "verdicts": [v.to_dict() for v in self.verdicts],
                "failed": self.failed, "breaches": [str(b) for b in self.breaches], "penalty_due": self.penalty_due,
                "srs": self.srs, "log_size": self.log_size}


def announced_terms(ann: Announcement, circuit: Any) -> list[Breach]:
    """Each term the announcement misstates against the verifier's copy of its circuit (None checks
    nothing; :func:`~zkauction.protocol.announcement.misstated_terms`): a breach at entry 0."""
    terms = misstated_terms(ann, circuit) if circuit is not None else []
    return [Breach(0, None, f"{p} (the announced circuit's own terms)") for p in terms]


def _silent(why: str, ann: Announcement, draw: AuditDraw | None, size: int) -> AuditReport:
    return AuditReport("invalid", f"the auctioneer is silent past the announced deadlines ({why})", draw, [],
                       [Breach(None, None, f"no answer within the announced deadlines: {why}")], ann.penalty, None, size)


class Auditor:
    """Anyone: computes the audit's verdict from the log. ``circuit`` (public artefacts suffice)
    verifies zk proofs, ``outcome`` recomputes outcomes in reveal mode; ``trusted_srs`` pins SRS
    hashes. Never writes to the log."""

    def __init__(self, ledger: Ledger, *, circuit: Any = None, outcome: OutcomeFunction | None = None,
                 trusted_srs: Iterable[str] = (), verify_bundle: Callable[..., Any] | None = None,
                 checkpoints: Iterable[SignedCheckpoint] = ()):
        self.ledger = ledger
        self.checkpoints = list(checkpoints)  # signed checkpoints held outside the log (other parties')
        self.circuit = circuit
        self.outcome = outcome
        self.trusted_srs = list(trusted_srs)
        self._verify_bundle = verify_bundle
        self.srs: dict[str, Any] | None = None

    def check_audited_round(self, st: LedgerState, round: int) -> Verdict:
        """One audited round in the announced mode; a failed check is a verdict, never an exception."""
        mode = st.announcement.mode
        try:
            if round not in st.outcomes:
                raise ProtocolError(f"round {round}: no outcome was logged")
            {"zk": self._check_zk, "reveal": self._check_reveal, "ttp": self._check_ttp}[mode](st, round)
        except ProtocolError as e:
            return Verdict(round, mode, False, str(e))
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError, AttributeError) as e:
            # a logged entry of another shape than its checks assume (an outcome listing fewer commitments
            # than bidders, none at all: the eighteenth review crashed the verdict with them)
            return Verdict(round, mode, False, f"round {round}: the logged entries cannot be checked "
                                               f"({type(e).__name__}: {str(e)[:120]})")
        return Verdict(round, mode, True, f"round {round}: outcome verified ({mode})")

    def _check_zk(self, st: LedgerState, round: int) -> None:
        from zkauction.zk.bundle import BundleError, ProofBundle, VerificationError

        if round not in st.proofs:
            raise ProtocolError(f"round {round}: the auctioneer logged no proof")
        if self.circuit is None:
            raise ProtocolError(f"round {round}: no circuit given to verify the proof")
        try:
            bundle = ProofBundle.from_dict(st.proofs[round].data)
            if bundle.round_id != round:
                raise ProtocolError(f"round {round}: the logged proof names round {bundle.round_id!r}")
            verify = self._verify_bundle
            if verify is None:
                from zkauction.zk.bundle import verify_bundle as verify
            res = verify(bundle, self.circuit, expected_commitments=st.commitments_of(round),
                         expected_outcome=st.outcome_of(round),
                         expected_manifest_sha256=st.announcement.auction.get("manifest_sha256"),
                         trusted_srs=self.trusted_srs)
            srs = getattr(res, "srs", None)
            if srs is not None:
                self.srs = srs.to_dict()
        except VerificationError as e:
            raise ProtocolError(e.reason if e.reason.startswith(f"round {round}") else f"round {round}: {e}") from None
        except BundleError as e:
            raise ProtocolError(f"round {round}: unreadable proof bundle: {e}") from None

    def _check_reveal(self, st: LedgerState, round: int) -> None:
        if round not in st.openings:
            raise ProtocolError(f"round {round}: the auctioneer published no openings")
        if self.outcome is None:
            raise ProtocolError(f"round {round}: no auction given to recompute the outcome")
        d = st.openings[round].data
        check_round_openings(st, round, d["bids"], d["salts"], self.outcome)

    def _check_ttp(self, st: LedgerState, round: int) -> None:
        if round not in st.ttp_verdicts:
            raise ProtocolError(f"round {round}: the trusted third party logged no verdict")
        v = st.ttp_verdicts[round].data
        if v.get("valid") is not True:
            raise ProtocolError(str(v.get("reason", f"round {round}: the trusted third party rejected the outcome")))
        if "outcome_sha256" in v and v["outcome_sha256"] != outcome_digest(st.outcomes[round]):  # (none: an older verdict)
            raise ProtocolError(f"round {round}: the trusted third party's verdict is on another outcome than the logged one")

    def audit(self, state: LedgerState | None = None, *, overdue: bool = False) -> AuditReport:
        """The verdict: pending, valid, unconfirmed (every round sound, but a bidder never co-signed
        this log) or invalid with the penalty due. ``overdue``: the verifier's own clock says the
        announced deadlines have passed (:func:`liveness_limit_s`), so waiting on the auctioneer is
        its breach, not pending. A checkpoint given (``checkpoints``) that the auctioneer signed
        beyond what the log given holds leaves any verdict but invalid pending (overdue: silent)."""
        # only what a checkpoint the auctioneer signed pins is its log (statements are signed without their place)
        ann, _ = read_announcement(self.ledger, signatures=False)  # (its signature is checked with what it pins)
        own = stored_checkpoint(self.ledger, ann.auctioneer)
        attested = attested_size(self.ledger, self.checkpoints + ([own] if own else []), ann.auctioneer)
        unheld = [cp.size for cp in self.checkpoints if cp.size > attested]
        report = self._audit(state, overdue, ann, attested, own)
        if not unheld or report.status == "invalid":
            return report
        why = f"the log given is not the log of a checkpoint of size {max(unheld)} the auctioneer signed"
        return _silent(why, ann, report.draw, report.log_size) if overdue else \
            AuditReport("pending", why, report.draw, report.verdicts, [], 0.0, report.srs, report.log_size)

    def _audit(self, state: LedgerState | None, overdue: bool, ann: Announcement, attested: int,
               own: SignedCheckpoint | None) -> AuditReport:
        if not attested:  # (overdue: a host that never signed a checkpoint of the log it announced is silent)
            why = "no checkpoint the auctioneer signed vouches for the log given"
            return _silent(why, ann, None, 0) if overdue else AuditReport("pending", why, None, [], [], 0.0)
        try:  # every entry's content, hash and signature, before anything is read from them
            log, spoiled = pinned_log(self.ledger, attested)
        except ChainError as e:  # the auctioneer's only where its checkpoint pins the failure (else a damaged copy)
            if pinned_failure(getattr(e, "entry", None), e):  # (the row that failed, read at its place)
                return AuditReport("invalid", f"the log does not verify: {e}", None, [], [Breach(e.seq, None, str(e))],
                                   ann.penalty, None, len(self.ledger))
            why = f"the log given is a damaged copy: {e}"  # (overdue: the host served no sound log in time)
            return _silent(why, ann, None, 0) if overdue else AuditReport("pending", why, None, [], [], 0.0, None, len(self.ledger))
        st = state if state is not None and spoiled is None else read_state(log, signatures=spoiled is None)
        breaches = announced_terms(ann, self.circuit) + public_checks(st) + check_cosigned(log, st)
        breaches += [Breach(None, None, why) for cp in self.checkpoints if (why := equivocation(log, cp, ann.auctioneer, attested))]
        try:  # the log's own stored checkpoint over another history of what the others pin: its equivocation too
            breaches += [Breach(None, None, why)] if own and (why := equivocation(log, own, ann.auctioneer, attested)) else []
        except CheckpointError:  # (not the auctioneer's: a damaged copy's row, evidence of nothing)
            pass
        try:
            draw = audit_draw(st)
        except AuditError as e:
            if breaches:
                return AuditReport("invalid", f"{len(breaches)} breach(es) in the log", None, [], breaches,
                                   ann.penalty, None, st.size)
            if overdue:
                return _silent(f"{e}", ann, None, st.size)
            return AuditReport("pending", str(e), None, [], [], 0.0, None, st.size)
        waiting = [r for r in draw.rounds if r not in st.answers]
        if waiting and not breaches:
            why = f"waiting for the auctioneer's {ann.mode} answer for round(s) {waiting}"
            if overdue:
                return _silent(why, ann, draw, st.size)
            return AuditReport("pending", why, draw, [], [], 0.0, None, st.size)
        verdicts = [self.check_audited_round(st, r) for r in draw.rounds]
        failed = [v.round for v in verdicts if not v.valid]
        if breaches or failed:
            why = "; ".join(filter(None, [f"audited round(s) {failed} failed" if failed else "",
                                          f"{len(breaches)} breach(es) in the log" if breaches else ""]))
            return AuditReport("invalid", why, draw, verdicts, breaches, ann.penalty, self.srs, st.size)
        if spoiled:  # nothing against the auctioneer in what it pinned, but no sound copy to pass
            why = f"the log given is a damaged copy ({spoiled}); the entries its checkpoint pins show no breach"
            return _silent(why, ann, draw, st.size) if overdue else AuditReport("pending", why, draw, [], [], 0.0)
        if draw.withheld:
            return AuditReport("unconfirmed", unconfirmed_reason(draw) + f"; rounds {draw.rounds} verified ({ann.mode}) "
                               "and every round's public checks hold on this log", draw, verdicts, [], 0.0, self.srs, st.size)
        return AuditReport("valid", f"rounds {draw.rounds} verified ({ann.mode}); every round's public checks hold",
                           draw, verdicts, [], 0.0, self.srs, st.size)
