"""Checkpoints in ``trained/<name>/``: config.json (kind, setting, participation, hyper-parameters,
and the experiment config that produced it), weights.pt, metrics.json, train_log.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from zkauction.learn.nets import AuctionNet, net_class
from zkauction.learn.setting import AuctionSetting, ParticipationModel

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
METRICS_FILE = "metrics.json"
LOG_FILE = "train_log.jsonl"


class CheckpointError(ValueError):
    """A checkpoint folder that is missing files or whose files do not fit together."""


def net_description(net: AuctionNet) -> dict[str, Any]:
    return {
        "kind": net.kind,
        "setting": net.setting.to_dict(),
        "participation": net.participation.to_dict(),
        "hyperparameters": net.hyperparameters(),
    }


def build_net(description: dict[str, Any]) -> AuctionNet:
    """An untrained net from the dict written by :func:`net_description`."""
    for key in ("kind", "setting"):
        if key not in description:
            raise CheckpointError(f"{CONFIG_FILE}: missing key {key!r}")
    setting = AuctionSetting.from_dict(description["setting"])
    participation = ParticipationModel.from_dict(description.get("participation", {}), setting.n)
    cls = net_class(description["kind"])
    return cls.from_hyperparameters(setting, participation, dict(description.get("hyperparameters", {})))


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
    if not cfg_file.is_file():
        raise CheckpointError(f"{path}: no {CONFIG_FILE} (not a trained auction folder)")
    if not weights.is_file():
        raise CheckpointError(f"{path}: no {WEIGHTS_FILE}")
    try:
        description = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
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
    return json.loads(f.read_text())


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
