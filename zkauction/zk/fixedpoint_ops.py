"""Integer kernels and ezkl's scale rules for :mod:`zkauction.zk.fixedpoint` (ezkl 23.0.5).

ezkl does not run the ONNX graph as written: tract first declutters it (neutral operands dropped,
``x / c`` becomes ``x * (1/c)`` with ``1/c`` folded in f32, MatMul/Gemm become einsums, Relu becomes
``max(x, 0)``), then ezkl gives every node a fixed-point scale (``graph/node.rs``, ``Node::new``):

- float constants are quantised at the param scale, integer and boolean ones at scale 0, as
  ``round(f32(x) * 2^s)``, halves away from zero (``quantize_float``);
- Add, Sub, Concat, Max, Where's branches and the comparisons first bring their inputs to the
  largest input scale by multiplying by ``2^d`` (``homogenize_input_scales``; a single-use constant
  is re-quantised instead, which agrees unless it is inexact at its scale: refused here);
- Mul and einsums add the input scales, comparisons give 0, lookups keep the input scale, softmax
  gives ``in + max(in, global)``, ``x * 2^-k`` for a scalar constant only raises the scale by k;
- any other result above the rebase scale (``max(input, param) * scale_rebase_multiplier``) is
  divided by ``2^d``, rounded half away from zero (``RebaseScale``, ``const_div``).

Kernels work on int64 arrays with a leading batch axis (one row per round). A :class:`Guard` flags
the rounds that ezkl's witness generator would reject or compute differently: values beyond its
sign decompositions (``|x| > base^legs - 1``), divisions whose numerator is inexact in f64, lookups
outside the calibrated range. Those rounds go back to ezkl.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

F64_EXACT = 2**53
SUPPORTED_OPS = (
    "Abs", "Add", "Cast", "Concat", "Constant", "Div", "Gather", "Gemm", "Greater", "GreaterOrEqual",
    "Identity", "Less", "LessOrEqual", "MatMul", "Max", "Mul", "ReduceMax", "ReduceSum", "Relu",
    "Reshape", "Sigmoid", "Slice", "Softmax", "Squeeze", "Sub", "Tanh", "Unsqueeze", "Where",
)
_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)
_NEUTRAL = {"Add": 0.0, "Sub": 0.0, "Mul": 1.0}  # tract drops these operands (Sub: right side only)
_STRUCTURAL = ("SLICE", "RESHAPE", "GATHER", "CONCAT")  # in ezkl.table; value-neutral unless rebased


class UnsupportedCircuit(ValueError):
    """A circuit the exact evaluator cannot reproduce bit for bit (the message names the op)."""


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Rust's ``f64::round`` (halves away from zero), exactly, on a float64 array."""
    t = np.trunc(x)  # x - t is exact in IEEE arithmetic
    return t + np.where(np.abs(x - t) >= 0.5, np.sign(x), 0.0)


def quantize(raw: np.ndarray, scale: int) -> np.ndarray:
    """ezkl's ``quantize_float``: ``round(f64(x) * 2^scale)``, halves away from zero, of the
    constant's f32 value (ezkl reads every constant, integers included, as f32)."""
    x = np.asarray(raw).astype(np.float32).astype(np.float64) * 2.0**scale
    if not np.all(np.isfinite(x)) or np.any(np.abs(x) >= 2.0**62):
        raise UnsupportedCircuit(f"a constant does not fit scale {scale}")
    return round_half_away(x).astype(np.int64)


def div_pow2(x: np.ndarray, shift: int) -> np.ndarray:
    """``round(x / 2^shift)``, halves away from zero, in exact integer arithmetic."""
    d = np.int64(1 << shift)
    return np.sign(x) * ((2 * np.abs(x) + d) // (2 * d))


class Guard:
    """Per-round flags: False where ezkl's witness could fail or differ (see the module docstring)."""

    def __init__(self, rounds: int, decomp_limit: int, lookup_range: tuple[int, int]):
        self.ok, self.limit, (self.lo, self.hi) = np.ones(rounds, dtype=bool), decomp_limit, lookup_range

    def _rows(self, cond: np.ndarray) -> None:
        self.ok &= cond.reshape(cond.shape[0], -1).all(axis=1)

    def decomposed(self, x: np.ndarray) -> None:
        self._rows(np.abs(x) <= self.limit)

    def f64_exact(self, x: np.ndarray) -> None:
        self._rows(np.abs(x) < F64_EXACT)

    def lookup(self, x: np.ndarray) -> None:
        self._rows((x >= self.lo) & (x <= self.hi))


# --- lookups: ezkl's tensor::ops::nonlinearities, f64 arithmetic with glibc's libm -----------------

E_F32 = float(np.float32(math.e))  # LookupOp::Exp stores its base as an f32


def _lookup_value(name: str, k: Any, s: float, lib: Any) -> Any:
    """The value ezkl rounds: ``lib`` is numpy (vectorised) or math (Python's libm, glibc as ezkl)."""
    if name == "tanh":
        return s * lib.tanh(k / s)
    if name == "sigmoid":
        return s / (1.0 + lib.exp(-(k / s)))
    return s * lib.pow(E_F32, k / s)  # "exp": LookupOp::Exp stores e as an f32


def lookup_table(name: str, scale: int, lo: int, hi: int) -> np.ndarray:
    """``round(f(k))`` for every integer k in [lo, hi], as ezkl's witness computes it. Entries
    within a few thousand ulps of a rounding boundary are recomputed with the math module."""
    s, k = float(2**scale), np.arange(lo, hi + 1, dtype=np.float64)
    with np.errstate(over="ignore"):
        v = _lookup_value(name, k, s, np)
    if not np.all(np.isfinite(v)) or np.any(np.abs(v) >= 2.0**62):
        raise UnsupportedCircuit(f"lookup {name} at scale {scale} overflows over [{lo}, {hi}]")
    risky = np.nonzero(np.abs(np.abs(v - np.trunc(v)) - 0.5) <= 1e-12 * (1.0 + np.abs(v)))[0]
    for i in risky:
        v[i] = _lookup_value(name, float(k[i]), s, math)
    return round_half_away(v).astype(np.int64)


def recip(x: np.ndarray, in_scale: int, out_scale: int) -> np.ndarray:
    """ezkl's ``recip`` witness: ``round(2^out / (x / 2^in))`` in f64 (x != 0 here)."""
    with np.errstate(divide="ignore"):
        return round_half_away(float(2**out_scale) * (1.0 / (x.astype(np.float64) / float(2**in_scale)))).astype(np.int64)


@dataclass
class Value:
    """A tensor of the lowered graph: a constant (raw ONNX values) or a register of the program."""

    shape: tuple[int, ...]
    scale: int
    raw: np.ndarray | None = None  # constants only: the ONNX values (float32, int64 or bool)
    slot: int = -1  # variables only: register index

    @property
    def is_const(self) -> bool:
        return self.raw is not None

    def uniform(self) -> float | None:
        """The single value of a constant whose elements are all equal (tract's ``uniform`` fact)."""
        flat = self.raw.ravel() if self.raw is not None else np.zeros(0)
        return float(flat[0]) if flat.size and np.all(flat == flat[0]) else None


Kernel = Callable[..., np.ndarray]


def expand_to(arr: np.ndarray, rank: int, shape: tuple[int, ...], batched: bool) -> np.ndarray:
    """Insert size-1 axes (after the batch axis) so a rank-``len(shape)`` tensor broadcasts at ``rank``."""
    extra = rank - len(shape)
    return arr.reshape(arr.shape[:1] * batched + (1,) * extra + shape) if extra > 0 else arr


def compare_kernel(op: str) -> Callable[[Guard, np.ndarray, np.ndarray], np.ndarray]:
    """ezkl's comparisons: the decomposed sign of ``a - b`` (``a + 1 - b`` if non-strict; Less swaps)."""
    plus, swap = int(op.endswith("OrEqual")), op.startswith("Less")

    def run(g: Guard, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = (b - a if swap else a - b) + plus
        g.decomposed(d)
        return (d > 0).astype(np.int64)

    return run


def reduce_max(g: Guard, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """Max over ``axes`` (batched axes): ezkl sorts and checks consecutive differences + 1."""
    hi = x.max(axis=axes, keepdims=True)
    if math.prod(x.shape[a] for a in axes) > 1:
        g.decomposed(hi - x.min(axis=axes, keepdims=True) + 1)
    return hi if keepdims else np.squeeze(hi, axis=axes)


def softmax(g: Guard, x: np.ndarray, axis: int, in_scale: int, out_scale: int, exp_table: np.ndarray, lo: int) -> np.ndarray:
    """ezkl's softmax layout: ``x - max``, exp lookup, sum, recip, product (scale ``in + out``)."""
    sub = x - reduce_max(g, x, (axis,), True)
    g.lookup(sub)
    ex = exp_table[np.clip(sub - lo, 0, exp_table.size - 1)]
    denom = ex.sum(axis=axis, keepdims=True)  # > 0: exp(0) is in every slice
    inv = recip(denom, in_scale, out_scale)
    g.decomposed(inv)
    g.decomposed(np.abs(inv * denom - 2 ** (in_scale + out_scale)) + 2 * denom)  # recip's optimality checks
    return ex * inv


def lookup_kernel(table: np.ndarray, lo: int) -> Callable[[Guard, np.ndarray], np.ndarray]:
    def run(g: Guard, x: np.ndarray) -> np.ndarray:  # table[k - lo] = round(f(k)), see lookup_table
        g.lookup(x)
        return table[np.clip(x - lo, 0, table.size - 1)]

    return run


def relu(g: Guard, x: np.ndarray) -> np.ndarray:
    g.decomposed(x)
    return np.maximum(x, 0)


def absolute(g: Guard, x: np.ndarray) -> np.ndarray:
    g.decomposed(x)
    return np.abs(x)


def maximum(g: Guard, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    g.decomposed(a - b)
    return np.maximum(a, b)


def rebase_kernel(shift: int) -> Callable[[Guard, np.ndarray], np.ndarray]:
    """The RebaseScale division by ``2^shift`` (the quotient is range checked by decomposition)."""

    def run(g: Guard, x: np.ndarray) -> np.ndarray:
        g.f64_exact(x)
        q = div_pow2(x, shift)
        g.decomposed(q)
        g.decomposed(np.full(x.shape[:1], 1 << shift, dtype=np.int64))  # |x - q d| < d is checked too
        return q

    return run


# --- lowering: the ONNX graph as ezkl 23 parses it --------------------------------------------------


def _ints(v: Value | None) -> list[int]:
    if v is None or not v.is_const:
        raise UnsupportedCircuit("a shape, axis or index argument that is not a constant")
    return [int(i) for i in np.asarray(v.raw).ravel()]


def _concat(xs: tuple[np.ndarray, ...], axis: int) -> np.ndarray:
    """Concatenate batched operands (R, ...) with unbatched constants along ONNX ``axis``."""
    rank = max(x.ndim for x in xs)
    R = max(x.shape[0] for x in xs if x.ndim == rank)
    return np.concatenate([np.broadcast_to(x, (R,) + x.shape) if x.ndim < rank else x for x in xs], axis=axis + 1)


class Lowering:
    """Walks the ONNX graph in order and emits integer kernels ``kernel(guard, *registers)`` with
    ezkl's scales. ``signature`` collects (op kind, out scale, rebase divisor) of every
    value-changing node, in the vocabulary of ``ezkl.table``, for a structural cross-check."""

    def __init__(self, run_args: dict[str, Any]):
        self.s_in, self.s_param = int(run_args["input_scale"]), int(run_args["param_scale"])
        self.s_max = max(self.s_in, self.s_param)
        rebase = run_args.get("rebase_scale")
        self.target = (int(rebase) if rebase is not None else self.s_max) * int(run_args.get("scale_rebase_multiplier", 1))
        self.lo, self.hi = (int(x) for x in run_args["lookup_range"])
        self.values: dict[str, Value] = {}
        self.program: list[tuple[Kernel, list[int], int]] = []
        self.dummy: list[np.ndarray] = []  # one zero row per register, for shapes
        self.tables: dict[tuple[str, int], np.ndarray] = {}
        self.signature: set[tuple[str, int, int]] = set()
        self.guard = Guard(1, 2**62, (-(2**62), 2**62))  # for shapes only

    # -- emitting -------------------------------------------------------------------------------
    def var(self, kind: str, kernel: Kernel, inputs: Sequence[Value], scale: int, rebase: bool = True) -> Value:
        out = kernel(self.guard, *[self.dummy[v.slot] for v in inputs])
        self.dummy.append(out)
        self.program.append((kernel, [v.slot for v in inputs], len(self.dummy) - 1))
        v = Value(tuple(out.shape[1:]), scale, slot=len(self.dummy) - 1)
        if rebase and scale > self.target:  # RebaseScale::rebase
            self.signature.add((kind, self.target, 2 ** (scale - self.target)))
            return self.var(kind, rebase_kernel(scale - self.target), [v], self.target, rebase=False)
        if kind not in _STRUCTURAL and rebase:
            self.signature.add((kind, scale, 0))
        return v

    def const(self, raw: np.ndarray) -> Value:
        raw = np.asarray(raw)
        if raw.dtype.kind not in "fiub" or (raw.dtype.kind == "f" and raw.dtype != np.float32):
            raise UnsupportedCircuit(f"constant of dtype {raw.dtype} (the exporter writes float32)")
        return Value(tuple(raw.shape), self.s_param if raw.dtype.kind == "f" else 0, raw=raw)

    def nary(self, kind: str, fn: Callable[..., np.ndarray], vals: Sequence[Value], scale: int,
             homogeneous: bool | tuple[int, ...]) -> Value:
        """Emit ``fn(guard, *operands)`` over registers and quantised constants; the operands at
        the ``homogeneous`` positions (True: all) are first brought to the largest input scale,
        if their scales differ (ezkl's homogenize_input_scales)."""
        top = max(v.scale for v in vals)
        rank = max(len(v.shape) for v in vals)
        pos = tuple(range(len(vals))) if homogeneous is True else tuple(homogeneous or ())
        pos = pos if len({vals[i].scale for i in pos}) > 1 else ()
        parts: list[tuple[Any, ...]] = []
        regs: list[Value] = []
        for i, v in enumerate(vals):
            shift = top - v.scale if i in pos else 0
            if v.is_const:
                q = quantize(v.raw, v.scale) << np.int64(shift)
                if shift and not np.array_equal(q, quantize(v.raw, top)):
                    raise UnsupportedCircuit(
                        f"constant {v.raw.ravel()[:3]}... is not exact at scale {v.scale}; ezkl re-quantises "
                        "or rescales it depending on how tract shares it"
                    )
                parts.append(("c", expand_to(q, rank, v.shape, False)))
            else:
                parts.append(("v", len(regs), v.shape, shift))
                regs.append(v)

        def kernel(g: Guard, *xs: np.ndarray) -> np.ndarray:
            args = []
            for p in parts:
                if p[0] == "c":
                    args.append(p[1])
                else:
                    x = expand_to(xs[p[1]], rank, p[2], True)
                    args.append(x << np.int64(p[3]) if p[3] else x)
            return fn(g, *args)

        return self.var(kind, kernel, regs, scale)

    # -- structural ops (on constants: folded with numpy, as tract folds them) -------------------
    def structural(self, kind: str, x: Value, fn: Callable[[np.ndarray, int], np.ndarray]) -> Value:
        if x.is_const:
            return self.const(fn(x.raw, 0))
        return self.var(kind, lambda g, a: fn(a, 1), [x], x.scale)

    def op_Constant(self, ins: list[Value], attrs: dict) -> Value:
        if "value" not in attrs:
            raise UnsupportedCircuit(f"Constant with attributes {sorted(attrs)}")
        return self.const(numpy_helper.to_array(attrs["value"]))

    def op_Slice(self, ins: list[Value], attrs: dict) -> Value:
        x = ins[0]
        starts, ends = _ints(ins[1]), _ints(ins[2])
        axes = _ints(ins[3]) if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        if len(ins) > 4 and ins[4] is not None and any(s != 1 for s in _ints(ins[4])):
            raise UnsupportedCircuit("slice steps other than 1")
        index = [slice(None)] * len(x.shape)
        for a, s, e in zip(axes, starts, ends):
            a %= len(x.shape)
            index[a] = slice(*slice(s, e).indices(x.shape[a])[:2])
        return self.structural("SLICE", x, lambda arr, b: arr[(slice(None),) * b + tuple(index)])

    def op_Unsqueeze(self, ins: list[Value], attrs: dict) -> Value:
        x, axes = ins[0], _ints(ins[1])
        axes = sorted(a % (len(x.shape) + len(axes)) for a in axes)
        return self.structural("RESHAPE", x, lambda arr, b: np.expand_dims(arr, tuple(a + b for a in axes)))

    def op_Squeeze(self, ins: list[Value], attrs: dict) -> Value:
        x = ins[0]
        axes = [a % len(x.shape) for a in _ints(ins[1])] if len(ins) > 1 else [i for i, d in enumerate(x.shape) if d == 1]
        return self.structural("RESHAPE", x, lambda arr, b: np.squeeze(arr, tuple(a + b for a in axes)))

    def op_Reshape(self, ins: list[Value], attrs: dict) -> Value:
        x = ins[0]
        shape = [x.shape[i] if d == 0 and not attrs.get("allowzero", 0) else d for i, d in enumerate(_ints(ins[1]))]
        if -1 in shape:
            shape[shape.index(-1)] = math.prod(x.shape) // math.prod(d for d in shape if d != -1)
        new = tuple(shape)
        return self.structural("RESHAPE", x, lambda arr, b: arr.reshape(arr.shape[:b] + new))

    def op_Gather(self, ins: list[Value], attrs: dict) -> Value:
        x, idx = ins
        if not idx.is_const:
            raise UnsupportedCircuit("gather with variable indices")
        axis = attrs.get("axis", 0) % len(x.shape)
        ind = np.asarray(idx.raw).astype(np.int64)
        if np.any(ind < -1) or np.any(ind >= x.shape[axis]):  # ezkl maps -1 only
            raise UnsupportedCircuit(f"gather indices {ind.ravel()[:4]}")
        ind = np.where(ind == -1, x.shape[axis] - 1, ind)
        return self.structural("GATHER", x, lambda arr, b: np.take(arr, ind, axis=axis + b))

    def op_Cast(self, ins: list[Value], attrs: dict) -> Value:
        x = ins[0]
        if attrs["to"] not in _FLOAT_TYPES:
            raise UnsupportedCircuit(f"cast to ONNX type {attrs['to']} (ezkl floors or reinterprets)")
        return self.const(np.asarray(x.raw, np.float32)) if x.is_const else x  # ezkl: IDENTITY

    def op_Concat(self, ins: list[Value], attrs: dict) -> Value:
        axis = attrs["axis"] % len(ins[0].shape)
        if all(v.is_const for v in ins):
            return self.const(np.concatenate([v.raw for v in ins], axis=axis))
        return self.nary("CONCAT", lambda g, *xs: _concat(xs, axis), ins, max(v.scale for v in ins), True)

    # -- arithmetic -----------------------------------------------------------------------------
    def op_Div(self, ins: list[Value], attrs: dict) -> Value:
        a, b = ins
        if not (b.is_const and b.raw.dtype.kind == "f"):
            raise UnsupportedCircuit("division by a variable (ezkl's reciprocal) is not reproduced")
        # tract: x / c becomes x * recip(c), with recip(c) folded in f32.
        return self.elementwise("Mul", a, self.const(np.float32(1.0) / np.asarray(b.raw, np.float32)))

    def elementwise(self, op: str, a: Value, b: Value) -> Value:
        if a.is_const and b.is_const:
            if a.raw.dtype != b.raw.dtype:
                raise UnsupportedCircuit(f"{op} of constants of types {a.raw.dtype} and {b.raw.dtype}")
            return self.const({"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](a.raw, b.raw))
        out_shape = np.broadcast_shapes(a.shape, b.shape)
        for c, v, right in ((a, b, False), (b, a, True)):
            u = c.uniform()
            if u is not None and not v.is_const:
                lead = len(out_shape) - len(v.shape)  # tract aligns ranks, then wants 1 or v's dim
                if u == _NEUTRAL[op] and (op != "Sub" or right) and out_shape == (1,) * lead + v.shape:
                    # tract's declutter_neutral: the variable itself (with leading axes of size 1)
                    return v if not lead else self.structural("RESHAPE", v, lambda arr, bt: arr.reshape(arr.shape[:bt] + out_shape))
                if op == "Mul" and u == 0.0:
                    raise UnsupportedCircuit("multiplication by a constant zero tensor (tract folds it)")
        if op != "Mul":
            fn = np.add if op == "Add" else np.subtract
            return self.nary(op.upper(), lambda g, x, y: fn(x, y), [a, b], max(a.scale, b.scale), True)
        for c, v in ((a, b), (b, a)):
            if c.is_const and not v.is_const and c.raw.size == 1 and float(c.raw.ravel()[0]) < 1.0:
                k = np.log2(np.float32(1.0) / np.float32(c.raw.ravel()[0]))
                if np.isfinite(k) and float(k) == int(k):  # ezkl: IDENTITY at a higher scale
                    if v.scale + int(k) > self.target or out_shape != v.shape:
                        raise UnsupportedCircuit("a power-of-two scaling above the rebase scale or broadcasting")
                    self.signature.add(("IDENTITY+", v.scale + int(k), 0))
                    return Value(v.shape, v.scale + int(k), slot=v.slot)
        kind = "POW" if a.slot == b.slot and not a.is_const else "MULT"  # tract: x * x is square(x)
        return self.nary(kind, lambda g, x, y: x * y, [a, b], a.scale + b.scale, False)

    def unary(self, kind: str, x: Value, kernel: Kernel) -> Value:
        if x.is_const:
            raise UnsupportedCircuit(f"{kind} of a constant")
        return self.var(kind, kernel, [x], x.scale)

    def op_Max(self, ins: list[Value], attrs: dict) -> Value:
        if len(ins) != 2 or all(v.is_const for v in ins):
            raise UnsupportedCircuit(f"Max of {len(ins)} inputs")
        for c, v in ((ins[0], ins[1]), (ins[1], ins[0])):
            if c.is_const and c.raw.size == 1 and float(c.raw.ravel()[0]) == 0.0:
                return self.unary("LEAKYRELU", v, relu)
        return self.nary("MAX", maximum, ins, max(v.scale for v in ins), True)

    def op_Where(self, ins: list[Value], attrs: dict) -> Value:
        mask, a, b = ins
        if mask.is_const:
            raise UnsupportedCircuit("a constant condition")
        scale = max(v.scale for v in ins) if a.scale != b.scale else a.scale
        # ezkl's iff: mask * a + (1 - mask) * b, the branches at one scale
        return self.nary("IFF", lambda g, m, x, y: m * x + (1 - m) * y, ins, scale, (1, 2))

    def compare(self, op: str, ins: list[Value]) -> Value:
        if all(v.is_const for v in ins):
            raise UnsupportedCircuit("comparison of two constants")
        return self.nary(op.upper().replace("OREQUAL", "EQUAL"), compare_kernel(op), ins, 0, True)

    def handler(self, op: str) -> Callable[[list[Value], dict], Value]:
        """The lowering of ONNX op ``op`` (a method ``op_<op>``, or one of the families below)."""
        if op in ("Add", "Sub", "Mul"):
            return lambda ins, attrs: self.elementwise(op, *ins)
        if op in ("Greater", "GreaterOrEqual", "Less", "LessOrEqual"):
            return lambda ins, attrs: self.compare(op, ins)
        if op in ("Sigmoid", "Tanh"):
            return lambda ins, attrs: self.lookup(op.lower(), ins[0])
        if op in ("Abs", "Relu"):  # tract: Relu is max(x, 0), which ezkl lays out as LeakyReLU(0)
            return lambda ins, attrs: self.unary("ABS" if op == "Abs" else "LEAKYRELU", ins[0], absolute if op == "Abs" else relu)
        if op in ("ReduceSum", "ReduceMax"):
            fn = reduce_max if op == "ReduceMax" else (lambda g, a, axes, keep: a.sum(axis=axes, keepdims=keep))
            return lambda ins, attrs: self.reduction(op[6:].upper().replace("MAX", "REDUCEMAX"), ins, attrs, fn)
        if op == "Identity":
            return lambda ins, attrs: ins[0]
        return getattr(self, "op_" + op)

    def reduction(self, kind: str, ins: list[Value], attrs: dict, fn: Callable[..., np.ndarray]) -> Value:
        x, axes = ins[0], attrs.get("axes")
        if axes is None and len(ins) > 1 and ins[1] is not None:
            axes = _ints(ins[1])
        if not axes:
            if attrs.get("noop_with_empty_axes", 0):
                raise UnsupportedCircuit("reduction with noop_with_empty_axes")
            axes = list(range(len(x.shape)))
        batched = tuple(sorted(a % len(x.shape) + 1 for a in axes))
        keep = bool(attrs.get("keepdims", 1))
        return self.unary(kind, x, lambda g, a: fn(g, a, batched, keep))

    def op_MatMul(self, ins: list[Value], attrs: dict) -> Value:
        a, b = ins
        if (a.is_const and b.is_const) or min(len(a.shape), len(b.shape)) < 2:
            raise UnsupportedCircuit(f"matrix product of shapes {a.shape} and {b.shape}")
        # int64 matmul: the exact sums of products of ezkl's einsum.
        return self.nary("EINSUM", lambda g, x, y: np.matmul(x, y), [a, b], a.scale + b.scale, False)

    def op_Gemm(self, ins: list[Value], attrs: dict) -> Value:
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            raise UnsupportedCircuit("Gemm with alpha or beta other than 1")
        a, b = (self.structural("RESHAPE", v, lambda arr, bt: np.swapaxes(arr, -1, -2)) if attrs.get(t, 0) else v
                for v, t in ((ins[0], "transA"), (ins[1], "transB")))
        y = self.op_MatMul([a, b], {})
        return self.elementwise("Add", y, ins[2]) if len(ins) > 2 and ins[2] is not None else y

    # -- lookups and softmax --------------------------------------------------------------------
    def table(self, name: str, scale: int) -> np.ndarray:
        if (name, scale) not in self.tables:
            if self.hi - self.lo + 1 > 2**24:
                raise UnsupportedCircuit(f"lookup range [{self.lo}, {self.hi}] is too large to tabulate")
            self.tables[(name, scale)] = lookup_table(name, scale, self.lo, self.hi)
        return self.tables[(name, scale)]

    def lookup(self, name: str, x: Value) -> Value:
        return self.unary(name.upper(), x, lookup_kernel(self.table(name, x.scale), self.lo))

    def op_Softmax(self, ins: list[Value], attrs: dict) -> Value:
        x = ins[0]
        if x.is_const:
            raise UnsupportedCircuit("softmax of a constant")
        axis = attrs.get("axis", -1) % len(x.shape) + 1
        out = max(self.s_max, x.scale)  # HybridOp::Softmax's output_scale
        table, lo = self.table("exp", x.scale), self.lo
        return self.var("SOFTMAX", lambda g, a: softmax(g, a, axis, x.scale, out, table, lo), [x], x.scale + out)
