"""The errors a user can fix, under one base: the CLI and the flow catch `UserError` and print its
message as one line (path and cause), never a traceback. Anything else is a bug."""

from __future__ import annotations

import errno
import os
from pathlib import Path


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
        sep = " " if len(problems) == 1 else "\n  "  # one problem, one line (e.g. a year without a folder)
        super().__init__("methodology check failed:" + sep + "\n  ".join(problems))


class ComputeError(UserError):
    """The validated data cannot give a figure (e.g. a province without appraisal points)."""


class DatabaseError(UserError):
    """The DuckDB file cannot be used (not a DuckDB file, a folder, unwritable, an older schema)."""


class DatabaseLocked(DatabaseError):
    """Another process has the DuckDB file open for writing; nothing was written."""


class StorageError(UserError):
    """A folder or file cannot be written or read: no space left, permission denied, read-only."""


# OS errors a user fixes (free space, permissions, another folder): one line, not retried, not a bug
STORAGE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                  errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                  errno.EROFS: "read-only file system", errno.ENOTDIR: "not a directory",
                  errno.EISDIR: "is a directory"}


def storage_error(exc: BaseException, path: object = None) -> StorageError | None:
    """The one-line StorageError for an OS error a user can fix ("<path>: no space left on device"),
    or None for any other error. Polars reports I/O failures as its own errors, with the OS message
    inside or (a full disk mid-file) only "transport error": for those, and OS errors without a known
    cause, the folder `path` is looked at (read-only, full, not writable)."""
    code = getattr(exc, "errno", None)
    if code not in STORAGE_ERRNOS:
        text = str(exc)
        code = next((c for c, words in STORAGE_ERRNOS.items() if words in text.lower()
                     or f"os error {c})" in text), None)
        if code is None and path is not None and (isinstance(exc, OSError) or type(exc).__module__.startswith("polars")):
            code = folder_problem(Path(str(path)))
        if code is None:
            return None
    where = getattr(exc, "filename", None) or path
    return StorageError(f"{where}: {STORAGE_ERRNOS[code]}" if where else STORAGE_ERRNOS[code])


def folder_problem(path: Path) -> int | None:
    """Why nothing can be written under `path` (its nearest existing folder): EROFS, ENOSPC (under 1 MiB
    free), EACCES; None when it looks writable."""
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if st.f_bavail * st.f_frsize < 1 << 20:
        return errno.ENOSPC
    if not os.access(path, os.W_OK):
        return errno.EACCES
    return None
