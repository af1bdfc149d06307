"""Learning commands: ``train``, ``evaluate``, ``baselines``, ``sweep``. Each calls the library function a
Python user would call (:func:`zkauction.learn.train.train`, :func:`zkauction.learn.evaluate.evaluate`,
:func:`zkauction.learn.baselines.make_baseline`, :func:`zkauction.learn.sweep.sweep`). Errors are reported by the one handler in
:mod:`zkauction.cli`; torch is imported only inside the commands, so the command line starts fast.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Optional

import typer

BASELINE_KINDS = ("myerson", "vcg", "bundle", "menu", "first_price")


def bad(option: str, message: str) -> typer.BadParameter:
    """A usage error naming ``option`` (printed as one line, exit 2)."""
    return typer.BadParameter(message, param_hint=f"'{option}'")


def on_terminal(progress: Optional[bool]) -> bool:
    """``--progress/--no-progress`` when given, else on when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else progress


def torch_device(name: str) -> Any:
    """``--device`` as a torch.device, or a usage error that says what is wrong with it."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise bad("--device", f"{name!r} is not a device name (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise bad("--device", f"{name!r}: no CUDA GPU is available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise bad("--device", f"{name!r}: only cpu and cuda are supported")
    return device


def check_train_out(out: Path, *, resume: bool, force: bool) -> None:
    """``--out`` must be a folder; an existing trained auction there is replaced only with
    ``--force``; ``--resume`` needs the saved state of an unfinished training there."""
    from zkauction.learn.checkpoint import STATE_FILE, trained_files_in

    if out.exists() and not out.is_dir():
        raise bad("--out", f"{out} is a file, expected a folder (e.g. trained/NAME)")
    if resume and force:
        raise bad("--force", "--resume continues the training in --out; --force starts a new one: give one of them")
    if resume:
        if not (out / STATE_FILE).is_file():
            raise bad("--resume", f"{out} holds no {STATE_FILE} to continue from (a finished or never started "
                                  "training); leave out --resume to start afresh")
        return
    existing = trained_files_in(out)
    if existing and not force:
        raise bad("--out", f"{out} already holds a trained auction ({', '.join(existing)}); pass --force to "
                           "replace it, or --resume to continue an unfinished training")


def _attack(steps: int | None, starts: int | None, grid: int | None, lr: float | None) -> Any:
    from zkauction.learn.regret import AttackConfig

    if lr is not None and not 0 < lr < math.inf:
        raise bad("--lr", f"{lr} is not a positive, finite step size")
    given = {"steps": steps, "starts": starts, "grid": grid, "lr": lr}
    return AttackConfig(**{k: v for k, v in given.items() if v is not None})


def _setting_of(source: Path) -> tuple[Any, Any, str]:
    """(setting, participation, name) from a config TOML or a trained/<name> folder."""
    from zkauction.learn.checkpoint import CONFIG_FILE, CheckpointError, build_net
    from zkauction.learn.config import load_config

    if source.is_dir() or source.name == CONFIG_FILE:
        folder = source if source.is_dir() else source.parent
        f = folder / CONFIG_FILE
        if not f.is_file():
            raise CheckpointError(f"{folder}: no {CONFIG_FILE} (expected a trained auction folder or a config .toml)")
        try:
            description = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{f}: not valid JSON: {e}") from None
        net = build_net(description)
        return net.setting, net.participation, folder.name
    cfg = load_config(source)
    return cfg.setting, cfg.participation, cfg.name


def _baseline_kinds(only: str) -> list[str]:
    kinds = [k.strip() for k in only.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in BASELINE_KINDS]
    if unknown or not kinds:
        raise bad("--only", f"{', '.join(unknown) or 'nothing'}: expected a comma-separated list of "
                            f"{', '.join(BASELINE_KINDS)}")
    return kinds


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        config: Path = typer.Argument(..., help="experiment config (.toml), e.g. configs/1x2_uniform.toml"),
        out: Path = typer.Option(..., "--out", help="output folder, e.g. trained/1x2_uniform"),
        resume: bool = typer.Option(False, "--resume", help="continue the unfinished training in OUT (its train_state.pt)"),
        force: bool = typer.Option(False, "--force", help="replace the trained auction already in OUT"),
        progress: Optional[bool] = typer.Option(None, "--progress/--no-progress",
                                                help="progress bar (default: on when stderr is a terminal)"),
        final_eval: bool = typer.Option(True, "--eval/--no-eval", help="evaluation-grade metrics at the end"),
        device: str = typer.Option("cpu", "--device", help="where to train: cpu, cuda, cuda:1, ..."),
        as_json: bool = typer.Option(False, "--json", help="print OUT's metrics.json (one JSON object) at the end"),
    ) -> None:
        """Train the auction of CONFIG; write config, weights, train log and metrics to OUT.

        Ctrl-C stops after the current step and saves the state: continue with --resume."""
        from zkauction.learn.checkpoint import read_metrics
        from zkauction.learn.config import load_config
        from zkauction.learn.train import train

        check_train_out(out, resume=resume, force=force)
        cfg = load_config(config)
        train(cfg, out, resume=resume, progress=on_terminal(progress),
              command=" ".join(["zkauction"] + sys.argv[1:]), evaluate_at_end=final_eval, device=torch_device(device))
        m = read_metrics(out)
        if as_json:
            typer.echo(json.dumps({"out": str(out), **m}, indent=2))
            return
        typer.echo(f"trained {cfg.name} in {m['train_wall_seconds']:.0f} s -> {out}")
        if "evaluation" in m:
            ev = m["evaluation"]
            typer.echo(f"revenue {ev['revenue']:.4f}  regret {ev['regret']:.2e}  score {ev['score']:.4f}")

    @app.command("evaluate")
    def evaluate_cmd(
        path: Path = typer.Argument(..., help="trained auction folder, e.g. trained/2x2_uniform"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        n_revenue: int = typer.Option(100_000, min=1, help="profiles per participation profile for revenue"),
        n_regret: int = typer.Option(1_000, min=1, help="profiles per participation profile for regret"),
        seed: int = typer.Option(12345),
        steps: Optional[int] = typer.Option(None, min=0, help="attack: projected gradient steps (default 300)"),
        starts: Optional[int] = typer.Option(None, min=0, help="attack: random starts (default 8)"),
        grid: Optional[int] = typer.Option(None, min=0, help="attack: grid points per item (default 41 for m <= 2)"),
        lr: Optional[float] = typer.Option(None, help="attack: Adam step in support widths (default 0.01)"),
        progress: Optional[bool] = typer.Option(None, "--progress/--no-progress",
                                                help="progress bar (default: on when stderr is a terminal)"),
        device: str = typer.Option("cpu", "--device", help="where to run the attack: cpu, cuda, ..."),
    ) -> None:
        """Revenue, regret (evaluation-grade attack) and score, per participation profile."""
        from zkauction.learn.baselines import known_optima
        from zkauction.learn.checkpoint import load_auction
        from zkauction.learn.evaluate import evaluate

        attack = _attack(steps, starts, grid, lr)
        net = load_auction(path).to(torch_device(device))
        ev = evaluate(net, n_revenue=n_revenue, n_regret=n_regret, seed=seed, attack=attack,
                      optima=known_optima(net.setting, net.participation), progress=on_terminal(progress))
        typer.echo(ev.to_json() if as_json else ev.summary())

    @app.command("baselines")
    def baselines_cmd(
        source: Path = typer.Argument(..., help="config .toml or trained folder: the setting and participation"),
        only: str = typer.Option("myerson,vcg,bundle,menu", help="comma-separated: " + ", ".join(BASELINE_KINDS)),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        n_revenue: int = typer.Option(100_000, min=1),
        n_regret: int = typer.Option(300, min=1),
        seed: int = typer.Option(12345),
        steps: Optional[int] = typer.Option(None, min=0, help="attack: projected gradient steps (default 300)"),
    ) -> None:
        """Evaluate the baseline mechanisms on a setting with the same attack as learned nets; also
        print the exact item-wise Myerson revenue and known optima per profile."""
        kinds = _baseline_kinds(only)
        from zkauction.learn.baselines import itemwise_myerson_revenue, known_optima, make_baseline
        from zkauction.learn.evaluate import evaluate
        from zkauction.learn.setting import SettingError

        setting, participation, name = _setting_of(source)
        results: dict[str, Any] = {}
        for kind in kinds:
            try:
                net = make_baseline(kind, setting, participation, seed=seed)
            except SettingError as e:  # e.g. Manelli-Vincent outside 1 bidder, 2 items
                results[kind] = {"skipped": str(e)}
                continue
            ev = evaluate(net, n_revenue=n_revenue, n_regret=n_regret, seed=seed, attack=_attack(steps, None, None, None))
            results[kind] = ev.to_dict() | {"hyperparameters": net.hyperparameters()}
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

    @app.command("sweep")
    def sweep_cmd(
        config: Path = typer.Argument(..., help="experiment config (.toml), e.g. configs/ama_2x5_uniform.toml"),
        out: Optional[Path] = typer.Option(None, "--out", help="sweep folder (default sweeps/<config name>)"),
        seeds: int = typer.Option(1, "--seeds", min=1, help="seeds per combination: the config's seed and the next ones"),
        sets: list[str] = typer.Option([], "--set", help="KEY=V1,V2,... (repeatable): values to sweep; KEY bare "
                                                        "(menu_size) or TABLE.KEY (train.lr)"),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: Ray on this machine)"),
        num_cpus: Optional[int] = typer.Option(None, "--num-cpus", min=1, help="local Ray: CPUs to use (default all)"),
        holdout: int = typer.Option(100_000, "--holdout", min=1, help="held-out profiles for revenue, per participation profile"),
        holdout_regret: int = typer.Option(100, "--holdout-regret", min=1, help="held-out profiles attacked for regret"),
        final_eval: bool = typer.Option(True, "--eval/--no-eval", help="the config's full evaluation of the best run"),
        force: bool = typer.Option(False, "--force", help="replace a finished sweep in OUT"),
        progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="one line per finished run"),
        as_json: bool = typer.Option(False, "--json", help="print sweep.json (one JSON object) at the end"),
    ) -> None:
        """Train CONFIG over a grid of --set values and --seeds on Ray, one CPU per run; keep every
        run's metrics in OUT/sweep.json and copy the best (held-out score) to OUT/best."""
        from zkauction.learn.config import load_config
        from zkauction.learn.sweep import SWEEP_FILE, sweep

        name = load_config(config).name
        out = out if out is not None else Path("sweeps") / name
        if out.exists() and not out.is_dir():
            raise bad("--out", f"{out} is a file, expected a folder")
        if (out / SWEEP_FILE).exists() and not force:
            raise bad("--out", f"{out} already holds a sweep ({SWEEP_FILE}); pass --force to replace it")
        record = sweep(config, out, sets=sets, seeds=seeds, address=address, num_cpus=num_cpus,
                       holdout_revenue=holdout, holdout_regret=holdout_regret, final_eval=final_eval,
                       progress=progress if progress is not None else True,
                       command=" ".join(["zkauction"] + sys.argv[1:]))
        if as_json:
            typer.echo(json.dumps({"out": str(out), **record}, indent=2))
            return
        for r in record["runs"]:
            h = r["holdout"]
            typer.echo(f"{r['name']}: held-out revenue {h['revenue']:.4f} ± {h['revenue_stderr']:.4f}  "
                       f"regret {h['regret']:.2e}  score {h['score']:.4f}  ({r['train_wall_seconds']} s)")
        typer.echo(f"best {record['best']} -> {out / 'best'}")
        if "best_evaluation" in record:
            e = record["best_evaluation"]
            typer.echo(f"evaluation: revenue {e['revenue']:.4f}  regret {e['regret']:.2e}  score {e['score']:.4f}")
