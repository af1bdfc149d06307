"""The ``zkauction`` command line (Typer). Every command calls the same library functions a Python
user calls; each area's commands live in their own module and are registered here."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="Credible, sealed-bid, revenue-optimal repeated auctions: learn, prove, run, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Each module defines ``register(app)``. Learning: train/evaluate/baselines; zk: compile/verify;
# protocol: run/audit/prove/penalty/demo.
_COMMAND_MODULES = ("zkauction.cli.learn", "zkauction.cli.zk", "zkauction.cli.protocol")

for _name in _COMMAND_MODULES:
    try:
        _mod = importlib.import_module(_name)
    except ModuleNotFoundError as _e:
        if _e.name != _name:
            raise
        continue
    _mod.register(app)


@app.callback()
def _main() -> None:
    """zkauction: learn optimal auctions, prove their outcomes in zero knowledge, run them credibly."""


if __name__ == "__main__":
    app()
