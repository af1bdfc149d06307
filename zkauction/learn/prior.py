"""A regret net over a truthful prior (:class:`PriorRegretNet`, kind ``regret_prior``): the paper's
heads as residuals over an affine maximizer's entropic relaxation, so the untrained net is the prior,
with zero regret. Its own module because it loads the prior through :mod:`zkauction.learn.checkpoint`,
which itself builds nets from :mod:`zkauction.learn.nets`."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zkauction.learn.checkpoint import build_net, load_auction, net_description
from zkauction.learn.nets import RegretNet, presence, register_net
from zkauction.learn.setting import AuctionSetting, ParticipationModel


@register_net("regret_prior")
class PriorRegretNet(RegretNet):
    """A :class:`RegretNet` whose heads start from a truthful *prior* auction: the prior's smooth
    outputs, written in the net's own parametrisation (item-sale logit, bidder-softmax logits,
    payment-fraction logit), plus the MLPs' outputs as residuals. The MLPs' last layers start at
    zero, so the untrained net *is* the prior (for an affine maximizer: its entropic relaxation at
    ``prior_temperature``, itself truthful and IR); training with the regret loss then moves away
    from it only where that pays. The prior is frozen and stored inside the net's weights.

    ``prior`` is a trained folder (e.g. ``"trained/ama_2x2_uniform"``) when built from a config, and
    the prior's description (kind, setting, hyper-parameters) once saved in a checkpoint.
    """

    EPS = 1e-6

    def __init__(
        self,
        setting: AuctionSetting,
        participation: ParticipationModel | None = None,
        depth: int = 3,
        width: int = 100,
        activation: str = "tanh",
        prior: str | dict[str, Any] = "",
        prior_temperature: float = 0.05,
    ):
        super().__init__(setting, participation, depth, width, activation)
        if isinstance(prior, dict):
            net = build_net(prior)  # weights arrive with this net's state dict
        elif prior:
            net = load_auction(prior)
        else:
            raise ValueError("kind 'regret_prior' needs prior = a trained auction folder (e.g. an AMA)")
        if net.setting != setting:
            raise ValueError(f"prior {prior if isinstance(prior, str) else prior.get('kind')!r} was built for another setting")
        if not hasattr(net, "temperature"):
            raise ValueError(f"the prior must have a smooth relaxation (an AMA); got kind {net.kind!r}")
        if prior_temperature <= 0:
            raise ValueError(f"prior_temperature must be positive, got {prior_temperature}")
        self.prior = net
        self.prior_description = net_description(net)
        self.prior_temperature = float(prior_temperature)
        self.prior.temperature = self.prior_temperature
        self.prior.train(True)  # always its smooth relaxation
        for p in self.prior.parameters():
            p.requires_grad_(False)
        for head in (self.allocation_mlp[-1], self.payment_mlp[-1]):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "prior": self.prior_description, "prior_temperature": self.prior_temperature}

    def train(self, mode: bool = True) -> "PriorRegretNet":
        super().train(mode)
        self.prior.train(True)  # always the smooth relaxation
        return self

    def forward(self, bids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = bids.shape[0]
        n, m, eps = self.setting.n, self.setting.m, self.EPS
        present = presence(bids)
        a0, p0 = self.prior(bids)  # [B, n, m], [B, n]: the prior's relaxation (see train())
        sold0 = a0.sum(dim=1).clamp(eps, 1 - eps)  # [B, m]
        share0 = (a0 / sold0[:, None, :]).clamp_min(eps)
        ghost0 = torch.full_like(share0[:, :1, :], eps)
        value0 = (a0 * bids).sum(dim=-1)
        frac0 = torch.where(value0 > eps, p0 / value0.clamp_min(eps), torch.full_like(p0, 0.5)).clamp(eps, 1 - eps)
        x = (bids / self.value_scale).reshape(B, n * m)
        out = self.allocation_mlp(x)
        return self._heads(
            bids,
            present,
            torch.logit(sold0) + out[:, :m],
            torch.log(torch.cat([share0, ghost0], dim=1)) + out[:, m:].reshape(B, n + 1, m),
            torch.logit(frac0) + self.payment_mlp(x),
        )
