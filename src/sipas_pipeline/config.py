"""Configuration in one place: the environment a command sets up before it imports Prefect."""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

MIGRATED = "sipas-migrated.json"  # under PREFECT_HOME: the one marker of the database the embedded server migrated


def prefect_defaults(home: Path | None = None) -> None:
    """Offline, embedded-server defaults, each unless the user has set it: a project-local Prefect
    home, no analytics or telemetry, and a start-up timeout that survives the first database migration.
    Call it when a command starts, before Prefect is imported (Prefect reads its settings at import)."""
    os.environ.setdefault("PREFECT_HOME", str(home or Path.cwd() / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def prefect_database() -> dict[str, str | int | None]:
    """What identifies the embedded server's database: Prefect's version, its connection URL (the default SQLite
    file under PREFECT_HOME unless set) and, for a SQLite file, its inode (a replaced file is another database)."""
    url = (os.environ.get("PREFECT_SERVER_DATABASE_CONNECTION_URL") or os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL")
           or f"sqlite+aiosqlite:///{Path(os.environ['PREFECT_HOME']) / 'prefect.db'}")
    try:
        prefect = version("prefect")
    except PackageNotFoundError:
        prefect = None
    path = Path(url.split(":///", 1)[1]) if url.startswith("sqlite") and ":///" in url else None
    try:
        inode = path.stat().st_ino if path is not None else None
    except OSError:
        inode = -1  # no file yet: never migrated
    return {"prefect": prefect, "database": url, "inode": inode}


def migrated_already() -> bool:
    """Whether the embedded server of this Prefect version has migrated this very database before."""
    try:
        memo = json.loads((Path(os.environ["PREFECT_HOME"]) / MIGRATED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    now = prefect_database()
    return now["inode"] != -1 and memo == now


def remember_migrated() -> None:
    """After the embedded server answered with its migrations run: the next start may skip them."""
    if os.environ.get("PREFECT_API_DATABASE_MIGRATE_ON_START", "").lower() in ("false", "0"):
        return  # skipped this time: the memo stands as it is
    path = Path(os.environ["PREFECT_HOME"]) / MIGRATED
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(prefect_database()), encoding="utf-8")
    (path.parent / ".sipas-migrated").unlink(missing_ok=True)  # the second marker earlier versions wrote
