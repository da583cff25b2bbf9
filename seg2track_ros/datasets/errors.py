"""Errors of the dataset readers and writers.

Every error here derives from ``DatasetError`` (a ``ValueError``), so a command can catch
the one base class and print the message, which always says what to fix.
"""

from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """Base of every dataset read, write and simulation error."""


class FormatError(DatasetError):
    """A line of a dataset file that does not follow its format.

    The message reads ``FILE:LINE: problem`` (LINE 1-based, as editors count) so that a
    user can open the file at the offending line. ``line`` is None only for settings
    files (``seqinfo.ini``) whose problem is something missing, which has no line.
    """

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")


class DatasetFileError(DatasetError):
    """A dataset file that cannot be opened, read or written (missing, no permission)."""


class WriteError(DatasetError):
    """Results that cannot be written in the requested format (the message says why)."""
