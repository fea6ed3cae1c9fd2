"""Errors that the command line shows as one ``error: ...`` line with exit code 2, never a traceback."""


class UnivarError(Exception):
    """A problem with what the user gave (a file, a flag, a setting, a model directory), worded for them.

    Every check of user input in univar raises this (or a subclass such as :class:`QAError`), so a caller can
    tell a mistake in the input from a bug: catch ``univar.UnivarError`` and show ``str(error)``, as the
    command line does. Its arguments are those of :class:`Exception`: the message.
    """


class QAError(UnivarError, ValueError):
    """Bad QA input: the message is ``<what>, <file>:<row>``."""

    def __init__(self, what: str, file: object, row: int = 0):
        self.what, self.file, self.row = what, str(file), row
        super().__init__(f"{what}, {file}:{row}")
