"""The Prefect flow `sipas-annual-run` and its tasks. Each task calls one pure stage (`sipas_pipeline.stages`,
`corrections`, `publish`, `report`) and returns its typed report; data passes between them as Parquet in the
work folder's catalog, whose stage manifests are the one cache (`run.cached_stage`)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.runtime import flow_run
from prefect.states import Failed

import sipas_pipeline
from sipas_pipeline import publish as publishing
from sipas_pipeline import stages
from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.completeness import Missing
from sipas_pipeline.corrections import Correction, apply_corrections
from sipas_pipeline.errors import UserError, storage_error
from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.orchestration import artifacts
from sipas_pipeline.orchestration.run import Run, RunRecord, RunResult, code_version, run_year_default
from sipas_pipeline.paths import data_root
from sipas_pipeline.stages import Computed, Corrected, Ingested, Published, Validated, ValidationReport


def retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry file and database I/O errors; never a user's mistake (a held database lock raises
    DatabaseLocked, which is neither), nor a full disk or a folder without permission (a StorageError's cause)."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError | duckdb.IOException) and storage_error(exc) is None


STAGE = {"retries": 2, "retry_delay_seconds": 1, "retry_condition_fn": retry_on_io, "cache_policy": NO_CACHE}


def timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Call fn(*args); return its result and the seconds it took."""
    t0 = time.perf_counter()
    out = fn(*args)
    return out, round(time.perf_counter() - t0, 3)


@task(name="ingest", **STAGE)
def ingest_task(year: int, raw: Path, work: StageFolder, expected: dict[str, str]) -> tuple[Ingested, float]:
    """Raw exports -> bronze Parquet; stops when the bytes read are not those the key was made of (`expected`)."""
    report, seconds = timed(stages.ingest, load_methodology(year), raw, work, expected)
    files = {s: len(f) for s, f in report.files.items()}
    get_run_logger().info("ingest: %s files read, %d unreadable, %.2f s", files, len(report.unreadable_files), seconds)
    return report, seconds


@task(name="validate", **STAGE)
def validate_task(year: int, work: StageFolder) -> tuple[Validated, float]:
    """Bronze -> silver + quarantine Parquet, with the row accounting."""
    checked, seconds = timed(stages.validate, load_methodology(year), work)
    get_run_logger().info("validate: %s, %.2f s", checked.sources, seconds)
    return checked, seconds


@task(name="corrections", **STAGE)
def corrections_task(year: int, work_in: StageFolder, work: StageFolder, corrections: list[Correction],
                     batches: list[dict[str, Any]]) -> tuple[Corrected, float]:
    """Row corrections applied to silver + quarantine, corrected forms validated again."""
    out, seconds = timed(apply_corrections, load_methodology(year), work_in, work, corrections, batches)
    get_run_logger().info("corrections: %d applied, %s, %.2f s", len(out["applied"]), out["sources"], seconds)
    return Corrected.from_dict(out), seconds


@task(name="compute", **STAGE)
def compute_task(year: int, work: StageFolder, incomplete: Missing,
                 previous: pl.DataFrame | None = None) -> tuple[Computed, float]:
    """Silver -> result tables (indicators, SIPAS tree, PAR INDEX, ranks); `previous`: last year's results
    (`publish.previous_results`); `incomplete`: the provinces published as incomplete."""
    summary, seconds = timed(stages.compute, load_methodology(year), work, previous, incomplete)
    get_run_logger().info("compute: national %s, %.2f s", summary.national, seconds)
    return summary, seconds


@task(name="publish", **STAGE)
def publish_task(year: int, work: StageFolder, db: str, run: RunRecord, corrections: list[dict[str, Any]]) -> Published:
    """Result tables + quarantine + corrections audit -> DuckDB, one transaction into the next file, swapped
    in; the results hash is of the tables published (a cached compute's too)."""
    out = Published.from_dict(publishing.publish(Path(db), load_methodology(year), run.as_dict(), stages.read_results(work),
                                                 stages.read_quarantine(work), corrections=corrections))
    logger = get_run_logger()
    for note in out.notes:
        logger.warning("publish: %s", note)
    logger.info("publish: run %s into %s, %.2f s", run.run_id, db, out.seconds)
    return out


@task(name="report", cache_policy=NO_CACHE)
def report_task(year: int, report: ValidationReport, run_id: str, work: StageFolder,
                corrections: list[dict[str, Any]] | None = None) -> list[str]:
    """Prefect artifacts: the validation summary (markdown, with the corrections applied), the SIPAS and PAR INDEX
    rankings (tables)."""
    return artifacts.run_artifacts(load_methodology(year), report, run_id, stages.read_results(work)["ranks"], corrections)


@task(name="release", cache_policy=NO_CACHE)
def release_task(year: int, db: str, out: Path) -> Any:
    """The analyst release after publish (report.build: HTML report, PNGs, workbook, CSVs), linked as an artifact.
    A user's problem with the release (a full disk, the folder) is returned as its one line, not raised: the run is
    published whatever happens to its release."""
    from sipas_pipeline.report import build

    try:
        files = build(Path(db), year, out)
    except UserError as exc:
        return str(exc)
    artifacts.release_artifact(year, files.html, files.workbook)
    return files


def started_by() -> str:
    """What started this flow run, as Prefect knows it: `schedule` (a deployment's schedule made it), `manual` (a
    deployment run somebody asked for: the UI, `prefect deployment run`, the API) or `command` (no deployment:
    `sipas run`, a direct call)."""
    context = FlowRunContext.get()
    run = context.flow_run if context else None
    if run is None or run.deployment_id is None:
        return "command"
    return "schedule" if run.auto_scheduled else "manual"


def run_name() -> str:
    """Prefect flow-run name: says the year."""
    p = flow_run.parameters
    return f"sipas-{run_year_default(p.get('year'), started_by(), p.get('db'))}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def user_error_names(kind: type[UserError] = UserError) -> set[str]:
    """The names of UserError and of every kind of it."""
    return {kind.__name__}.union(*(user_error_names(k) for k in kind.__subclasses__()))


class OneErrorLine(logging.Filter):
    """A user's mistake is one ERROR line, the flow's own (`annual_run`): Prefect's engine logs the UserError that
    ended a flow run again with its traceback ("Engine execution exited with unexpected exception"): dropped; a task
    a UserError failed logs "Finished in state Failed(... <the error>)": kept, at INFO. Any other exception keeps its
    lines and traceback (a bug)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], UserError):
            return False
        if record.levelno >= logging.ERROR and any(f"encountered an exception {name}:" in record.getMessage()
                                                   for name in user_error_names()):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


for _logger in ("prefect.flow_runs", "prefect.task_runs"):
    logging.getLogger(_logger).addFilter(OneErrorLine())
TIMEOUT_SECONDS = 2 * 3600  # a full-size year takes ~15 s: a run still going after two hours is stuck


@flow(name="sipas-annual-run", flow_run_name=run_name, log_prints=False, timeout_seconds=TIMEOUT_SECONDS)
def annual_run(year: int | None = None, raw: str | None = None, db: str | None = None, work: str | None = None,
               corrections: list[str] | str | None = None, allow_incomplete: bool = False,
               report: bool = True) -> RunResult:
    """A raw survey year -> SIPAS and PAR INDEX tables in DuckDB: ingest, validate, corrections,
    compute, publish, report. Stages whose inputs did not change are served from their manifests.
    A province lacking inputs the methodology requires stops the run before publishing, unless
    `allow_incomplete` (then it is published marked incomplete). `report=False` publishes without
    building the analyst release (`sipas report` builds it later from the file). A user's mistake (input,
    corrections, methodology, a held database, a full disk) fails the run with its one-line message as the
    state message and no traceback; calling the flow raises that same error. Relative paths resolve against the
    data root (SIPAS_DATA), correction files (one name or a list) under its corrections folder. Without `year`, a
    scheduled run computes last year, any other the latest year published in the DuckDB file (else last year).
    Every run is recorded in the DuckDB `runs` table, refused and failed ones with their one-line reason."""
    trigger = started_by()
    get_run_logger().info("sipas-pipeline %s from %s; data root %s; trigger %s", code_version(),
                          Path(sipas_pipeline.__file__).parent, data_root(), trigger)
    try:
        return run_year(run_year_default(year, trigger, db), raw, db, work, corrections, trigger, allow_incomplete,
                        report)
    except UserError as exc:
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc), data=exc)


def run_year(year: int, raw: str | None, db: str | None, work: str | None, corrections: list[str] | str | None,
             trigger: str, allow_incomplete: bool = False, report: bool = True) -> RunResult:
    """The body of `annual_run`: the stages in order, each given the task that does its work."""
    run = Run.start(year, raw, db, work, corrections, trigger, allow_incomplete, report)
    with contextlib.ExitStack() as work_folder:
        with run.recording_failure():
            work_folder.enter_context(run.holding_work())  # one run per work folder, until its record is written
            run.ingest(ingest_task)
            run.validate(validate_task)
            run.correct(corrections_task)
            run.check_completeness()
            run.compute(compute_task)
            run.publish(publish_task)
        run.report_artifacts(report_task)
        if report:
            run.release(release_task)
        return run.result()
