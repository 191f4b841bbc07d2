"""The Prefect flow `sipas-fieldwork` and its deployment `fieldwork` (live fieldwork, `sipas_pipeline.fieldwork`,
wired): every run takes the inbox's new batches one at a time (a task each, its quarantine reasons logged and
kept as an artifact, the page rewritten after it), then refreshes the provisional figures and the `fieldwork_*`
tables once. The
deployment runs on an interval schedule, one run at a time (a run that would overlap is cancelled: the next one
takes what it left); `sipas fieldwork submit` may start a run at once. The season's lock (`<season>/.lock`)
keeps any two takers (the deployment, the command) from taking batches at the same time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Interval

from sipas_pipeline.errors import InputError
from sipas_pipeline.fieldwork.inbox import pending
from sipas_pipeline.fieldwork.live import fieldwork_year, reasons_line, refresh, take_batch
from sipas_pipeline.fieldwork.season import Season, inbox_dir, season_dir, season_lock
from sipas_pipeline.methodology import Methodology, load_methodology
from sipas_pipeline.orchestration.run import TIMEZONE
from sipas_pipeline.paths import default_db

INTERVAL_SECONDS = 60  # batches are taken within the minute they arrive
DEPLOYMENT = "sipas-fieldwork/fieldwork"


@task(name="take-batch", cache_policy=NO_CACHE)
def take_task(year: int, season: str, source: str, path: str, page: str) -> dict[str, Any]:
    """One batch taken, the page rewritten after it."""
    entry = take_batch(load_methodology(year), Season(Path(season)), source, Path(path), Path(page))
    get_run_logger().info(reasons_line(entry))
    return entry


@task(name="refresh", cache_policy=NO_CACHE)
def refresh_task(year: int, season: str, db: str, page: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    done = refresh(load_methodology(year), Season(Path(season)), Path(db), Path(page), entries)
    return {"status": {k: str(v) if v is not None and not isinstance(v, int | float | bool) else v
                       for k, v in done.status.items()}, "page": done.page}


def batches_markdown(entries: list[dict[str, Any]]) -> str:
    """The batches of a run and every quarantine reason, for the run's artifact."""
    lines = ["| # | file | status | read | valid | quarantined | reasons |", "|---|---|---|---|---|---|---|"]
    for e in entries:
        why = ", ".join(f"{r} {n}" for r, n in e.get("reasons", {}).items()) or e.get("note") or ""
        lines.append(f"| {e['seq']} | {e['file']} | {e['status']} | {e['read']} | {e['valid']} | {e['quarantined']} | {why} |")
    return "\n".join(lines)


@flow(name="sipas-fieldwork", log_prints=False)
def fieldwork_run(year: int | None = None, inbox: str | None = None, season: str | None = None, db: str | None = None,
                  page: str | None = None, target_scale: float | None = None, limit: int | None = None) -> dict[str, Any]:
    """Take the inbox's new batches one at a time (the page rewritten after each), then refresh the provisional
    figures and the fieldwork_* tables once (one DuckDB file swapped in)."""
    y = fieldwork_year(year)
    root = Path(season) if season else season_dir(y)
    box = Path(inbox) if inbox else inbox_dir(y)
    if not box.is_dir() and not (root / "batches.json").is_file():  # outside the window: nothing ever arrived
        get_run_logger().info(f"fieldwork {y}: no inbox ({box}) and no season yet: nothing to take")
        return {"year": y, "taken": [], "entries": [], "status": None, "page": None}
    m = load_methodology(y)
    with season_lock(root):
        s = Season.open(root, target_scale=target_scale)
        where = Path(page) if page else s.page_path
        entries = [take_task(y, str(s.root), source, str(path), str(where)) for source, path in pending(m, s, box)[:limit]]
        target = Path(db) if db else default_db()
        # nothing new: the tables and the page stand as the last run left them (no copy of the file every minute)
        out = (refresh_task(y, str(s.root), str(target), str(where), entries) if entries or not where.is_file()
               else {"status": None, "page": str(where)})
    if entries:
        create_markdown_artifact(batches_markdown(entries), key=f"fieldwork-{y}-batches",
                                 description=f"Batches taken by this run ({len(entries)}) and their quarantine reasons")
    return {"year": y, "taken": [e["seq"] for e in entries], "entries": entries} | out


def fieldwork_deployment(year: int | None = None, inbox: str | None = None, season: str | None = None,
                         db: str | None = None, page: str | None = None, target_scale: float | None = None,
                         interval: int = INTERVAL_SECONDS) -> RunnerDeployment:
    """The deployment `fieldwork`: every `interval` seconds, one run at a time (an overlapping run is cancelled)."""
    params = {k: v for k, v in {"year": year, "inbox": inbox, "season": season, "db": db, "page": page,
                                "target_scale": target_scale}.items() if v is not None}
    return fieldwork_run.to_deployment(
        name="fieldwork", schedules=[Interval(interval, timezone=TIMEZONE)] if interval else None,
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        parameters=params, entrypoint_type=EntrypointType.MODULE_PATH, tags=["sipas", "fieldwork"],
        description="Live fieldwork: take new batches from the inbox, refresh the provisional figures (fieldwork_*).")


def check_year(m: Methodology) -> None:
    """A year whose methodology has no fieldwork block cannot be measured against a target."""
    if "fieldwork" not in m.meta:
        raise InputError(f"methodology {m.year}: no fieldwork block (target_forms, behind_schedule) in methodology.yaml")
