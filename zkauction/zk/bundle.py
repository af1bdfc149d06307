"""Proof bundles: one audited round's proof, self-contained, and its verification.

A :class:`ProofBundle` is a JSON file holding the ezkl proof, the sha256 of the circuit's
``manifest.json`` and ``vk.key``, the round's commitments (one per bidder, in bidder order), the
decoded outcome, the ezkl version and the round id. A bidder verifies it with only the bundle, the
circuit's public artefacts (``manifest.json``, ``settings.json``, ``vk.key``) and the SRS:

:func:`verify_bundle` runs these checks, in order, and stops at the first that fails, raising
:class:`VerificationError` whose ``.check`` names it:

1. ``manifest``: the bundle names this circuit's manifest (sha256) and ezkl version;
2. ``vk``: the verifying key and settings on disk match the manifest, and the bundle names that vk;
3. ``proof``: ``ezkl.verify`` accepts the proof with that vk, settings and SRS;
4. ``commitments``: public instance i of the proof equals the bundle's commitment i (and, if given,
   the commitments the caller expects, e.g. from the ledger);
5. ``outcome``: the proof's public outputs, decoded at the manifest's output scales, equal the
   bundle's outcome exactly (and, if given, the outcome the caller expects, e.g. the published one).

Public API: :class:`ProofBundle` (``save``, ``load``, ``to_dict``, ``from_dict``), :func:`verify_bundle`,
:class:`VerifiedOutcome`, :class:`VerificationError`, :class:`BundleError`, :data:`CHECKS`,
:func:`proof_instances`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import ezkl

from zkauction.errors import ZkAuctionError
from zkauction.jsontext import parse_json
from zkauction.zk.circuit import (
    MANIFEST_FILE,
    SETTINGS_FILE,
    VK_FILE,
    Circuit,
    CircuitError,
    Outcome,
    _quiet,
    ezkl_version,
    sha256_file,
)
from zkauction.zk.srs import SrsLabel, label_srs
from zkauction.zk.witness import decode_outputs

BUNDLE_FORMAT = "zkauction-proof/1"
CHECKS = ("manifest", "vk", "proof", "commitments", "outcome", "log", "ledger")  # log, ledger: zkauction.protocol.bundle_log


class BundleError(ZkAuctionError, ValueError):
    """A proof bundle file that cannot be read (not JSON, missing fields)."""


class VerificationError(ZkAuctionError):
    """A failed verification check; ``.check`` is one of :data:`CHECKS`, ``.reason`` one line."""

    exit_code = 1

    def __init__(self, check: str, reason: str):
        super().__init__(f"{check} check failed: {reason}")
        self.check = check
        self.reason = reason


@dataclass(frozen=True)
class ProofBundle:
    """One round's proof and everything needed to check it against a circuit's public artefacts."""

    proof: dict[str, Any]
    manifest_sha256: str
    vk_sha256: str
    commitments: tuple[str, ...]
    outcome: Outcome
    ezkl_version: str
    round_id: int | str | None = None
    circuit_name: str = ""
    # The log proof (announcement and outcome entries, their inclusion proofs, the signed checkpoint
    # covering them): binds round, commitments and circuit to the log. Opaque here; checked by
    # zkauction.protocol.bundle_log.
    log: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "round_id": self.round_id,
            "circuit_name": self.circuit_name,
            "ezkl_version": self.ezkl_version,
            "manifest_sha256": self.manifest_sha256,
            "vk_sha256": self.vk_sha256,
            "commitments": list(self.commitments),
            "outcome": self.outcome.to_dict(),
            "proof": self.proof,
            **({"log": self.log} if self.log is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: Any) -> "ProofBundle":
        if not isinstance(d, dict):
            raise BundleError("a proof bundle must be a JSON object")
        if d.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"format {d.get('format')!r}, expected {BUNDLE_FORMAT!r}")
        missing = [k for k in ("proof", "manifest_sha256", "vk_sha256", "commitments", "outcome", "ezkl_version") if k not in d]
        if missing:
            raise BundleError(f"missing field(s): {', '.join(missing)}")
        if not isinstance(d["proof"], dict) or not isinstance(d["commitments"], list):
            raise BundleError("'proof' must be an object and 'commitments' a list")
        try:
            outcome = Outcome.from_dict(d["outcome"])
        except ValueError as e:
            raise BundleError(str(e)) from None
        rid = d.get("round_id")
        if isinstance(rid, bool) or not (rid is None or isinstance(rid, (int, str))):  # (true is not round 1)
            raise BundleError(f"'round_id' must be a round number or a label, got {rid!r}")
        return cls(
            proof=d["proof"],
            manifest_sha256=str(d["manifest_sha256"]),
            vk_sha256=str(d["vk_sha256"]),
            commitments=tuple(str(c) for c in d["commitments"]),
            outcome=outcome,
            ezkl_version=str(d["ezkl_version"]),
            round_id=d.get("round_id"),
            circuit_name=str(d.get("circuit_name", "")),
            log=d["log"] if isinstance(d.get("log"), dict) else None,
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ProofBundle":
        path = Path(path)
        if not path.is_file():
            raise BundleError(f"proof bundle not found: {path}")
        try:
            d = parse_json(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BundleError(f"{path}: not valid JSON: {e}") from None
        try:
            return cls.from_dict(d)
        except BundleError as e:
            raise BundleError(f"{path}: {e}") from None


@dataclass(frozen=True)
class VerifiedOutcome:
    """A fully verified round: returned only when every check passed."""

    outcome: Outcome
    commitments: tuple[str, ...]
    round_id: int | str | None
    manifest_sha256: str
    circuit_name: str
    srs: SrsLabel

    @property
    def srs_insecure(self) -> bool:
        """The verifier's label, not the manifest's: untrusted unless pinned or a known ceremony."""
        return not self.srs.trusted


def proof_instances(proof: dict[str, Any], n: int) -> tuple[list[str], list[str]]:
    """Split an ezkl proof's public instances into (n hashed inputs, the outputs' felts)."""
    try:
        flat = [x for col in proof["instances"] for x in col]
    except (KeyError, TypeError):
        raise BundleError("the ezkl proof has no 'instances' list") from None
    return [str(x) for x in flat[:n]], [str(x) for x in flat[n:]]


def load_public_circuit(circuit: Circuit | str | Path, srs_path: str | Path | None) -> Circuit:
    """A verifier's circuit (a folder with manifest.json, settings.json and vk.key suffices); a folder
    that is not one is a failed ``manifest`` check."""
    if isinstance(circuit, Circuit):
        if srs_path is not None:
            return Circuit(circuit.dir, circuit.manifest, Path(srs_path))
        return circuit
    try:
        return Circuit.load(circuit, srs_path=srs_path, check_hashes=False)
    except CircuitError as e:
        raise VerificationError("manifest", str(e)) from None


def verify_bundle(
    bundle: ProofBundle | str | Path,
    circuit: Circuit | str | Path,
    *,
    srs_path: str | Path | None = None,
    expected_commitments: Sequence[str] | None = None,
    expected_outcome: Outcome | None = None,
    expected_manifest_sha256: str | None = None,
    trusted_srs: Iterable[str] = (),
) -> VerifiedOutcome:
    """Check ``bundle`` against ``circuit`` (a Circuit, or a folder with manifest.json, settings.json
    and vk.key); ``srs_path`` overrides the SRS path recorded in the manifest.
    ``expected_manifest_sha256`` is the announced circuit (from the log): the folder given must be
    it, so its output scales are the announced ones, not whatever came with the bundle.
    ``trusted_srs`` are SHA-256 pins; the result's ``srs`` label is computed here from the file.

    Returns a :class:`VerifiedOutcome` only if all checks pass; otherwise raises
    :class:`VerificationError` naming the first failed check (see the module docstring).
    """
    if not isinstance(bundle, ProofBundle):
        try:
            bundle = ProofBundle.load(bundle)
        except BundleError as e:
            raise VerificationError("manifest", f"unreadable proof bundle: {e}") from None
    c = load_public_circuit(circuit, srs_path)

    # 1. manifest
    if expected_manifest_sha256 is not None and c.manifest_sha256() != expected_manifest_sha256:
        raise VerificationError("manifest", f"the circuit folder {c.dir} has manifest {c.manifest_sha256()[:16]}..., "
                                f"not the announced {expected_manifest_sha256[:16]}...")
    if bundle.manifest_sha256 != c.manifest_sha256():
        raise VerificationError(
            "manifest", f"the bundle is for manifest {bundle.manifest_sha256[:16]}..., this circuit's is "
            f"{c.manifest_sha256()[:16]}... (another circuit?)"
        )
    if bundle.ezkl_version != c.manifest.get("ezkl_version") or bundle.ezkl_version != ezkl_version():
        raise VerificationError(
            "manifest", f"ezkl version: bundle {bundle.ezkl_version}, manifest {c.manifest.get('ezkl_version')}, "
            f"installed {ezkl_version()}"
        )
    # 2. vk (and the settings ezkl.verify reads)
    for name in (VK_FILE, SETTINGS_FILE):
        f = c.dir / name
        if not f.is_file():
            raise VerificationError("vk", f"{f} not found")
        if sha256_file(f) != c.manifest["artefacts"][name]:
            raise VerificationError("vk", f"{f}: sha256 does not match {c.dir / MANIFEST_FILE}")
    if bundle.vk_sha256 != c.vk_sha256():
        raise VerificationError("vk", f"the bundle names vk {bundle.vk_sha256[:16]}..., the manifest {c.vk_sha256()[:16]}...")
    # 3. proof
    try:
        srs = c.check_srs()
    except CircuitError as e:
        raise VerificationError("proof", str(e)) from None
    with tempfile.TemporaryDirectory(prefix="zkauction-verify-") as tmp:
        pf = Path(tmp) / "proof.json"
        pf.write_text(json.dumps(bundle.proof))
        try:
            with _quiet():
                ok = ezkl.verify(str(pf), str(c.settings_path), str(c.vk_path), srs_path=str(srs))
        except BaseException as e:  # ezkl raises RuntimeError on an invalid proof; panics on garbage
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise VerificationError("proof", f"ezkl rejected the proof: {msg}") from None
        if ok is not True:
            raise VerificationError("proof", "ezkl rejected the proof")
    # 4. commitments
    try:
        inputs, outputs = proof_instances(bundle.proof, c.n)
    except BundleError as e:
        raise VerificationError("commitments", str(e)) from None
    if len(bundle.commitments) != c.n:
        raise VerificationError("commitments", f"the bundle lists {len(bundle.commitments)} commitments, the circuit has {c.n} bidders")
    for i, (inst, com) in enumerate(zip(inputs, bundle.commitments)):
        if inst != com.lower():
            raise VerificationError("commitments", f"bidder {i}: the proof's input instance {inst[:16]}... is not the listed commitment {com[:16]}...")
    if expected_commitments is not None:
        if len(expected_commitments) != c.n:
            raise VerificationError("commitments", f"expected {c.n} commitments, was given {len(expected_commitments)}")
        for i, (got, want) in enumerate(zip(bundle.commitments, expected_commitments)):
            if got.lower() != str(want).lower():
                raise VerificationError("commitments", f"bidder {i}: the bundle's commitment {got[:16]}... is not the expected {str(want)[:16]}...")
    # 5. outcome
    n, m = c.n, c.m
    try:
        decoded = decode_outputs(c, [outputs[: n * m], outputs[n * m :]])
    except CircuitError as e:
        raise VerificationError("outcome", str(e)) from None
    if decoded != bundle.outcome:
        raise VerificationError("outcome", f"the proof's public outputs {_short(decoded)} differ from the listed outcome {_short(bundle.outcome)}")
    if expected_outcome is not None and expected_outcome != decoded:
        raise VerificationError("outcome", f"the proven outcome {_short(decoded)} differs from the expected {_short(expected_outcome)}")
    return VerifiedOutcome(
        outcome=decoded,
        commitments=tuple(bundle.commitments),
        round_id=bundle.round_id,
        manifest_sha256=bundle.manifest_sha256,
        circuit_name=bundle.circuit_name,
        srs=label_srs(srs, trusted_srs),
    )


def _short(o: Outcome) -> str:
    return "allocation=" + json.dumps([list(r) for r in o.allocation]) + " payment=" + json.dumps(list(o.payment))
