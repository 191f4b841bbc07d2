"""Configuration in one place: the environment a command sets up before it imports Prefect."""

from __future__ import annotations

import os
from pathlib import Path


def prefect_defaults(home: Path | None = None) -> None:
    """Offline, embedded-server defaults, each unless the user has set it: a project-local Prefect
    home, no analytics or telemetry, and a start-up timeout that survives the first database migration.
    Call it when a command starts, before Prefect is imported (Prefect reads its settings at import)."""
    os.environ.setdefault("PREFECT_HOME", str(home or Path.cwd() / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
