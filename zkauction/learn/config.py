"""Experiment configs: TOML files in ``configs/``.

A config has a ``name``, a ``[setting]`` table (n_bidders, n_items, support), an optional
``[participation]`` table (``independent = [...]`` or ``profiles``/``probabilities``; absent means
fixed bidders), a ``[net]`` table (``kind`` and that kind's hyper-parameters) and a ``[train]`` table.
``base = "other.toml"`` (relative to the file) inherits every table and overrides the fields given:
one documented base config, one thin file per experiment.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkauction.errors import ZkAuctionError
from zkauction.learn.setting import AuctionSetting, ParticipationModel, SettingError


class ConfigError(ZkAuctionError, ValueError):
    """A config file that cannot be used, naming the file and the problem."""


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    setting: AuctionSetting
    participation: ParticipationModel
    net: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the file it was read from, for error messages

    @property
    def label(self) -> str:
        """What error messages call this config: its file, else its name."""
        return self.source or self.name


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_config_dict(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The merged TOML dict of ``path`` and its ``base`` chain."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, expected a config file (.toml)")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        d = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    train = d.get("train")
    if isinstance(train, dict) and isinstance(train.get("init"), str) and train["init"]:
        # [train] init names a trained folder relative to this file's folder (as base does), so a
        # config trains the same from any directory, and on Ray workers that run elsewhere.
        init = Path(train["init"]).expanduser()
        train["init"] = str(init if init.is_absolute() else (path.parent / init).resolve())
    base = d.pop("base", None)
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"{path}: base must be a path (a string), got {base!r}")
    if base is not None:
        d = _merge(read_config_dict(path.parent / base, _seen + (path,)), d)
    return d


TOP_LEVEL_KEYS = ("name", "description", "setting", "participation", "net", "train")


def config_from_dict(d: dict[str, Any], source: str = "config") -> ExperimentConfig:
    unknown = sorted(set(d) - set(TOP_LEVEL_KEYS))
    if unknown:  # (e.g. `iterations = 5` meant under [train]: silently ignored, it trained 3,000)
        raise ConfigError(f"{source}: unknown top-level key(s) {unknown}: a key belongs in a table "
                          f"([setting], [participation], [net] or [train]); top level: {list(TOP_LEVEL_KEYS)} and base")
    if "setting" not in d:
        raise ConfigError(f"{source}: missing [setting] table")
    for table in ("setting", "participation", "net", "train"):
        if table in d and not isinstance(d[table], dict):
            raise ConfigError(f"{source}: {table} must be a table ([{table}]), got {d[table]!r}")
    try:
        setting = AuctionSetting.from_dict(d["setting"])
        participation = ParticipationModel.from_dict(d.get("participation", {}), setting.n)
    except SettingError as e:
        raise ConfigError(f"{source}: {e}") from None
    except (TypeError, ValueError) as e:  # e.g. a support that is not numbers
        raise ConfigError(f"{source}: [setting]/[participation]: {e}") from None
    name = d.get("name") or Path(source).stem
    return ExperimentConfig(
        name=str(name),
        setting=setting,
        participation=participation,
        net=dict(d.get("net", {})),
        train=dict(d.get("train", {})),
        raw=d,
        source=source if source != "config" else "",
    )


def load_config(path: str | Path) -> ExperimentConfig:
    return config_from_dict(read_config_dict(path), str(path))
