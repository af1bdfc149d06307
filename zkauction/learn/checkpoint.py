"""Checkpoints in ``trained/<name>/``: config.json (kind, setting, participation, hyper-parameters,
and the experiment config that produced it), weights.pt, metrics.json, train_log.jsonl, and while
training train_state.pt (what a resumed run needs)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import torch

from zkauction.errors import ZkAuctionError
from zkauction.learn.nets import AuctionNet, net_class
from zkauction.learn.setting import AuctionSetting, ParticipationModel

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
METRICS_FILE = "metrics.json"
LOG_FILE = "train_log.jsonl"
STATE_FILE = "train_state.pt"  # optimizer, attacker and RNG state of an unfinished training
TRAINED_FILES = (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, LOG_FILE, STATE_FILE)


class CheckpointError(ZkAuctionError, ValueError):
    """A checkpoint folder that is missing files or whose files do not fit together."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, raised once the state at the last finished step is saved; the
    message says where, and how to continue."""


def trained_files_in(path: str | Path) -> list[str]:
    """The files of a trained auction (or of an unfinished training) already in ``path``."""
    path = Path(path)
    return [name for name in TRAINED_FILES if (path / name).exists()] if path.is_dir() else []


class DeferredInterrupt:
    """Ctrl-C (SIGINT) during training only sets :attr:`requested`; the training loop checks it
    after each step, saves a consistent state and raises :class:`TrainingInterrupted`. Stopping in
    the middle of a step instead could save weights already updated beside a step counter that is
    not. A second Ctrl-C stops at once. Outside the main thread (where signal handlers cannot be
    set) it does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "DeferredInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.default_int_handler)
            self._installed = False


def truncate_log(path: Path, key: str, last: int) -> None:
    """Drop the lines of a training log whose ``key`` (the iteration or step) is above ``last``,
    atomically: a resumed run logs those steps again. Lines without ``key`` (a warm start's) stay;
    a line cut short by a killed process goes."""
    if not path.is_file():
        return

    def kept(line: str) -> bool:
        try:
            return line.endswith("\n") and json.loads(line).get(key, 0) <= last
        except json.JSONDecodeError:
            return False

    lines = path.read_text().splitlines(keepends=True)
    keep = [line for line in lines if kept(line)]
    if len(keep) != len(lines):
        _atomic_write_text(path, "".join(keep))


def interrupted_message(out: Path, step: int, total: int, unit: str = "iteration") -> str:
    return (f"training stopped at {unit} {step} of {total}, its state saved in {out / STATE_FILE}; "
            "the same command with --resume (in Python: resume=True) continues it")


def net_description(net: AuctionNet) -> dict[str, Any]:
    return {
        "kind": net.kind,
        "setting": net.setting.to_dict(),
        "participation": net.participation.to_dict(),
        "hyperparameters": net.hyperparameters(),
    }


def build_net(description: dict[str, Any]) -> AuctionNet:
    """An untrained net from the dict written by :func:`net_description`."""
    if not isinstance(description, dict):
        raise CheckpointError(f"{CONFIG_FILE}: expected a JSON object, got {type(description).__name__}")
    for key in ("kind", "setting"):
        if key not in description:
            raise CheckpointError(f"{CONFIG_FILE}: missing key {key!r}")
    try:
        setting = AuctionSetting.from_dict(description["setting"])
        participation = ParticipationModel.from_dict(description.get("participation", {}), setting.n)
        cls = net_class(description["kind"])
        return cls.from_hyperparameters(setting, participation, dict(description.get("hyperparameters", {})))
    except ZkAuctionError:
        raise
    except (TypeError, ValueError, AttributeError) as e:  # hyper-parameters that do not fit the kind
        raise CheckpointError(f"{CONFIG_FILE}: cannot build a {description['kind']!r} net: {e}") from None


def save_checkpoint(
    net: AuctionNet,
    path: str | Path,
    *,
    experiment: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write config.json and weights.pt (atomically, so an interrupted save keeps the old one)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg = net_description(net)
    if experiment is not None:
        cfg["experiment"] = experiment
    if extra:
        cfg.update(extra)
    _atomic_write_text(path / CONFIG_FILE, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tmp = path / (WEIGHTS_FILE + ".tmp")
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)
    tmp.replace(path / WEIGHTS_FILE)
    return path


def load_auction(path: str | Path) -> AuctionNet:
    """Load ``trained/<name>/`` (or its config.json) as an :class:`AuctionNet` in eval mode."""
    path = Path(path)
    if path.is_file() and path.name == CONFIG_FILE:
        path = path.parent
    cfg_file, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not path.exists():
        raise CheckpointError(f"{path}: no such folder (expected a trained auction folder with {CONFIG_FILE} and {WEIGHTS_FILE})")
    if not cfg_file.is_file():
        raise CheckpointError(f"{path}: no {CONFIG_FILE} (not a trained auction folder)")
    if not weights.is_file():
        raise CheckpointError(f"{path}: no {WEIGHTS_FILE}")
    try:
        description = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_file}: not valid JSON: {e}") from None
    net = build_net(description)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as e:  # torch raises several types for corrupt or mismatched files
        raise CheckpointError(f"{weights}: cannot load weights into a {description['kind']!r} net: {e}") from None
    net.eval()
    return net


def machine_description(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Where a figure was measured: platform, CPU cores, torch, load average, and the GPU used."""
    import os
    import platform

    device = torch.device(device)
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        load = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": load,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def machine_summary(machine: dict[str, Any] | str | None) -> str:
    """One table cell for a :func:`machine_description` (older metrics files hold a string)."""
    if not isinstance(machine, dict):
        return machine or "shared 2-core CPU, no GPU"
    where = f"GPU {machine['gpu']}" if machine.get("gpu") else "no GPU"
    load = machine.get("load_average")
    return f"{machine.get('cpu_count')}-core {machine.get('processor')} CPU, {where}" + (f", load {load[0]:.1f} at start" if load else "")


def write_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    _atomic_write_text(Path(path) / METRICS_FILE, json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def read_metrics(path: str | Path) -> dict[str, Any]:
    f = Path(path) / METRICS_FILE
    if not f.is_file():
        raise CheckpointError(f"{path}: no {METRICS_FILE}")
    try:
        return json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{f}: not valid JSON: {e}") from None


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
