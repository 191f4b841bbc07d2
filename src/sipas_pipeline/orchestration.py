"""The Prefect flow: the only module of the package that imports Prefect. Each task calls one pure
stage of `sipas_pipeline.stages`; data passes between them as Parquet in the work folder's catalog
(`sipas_pipeline.catalog`), whose stage manifests are the one cache (a stage whose output is complete
for its content key is not run again). Prefect's defaults (`config.prefect_defaults`) are applied by the
command that starts a run, before Prefect is imported, never by importing this module."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import psutil
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.runtime import flow_run
from prefect.schedules import Cron
from prefect.states import Failed

from sipas_pipeline import completeness, stages
from sipas_pipeline import publish as publishing
from sipas_pipeline.catalog import Catalog, StageFolder
from sipas_pipeline.config import prefect_defaults
from sipas_pipeline.corrections import Correction, apply_corrections, corrections_key, overlay_raw, read_corrections
from sipas_pipeline.errors import InputError, UserError, storage_error
from sipas_pipeline.hashing import frames_sha256
from sipas_pipeline.methodology import Methodology, load_methodology
from sipas_pipeline.paths import default_db, year_dir
from sipas_pipeline.stages import TOP_REASONS, Computed, Ingested, Report, Validated

__all__ = ["RunRecord", "RunResult", "annual_run", "deployments", "prefect_defaults", "start_embedded_server",
           "stop_orphan_servers"]
TIMEZONE = "Asia/Ho_Chi_Minh"


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


# ---- the stages as Prefect tasks: each returns (its report as a dict, seconds) ---------------------------------

@task(name="ingest", **STAGE)
def ingest_task(year: int, raw: str, work: str) -> tuple[dict[str, Any], float]:
    """Raw exports -> bronze Parquet."""
    report, seconds = timed(stages.ingest, load_methodology(year), Path(raw), StageFolder(Path(work)))
    files = {s: len(f) for s, f in report.files.items()}
    get_run_logger().info("ingest: %s files read, %d unreadable, %.2f s", files, len(report.unreadable_files), seconds)
    return report.as_dict(), seconds


@task(name="validate", **STAGE)
def validate_task(year: int, work: str) -> tuple[dict[str, Any], float]:
    """Bronze -> silver + quarantine Parquet, with the row accounting."""
    checked, seconds = timed(stages.validate, load_methodology(year), StageFolder(Path(work)))
    get_run_logger().info("validate: %s, %.2f s", checked.sources, seconds)
    return checked.as_dict(), seconds


@task(name="corrections", **STAGE)
def corrections_task(year: int, work_in: str, work: str, corrections: list[dict[str, Any]],
                     batches: list[dict[str, Any]]) -> tuple[dict[str, Any], float]:
    """Row corrections applied to silver + quarantine, corrected forms validated again."""
    parsed = [Correction(**c) for c in corrections]
    out, seconds = timed(apply_corrections, load_methodology(year), StageFolder(Path(work_in)), StageFolder(Path(work)),
                         parsed, batches)
    get_run_logger().info("corrections: %d applied, %s, %.2f s", len(out["applied"]), out["sources"], seconds)
    return out, seconds


@task(name="compute", **STAGE)
def compute_task(year: int, work: str, incomplete: dict[str, dict[str, str]],
                 previous: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], float]:
    """Silver -> result tables (indicators, SIPAS tree, PAR INDEX, ranks); `previous`: rows of
    `publish.previous_results`; `incomplete`: the provinces published as incomplete."""
    prev = pl.DataFrame(previous) if previous else None
    summary, seconds = timed(stages.compute, load_methodology(year), StageFolder(Path(work)), prev, incomplete)
    get_run_logger().info("compute: national %s, %.2f s", summary.national, seconds)
    return summary.as_dict(), seconds


@task(name="publish", **STAGE)
def publish_task(year: int, work: str, db: str, run: dict[str, Any], corrections: list[dict[str, Any]]) -> dict[str, Any]:
    """Result tables + quarantine + corrections audit -> DuckDB, one transaction into the next file, swapped
    in; the results hash is of the tables published (a cached compute's too)."""
    m = load_methodology(year)
    out = publishing.publish(Path(db), m, run, stages.read_results(Path(work)), stages.read_quarantine(Path(work)),
                             corrections=corrections)
    logger = get_run_logger()
    for note in out["notes"]:
        logger.warning("publish: %s", note)
    logger.info("publish: run %s into %s, %.2f s", run["run_id"], db, out["seconds"])
    return out


@dataclass
class StageRun:
    """One stage of a run: its name, seconds (0 when served from its manifest) and whether it was."""

    stage: str
    seconds: float
    cached: bool = False


def cached_stage(out: StageFolder, stage: str, key: str, task_fn: Any, *args: Any) -> tuple[dict[str, Any], StageRun]:
    """Run a stage unless `out` holds its manifest for `key` (then its recorded report, 0 s). The manifest is
    removed before the stage runs and written after every file of its output: the only proof of completion."""
    report = out.cached(stage, key)
    if report is not None:
        return report, StageRun(task_fn.name, 0.0, True)
    out.forget(stage)
    report, seconds = task_fn(*args)
    out.write_manifest(stage, key, report)
    return report, StageRun(task_fn.name, seconds)


@dataclass
class RunRecord:
    """The record of a run, as published in the `runs` table (`publish.run_row`) and written to the catalog."""

    run_id: str
    started_at: datetime
    flow_run_id: str
    code_version: str
    parameters: dict[str, Any]
    timings: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    accounting: list[dict[str, Any]] = field(default_factory=list)
    unreadable_files: list[dict[str, Any]] = field(default_factory=list)
    ignored_files: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class RunResult(Report):
    """What a published run returns (the flow's result; `sipas run --json` prints `public()`)."""

    run_id: str
    status: str
    year: int
    db: str
    raw: str
    flow_run_id: str
    sources: dict[str, dict[str, int]]
    unreadable_files: list[dict[str, Any]]
    ignored_files: list[dict[str, Any]]
    top_reasons: dict[str, dict[str, int]]
    timings: dict[str, float]
    cached: list[str]
    corrections: list[dict[str, Any]]
    artifacts: list[str]
    results_hash: str
    national: dict[str, float]
    groups: dict[str, int]
    incomplete: dict[str, str]
    sipas: dict[str, list[dict[str, Any]]]
    par: dict[str, list[dict[str, Any]]]
    release: dict[str, Any] | None = None  # the analyst release's files (report.build), after publish

    def public(self) -> dict[str, Any]:
        """The fields `sipas run --json` prints (all but the quarantine reasons and the artifacts' keys)."""
        return {k: v for k, v in self.as_dict().items() if k not in ("top_reasons", "artifacts")}


class Run:
    """One run of a year through the stages, in order; each method is one stage and keeps what it made."""

    def __init__(self, m: Methodology, raw: str, db: str, work: str, fixes: list[Correction], files: list[str],
                 trigger: str, allow_incomplete: bool, report: bool = True) -> None:
        self.m, self.raw, self.db, self.allow_incomplete = m, raw, db, allow_incomplete
        self.catalog = Catalog(Path(work))
        self.fixes, self.fixes_key = fixes, corrections_key(fixes)
        self.record = RunRecord(
            run_id=new_run_id(m.year), started_at=datetime.now(UTC), flow_run_id=str(flow_run.id or ""),
            code_version=code_version(),
            parameters={"year": m.year, "raw": raw, "db": db, "work": work, "corrections": files,
                        "trigger": trigger, "allow_incomplete": allow_incomplete, "report": report,
                        "design": m.meta.get("design", {})})  # the uncertainty settings (rank seed, draws) on record
        self.stages: list[StageRun] = []
        self.applied: list[dict[str, Any]] = [f.audit(0, "replaced") for f in fixes]
        self.missing: completeness.Missing = {}
        self.release_files: dict[str, Any] | None = None

    @classmethod
    def start(cls, year: int, raw: str | None, db: str | None, work: str | None, corrections: list[str] | None,
              trigger: str, allow_incomplete: bool, report: bool = True) -> Run:
        """Check what a run needs before any stage: correction files, the raw folder, the DuckDB file."""
        m = load_methodology(year)
        raw, db = str(raw or year_dir(year, "raw")), str(db or default_db())
        fixes = read_corrections(m, [Path(c) for c in corrections or []])  # a bad file stops here, before anything
        stages.check_raw(m, Path(raw))
        publishing.check_database(Path(db))  # a file a run could not publish into stops here, before the stages
        return cls(m, raw, db, str(work or year_dir(year, "work")), fixes, [str(c) for c in corrections or []], trigger,
                   allow_incomplete, report)

    def ingest(self) -> None:
        """Raw exports (with re-sent batches in place) -> bronze, unless the inputs' content is already there."""
        raw = overlay_raw(self.m, Path(self.raw), self.fixes, self.catalog.overlay(self.fixes_key))
        self.key = stages.inputs_key(self.m, raw)
        self.inputs = self.out = self.catalog.inputs(self.key)
        report, done = cached_stage(self.inputs, "ingest", self.key, ingest_task, self.m.year, str(raw), str(self.inputs.root))
        self.ingested = Ingested.from_dict(report)
        self.stages.append(done)

    def validate(self) -> None:
        """Bronze -> silver + quarantine."""
        report, done = cached_stage(self.inputs, "validate", self.key, validate_task, self.m.year, str(self.inputs.root))
        self.checked = Validated.from_dict(report)
        self.stages.append(done)

    def correct(self) -> None:
        """Row corrections (set, move, withdraw, keep) -> a corrected copy of silver + quarantine."""
        if not any(f.action != "replace_batch" for f in self.fixes):
            return
        self.out = self.inputs.corrected(self.fixes_key)
        fixed, done = cached_stage(self.out, "correct", f"{self.key}-{self.fixes_key}", corrections_task, self.m.year,
                                   str(self.inputs.root), str(self.out.root), [f.row() for f in self.fixes],
                                   self.checked.batches)
        self.checked = Validated(sources=fixed["sources"], batches=fixed["batches"],
                                 top_reasons=self.checked.top_reasons | fixed["top_reasons"])
        self.applied = fixed["applied"]
        self.stages.append(done)

    def check_completeness(self) -> None:
        """Stop before compute when a province lacks what the methodology needs (unless allowed)."""
        self.report = stages.validation_report(self.m, self.ingested, self.checked)
        r = self.record
        r.inputs = stages.run_inputs(self.ingested, self.checked)
        r.unreadable_files, r.ignored_files = self.report.unreadable_files, self.report.ignored_files
        r.accounting = [{"source": s} | c for s, c in self.report.sources.items()]
        self.missing = completeness.assess(self.m, self.out, self.ingested.files, self.checked.batches,
                                           self.report.unreadable_files)
        if self.missing and not self.allow_incomplete:
            raise InputError(completeness.message(self.m, self.missing))

    def compute(self) -> None:
        """Silver -> result tables; keyed on the inputs, the corrections and last year's own results."""
        previous = previous_year(self.m, Path(self.db))  # last year's results (or re-estimated on new units), before compute
        prev_key = frames_sha256({"previous": previous})[:16] if previous is not None else "published"
        key = f"{self.key}-{self.fixes_key or 'none'}-{prev_key}"
        summary, done = cached_stage(self.out, "compute", key, compute_task, self.m.year, str(self.out.root), self.missing,
                                     previous.to_dicts() if previous is not None else None)
        self.computed = Computed.from_dict(summary)
        self.stages.append(done)

    def publish(self) -> None:
        """Results, quarantine, corrections audit and the run record -> the DuckDB file."""
        self.record.timings = [{"stage": s.stage, "seconds": s.seconds} for s in self.stages]
        self.record.parameters["silver"] = str(self.out.silver_dir)  # a later year re-estimates this one on its units
        self.published = publish_task(self.m.year, str(self.out.root), self.db, self.record.as_dict(), self.applied)

    def report_artifacts(self) -> None:
        """The validation summary and the rankings as Prefect artifacts."""
        self.artifacts = report_task(self.m.year, self.report.as_dict() | {"run_id": self.record.run_id}, str(self.out.root))

    def release(self) -> None:
        """The analyst release (HTML report, PNGs, workbook, CSVs) from the published file, linked as an artifact."""
        self.release_files = release_task(self.m.year, self.db, str(self.out.report_dir))

    @contextlib.contextmanager
    def recording_failure(self):
        """A failure that is not the user's is recorded in the DuckDB file (status failed) and raised; a full
        disk or an unwritable work folder becomes one StorageError line."""
        try:
            yield
        except UserError:
            raise
        except Exception as exc:
            storage = storage_error(exc, self.catalog.root)
            with contextlib.suppress(Exception):  # the failure record must not hide the cause (e.g. the same full disk)
                why = str(storage) if storage else f"{type(exc).__name__}: {exc}"
                publishing.record_failure(Path(self.db), self.m, self.record.as_dict(), why)
            if storage:
                raise storage from exc
            raise

    def result(self) -> RunResult:
        """The published run's figures; its record is written to the catalog too."""
        c, r = self.computed, self.record
        out = RunResult(
            run_id=r.run_id, status="published", year=self.m.year, db=self.db, raw=self.raw, flow_run_id=r.flow_run_id,
            sources=self.report.sources, unreadable_files=self.report.unreadable_files,
            ignored_files=self.report.ignored_files, top_reasons=self.report.top_reasons,
            timings={s.stage: s.seconds for s in self.stages} | {"publish": self.published["seconds"]},
            cached=[s.stage for s in self.stages if s.cached], corrections=self.applied, artifacts=self.artifacts,
            results_hash=self.published["results_hash"], national=c.national, groups=c.groups, incomplete=c.incomplete,
            sipas=c.sipas, par=c.par, release=self.release_files)
        path = self.catalog.run_record(r.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"record": r.as_dict(), "result": out.as_dict()}, ensure_ascii=False, default=str),
                        encoding="utf-8")
        return out


def interval(row: dict[str, Any], confidence: float) -> str | None:
    """A ranked value's confidence interval as text, value -+ t(df) se (None without se)."""
    if row.get("se") is None or row.get("df") is None:
        return None
    from sipas_pipeline.variance import t_interval

    low, high = t_interval(row["value"], row["se"], row["df"], confidence)
    return f"{float(low):.2f}–{float(high):.2f}"


@task(name="report", cache_policy=NO_CACHE)
def report_task(year: int, report: dict[str, Any], work: str) -> list[str]:
    """Prefect artifacts: the validation summary (markdown), the SIPAS and PAR INDEX rankings (tables)."""
    m = load_methodology(year)
    tables = stages.read_results(Path(work))
    names = dict(zip(m.provinces["province_code"], m.provinces["name_vi"], strict=True))
    keys = [create_markdown_artifact(validation_markdown(report), key=f"sipas-{year}-validation",
                                     description=f"Validation summary {year} (kiểm tra dữ liệu)")]
    for measure, title in (("sipas", "SIPAS"), ("par", "PAR INDEX")):
        ranked = (tables["ranks"].filter(tables["ranks"]["measure"] == measure)
                  .sort("rank_national", "province_code", nulls_last=True))
        rows = [{"rank (hạng)": r["rank_national"], "province (tỉnh)": names[r["province_code"]],
                 "value (giá trị)": None if r["value"] is None else round(r["value"], 2),
                 "CI (khoảng tin cậy)": interval(r, m.design.confidence),
                 "rank interval (khoảng xếp hạng)": None if r["rank_low"] is None else f"{r['rank_low']}–{r['rank_high']}",
                 "regional rank (hạng trong vùng)": r["rank_regional"],
                 "change (thay đổi)": None if r["change_value"] is None else round(r["change_value"], 2),
                 "incomplete (thiếu dữ liệu)": r.get("incomplete_reason")}
                for r in ranked.iter_rows(named=True)]
        keys.append(create_table_artifact(rows, key=f"{measure.replace('_', '-')}-{year}-ranking",
                                          description=f"{title} {year} ranking (xếp hạng), run {report['run_id']}"))
    return [str(k) for k in keys]


@task(name="release", cache_policy=NO_CACHE)
def release_task(year: int, db: str, out: str) -> dict[str, Any]:
    """The analyst release after publish (report.build: HTML report, PNGs, workbook, CSVs), linked as an artifact."""
    from sipas_pipeline.report import build

    files = build(Path(db), year, Path(out))
    create_markdown_artifact(f"# Báo cáo / Report {year}\n\n- report: [{files.html.name}]({files.html.as_uri()})\n"
                             f"- workbook: [{files.workbook.name}]({files.workbook.as_uri()})\n",
                             key=f"sipas-{year}-release", description=f"Analyst release {year} (báo cáo)")
    return {"html": str(files.html), "workbook": str(files.workbook), "files": [str(p) for p in files.all()]}


def validation_markdown(report: dict[str, Any]) -> str:
    """The validation summary as a markdown document."""
    lines = [f"# Validation {report['year']} — run `{report['run_id']}`", "",
             "| source (nguồn) | read (đọc) | valid (hợp lệ) | quarantined (cách ly) | unreadable files |",
             "|---|---:|---:|---:|---:|"]
    for source, c in report["sources"].items():
        lines.append(f"| {source} | {c['read']:,} | {c['valid']:,} | {c['quarantined']:,} | {c['unreadable_files']} |")
    lines += ["", "## Top reasons (lý do)", ""]
    for source, rules in report["top_reasons"].items():
        if rules:
            lines.append(f"- **{source}**: " + ", ".join(f"{r} {n:,}" for r, n in list(rules.items())[:TOP_REASONS]))
    if report["unreadable_files"]:
        lines += ["", "## Unreadable files", ""] + [f"- `{u['file']}`: {u['reason']}" for u in report["unreadable_files"]]
    notes = [f"- `{f['file']}`: {n}" for files in report.get("files", {}).values() for f in files for n in f.get("notes", [])]
    if notes:
        lines += ["", "## Notes on files (ghi chú)", "", *notes]
    if report.get("ignored_files"):
        lines += ["", "## Ignored files (tệp bỏ qua)", ""] + [f"- `{u['file']}`: {u['reason']}" for u in report["ignored_files"]]
    return "\n".join(lines)


def code_version() -> str:
    """Package version, plus the git commit when running from a checkout."""
    try:
        v = version("sipas-pipeline")
    except PackageNotFoundError:
        v = "unknown"
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, text=True,
                             capture_output=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{v}+{sha}" if sha else v


def new_run_id(year: int) -> str:
    """Readable, unique run id: year, UTC start time, random suffix."""
    return f"{year}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def run_name() -> str:
    """Prefect flow-run name: says the year."""
    return f"sipas-{survey_year(flow_run.parameters.get('year'))}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def survey_year(year: int | None, now: datetime | None = None) -> int:
    """The year to compute: as given, or last calendar year in Vietnam time (a scheduled spring run: the 1 March
    2026 run computes 2025). A year without a methodology folder then fails in one line listing those that have
    one and how to add one (`load_methodology`)."""
    return year if year is not None else (now or datetime.now(ZoneInfo(TIMEZONE))).astimezone(ZoneInfo(TIMEZONE)).year - 1


def previous_year(m: Methodology, db: Path) -> pl.DataFrame | None:
    """Last year's results for the change columns: its own results in `db`; when the units changed (a `comparable`
    block), last year re-estimated on this year's units from its silver forms, or None (no change) without them."""
    from sipas_pipeline import comparable

    if not m.comparable:
        return publishing.previous_results(db, m.year)
    try:
        return comparable.comparable_previous(m, comparable.previous_silver(db, int(m.comparable["previous_year"])))
    except InputError as exc:
        get_run_logger().warning("no comparable previous year: %s", exc)
        return None


def latest_year() -> int:
    """The latest year with a methodology folder (the manual re-run's default year)."""
    from sipas_pipeline.methodology.scaffold import available_years

    return max(available_years())


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
    """The body of `annual_run`: the stages in order (inside the flow: its tasks are Prefect task runs)."""
    run = Run.start(year, raw, db, work, corrections, trigger, allow_incomplete, report)
    with run.recording_failure():
        run.ingest()
        run.validate()
        run.correct()
        run.check_completeness()
        run.compute()
        run.publish()
    run.report_artifacts()
    if report:
        run.release()
    return run.result()


ANNUAL_CRON = "0 2 1 3 *"  # 02:00 on 1 March, Vietnam time: last year's survey is closed and checked


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


# ---- the embedded Prefect server dies with the command ------------------------------------------------------
# Prefect starts its temporary server (SubprocessASGIServer, a uvicorn child process) on first use and stops
# it from an atexit hook. `sipas run` starts it itself, first, and records its PID under PREFECT_HOME: the
# CLI turns SIGTERM / SIGHUP into a normal exit (so the hook runs; SIGINT already does), and a run killed
# with SIGKILL, which runs no hook, leaves a record the next `sipas run` finds and acts on.

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
    spawn = server._run_uvicorn_command  # Prefect's own command and settings for its temporary server

    def spawn_and_record() -> subprocess.Popen:
        process = spawn()
        record_server(process.pid, server.api_url)
        return process

    server._run_uvicorn_command = spawn_and_record  # called again on another port when the first is taken
    server.start()


def record_server(pid: int, url: str) -> None:
    """Record the temporary server `pid` as this process's (owner and both start times: PIDs are reused)."""
    child, me = psutil.Process(pid), psutil.Process()
    server_records().mkdir(parents=True, exist_ok=True)
    record = server_records() / f"{me.pid}.json"
    record.write_text(json.dumps({"owner": me.pid, "owner_started": me.create_time(), "server": child.pid,
                                  "server_started": child.create_time(), "url": url}))
    atexit.register(record.unlink, missing_ok=True)
