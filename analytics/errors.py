"""Errors raised by pure data work. All are permanent: retrying the same file cannot help."""

from __future__ import annotations


class DataError(Exception):
    """The file's content cannot be processed; the message says what is wrong and what to do."""


class UnreadableFileError(DataError):
    """The bytes are not the format the file name claims, or are damaged."""


class ContractError(DataError):
    """The data does not meet its dataset's contract (missing columns, wrong types...)."""


class MissingColumnsError(ContractError):
    """The file lacks columns its dataset's contract requires; carries its header and the settings that
    would map it."""

    def __init__(self, message: str, *, header: list[str], suggestion: dict[str, object]) -> None:
        super().__init__(message)
        self.header = header
        self.suggestion = suggestion


class ToleranceExceededError(ContractError):
    """Too many rows were rejected; the whole file is refused."""


class SettingsError(DataError):
    """A dataset's settings file gives a setting a value it cannot take."""


class HistoryInputError(DataError):
    """A model over a dataset's history was given input it cannot use (a missing column, a bad setting)."""
