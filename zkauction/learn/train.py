"""Training (paper, section 5.4): maximise revenue on the tweaked dataset while an attacker keeps the
regret honest.

Loss, per minibatch: ``-(sqrt(rev) - sqrt_regret_weight * sqrt(rgt)) + regret_weight * rgt`` with
rev the mean total payment and rgt the mean total regret (sum over bidders) of the attacker's
misreports; both weights default to 1, which is the paper's loss with its sign corrected (the paper
prints ``- rgt``; the term is meant to favour low regret, so the sign is a typo: docs/reference.md).
At a stationary point the net trades revenue for regret at the rate drev/drgt = sqrt(rev) *
(sqrt_regret_weight / sqrt(rgt) + 2 regret_weight): a ``sqrt_regret_weight`` below 1 accepts more
regret for more revenue, a large ``regret_weight`` pushes regret down.

Schedule: a list of phases, each ``{iterations, lr, regret_weight, sqrt_regret_weight,
misreport_steps}`` (fields left
out keep the previous phase's value). The default is the paper's: the run split in three equal
phases at lr 5e-4, 5e-5, 5e-6. A last phase with a large ``regret_weight`` and more misreport steps
is how the shipped nets push regret down before the evaluation-grade attack sees them.

The ``[train]`` table of an experiment config (all optional; defaults in :class:`TrainConfig`)::

    seed = 0
    dataset_size = 20000          # K, the tweaked dataset (section 5.1)
    batch_size = 512
    iterations = 3000             # used when `phases` is absent: split in thirds at 5e-4/5e-5/5e-6
    regret_weight = 1.0
    sqrt_regret_weight = 1.0
    attacker = "gradient"         # "grid" (restarts from a misreport grid) or "network" (paper, 5.3)
    misreport_steps = 25          # gradient/grid: Adam steps per iteration, warm-started per frame
    misreport_grid = 11           # grid: points per item (points^m must stay <= 10,000; 0 = none)
    misreport_starts = 0          # grid: fresh random starts per visit (for m > 2)
    misreport_lr = 0.05           # gradient: in units of the support width; network: Adam lr
    misreport_depth = 7           # network attacker only
    misreport_width = 100
    misreport_patience = 100
    log_every = 50
    checkpoint_every = 500
    threads = 1                   # torch threads (the CPU is shared)
    init = ""                     # optional: start from this trained folder's weights (same net), relative to the config file
    teacher = ""                  # optional warm start: a trained folder or a baseline name
    distill_iterations = 0        # ... imitated (MSE on allocation and payment) before the phases
    distill_lr = 1e-3             # decays along a cosine to 1/100 of this
    teacher_temperature = 0.0     # > 0: an AMA teacher's entropic relaxation (smooth, still truthful)
    phases = [ {iterations = 2000, lr = 1e-3}, {iterations = 500, lr = 1e-4, regret_weight = 50} ]
    [train.evaluation]            # the evaluation written to metrics.json at the end
    n_revenue = 100000
    n_regret = 1000

Outputs in ``out``: config.json and weights.pt (:mod:`zkauction.learn.checkpoint`), train_log.jsonl (one
line per ``log_every`` iterations), train_state.pt (optimizer, attacker and RNG state, for
``resume=True``; not meant to be committed) and, at the end, metrics.json.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

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
from zkauction.learn.nets import AuctionNet, net_class
from zkauction.learn.regret import AttackConfig, GradientAttacker, GridAttacker, MisreportNetAttacker, regret_of

from zkauction.learn.train_config import PAPER_LRS, Phase, TrainConfig  # noqa: F401  (re-exported)


def loss_fn(
    revenue: torch.Tensor, regret: torch.Tensor, regret_weight: float, sqrt_regret_weight: float = 1.0
) -> torch.Tensor:
    """-(sqrt(rev) - a sqrt(rgt)) + w rgt; a = w = 1 is the paper's loss with its sign corrected."""
    root = torch.sqrt(revenue.clamp_min(1e-12)) - sqrt_regret_weight * torch.sqrt(regret + 1e-10)
    return -root + regret_weight * regret


def build_net(config: ExperimentConfig) -> AuctionNet:
    hp = dict(config.net)
    kind = hp.pop("kind", "regret")
    try:
        cls = net_class(kind)
        return cls.from_hyperparameters(config.setting, config.participation, hp)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{config.label}: [net] {e}") from None


def train(
    config: ExperimentConfig,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
    evaluate_at_end: bool = True,
    stop_after: int | None = None,
    device: str | torch.device = "cpu",
) -> AuctionNet:
    """Train the net of ``config`` and write ``out`` (see the module docstring). Returns the net
    (on the CPU).

    With ``resume=True``, continue from ``out``'s train_state.pt where it stopped (same config; no
    saved state is an error); the log keeps exactly one line per logged iteration. Without it, a
    fresh run replaces ``out``'s log and metrics. ``stop_after`` ends this call after that many
    iterations (state saved, no metrics): a time-boxed run that a later ``resume=True`` call
    finishes. Ctrl-C stops after the current iteration, saves the state and raises
    :class:`~zkauction.learn.checkpoint.TrainingInterrupted`. ``device`` ("cpu", "cuda", "cuda:1")
    is where the net, the data and the attacker live; checkpoints are written with CPU tensors, so
    a net trained on a GPU loads anywhere."""
    device = torch.device(device)
    check_training_folder(Path(out), resume)
    if config.net.get("kind") == "ama":  # strategy-proof by construction: no attacker (zkauction/ama.py)
        from zkauction.learn.ama_train import train_ama

        if device.type != "cpu":
            raise ConfigError(f"{config.label}: affine maximizers train on the CPU (got device {str(device)!r})")
        return train_ama(config, out, resume=resume, progress=progress, command=command,
                         evaluate_at_end=evaluate_at_end, stop_after=stop_after)
    out = Path(out)
    tc = TrainConfig.from_dict(config.train, config.source)
    schedule = tc.schedule()
    total = sum(p.iterations for p in schedule)
    torch.set_num_threads(int(tc.threads))
    torch.manual_seed(tc.seed)
    net = build_net(config).to(device)
    data = sample_tweaked(config.setting, config.participation, tc.dataset_size, tc.seed)
    values = data.values.to(device)
    K = len(values)
    distill_log: list[dict[str, Any]] = []
    machine = machine_description(device)  # load average before this run adds to it
    t0, c0 = time.monotonic(), time.process_time()  # the clock covers the warm start too
    if tc.init:
        from zkauction.learn.checkpoint import load_auction

        try:
            net.load_state_dict(load_auction(tc.init).state_dict())
        except RuntimeError as e:
            raise ConfigError(f"{config.label}: [train] init {tc.init!r}: weights do not fit the [net] of this config: {e}") from None
    if tc.teacher and tc.distill_iterations > 0 and not (resume and (out / STATE_FILE).is_file()):
        distill_log = distill(net, _teacher(tc.teacher, config, tc.teacher_temperature).to(device), values, tc)
    opt = torch.optim.Adam(net.parameters(), lr=schedule[0].lr)
    gen = torch.Generator().manual_seed(tc.seed + 1)
    if tc.attacker == "gradient":
        attacker: Any = GradientAttacker(net, values, steps=tc.misreport_steps, lr=tc.misreport_lr, seed=tc.seed + 2)
    elif tc.attacker == "grid":
        try:
            attacker = GridAttacker(
                net, values, steps=tc.misreport_steps, lr=tc.misreport_lr, seed=tc.seed + 2,
                points=tc.misreport_grid, starts=tc.misreport_starts,
            )
        except ValueError as e:
            raise ConfigError(f"{config.label}: [train] attacker 'grid': {e}") from None
    else:
        attacker = MisreportNetAttacker(
            net,
            depth=tc.misreport_depth,
            width=tc.misreport_width,
            lr=tc.misreport_lr,
            steps=tc.misreport_steps,
            patience=tc.misreport_patience,
            seed=tc.seed + 2,
        )
    start, elapsed_before, cpu_before, perm, pos = 0, 0.0, 0.0, torch.randperm(K, generator=gen), 0
    state_file = out / STATE_FILE
    acc = {"rev": 0.0, "rgt": 0.0, "loss": 0.0, "k": 0}  # sums over the iterations since the last log line
    if resume:
        st = torch.load(state_file, map_location="cpu", weights_only=False)
        if st.get("config") != config.raw:
            raise ConfigError(f"{out}: cannot resume, the checkpoint was trained with a different config")
        net.load_state_dict(st["net"])
        opt.load_state_dict(st["optimizer"])
        gen.set_state(st["generator"])
        torch.set_rng_state(st["torch_rng"])
        if isinstance(attacker, GradientAttacker):
            attacker.z = st["attacker_z"].to(device)
        if isinstance(attacker, GridAttacker) and st.get("attacker_gen") is not None:
            attacker.gen.set_state(st["attacker_gen"])
        start, elapsed_before, perm, pos = st["iteration"], st["elapsed"], st["perm"], st["pos"]
        cpu_before = st.get("cpu", 0.0)
        acc = st.get("log_accumulator", acc)
        # Lines logged after the saved state (a run killed between checkpoints) are logged again.
        truncate_log(out / LOG_FILE, "iteration", start)
    else:
        for stale in (LOG_FILE, METRICS_FILE, STATE_FILE):  # a fresh run starts a fresh log
            (out / stale).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    if distill_log:
        with open(out / LOG_FILE, "a") as log:
            log.writelines(json.dumps(line) + "\n" for line in distill_log)
    experiment = dict(config.raw)

    def save_state(it: int, elapsed: float) -> None:
        save_checkpoint(net, out, experiment=experiment)
        st = {
            "config": config.raw,
            "net": net.state_dict(),
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "attacker_z": getattr(attacker, "z", None),
            "attacker_gen": attacker.gen.get_state() if isinstance(attacker, GridAttacker) else None,
            "iteration": it,
            "elapsed": elapsed,
            "cpu": cpu_before + time.process_time() - c0,
            "perm": perm,
            "pos": pos,
            "log_accumulator": dict(acc),
        }
        tmp = state_file.with_suffix(".tmp")
        torch.save(st, tmp)
        tmp.replace(state_file)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, desc=config.name, unit="it", dynamic_ncols=True)
    net.train()
    it = start
    end = total if stop_after is None else min(total, start + int(stop_after))
    with open(out / LOG_FILE, "a") as log, DeferredInterrupt() as interrupt:
        while it < end:
            phase = _phase_at(schedule, it)
            for group in opt.param_groups:
                group["lr"] = phase.lr
            if isinstance(attacker, GradientAttacker):
                attacker.steps = phase.misreport_steps
            if pos + tc.batch_size > K:
                perm, pos = torch.randperm(K, generator=gen), 0
            index = perm[pos : pos + tc.batch_size].to(device)
            pos += tc.batch_size
            batch = values[index]
            misreports = attacker.misreports(batch, index)
            _, payment = net(batch)
            revenue = payment.sum(-1).mean()
            regret = regret_of(net, batch, misreports).sum(-1).mean()
            loss = loss_fn(revenue, regret, phase.regret_weight, phase.sqrt_regret_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            it += 1
            acc["rev"] += revenue.item()
            acc["rgt"] += regret.item()
            acc["loss"] += loss.item()
            acc["k"] += 1
            if bar is not None:
                bar.update(1)
                if it % 10 == 0:
                    bar.set_postfix(rev=f"{revenue.item():.4f}", rgt=f"{regret.item():.2e}", lr=f"{phase.lr:.0e}")
            if it % tc.log_every == 0 or it == total:
                k = acc["k"]
                line = {
                    "iteration": it,
                    "lr": phase.lr,
                    "regret_weight": phase.regret_weight,
                    "sqrt_regret_weight": phase.sqrt_regret_weight,
                    "revenue": acc["rev"] / k,
                    "regret": acc["rgt"] / k,
                    "loss": acc["loss"] / k,
                    "elapsed_s": round(elapsed_before + time.monotonic() - t0, 2),
                }
                log.write(json.dumps(line) + "\n")
                log.flush()
                acc = {"rev": 0.0, "rgt": 0.0, "loss": 0.0, "k": 0}
            if it % tc.checkpoint_every == 0 or it == end or interrupt.requested:
                save_state(it, elapsed_before + time.monotonic() - t0)
            if interrupt.requested:
                if bar is not None:
                    bar.close()
                raise TrainingInterrupted(interrupted_message(out, it, total))
    if bar is not None:
        bar.close()
    if it < total:
        return net.cpu()
    train_seconds = elapsed_before + time.monotonic() - t0
    cpu_seconds = cpu_before + time.process_time() - c0
    save_checkpoint(net, out, experiment=experiment)
    net.eval()
    metrics: dict[str, Any] = {
        "name": config.name,
        "command": command if command is not None else " ".join(sys.argv),
        "train_wall_seconds": round(train_seconds, 1),
        # CPU time of this process: on a shared machine the honest measure of the work done.
        "train_cpu_seconds": round(cpu_seconds, 1),
        "iterations": total,
        "torch_threads": int(tc.threads),
        "machine": machine,
        "train_config": {k: v for k, v in asdict(tc).items()},
    }
    if evaluate_at_end:
        from zkauction.learn.baselines import known_optima
        from zkauction.learn.evaluate import evaluate

        ev_cfg = dict(tc.evaluation)
        attack = AttackConfig(**ev_cfg.pop("attack", {}))
        t1 = time.monotonic()
        ev = evaluate(net, attack=attack, optima=known_optima(config.setting, config.participation), **ev_cfg)
        metrics["evaluation"] = ev.to_dict()
        metrics["evaluation_wall_seconds"] = round(time.monotonic() - t1, 1)
    write_metrics(out, metrics)
    return net.cpu()


def check_training_folder(out: Path, resume: bool) -> None:
    """``out`` must be a folder (or not exist yet); with ``resume`` it must hold a saved state."""
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out}: exists and is not a folder (training writes a folder of files)")
    if resume and not (out / STATE_FILE).is_file():
        raise CheckpointError(f"{out}: no {STATE_FILE} to resume from (train without resume to start afresh)")


def _teacher(spec: str, config: ExperimentConfig, temperature: float = 0.0) -> AuctionNet:
    from zkauction.learn.baselines import make_baseline
    from zkauction.learn.checkpoint import load_auction

    if Path(spec).is_dir():
        teacher = load_auction(spec)
    else:
        try:
            teacher = make_baseline(spec, config.setting, config.participation)
        except ValueError:
            raise ConfigError(f"{config.label}: [train] teacher {spec!r}: neither a trained folder nor a baseline name") from None
    if teacher.setting != config.setting:
        raise ConfigError(f"{config.label}: [train] teacher {spec!r} was built for a different setting")
    if temperature > 0:
        # An affine maximizer's training mode is its entropic relaxation at `temperature`: a smooth
        # mechanism that is itself truthful and IR (zkauction/ama.py), so a smooth net can fit it.
        if not hasattr(teacher, "temperature"):
            raise ConfigError(f"{config.label}: [train] teacher_temperature needs an AMA teacher, {spec!r} is {teacher.kind!r}")
        teacher.temperature = float(temperature)
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher.train()
    return teacher.eval()


def distill(net: AuctionNet, teacher: AuctionNet, values: torch.Tensor, tc: TrainConfig) -> list[dict[str, Any]]:
    """Warm start: fit ``net`` to ``teacher``'s allocation and payment (mean squared error, payments
    in units of the largest value) on the tweaked data. Returns the log lines."""
    opt = torch.optim.Adam(net.parameters(), lr=tc.distill_lr)
    total = tc.distill_iterations
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t / total)))
    gen = torch.Generator().manual_seed(tc.seed + 3)
    scale = float(net.setting.max_value)
    log, t0 = [], time.monotonic()
    for it in range(1, tc.distill_iterations + 1):
        batch = values[torch.randint(0, len(values), (tc.batch_size,), generator=gen)]
        with torch.no_grad():
            a_t, p_t = teacher(batch)
        a, p = net(batch)
        loss = ((a - a_t) ** 2).mean() + (((p - p_t) / scale) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % tc.log_every == 0 or it == tc.distill_iterations:
            log.append({"distill_iteration": it, "mse": loss.item(), "elapsed_s": round(time.monotonic() - t0, 2)})
    return log


def _phase_at(schedule: list[Phase], it: int) -> Phase:
    for p in schedule:
        if it < p.iterations:
            return p
        it -= p.iterations
    return schedule[-1]
