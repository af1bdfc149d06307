"""The exact fixed-point evaluator: a circuit's canonical outcome in numpy integer arithmetic, bit
for bit what ezkl 23.0.5's witness generator outputs, batched over rounds (docs/design.md, "ONNX
and circuit contract": the canonical outcome is the circuit's fixed-point output, decoded at the
output scales).

:meth:`FixedPointEvaluator.from_circuit` reads ``model.onnx`` (with the ``onnx`` package) and
``settings.json`` (input, param and rebase scales, lookup range, decomposition base and legs) and
lowers the graph with ezkl's rules (:mod:`zkauction.zk.fixedpoint_ops`). Whatever it cannot
reproduce exactly (an ONNX op outside :data:`SUPPORTED_OPS`, a pattern that tract or ezkl would
treat differently) raises :class:`UnsupportedCircuit` naming the op: it never returns an outcome
that might differ from the witness. Two guards back the lowering up before an evaluator is handed
out: ``ezkl.table`` must list the same value-changing nodes, scales and rebase divisors, and a few
probe rounds must equal ezkl's witness.

Rounds that would take ezkl outside its decomposition or lookup ranges are flagged
(:attr:`FixedPointResult.valid`) rather than computed: ezkl decides those (it rejects them), which is
what :func:`zkauction.zk.outcome.fast_outcome_function` and ``canonical_outcomes`` do.

Public API: :class:`FixedPointEvaluator` (``from_circuit``, ``evaluate``, ``outcomes``),
:class:`FixedPointResult`, :class:`UnsupportedCircuit`, :data:`SUPPORTED_OPS`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from zkauction.zk import fixedpoint_ops as fx
from zkauction.zk.circuit import Circuit, Outcome
from zkauction.zk.fixedpoint_ops import SUPPORTED_OPS, UnsupportedCircuit, Value

__all__ = ["SUPPORTED_OPS", "FixedPointEvaluator", "FixedPointResult", "UnsupportedCircuit"]


@dataclass(frozen=True)
class FixedPointResult:
    """R rounds: allocation [R, n, m] and payment [R, n] as exact dyadic floats (what
    ``witness.decode_outputs`` gives), and ``valid`` [R], False where ezkl must decide the round
    (it leaves the circuit's decomposition or lookup ranges; the values there mean nothing)."""

    allocation: np.ndarray
    payment: np.ndarray
    valid: np.ndarray


def lower_graph(low: fx.Lowering, model: onnx.ModelProto) -> tuple[list[Value], list[Value]]:
    """Lower every node of ``model`` in order; return the graph's input and output values."""
    graph = model.graph
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:  # axes as inputs (Slice, Squeeze, Unsqueeze, ReduceSum), Softmax over one axis
        raise UnsupportedCircuit(f"ONNX opset {opset} (the exporter writes 17; 13 or later is reproduced)")
    for t in graph.initializer:
        low.values[t.name] = low.const(onnx.numpy_helper.to_array(t))
    inputs = []
    for inp in graph.input:
        if inp.name in low.values:
            continue
        tt = inp.type.tensor_type
        shape = tuple(int(d.dim_value) for d in tt.shape.dim)
        if tt.elem_type != onnx.TensorProto.FLOAT or any(d <= 0 for d in shape):
            raise UnsupportedCircuit(f"input {inp.name!r} is not a float32 tensor of fixed shape")
        low.dummy.append(np.zeros((1,) + shape, dtype=np.int64))
        inputs.append(Value(shape, low.s_in, slot=len(low.dummy) - 1))
        low.values[inp.name] = inputs[-1]
    for node in graph.node:
        name = f"ONNX op {node.op_type} (node {node.name or node.output[0]!r})"
        if node.op_type not in SUPPORTED_OPS or len(node.output) != 1:
            raise UnsupportedCircuit(f"{name} is not reproduced by the exact evaluator; supported: {', '.join(SUPPORTED_OPS)}")
        ins = [low.values[i] if i else None for i in node.input]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        try:
            low.values[node.output[0]] = low.handler(node.op_type)(ins, attrs)
        except UnsupportedCircuit as e:
            raise UnsupportedCircuit(f"{name}: {e}") from None
        except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as e:
            raise UnsupportedCircuit(f"{name}: cannot be lowered ({type(e).__name__}: {e})") from None
    outputs = [low.values[o.name] for o in graph.output]
    if any(v.is_const for v in outputs):
        raise UnsupportedCircuit("an output of the graph is a constant")
    return inputs, outputs


class FixedPointEvaluator:
    """A circuit's outcome function in exact integer arithmetic (see the module docstring).

    The constructor is pure (numpy and onnx): ``FixedPointEvaluator(n, m, settings, model,
    output_scales)``. :meth:`from_circuit` adds the guards that ask ezkl."""

    def __init__(self, n: int, m: int, settings: dict[str, Any], model: onnx.ModelProto, output_scales: dict[str, int]):
        ra = settings["run_args"]
        self.n, self.m = n, m
        self.input_scale = int(ra["input_scale"])
        self.decomp_limit = int(ra["decomp_base"]) ** int(ra["decomp_legs"]) - 1
        low = fx.Lowering(ra)
        if not low.lo <= 0 <= low.hi:
            raise UnsupportedCircuit(f"lookup range {[low.lo, low.hi]} does not contain 0")
        inputs, outputs = lower_graph(low, model)
        names = [o.name for o in model.graph.output]
        if len(inputs) != n or any(v.shape != (1, m + 1) for v in inputs):
            raise UnsupportedCircuit(f"expected {n} inputs of shape [1, {m + 1}], got {[v.shape for v in inputs]}")
        if names != ["allocation", "payment"] or outputs[0].shape != (1, n, m) or outputs[1].shape != (1, n):
            raise UnsupportedCircuit(f"outputs {names} of shapes {[v.shape for v in outputs]} break the circuit contract")
        scales = {"allocation": outputs[0].scale, "payment": outputs[1].scale}
        declared = [int(s) for s in settings.get("model_output_scales", [])]
        if declared != [scales["allocation"], scales["payment"]] or scales != dict(output_scales):
            raise UnsupportedCircuit(
                f"output scales {scales} differ from settings.json {declared} or the manifest {output_scales}: "
                "ezkl parsed the graph differently"
            )
        self.output_scales = scales
        self.lookup_range = (low.lo, low.hi)
        self.signature = frozenset(low.signature)
        self.program = low.program
        self.n_regs = len(low.dummy)
        self.input_slots = [v.slot for v in inputs]
        self.output_slots = (outputs[0].slot, outputs[1].slot)
        self.ops = sorted({node.op_type for node in model.graph.node})

    @classmethod
    def from_circuit(cls, circuit: Circuit, *, witness_probes: int = 8) -> FixedPointEvaluator:
        """The evaluator of a compiled circuit folder, or :class:`UnsupportedCircuit`.

        After lowering, ``ezkl.table`` must agree on the value-changing nodes and ``witness_probes``
        rounds (the support's edges, absent bidders, random profiles) must equal ezkl's witness."""
        try:
            settings = json.loads(Path(circuit.settings_path).read_text())
            model = onnx.load(str(circuit.onnx_path))
        except (OSError, ValueError) as e:
            raise UnsupportedCircuit(f"{circuit.dir}: cannot read settings.json or model.onnx: {e}") from None
        try:
            manifest_range = circuit.manifest.get("run_args", {}).get("lookup_range")
            if manifest_range is not None and list(manifest_range) != list(settings["run_args"]["lookup_range"]):
                raise UnsupportedCircuit(f"lookup range of the manifest {manifest_range} differs from settings.json")
            ev = cls(circuit.n, circuit.m, settings, model, circuit.output_scales)
        except (KeyError, TypeError) as e:
            raise UnsupportedCircuit(f"{circuit.dir}: settings.json lacks what ezkl uses ({e})") from None
        ev._check_salt_unused(circuit)
        ev._check_table(circuit, settings)
        if witness_probes > 0:
            ev._check_witness(circuit, witness_probes)
        return ev

    # -- evaluation -------------------------------------------------------------------------------
    def quantize_bids(self, bids: np.ndarray) -> np.ndarray:
        """[R, n, m] snapped bids -> their integers at the input scale (what float_to_felt gives)."""
        b = np.asarray(bids, dtype=np.float64)
        if b.ndim != 3 or b.shape[1:] != (self.n, self.m):
            raise ValueError(f"bids must have shape [R, {self.n}, {self.m}], got {b.shape}")
        if not np.all(np.isfinite(b)) or np.any(b < 0):
            raise ValueError("bids must be finite and non-negative")
        q = np.floor(b * 2.0**self.input_scale + 0.5)
        if np.any(q >= 2.0**40) or not np.array_equal(q / 2.0**self.input_scale, b):
            raise ValueError(f"bids must be on the 2^-{self.input_scale} grid (zkauction.zk.commitments.snap_bid)")
        return q.astype(np.int64)

    def evaluate(self, bids: np.ndarray, salt_column: int = 0) -> FixedPointResult:
        """The outcomes of R rounds of snapped bids [R, n, m] at once (see :class:`FixedPointResult`)."""
        q = self.quantize_bids(bids)
        R = q.shape[0]
        guard = fx.Guard(R, self.decomp_limit, self.lookup_range)
        regs: list[Any] = [None] * self.n_regs
        salt = np.full((R, 1), salt_column, dtype=np.int64)  # never reaches the outputs (checked)
        for i, slot in enumerate(self.input_slots):
            regs[slot] = np.concatenate([q[:, i, :], salt], axis=1)[:, None, :]
        for kernel, ins, out in self.program:
            regs[out] = kernel(guard, *[regs[i] for i in ins])
        a, p = (regs[s] for s in self.output_slots)
        alloc = a.reshape(R, self.n, self.m).astype(np.float64) / 2.0 ** self.output_scales["allocation"]
        pay = p.reshape(R, self.n).astype(np.float64) / 2.0 ** self.output_scales["payment"]
        return FixedPointResult(alloc, pay, guard.ok.copy())

    def outcomes(self, bids: np.ndarray) -> list[Outcome]:
        """One :class:`Outcome` per round, equal to ``canonical_outcome`` on the same bids. Raises
        ValueError naming the rounds that only ezkl can decide (``outcome.canonical_outcomes``
        handles those)."""
        res = self.evaluate(bids)
        bad = np.nonzero(~res.valid)[0]
        if bad.size:
            raise ValueError(
                f"rounds {bad[:10].tolist()} leave the circuit's decomposition or lookup ranges; "
                "ezkl's witness decides them (zkauction.zk.outcome.canonical_outcomes)"
            )
        return [to_outcome(a, p) for a, p in zip(res.allocation, res.payment)]

    # -- guards -----------------------------------------------------------------------------------
    def differential_profiles(self, support: Any, k: int, seed: int = 0) -> np.ndarray:
        """``k`` snapped profiles [k, n, m] that exercise the fixed point: first the support's edges
        (everyone at the top, at the bottom or one grid step, everyone absent, each bidder alone),
        then equal bids, bids on a coarse grid (ties), profiles on either side of an outcome change
        found by sweeping one bid over the grid (menu-score ties), and random profiles, with absent
        bidders throughout. Used by the witness probes, the tests and the benchmark."""
        sup = np.asarray(support, dtype=np.float64)
        lo, hi = sup[..., 0], sup[..., 1]
        step = 2.0**-self.input_scale
        rng = np.random.default_rng(seed)
        frames = [hi, np.maximum(lo, step), np.zeros_like(lo)]
        for i in range(self.n):
            alone = np.zeros_like(lo)
            alone[i] = hi[i]
            frames.append(alone)

        def rand(absent: float = 0.3) -> np.ndarray:
            f = lo + rng.random(lo.shape) * (hi - lo)
            f[rng.random(self.n) < absent] = 0.0
            return f

        while len(frames) < k:
            kind = len(frames) % 4
            if kind == 0:  # equal bids
                frames.append(np.broadcast_to(rand(0.0)[:1], lo.shape).copy() * (rng.random((self.n, 1)) > 0.2))
            elif kind == 1:  # coarse grid
                frames.append(lo + np.round(rng.random(lo.shape) * 4) / 4 * (hi - lo))
            elif kind == 2:  # either side of an outcome change along one bid
                frames.extend(self._boundary(rand(0.2), lo, hi, rng))
            else:
                frames.append(rand())
        return self._snap(np.stack(frames[:k]))

    def _snap(self, b: np.ndarray) -> np.ndarray:
        return np.floor(b * 2.0**self.input_scale + 0.5) / 2.0**self.input_scale

    def _boundary(self, base: np.ndarray, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        i, j = int(rng.integers(self.n)), int(rng.integers(self.m))
        grid = np.arange(lo[i, j], hi[i, j] + 1e-12, 2.0**-self.input_scale)
        sweep = np.repeat(self._snap(base)[None], grid.size, axis=0)
        sweep[:, i, j] = grid
        res = self.evaluate(sweep)
        change = np.any(res.allocation[1:] != res.allocation[:-1], axis=(1, 2)) | np.any(res.payment[1:] != res.payment[:-1], axis=1)
        where = np.nonzero(change)[0]
        if where.size == 0:
            return [sweep[int(rng.integers(grid.size))]]
        t = int(rng.choice(where))
        return [sweep[t], sweep[t + 1]]

    def _check_salt_unused(self, circuit: Circuit) -> None:
        bids = self.differential_profiles(circuit.support, 16, seed=1)
        base = self.evaluate(bids)
        for salt in (1, 12345, -(2**30), 2**40):
            other = self.evaluate(bids, salt_column=salt)
            if not (np.array_equal(base.allocation, other.allocation) and np.array_equal(base.payment, other.payment)):
                raise UnsupportedCircuit("the outcome depends on the salt slot (the model must slice it off)")

    def _check_table(self, circuit: Circuit, settings: dict[str, Any]) -> None:
        theirs = ezkl_signature(circuit.onnx_path, settings["run_args"])
        if theirs != self.signature:
            diff = sorted(theirs ^ self.signature)[:6]
            raise UnsupportedCircuit(f"ezkl parses the graph into other nodes than the evaluator (differing: {diff})")

    def _check_witness(self, circuit: Circuit, k: int) -> None:
        from zkauction.zk.circuit import CircuitError, RoundInputError
        from zkauction.zk.commitments import int_to_felt
        from zkauction.zk.witness import canonical_outcome

        bids = self.differential_profiles(circuit.support, k)
        res = self.evaluate(bids)
        salts = [int_to_felt(0)] * self.n
        for r in np.nonzero(res.valid)[0]:
            try:
                want = canonical_outcome(circuit, bids[r].tolist(), salts)
            except (RoundInputError, CircuitError) as e:
                raise UnsupportedCircuit(f"ezkl rejects probe round {bids[r].tolist()} ({e}), the evaluator does not") from None
            if to_outcome(res.allocation[r], res.payment[r]) != want:
                raise UnsupportedCircuit(f"probe round {bids[r].tolist()} differs from ezkl's witness")


_TABLE_KINDS = {"EINSUM", "MULT", "POW", "ADD", "SUB", "SUM", "REDUCEMAX", "MAX", "LEAKYRELU", "ABS", "GREATER",
                "GREATEREQUAL", "LESS", "LESSEQUAL", "SIGMOID", "TANH", "SOFTMAX", "IFF"}
_TABLE_NEUTRAL = {"CONST", "Input", "SLICE", "RESHAPE", "GATHER", "CONCAT", "IDENTITY"}


def ezkl_signature(onnx_path: str | Path, run_args: dict[str, Any]) -> frozenset[tuple[str, int, int]]:
    """(op kind, out scale, rebase divisor) of each value-changing node ``ezkl.table`` lists."""
    import ezkl

    ra = ezkl.PyRunArgs()
    ra.input_scale, ra.param_scale = int(run_args["input_scale"]), int(run_args["param_scale"])
    ra.scale_rebase_multiplier = int(run_args.get("scale_rebase_multiplier", 1))
    if run_args.get("rebase_scale") is not None:
        ra.rebase_scale = int(run_args["rebase_scale"])
    try:
        table = ezkl.table(str(onnx_path), ra)
    except BaseException as e:  # pyo3 panics derive from BaseException
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise UnsupportedCircuit(f"ezkl.table failed on {onnx_path}: {e}") from None
    out: set[tuple[str, int, int]] = set()
    for row in table.splitlines():
        cells = [c.strip() for c in row.split("│")]
        if len(cells) < 4 or not cells[1].isdigit():
            continue
        op, scale = cells[2], int(cells[3])
        div = 0
        rebased = re.match(r"REBASED \(div=([0-9.]+),.*?\) \((.*)\)$", op)
        if rebased:
            div, op = int(float(rebased.group(1))), rebased.group(2)
        inner = re.match(r"RESCALED INPUT \((.*)\)$", op)
        op = inner.group(1) if inner else op
        kind = re.match(r"[A-Za-z_]+", op).group(0)
        if kind == "IDENTITY" and "out_scale=None" not in op:
            out.add(("IDENTITY+", scale, 0))
        elif kind in _TABLE_KINDS or (div and kind in _TABLE_NEUTRAL):
            out.add((kind, scale, div))
        elif kind not in _TABLE_NEUTRAL:
            raise UnsupportedCircuit(f"ezkl parses a node into {op!r}, which the evaluator does not reproduce")
    return frozenset(out)


def to_outcome(allocation: np.ndarray, payment: np.ndarray) -> Outcome:
    """An :class:`Outcome` from one round's decoded arrays."""
    return Outcome(tuple(tuple(float(x) for x in row) for row in allocation), tuple(float(x) for x in payment))
