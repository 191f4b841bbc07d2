"""The errors a user can fix, under one base: the CLI and the flow catch `UserError` and print its
message as one line (path and cause), never a traceback. Anything else is a bug."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (input, corrections, methodology, database path); one line."""


class InputError(UserError):
    """The input cannot be used (no such folder, a source with no readable file, incomplete inputs)."""


class CorrectionError(UserError):
    """A correction file cannot be applied; the message names the file, line and field."""


class MethodologyError(UserError):
    """A methodology file breaks a rule; the message names file, entry and rule."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("methodology check failed:\n  " + "\n  ".join(problems))


class ComputeError(UserError):
    """The validated data cannot give a figure (e.g. a province without appraisal points)."""


class DatabaseError(UserError):
    """The DuckDB file cannot be used (not a DuckDB file, a folder, unwritable, an older schema)."""


class DatabaseLocked(DatabaseError):
    """Another process has the DuckDB file open for writing; nothing was written."""
