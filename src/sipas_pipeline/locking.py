"""One holder at a time: an `fcntl` lock on a lock file that names its holder (run, year, PID, since) while it is
held. The DuckDB file's writers, a work folder's runs and the first start of Prefect's home each hold one. A marker
left by a holder that died (the kernel released its lock) is taken over, with a note."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_marker(f) -> dict | None:
    """The JSON marker in an open lock file, if any."""
    f.seek(0)
    try:
        return json.loads(f.read() or "null")
    except ValueError:
        return None


@contextlib.contextmanager
def pid_lock(path: Path, holder: dict[str, Any], busy: Callable[[dict], Exception], opening: Callable[[OSError], Exception],
             taken: Callable[[dict, str], str], wait: bool = False) -> Iterator[list[str]]:
    """Hold the lock file `path`, writing `holder` (plus PID and start time) into it. Held by another live process:
    `busy(its marker)` is raised at once (or, `wait`, this waits for it). A file that cannot be opened raises
    `opening(error)`. A marker left by a holder that is gone is taken over: `taken(marker, state)` is the note
    yielded. The lock file stays (empty) after release."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise opening(exc) from None
    with os.fdopen(fd, "r+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise busy(read_marker(f) or {}) from None
        notes = []
        old = read_marker(f)
        if old and "pid" in old:
            state = "no longer running" if not pid_alive(int(old["pid"])) else "not holding the lock"
            notes.append(taken(old, state))
        f.seek(0)
        f.truncate()
        f.write(json.dumps(holder | {"pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}))
        f.flush()
        try:
            yield notes
        finally:
            f.seek(0)
            f.truncate()
