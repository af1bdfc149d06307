"""``python -m zkauction``: the command line."""

from zkauction.cli import main

main()
