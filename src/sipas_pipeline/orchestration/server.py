"""The embedded Prefect server's lifecycle, with Prefect's public API only.

Prefect starts its temporary server (`prefect.server.api.server.SubprocessASGIServer`, a uvicorn child process) on
first use and stops it from an atexit hook. `sipas run` starts it itself, first, and records its PID under
PREFECT_HOME the moment the process exists: `start()` sets the server's `server_process` before it waits (seconds)
for the server to answer, so `start()` runs in a thread while this one records the PID and the command goes on
importing the flow. The CLI turns SIGTERM / SIGHUP into a normal exit (so the hook runs; SIGINT already does), and
a run killed with SIGKILL, which runs no hook, leaves a record the next `sipas run` finds and acts on. No module of
the project uses a private Prefect name (`tests/test_prefect_private.py` greps for them); this is the one module
that would be allowed one, if Prefect's public API ever stopped sufficing."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from sipas_pipeline.config import remember_migrated, skip_migrations_if_done
from sipas_pipeline.locking import pid_lock


def server_records() -> Path:
    """Folder of the records of temporary Prefect servers started by `sipas run` (one JSON file per run)."""
    return Path(os.environ["PREFECT_HOME"]) / "sipas-servers"


def same_process(pid: int, started: float) -> psutil.Process | None:
    """The live process `pid` if it is the one that started at `started` (not a reused PID), else None."""
    try:
        proc = psutil.Process(pid)
        return proc if abs(proc.create_time() - started) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def stop_orphan_servers() -> list[int]:
    """Stop the temporary Prefect servers whose `sipas run` is gone (killed); return their PIDs."""
    stopped = []
    for record in sorted(server_records().glob("*.json")) if server_records().is_dir() else []:
        try:
            r = json.loads(record.read_text())
            owner, owner_started, pid, started = r["owner"], r["owner_started"], r["server"], r["server_started"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a record of ours
        if same_process(owner, owner_started):
            continue  # its run is still going
        server = same_process(pid, started)
        if server is not None:
            server.terminate()
            try:
                server.wait(5)
            except psutil.TimeoutExpired:
                server.kill()
            stopped.append(pid)
        record.unlink(missing_ok=True)
    return stopped


class Starting:
    """Prefect's temporary server on its way up: `wait()` returns once it answers (or raises why it did not)."""

    def __init__(self, server: Any = None) -> None:
        self.server, self.error, self.thread = server, None, None
        if server is None:
            return
        self.thread = threading.Thread(target=self._start, name="sipas-prefect-server", daemon=True)
        self.thread.start()
        self.watcher = threading.Thread(target=self._record, name="sipas-prefect-server-pid", daemon=True)
        self.watcher.start()

    def _start(self) -> None:
        try:
            with first_start():
                self.server.start()
            remember_migrated()  # it answered: its database is this Prefect's (the next start skips the check)
        except BaseException as exc:  # raised again by wait(), in the command's thread
            self.error = exc

    def _record(self) -> None:
        """Record the server's process as soon as it exists (and again if Prefect retries on another port)."""
        recorded = None
        while True:
            process = self.server.server_process
            if process is not None and process is not recorded:
                record_server(process.pid, self.server.api_url)
                recorded = process
            if not self.thread.is_alive():
                return
            self.thread.join(0.005)

    def wait(self) -> None:
        """Block until the server answers; a server that could not start raises Prefect's error here."""
        for thread in (self.thread, getattr(self, "watcher", None)):
            while thread is not None and thread.is_alive():
                thread.join(0.05)  # in short steps: the signal handlers of the command's thread still run
        if self.error is not None:
            raise self.error


def start_embedded_server(wait: bool = True) -> Starting:
    """Before a run without PREFECT_API_URL: stop servers orphaned by killed runs, start Prefect's temporary
    server now and record its PID the moment its process exists, so that a run killed while the server is
    still starting (several seconds) leaves a record too (the record goes when this process exits normally).
    `wait=False` returns while the server starts (the caller then imports the flow and calls `wait()`)."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return Starting()
    from prefect.server.api.server import SubprocessASGIServer  # 1.6 s of imports: only when it is needed

    stop_orphan_servers()
    skip_migrations_if_done()  # only this server: never a server the tests or an operator start from this environment
    starting = Starting(SubprocessASGIServer())
    if wait:
        starting.wait()
    return starting


MIGRATED = ".sipas-migrated"  # in PREFECT_HOME once a server started there has migrated Prefect's database


@contextlib.contextmanager
def first_start() -> Iterator[None]:
    """Serialise the first start of a server on a new Prefect home: the first migrates Prefect's database (~30 s),
    and two runs migrating the same database at once fail with a migration traceback. The first holds
    `PREFECT_HOME/.sipas-first-start.lock` (with its PID) while its server starts; a second waits for it, then finds
    the database migrated. Later starts (the marker is there) take no lock."""
    home = Path(os.environ["PREFECT_HOME"])
    if (home / MIGRATED).is_file():
        yield
        return
    home.mkdir(parents=True, exist_ok=True)
    with pid_lock(home / ".sipas-first-start.lock", {"run_id": f"first start, PID {os.getpid()}", "year": None},
                  lambda held: RuntimeError("unreachable: the lock is waited for"), lambda exc: exc,
                  lambda old, state: "", wait=True):
        yield
        (home / MIGRATED).write_text("Prefect's database here has been migrated by a first start\n", encoding="utf-8")


def record_server(pid: int, url: str) -> None:
    """Record the temporary server `pid` as this process's (owner and both start times: PIDs are reused)."""
    child, me = psutil.Process(pid), psutil.Process()
    server_records().mkdir(parents=True, exist_ok=True)
    record = server_records() / f"{me.pid}.json"
    record.write_text(json.dumps({"owner": me.pid, "owner_started": me.create_time(), "server": child.pid,
                                  "server_started": child.create_time(), "url": url}))
    atexit.register(record.unlink, missing_ok=True)
