"""Training an affine maximizer: gradient ascent on the softmax-relaxed revenue (the menu, the
bidder weights and boosts), annealing the temperature, keeping the best hard-argmax net on held-out
profiles; resumable, with the same checkpoint files as every trained net."""

from __future__ import annotations
import copy
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any
import torch
from zkauction.errors import ZkAuctionError
from zkauction.learn.checkpoint import (
    LOG_FILE,
    METRICS_FILE,
    STATE_FILE,
    CheckpointError,
    DeferredInterrupt,
    TrainingInterrupted,
    interrupted_message,
    machine_description,
    save_checkpoint,
    truncate_log,
    write_metrics,
)
from zkauction.learn.config import ConfigError, ExperimentConfig
from zkauction.learn.data import sample_tweaked
from zkauction.learn.nets import AuctionNet

from zkauction.learn.ama import AffineMaximizerAuction

TRAIN_STATE_FILE = STATE_FILE

# -- training ---------------------------------------------------------------------------------------

TRAIN_DEFAULTS: dict[str, Any] = {
    "steps": 2000,
    "batch_size": 2048,
    "lr": 0.01,
    "lr_end": 0.0005,  # Adam's step size decays geometrically from lr to lr_end
    "temperature_start": 0.05,
    "temperature_end": 0.005,
    "seed": 0,
    "eval_every": 100,
    "eval_size": 20000,
    "time_limit_s": 0,  # 0: no limit
    "threads": 0,  # 0: leave torch's setting alone
    "evaluation": {},  # options of zkauction.learn.evaluate.evaluate for metrics.json (n_revenue, n_regret, attack)
    "init": "",  # a trained AMA folder (relative to the config file) whose parameters training starts from
}


def build_ama(config: ExperimentConfig) -> AffineMaximizerAuction:
    hp = {k: v for k, v in config.net.items() if k != "kind"}
    known = {"menu", "menu_size", "learn_weights", "menu_init_scale", "itemwise", "menu_boost_init", "menu_init", "bundle_bonus", "seed",
             "grid_scale", "entry_fee", "fee_init"}
    unknown = sorted(set(hp) - known)
    if unknown:
        raise ConfigError(f"{config.label}: [net] keys {unknown} are not AMA hyper-parameters (known: {sorted(known)})")
    try:
        return AffineMaximizerAuction(config.setting, config.participation, **hp)
    except ZkAuctionError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{config.label}: [net] {e}") from None


def start_from(net: AffineMaximizerAuction, folder: Path, label: str) -> None:
    """Load ``folder``'s trained AMA parameters into ``net`` (``[train] init``): the same setting,
    menu and sizes; an entry fee ``net`` has and the source lacks keeps its ``fee_init``."""
    from zkauction.learn.checkpoint import load_auction

    try:
        src = load_auction(folder)
    except ZkAuctionError as e:
        raise ConfigError(f"{label}: [train] init = {str(folder)!r}: {e}") from None
    if src.kind != "ama" or src.setting.to_dict() != net.setting.to_dict():
        raise ConfigError(f"{label}: [train] init = {str(folder)!r} is not an affine maximizer of this setting")
    try:
        result = net.load_state_dict(src.state_dict(), strict=False)
    except RuntimeError as e:
        raise ConfigError(f"{label}: [train] init = {str(folder)!r} does not fit this net: {str(e).splitlines()[0]}") from None
    if result.unexpected_keys or set(result.missing_keys) - {"fee_slope", "fee_center"}:
        raise ConfigError(f"{label}: [train] init = {str(folder)!r} does not fit this net "
                          f"(missing {result.missing_keys}, unexpected {result.unexpected_keys})")


@torch.no_grad()
def hard_revenue(net: AffineMaximizerAuction, bids: torch.Tensor, chunk: int = 50000) -> tuple[float, float]:
    """Mean and standard error of the hard-argmax revenue sum_i payment_i over ``bids``."""
    was_training = net.training
    net.eval()
    totals = torch.cat([net(bids[s : s + chunk])[1].sum(dim=1) for s in range(0, bids.shape[0], chunk)])
    net.train(was_training)
    t = totals.double()
    return float(t.mean()), float(t.std() / math.sqrt(t.numel()))


def train_ama(
    config: ExperimentConfig,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
    evaluate_at_end: bool = True,
    stop_after: int | None = None,
) -> AffineMaximizerAuction:
    """Train an AMA by gradient ascent on softmax-relaxed revenue; save the best hard-argmax net.

    Same signature and outputs as :func:`zkauction.learn.train.train` (which dispatches here for
    ``kind = "ama"``). Fresh tweaked batches each step (the AMA has few parameters, nothing to
    overfit); the temperature and Adam's step size decay geometrically; every ``eval_every`` steps
    (and before the first) the hard-argmax revenue on a fixed validation sample is measured and the
    best net so far is kept. ``time_limit_s`` ends training early. With ``resume``, training
    continues from ``out/train_state.pt`` (none is an error); ``stop_after`` ends this call after
    that many steps (state saved, no metrics). Ctrl-C stops after the current step, saves the
    state and raises :class:`~zkauction.learn.checkpoint.TrainingInterrupted`. At the end metrics.json gets the evaluation-grade evaluation
    (:func:`zkauction.learn.evaluate.evaluate`, options from ``[train.evaluation]``).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out}: exists and is not a folder (training writes a folder of files)")
    unknown = sorted(set(config.train) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ConfigError(f"{config.label}: [train] keys {unknown} are not AMA training options (known: {sorted(TRAIN_DEFAULTS)})")
    opt = {**TRAIN_DEFAULTS, **config.train}
    if opt["threads"]:
        torch.set_num_threads(int(opt["threads"]))
    net = build_ama(config)
    if opt["init"] and not resume:
        start_from(net, Path(opt["init"]), config.label)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=float(opt["lr"]))
    steps = int(opt["steps"])
    seed = int(opt["seed"])
    validation = sample_tweaked(config.setting, config.participation, int(opt["eval_size"]), seed=seed + 7_000_003).values
    start_step, elapsed0, cpu0 = 0, 0.0, 0.0
    best_revenue, _ = hard_revenue(net, validation)
    best_state, best_step = copy.deepcopy(net.state_dict()), 0
    state_file = out / TRAIN_STATE_FILE
    if resume:
        if not state_file.is_file():
            raise CheckpointError(f"{out}: no {STATE_FILE} to resume from (train without resume to start afresh)")
        state = torch.load(state_file, map_location="cpu", weights_only=False)
        if state.get("config") != config.raw:
            raise ConfigError(f"{out}: cannot resume, the checkpoint was trained with a different config")
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        start_step, elapsed0, cpu0 = state["step"], state["elapsed_s"], state.get("cpu_s", 0.0)
        best_state, best_revenue, best_step = state["best_state"], state["best_revenue"], state["best_step"]
        truncate_log(out / LOG_FILE, "step", start_step)  # a run killed between its log line and its state
    else:
        for stale in (METRICS_FILE, STATE_FILE):
            (out / stale).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_description()  # load average before this run adds to it
    t0, c0 = time.monotonic() - elapsed0, time.process_time() - cpu0
    t_start, t_end = float(opt["temperature_start"]), float(opt["temperature_end"])
    lr0, lr1 = float(opt["lr"]), float(opt["lr_end"])
    end = steps if stop_after is None else min(steps, start_step + int(stop_after))
    step = start_step
    finished = start_step >= steps  # interrupted during the final evaluation: evaluate again

    def save_state() -> None:
        state = {
            "config": config.raw,
            "net": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "elapsed_s": time.monotonic() - t0,
            "cpu_s": time.process_time() - c0,
            "best_state": best_state,
            "best_revenue": best_revenue,
            "best_step": best_step,
        }
        torch.save(state, state_file.with_suffix(".tmp"))
        state_file.with_suffix(".tmp").replace(state_file)

    net.train()
    with open(out / LOG_FILE, "a" if resume else "w") as log, DeferredInterrupt() as interrupt:
        while step < end:
            frac = step / max(1, steps - 1)
            net.temperature = t_start * (t_end / t_start) ** frac
            for group in optimizer.param_groups:
                group["lr"] = lr0 * (lr1 / lr0) ** frac
            batch = sample_tweaked(
                config.setting, config.participation, int(opt["batch_size"]), seed=seed * 1_000_003 + step
            ).values
            _, payment = net(batch)
            revenue = payment.sum(dim=1).mean()
            optimizer.zero_grad()
            (-revenue).backward()
            optimizer.step()
            step += 1
            over_time = bool(opt["time_limit_s"]) and time.monotonic() - t0 > float(opt["time_limit_s"])
            finished = step == steps or over_time
            if step % int(opt["eval_every"]) == 0 or finished or step == end:
                rev, se = hard_revenue(net, validation)
                if rev > best_revenue:
                    best_state, best_revenue, best_step = copy.deepcopy(net.state_dict()), rev, step
                record = {
                    "step": step,
                    "temperature": net.temperature,
                    "lr": optimizer.param_groups[0]["lr"],
                    "soft_revenue": float(revenue.detach()),
                    "hard_revenue": rev,
                    "hard_revenue_se": se,
                    "elapsed_s": round(time.monotonic() - t0, 2),
                }
                log.write(json.dumps(record) + "\n")
                log.flush()
                if progress:
                    print(
                        f"[{config.name}] step {step}/{steps} tau {net.temperature:.4g} "
                        f"soft {record['soft_revenue']:.4f} hard {rev:.4f} (best {best_revenue:.4f} @ {best_step})",
                        file=sys.stderr,
                        flush=True,
                    )
                save_state()
            elif interrupt.requested:
                save_state()
            if interrupt.requested:
                raise TrainingInterrupted(interrupted_message(out, step, steps, "step"))
            if over_time:
                break
    if not finished:
        return net
    wall = time.monotonic() - t0
    net.load_state_dict(best_state)
    net.eval()
    save_checkpoint(net, out, experiment=dict(config.raw))
    metrics: dict[str, Any] = {
        "name": config.name,
        "command": command if command is not None else " ".join(shlex.quote(a) for a in sys.argv),
        "train_wall_seconds": round(wall, 1),
        "train_cpu_seconds": round(time.process_time() - c0, 1),  # this process: the work done on a shared machine
        "machine": machine,
        "iterations": step,
        "torch_threads": torch.get_num_threads(),
        "train_config": {k: v for k, v in opt.items() if k != "evaluation"},
        "best_step": best_step,
        "validation_hard_revenue": best_revenue,
        "stopped_by_time_limit": step < steps,
    }
    if evaluate_at_end:
        metrics.update(evaluate_ama(net, dict(opt["evaluation"])))
    write_metrics(out, metrics)
    state_file.unlink(missing_ok=True)
    return net


def evaluation_options(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The options of a metrics.json ``evaluation`` (profiles, seed, attack): :func:`evaluate_ama`
    with them evaluates another net exactly as that one was."""
    return {key: evaluation[key] for key in ("n_revenue", "n_regret", "seed", "attack")}


def evaluate_ama(net: AuctionNet, evaluation: dict[str, Any]) -> dict[str, Any]:
    """The evaluation-grade evaluation (:func:`zkauction.learn.evaluate.evaluate`) as metrics.json fields."""
    from zkauction.learn.baselines import known_optima
    from zkauction.learn.evaluate import evaluate
    from zkauction.learn.regret import AttackConfig

    options = dict(evaluation)
    attack = AttackConfig(**options.pop("attack", {}))
    t = time.monotonic()
    ev = evaluate(net, attack=attack, optima=known_optima(net.setting, net.participation), **options)
    return {"evaluation": ev.to_dict(), "evaluation_wall_seconds": round(time.monotonic() - t, 1)}
