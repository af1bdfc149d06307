"""``python -m zkauction.cli``: the command line."""

from zkauction.cli import app

app(prog_name="zkauction")
