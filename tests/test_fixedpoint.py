"""The exact fixed-point evaluator against ezkl's witness: zero mismatches on the shipped affine
maximizer circuit and on freshly compiled tiny circuits (a 1x2 AMA, a RegretNet), on profiles with
absent bidders, equal bids, exact menu-score ties and the support's edges; refusals name the op;
rounds outside the calibrated lookup range are left to ezkl, which rejects them."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from zkauction.learn.ama import all_profiles, full_menu
from zkauction.learn.checkpoint import save_checkpoint
from zkauction.learn.nets import RegretNet
from zkauction.learn.setting import AuctionSetting, ParticipationModel
from zkauction.zk import fixedpoint_ops as fx
from zkauction.zk.circuit import Circuit, RoundInputError
from zkauction.zk.commitments import int_to_felt, new_salt
from zkauction.zk.compile import compile_auction
from zkauction.zk.fixedpoint import (
    FixedPointEvaluator,
    UnsupportedCircuit,
    ezkl_signature,
    lower_graph,
    to_outcome,
)
from zkauction.zk.outcome import canonical_outcomes, fast_outcome_function
from zkauction.zk.witness import canonical_outcome

ROOT = Path(__file__).resolve().parents[1]
# Tiny and cheap, as in test_circuit.py: a 2^-8 grid, small lookup tables, no proving key kept.
TINY = {"input_scale": 8, "mask_logit": 10.0, "decomp_base": 256, "decomp_legs": 4, "max_logrows": 12,
        "calibration_samples": 100, "fidelity_samples": 0, "keep_pk": False}


@pytest.fixture(scope="module")
def shipped() -> Circuit:
    return Circuit.load(ROOT / "circuits" / "ama_2x2_uniform")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Circuit]:
    tmp = tmp_path_factory.mktemp("fixedpoint")
    torch.manual_seed(0)
    net = RegretNet(AuctionSetting(2, 2), ParticipationModel.independent([0.7, 0.9]), depth=1, width=8, activation="tanh")
    with torch.no_grad():  # non-zero biases: tract keeps the bias additions
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    save_checkpoint(net, tmp / "trained_regretnet")
    return {
        "ama_1x2": compile_auction(ROOT / "trained" / "ama_1x2_uniform", tmp / "ama_1x2", dev_srs=True, **TINY),
        "regretnet": compile_auction(tmp / "trained_regretnet", tmp / "regretnet", dev_srs=True, **TINY),
    }


def mismatches(circuit: Circuit, ev: FixedPointEvaluator, bids: np.ndarray) -> list[int]:
    """Rounds where the evaluator differs from ezkl's witness (salts at zero: they never matter)."""
    res = ev.evaluate(bids)
    assert res.valid.all()
    salts = [int_to_felt(0)] * circuit.n
    return [r for r in range(len(bids))
            if to_outcome(res.allocation[r], res.payment[r]) != canonical_outcome(circuit, bids[r].tolist(), salts)]


def onnx_boosts(circuit: Circuit) -> np.ndarray:
    """The [2^n, K] boost table in the circuit's ONNX: the one constant of that shape (the eval-mode
    boosts are a buffer, folded into a Constant node by the export)."""
    model = onnx.load(str(circuit.onnx_path))
    shape = [2**circuit.n, (circuit.n + 1) ** circuit.m]
    found = [onnx.numpy_helper.to_array(node.attribute[0].t) for node in model.graph.node
             if node.op_type == "Constant" and list(node.attribute[0].t.dims) == shape]
    assert len(found) == 1, f"expected one {shape} boost table in {circuit.onnx_path}, found {len(found)}"
    return found[0]


def menu_score_ties(circuit: Circuit, bids: np.ndarray) -> int:
    """Profiles where two entries of the full menu have exactly equal fixed-point scores: bids and
    boosts at the input scale (weights 1, so the circuit's scores are these integers)."""
    boosts = onnx_boosts(circuit)
    S = circuit.input_scale
    q_boost = fx.quantize(boosts, S)  # [2^n, K]
    menu = full_menu(circuit.n, circuit.m).numpy()  # [K, n, m]
    profiles = [tuple(int(x) for x in g) for g in all_profiles(circuit.n).tolist()]
    ties = 0
    for b in np.round(bids * 2**S).astype(np.int64):
        g = profiles.index(tuple(int(row.any()) for row in b))
        scores = (menu * b).sum(axis=(1, 2)) + q_boost[g]
        ties += int((scores == scores.max()).sum() >= 2)
    return ties


def test_shipped_ama_matches_the_witness_on_edges_ties_and_absent_bidders(shipped):
    ev = FixedPointEvaluator.from_circuit(shipped)
    bids = ev.differential_profiles(shipped.support, 300, seed=2024)
    # The profiles cover what matters for exactness: the support's edges, absent bidders, equal
    # bids and exact menu-score ties (where only the tie-break decides).
    assert {0.0, 1.0} <= set(np.unique(bids))
    assert (~bids.any(axis=2)).any(axis=1).sum() >= 50
    assert sum(np.array_equal(b[0], b[1]) and b.any() for b in bids) >= 20
    assert menu_score_ties(shipped, bids) >= 20
    assert mismatches(shipped, ev, bids) == []


def test_the_shipped_circuit_is_exactly_the_shipped_net_on_the_grid(shipped, root):
    """The net's eval-mode constants lie on the circuit's grid (AffineMaximizerAuction.refresh_menu),
    so on snapped bids the float net and the circuit agree exactly, ties and edges included: the
    revenue `zkauction evaluate` reports is the proved auction's."""
    import torch
    from zkauction.learn.checkpoint import load_auction

    net = load_auction(root / "trained" / "ama_2x2_uniform")
    ev = FixedPointEvaluator.from_circuit(shipped)
    bids = np.concatenate([ev.differential_profiles(shipped.support, 400, seed=11),
                           np.round(np.random.default_rng(4).random((2000, 2, 2)) * 2**10) / 2**10])
    res = ev.evaluate(bids)
    assert res.valid.all()
    with torch.no_grad():
        a, p = net(torch.tensor(bids, dtype=torch.float32))
    assert np.array_equal(res.allocation, a.numpy().astype(np.float64))
    assert np.array_equal(res.payment, p.numpy().astype(np.float64))


@pytest.mark.parametrize("kind", ["ama_1x2", "regretnet"])
def test_tiny_compiled_circuits_match_the_witness(tiny, kind):
    circuit = tiny[kind]
    ev = FixedPointEvaluator.from_circuit(circuit)
    bids = ev.differential_profiles(circuit.support, 150, seed=7)
    assert mismatches(circuit, ev, bids) == []


def test_batched_and_fast_outcomes_equal_canonical_outcome(shipped):
    ev = FixedPointEvaluator.from_circuit(shipped)
    bids = ev.differential_profiles(shipped.support, 12, seed=3)
    salts = [[new_salt() for _ in range(shipped.n)] for _ in bids]
    want = [canonical_outcome(shipped, b.tolist(), s) for b, s in zip(bids, salts)]
    fast = fast_outcome_function(shipped)
    assert [fast(b.tolist(), s) for b, s in zip(bids, salts)] == want
    assert canonical_outcomes(shipped, bids.tolist()) == want == ev.outcomes(bids)
    with pytest.raises(RoundInputError, match="round 1"):
        canonical_outcomes(shipped, [bids[0].tolist(), [[0.5, 2.0], [0.1, 0.1]]])
    with pytest.raises(RoundInputError):
        fast([[0.5, 2.0], [0.1, 0.1]], salts[0])
    with pytest.raises(ValueError, match="grid"):
        ev.evaluate(np.full((1, 2, 2), 0.1))


def _copy_with_model(circuit: Circuit, dest, edit) -> Circuit:
    shutil.copytree(circuit.dir, dest)
    model = onnx.load(str(dest / "model.onnx"))
    edit(model)
    onnx.save(model, str(dest / "model.onnx"))
    return Circuit.load(dest, check_hashes=False)


def test_an_unsupported_op_is_refused_by_name_and_ezkl_takes_over(shipped, tmp_path):
    def abs_to_erf(model: onnx.ModelProto) -> None:
        next(n for n in model.graph.node if n.op_type == "Abs").op_type = "Erf"

    circuit = _copy_with_model(shipped, tmp_path / "erf", abs_to_erf)
    with pytest.raises(UnsupportedCircuit, match="Erf"):
        FixedPointEvaluator.from_circuit(circuit)
    # The witness still comes from model.compiled, so the fallback gives the shipped outcomes.
    bids, salts = [[0.5, 0.25], [0.75, 0.0]], [new_salt(), new_salt()]
    assert fast_outcome_function(circuit)(bids, salts) == canonical_outcome(shipped, bids, salts)

    def variable_divisor(model: onnx.ModelProto) -> None:
        mul = next(n for n in model.graph.node if n.op_type == "Mul" and n.output[0] == "payment")
        mul.op_type = "Div"

    with pytest.raises(UnsupportedCircuit, match="Div.*division by a variable"):
        FixedPointEvaluator.from_circuit(_copy_with_model(shipped, tmp_path / "div", variable_divisor))


def test_rounds_outside_the_lookup_range_are_left_to_ezkl(tiny, tmp_path):
    # Narrow the calibrated range so that absent bidders (masked logits) leave it: ezkl's check
    # rejects exactly the rounds the evaluator flags.
    src = tiny["regretnet"]
    dest = tmp_path / "narrow"
    shutil.copytree(src.dir, dest)
    for name in ("settings.json", "manifest.json"):
        doc = json.loads((dest / name).read_text())
        doc["run_args"]["lookup_range"] = [-1500, doc["run_args"]["lookup_range"][1]]
        (dest / name).write_text(json.dumps(doc))
    circuit = Circuit.load(dest, check_hashes=False)
    ev = FixedPointEvaluator.from_circuit(circuit)
    bids = ev.differential_profiles(circuit.support, 40, seed=5)
    res = ev.evaluate(bids)
    assert 0 < res.valid.sum() < len(bids)
    fast = fast_outcome_function(circuit)
    salts = [int_to_felt(0)] * circuit.n
    for r, b in enumerate(bids.tolist()):
        try:
            want = canonical_outcome(circuit, b, salts)
        except RoundInputError:
            assert not res.valid[r]
            with pytest.raises(RoundInputError, match="lookup range"):
                fast(b, salts)
            continue
        assert res.valid[r] and fast(b, salts) == want == to_outcome(res.allocation[r], res.payment[r])


def test_rounding_matches_rust():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999999999999994, -0.49999999999999994])
    assert fx.round_half_away(x).tolist() == [-3, -2, -1, 1, 2, 3, 0, 0]
    ints = np.arange(-5000, 5000, dtype=np.int64)
    for shift in (1, 8, 10):
        want = [int(np.sign(i)) * int(abs(i) / 2**shift + 0.5) for i in ints.tolist()]
        assert fx.div_pow2(ints, shift).tolist() == want


def _vector_witness(tmp_path, nodes, outputs, n, scale, lookup_range, values):
    """Compile a model with one input x [1, n] and outputs [1, n]; one witness on ``values``."""
    import ezkl
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "vector", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, n]) for name in outputs])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    ra = ezkl.PyRunArgs()
    ra.input_scale, ra.param_scale, ra.lookup_range, ra.logrows = scale, scale, lookup_range, 17
    ra.ignore_range_check_inputs_outputs, ra.decomp_legs = True, 6
    ezkl.gen_settings(str(tmp_path / "m.onnx"), str(tmp_path / "s.json"), py_run_args=ra)
    ezkl.compile_circuit(str(tmp_path / "m.onnx"), str(tmp_path / "m.compiled"), str(tmp_path / "s.json"))
    (tmp_path / "in.json").write_text(json.dumps({"input_data": [list(values)]}))
    w = ezkl.gen_witness(str(tmp_path / "in.json"), str(tmp_path / "m.compiled"), str(tmp_path / "w.json"))
    return [np.array([ezkl.felt_to_int(f) for f in felts]) for felts in w["outputs"]]


@pytest.mark.parametrize(("scale", "lo", "hi"), [(8, -6000, 3000), (10, -14000, 6000)])
def test_lookup_tables_equal_ezkl_on_every_input(tmp_path, scale, lo, hi):
    from onnx import helper

    names = ("sigmoid", "tanh", "exp")
    nodes = [helper.make_node(op, ["x"], [name]) for op, name in zip(("Sigmoid", "Tanh", "Exp"), names)]
    theirs = _vector_witness(tmp_path, nodes, names, hi - lo + 1, scale, (lo, hi), [k / 2**scale for k in range(lo, hi + 1)])
    for name, t in zip(names, theirs):
        assert np.array_equal(t, fx.lookup_table(name, scale, lo, hi)), name


def test_lowering_rules_match_ezkl_on_an_op_zoo(tmp_path):
    # Rules the auction nets do not all exercise: division by a non-power-of-two constant, Max
    # and comparisons against constants, Relu, 1 - x, a square, chained rebasing, Where with
    # branches at different scales. Every output is compared on every input of a range.
    from onnx import helper

    S, lo, hi = 8, -700, 700
    n = hi - lo + 1

    def const(name, v):
        return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(np.array(v, dtype=np.float32), name))

    node = helper.make_node
    nodes = [
        const("three", 3.0), const("p3", [[0.3]]), const("half", 0.5), const("q", 0.25), const("one", 1.0),
        const("m7", 0.7123), const("w", np.linspace(-1, 1, n).reshape(1, n)),
        node("Div", ["x", "three"], ["div3"]), node("Max", ["x", "p3"], ["maxc"]),
        node("Sub", ["x", "half"], ["xm"]), node("Relu", ["xm"], ["relu"]),
        node("GreaterOrEqual", ["x", "q"], ["ge"]), node("Cast", ["ge"], ["gef"], to=1), node("Mul", ["gef", "x"], ["gex"]),
        node("Mul", ["x", "m7"], ["x7"]), node("Add", ["x7", "w"], ["x7w"]),
        node("Less", ["x", "w"], ["lt"]), node("Cast", ["lt"], ["ltf"], to=1),
        node("Sub", ["one", "x"], ["omx"]), node("Mul", ["omx", "x"], ["sq"]), node("Mul", ["sq", "m7"], ["sq7"]),
        node("Mul", ["x", "x"], ["xx"]), node("Greater", ["x", "half"], ["gt"]),
        node("Where", ["gt", "x", "x7"], ["w1"]), node("Where", ["lt", "q", "x"], ["w2"]),
        node("Where", ["ge", "gef", "x"], ["w3"]), node("Where", ["ge", "w", "sq7"], ["w4"]),
    ]
    outputs = ["div3", "maxc", "relu", "gex", "x7w", "ltf", "sq7", "xx", "w1", "w2", "w3", "w4"]
    theirs = _vector_witness(tmp_path, nodes, outputs, n, S, (-10, 10), [k / 2**S for k in range(lo, hi + 1)])
    settings = json.loads((tmp_path / "s.json").read_text())
    low = fx.Lowering(settings["run_args"])
    inputs, values = lower_graph(low, onnx.load(str(tmp_path / "m.onnx")))
    assert [v.scale for v in values] == settings["model_output_scales"]
    assert ezkl_signature(tmp_path / "m.onnx", settings["run_args"]) == low.signature
    regs = [None] * len(low.dummy)
    regs[inputs[0].slot] = np.arange(lo, hi + 1, dtype=np.int64)[None, None, :]
    guard = fx.Guard(1, 256**6 - 1, (-10, 10))
    for kernel, ins, out in low.program:
        regs[out] = kernel(guard, *[regs[i] for i in ins])
    assert guard.ok.all()
    for name, v, t in zip(outputs, values, theirs):
        assert np.array_equal(regs[v.slot].ravel(), t), name
