"""``python -m zkauction.cli``: the command line."""

from zkauction.cli import main

main()
