"""Learning commands: ``train``, ``evaluate``, ``baselines``. Each calls the library function a
Python user would call (:func:`zkauction.learn.train.train`, :func:`zkauction.learn.evaluate.evaluate`,
:func:`zkauction.learn.baselines.make_baseline`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer



def user_errors() -> tuple[type[Exception], ...]:
    """The errors a user's input can cause, reported as one line with exit 2. Imported on use:
    they live beside torch code, and the command line must start without torch."""
    from zkauction.learn.checkpoint import CheckpointError
    from zkauction.learn.config import ConfigError
    from zkauction.learn.setting import SettingError

    return (ConfigError, CheckpointError, SettingError, FileNotFoundError, ValueError)


def torch_device(name: str):
    """``--device`` as a torch.device, or a ValueError that says what is wrong with it."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r}: not a device name (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r}: no CUDA GPU is available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: only cpu and cuda are supported")
    return device


def _fail(e: Exception) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2)


def _attack(steps: int | None, starts: int | None, grid: int | None, lr: float | None) -> Any:
    from zkauction.learn.regret import AttackConfig

    kw: dict[str, Any] = {}
    if steps is not None:
        kw["steps"] = steps
    if starts is not None:
        kw["starts"] = starts
    if grid is not None:
        kw["grid"] = grid
    if lr is not None:
        kw["lr"] = lr
    return AttackConfig(**kw)


def _setting_of(source: Path) -> tuple[Any, Any, str]:
    """(setting, participation, name) from a config TOML or a trained/<name> folder."""
    from zkauction.learn.checkpoint import CONFIG_FILE, build_net
    from zkauction.learn.config import load_config

    if source.is_dir() or source.name == CONFIG_FILE:
        folder = source if source.is_dir() else source.parent
        f = folder / CONFIG_FILE
        if not f.is_file():
            raise CheckpointError(f"{folder}: no {CONFIG_FILE} (expected a trained auction folder or a config .toml)")
        net = build_net(json.loads(f.read_text()))
        return net.setting, net.participation, folder.name
    cfg = load_config(source)
    return cfg.setting, cfg.participation, cfg.name


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        config: Path = typer.Argument(..., help="experiment config (.toml), e.g. configs/1x2_uniform.toml"),
        out: Path = typer.Option(..., "--out", help="output folder, e.g. trained/1x2_uniform"),
        resume: bool = typer.Option(False, "--resume", help="continue from OUT/train_state.pt"),
        progress: bool = typer.Option(True, "--progress/--no-progress"),
        final_eval: bool = typer.Option(True, "--eval/--no-eval", help="evaluation-grade metrics at the end"),
        device: str = typer.Option("cpu", "--device", help="where to train: cpu, cuda, cuda:1, ..."),
    ) -> None:
        """Train the auction of CONFIG; write config, weights, train log and metrics to OUT."""
        from zkauction.learn.config import load_config
        from zkauction.learn.train import train

        try:
            cfg = load_config(config)
            train(cfg, out, resume=resume, progress=progress, command=" ".join(["zkauction"] + sys.argv[1:]),
                  evaluate_at_end=final_eval, device=torch_device(device))
        except user_errors() as e:
            _fail(e)
        from zkauction.learn.checkpoint import read_metrics

        m = read_metrics(out)
        typer.echo(f"trained {cfg.name} in {m['train_wall_seconds']:.0f} s -> {out}")
        if "evaluation" in m:
            ev = m["evaluation"]
            typer.echo(f"revenue {ev['revenue']:.4f}  regret {ev['regret']:.2e}  score {ev['score']:.4f}")

    @app.command("evaluate")
    def evaluate_cmd(
        path: Path = typer.Argument(..., help="trained auction folder, e.g. trained/2x2_uniform"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        n_revenue: int = typer.Option(100_000, help="profiles per participation profile for revenue"),
        n_regret: int = typer.Option(1_000, help="profiles per participation profile for regret"),
        seed: int = typer.Option(12345),
        steps: Optional[int] = typer.Option(None, help="attack: projected gradient steps (default 300)"),
        starts: Optional[int] = typer.Option(None, help="attack: random starts (default 8)"),
        grid: Optional[int] = typer.Option(None, help="attack: grid points per item (default 41 for m <= 2)"),
        lr: Optional[float] = typer.Option(None, help="attack: Adam step in support widths (default 0.01)"),
        progress: bool = typer.Option(False, "--progress/--no-progress"),
        device: str = typer.Option("cpu", "--device", help="where to run the attack: cpu, cuda, ..."),
    ) -> None:
        """Revenue, regret (evaluation-grade attack) and score, per participation profile."""
        from zkauction.learn.baselines import known_optima
        from zkauction.learn.checkpoint import load_auction
        from zkauction.learn.evaluate import evaluate

        try:
            if n_revenue < 1 or n_regret < 1:
                raise ValueError("--n-revenue and --n-regret must be positive")
            net = load_auction(path).to(torch_device(device))
            ev = evaluate(
                net,
                n_revenue=n_revenue,
                n_regret=n_regret,
                seed=seed,
                attack=_attack(steps, starts, grid, lr),
                optima=known_optima(net.setting, net.participation),
                progress=progress,
            )
        except user_errors() as e:
            _fail(e)
        typer.echo(ev.to_json() if as_json else ev.summary())

    @app.command("baselines")
    def baselines_cmd(
        source: Path = typer.Argument(..., help="config .toml or trained folder: the setting and participation"),
        only: str = typer.Option("myerson,vcg,bundle,menu", help="comma-separated: myerson, vcg, bundle, menu, first_price"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        n_revenue: int = typer.Option(100_000),
        n_regret: int = typer.Option(300),
        seed: int = typer.Option(12345),
        steps: Optional[int] = typer.Option(None, help="attack: projected gradient steps (default 300)"),
    ) -> None:
        """Evaluate the baseline mechanisms on a setting with the same attack as learned nets; also
        print the exact item-wise Myerson revenue and known optima per profile."""
        from zkauction.learn.baselines import itemwise_myerson_revenue, known_optima, make_baseline
        from zkauction.learn.evaluate import evaluate

        results: dict[str, Any] = {}
        try:
            setting, participation, name = _setting_of(source)
            for kind in [k.strip() for k in only.split(",") if k.strip()]:
                try:
                    net = make_baseline(kind, setting, participation, seed=seed)
                except SettingError as e:  # e.g. Manelli-Vincent outside 1 bidder, 2 items
                    results[kind] = {"skipped": str(e)}
                    continue
                ev = evaluate(net, n_revenue=n_revenue, n_regret=n_regret, seed=seed, attack=_attack(steps, None, None, None))
                results[kind] = ev.to_dict() | {"hyperparameters": net.hyperparameters()}
        except user_errors() as e:
            _fail(e)
        exact = {g: itemwise_myerson_revenue(setting, g) for g in participation.profile_strings()}
        optima = known_optima(setting, participation)
        if as_json:
            typer.echo(json.dumps({"setting": name, "itemwise_myerson_exact": exact, "known_optima": optima,
                                   "baselines": results}, indent=2))
            return
        typer.echo(f"{name}: n={setting.n}, m={setting.m}, profiles {participation.profile_strings()}")
        for kind, r in results.items():
            if "skipped" in r:
                typer.echo(f"  {kind:12s} skipped: {r['skipped']}")
            else:
                typer.echo(f"  {kind:12s} revenue {r['revenue']:.4f}  regret {r['regret']:.2e}  score {r['score']:.4f}")
        for g in participation.profile_strings():
            opt = optima[g]
            typer.echo(f"  profile {g}: item-wise Myerson exact {exact[g]:.5f}; known optimum "
                       f"{'unknown' if opt is None else f'{opt:.5f}'}")
