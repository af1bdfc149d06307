"""Proving outcomes in zero knowledge (the paper's section 4): ONNX export, Poseidon commitments
to sealed bids, ezkl circuits (compile, canonical fixed-point outcome, witness, prove) and proof
bundles with their verification. The verification path (:mod:`zkauction.zk.bundle`,
:mod:`zkauction.zk.circuit`, :mod:`zkauction.zk.commitments`) never imports torch."""

import os
from pathlib import Path

# ezkl writes a cache under ~/.ezkl unless told otherwise; keep it in the project (docs/design.md). Set
# here, before any module of this package imports ezkl.
os.environ.setdefault("EZKL_REPO_PATH", str(Path(__file__).resolve().parents[2] / ".ezkl"))
