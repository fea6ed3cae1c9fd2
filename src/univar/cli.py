"""The ``univar`` command line: one thin command per stage; the work is done by the library.

Bad input ends with one ``error: ...`` line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from typing import Annotated

import typer
from rich.logging import RichHandler

from univar.commands import COMMANDS, app, err, flag, mark_run_start
from univar.errors import SettingError, UnivarError
from univar.model.config import FLAGS
from univar.progress import command_run

for _command in COMMANDS:  # each module registers its commands on ``app``, in the order --help lists them
    importlib.import_module(f"univar.commands.{_command}")


def _configure_logging(verbose: bool) -> None:
    handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
    logger = logging.getLogger("univar")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


@app.callback()
def _root(verbose: Annotated[bool, flag("--verbose", "-v", help="Say more about what is done.")] = False) -> None:
    _configure_logging(verbose)
    mark_run_start()


class _Interrupted(BaseException):
    """Ctrl-C, raised by our SIGINT handler: typer turns a KeyboardInterrupt into a silent exit code."""


def _on_sigint(signum, frame) -> None:
    raise _Interrupted()


INTERRUPTED = "error: interrupted; finished work is kept (re-run to resume)"


def _plain_help_flag(command) -> None:
    """``--help`` of COMMAND and its subcommands shown as a plain flag.

    typer 0.29 prints every option's type, so its own help option reads ``--help <bool>``, as if it took a
    value; our flags avoid that with ``metavar=""`` (``commands.flag``), and this does the same for --help.
    """
    original = command.get_help_option

    def help_option(ctx):
        option = original(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _plain_help_flag(sub)


def _command():
    """The click command behind the typer app, with plain help flags."""
    command = typer.main.get_command(app)
    _plain_help_flag(command)
    return command


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; turn user errors into one ``error:`` line and exit code 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _configure_logging(False)
    previous = None
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        with command_run():  # notes that many calls reach (truncated texts) are told once, at the end
            code = _command()(args=argv, prog_name="univar", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):  # typer.Exit(n) comes back as a return value
            return code
    except (_Interrupted, KeyboardInterrupt):
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except SettingError as exc:  # a library setting, worded with the flag that sets it
        print(f"error: {exc.as_flag(FLAGS)}", file=sys.stderr)
        return 2
    except UnivarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permission denied: the environment, not the input
        where = f", {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Exception as exc:
        # usage errors (bad flag, bad value) from click, or from the copy of click that typer vendors
        if type(exc).__name__ in {"UsageError", "BadParameter", "MissingParameter", "NoSuchOption",
                                  "BadOptionUsage", "BadArgumentUsage", "NoArgsIsHelpError", "ClickException"}:
            message = " ".join(exc.format_message().split())
            print(f"error: {message}", file=sys.stderr)
            return 2
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
