"""The local servers the tool and its tests start on 127.0.0.1 (Chromium's DevTools, a Prefect server): a free
port to give one, whether a Prefect server answers its health check, and stopping a server started in its own
process group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import urllib.request


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    """Whether the Prefect server at API `url` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def warm_up(url: str) -> list[str]:
    """Have a Prefect server just started at API `url` do its first-request work now, beside the command's imports,
    not in the flow's first calls: FastAPI builds each router's routes on the first request that passes it (a path
    no router has passes them all: ~0.25 s), and the database's first session opens on the first query. Returns
    the paths asked for; an answer of any status (the unknown path's 404) or none at all is fine: this is no check."""
    asked = []
    for path, body in (("/sipas-warm-up", None), ("/flows/filter", b'{"limit": 1}')):
        request = urllib.request.Request(f"{url}{path}", data=body, headers={"Content-Type": "application/json"})
        asked.append(path)
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=10):
            pass
    return asked


def stop_group(proc: subprocess.Popen, timeout: float = 60) -> None:
    """Stop a process started in its own session (`start_new_session=True`) with its children, as systemd stops a
    unit: SIGTERM to the group, SIGKILL after `timeout` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
