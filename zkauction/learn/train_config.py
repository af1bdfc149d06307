"""The ``[train]`` table of a regret net's config: :class:`TrainConfig`, its :class:`Phase` schedule
and the checks of its values' types and ranges (run before anything is trained or written)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from zkauction.learn.config import ConfigError
from zkauction.learn.regret import AttackConfig

PAPER_LRS = (5e-4, 5e-5, 5e-6)
# "gradient": warm-started gradient ascent; "grid": the same, restarted at every visit from the best
# of a misreport grid (m <= 2) and random starts; "network": the paper's misreport MLP.
ATTACKERS = ("gradient", "grid", "network")


_REALS = {"regret_weight": 0.0, "sqrt_regret_weight": 0.0, "teacher_temperature": 0.0,  # name: least value
          "misreport_lr": None, "distill_lr": None}  # None: positive
_COUNTS = {name: 1 for name in ("dataset_size", "batch_size", "iterations", "log_every", "checkpoint_every", "threads")}
_COUNTS.update({name: 0 for name in ("misreport_steps", "misreport_grid", "misreport_starts", "misreport_depth",
                                     "misreport_width", "misreport_patience", "distill_iterations")})  # name: least value
_EVALUATION_KEYS = ("n_revenue", "n_regret", "seed", "attack")


def _integer(v: Any, least: int, below: int | None = None) -> bool:
    """Whether ``v`` is an integer (not a bool) in [least, below)."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= least and (below is None or v < below)


def _integer_kind(least: int) -> str:
    return "a positive integer" if least else "a non-negative integer"


def _check_train_values(cfg: "TrainConfig", source: str) -> None:
    """Types and ranges of the ``[train]`` values, checked before anything is trained or written (a
    NaN learning rate reached torch, a string weight tensor arithmetic, a negative step count trained
    on)."""
    def real(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    for name, least in _REALS.items():
        v = getattr(cfg, name)
        if not real(v) or (v <= 0 if least is None else v < least):
            want = "a positive finite number" if least is None else f"a finite number >= {least:g}"
            raise ConfigError(f"{source}: {name} must be {want}, got {v!r}")
    for name, least in _COUNTS.items():
        v = getattr(cfg, name)
        if not _integer(v, least):
            raise ConfigError(f"{source}: {name} must be {_integer_kind(least)}, got {v!r}")
    if not _integer(cfg.seed, 0, 2**63):
        raise ConfigError(f"{source}: seed must be an integer in [0, 2^63), got {cfg.seed!r}")
    ev = cfg.evaluation
    if not isinstance(ev, dict):
        raise ConfigError(f"{source}: evaluation must be a table ([train.evaluation]), got {ev!r}")
    unknown = sorted(set(ev) - set(_EVALUATION_KEYS))
    if unknown:
        raise ConfigError(f"{source}.evaluation: unknown key(s) {unknown}; known: {list(_EVALUATION_KEYS)}")
    for name in ("n_revenue", "n_regret", "seed"):  # (these were refused only once training had finished)
        v, least = ev.get(name, 1), int(name != "seed")
        if not _integer(v, least, 2**63):
            raise ConfigError(f"{source}.evaluation: {name} must be {_integer_kind(least)}, got {v!r}")
    attack = ev.get("attack", {})
    known = {f.name for f in fields(AttackConfig)}
    if not isinstance(attack, dict) or set(attack) - known:
        bad = sorted(set(attack) - known) if isinstance(attack, dict) else attack
        raise ConfigError(f"{source}.evaluation.attack: unknown key(s) {bad}; known: {sorted(known)}")
    for name, v in attack.items():
        if name == "lr":
            ok = real(v) and v > 0
        elif name == "refine":
            ok = isinstance(v, bool)
        else:  # counts (grid may be none: the default for the setting)
            ok = (v is None and name == "grid") or _integer(v, int(name == "batch_size"))
        if not ok:
            raise ConfigError(f"{source}.evaluation.attack: {name} = {v!r} is not a valid value")


@dataclass(frozen=True)
class Phase:
    iterations: int
    lr: float
    regret_weight: float
    misreport_steps: int
    sqrt_regret_weight: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    dataset_size: int = 20_000
    batch_size: int = 512
    iterations: int = 3000
    regret_weight: float = 1.0
    sqrt_regret_weight: float = 1.0
    attacker: str = "gradient"
    misreport_steps: int = 25
    misreport_lr: float = 0.05
    misreport_grid: int = 11
    misreport_starts: int = 0
    misreport_depth: int = 7
    misreport_width: int = 100
    misreport_patience: int = 100
    log_every: int = 50
    checkpoint_every: int = 500
    threads: int = 1
    init: str = ""
    teacher: str = ""
    distill_iterations: int = 0
    distill_lr: float = 1e-3
    teacher_temperature: float = 0.0
    phases: tuple[dict[str, Any], ...] = ()
    evaluation: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "") -> "TrainConfig":
        """The ``[train]`` table ``d``; errors name ``source`` (the config file) and the field."""
        prefix = f"{source}: " if source else ""
        source = prefix + "[train]"
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; known: {sorted(known)}")
        d = dict(d)
        if "phases" in d:
            if not isinstance(d["phases"], list) or not all(isinstance(p, dict) for p in d["phases"]):
                raise ConfigError(f"{source}: 'phases' must be a list of tables")
            d["phases"] = tuple(d["phases"])
        cfg = cls(**d)
        _check_train_values(cfg, source)
        if cfg.attacker not in ATTACKERS:
            raise ConfigError(f"{source}: attacker must be one of {list(ATTACKERS)}, got {cfg.attacker!r}")
        try:
            cfg.schedule()  # validates phases
        except ConfigError as e:
            raise ConfigError(f"{prefix}{e}") from None
        except (TypeError, ValueError, ArithmeticError) as e:  # (int(inf) overflows)
            raise ConfigError(f"{source}: phases: {e}") from None
        return cfg

    def schedule(self) -> list[Phase]:
        """The phases in order (the paper's three-way lr split when ``phases`` is empty)."""
        if not self.phases:
            k = self.iterations // 3
            its = [k, k, self.iterations - 2 * k]
            return [
                Phase(i, lr, self.regret_weight, self.misreport_steps, self.sqrt_regret_weight)
                for i, lr in zip(its, PAPER_LRS)
            ]
        out = []
        prev = {
            "lr": PAPER_LRS[0],
            "regret_weight": self.regret_weight,
            "misreport_steps": self.misreport_steps,
            "sqrt_regret_weight": self.sqrt_regret_weight,
        }
        allowed = {"iterations", "lr", "regret_weight", "misreport_steps", "sqrt_regret_weight"}
        for k, p in enumerate(self.phases):
            bad = sorted(set(p) - allowed)
            if bad or "iterations" not in p:
                raise ConfigError(f"[train] phase {k}: needs 'iterations'; allowed keys {sorted(allowed)}, got extra {bad}")
            prev = {**prev, **{key: v for key, v in p.items() if key != "iterations"}}
            ph = Phase(
                int(p["iterations"]),
                float(prev["lr"]),
                float(prev["regret_weight"]),
                int(prev["misreport_steps"]),
                float(prev["sqrt_regret_weight"]),
            )
            if not (ph.iterations >= 1 and 0 < ph.lr < math.inf and 0 <= ph.regret_weight < math.inf
                    and ph.misreport_steps >= 0 and 0 <= ph.sqrt_regret_weight < math.inf):
                raise ConfigError(f"[train] phase {k}: iterations and lr must be positive, weights/steps >= 0")
            out.append(ph)
        return out

    @property
    def total_iterations(self) -> int:
        return sum(p.iterations for p in self.schedule())
