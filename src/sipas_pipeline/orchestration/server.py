"""The embedded Prefect server's lifecycle: the one module of the project that touches a private Prefect name.

Prefect starts its temporary server (`SubprocessASGIServer`, a uvicorn child process) on first use and stops it
from an atexit hook. `sipas run` starts it itself, first, and records its PID under PREFECT_HOME: the CLI turns
SIGTERM / SIGHUP into a normal exit (so the hook runs; SIGINT already does), and a run killed with SIGKILL, which
runs no hook, leaves a record the next `sipas run` finds and acts on.

Prefect has no public way to learn the server's PID the moment its process exists (before it answers, several
seconds later): `SubprocessASGIServer._run_uvicorn_command` (Prefect's own command and settings for it) is
wrapped to record the PID. `PRIVATE_USE` names that use; `tests/test_prefect_private.py` checks it against the
installed (locked) Prefect, and no other module may use a private Prefect name (the same test greps for it)."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil

from sipas_pipeline.locking import pid_lock

PRIVATE_USE = ("prefect.server.api.server", "SubprocessASGIServer", "_run_uvicorn_command")


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
        except (OSError, ValueError):
            continue
        if same_process(r["owner"], r["owner_started"]):
            continue  # its run is still going
        server = same_process(r["server"], r["server_started"])
        if server is not None:
            server.terminate()
            try:
                server.wait(5)
            except psutil.TimeoutExpired:
                server.kill()
            stopped.append(r["server"])
        record.unlink(missing_ok=True)
    return stopped


def start_embedded_server() -> None:
    """Before a run without PREFECT_API_URL: stop servers orphaned by killed runs, start Prefect's temporary
    server now and record its PID the moment its process exists, so that a run killed while the server is
    still starting (several seconds) leaves a record too (the record goes when this process exits normally)."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return
    from prefect.server.api.server import SubprocessASGIServer  # 1.6 s of imports: only when it is needed

    stop_orphan_servers()
    server = SubprocessASGIServer()
    spawn = getattr(server, PRIVATE_USE[2])

    def spawn_and_record() -> subprocess.Popen:
        process = spawn()
        record_server(process.pid, server.api_url)
        return process

    setattr(server, PRIVATE_USE[2], spawn_and_record)  # called again on another port when the first is taken
    with first_start():
        server.start()


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
