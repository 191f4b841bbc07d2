"""The flow's deployments: the annual run on a cron schedule and the manual re-run. What `flows/annual_run.py`
serves and what a `prefect.yaml` declares take their names, schedule, parameters and limits from here."""

from __future__ import annotations

from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron

from sipas_pipeline.orchestration.flow import annual_run
from sipas_pipeline.orchestration.run import TIMEZONE

ANNUAL_CRON = "0 2 1 3 *"  # 02:00 on 1 March, Vietnam time: last year's survey is closed and checked


def latest_year() -> int:
    """The latest year with a methodology folder (the manual re-run's default year)."""
    from sipas_pipeline.methodology.scaffold import available_years

    return max(available_years())


def deployments(raw: str | None = None, db: str | None = None) -> list[RunnerDeployment]:
    """The annual run on a cron schedule (Asia/Ho_Chi_Minh) and the manual re-run with parameters;
    both one run at a time, as the DuckDB file has one writer."""
    common = {"raw": raw, "db": db}
    annual = annual_run.to_deployment(
        name="annual", schedules=[Cron(ANNUAL_CRON, timezone=TIMEZONE)], concurrency_limit=1,
        parameters=common | {"trigger": "schedule"}, entrypoint_type=EntrypointType.MODULE_PATH,
        description="SIPAS and PAR INDEX of last year, every 1 March at 02:00 Vietnam time.", tags=["sipas", "annual"])
    manual = annual_run.to_deployment(
        name="manual-rerun", concurrency_limit=1,
        parameters=common | {"year": latest_year(), "corrections": [], "trigger": "manual"},
        entrypoint_type=EntrypointType.MODULE_PATH, tags=["sipas", "rerun"],
        description="Re-run a year after data corrections: set year, raw, corrections (files) and db.")
    return [annual, manual]
