"""What the whole test session shares across pytest-xdist workers: one folder and one Prefect server address,
chosen by the controller before the workers start (SIPAS_TEST_SHARED, PREFECT_API_URL in their environment, so
every worker and every `sipas` subprocess talks to that server and none starts Prefect's embedded one unless a
test removes the variable on purpose); the server itself is started once, by the controller or the first worker
that needs it, under a file lock, on a copy of the kept migrated database (kept_data, which also keeps the
full-size years). The controller stops the server and removes the folder when the session ends."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import kept_data

from sipas_pipeline.localhost import answers
from sipas_pipeline.orchestration.server import ONE_SHOT

ENV = "SIPAS_TEST_SHARED"
SERVER = "prefect-server.json"


def open_session() -> None:
    """In the controller (or a run without workers), before any worker starts and before Prefect is imported:
    the shared folder and the address the session's Prefect server will listen on (a free port below the
    kernel's ephemeral range, so no outgoing connection takes it before the server binds it)."""
    if ENV in os.environ:
        return
    os.environ[ENV] = tempfile.mkdtemp(prefix="sipas-tests-")
    for port in random.Random().sample(range(20000, 32000), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
        return
    raise RuntimeError("no free port for the tests' Prefect server")


def close_session() -> None:
    """In the controller at the end: stop the shared server and remove the shared folder."""
    shared = os.environ.pop(ENV, None)
    if not shared:
        return
    record = Path(shared) / SERVER
    if "prefect.logging.handlers" in sys.modules:  # without workers: this process's flows' logs reach the server first
        sys.modules["prefect.logging.handlers"].APILogWorker.drain_all(timeout=10)
    if record.is_file():
        pid = json.loads(record.read_text(encoding="utf-8"))["pid"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
            for _ in range(100):
                if _gone(pid):
                    break
                time.sleep(0.05)
            else:
                os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(shared, ignore_errors=True)


def _gone(pid: int) -> bool:
    """Whether the process has ended (reaped here when this process started it, by init otherwise)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def shared_dir() -> Path:
    return Path(os.environ[ENV])


@contextlib.contextmanager
def locked(name: str) -> Iterator[Path]:
    """An exclusive lock on `name` in the shared folder (one worker at a time)."""
    shared = shared_dir()
    with open(shared / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield shared
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def spawn_prefect_server() -> None:
    """Start the session's Prefect server at PREFECT_API_URL (a temporary SQLite database in the shared folder, a
    copy of the kept migrated one: kept_data.prefect_database)
    unless it is started, without waiting for it: in its own process group, so that it outlives whoever started
    it (the controller, early, or the first worker that needs it)."""
    url = os.environ["PREFECT_API_URL"]
    with locked("prefect-server") as shared:
        record = shared / SERVER
        if record.is_file():
            return
        kept_data.migrated_prefect_database(shared / "prefect.db")
        env = os.environ | {  # as Prefect starts its temporary server: no UI, the ephemeral server's services only
            "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{shared / 'prefect.db'}",
            "PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
        } | ONE_SHOT  # as `sipas run`'s own server: no automations, events not persisted (task runs are recorded)
        log = open(shared / "prefect-server.log", "wb")  # noqa: SIM115 (the server's, for as long as it runs)
        port = url.rsplit(":", 1)[1].split("/")[0]
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
                                 "--host", "127.0.0.1", "--port", port, "--log-level", "error", "--lifespan", "on"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        record.write_text(json.dumps({"pid": proc.pid, "url": url}), encoding="utf-8")


def start_prefect_server(timeout: float = 120) -> str:
    """The session's Prefect server, started if it is not, once it answers; its API URL."""
    spawn_prefect_server()
    url, shared = os.environ["PREFECT_API_URL"], shared_dir()
    pid = json.loads((shared / SERVER).read_text(encoding="utf-8"))["pid"]
    deadline = time.monotonic() + timeout
    while not answers(url):
        if _gone(pid) or time.monotonic() > deadline:
            raise RuntimeError(f"the tests' Prefect server did not start: see {shared / 'prefect-server.log'}")
        time.sleep(0.1)
    return url
