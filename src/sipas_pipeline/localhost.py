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
