"""A round through the circuit: input checks, the hashed-input instances (the commitments) and the
canonical fixed-point outcome from ezkl's witness."""

from __future__ import annotations
import json
import math
import tempfile
from pathlib import Path
from typing import Any, Sequence
import zkauction.zk.commitments as commitments
from zkauction.zk.commitments import CommitmentError, check_salt, snap_bid
import ezkl

from zkauction.zk.circuit import Circuit, CircuitError, Outcome, RoundInputError, _ezkl, _quiet


def _input_json(bids: Sequence[Sequence[float]], salts: Sequence[str], scale: int) -> dict[str, Any]:
    """ezkl input data: per bidder, the bids as felts at the input scale and the salt as a felt.

    Felts go in unchanged (no 32-bit float parsing), so the hashed input is exactly the commitment.
    """
    return {
        "input_data": [commitments.bid_felts(row, scale) + [salt] for row, salt in zip(bids, salts)]
    }

# --- rounds: input checks, canonical outcome, prove ------------------------------------------------


def check_round_input(
    circuit: Circuit, bids: Sequence[Sequence[float]], salts: Sequence[str]
) -> tuple[tuple[tuple[float, ...], ...], tuple[str, ...]]:
    """Validate one round's bids [n][m] and salts [n] for ``circuit``; return them snapped/normalised.

    Raises :class:`RoundInputError` naming the problem (wrong number of bidders or items, NaN, a bid
    outside the bidder's support, a salt outside the field) before any ezkl work. A bidder whose bids
    are all zero is absent (the paper's mapping d). Bids are snapped to the input scale's grid.
    """
    n, m, S = circuit.n, circuit.m, circuit.input_scale
    try:
        rows = [list(r) for r in bids]
    except TypeError:
        raise RoundInputError(f"bids must be a list of {n} rows of {m} numbers") from None
    if len(rows) != n:
        raise RoundInputError(f"expected bids of {n} bidders, got {len(rows)}")
    if len(salts) != n:
        raise RoundInputError(f"expected {n} salts (one per bidder), got {len(salts)}")
    support = circuit.support
    snapped: list[tuple[float, ...]] = []
    for i, row in enumerate(rows):
        if len(row) != m:
            raise RoundInputError(f"bidder {i}: expected {m} bids (one per item), got {len(row)}")
        vals = []
        for j, b in enumerate(row):
            try:
                x = float(b)
            except (TypeError, ValueError):
                raise RoundInputError(f"bid of bidder {i} for item {j} is not a number: {b!r}") from None
            if not math.isfinite(x):
                raise RoundInputError(f"bid of bidder {i} for item {j} is not finite: {x}")
            vals.append(x)
        absent = all(x == 0 for x in vals)
        if not absent:
            for j, x in enumerate(vals):
                lo, hi = support[i][j]
                if not lo - 1e-9 <= x <= hi + 1e-9:
                    raise RoundInputError(
                        f"bid of bidder {i} for item {j} is {x:g}, outside its support [{lo:g}, {hi:g}]"
                    )
        try:
            snapped.append(tuple(snap_bid(x, S) for x in vals))
        except CommitmentError as e:
            raise RoundInputError(f"bidder {i}: {e}") from None
    clean_salts = []
    for i, s in enumerate(salts):
        try:
            clean_salts.append(check_salt(s))
        except CommitmentError as e:
            raise RoundInputError(f"bidder {i}: {e}") from None
    return tuple(snapped), tuple(clean_salts)


def round_commitments(circuit: Circuit, bids: Sequence[Sequence[float]], salts: Sequence[str]) -> list[str]:
    """The n commitments of a round (what each bidder publishes), after :func:`check_round_input`."""
    b, s = check_round_input(circuit, bids, salts)
    return [commitments.commit(row, salt, circuit.input_scale) for row, salt in zip(b, s)]


def _witness(circuit: Circuit, bids: Sequence[Sequence[float]], salts: Sequence[str], workdir: Path) -> tuple[Path, dict[str, Any]]:
    data = workdir / "input.json"
    data.write_text(json.dumps(_input_json(bids, salts, circuit.input_scale)))
    wit = workdir / "witness.json"
    with _quiet():
        w = _ezkl(ezkl.gen_witness, str(data), str(circuit.compiled_path), str(wit))
    # gen_witness computes past the lookup tables; the proof would then fail. Say so before proving.
    lo, hi = circuit.manifest["run_args"]["lookup_range"]
    if not (lo <= int(w["min_lookup_inputs"]) and int(w["max_lookup_inputs"]) <= hi):
        raise RoundInputError(
            f"these bids drive the circuit outside its calibrated lookup range [{lo}, {hi}] "
            f"(got [{w['min_lookup_inputs']}, {w['max_lookup_inputs']}]); recompile with a larger lookup safety margin"
        )
    return wit, w


def decode_outputs(circuit: Circuit, outputs: Sequence[Sequence[str]]) -> Outcome:
    """Decode the circuit's output felts (allocation n*m, payment n) at the manifest's output scales."""
    n, m = circuit.n, circuit.m
    sa, sp = circuit.output_scales["allocation"], circuit.output_scales["payment"]
    alloc, pay = list(outputs[0]), list(outputs[1])
    if len(alloc) != n * m or len(pay) != n:
        raise CircuitError(f"circuit outputs have {len(alloc)} + {len(pay)} values, expected {n * m} + {n}")
    a = tuple(tuple(float(ezkl.felt_to_float(alloc[i * m + j], sa)) for j in range(m)) for i in range(n))
    p = tuple(float(ezkl.felt_to_float(x, sp)) for x in pay)
    return Outcome(a, p)


def canonical_outcome(circuit: Circuit, bids: Sequence[Sequence[float]], salts: Sequence[str]) -> Outcome:
    """The circuit's fixed-point outcome on the (snapped) bids: ezkl.gen_witness outputs, decoded.

    This is what the auctioneer publishes; a proof of the round has exactly these public outputs
    (docs/design.md: exact equality, never a tolerance). The salts do not change the outcome.
    """
    return evaluate_round(circuit, bids, salts)[1]


# The fidelity check's bound for nets whose circuits approximate (softmax and sigmoid lookups at
# the input scale): allocation shares and payments within 1/64 of the PyTorch net's.
FIDELITY_TOLERANCE = 2.0**-6


def evaluate_round(
    circuit: Circuit, bids: Sequence[Sequence[float]], salts: Sequence[str]
) -> tuple[list[str], Outcome]:
    """One witness generation: (the circuit's hashed-input instances, i.e. the commitments, outcome)."""
    b, s = check_round_input(circuit, bids, salts)
    with tempfile.TemporaryDirectory(prefix="zkauction-witness-") as tmp:
        _, w = _witness(circuit, b, s, Path(tmp))
    return [str(x) for x in w["processed_inputs"]["poseidon_hash"]], decode_outputs(circuit, w["outputs"])


def measure_fidelity(circuit: Circuit, net: Any, bids: Any, exact_allocation: bool = False) -> dict[str, Any]:
    """The fidelity check: |circuit - PyTorch net| over profiles ``bids`` [K, n, m] (snapped to the
    input grid) through ezkl's witness, allocation and payment apart, and whether it passed
    (zkauction.zk.compile adds a sweep through the exact fixed-point evaluator).

    ``exact_allocation`` (affine maximizers, whose circuits compute the scores exactly): every
    allocation must be equal and every payment within 2^-input_scale. Otherwise (nets with softmax
    lookups) both must be within :data:`FIDELITY_TOLERANCE`."""
    import torch

    salts = [commitments.int_to_felt(0)] * circuit.n
    alloc_errs, pay_errs = [], []
    for frame in bids:
        rows = [[snap_bid(float(x), circuit.input_scale) for x in r] for r in frame.tolist()]
        out = canonical_outcome(circuit, rows, salts)
        with torch.no_grad():
            a, p = net(torch.tensor([rows], dtype=torch.float32))
        alloc_errs.append((torch.tensor(out.allocation) - a[0]).abs().max().item())
        pay_errs.append((torch.tensor(out.payment) - p[0]).abs().max().item())
    errs = [max(x, y) for x, y in zip(alloc_errs, pay_errs)]
    tol_alloc = 0.0 if exact_allocation else FIDELITY_TOLERANCE
    tol_pay = 2.0**-circuit.input_scale if exact_allocation else FIDELITY_TOLERANCE
    return {
        "max_abs_error": max(errs), "mean_abs_error": sum(errs) / len(errs), "samples": len(errs),
        "tolerance": {"allocation": tol_alloc, "payment": tol_pay},
        **fidelity_verdict(alloc_errs, pay_errs, tol_alloc, tol_pay),
    }


def fidelity_verdict(alloc_errs: Sequence[float], pay_errs: Sequence[float], allocation: float, payment: float) -> dict[str, Any]:
    """The fidelity check's verdict from per-profile max |circuit - net| of allocation and payment
    against the tolerances ``allocation`` and ``payment`` (used on the witnesses and the sweep)."""
    worst_alloc, worst_pay = float(max(alloc_errs, default=0.0)), float(max(pay_errs, default=0.0))
    return {
        "allocation_max_abs_error": worst_alloc, "payment_max_abs_error": worst_pay,
        "allocation_mismatches": sum(e > allocation for e in alloc_errs),
        "passed": worst_alloc <= allocation and worst_pay <= payment,
    }
