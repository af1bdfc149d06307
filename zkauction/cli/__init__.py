"""The ``zkauction`` command line (Typer). Every command calls the same library functions a Python
user calls; each area's commands live in their own module and are registered here.

Errors are handled once, here (:class:`CommandGroup`), never per command: a
:class:`~zkauction.errors.ZkAuctionError` escaping a command, a user file that cannot be read or is
not JSON, or a bad argument prints ``error: <message>`` on one line to stderr and exits with the
error's code (2 for bad input, 1 for a failed check); Ctrl-C exits 130 with one line. ``--debug``
(or ``ZKAUCTION_DEBUG=1``) lets the exception through with its full traceback instead. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from zkauction.errors import ZkAuctionError

try:  # recent typer vendors click; older ones depend on it
    from typer._click.exceptions import BadParameter, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import BadParameter, UsageError  # type: ignore[no-redef]

EXIT_OK, EXIT_FAILED_CHECK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Errors about a file the user named: the file is the message.
_FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}" if code != EXIT_INTERRUPTED else message, err=True)
    raise typer.Exit(code)


def _file_error_message(e: OSError) -> str:
    what = (e.strerror or type(e).__name__).lower()
    if e.filename is None:
        return what
    return f"{e.filename}: {what}" + (f" (and {e.filename2})" if e.filename2 else "")


def _usage_message(e: UsageError) -> str:
    # A value the command refused says what was expected; a parsing error (a missing or unknown
    # option or command) points at the help.
    hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None and not isinstance(e, BadParameter) else ""
    return " ".join(e.format_message().split()) + hint


@contextmanager
def user_errors_reported(debug: bool) -> Iterator[None]:
    """The one handler: user errors become one line and an exit code (see the module docstring)."""
    try:
        yield
    except UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `zkauction CMD` with no arguments: help
            raise
        _fail(_usage_message(e), EXIT_USAGE)
    except KeyboardInterrupt as e:
        if debug:
            raise
        _fail(f"interrupted: {e}" if str(e) else "interrupted", EXIT_INTERRUPTED)
    except ZkAuctionError as e:
        if debug:
            raise
        _fail(str(e), e.exit_code)
    except _FILE_ERRORS as e:
        if debug:
            raise
        _fail(_file_error_message(e), EXIT_USAGE)
    except json.JSONDecodeError as e:
        if debug:
            raise
        _fail(f"not valid JSON: {e}", EXIT_USAGE)
    except OSError as e:  # another error the OS names a file for (e.g. a name too long)
        if debug or e.filename is None:
            raise
        _fail(_file_error_message(e), EXIT_USAGE)


class CommandGroup(TyperGroup):
    """The app's command group: every command (and the parsing of its arguments) runs inside
    :func:`user_errors_reported`, so `app(...)`, `CliRunner` and the console script behave alike."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        with user_errors_reported(debug=False):
            return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        with user_errors_reported(debug=bool(ctx.params.get("debug"))):
            return super().invoke(ctx)


app = typer.Typer(
    cls=CommandGroup,
    help="Credible, sealed-bid, revenue-optimal repeated auctions: learn, prove, run, audit.\n\n"
    "Exit codes: 0 success; 1 a check failed (a proof, an audit); 2 bad input (an argument, a file, a "
    "config; one line names it); 130 interrupted (Ctrl-C).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Each module defines ``register(app)``. Learning: train/evaluate/baselines; zk: compile/verify;
# protocol: run/audit/prove/penalty/demo; log: reading the auction log. A module not (yet) in the
# package is skipped.
_COMMAND_MODULES = ("zkauction.cli.learn", "zkauction.cli.zk", "zkauction.cli.protocol", "zkauction.cli.log",
                    "zkauction.cli.service")

for _name in _COMMAND_MODULES:
    try:
        _mod = importlib.import_module(_name)
    except ModuleNotFoundError as _e:
        if _e.name != _name:
            raise
        continue
    _mod.register(app)


def version_text() -> str:
    """``zkauction --version``: this package's version and the ezkl version it pins (proof and key
    formats change across ezkl versions), read from the installed metadata without importing ezkl."""
    from importlib import metadata

    from zkauction import __version__

    lines = [f"zkauction {__version__}"]
    try:
        pinned = next((r.split("==", 1)[1].split(";")[0].strip() for r in metadata.requires("zkauction") or []
                       if r.replace(" ", "").startswith("ezkl==")), None)
    except metadata.PackageNotFoundError:
        pinned = None
    try:
        installed: str | None = metadata.version("ezkl")
    except metadata.PackageNotFoundError:
        installed = None
    if pinned is not None:
        lines.append(f"ezkl {pinned} (pinned)" + ("" if installed in (None, pinned) else f", {installed} installed"))
    else:
        lines.append(f"ezkl {installed or 'not installed'}")
    return "\n".join(lines)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="print zkauction's and ezkl's versions and exit"),
    debug: bool = typer.Option(False, "--debug", envvar="ZKAUCTION_DEBUG",
                               help="show full tracebacks instead of one-line errors"),
) -> None:
    """zkauction: learn optimal auctions, prove their outcomes in zero knowledge, run them credibly."""


def main() -> None:
    """The ``zkauction`` console script (and ``python -m zkauction``)."""
    try:
        app(prog_name="zkauction")
    except KeyboardInterrupt:  # before or after a command (while importing, say): nothing to save
        typer.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
