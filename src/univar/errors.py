"""Errors that the command line shows as one ``error: ...`` line with exit code 2, never a traceback."""


class UnivarError(Exception):
    """A problem with what the user gave (a file, a flag, a model directory), worded for them."""


class QAError(UnivarError, ValueError):
    """Bad QA input: the message is ``<what>, <file>:<row>``."""

    def __init__(self, what: str, file: object, row: int = 0):
        self.what, self.file, self.row = what, str(file), row
        super().__init__(f"{what}, {file}:{row}")
