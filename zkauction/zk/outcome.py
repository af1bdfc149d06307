"""Canonical outcomes at array speed: the exact fixed-point evaluator (:mod:`zkauction.zk.fixedpoint`)
with ezkl's witness (:mod:`zkauction.zk.witness`) as the reference and the fallback. Every round's
outcome a run logs comes from here; ezkl's witness is used to prove, and for the rounds or circuits
the evaluator cannot vouch for (it never returns a possibly wrong outcome)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

import zkauction.zk.commitments as commitments
from zkauction.zk.circuit import Circuit, Outcome, RoundInputError
from zkauction.zk.fixedpoint import FixedPointEvaluator, UnsupportedCircuit, to_outcome
from zkauction.zk.witness import canonical_outcome, check_round_input



def exact_evaluator(circuit: Circuit) -> FixedPointEvaluator | None:
    """The circuit's :class:`~zkauction.zk.fixedpoint.FixedPointEvaluator`, or None when it raises
    :class:`~zkauction.zk.fixedpoint.UnsupportedCircuit` (then only ezkl's witness gives outcomes)."""
    try:
        return FixedPointEvaluator.from_circuit(circuit)
    except UnsupportedCircuit:
        return None


def _exact_or_witness(
    circuit: Circuit, ev: FixedPointEvaluator, rows: Sequence[Sequence[Sequence[float]]], salts: Sequence[Sequence[str]]
) -> list[Outcome]:
    """Checked rounds through the evaluator; the rounds it flags through ezkl's witness."""
    res = ev.evaluate(np.array(rows, dtype=np.float64).reshape(len(rows), circuit.n, circuit.m))
    return [
        to_outcome(res.allocation[r], res.payment[r]) if res.valid[r] else canonical_outcome(circuit, rows[r], salts[r])
        for r in range(len(rows))
    ]


def canonical_outcomes(
    circuit: Circuit, bids_batch: Sequence[Sequence[Sequence[float]]], *, evaluator: FixedPointEvaluator | None = None
) -> list[Outcome]:
    """:func:`canonical_outcome` of R rounds (``bids_batch`` [R][n][m]), in one batched evaluation.

    Each round is checked as :func:`check_round_input` checks it (a bad round raises
    :class:`RoundInputError` naming it). The outcomes come from the exact fixed-point evaluator
    (``evaluator``, built from the circuit if None) and equal ezkl's witness bit for bit; rounds it
    flags, or every round of a circuit it does not support, go through ezkl's witness. Salts never
    reach the arithmetic, so none are needed.
    """
    zero = [commitments.int_to_felt(0)] * circuit.n
    rows = []
    for r, bids in enumerate(bids_batch):
        try:
            rows.append(check_round_input(circuit, bids, zero)[0])
        except RoundInputError as e:
            raise RoundInputError(f"round {r}: {e}") from None
    ev = evaluator if evaluator is not None else exact_evaluator(circuit)
    if ev is None or not rows:
        return [canonical_outcome(circuit, b, zero) for b in rows]
    return _exact_or_witness(circuit, ev, rows, [zero] * len(rows))


def fast_outcome_function(circuit: Circuit) -> Callable[[Sequence[Sequence[float]], Sequence[str]], Outcome]:
    """A callable ``(bids [n][m], salts [n]) -> Outcome`` that behaves as :func:`canonical_outcome`
    (same checks, same errors, the same outcome bit for bit) but computes with the exact fixed-point
    evaluator, microseconds instead of an ezkl witness per round. Falls back to ezkl's witness for a
    circuit the evaluator does not support, and for a round it cannot vouch for."""
    ev = exact_evaluator(circuit)
    if ev is None:
        return lambda bids, salts: canonical_outcome(circuit, bids, salts)

    def outcome(bids: Sequence[Sequence[float]], salts: Sequence[str]) -> Outcome:
        b, s = check_round_input(circuit, bids, salts)
        return _exact_or_witness(circuit, ev, [b], [s])[0]

    def many(rounds: Sequence[tuple[Sequence[Sequence[float]], Sequence[str]]]) -> list[Outcome]:
        """The outcome of each (bids, salts), in one batched evaluation (a block of rounds)."""
        checked = [check_round_input(circuit, b, s) for b, s in rounds]
        return _exact_or_witness(circuit, ev, [b for b, _ in checked], [s for _, s in checked]) if checked else []

    outcome.many = many  # type: ignore[attr-defined]
    return outcome
