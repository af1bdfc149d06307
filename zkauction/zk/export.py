"""ONNX export of any :class:`~zkauction.learn.nets.AuctionNet` for ezkl (docs/design.md, "ONNX and
circuit contract").

The exported graph has one input per bidder, ``bidder_0`` ... ``bidder_{n-1}``, each ``[1, m + 1]``:
the bidder's m bids, then one salt slot. ezkl hashes each input (input_visibility "hashed"), so the
public instance of bidder i is the Poseidon hash of its bids and salt, i.e. its commitment. The graph
slices the salt off; it never reaches the arithmetic. Outputs: ``allocation [1, n, m]`` and
``payment [1, n]``.

Public API: :func:`export_onnx`, :class:`PerBidderInputs`, :func:`input_names`, :data:`OUTPUT_NAMES`,
:func:`onnx_forward` (ONNX Runtime, for checks).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from zkauction.errors import ZkAuctionError
from zkauction.learn.nets import AuctionNet

OUTPUT_NAMES = ("allocation", "payment")
OPSET = 17


class ExportError(ZkAuctionError, RuntimeError):
    """The net could not be exported to an ONNX graph that honours the circuit contract."""


def input_names(n: int) -> list[str]:
    return [f"bidder_{i}" for i in range(n)]


class PerBidderInputs(nn.Module):
    """Wraps an AuctionNet: n inputs ``[1, m + 1]`` (bids and salt slot) -> (allocation, payment).

    Each bid is clamped into [0, top of its support] before the net: ezkl does not range-check the
    inputs (the salt slot is a full field element) and nobody but the auctioneer sees a bid in zk
    mode, so a shill committed to a bid above the support (or a negative field element) would
    otherwise move the outcome beyond any bid it may make. Every bid an honest run puts in an
    outcome is inside its support, where the clamp changes nothing."""

    def __init__(self, net: AuctionNet):
        super().__init__()
        self.net = net
        self.m = net.setting.m
        top = [[float(hi) for _, hi in row] for row in net.setting.support]
        self.register_buffer("top", torch.tensor(top, dtype=torch.float32))  # [n, m]

    def forward(self, *bidders: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The salt (last column) is dropped here: only the commitment binds it.
        bids = torch.stack([b[:, : self.m] for b in bidders], dim=1)  # [1, n, m]
        bids = torch.relu(bids) - torch.relu(bids - self.top)  # min(max(b, 0), top), exact on the grid
        return self.net(bids)


def export_onnx(net: AuctionNet, path: str | Path) -> Path:
    """Export ``net`` (any AuctionNet, in eval mode) to ``path`` with the contract's names and shapes.

    Uses the TorchScript exporter at opset 17, which ezkl 23 reads; checks the graph with onnx and
    that ONNX Runtime reproduces the PyTorch forward pass on random bids.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n, m = net.setting.n, net.setting.m
    was_training = net.training
    net.eval()
    wrapper = PerBidderInputs(net).eval()
    gen = torch.Generator().manual_seed(0)
    sample = net.setting.sample_values(1, generator=gen)  # [1, n, m]
    example = tuple(torch.cat([sample[:, i, :], torch.zeros(1, 1)], dim=1) for i in range(n))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                example,
                str(path),
                input_names=input_names(n),
                output_names=list(OUTPUT_NAMES),
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as e:  # the exporter raises many types for unsupported ops
        raise ExportError(f"cannot export {net.kind!r} net to ONNX: {e}") from e
    finally:
        net.train(was_training)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    got = [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim]) for i in model.graph.input]
    want = [(name, [1, m + 1]) for name in input_names(n)]
    if got != want:
        raise ExportError(f"exported inputs {got} do not match the contract {want}")
    # The exported graph must compute what the net computes.
    bids = net.setting.sample_values(16, generator=gen)
    with torch.no_grad():
        ref = net.eval()(bids)
    net.train(was_training)
    for k in range(bids.shape[0]):
        alloc, pay = onnx_forward(path, bids[k].numpy())
        if not (np.allclose(alloc, ref[0][k].numpy(), atol=1e-5) and np.allclose(pay, ref[1][k].numpy(), atol=1e-5)):
            raise ExportError(f"{path}: ONNX Runtime output differs from the PyTorch net")
    return path


def onnx_forward(path: str | Path, bids: np.ndarray | Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Run the exported graph on one bid profile ``[n, m]`` with ONNX Runtime (salts set to 0).

    Returns (allocation [n, m], payment [n]).
    """
    import onnxruntime as ort

    bids = np.asarray(bids, dtype=np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {
        name: np.concatenate([bids[i][None, :], np.zeros((1, 1), np.float32)], axis=1)
        for i, name in enumerate(input_names(bids.shape[0]))
    }
    alloc, pay = sess.run(list(OUTPUT_NAMES), feeds)
    return alloc[0], pay[0]
