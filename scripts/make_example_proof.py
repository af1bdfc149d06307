"""Writes circuits/ama_2x2_uniform/example_proof.json: one round of the shipped 2x2 affine maximizer
proven on fixed bids, so that `zkauction verify` can be tried (and tested) without running an auction.

    .venv/bin/python scripts/make_example_proof.py
"""

from pathlib import Path

from zkauction.zk.circuit import Circuit
from zkauction.zk.commitments import new_salt
from zkauction.zk.prove import prove_round

CIRCUIT = Path(__file__).resolve().parents[1] / "circuits" / "ama_2x2_uniform"

if __name__ == "__main__":
    circuit = Circuit.load(CIRCUIT)
    bundle = prove_round(circuit, [[0.75, 0.25], [0.5, 0.875]], [new_salt(), new_salt()], round_id=1)
    bundle.save(CIRCUIT / "example_proof.json")
    print(f"wrote {CIRCUIT / 'example_proof.json'}: outcome {bundle.outcome.to_dict()}")
