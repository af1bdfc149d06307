"""Proving one round: witness, proof and a self-contained :class:`~zkauction.zk.bundle.ProofBundle`."""

from __future__ import annotations
import json
import tempfile
from pathlib import Path
from typing import Sequence
import zkauction.zk.commitments as commitments
import ezkl

from zkauction.zk.circuit import Circuit, CircuitError, _ezkl, _quiet, _step, ezkl_version
from zkauction.zk.witness import _witness, check_round_input, decode_outputs
from zkauction.zk.bundle import ProofBundle, proof_instances

def prove_round(
    circuit: Circuit,
    bids: Sequence[Sequence[float]],
    salts: Sequence[str],
    *,
    round_id: int | str | None = None,
    progress: bool = False,
) -> "ProofBundle":
    """Prove one round: witness, proof, and a self-contained :class:`~zkauction.zk.bundle.ProofBundle`.

    Inputs are checked first (:class:`RoundInputError`); the proving key is regenerated if missing.
    The bundle's commitments are recomputed from bids and salts and must equal the proof's hashed
    input instances, and its outcome equals :func:`canonical_outcome`.
    """

    b, s = check_round_input(circuit, bids, salts)
    coms = [commitments.commit(row, salt, circuit.input_scale) for row, salt in zip(b, s)]
    circuit.check_artefacts()
    srs = circuit.check_srs()
    pk = circuit.ensure_proving_key(progress)
    with tempfile.TemporaryDirectory(prefix="zkauction-prove-") as tmp:
        wit, w = _witness(circuit, b, s, Path(tmp))
        outcome = decode_outputs(circuit, w["outputs"])
        proof_file = Path(tmp) / "proof.json"
        with _step("prove", progress):
            with _quiet():
                _ezkl(ezkl.prove, str(wit), str(circuit.compiled_path), str(pk), str(proof_file), srs_path=str(srs))
        proof = json.loads(proof_file.read_text())
    inputs, _ = proof_instances(proof, circuit.n)
    if list(inputs) != coms:
        raise CircuitError("the proof's input instances differ from the commitments (ezkl hashing changed?)")
    return ProofBundle(
        proof=proof,
        manifest_sha256=circuit.manifest_sha256(),
        vk_sha256=circuit.vk_sha256(),
        commitments=tuple(coms),
        outcome=outcome,
        ezkl_version=ezkl_version(),
        round_id=round_id,
        circuit_name=str(circuit.manifest.get("name", circuit.dir.name)),
    )
