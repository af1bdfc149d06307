"""Misreport search: how much a bidder gains by lying (paper, section 5.3).

The regret of bidder i at a value profile v is ``max_{b in support_i} u_i(b, v_-i) - u_i(v_i, v_-i)``
with the others truthful, where ``u_i = sum_j allocation_ij * v_ij - payment_i``. Every function here
works for any :class:`~zkauction.learn.nets.AuctionNet`: it only calls ``net(bids)``.

Three searches, from cheap to thorough:

- :class:`GradientAttacker` (training): RegretNet-style projected gradient ascent on one misreport per
  training frame and bidder, warm-started from the misreports of the previous visit to that frame.
- :class:`GridAttacker` (training, m <= 2 or with random starts): :class:`GradientAttacker` restarted
  at every visit from the best point of a grid over the bidder's support, so the loss sees the
  regret the evaluation attack will find.
- :class:`MisreportNetAttacker` (training, the paper's section 5.3): a misreport MLP that outputs a
  ratio in [0, 1] of the bidder's value, re-initialised every iteration, trained with early stopping.
- :func:`evaluation_attack` (every reported figure): the truthful point, random points and, for
  m <= 2, a grid (with one zoomed refinement) as starts, then hundreds of projected Adam steps from
  each; the best utility seen anywhere counts. Learned misreport nets underestimate regret: never
  report their figures.

Participation (paper, section 3.1.1): an absent bidder (all-zero row) has zero regret and is never attacked; a
present bidder's misreport stays in its support, so it never becomes all-zero (never "absent").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from zkauction.learn.nets import AuctionNet, mlp, presence


@dataclass(frozen=True)
class AttackConfig:
    """Parameters of :func:`evaluation_attack` (reported beside every regret figure).

    ``lr`` is Adam's initial step in units of the support width (misreports are searched in
    [0, 1]-normalised coordinates); it decays along a cosine to lr/100 over the ``steps``. ``grid`` is the number of points per item of the misreport grid (0: no grid); by
    default 41 for m <= 2 and none above. ``refine`` zooms a second grid (``refine_points`` per item)
    onto +-1 cell around the best grid point, which pins down jumps of discontinuous mechanisms.
    """

    starts: int = 8
    steps: int = 300
    lr: float = 0.01
    grid: int | None = None
    refine: bool = True
    refine_points: int = 11
    batch_size: int = 256

    def grid_points(self, m: int) -> int:
        if self.grid is not None:
            return int(self.grid)
        return 41 if m <= 2 else 0

    def to_dict(self, m: int | None = None) -> dict:
        d = asdict(self)
        if m is not None:
            d["grid"] = self.grid_points(m)
        return d


def _bounds(net: AuctionNet, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, m] search box per bidder and item. A zero lower bound is lifted by a hair so a present
    bidder's misreport can never be the all-zero row (which would make it absent)."""
    device = net.value_scale.device
    lo = net.setting.low.to(device=device, dtype=dtype)
    hi = net.setting.high.to(device=device, dtype=dtype)
    lo = torch.where(lo > 0, lo, 1e-6 * (hi - lo))
    return lo, hi


def utility(
    net: AuctionNet, values: torch.Tensor, bidder: int, misreports: torch.Tensor
) -> torch.Tensor:
    """Utility [B, S] of ``bidder`` reporting ``misreports`` [B, S, m] while the others report
    ``values`` [B, n, m] truthfully. Differentiable in ``misreports`` and in the net's parameters."""
    B, n, m = values.shape
    S = misreports.shape[1]
    onehot = torch.zeros(n, 1, dtype=values.dtype, device=values.device)
    onehot[bidder] = 1.0
    base = values[:, None].expand(B, S, n, m)
    bids = base * (1.0 - onehot) + misreports[:, :, None, :] * onehot
    allocation, payment = net(bids.reshape(B * S, n, m))
    own = values[:, bidder, :][:, None, :].expand(B, S, m).reshape(B * S, m)
    u = (allocation[:, bidder, :] * own).sum(-1) - payment[:, bidder]
    return u.reshape(B, S)


def truthful_utility(net: AuctionNet, values: torch.Tensor) -> torch.Tensor:
    """[B, n] utility of every bidder when all report truthfully."""
    allocation, payment = net(values)
    return (allocation * values).sum(-1) - payment


def _grid(lo: torch.Tensor, hi: torch.Tensor, points: int) -> torch.Tensor:
    """[points^m, m] grid over the box [lo, hi] (lo, hi: [m])."""
    axes = [torch.linspace(float(a), float(b), points, dtype=lo.dtype, device=lo.device) for a, b in zip(lo, hi)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, lo.numel())


@torch.no_grad()
def _grid_search(
    net: AuctionNet,
    values: torch.Tensor,
    bidder: int,
    lo: torch.Tensor,
    hi: torch.Tensor,
    points: int,
    refine_points: int,
    chunk_rows: int = 200_000,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best grid misreport [B, m] and its utility [B] for ``bidder`` (lo, hi: [m])."""
    B, _, m = values.shape
    grid = _grid(lo, hi, points)  # [P, m]
    best_u, best_b = _best_of(net, values, bidder, grid[None].expand(B, -1, -1), chunk_rows)
    if refine_points > 1 and points > 1:
        cell = (hi - lo) / (points - 1)
        offsets = _grid(-cell, cell, refine_points)  # [P, m] around the best point
        cand = torch.minimum(torch.maximum(best_b[:, None, :] + offsets[None], lo), hi)
        u2, b2 = _best_of(net, values, bidder, cand, chunk_rows)
        better = u2 > best_u
        best_u = torch.where(better, u2, best_u)
        best_b = torch.where(better[:, None], b2, best_b)
    return best_b, best_u


def _best_of(
    net: AuctionNet, values: torch.Tensor, bidder: int, cand: torch.Tensor, chunk_rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Over candidates cand [B, P, m]: best utility [B] and the candidate [B, m] that attains it."""
    B, P, m = cand.shape
    per = max(1, chunk_rows // P)
    us, bs = [], []
    for s in range(0, B, per):
        u = utility(net, values[s : s + per], bidder, cand[s : s + per])
        k = u.argmax(dim=1)
        us.append(u.gather(1, k[:, None])[:, 0])
        bs.append(cand[s : s + per][torch.arange(k.numel(), device=k.device), k])
    return torch.cat(us), torch.cat(bs)


def evaluation_attack(
    net: AuctionNet,
    values: torch.Tensor,
    attack: AttackConfig | None = None,
    *,
    seed: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Evaluation-grade regret [B, n] of every bidder at every profile ``values`` [B, n, m].

    For each present bidder: starts = truthful point, ``attack.starts`` uniform random points, and
    (m <= 2) the best point of a grid (refined once); ``attack.steps`` projected Adam steps from each;
    regret = max(0, best utility seen - truthful utility). Absent bidders get exactly 0.
    ``on_progress(k)`` is called after each block of ``attack.batch_size`` profiles and each bidder,
    with k the number of (profile, present bidder) pairs just attacked (for a progress bar).
    """
    attack = attack or AttackConfig()
    values = values.detach()
    B, n, m = values.shape
    dtype = values.dtype
    lo_all, hi_all = _bounds(net, dtype)
    gen = torch.Generator().manual_seed(int(seed))
    present = presence(values).bool()
    regret = torch.zeros(B, n, dtype=dtype, device=values.device)
    was_training = net.training
    net.eval()
    req = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        for s in range(0, B, attack.batch_size):
            v = values[s : s + attack.batch_size]
            with torch.no_grad():
                truth_u = truthful_utility(net, v)
            for i in range(n):
                rows = present[s : s + attack.batch_size, i]
                if not rows.any():
                    continue
                best = _attack_bidder(net, v[rows], i, lo_all[i], hi_all[i], attack, gen, m)
                r = (best - truth_u[rows, i]).clamp_min(0.0)
                block = regret[s : s + attack.batch_size]
                block[rows.nonzero()[:, 0], i] = r
                if on_progress is not None:
                    on_progress(int(rows.sum()))
    finally:
        for p, r in zip(net.parameters(), req):
            p.requires_grad_(r)
        net.train(was_training)
    return regret


def _attack_bidder(
    net: AuctionNet,
    values: torch.Tensor,
    bidder: int,
    lo: torch.Tensor,
    hi: torch.Tensor,
    attack: AttackConfig,
    gen: torch.Generator,
    m: int,
) -> torch.Tensor:
    """Best utility [B] found for ``bidder`` (present in every row of ``values``)."""
    B = values.shape[0]
    width = hi - lo
    starts = [((values[:, bidder, :] - lo) / width).clamp(0, 1)[:, None, :]]  # truthful point
    if attack.starts > 0:
        # Drawn on the CPU generator so a GPU run attacks from the same starts as a CPU run.
        starts.append(torch.rand(B, attack.starts, m, generator=gen, dtype=values.dtype).to(values.device))
    best_u = torch.full((B,), -math.inf, dtype=values.dtype, device=values.device)
    points = attack.grid_points(m)
    if points > 0:
        grid_b, grid_u = _grid_search(net, values, bidder, lo, hi, points, attack.refine_points if attack.refine else 0)
        best_u = torch.maximum(best_u, grid_u)
        starts.append(((grid_b - lo) / width)[:, None, :])
    z = torch.cat(starts, dim=1).clone().requires_grad_(True)  # normalised misreports [B, S, m]
    opt = torch.optim.Adam([z], lr=attack.lr)
    # Cosine decay to lr/100: big steps to travel, small ones to settle on the maximum.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, attack.steps) / max(attack.steps, 1)))
    )
    for step in range(attack.steps + 1):
        u = utility(net, values, bidder, lo + z * width)
        best_u = torch.maximum(best_u, u.detach().max(dim=1).values)
        if step == attack.steps or not u.requires_grad:  # piecewise-constant mechanisms: no gradient
            break
        opt.zero_grad()
        (-u.sum()).backward()
        if step == 0 and not z.grad.any():
            # Zero gradient at every start (a piecewise-constant utility: item-wise Myerson, an AMA's
            # argmax): Adam's steps would all be exactly zero, so no start could ever move.
            break
        opt.step()
        sched.step()
        with torch.no_grad():
            z.clamp_(0.0, 1.0)
    return best_u


# ----------------------------------------------------------------------------------------------
# Training-time attackers. Both return misreports [B, n, m] (row i: bidder i's misreport, used with
# the others truthful); :func:`regret_of` turns them into a differentiable regret.


def regret_of(net: AuctionNet, values: torch.Tensor, misreports: torch.Tensor) -> torch.Tensor:
    """Regret [B, n] of the given misreports (others truthful), differentiable in the net's
    parameters, clamped at 0, zero for absent bidders. One forward pass of B * (n + 1) profiles."""
    B, n, m = values.shape
    eye = torch.eye(n, dtype=values.dtype, device=values.device)[:, :, None]  # [n(who), n, 1]
    # Profile k in 0..n-1: bidder k misreports; profile n: everyone truthful.
    bids = values[:, None] * (1.0 - eye) + misreports[:, :, None, :] * eye  # [B, n, n, m]
    bids = torch.cat([bids, values[:, None]], dim=1).reshape(B * (n + 1), n, m)
    allocation, payment = net(bids)
    allocation = allocation.reshape(B, n + 1, n, m)
    payment = payment.reshape(B, n + 1, n)
    u = (allocation * values[:, None]).sum(-1) - payment  # [B, profile, bidder]
    mis_u = torch.diagonal(u[:, :n, :], dim1=1, dim2=2)  # [B, n]
    regret = (mis_u - u[:, n, :]).clamp_min(0.0)
    return regret * presence(values)


class GradientAttacker:
    """Projected gradient ascent on one misreport per training frame and bidder, warm-started from
    where the previous visit to the frame left it (Duetting et al. 2019). Cheap and strong enough
    for training; not for reporting."""

    def __init__(self, net: AuctionNet, values: torch.Tensor, *, steps: int = 25, lr: float = 0.05, seed: int = 0):
        self.net, self.steps, self.lr = net, int(steps), float(lr)
        lo, hi = _bounds(net, values.dtype)
        self.lo, self.width = lo, hi - lo
        gen = torch.Generator().manual_seed(int(seed))
        # normalised [K, n, m], on the device of the values
        self.z = torch.rand(values.shape, generator=gen, dtype=values.dtype).to(values.device)

    def misreports(self, values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Improve and return the misreports [B, n, m] of frames ``index`` (values: those frames)."""
        z = self.z[index].clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=self.lr)
        params = [p for p in self.net.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            for _ in range(self.steps):
                gain = regret_gain(self.net, values, self.lo + z * self.width)
                if not gain.requires_grad:
                    break
                opt.zero_grad()
                (-gain.sum()).backward()
                opt.step()
                with torch.no_grad():
                    z.clamp_(0.0, 1.0)
        finally:
            for p in params:
                p.requires_grad_(True)
        self.z[index] = z.detach()
        return (self.lo + self.z[index] * self.width).detach()


class GridAttacker(GradientAttacker):
    """The training attacker that sees what the evaluation attack sees: at every visit to a frame,
    each bidder's misreport restarts from the best of a grid over its support (``points`` per item,
    m <= 2), ``starts`` fresh random points and the misreport the frame kept from its last visit;
    then ``steps`` projected gradient steps as in :class:`GradientAttacker`. Costs B * n * (points^m
    + starts + 1) forward rows per iteration, without gradients, on top of the gradient steps."""

    def __init__(
        self,
        net: AuctionNet,
        values: torch.Tensor,
        *,
        steps: int = 10,
        lr: float = 0.05,
        seed: int = 0,
        points: int = 11,
        starts: int = 0,
    ):
        super().__init__(net, values, steps=steps, lr=lr, seed=seed)
        m = values.shape[-1]
        if points > 0 and points**m > 10_000:
            raise ValueError(f"a misreport grid of {points} points per item has {points}^{m} points; use starts for m > 2")
        if points <= 0 and starts <= 0:
            raise ValueError("the grid attacker needs grid points or random starts")
        self.points, self.starts = int(points), int(starts)
        self.gen = torch.Generator().manual_seed(int(seed) + 7)
        unit = torch.ones(m, dtype=values.dtype, device=values.device)
        self.grid = _grid(0 * unit, unit, self.points) if points > 0 else None

    @torch.no_grad()
    def _restart(self, values: torch.Tensor, index: torch.Tensor) -> None:
        B, n, m = values.shape
        z = self.z[index]
        present = presence(values) > 0
        for i in range(n):
            rows = present[:, i].nonzero()[:, 0]  # absent bidders have no regret to search
            b = rows.numel()
            if b == 0:
                continue
            cands = [z[rows, i, None, :]]
            if self.grid is not None:
                cands.append(self.grid[None].expand(b, -1, -1))
            if self.starts > 0:
                cands.append(torch.rand(b, self.starts, m, generator=self.gen, dtype=values.dtype).to(values.device))
            cand = torch.cat(cands, dim=1)  # normalised [b, P, m]
            _, best = _best_of(self.net, values[rows], i, self.lo[i] + cand * self.width[i], chunk_rows=400_000)
            z[rows, i, :] = (best - self.lo[i]) / self.width[i]
        self.z[index] = z.clamp(0.0, 1.0)

    def misreports(self, values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        self._restart(values, index)
        return super().misreports(values, index)


def regret_gain(net: AuctionNet, values: torch.Tensor, misreports: torch.Tensor) -> torch.Tensor:
    """Utility [B, n] of each bidder's misreport (others truthful); the truthful utility is a
    constant for the search, so ascending this ascends regret. Absent bidders contribute 0."""
    B, n, m = values.shape
    eye = torch.eye(n, dtype=values.dtype, device=values.device)[:, :, None]
    bids = (values[:, None] * (1.0 - eye) + misreports[:, :, None, :] * eye).reshape(B * n, n, m)
    allocation, payment = net(bids)
    u = (allocation.reshape(B, n, n, m) * values[:, None]).sum(-1) - payment.reshape(B, n, n)
    return torch.diagonal(u, dim1=1, dim2=2) * presence(values)


class MisreportNetAttacker:
    """The paper's attacker (section 5.3): an MLP maps the values to a ratio in [0, 1] per bidder and
    item; misreport = ratio * value (clamped into the support). Re-initialised every iteration,
    trained by Adam for at most ``steps`` steps, stopping once the regret has not improved for
    ``patience`` steps. Paper, 2x2: depth 7, width 100, lr 1e-5, 300 steps, patience 100."""

    def __init__(
        self,
        net: AuctionNet,
        *,
        depth: int = 7,
        width: int = 100,
        lr: float = 1e-5,
        steps: int = 300,
        patience: int = 100,
        activation: str = "tanh",
        seed: int = 0,
    ):
        self.net = net
        self.depth, self.width, self.lr, self.steps, self.patience = depth, width, lr, steps, patience
        self.activation = activation
        self.gen = torch.Generator().manual_seed(int(seed))
        lo, hi = _bounds(net, torch.float32)
        self.lo, self.hi = lo, hi

    def _fresh(self) -> nn.Module:
        n, m = self.net.setting.n, self.net.setting.m
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self.gen)))
            return mlp(n * m, n * m, self.depth, self.width, self.activation).to(self.net.value_scale.device)

    def misreports(self, values: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        B, n, m = values.shape
        model = self._fresh()
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        scale = self.net.value_scale

        def mis() -> torch.Tensor:
            ratio = torch.sigmoid(model((values / scale).reshape(B, n * m))).reshape(B, n, m)
            return torch.minimum(torch.maximum(ratio * values, self.lo), self.hi)

        params = [p for p in self.net.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        best, best_mis, since = -math.inf, mis().detach(), 0
        try:
            for _ in range(self.steps):
                b = mis()
                gain = regret_gain(self.net, values, b).sum(-1).mean()
                if gain.item() > best + 1e-9:
                    best, best_mis, since = gain.item(), b.detach(), 0
                else:
                    since += 1
                    if since >= self.patience:
                        break
                opt.zero_grad()
                (-gain).backward()
                opt.step()
        finally:
            for p in params:
                p.requires_grad_(True)
        return best_mis
