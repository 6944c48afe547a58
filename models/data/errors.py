"""Errors raised for bad input files: they always name the file, line and field."""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """Any problem with a dataset that the user must fix."""


class DataFormatError(DataError):
    """A malformed dataset file.

    The message reads ``FILE:LINE: field 'NAME': what is wrong``, so an analyst
    can open the file at the right line without a traceback.
    """

    def __init__(self, path: Path | str, message: str, line: int | None = None,
                 field: str | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.field = field
        self.reason = message
        where = str(self.path) + (f":{line}" if line is not None else "")
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


class ChecksumError(DataError):
    """A downloaded or extracted file does not match its published sha256."""
