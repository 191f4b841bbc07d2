"""One run of a year through the stages (`Run`): what each stage is given, its cache key, what it made, the
run's record (`RunRecord`, the `runs` row) and its result (`RunResult`). Each stage method is handed the
Prefect task that does its work (`flow.py` wires them), so this module knows the run, not the tasks."""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.runtime import deployment, flow_run

from sipas_pipeline import completeness, stages
from sipas_pipeline import publish as publishing
from sipas_pipeline.catalog import Catalog, StageFolder
from sipas_pipeline.corrections import Correction, corrections_key, overlay_raw, read_corrections, this_runs_files
from sipas_pipeline.errors import DatabaseError, InputError, UserError, storage_error
from sipas_pipeline.hashing import frames_sha256
from sipas_pipeline.methodology import Methodology, load_methodology
from sipas_pipeline.paths import correction_names, correction_path, default_db, under_root, year_dir
from sipas_pipeline.stages import Computed, Corrected, Ingested, Published, Report, Validated, ValidationReport

TIMEZONE = "Asia/Ho_Chi_Minh"
CORE_LIBRARIES = ("polars", "pyarrow", "pandera", "prefect", "duckdb", "numpy", "scipy")  # on each run's record
R = TypeVar("R", bound=Report)
Task = Callable[..., Any]  # a Prefect task (or any callable with a `name`)


@dataclass
class StageRun:
    """One stage of a run: its name, seconds (0 when served from its manifest) and whether it was."""

    stage: str
    seconds: float
    cached: bool = False


def cached_stage(out: StageFolder, stage: str, key: str, kind: type[R], task_fn: Task, *args: Any) -> tuple[R, StageRun]:
    """Run a stage unless `out` holds its manifest for `key` (then its recorded report, read as `kind`, 0 s). The
    manifest is removed before the stage runs and written after every file of its output: the only proof of
    completion. `task_fn(*args)` returns (its report, seconds)."""
    recorded = out.cached(stage, key)
    if recorded is not None:
        if FlowRunContext.get() is not None:  # in a flow run: the stage shows as its task, served at once
            task(served_from_manifest, name=task_fn.name, task_run_name=f"{task_fn.name} (served from its manifest)",
                 cache_policy=NO_CACHE)(task_fn.name, key)
        return kind.from_dict(recorded), StageRun(task_fn.name, 0.0, True)
    out.forget(stage)
    report, seconds = task_fn(*args)
    out.write_manifest(stage, key, report.as_dict())
    return report, StageRun(task_fn.name, seconds)


def served_from_manifest(stage: str, key: str) -> None:
    """A stage whose output is complete for its key: one log line, nothing run."""
    get_run_logger().info("%s: served from its manifest (key %s)", stage, key[:16])


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
    libraries: list[dict[str, str]] = field(default_factory=lambda: library_versions())

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
    release: dict[str, Any] | None = None  # the analyst release's files (report.build), or {"error": line} after publish

    def public(self) -> dict[str, Any]:
        """The fields `sipas run --json` prints (all but the quarantine reasons and the artifacts' keys)."""
        return {k: v for k, v in self.as_dict().items() if k not in ("top_reasons", "artifacts")}


class Run:
    """One run of a year through the stages, in order; each method is one stage and keeps what it made."""

    ingested: Ingested
    checked: Validated
    report: ValidationReport
    computed: Computed
    published: Published
    artifacts: list[str]

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
        self.release_seconds = 0.0

    @classmethod
    def start(cls, year: int, raw: str | None, db: str | None, work: str | None, corrections: list[str] | str | None,
              trigger: str, allow_incomplete: bool, report: bool = True) -> Run:
        """Check what a run needs before any stage: correction files, the raw folder, the DuckDB file. Relative
        paths resolve against the data root, correction files under its corrections folder (paths.under_root,
        paths.correction_path); a refusal is recorded in `runs` (unless the database is what is wrong)."""
        raw_dir, db_file = under_root(raw, year_dir(year, "raw")), under_root(db, default_db())
        work_dir, files = under_root(work, year_dir(year, "work")), [correction_path(c) for c in correction_names(corrections)]
        m: Methodology | None = None
        try:
            m = load_methodology(year)
            fixes = read_corrections(m, files)  # a bad file stops here, before anything
            stages.check_raw(m, raw_dir)
            publishing.check_database(db_file)  # a file a run could not publish into stops here, before the stages
        except UserError as exc:
            record_refusal(db_file, m or SimpleNamespace(year=year, content_hash=""), exc, {
                "year": year, "raw": str(raw_dir), "db": str(db_file), "work": str(work_dir),
                "corrections": [str(f) for f in files], "trigger": trigger, "allow_incomplete": allow_incomplete,
                "report": report})
            raise
        return cls(m, str(raw_dir), str(db_file), str(work_dir), fixes, [str(f) for f in files], trigger,
                   allow_incomplete, report)

    def ingest(self, task: Task) -> None:
        """Raw exports (with re-sent batches in place) -> bronze, unless the inputs' content is already there."""
        raw = overlay_raw(self.m, Path(self.raw), self.fixes, self.catalog.overlay(self.fixes_key))
        self.read_raw, self.hashes = raw, stages.input_hashes(self.m, raw)  # the key is of these bytes; ingest checks
        self.key = stages.inputs_key(self.m, raw, self.hashes)              # it read exactly them, or stops
        self.inputs = self.out = self.catalog.inputs(self.key)
        self.ingested, done = cached_stage(self.inputs, "ingest", self.key, Ingested, task, self.m.year, raw, self.inputs,
                                           self.hashes)
        self.stages.append(done)

    def validate(self, task: Task) -> None:
        """Bronze -> silver + quarantine."""
        self.checked, done = cached_stage(self.inputs, "validate", self.key, Validated, task, self.m.year, self.inputs)
        self.stages.append(done)

    def correct(self, task: Task) -> None:
        """Row corrections (set, move, withdraw, keep) -> a corrected copy of silver + quarantine."""
        if not any(f.action != "replace_batch" for f in self.fixes):
            return
        self.out = self.inputs.corrected(self.fixes_key)
        fixed, done = cached_stage(self.out, "correct", f"{self.key}-{self.fixes_key}", Corrected, task, self.m.year,
                                   self.inputs, self.out, self.fixes, self.checked.batches)
        self.checked = Validated(sources=fixed.sources, batches=fixed.batches,
                                 top_reasons=self.checked.top_reasons | fixed.top_reasons)
        self.applied = this_runs_files(fixed.applied, self.fixes)  # the audit names this run's files, cached or not
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
        if self.missing and not self.allow_incomplete:  # a deployment's run is allowed by its parameter, not a flag
            allow = completeness.ALLOW_PARAMETER if deployment.id else completeness.ALLOW_FLAG
            raise InputError(completeness.message(self.m, self.missing, allow))

    def compute(self, task: Task) -> None:
        """Silver -> result tables; keyed on the inputs, the corrections and last year's own results."""
        previous = previous_year(self.m, Path(self.db))  # last year's results (or re-estimated on new units), before compute
        prev_key = frames_sha256({"previous": previous})[:16] if previous is not None else "published"
        key = f"{self.key}-{self.fixes_key or 'none'}-{prev_key}"
        self.computed, done = cached_stage(self.out, "compute", key, Computed, task, self.m.year, self.out, self.missing,
                                           previous)
        self.stages.append(done)

    def publish(self, task: Task) -> None:
        """Results, quarantine, corrections audit and the run record -> the DuckDB file."""
        stages.check_unchanged(self.m, self.read_raw, self.hashes)  # the raw folder still holds what was read
        self.record.timings = [{"stage": s.stage, "seconds": s.seconds} for s in self.stages]
        self.record.parameters["silver"] = str(self.out.silver_dir)  # a later year re-estimates this one on its units
        self.published = task(self.m.year, self.out, self.db, self.record, self.applied)

    def report_artifacts(self, task: Task) -> None:
        """The validation summary and the rankings as Prefect artifacts."""
        self.artifacts = task(self.m.year, self.report, self.record.run_id, self.out, self.applied)

    def release(self, task: Task) -> None:
        """The analyst release (HTML report, PNGs, workbook, CSVs) from the published file, linked as an artifact."""
        t0 = time.perf_counter()
        files = task(self.m.year, self.db, self.out.report_dir)
        self.release_seconds = round(time.perf_counter() - t0, 3)
        if isinstance(files, str):  # the release failed after publishing (one line): the run stays published
            get_run_logger().error("release: %s", files)
            self.release_files = {"error": files}
            return
        self.release_files = {"html": str(files.html), "workbook": str(files.workbook),
                              "files": [str(p) for p in files.all()]}

    @contextlib.contextmanager
    def holding_work(self):
        """One run per work folder (catalog.holding): a second run meanwhile stops at once with one line."""
        with self.catalog.holding(self.record.run_id, self.m.year) as notes:
            for note in notes:
                get_run_logger().warning("%s", note)
            yield

    @contextlib.contextmanager
    def recording_failure(self):
        """A failure is recorded in the DuckDB file and raised: a user's mistake (incomplete inputs, say) as refused
        with its line, anything else as failed; a full disk or an unwritable work folder becomes one StorageError line."""
        try:
            yield
        except UserError as exc:
            record_refusal(Path(self.db), self.m, exc, self.record.as_dict())
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
            timings={s.stage: s.seconds for s in self.stages} | {"publish": self.published.seconds}
            | ({"release": self.release_seconds} if self.release_files else {}),
            cached=[s.stage for s in self.stages if s.cached], corrections=self.applied, artifacts=self.artifacts,
            results_hash=self.published.results_hash, national=c.national, groups=c.groups, incomplete=c.incomplete,
            sipas=c.sipas, par=c.par, release=self.release_files)
        path = self.catalog.run_record(r.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"record": r.as_dict(), "result": out.as_dict()}, ensure_ascii=False, default=str),
                        encoding="utf-8")
        return out


def record_refusal(db: Path, m: Methodology | SimpleNamespace, exc: UserError, run: dict[str, Any]) -> None:
    """Record a run a user's mistake stopped (status refused, its one line as the error), unless the database itself
    is the problem (then nothing can be recorded there; the flow run says why). A run record may be a full one (a
    `RunRecord` as a dict) or only the parameters of a run that was refused before it began."""
    if isinstance(exc, DatabaseError):
        return
    if "run_id" not in run:
        run = RunRecord(run_id=new_run_id(m.year), started_at=datetime.now(UTC), flow_run_id=str(flow_run.id or ""),
                        code_version=code_version(), parameters=run).as_dict()
    with contextlib.suppress(Exception):  # the refusal's own line must reach the user even if this cannot be written
        publishing.record_failure(db, m, run, str(exc), status="refused")


def run_year_default(year: int | None, trigger: str, db: str | None) -> int:
    """The year a run computes: as given; without one, a scheduled run computes last year in Vietnam time
    (`survey_year`), any other run re-runs the latest year published in the DuckDB file (else last year too)."""
    if year is not None or trigger == "schedule":
        return survey_year(year)
    path = under_root(db, default_db())
    if path.is_file():
        with contextlib.suppress(UserError):
            (latest,), = publishing.read_query(path, "SELECT max(year) FROM current_runs")
            if latest is not None:
                return int(latest)
    return survey_year(None)


STAGE_MODULES = ("pandera.polars", "sipas_pipeline.results_schemas", "sipas_pipeline.indicators", "sipas_pipeline.par_index",
                 "sipas_pipeline.ranking", "sipas_pipeline.variance", "sipas_pipeline.comparable")
RELEASE_MODULES = ("sipas_pipeline.report.build",)  # matplotlib, xlsxwriter
# what Prefect's engine imports at a process's first flow run: FastAPI's jsonable_encoder (the parameters), pydantic.v1
# (their check), the flow and task engines
ENGINE_MODULES = ("fastapi.encoders", "pydantic.v1", "prefect.flow_engine", "prefect.task_engine")


def preload(report: bool = True) -> None:
    """Import now what the run imports when its stages first run (Pandera, SciPy's special functions, the compute
    modules; matplotlib and the workbook writer for the release; Prefect's engine): `sipas run` calls it while the
    embedded server starts in its own process, so that the imports cost nothing on the run's path."""
    for name in STAGE_MODULES + (RELEASE_MODULES if report else ()) + ENGINE_MODULES:
        import_module(name)


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


def library_versions(names: tuple[str, ...] = CORE_LIBRARIES) -> list[dict[str, str]]:
    """Python's version and each core library's installed version (what the run record keeps)."""
    out = [{"name": "python", "version": platform.python_version()}]
    for name in names:
        try:
            out.append({"name": name, "version": version(name)})
        except PackageNotFoundError:
            out.append({"name": name, "version": "not installed"})
    return out


def new_run_id(year: int) -> str:
    """Readable, unique run id: year, UTC start time, random suffix."""
    return f"{year}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


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
