"""zkauction: credible, sealed-bid, revenue-optimal repeated auctions.

Three sub-packages follow the paper's three parts, each using only those below it:

- :mod:`zkauction.learn`: learned auctions (regret nets, affine maximizers) under stationary
  participation, their training, evaluation and baselines (PyTorch);
- :mod:`zkauction.zk`: ONNX export, Poseidon commitments, ezkl circuits, proof bundles;
- :mod:`zkauction.protocol`: the repeated-auction protocol (Algorithm 1) over a signed log, its
  roles, the audit and the credibility penalty;

and :mod:`zkauction.cli` on top. The names below are re-exported lazily: importing ``zkauction``
(or the verification path under it) never imports torch; touching ``zkauction.load_auction`` does.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_auction": "zkauction.learn.checkpoint",
    "AuctionNet": "zkauction.learn.nets",
    "RegretNet": "zkauction.learn.nets",
    "AuctionSetting": "zkauction.learn.setting",
    "ParticipationModel": "zkauction.learn.setting",
    "SettingError": "zkauction.learn.setting",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zkauction' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
