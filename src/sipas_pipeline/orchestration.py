"""The Prefect flow: the only module of the package that imports Prefect. Each task calls one pure
stage of `sipas_pipeline.stages`; data passes between them as Parquet under the work folder."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sipas_pipeline.paths import default_db, year_dir

TIMEZONE = "Asia/Ho_Chi_Minh"


def prefect_defaults(home: Path | None = None) -> None:
    """Offline, embedded-server defaults, each unless the user has set it: a project-local Prefect
    home, no analytics or telemetry, and a start-up timeout that survives the first database migration."""
    os.environ.setdefault("PREFECT_HOME", str(home or Path.cwd() / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


prefect_defaults()

import duckdb  # noqa: E402
import polars as pl  # noqa: E402
import psutil  # noqa: E402
from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.deployments.runner import EntrypointType, RunnerDeployment  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402
from prefect.schedules import Cron  # noqa: E402
from prefect.states import Failed  # noqa: E402

from sipas_pipeline import completeness, stages  # noqa: E402
from sipas_pipeline import publish as publishing  # noqa: E402
from sipas_pipeline.corrections import (  # noqa: E402
    Correction,
    apply_corrections,
    corrections_key,
    overlay_raw,
    read_corrections,
)
from sipas_pipeline.errors import InputError, UserError, storage_error  # noqa: E402
from sipas_pipeline.hashing import frames_sha256  # noqa: E402
from sipas_pipeline.methodology import Methodology, load_methodology  # noqa: E402

USER_ERRORS = (UserError,)  # every error a user can fix (sipas_pipeline.errors)


def retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry file and database I/O errors; never a user's mistake (a held database lock raises
    DatabaseLocked, which is neither), nor a full disk or a folder without permission (a StorageError's cause)."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError | duckdb.IOException) and storage_error(exc) is None


RETRY_IO = {"retries": 2, "retry_delay_seconds": 1, "retry_condition_fn": retry_on_io}
IO = RETRY_IO | {"cache_policy": NO_CACHE}  # stages that always run
STAGE = RETRY_IO | {"persist_result": True}  # stages cached on their inputs' content (cache_key_fn=content_key)


def timed(fn, *args) -> tuple[Any, float]:
    """Call fn(*args); return its result and the seconds it took."""
    t0 = time.perf_counter()
    out = fn(*args)
    return out, round(time.perf_counter() - t0, 3)


def content_key(context: Any, parameters: dict[str, Any]) -> str:
    """Prefect cache key of a stage: its name and the content key of its inputs (`key`): a changed
    input file, methodology, correction or code gives a new key, so never a stale hit."""
    return f"{context.task.name}-{parameters['key']}"


@task(name="ingest", cache_key_fn=content_key, **STAGE)
def ingest_task(year: int, raw: str, work: str, key: str) -> dict[str, Any]:
    """Raw exports -> bronze Parquet (cached on the inputs' content key)."""
    report, seconds = timed(stages.ingest, load_methodology(year), Path(raw), Path(work))
    files = {s: len(f) for s, f in report["files"].items()}
    get_run_logger().info("ingest: %s files read, %d unreadable, %.2f s", files, len(report["unreadable_files"]), seconds)
    return report | {"seconds": seconds}


@task(name="validate", cache_key_fn=content_key, **STAGE)
def validate_task(year: int, work: str, key: str) -> dict[str, Any]:
    """Bronze -> silver + quarantine Parquet, with the row accounting (cached on the inputs' key)."""
    checked, seconds = timed(stages.validate, load_methodology(year), Path(work))
    (Path(work) / "validated.json").write_text(json.dumps({"key": key, "sources": checked["sources"]}))
    get_run_logger().info("validate: %s, %.2f s", checked["sources"], seconds)
    return checked | {"seconds": seconds}


@task(name="corrections", **IO)
def corrections_task(year: int, work_in: str, work: str, corrections: list[dict[str, Any]],
                     batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Row corrections applied to silver + quarantine, corrected forms validated again."""
    m = load_methodology(year)
    parsed = [Correction(**c) for c in corrections]
    out, seconds = timed(apply_corrections, m, Path(work_in), Path(work), parsed, batches)
    get_run_logger().info("corrections: %d applied, %s, %.2f s", len(out["applied"]), out["sources"], seconds)
    return out | {"seconds": seconds}


@task(name="compute", cache_key_fn=content_key, **STAGE)
def compute_task(year: int, work: str, key: str, incomplete: dict[str, dict[str, str]],
                 previous: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Silver -> result tables (indicators, SIPAS tree, PAR INDEX, ranks); cached on inputs + corrections + last
    year's results (`previous`, rows of `publish.previous_results`, part of the key); `incomplete`, the provinces
    published as incomplete, follows from the inputs."""
    prev = pl.DataFrame(previous) if previous else None
    summary, seconds = timed(stages.compute, load_methodology(year), Path(work), prev, incomplete)
    (Path(work) / "results" / "summary.json").write_text(json.dumps(summary, ensure_ascii=False))
    get_run_logger().info("compute: national %s, %.2f s", summary["national"], seconds)
    return summary | {"seconds": seconds}


@task(name="publish", **IO)
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


def run_stage(task_fn: Any, output: Path, *args: Any) -> tuple[dict[str, Any], bool]:
    """Run a cached stage; return its result and whether Prefect served it from the cache. A cached
    result is used only while the stage's `output` file is still on disk (else the stage runs again)."""
    state = task_fn.with_options(refresh_cache=not output.is_file())(*args, return_state=True)
    return state.result(), state.name == "Cached"


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
            lines.append(f"- **{source}**: " + ", ".join(f"{r} {n:,}" for r, n in list(rules.items())[:8]))
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


@flow(name="sipas-annual-run", flow_run_name=run_name, log_prints=False)
def annual_run(year: int | None = None, raw: str | None = None, db: str | None = None, work: str | None = None,
               corrections: list[str] | None = None, trigger: str = "manual",
               allow_incomplete: bool = False) -> dict[str, Any]:
    """A raw survey year -> SIPAS and PAR INDEX tables in DuckDB: ingest, validate, corrections,
    compute, publish, report. Stages whose inputs did not change are served from Prefect's cache.
    A province lacking inputs the methodology requires stops the run before publishing, unless
    `allow_incomplete` (then it is published marked incomplete). A user's mistake (input, corrections,
    methodology, a held database, a full disk) fails the run with its one-line message as the state
    message and no traceback; calling the flow raises that same error."""
    try:
        return run_year(survey_year(year), raw, db, work, corrections, trigger, allow_incomplete)
    except USER_ERRORS as exc:
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc), data=exc)


def run_year(year: int, raw: str | None, db: str | None, work: str | None, corrections: list[str] | None,
             trigger: str, allow_incomplete: bool = False) -> dict[str, Any]:
    """The body of `annual_run` (runs inside the flow: its tasks are Prefect task runs)."""
    m = load_methodology(year)
    raw = str(raw or year_dir(year, "raw"))
    db = str(db or default_db())
    root = Path(work or year_dir(year, "work"))
    fixes = read_corrections(m, [Path(c) for c in corrections or []])  # a bad file stops here, before anything
    fixes_key = corrections_key(fixes)
    run: dict[str, Any] = {
        "run_id": new_run_id(year), "started_at": datetime.now(UTC), "flow_run_id": str(flow_run.id or ""),
        "code_version": code_version(), "timings": [],
        "parameters": {"year": year, "raw": raw, "db": db, "work": str(root),
                       "corrections": [str(c) for c in corrections or []], "trigger": trigger,
                       "allow_incomplete": allow_incomplete,
                       "design": m.meta.get("design", {})}}  # the uncertainty settings (rank seed, draws) on record
    stages.check_raw(m, Path(raw))
    publishing.check_database(Path(db))  # a file a run could not publish into stops here, before the stages
    try:
        effective_raw = overlay_raw(m, Path(raw), fixes, root / f"raw-{fixes_key[:16]}")
        key = stages.inputs_key(m, effective_raw)
        work_in = root / f"inputs-{key[:16]}"
        done = work_in / "validated.json"
        ingested, hit_i = run_stage(ingest_task, done, year, str(effective_raw), str(work_in), key)
        checked, hit_v = run_stage(validate_task, done, year, str(work_in), key)
        run["timings"] += [{"stage": "ingest", "seconds": 0.0 if hit_i else ingested["seconds"]},
                           {"stage": "validate", "seconds": 0.0 if hit_v else checked["seconds"]}]
        work_out, applied = work_in, []
        if any(f.action != "replace_batch" for f in fixes):
            work_out = work_in / f"corrected-{fixes_key[:16]}"
            fixed = corrections_task(year, str(work_in), str(work_out), [f.row() for f in fixes], checked["batches"])
            checked = checked | {"sources": fixed["sources"], "batches": fixed["batches"],
                                 "top_reasons": checked["top_reasons"] | fixed["top_reasons"]}
            applied = fixed["applied"]
            run["timings"].append({"stage": "corrections", "seconds": fixed["seconds"]})
        else:
            applied = [f.row() | {"rows": 0, "outcome": "replaced"} for f in fixes]
        report = stages.validation_report(m, ingested, checked) | {"run_id": run["run_id"]}
        run |= {"inputs": stages.run_inputs(ingested, checked), "unreadable_files": report["unreadable_files"],
                "ignored_files": report["ignored_files"],
                "accounting": [{"source": s} | c for s, c in report["sources"].items()]}
        missing = completeness.assess(m, work_out, ingested["files"], checked["batches"], report["unreadable_files"])
        if missing and not allow_incomplete:
            raise InputError(completeness.message(m, missing))
        previous = previous_year(m, Path(db), year)  # last year's own results, read before compute
        prev_key = frames_sha256({"previous": previous})[:16] if previous is not None else "published"
        summary, hit_c = run_stage(compute_task, work_out / "results" / "summary.json", year, str(work_out),
                                   f"{key}-{fixes_key or 'none'}-{prev_key}", missing,
                                   previous.to_dicts() if previous is not None else None)
        run["timings"].append({"stage": "compute", "seconds": 0.0 if hit_c else summary["seconds"]})
        run["parameters"]["silver"] = str(work_out / "silver")  # a later year re-estimates this one on its units
        published = publish_task(year, str(work_out), db, run, applied)
    except Exception as exc:
        if isinstance(exc, USER_ERRORS):
            raise
        storage = storage_error(exc, root)  # a full disk or an unwritable work folder: say so, in one line
        with contextlib.suppress(Exception):  # the failure record must not hide the cause (e.g. the same full disk)
            publishing.record_failure(Path(db), m, run, str(storage) if storage else f"{type(exc).__name__}: {exc}")
        if storage:
            raise storage from exc
        raise
    artifacts = report_task(year, report, str(work_out))
    timings = {t["stage"]: t["seconds"] for t in run["timings"]} | {"publish": published["seconds"]}
    cached = [s for s, hit in (("ingest", hit_i), ("validate", hit_v), ("compute", hit_c)) if hit]
    return {"run_id": run["run_id"], "status": "published", "year": year, "db": db, "raw": raw,
            "flow_run_id": run["flow_run_id"], "sources": report["sources"],
            "unreadable_files": report["unreadable_files"], "ignored_files": report["ignored_files"],
            "top_reasons": report["top_reasons"],
            "timings": timings, "cached": cached, "corrections": applied, "artifacts": artifacts,
            "results_hash": published["results_hash"], "national": summary["national"], "groups": summary["groups"],
            "incomplete": summary.get("incomplete", {}),
            "sipas": summary["sipas"], "par": summary["par"]}


def previous_year(m: Methodology, db: Path, year: int) -> pl.DataFrame | None:
    """Last year's results for the change columns: its own results in `db`; when the units changed (a `comparable`
    block), last year re-estimated on this year's units from its silver forms, or None (no change) without them."""
    from sipas_pipeline import comparable

    if not m.comparable:
        return publishing.previous_results(db, year)
    try:
        return comparable.comparable_previous(m, comparable.previous_silver(db, int(m.comparable["previous_year"])))
    except InputError as exc:
        get_run_logger().warning("no comparable previous year: %s", exc)
        return None


def latest_year() -> int:
    """The latest year with a methodology folder (the manual re-run's default year)."""
    from sipas_pipeline.methodology.scaffold import available_years

    return max(available_years())


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
    server now and record its PID (the record goes when this process exits normally)."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return
    stop_orphan_servers()
    server = SubprocessASGIServer()
    server.start()
    child = psutil.Process(server.server_process.pid)
    me = psutil.Process()
    server_records().mkdir(parents=True, exist_ok=True)
    record = server_records() / f"{me.pid}.json"
    record.write_text(json.dumps({"owner": me.pid, "owner_started": me.create_time(), "server": child.pid,
                                  "server_started": child.create_time(), "url": server.api_url}))
    atexit.register(record.unlink, missing_ok=True)
