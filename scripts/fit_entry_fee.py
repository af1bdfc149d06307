"""Add an entry fee to a trained affine maximizer and fit it: ``trained/SRC`` -> ``trained/OUT``.

The fee (``entry_fee = true``, zkauction.learn.ama: AffineMaximizerAuction._with_fee) is
e_i = relu(slope * (center - sum_j max_{k != i} b_kj)): a bidder facing weak competition pays to
take its share of the AMA's outcome, or declines and its items stay unsold. It depends on the
others' bids only, so the auction stays exactly strategy-proof. The AMA's menu, weights and boosts
are kept; (slope, center) are chosen by a grid search on ``--fit`` profiles (seed 1) from the AMA's
utilities and payments, then the new net is evaluated like its source (metrics.json's evaluation
options: profiles, seed, attack) and written with the fit in metrics.json. It also prints the config
lines that train from the source with this fee as the start (``fee_init`` and ``[train] init``, the
source's absolute path: a relative init is read relative to the config file), which is how
``configs/ama_2x5_fee.toml`` was made (``configs/ama_5x10_fee.toml`` trains its fee from scratch).

    .venv/bin/python scripts/fit_entry_fee.py trained/ama_5x10_uniform --out /tmp/fit
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from zkauction.learn.ama import AffineMaximizerAuction, strongest_others
from zkauction.learn.ama_train import evaluate_ama, evaluation_options
from zkauction.learn.checkpoint import load_auction, save_checkpoint, write_metrics


def fit(src: AffineMaximizerAuction, profiles: int, centers: np.ndarray, slopes: np.ndarray) -> tuple[float, float, float]:
    """(slope, center, revenue gain) maximising the sample revenue of the AMA plus the fee."""
    n, m = src.setting.n, src.setting.m
    v = torch.rand(profiles, n, m, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x, p = src.eval()(v)
    u, p, s = ((x * v).sum(-1) - p).numpy(), p.numpy(), strongest_others(v).numpy()
    best = (0.0, 0.0, 0.0)
    for c in centers:
        gap = np.maximum(c - s, 0.0)
        for a in slopes:
            e = a * gap
            gain = float(np.where(u >= e, e, -p).sum(axis=1).mean())
            if gain > best[2]:
                best = (float(a), float(c), gain)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="trained affine maximizer, e.g. trained/ama_5x10_uniform")
    ap.add_argument("--out", type=Path, required=True, help="folder to write, e.g. trained/ama_5x10_fee")
    ap.add_argument("--fit", type=int, default=200_000, help="profiles for the grid search")
    args = ap.parse_args()
    if (args.out / "weights.pt").exists():
        ap.error(f"{args.out} already holds a trained net")
    src = load_auction(args.src)
    if src.kind != "ama":
        ap.error(f"{args.src} is not an affine maximizer (kind {src.kind!r})")
    t = time.monotonic()
    m = src.setting.m
    slope, center, gain = fit(src, args.fit, np.linspace(0.3, 0.9, 61) * m, np.linspace(0.0, 3.0, 61) / m)
    hp = dict(src.hyperparameters(), entry_fee=True, fee_init=[slope, center])
    net = AffineMaximizerAuction(src.setting, src.participation, **hp)
    missing = net.load_state_dict(src.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["fee_center", "fee_slope"], missing
    net.eval()
    fit_seconds = time.monotonic() - t
    source_metrics = json.loads((args.src / "metrics.json").read_text())
    old = source_metrics["evaluation"]
    save_checkpoint(net, args.out)
    metrics = {
        "name": args.out.name,
        "command": f"python scripts/fit_entry_fee.py {args.src} --out {args.out} --fit {args.fit}",
        "source": str(args.src),
        "fee": {"slope": float(net._eval_fee[0]), "center": float(net._eval_fee[1]), "fit_profiles": args.fit,
                "fit_gain": gain, "source_revenue": old["revenue"]},
        "train_wall_seconds": round(fit_seconds + source_metrics.get("train_wall_seconds", 0.0), 1),
        "fit_wall_seconds": round(fit_seconds, 1),
    }
    metrics.update(evaluate_ama(net, evaluation_options(old)))
    write_metrics(args.out, metrics)
    ev = metrics["evaluation"]
    print(f"config lines: [net] entry_fee = true, fee_init = [{round(slope, 6)}, {round(center, 6)}]; [train] init = \"{args.src.resolve()}\"")
    print(f"{args.out}: fee relu({metrics['fee']['slope']:.4f} * ({metrics['fee']['center']:.4f} - sum of the others' "
          f"highest bids)); revenue {old['revenue']:.4f} -> {ev['revenue']:.4f}, regret {ev['regret']:.2e}")


if __name__ == "__main__":
    main()
