"""Hyper-parameter sweeps on Ray: train one config over a grid of overrides and seeds, keep every
run's metrics, pick the best by a held-out evaluation.

``zkauction sweep CONFIG --seeds 8 --set menu_size=64,128,256`` (or :func:`sweep`) trains every
combination of the ``--set`` values times ``seeds`` seeds as Ray tasks, one CPU (and one torch
thread) each. Without an address Ray starts on this machine; with one (``ray://host:10001`` or
``host:6379``, or ``auto``) the tasks run on that cluster. A task trains in a temporary folder of the
machine it runs on and sends the run's files back (config, weights, train log, metrics: kilobytes
to a few megabytes), so the cluster needs no shared file system; the driver writes them under
``OUT/runs/NAME/``.

Each run is then scored on a *held-out* sample, seeded apart from the training batches, the
training's validation sample and the final evaluation (``HOLDOUT_SEED``): revenue on
``holdout_revenue`` profiles and regret from the evaluation attack of the config's
``[train.evaluation.attack]`` on ``holdout_regret`` of them, per participation profile. The best
score wins (for an affine maximizer, regret 0, the best revenue). ``OUT/sweep.json`` lists every
run (its overrides, seed, training time, validation and held-out figures) and is rewritten as each
run finishes, so an interrupted sweep keeps what it measured. ``OUT/best/`` is a copy of the winning
run, with the config's full evaluation (``[train.evaluation]``) in its metrics.json: a trained
folder like any other (``zkauction evaluate OUT/best``).

Ray is an optional dependency (``pip install 'zkauction[sweep]'``), imported only here and only
when a sweep runs.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from zkauction.errors import ZkAuctionError
from zkauction.learn.config import ConfigError, config_from_dict, read_config_dict

# Far from the seeds training uses (seed * 1_000_003 + step, seed + 7_000_003) and from the
# evaluation's default 12345, so the selection is made on profiles no run has seen.
HOLDOUT_SEED = 424_242
# Tables a bare --set key is looked up in, in this order.
TABLES = ("net", "train", "setting", "participation")
SWEEP_FILE = "sweep.json"
RUN_FILES = ("config.json", "weights.pt", "train_log.jsonl", "metrics.json")


class SweepError(ZkAuctionError, ValueError):
    """A sweep that cannot run: a bad --set, no Ray, a run that failed."""


def parse_value(token: str) -> Any:
    """A --set value as a TOML literal (64, 0.01, true, "x"); anything else is a plain string."""
    token = token.strip()
    try:
        return tomllib.loads(f"v = {token}")["v"]
    except tomllib.TOMLDecodeError:
        return token


def parse_set(spec: str) -> tuple[str, list[Any]]:
    """``"menu_size=64,128"`` -> ``("menu_size", [64, 128])``."""
    key, sep, values = spec.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise SweepError(f"--set {spec!r}: expected KEY=V1,V2,... (e.g. menu_size=64,128 or train.lr=0.01,0.003)")
    parsed = [parse_value(v) for v in values.split(",") if v.strip()]
    if not parsed:
        raise SweepError(f"--set {spec!r}: no values")
    return key, parsed


def resolve_key(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    """The path of ``key`` in the config dict: ``table.key`` as given, a bare key in the one table
    of ``TABLES`` that has it."""
    if "." in key:
        path = tuple(key.split("."))
        if path[0] not in TABLES:
            raise SweepError(f"--set {key}: {path[0]!r} is not a config table (one of {', '.join(TABLES)})")
        return path
    holders = [t for t in TABLES if isinstance(raw.get(t), dict) and key in raw[t]]
    if len(holders) == 1:
        return (holders[0], key)
    if not holders:
        raise SweepError(f"--set {key}: no table of the config has {key!r}; name it as TABLE.{key} "
                         f"(TABLE one of {', '.join(TABLES)})")
    raise SweepError(f"--set {key}: {key!r} is in several tables ({', '.join(holders)}); name one, e.g. {holders[0]}.{key}")


def with_overrides(raw: dict[str, Any], overrides: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for path, value in overrides.items():
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SweepError(f"--set {'.'.join(path)}: {part!r} is not a table")
        node[path[-1]] = value
    return out


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).strip("-") or "x"


def plan(raw: dict[str, Any], sets: list[str], seeds: int) -> list[dict[str, Any]]:
    """Every run of the sweep: a name, its overrides (paths -> values) and its seed.

    Seeds are the config's ``[train] seed`` and the next ``seeds - 1`` integers; each run sets
    ``train.seed`` and, when the net has one, ``net.seed`` (a learned menu's initialisation)."""
    if seeds < 1:
        raise SweepError(f"--seeds {seeds}: need at least one seed")
    axes: list[tuple[tuple[str, ...], list[Any]]] = []
    for spec in sets:
        key, values = parse_set(spec)
        path = resolve_key(raw, key)
        if path[-1] == "seed":
            raise SweepError(f"--set {key}: seeds are swept with --seeds")
        if any(p == path for p, _ in axes):
            raise SweepError(f"--set {key}: given twice")
        axes.append((path, values))
    seed0 = int(raw.get("train", {}).get("seed", 0))
    runs = []
    for combo in itertools.product(*[values for _, values in axes]):
        for seed in range(seed0, seed0 + seeds):
            overrides = {path: value for (path, _), value in zip(axes, combo)}
            overrides[("train", "seed")] = seed
            if "seed" in raw.get("net", {}):
                overrides[("net", "seed")] = seed
            tag = "_".join(f"{path[-1]}={_slug(v)}" for (path, _), v in zip(axes, combo))
            name = f"r{len(runs):03d}_" + (tag + "_" if tag else "") + f"seed={seed}"
            runs.append({"name": name, "overrides": overrides, "seed": seed})
    return runs


def run_one(raw: dict[str, Any], name: str, holdout: dict[str, Any], cwd: str | None = None) -> dict[str, Any]:
    """One run (a Ray task, or called directly): train ``raw`` in a temporary folder with one
    torch thread, score it on the held-out sample, return its metrics and files."""
    import torch
    from zkauction.learn.checkpoint import read_metrics
    from zkauction.learn.evaluate import evaluate
    from zkauction.learn.regret import AttackConfig
    from zkauction.learn.train import train

    torch.set_num_threads(1)
    if cwd and os.path.isdir(cwd):  # relative paths in the config (init, teacher, prior) as on the driver
        os.chdir(cwd)
    config = config_from_dict(raw, f"sweep run {name}")
    with tempfile.TemporaryDirectory(prefix="zkauction-sweep-") as tmp:
        out = Path(tmp) / name
        net = train(config, out, progress=False, evaluate_at_end=False, command=f"sweep run {name}")
        metrics = read_metrics(out)
        attack = AttackConfig(**dict(raw.get("train", {}).get("evaluation", {}).get("attack", {})))
        t = time.monotonic()
        ev = evaluate(net, n_revenue=int(holdout["n_revenue"]), n_regret=int(holdout["n_regret"]),
                      seed=int(holdout["seed"]), attack=attack)
        files = {f: (out / f).read_bytes() for f in RUN_FILES if (out / f).is_file()}
    revenue_se = math.sqrt(sum((p.probability * p.revenue_stderr) ** 2 for p in ev.per_profile))
    return {
        "name": name,
        "host": socket.gethostname(),
        "train_wall_seconds": metrics.get("train_wall_seconds"),
        "iterations": metrics.get("iterations"),
        "validation_hard_revenue": metrics.get("validation_hard_revenue"),
        "holdout": {"revenue": ev.revenue, "revenue_stderr": revenue_se, "regret": ev.regret, "score": ev.score,
                    "seconds": round(time.monotonic() - t, 1), **holdout},
        "files": files,
    }


def _start_ray(address: str | None, num_cpus: int | None) -> tuple[Any, bool]:
    try:
        import ray
    except ImportError:
        raise SweepError("sweep needs Ray: pip install 'zkauction[sweep]' (or pip install 'ray>=2.9,<3')") from None
    if ray.is_initialized():
        return ray, False
    options: dict[str, Any] = {"log_to_driver": False}
    if address:
        options["address"] = address
    else:
        options.update(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False)
    for attempt in range(3):  # a local start can time out on a loaded machine ("Deadline Exceeded"): retry
        try:
            ray.init(**options)
            return ray, True
        except Exception as e:  # ConnectionError, RuntimeError, ValueError, Ray's own errors
            ray.shutdown()
            if attempt == 2:
                raise SweepError(f"cannot start Ray{' at ' + address if address else ''}: {e}") from None
            time.sleep(2.0)
    raise AssertionError("unreachable")


def _key(path: tuple[str, ...]) -> str:
    return ".".join(path)


def sweep(
    config: str | Path,
    out: str | Path,
    *,
    sets: list[str] = (),
    seeds: int = 1,
    address: str | None = None,
    num_cpus: int | None = None,
    holdout_revenue: int = 100_000,
    holdout_regret: int = 100,
    final_eval: bool = True,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the sweep (see the module docstring); return what ``OUT/sweep.json`` holds."""
    from zkauction.learn.ama_train import evaluate_ama
    from zkauction.learn.checkpoint import load_auction, read_metrics, write_metrics

    raw = read_config_dict(config)
    config_from_dict(raw, str(config))  # a bad config fails here, before Ray starts
    runs = plan(raw, list(sets), seeds)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SweepError(f"{out}: is a file, expected a folder for the sweep")
    holdout = {"n_revenue": holdout_revenue, "n_regret": holdout_regret, "seed": HOLDOUT_SEED}
    record: dict[str, Any] = {
        "config": str(config),
        "command": command if command is not None else " ".join(sys.argv),
        "sets": list(sets),
        "seeds": seeds,
        "address": address or "local",
        "selection": "best held-out score (revenue minus regret as (sqrt(rev) - sqrt(rgt))^2)",
        "holdout": holdout,
        "runs": [],
    }
    (out / "runs").mkdir(parents=True, exist_ok=True)
    ray, started = _start_ray(address, num_cpus)
    t0 = time.monotonic()
    try:
        task = ray.remote(num_cpus=1)(run_one)
        cwd = os.getcwd()
        pending = {}
        for run in runs:
            run_raw = with_overrides(raw, run["overrides"])
            try:
                config_from_dict(run_raw, run["name"])
            except ConfigError as e:
                raise SweepError(f"sweep run {run['name']}: {e}") from None
            pending[task.remote(run_raw, run["name"], holdout, cwd)] = run
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(done[0])
            try:
                result = ray.get(done[0])
            except Exception as e:  # a run that raised: name it, keep the others' results on disk
                raise SweepError(f"sweep run {run['name']} failed: {e}") from None
            folder = out / "runs" / run["name"]
            folder.mkdir(parents=True, exist_ok=True)
            for fname, data in result.pop("files").items():
                (folder / fname).write_bytes(data)
            entry = {**result, "seed": run["seed"], "folder": str(folder),
                     "overrides": {_key(p): v for p, v in run["overrides"].items()}}
            record["runs"].append(entry)
            record["runs"].sort(key=lambda r: r["name"])
            _write(out, record)
            if progress:
                h = entry["holdout"]
                print(f"[sweep] {len(record['runs'])}/{len(runs)} {run['name']}: held-out revenue "
                      f"{h['revenue']:.4f} ± {h['revenue_stderr']:.4f}, regret {h['regret']:.2e}, "
                      f"trained in {entry['train_wall_seconds']} s", file=sys.stderr, flush=True)
    finally:
        if started:
            ray.shutdown()
    record["wall_seconds"] = round(time.monotonic() - t0, 1)
    best = max(record["runs"], key=lambda r: r["holdout"]["score"])
    record["best"] = best["name"]
    best_dir = out / "best"
    if best_dir.exists():
        shutil.rmtree(best_dir)
    shutil.copytree(best["folder"], best_dir)
    metrics = read_metrics(best_dir)
    metrics.update(command=record["command"], sweep={"folder": str(out), "run": best["name"],
                                                     "overrides": best["overrides"], "holdout": best["holdout"]})
    if final_eval:
        metrics.update(evaluate_ama(load_auction(best_dir), dict(raw.get("train", {}).get("evaluation", {}))))
        record["best_evaluation"] = {k: metrics["evaluation"][k] for k in ("revenue", "regret", "score")}
    write_metrics(best_dir, metrics)
    _write(out, record)
    return record


def _write(out: Path, record: dict[str, Any]) -> None:
    tmp = out / (SWEEP_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(out / SWEEP_FILE)


__all__ = ["HOLDOUT_SEED", "SweepError", "parse_set", "plan", "resolve_key", "run_one", "sweep", "with_overrides"]
