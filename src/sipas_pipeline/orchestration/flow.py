"""The Prefect flow `sipas-annual-run` and its tasks. Each task calls one pure stage (`sipas_pipeline.stages`,
`corrections`, `publish`, `report`) and returns its typed report; data passes between them as Parquet in the
work folder's catalog, whose stage manifests are the one cache (`run.cached_stage`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Failed

from sipas_pipeline import publish as publishing
from sipas_pipeline import stages
from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.completeness import Missing
from sipas_pipeline.corrections import Correction, apply_corrections
from sipas_pipeline.errors import UserError, storage_error
from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.orchestration import artifacts
from sipas_pipeline.orchestration.run import Run, RunRecord, RunResult, survey_year
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
def report_task(year: int, report: ValidationReport, run_id: str, work: StageFolder) -> list[str]:
    """Prefect artifacts: the validation summary (markdown), the SIPAS and PAR INDEX rankings (tables)."""
    return artifacts.run_artifacts(load_methodology(year), report, run_id, stages.read_results(work)["ranks"])


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


def run_name() -> str:
    """Prefect flow-run name: says the year."""
    return f"sipas-{survey_year(flow_run.parameters.get('year'))}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


@flow(name="sipas-annual-run", flow_run_name=run_name, log_prints=False)
def annual_run(year: int | None = None, raw: str | None = None, db: str | None = None, work: str | None = None,
               corrections: list[str] | None = None, trigger: str = "manual",
               allow_incomplete: bool = False, report: bool = True) -> RunResult:
    """A raw survey year -> SIPAS and PAR INDEX tables in DuckDB: ingest, validate, corrections,
    compute, publish, report. Stages whose inputs did not change are served from their manifests.
    A province lacking inputs the methodology requires stops the run before publishing, unless
    `allow_incomplete` (then it is published marked incomplete). `report=False` publishes without
    building the analyst release (`sipas report` builds it later from the file). A user's mistake (input,
    corrections, methodology, a held database, a full disk) fails the run with its one-line message as the
    state message and no traceback; calling the flow raises that same error."""
    try:
        return run_year(survey_year(year), raw, db, work, corrections, trigger, allow_incomplete, report)
    except UserError as exc:
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc), data=exc)


def run_year(year: int, raw: str | None, db: str | None, work: str | None, corrections: list[str] | None,
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
