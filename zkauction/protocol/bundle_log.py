"""Binding a proof bundle to the log: the bundle carries its round's outcome entry and the
announcement (entry 0), each with an inclusion proof under a checkpoint signed by the announced
auctioneer. Whoever holds only the bundle and the announced circuit's public artefacts then checks
that the proof is for *that* round of *that* log, with the commitments the bidders logged and the
circuit the bidders registered for (so the output scales come from the announced manifest, not
from whatever was handed over with the bundle).

Checking a bundle against a log database costs the same at any length: one index lookup for the
round's entries, one inclusion proof and one comparison of roots, never a replay of the log
(``zkauction log verify`` is the full replay).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zkauction.protocol import merkle
from zkauction.protocol.announcement import misstated_terms
from zkauction.protocol.checkpoint import (
    CheckpointError, SignedCheckpoint, attested_size, check_log_extends, stored_checkpoint,
)
from zkauction.protocol.log import ChainError, CheckpointSignatureError, Entry, Ledger, LedgerError, check_entry, leaf_hash_of
from zkauction.protocol.state import ANNOUNCEMENT, OUTCOME, Announcement, ProtocolError, read_announcement, round_state
from zkauction.zk.bundle import ProofBundle, VerificationError
from zkauction.zk.circuit import Outcome


def make_log_proof(ledger: Ledger, round: int, cp: SignedCheckpoint) -> dict[str, Any]:
    """The log proof of ``round``'s outcome under checkpoint ``cp`` (which must cover it)."""
    ann, first = read_announcement(ledger)
    out = next((e for e in ledger.entries(kind=OUTCOME, round=round) if e.signer == ann.auctioneer), None)
    if out is None:
        raise ProtocolError(f"round {round} has no logged outcome")
    if cp is None or cp.size <= out.seq:
        raise ProtocolError(f"round {round}: no checkpoint covers its outcome yet")
    return {
        "checkpoint": cp.to_dict(),
        "announcement": first.to_dict(),
        "outcome": out.to_dict(),
        "inclusion": {"announcement": ledger.inclusion_proof(0, cp.size), "outcome": ledger.inclusion_proof(out.seq, cp.size)},
    }


@dataclass(frozen=True)
class LogBinding:
    """What a bundle's log proof established."""

    round: int
    log_id: str
    checkpoint: SignedCheckpoint
    announcement: Announcement
    outcome_seq: int


def _included(e: Entry, proof: Any, cp: SignedCheckpoint, what: str) -> None:
    try:
        merkle.verify_inclusion(leaf_hash_of(e), e.seq, cp.size, [bytes.fromhex(h) for h in proof], bytes.fromhex(cp.root))
    except (merkle.MerkleError, ValueError, TypeError) as err:
        raise VerificationError("log", f"the {what} entry is not in the log of the checkpoint: {err}") from None


def check_log_proof(bundle: ProofBundle) -> LogBinding:
    """Check the bundle's log proof (steps in order; the first failure raises
    :class:`~zkauction.zk.bundle.VerificationError` with ``check == "log"``)."""
    lp = bundle.log
    if not isinstance(lp, dict):
        raise VerificationError("log", "the bundle carries no log proof")
    try:
        first, out = Entry.from_dict(lp["announcement"]), Entry.from_dict(lp["outcome"])
        cp = SignedCheckpoint.from_dict(lp["checkpoint"])
        inc = lp["inclusion"]
        # 1. entry 0 is an announcement; both entries are well-formed, hashed and signed by their signers
        if first.seq != 0 or first.kind != ANNOUNCEMENT:
            raise VerificationError("log", "the bundle's announcement is not entry 0 of a log")
        check_entry(first, log_id="")
        check_entry(out, log_id=first.hash)
        # 2. signed by the auctioneer it names
        ann = Announcement.from_dict(first.data)
        if first.signer != ann.auctioneer:
            raise VerificationError("log", "the announcement is not signed by the auctioneer it names")
        # 3. the checkpoint is that auctioneer's, for that log
        cp.verify(ann.auctioneer)
        if cp.log_id != first.hash:
            raise VerificationError("log", "the checkpoint is for another log than the announcement's")
        # 4. both entries are in the checkpointed tree
        _included(first, inc["announcement"], cp, "announcement")
        _included(out, inc["outcome"], cp, "outcome")
    except (KeyError, TypeError) as e:
        raise VerificationError("log", f"malformed log proof (missing {e})") from None
    except (ChainError, LedgerError, ProtocolError, CheckpointError) as e:
        raise VerificationError("log", str(e)) from None
    # 5. the outcome entry is the auctioneer's outcome of the bundle's round, with its commitments
    r = out.round
    if out.kind != OUTCOME or out.signer != ann.auctioneer:
        raise VerificationError("log", "the bundle's outcome entry is not an outcome signed by the auctioneer")
    if bundle.round_id != r:
        raise VerificationError("log", f"the bundle says round {bundle.round_id!r}, its logged outcome is round {r}")
    d = out.fields
    listed = d.get("commitments", [])
    if not d or not isinstance(listed, list):
        raise VerificationError("log", f"round {r}: the logged outcome is malformed (not an object with a list of commitments)")
    if [str(c).lower() for c in listed] != [c.lower() for c in bundle.commitments]:
        raise VerificationError("log", f"round {r}: the proof's commitments are not the ones the log's outcome names")
    try:
        logged = Outcome.from_dict(d)
    except ValueError as e:
        raise VerificationError("log", f"round {r}: the logged outcome is malformed: {e}") from None
    if logged != bundle.outcome:
        raise VerificationError("log", f"round {r}: the proven outcome is not the published one")
    # 6. the proof is for the announced circuit
    if bundle.manifest_sha256 != ann.auction.get("manifest_sha256") or bundle.vk_sha256 != ann.auction.get("vk_sha256"):
        raise VerificationError("log", f"round {r}: the proof's circuit (manifest, vk) is not the announced one")
    return LogBinding(r, first.hash, cp, ann, out.seq)


def check_announced_terms(ann: Announcement, circuit: Any, check: str) -> None:
    """Raise :class:`~zkauction.zk.bundle.VerificationError` (``check``) if the announcement misstates
    a term of the circuit the verifier holds (:func:`~zkauction.protocol.announcement.misstated_terms`):
    its proofs would bind the bidders' commitments to other bids than the ones committed."""
    problems = misstated_terms(ann, circuit)
    if problems:
        raise VerificationError(check, f"{problems[0]}: the auctioneer announced the circuit with other terms")


class KeptNotEvidence(CheckpointSignatureError):
    """The caller's kept checkpoint is of this log but not signed by its auctioneer: no evidence, a usage
    error (exit 2), not a failed check of the bundle."""

    exit_code = 2


def check_bundle_against_ledger(bundle: Any, ledger: Ledger, round: int | None = None,
                                kept: SignedCheckpoint | None = None, circuit: Any = None) -> int:
    """Check a proof bundle against a log: the bundle's log proof (or, without one, the log's
    own outcome entry and newest checkpoint), that this log extends the bundle's checkpoint (and
    ``kept``, a checkpoint the caller accepted before), the round's public checks and, given the
    verifier's ``circuit``, that the announcement states its terms. Returns the
    round; raises :class:`~zkauction.zk.bundle.VerificationError` with ``check`` "log" or
    "ledger". The proof itself is :func:`zkauction.zk.bundle.verify_bundle`'s job: call both."""
    from zkauction.protocol.audit import check_round

    if not isinstance(bundle, ProofBundle):
        bundle = ProofBundle.load(bundle)
    if round is not None and bundle.round_id != round:
        raise VerificationError("ledger", f"the bundle is for round {bundle.round_id}, not round {round}")
    try:
        ann, first = read_announcement(ledger)
        if kept is not None and kept.log_id == ledger.log_id:  # (another log's: named below, "not the log")
            try:
                kept.verify(ann.auctioneer)
            except CheckpointError as e:  # anyone's word: no verdict on this log either way (the twenty-first review)
                raise KeptNotEvidence(f"the checkpoint kept is no evidence about this log: {e}") from None
        if circuit is not None:
            check_announced_terms(ann, circuit, "ledger")
        if bundle.log is not None:
            binding = check_log_proof(bundle)
            cp = binding.checkpoint
        else:
            cp = ledger.latest_checkpoint()
            if cp is None:
                raise VerificationError("ledger", "the log has no signed checkpoint")
            cp.verify(ann.auctioneer)
        for c in (cp, kept) if kept is not None else (cp,):
            check_log_extends(ledger, c)
        r = bundle.round_id
        if not isinstance(r, int):
            raise VerificationError("ledger", f"the bundle names no round (round_id {r!r})")
        # every entry of the round hash- and signature-checked, of those a checkpoint of the auctioneer's pins (the
        # rest anyone holding the file can add or re-place: statements are signed without their place)
        held = [c for c in (cp, kept, stored_checkpoint(ledger, ann.auctioneer)) if c is not None]
        st = round_state(ledger, r, stop=attested_size(ledger, held, ann.auctioneer))
    except KeptNotEvidence:
        raise
    except (LedgerError, ProtocolError) as e:
        raise VerificationError("ledger", str(e)) from None
    if r not in st.outcomes:  # (one logged after what the checkpoints pin is not covered)
        logged = any(e.signer == ann.auctioneer for e in ledger.entries(kind=OUTCOME, round=r))
        raise VerificationError("ledger", f"round {r}: the outcome is not covered by the checkpoint" if logged else
                                f"round {r}: no outcome is logged for this round")
    out = st.outcomes[r]
    if out.seq >= cp.size:
        raise VerificationError("ledger", f"round {r}: the outcome is not covered by the checkpoint")
    if bundle.manifest_sha256 != ann.auction.get("manifest_sha256"):
        raise VerificationError("ledger", f"round {r}: the bundle's circuit manifest is not the announced one")
    if bundle.vk_sha256 != ann.auction.get("vk_sha256"):
        raise VerificationError("ledger", f"round {r}: the bundle's verifying key is not the announced one")
    problems = st.breaches + check_round(st, r)
    if problems:
        raise VerificationError("ledger", str(problems[0]))
    if [c.lower() for c in st.commitments_of(r)] != [c.lower() for c in bundle.commitments]:
        raise VerificationError("ledger", f"round {r}: the bundle's commitments are not the ones the outcome names")
    if st.outcome_of(r) != bundle.outcome:
        raise VerificationError("ledger", f"round {r}: the proven outcome is not the published one")
    return r
