"""Auction networks.

:class:`AuctionNet` is the contract every auction in the toolkit honours (ONNX export, proofs,
evaluation and the protocol rely on it): ``net(bids [B, n, m]) -> (allocation [B, n, m], payment [B, n])``; allocations
per item sum to at most 1; payment never exceeds the bidder's allocated value (individual
rationality); a bidder whose bid row is all zero is absent and gets nothing, pays nothing.

:class:`RegretNet` is the paper's architecture (section 5.2, after Rahme et al. 2020): an allocation
MLP with two heads, the probability that each item is sold (sigmoid) times a softmax over present
bidders plus a ghost ("not allocated"), and a payment MLP whose sigmoid output is the fraction of the
bidder's allocated value that it pays.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from zkauction.learn.setting import AuctionSetting, ParticipationModel

# Logit offset that removes an absent bidder from the allocation softmax. Large enough that
# exp(-MASK) underflows in float32, small enough to stay finite in fixed-point circuits.
MASK_LOGIT = 1e4

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}

_NET_KINDS: dict[str, type["AuctionNet"]] = {}
# Modules that define auction kinds; imported on demand by :func:`net_class`.
_NET_MODULES = ("zkauction.learn.nets", "zkauction.learn.prior", "zkauction.learn.baselines", "zkauction.learn.ama")


def register_net(kind: str) -> Callable[[type["AuctionNet"]], type["AuctionNet"]]:
    """Class decorator: make ``kind`` loadable by :func:`zkauction.learn.checkpoint.load_auction`."""

    def deco(cls: type["AuctionNet"]) -> type["AuctionNet"]:
        cls.kind = kind
        _NET_KINDS[kind] = cls
        return cls

    return deco


def net_class(kind: str) -> type["AuctionNet"]:
    # Importing the modules registers their classes; done here to avoid import cycles.
    for module in _NET_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
    if kind not in _NET_KINDS:
        raise ValueError(f"unknown auction kind {kind!r}; known kinds: {sorted(_NET_KINDS)}")
    return _NET_KINDS[kind]


def presence(bids: torch.Tensor) -> torch.Tensor:
    """[B, n] 1.0 where the bidder is present (some non-zero bid), 0.0 where absent (mapping d)."""
    return (bids.abs().sum(dim=-1) > 0).to(bids.dtype)


class AuctionNet(nn.Module):
    """Base class: holds the setting and the participation model, builds from a plain dict."""

    kind: ClassVar[str] = "abstract"

    def __init__(self, setting: AuctionSetting, participation: ParticipationModel | None = None):
        super().__init__()
        self.setting = setting
        self.participation = participation or ParticipationModel.fixed(setting.n)
        if self.participation.n != setting.n:
            raise ValueError(
                f"participation profiles have length {self.participation.n}, the setting has {setting.n} bidders"
            )
        # Inputs are scaled by the support's upper bound so one architecture fits U[0,1] and U[4,16].
        self.register_buffer("value_scale", setting.high.clone(), persistent=False)

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments beyond setting and participation (saved in config.json)."""
        return {}

    @classmethod
    def from_hyperparameters(
        cls, setting: AuctionSetting, participation: ParticipationModel, hp: dict[str, Any]
    ) -> "AuctionNet":
        return cls(setting, participation, **hp)

    def forward(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError


def mlp(d_in: int, d_out: int, depth: int, width: int, activation: str) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units, then a linear output layer."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    if any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in (depth, width)):
        raise ValueError(f"depth and width must be positive integers, got depth={depth!r}, width={width!r}")
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), ACTIVATIONS[activation]()]
        d = width
    layers.append(nn.Linear(d, d_out))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


@register_net("regret")
class RegretNet(AuctionNet):
    """The paper's allocation x payment network (section 5.2)."""

    def __init__(
        self,
        setting: AuctionSetting,
        participation: ParticipationModel | None = None,
        depth: int = 7,
        width: int = 100,
        activation: str = "tanh",
    ):
        super().__init__(setting, participation)
        n, m = setting.n, setting.m
        self.depth, self.width, self.activation = depth, width, activation
        # Per net, so an export can lower it for the circuit without touching other nets.
        self.mask_logit = MASK_LOGIT
        # One allocation MLP, two heads: m item-sale logits, (n + 1) * m bidder-softmax logits.
        self.allocation_mlp = mlp(n * m, m + (n + 1) * m, depth, width, activation)
        self.payment_mlp = mlp(n * m, n, depth, width, activation)

    def hyperparameters(self) -> dict[str, Any]:
        return {"depth": self.depth, "width": self.width, "activation": self.activation}

    def forward(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = bids.shape[0]
        n, m = self.setting.n, self.setting.m
        present = presence(bids)  # [B, n]
        x = (bids / self.value_scale).reshape(B, n * m)
        out = self.allocation_mlp(x)
        return self._heads(bids, present, out[:, :m], out[:, m:].reshape(B, n + 1, m), self.payment_mlp(x))

    def _heads(
        self, bids: torch.Tensor, present: torch.Tensor, sold_logits: torch.Tensor, logits: torch.Tensor,
        fraction_logits: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Allocation and payment from the heads' logits: item sold [B, m], bidders + ghost
        [B, n+1, m], payment fraction [B, n]."""
        B, n = present.shape
        sold = torch.sigmoid(sold_logits)  # [B, m]: probability each item is allocated at all
        # Absent bidders leave the softmax; the ghost (last row) is always there.
        ghost = torch.ones(B, 1, device=bids.device, dtype=bids.dtype)
        keep = torch.cat([present, ghost], dim=1)[:, :, None]
        logits = logits - (1.0 - keep) * self.mask_logit
        share = torch.softmax(logits, dim=1)[:, :n, :]  # [B, n, m]
        allocation = sold[:, None, :] * share * present[:, :, None]
        fraction = torch.sigmoid(fraction_logits)  # [B, n]
        payment = fraction * (allocation * bids).sum(dim=-1)
        return allocation, payment
