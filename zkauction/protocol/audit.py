"""The audit: seed commitments and the audit draw, per-round checks (zk, reveal, ttp), the
Auditor and the trusted third party (paper, Algorithm 1 lines 9-14)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from zkauction.protocol.log import ChainCheck, ChainError, Ledger, SigningKey
from zkauction.protocol.state import (
    AUDIT_RESULT,
    AUDIT_SELECTION,
    REVEAL_MISSING,
    SELECTION_DOMAIN,
    VERDICT,
    AuditError,
    LedgerState,
    OutcomeFunction,
    ProtocolError,
    read_state,
)
from zkauction.zk import commitments
from zkauction.zk.circuit import Outcome
from zkauction.zk.commitments import CommitmentError

# --------------------------------------------------------------------------------------------------
# Audit seeds and selection



def selection_digest(reveals: dict[int, str], head: str) -> bytes:
    """SHA3-256 over the ledger head and every revealed seed, in bidder order."""
    h = hashlib.sha3_256(SELECTION_DOMAIN + bytes.fromhex(head))
    for i in sorted(reveals):
        h.update(i.to_bytes(4, "big") + bytes.fromhex(reveals[i]))
    return h.digest()


def select_audit_rounds(digest: bytes, rounds: int, audits: int) -> list[int]:
    """k distinct rounds in 1..T, uniform without replacement, from a SHA3 counter stream
    (rejection sampling, so no modulo bias). Sorted."""
    if not 1 <= audits <= rounds:
        raise AuditError(f"audits k must be in [1, T={rounds}], got {audits}")
    limit = (2**256 // rounds) * rounds
    chosen: list[int] = []
    counter = 0
    while len(chosen) < audits:
        x = int.from_bytes(hashlib.sha3_256(digest + counter.to_bytes(8, "big")).digest(), "big")
        counter += 1
        if x >= limit:
            continue
        r = x % rounds + 1
        if r not in chosen:
            chosen.append(r)
    return sorted(chosen)



@dataclass(frozen=True)
class AuditSelection:
    rounds: list[int]
    head: str
    revealed: list[int]
    missing: list[int]
    fallback: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def audit_selection(ledger: Ledger, state: LedgerState | None = None) -> AuditSelection:
    """The audited rounds, derived from every revealed seed and the ledger head at round T.

    Raises :class:`AuditError` while any round is unlogged or any committed seed is neither
    revealed nor declared missing: before that, nobody (the auctioneer included) can compute it.
    """
    st = state or read_state(ledger)
    ann = st.announcement
    if st.rounds_done < ann.rounds:
        raise AuditError(f"only {st.rounds_done} of {ann.rounds} rounds are logged: the audit starts after round {ann.rounds}")
    pending = sorted(set(st.seed_commitments) - set(st.reveals) - st.missing)
    if pending:
        raise AuditError(f"waiting for audit-seed reveals from bidder(s) {', '.join(map(str, pending))}")
    head = st.outcomes[ann.rounds].hash
    if not st.reveals:
        return AuditSelection(list(range(1, ann.rounds + 1)), head, [], sorted(st.missing),
                              "no audit seed was revealed: every round is audited")
    rounds = select_audit_rounds(selection_digest(st.reveals, head), ann.rounds, ann.audits)
    return AuditSelection(rounds, head, sorted(st.reveals), sorted(st.missing), None)



@dataclass(frozen=True)
class Verdict:
    round: int
    mode: str
    valid: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_round_openings(
    state: LedgerState, round: int, bids: Sequence[Sequence[float]], salts: Sequence[str], outcome: OutcomeFunction
) -> None:
    """Reveal / third-party check: the openings open the logged commitments and the announced
    auction on them gives the logged outcome exactly. Raises :class:`ProtocolError` naming the round."""
    ann = state.announcement
    logged = state.commitments_of(round)
    if len(bids) != ann.n or len(salts) != ann.n:
        raise ProtocolError(f"round {round}: expected openings of {ann.n} bidders")
    for i in range(ann.n):
        try:
            got = commitments.commit(list(map(float, bids[i])), salts[i], ann.input_scale)
        except CommitmentError as e:
            raise ProtocolError(f"round {round}: bidder {i}'s opening is malformed: {e}") from None
        if got != logged[i]:
            raise ProtocolError(f"round {round}: bidder {i}'s opening does not match the commitment the outcome names")
    expected = outcome(bids, salts)
    published = state.outcome_of(round)
    _compare_outcomes(round, published, expected, "the announced auction gives")


def _compare_outcomes(round: int, published: Outcome, expected: Outcome, what: str) -> None:
    if published.payment != expected.payment:
        raise ProtocolError(
            f"round {round}: published payment {list(published.payment)} but {what} {list(expected.payment)}"
        )
    if published.allocation != expected.allocation:
        raise ProtocolError(
            f"round {round}: published allocation {[list(r) for r in published.allocation]} but {what} "
            f"{[list(r) for r in expected.allocation]}"
        )


def check_bundle_against_ledger(bundle: Any, ledger: Ledger, round: int | None = None) -> int:
    """Check a proof bundle against the ledger: the chain verifies, the bundle is for the announced
    circuit (manifest and vk hashes), its commitments are the ones the round's outcome was computed
    on and its outcome is the logged one. Returns the round; raises
    :class:`~zkauction.zk.bundle.VerificationError` with ``check == "ledger"`` naming the round.

    The proof itself is checked by :func:`zkauction.zk.bundle.verify_bundle`; call both.
    """
    from zkauction.zk.bundle import ProofBundle, VerificationError

    if not isinstance(bundle, ProofBundle):
        bundle = ProofBundle.load(bundle)
    try:
        ledger.verify_chain()
        st = read_state(ledger)
    except (ChainError, ProtocolError) as e:
        raise VerificationError("ledger", str(e)) from None
    r = round if round is not None else bundle.round_id
    if not isinstance(r, int):
        raise VerificationError("ledger", f"the bundle names no round (round_id {bundle.round_id!r}); pass the round")
    if bundle.round_id is not None and bundle.round_id != r:
        raise VerificationError("ledger", f"the bundle is for round {bundle.round_id}, not round {r}")
    if r not in st.outcomes:
        raise VerificationError("ledger", f"round {r}: no outcome is logged for this round")
    auction = st.announcement.auction
    if bundle.manifest_sha256 != auction.get("manifest_sha256"):
        raise VerificationError("ledger", f"round {r}: the bundle's circuit manifest is not the announced one")
    if bundle.vk_sha256 != auction.get("vk_sha256"):
        raise VerificationError("ledger", f"round {r}: the bundle's verifying key is not the announced one")
    try:
        st.check_outcome_inputs(r)
    except ProtocolError as e:
        raise VerificationError("ledger", str(e)) from None
    logged = st.commitments_of(r)
    for i, (got, want) in enumerate(zip(bundle.commitments, logged)):
        if got.lower() != want.lower():
            raise VerificationError("ledger", f"round {r}: bidder {i}'s commitment in the proof is not the logged one")
    if len(bundle.commitments) != len(logged):
        raise VerificationError("ledger", f"round {r}: the bundle has {len(bundle.commitments)} commitments, the ledger {len(logged)}")
    try:
        _compare_outcomes(r, st.outcome_of(r), bundle.outcome, "the proof shows")
    except ProtocolError as e:
        raise VerificationError("ledger", str(e)) from None
    return r


class Auditor:
    """Replays the chain, closes the reveal phase, selects and checks the audited rounds.

    ``circuit`` (public artefacts suffice) verifies zk proofs; ``outcome`` recomputes outcomes in
    reveal mode.
    """

    def __init__(self, key: SigningKey, ledger: Ledger, *, circuit: Any = None, outcome: OutcomeFunction | None = None,
                 verify_bundle: Callable[..., Any] | None = None):
        self.key = key
        self.ledger = ledger
        self.circuit = circuit
        self.outcome = outcome
        self._verify_bundle = verify_bundle

    def verify_chain(self) -> ChainCheck:
        return self.ledger.verify_chain()

    def close_reveals(self) -> list[int]:
        """End the reveal phase: every bidder that committed a seed and has not revealed is logged
        as missing. Returns those bidders."""
        st = read_state(self.ledger)
        if st.rounds_done < st.announcement.rounds:
            raise AuditError(f"the reveal phase opens after round {st.announcement.rounds}; {st.rounds_done} rounds are logged")
        missing = sorted(set(st.seed_commitments) - set(st.reveals) - st.missing)
        for i in missing:
            self.ledger.append(REVEAL_MISSING, {"bidder": i}, self.key)
        return missing

    def select(self) -> AuditSelection:
        st = read_state(self.ledger)
        sel = audit_selection(self.ledger, st)
        if st.selection is None:
            self.ledger.append(AUDIT_SELECTION, sel.to_dict(), self.key)
        elif st.selection.data["rounds"] != sel.rounds:
            raise AuditError(f"ledger entry {st.selection.seq}: the logged audit selection is not the one the reveals give")
        return sel

    def check_round(self, round: int, state: LedgerState | None = None) -> Verdict:
        """Check one audited round in the announced mode; never raises for a failed check (the
        verdict says why), only for a round that cannot be checked by this auditor."""
        st = state or read_state(self.ledger)
        mode = st.announcement.mode
        if round not in st.outcomes:
            return Verdict(round, mode, False, f"round {round}: no outcome was logged")
        try:
            st.check_outcome_inputs(round)
            if mode == "zk":
                self._check_zk(st, round)
            elif mode == "reveal":
                self._check_reveal(st, round)
            else:
                self._check_ttp(st, round)
        except ProtocolError as e:
            return Verdict(round, mode, False, str(e))
        return Verdict(round, mode, True, f"round {round}: outcome verified ({mode})")

    def _check_zk(self, st: LedgerState, round: int) -> None:
        from zkauction.zk.bundle import BundleError, ProofBundle, VerificationError

        if round not in st.proofs:
            raise ProtocolError(f"round {round}: the auctioneer logged no proof")
        try:
            bundle = ProofBundle.from_dict(st.proofs[round].data)
            check_bundle_against_ledger(bundle, self.ledger, round)
            verify = self._verify_bundle
            if verify is None:
                from zkauction.zk.bundle import verify_bundle as verify
            if self.circuit is None:
                raise ProtocolError(f"round {round}: no circuit given to verify the proof")
            verify(bundle, self.circuit, expected_commitments=st.commitments_of(round), expected_outcome=st.outcome_of(round))
        except VerificationError as e:
            reason = e.reason if e.reason.startswith(f"round {round}") else f"round {round}: {e}"
            raise ProtocolError(reason) from None
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
        if round not in st.verdicts:
            raise ProtocolError(f"round {round}: the trusted third party logged no verdict")
        v = st.verdicts[round].data
        if not v.get("valid"):
            raise ProtocolError(v.get("reason", f"round {round}: the trusted third party rejected the outcome"))

    def audit(self) -> "AuditReport":
        """Check every selected round, log verdicts (zk, reveal) and the audit result with the
        penalty due. Requires the selection (:meth:`select`)."""
        st = read_state(self.ledger)
        if st.selection is None:
            raise AuditError("no audit selection is logged yet (close the reveals and select first)")
        rounds = list(st.selection.data["rounds"])
        verdicts = []
        for r in rounds:
            v = self.check_round(r, st)
            if st.announcement.mode != "ttp" and r not in st.verdicts:
                self.ledger.append(VERDICT, v.to_dict(), self.key, round=r)
            verdicts.append(v)
        failed = [v.round for v in verdicts if not v.valid]
        anomalies = st.auctioneer_anomalies()
        valid = not failed and not anomalies
        penalty = st.announcement.penalty if not valid else 0.0
        if st.result is None:
            self.ledger.append(AUDIT_RESULT, {"rounds": rounds, "failed": failed, "anomalies": anomalies,
                                              "valid": valid, "penalty_due": penalty}, self.key)
        return AuditReport(rounds, verdicts, failed, anomalies, penalty, self.ledger.verify_chain())


@dataclass(frozen=True)
class AuditReport:
    rounds: list[int]
    verdicts: list[Verdict]
    failed: list[int]
    anomalies: list[str]  # protocol breaches signed by the auctioneer (e.g. two outcomes for a round)
    penalty_due: float
    chain: ChainCheck

    @property
    def valid(self) -> bool:
        return not self.failed and not self.anomalies


class TrustedThirdParty:
    """The paper's third verifier: receives openings privately, recomputes, logs a signed verdict."""

    def __init__(self, key: SigningKey, ledger: Ledger, outcome: OutcomeFunction):
        self.key = key
        self.ledger = ledger
        self.outcome = outcome

    def audit_round(self, round: int, bids: Sequence[Sequence[float]], salts: Sequence[str]) -> Verdict:
        st = read_state(self.ledger)
        try:
            st.check_outcome_inputs(round)
            check_round_openings(st, round, bids, salts, self.outcome)
            v = Verdict(round, "ttp", True, f"round {round}: outcome verified (ttp)")
        except ProtocolError as e:
            v = Verdict(round, "ttp", False, str(e))
        if round not in st.verdicts:
            self.ledger.append(VERDICT, v.to_dict(), self.key, round=round)
        return v


