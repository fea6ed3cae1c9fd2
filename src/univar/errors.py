"""Errors that the command line shows as one ``error: ...`` line with exit code 2, never a traceback."""

from __future__ import annotations

from collections.abc import Mapping


class UnivarError(Exception):
    """A problem with what the user gave (a file, a flag, a setting, a model directory), worded for them.

    Every check of user input in univar raises this (or a subclass such as :class:`QAError`), so a caller can
    tell a mistake in the input from a bug: catch ``univar.UnivarError`` and show ``str(error)``, as the
    command line does. Its arguments are those of :class:`Exception`: the message.
    """


class QAError(UnivarError, ValueError):
    """Bad QA input: the message is ``<what>, <file>:<row>``, or ``<what>, <file>`` when ``row`` is 0, the file
    as a whole (missing, empty, unreadable): a row 0 would send a reader to a line that does not exist."""

    def __init__(self, what: str, file: object, row: int = 0):
        self.what, self.file, self.row = what, str(file), row
        super().__init__(f"{what}, {file}:{row}" if row else f"{what}, {file}")


class SettingError(UnivarError, ValueError):
    """A bad setting of a Python object (``ValueIdentification(split=...)``): ``name`` is the parameter and
    ``problem`` what is wrong with it, so the command line can word the same check with its flag."""

    def __init__(self, name: str, problem: str):
        self.name, self.problem = name, problem
        super().__init__(f"{name} {problem}")

    def as_flag(self, flags: Mapping[str, str] | None = None) -> str:
        """The message with the parameter as its command-line flag: ``--test-fraction must be ...``.

        ``flags`` maps the parameters whose flag is not their name with dashes (``lam`` -> ``--lambda``).
        """
        flag = (flags or {}).get(self.name) or f"--{self.name.replace('_', '-')}"
        return f"{flag} {self.problem}"
