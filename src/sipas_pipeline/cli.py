"""`sipas`: the command line, a thin face over the pipeline's functions and the Prefect flow."""

from __future__ import annotations

import atexit
import contextlib
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sipas_pipeline.collector import collector_paused
from sipas_pipeline.errors import UserError, storage_error

try:  # typer 0.29 carries its own click
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover
    from click import get_current_context
from sipas_pipeline.methodology import load_methodology

if TYPE_CHECKING:
    from sipas_pipeline.orchestration import RunResult
    from sipas_pipeline.stages import ValidationReport

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="SIPAS and PAR INDEX pipeline (Chỉ số SIPAS và PAR INDEX).")
# soft wrap: a line is never split by Rich (a log or a pipe gets whole lines and whole figures; a terminal wraps itself)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

YearOpt = Annotated[int, typer.Option("--year", help="Survey year (năm khảo sát).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


RELEASE_FAILED = 3  # `sipas run`: the run was published, the analyst release after it failed (docs/reliability.md)


def fail(message: str, code: int = 2) -> None:
    """Print a user-facing error (no traceback) and exit: one line on stderr, never wrapped; with --json a JSON
    object {"error": ..., "exit_code": ...} on stdout instead (Vietnamese kept as is)."""
    if json_requested():
        print(json.dumps({"error": message, "exit_code": code}, ensure_ascii=False))
    else:
        err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def json_requested() -> bool:
    """Whether the running command was given --json."""
    ctx = get_current_context(silent=True)
    return bool(ctx is not None and ctx.params.get("as_json"))


def _methodology(year: int):
    try:
        return load_methodology(year)
    except UserError as exc:
        fail(str(exc))


@app.command()
def methodology(action: Annotated[str | None, typer.Argument(help="init: scaffold YEAR's folder from --from.")] = None,
                year: YearOpt = 2024, as_json: JsonOpt = False,
                from_year: Annotated[int | None, typer.Option("--from", help="init: the year to copy.")] = None) -> None:
    """Check a year's methodology files and print what they hold; `init --year 2026 --from 2025` copies a year's
    folder for the next year (year fields updated, nothing overwritten)."""
    if action is not None:
        if action != "init" or from_year is None:
            fail(f"methodology {action}: the only action is `init --year YEAR --from EARLIER_YEAR`")
        from sipas_pipeline.methodology.scaffold import init_year

        try:
            folder = init_year(year, from_year)
        except UserError as exc:
            fail(str(exc))
        console.print(f"Made {folder} from {from_year}: edit its files (units, frame, forms, window), then "
                      f"`sipas methodology --year {year}` checks them.")
        return
    m = _methodology(year)
    s = m.summary()
    if as_json:
        print(json.dumps(s, ensure_ascii=False))
        return
    t = Table(title=f"Methodology {year} (phương pháp luận) — version {s['version']}")
    t.add_column("what")
    t.add_column("count", justify="right")
    for k, v in s["indicators"].items():
        t.add_row(f"{k} indicators", str(v))
    for k, v in s["par"].items():
        t.add_row(f"PAR {k}", f"{v:g}")
    t.add_row("units (tỉnh/thành phố)", str(s["units"]))
    t.add_row("regions (vùng)", str(s["regions"]))
    for k, v in s["sampling_frame"].items():
        t.add_row(f"sample {k}", str(v))
    for k, v in s["frame"].items():
        t.add_row(f"frame {k}", f"{v['package']} {v['version']}" if k == "source" else str(v))
    console.print(t)
    console.print(f"All checks passed. Content hash {s['content_hash'][:16]}…  ({m.root})")


@app.command()
def sample(
    out: Annotated[Path | None, typer.Option("--out", help="Folder to write the raw year into.")] = None,
    year: YearOpt = 2024,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives identical files.")] = 7,
    scale: Annotated[float, typer.Option(help="1 = a full-size year; 100 for benchmarks.")] = 1.0,
    effects: Annotated[float, typer.Option(help="Commune, village and respondent effects: 1 = realistic defaults, "
                                                "0 = independent answers, 2 = twice the ICCs and halo.")] = 1.0,
    fieldwork: Annotated[Path | None, typer.Option("--fieldwork", help="Instead of --out: the year split into "
                                                   "timestamped batches for a fieldwork replay (docs/fieldwork.md).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic survey year: raw exports, ground truth and the defect manifest. OUT must be new,
    empty, or made by an earlier `sipas sample` (a folder with other files is never emptied)."""
    if fieldwork is not None or out is None:
        from sipas_pipeline.fieldwork.cli import sample_season

        return sample_season(year, out, fieldwork, seed, scale, as_json)
    from sipas_pipeline.synth import DesignParams, generate_year

    if scale <= 0:
        fail("--scale must be positive")
    if effects < 0:
        fail("--effects must be 0 or more")
    _methodology(year)
    try:
        design = DesignParams().scaled(effects)
    except UserError as exc:
        fail(f"--effects {effects:g}: {exc}")
    from sipas_pipeline.progress import shown

    try:
        with shown():  # a bar per province on a terminal, a line per tenth in a log
            manifest = generate_year(year, out, seed=seed, scale=scale, design=design)
    except UserError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({k: manifest[k] for k in ("year", "seed", "scale", "rows", "defects")}, ensure_ascii=False))
        return
    console.print(f"Wrote a synthetic {year} year to {out} (seed {seed}, scale {scale:g}):")
    for source, n in manifest["rows"].items():
        console.print(f"  {source:<10} {n:>9,} rows")
    d = manifest["defects"]
    console.print(f"  defects    {d['total']:>9,} ({d['by_action']}) listed in {out / d['file']}")


@app.command()
def validate(
    raw: Annotated[Path, typer.Option("--raw", help="Folder of the raw year (citizen/, official/, appraisal/).")],
    year: YearOpt = 2024,
    work: Annotated[Path | None, typer.Option("--work", help="Where bronze/silver/quarantine Parquet go.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest and validate a raw year; print rows read / valid / quarantined per source, and the provinces
    whose valid inputs miss the methodology's minimum (a run would stop on them)."""
    from sipas_pipeline import completeness
    from sipas_pipeline.paths import year_dir
    from sipas_pipeline.stages import ingest_and_validate

    m = _methodology(year)
    work = work or year_dir(year, "work")
    from sipas_pipeline.progress import shown

    try:
        with shown():
            report = ingest_and_validate(m, raw, work)
    except UserError as exc:
        fail(str(exc))
    except Exception as exc:  # a full disk or an unwritable work folder: one line; anything else is a bug
        storage = storage_error(exc, work)
        if storage is None:
            raise
        fail(str(storage))
    incomplete = completeness.reasons(completeness.assess(m, work, report.files, report.batches, report.unreadable_files))
    if as_json:
        shown = {k: v for k, v in report.as_dict().items() if k != "batches"}
        print(json.dumps(shown | {"incomplete": incomplete}, ensure_ascii=False))
        return
    print_validation(report, incomplete, work)


def print_validation(report: ValidationReport, incomplete: dict[str, str], work: Path) -> None:
    """The validate command's report for people: the accounting table, top reasons, unreadable, incomplete,
    ignored files and the readers' notes."""
    from sipas_pipeline.stages import TOP_REASONS

    t = Table(title=f"Ingest and validate {report.year} (kiểm tra dữ liệu)")
    for col in ("source (nguồn)", "read (đọc)", "valid (hợp lệ)", "quarantined (cách ly)", "unreadable files"):
        t.add_column(col, justify="right" if col[0] != "s" else "left")
    for source, c in report.sources.items():
        t.add_row(source, f"{c['read']:,}", f"{c['valid']:,}", f"{c['quarantined']:,}", str(c["unreadable_files"]))
    console.print(t)
    for source, rules in report.top_reasons.items():
        if rules:
            console.print(f"{source}: top reasons " + ", ".join(f"{r} {n}" for r, n in list(rules.items())[:TOP_REASONS]))
    for u in report.unreadable_files:
        err.print(f"unreadable: {u['file']}: {u['reason']}", highlight=False)
    for code, why in incomplete.items():
        err.print(f"incomplete (thiếu dữ liệu): province {code}: {why}", highlight=False, soft_wrap=True)
    print_ignored(report.ignored_files)
    for f in (f for files in report.files.values() for f in files):
        print_notes(f)
    console.print(f"Parquet written under {work} (bronze/, silver/, quarantine/)")


def print_notes(f: dict) -> None:
    """A file's readers' notes and its rows quarantined for their shape (on stderr, one line each)."""
    shape = [f"{f['row_shape']} rows quarantined for their shape (rule row_shape)"] if f.get("row_shape") else []
    for note in [*f.get("notes", []), *shape]:
        err.print(f"note: {f['file']}: {note}", highlight=False, markup=False, soft_wrap=True)


def print_ignored(ignored: list[dict]) -> None:
    """Files under a source folder that were not read, with why (on stderr, one line each)."""
    for u in ignored:
        err.print(f"ignored: {u['file']}: {u['reason']}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def run(
    year: YearOpt = 2024,
    raw: Annotated[Path | None, typer.Option("--raw", help="Raw year folder (default data/<year>/raw, only read).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Run the full-size synthetic year in data/demo/<year>/raw "
                                       "(made once if missing).")] = False,
    allow_incomplete: Annotated[bool, typer.Option(
        "--allow-incomplete", help="Publish provinces whose inputs miss the methodology's minimum, marked incomplete "
        "(null value and rank, a reason) instead of stopping.")] = False,
    db: Annotated[Path | None, typer.Option("--db", help="DuckDB file to publish into (default data/sipas.duckdb).")] = None,
    work: Annotated[Path | None, typer.Option("--work", help="Folder for the stages' Parquet.")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Publish without building the analyst release "
                                            "(HTML report, PNGs, workbook, CSVs); `sipas report` builds it later.")] = False,
    corrections: Annotated[list[Path] | None, typer.Option(
        "--corrections", help="Correction file(s) (CSV) to apply: --corrections A.csv [B.csv ...]")] = None,
    more_corrections: Annotated[list[Path] | None, typer.Argument(
        help="More correction files after --corrections.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """The main job: a raw year through the Prefect flow (ingest, validate, compute, publish, report)
    into DuckDB. The raw folder (--raw, default data/<year>/raw) is only read; --demo runs the full-size
    synthetic year in data/demo/<year>/raw, made once. Runs on the embedded Prefect server unless
    PREFECT_API_URL names one."""
    from sipas_pipeline.config import prefect_defaults
    from sipas_pipeline.orchestration.server import start_embedded_server, without_heartbeats
    from sipas_pipeline.paths import default_db, demo_dir, made_by_us, year_dir

    started = time.perf_counter()
    prefect_defaults()  # before Prefect is imported (it reads its settings then)
    # the embedded server first, in its own process: it boots (seconds) beside this command's checks and imports; a
    # user's mistake below still gets its one line before Prefect is imported, and stops the server at once (a first
    # start, which migrates Prefect's database, waits for the checks: server.start_embedded_server)
    starting = start_embedded_server(wait=False, early=True)  # stops with this command, even when it is killed
    with starting.stopped_on_error(), collector_paused():
        m = _methodology(year)
        if demo and raw is not None:
            fail("--demo and --raw exclude each other: --demo runs the synthetic year in data/demo/<year>/raw, "
                 "--raw DIR your exports")
        if demo:
            raw = demo_dir(year)
            if not (made_by_us(raw) and (raw / "truth" / "manifest.json").is_file()):
                err.print(f"Making the full-size synthetic {year} year in {raw} (once)…")
                from sipas_pipeline.progress import shown
                from sipas_pipeline.synth import generate_year

                try:
                    with shown():  # a bar per province
                        generate_year(year, raw, seed=7, scale=1.0)
                except UserError as exc:
                    fail(str(exc))
        elif raw is None:
            raw = year_dir(year, "raw")
            if not raw.exists():
                fail(f"{raw}: no such folder: pass --raw DIR (the year's exports) or --demo (a synthetic year)")
        from sipas_pipeline.corrections import read_corrections
        from sipas_pipeline.publish import check_database
        from sipas_pipeline.stages import check_raw

        if more_corrections and not corrections:
            fail(f"unexpected argument(s) {', '.join(map(str, more_corrections))}: correction files go after --corrections")
        files = [str(p) for p in [*(corrections or []), *(more_corrections or [])]]
        db = db or default_db()
        try:  # a user's mistake gets one clear line here, before Prefect is imported
            check_raw(m, raw)
            read_corrections(m, [Path(f) for f in files])
            check_database(db)
        except UserError as exc:
            fail(str(exc))
        if starting.pending:
            starting.start()
        with signals_after():  # a signal in the middle of an import would surface as that import's error
            from sipas_pipeline.orchestration import annual_run, preload  # Prefect's engine, while the server starts

            preload(report=not no_report)  # the stages' imports too (while the embedded server is on its way)
        starting.wait()
    server_start = time.perf_counter() - started  # the server's start, with the checks and imports made beside it
    # paths on the command line are the shell's (relative to where the command runs): the flow gets them
    # absolute, as it resolves a relative path against the data root (a served run has no shell)
    from sipas_pipeline.progress import shown, stages

    try:  # a bar per stage (and per file) on a terminal, plain lines in a log; no heartbeats (server.py)
        with shown(), stages(f"run {m.year}", run_stages(bool(files), not no_report)), without_heartbeats():
            result = annual_run(year=m.year, raw=str(raw.absolute()), db=str(db.absolute()),
                                work=str(work.absolute()) if work else None,
                                corrections=[str(Path(f).absolute()) for f in files] or None,
                                allow_incomplete=allow_incomplete, report=not no_report)
    except UserError as exc:
        fail(str(exc))
    released = not (result.release and "error" in result.release)
    if as_json:
        print(json.dumps(result.public(), ensure_ascii=False))
    else:
        print_run(result, {"server start": server_start, "total": time.perf_counter() - started})
    if not released:  # published, but the release after it failed: said on stderr (and in the JSON), exit 3
        err.print(f"error: run {result.run_id} was published; its release failed: {result.release['error']}",
                  highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(RELEASE_FAILED)


def run_stages(corrections: bool, report: bool) -> list[str]:
    """The task names of a run's stages, in order (the flow's tasks, orchestration/flow.py)."""
    return ["ingest", "validate", *(["corrections"] if corrections else []), "compute", "publish", "report",
            *(["release"] if report else [])]


def print_run(result: RunResult, command: dict[str, float] | None = None) -> None:
    """A run's figures for people: accounting, timings (every stage, the release, and the command's own: the
    Prefect server's start and the total), national figures, rankings' ends, the file."""
    t = Table(title=f"Run {result.run_id} (lần chạy) — {result.year}")
    for col in ("source (nguồn)", "read (đọc)", "valid (hợp lệ)", "quarantined (cách ly)"):
        t.add_column(col, justify="left" if col[0] == "s" else "right")
    for source, c in result.sources.items():
        t.add_row(source, f"{c['read']:,}", f"{c['valid']:,}", f"{c['quarantined']:,}")
    console.print(t)
    print_ignored(result.ignored_files)
    console.print("Stages (giây): " + ", ".join(f"{k} {v:.2f} s" for k, v in (result.timings | (command or {})).items())
                  + (f"; served from the stage manifests (cache): {', '.join(result.cached)}" if result.cached else ""))
    if result.corrections:
        outcomes = Counter(c["outcome"] for c in result.corrections)
        console.print(f"Corrections (đính chính): {len(result.corrections)} applied, {dict(outcomes)}")
    n = result.national
    console.print(f"National (toàn quốc): SIPAS {n['sipas']:.2f} (policy {n['sipas_policy']:.2f}, "
                  f"service {n['sipas_service']:.2f}); PAR INDEX mean {n['par']:.2f}; groups {result.groups}")
    for code, why in result.incomplete.items():
        err.print(f"incomplete (thiếu dữ liệu), published without value or rank: province {code}: {why}",
                  highlight=False, soft_wrap=True)
    for measure, title in (("sipas", "SIPAS"), ("par", "PAR INDEX")):
        for end in ("top5", "bottom5"):
            rows = ", ".join(f"{r['rank']}. {r['province']} {r['value']:.2f} (rank {r['rank_interval'][0]}–"
                             f"{r['rank_interval'][1]})" for r in getattr(result, measure)[end])
            console.print(f"{title} {end}: {rows}")
    console.print(f"DuckDB: {result.db} (open read-only; views current_*)")
    if result.release and "error" not in result.release:
        console.print(f"Report (báo cáo): {result.release['html']}; workbook: {result.release['workbook']}",
                      highlight=False, soft_wrap=True)


@app.command()
def compare(year: YearOpt = 2025, db: Annotated[Path | None, typer.Option("--db", help="DuckDB file.")] = None,
            previous_silver: Annotated[Path | None, typer.Option(
                "--previous-silver", help="The previous year's silver citizen.parquet (default: its current run's).")] = None,
            as_json: JsonOpt = False) -> None:
    """The comparable series: YEAR's current results beside the previous year re-estimated on YEAR's units
    (change, interval, significance); the PAR INDEX is not comparable across the merger."""
    import polars as pl

    from sipas_pipeline import comparable
    from sipas_pipeline.paths import default_db

    m = _methodology(year)
    db = db or default_db()
    if not m.comparable:
        fail(f"year {year}: its units did not change (no comparable block): `sipas runs` and current_ranks give the change")
    try:
        prev_year = int(m.comparable["previous_year"])
        silver = previous_silver or comparable.previous_silver(db, prev_year)
        before = comparable.comparable_previous(m, silver)
        paired = comparable.paired_with(m, before, comparable.previous_silver(db, year))  # this year's PSUs vs last's
        rows = _read(db, "SELECT unit_code AS province_code, measure, value, se, df, rank_national "
                         "FROM current_ranks WHERE year = ?", [year])
        own = _read(db, "SELECT unit_code AS province_code, measure, value, se FROM current_ranks WHERE year = ?", [prev_year])
    except UserError as exc:
        fail(str(exc))
    if not rows:
        fail(f"{db}: no current run of {year}: run `sipas run --year {year}` first")
    cols = ["province_code", "measure", "value", "se", "df", "rank_national"]
    table = comparable.series(pl.DataFrame(rows, schema=cols, orient="row"), before, m.design.confidence, paired)
    nations = comparable.nations(before, pl.DataFrame(own, schema=cols[:4], orient="row") if own else None)
    if as_json:
        print(json.dumps({"year": year, "previous_year": prev_year, "series": table.to_dicts(),
                          "previous_nation": nations.to_dicts()}, ensure_ascii=False, default=str))
        return
    names = dict(zip(m.provinces["province_code"], m.provinces["name_vi"], strict=True))
    t = Table(title=f"SIPAS {year} vs {prev_year} on the {len(names)} units (so sánh trên đơn vị mới)")
    for c in ("unit", f"{year}", f"{prev_year} (re-est.)", "change", "interval", "significant", "se method"):
        t.add_column(c)
    for r in table.filter(pl.col("measure") == "sipas").iter_rows(named=True):
        t.add_row(f"{r['province_code']} {names.get(r['province_code'], '')}", _num(r["value"]), _num(r["previous_value"]),
                  _num(r["change_value"]), f"{_num(r['change_ci_low'])} to {_num(r['change_ci_high'])}",
                  {True: "yes", False: "no"}.get(r["change_significant"], "-"), r["change_method"] or "-")
    console.print(t)
    for r in nations.iter_rows(named=True):
        console.print(f"  {prev_year} nation, {r['measure']}: {r['value']:.2f} ({r['definition']})")
    console.print("  The national mean is the mean of the units: its definition changes with their number. "
                  "PAR INDEX: not comparable across the merger.")


runs_app = typer.Typer(no_args_is_help=True, help="Runs recorded in the DuckDB file (lần chạy).")
app.add_typer(runs_app, name="runs")
app.add_typer(__import__("sipas_pipeline.fieldwork.cli").fieldwork.cli.app, name="fieldwork")  # sipas fieldwork …
DbOpt = Annotated[Path | None, typer.Option("--db", help="DuckDB file (default data/sipas.duckdb).")]


def _read(db: Path | None, sql: str, params: list | None = None) -> list[tuple]:
    from sipas_pipeline.paths import default_db
    from sipas_pipeline.publish import read_query

    db = db or default_db()
    if not Path(db).exists():
        fail(f"{db}: no such DuckDB file (run `sipas run` first)")
    try:
        return read_query(db, sql, params)
    except UserError as exc:  # a folder, a foreign, damaged or held file: one line with path and cause
        fail(str(exc))


@runs_app.command("list")
def runs_list(year: Annotated[int | None, typer.Option("--year", help="Only this year.")] = None, db: DbOpt = None,
              as_json: JsonOpt = False) -> None:
    """List runs: id, year, status, when, corrections, rows read / valid / quarantined."""
    rows = _read(db, """
        SELECT r.run_id, r.year, r.status, strftime(r.started_at, '%Y-%m-%d %H:%M:%S'),
               round(epoch(r.finished_at - r.started_at), 1),
               (SELECT count(*) FROM corrections c WHERE c.run_id = r.run_id),
               list_sum([a."read" for a in r.accounting]), list_sum([a.valid for a in r.accounting]),
               list_sum([a.quarantined for a in r.accounting]), len(r.inputs), r.results_hash,
               r.run_id IN (SELECT run_id FROM current_runs)
        FROM runs r WHERE $year IS NULL OR r.year = $year ORDER BY r.started_at, r.run_id""", {"year": year})
    keys = ("run_id", "year", "status", "started", "seconds", "corrections", "read", "valid", "quarantined", "input_files",
            "results_hash", "current")
    if as_json:
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], ensure_ascii=False, default=str))
        return
    # fits 80 columns: the year is in the run id, the status says which run is current, figures are compact
    t = Table(title="Runs (lần chạy)", box=None, pad_edge=False, padding=(0, 1), header_style="bold underline")
    for name, right in (("run_id", False), ("status", False), ("started UTC", False), ("read", True),
                        ("quar.", True), ("corr.", True)):
        t.add_column(name, justify="right" if right else "left", no_wrap=True)
    for r in rows:
        d = dict(zip(keys, r, strict=True))
        t.add_row(d["run_id"], "current" if d["current"] else d["status"], (d["started"] or "")[5:16],
                  f"{d['read'] or 0:,}", f"{d['quarantined'] or 0:,}", str(d["corrections"]))
    console.print(t)


@runs_app.command("diff")
def runs_diff(run_a: Annotated[str, typer.Argument(help="The earlier run id.")],
              run_b: Annotated[str, typer.Argument(help="The later run id.")], db: DbOpt = None,
              top: Annotated[int, typer.Option(help="Rows to show per kind.")] = 15, as_json: JsonOpt = False) -> None:
    """What changed between two runs: provinces whose rank moved, then indices, PAR points and indicators
    that moved, biggest first (the DuckDB macro run_diff gives the same table)."""
    known = {r[0] for r in _read(db, "SELECT run_id FROM runs WHERE run_id IN ($a, $b)", {"a": run_a, "b": run_b})}
    for r in (run_a, run_b):
        if r not in known:
            fail(f"no run {r!r} in the database (see `sipas runs list`)")
    rows = _read(db, "SELECT * FROM run_diff($a, $b)", {"a": run_a, "b": run_b})
    keys = ("kind", "unit_level", "unit_code", "unit_name_vi", "unit_name_en", "item", "value_a", "value_b", "change",
            "rank_a", "rank_b", "places")
    diff = [dict(zip(keys, r, strict=True)) for r in rows]
    if as_json:
        print(json.dumps(diff, ensure_ascii=False))
        return
    if not diff:
        console.print(f"No differences between {run_a} and {run_b}.")
        return
    console.print(f"{run_a} → {run_b}: {len(diff)} values moved "
                  f"({dict(Counter(d['kind'] for d in diff))})")
    for kind, title in (("rank", "Ranks (xếp hạng)"), ("group", "PAR INDEX groups (nhóm)"), ("sipas_index", "SIPAS"),
                        ("par_points", "PAR points"), ("indicator", "Indicators (chỉ tiêu)")):
        part = [d for d in diff if d["kind"] == kind and (kind != "rank" or d["rank_a"] != d["rank_b"])][:top]
        if not part:
            continue
        t = Table(title=title)
        for col in ("unit", "item", "before", "after", "change", *(["rank before", "rank after"] if kind == "rank" else [])):
            t.add_column(col, justify="left" if col in ("unit", "item") else "right")
        for d in part:
            ranks = [str(d["rank_a"]), str(d["rank_b"])] if kind == "rank" else []
            t.add_row(d["unit_name_vi"] or d["unit_code"], d["item"], _num(d["value_a"]), _num(d["value_b"]),
                      _num(d["change"]), *ranks)
        console.print(t)


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="Folder for the report, PNGs, workbook and CSVs (made if missing).")],
    year: YearOpt = 2024, db: DbOpt = None, as_json: JsonOpt = False,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also print one A4 PDF scorecard per province (headless Chromium; "
                                      "seconds per province) under scorecards/.")] = False,
) -> None:
    """The analyst release of a year's current run: one self-contained HTML report (charts, a scorecard per
    province), PNGs of the main charts, an Excel workbook and UTF-8-BOM CSVs; with --pdf a PDF scorecard per
    province. Reads the DuckDB file only."""
    from sipas_pipeline.paths import default_db
    from sipas_pipeline.report import build

    try:
        files = build(db or default_db(), year, out, pdf=pdf)
    except UserError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({"year": year, "html": str(files.html), "workbook": str(files.workbook),
                          "pngs": [str(p) for p in files.pngs], "csvs": [str(p) for p in files.csvs],
                          "pdfs": [str(p) for p in files.pdfs]}, ensure_ascii=False))
        return
    console.print(f"Report (báo cáo): {files.html}", highlight=False, soft_wrap=True)
    console.print(f"Workbook (Excel): {files.workbook}", highlight=False, soft_wrap=True)
    if files.pdfs:
        console.print(f"PDF scorecards (phiếu điểm): {len(files.pdfs)} in "
                      f"{files.pdfs[0].parent}", highlight=False, soft_wrap=True)
    for p in [*files.pngs, *files.csvs]:
        console.print(f"  {p}", highlight=False, soft_wrap=True)


PrefectFileOpt = Annotated[Path | None, typer.Option(
    "--prefect-file", help="The prefect.yaml declaring the deployments (default ./prefect.yaml, else the checkout's).")]


def _prefect_server(what: str) -> None:
    """Prefect's settings for a command that talks to a running server (PREFECT_API_URL), or one line."""
    import os

    from sipas_pipeline.config import prefect_defaults

    if not os.environ.get("PREFECT_API_URL"):
        fail(f"sipas {what} needs a running Prefect server: start one (`prefect server start`, or the unit in deploy/) "
             "and set PREFECT_API_URL, e.g. http://127.0.0.1:4200/api")
    prefect_defaults()


@app.command()
def deploy(prefect_file: PrefectFileOpt = None,
           webhook: Annotated[str | None, typer.Option(
               "--webhook", envvar="SIPAS_WEBHOOK_URL", help="URL the failure notifications are POSTed to (JSON subject, "
               "body), saved as the webhook block sipas-failures.")] = None,
           email_to: Annotated[list[str] | None, typer.Option(
               "--email-to", help="E-mail the failure notifications to this address "
               "(repeatable), through --smtp; saved as the block sipas-smtp-email/sipas-failures.")] = None,
           smtp: Annotated[str | None, typer.Option(
               "--smtp", help="The SMTP server of --email-to as HOST:PORT (login, when it wants "
               "one, from SIPAS_SMTP_USER and SIPAS_SMTP_PASSWORD).")] = None,
           smtp_from: Annotated[str | None, typer.Option("--smtp-from", help="From address (default sipas@<host>).")] = None,
           smtp_security: Annotated[str | None, typer.Option(
               "--smtp-security", help="insecure, starttls or ssl (default: ssl on 465, starttls on 587, else "
               "insecure, as a relay on port 25).")] = None,
           notify_block: Annotated[list[str] | None, typer.Option(
               "--notify-block", help="Another saved notification block to notify, as TYPE/NAME (a Slack or SendGrid "
               "block, say); repeatable.")] = None,
           as_json: JsonOpt = False) -> None:
    """Register the deployments of prefect.yaml (`prefect deploy --all`, their process work pool created when missing)
    with the data root (SIPAS_DATA) in their runs' environment, and the automation that notifies the webhook (and
    the blocks named) when a run of theirs is Failed, Crashed or Late. Run the worker with `prefect worker start
    --pool sipas` (or the unit in deploy/): a worker's deployments keep their schedule when it stops."""
    import os

    if bool(email_to) != bool(smtp):
        fail("--email-to and --smtp go together: the address(es) and the SMTP server (HOST:PORT) that sends to them")
    _prefect_server("deploy")
    from sipas_pipeline.orchestration import deployments

    try:
        email = None
        if email_to and smtp:
            from sipas_pipeline.orchestration.mail import smtp_block

            email = smtp_block(email_to, smtp, smtp_from, smtp_security, os.environ.get("SIPAS_SMTP_USER"),
                               os.environ.get("SIPAS_SMTP_PASSWORD"))
        done = deployments.deploy(deployments.prefect_file(prefect_file), webhook, notify_block or [], email)
    except UserError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(done, ensure_ascii=False))
        return
    for name, ident in done["deployments"].items():
        console.print(f"deployment {name}: {ident}", highlight=False)
    for pool in done["pools_created"]:
        console.print(f"work pool {pool} created (type process)", highlight=False)
    console.print(f"data root (SIPAS_DATA) of every run: {done['data_root']}", highlight=False)
    if done["automation"]:
        console.print(f"automation sipas-runs-failed-crashed-late: {done['automation']} "
                      f"(Failed, Crashed, Late -> {done['notified']} notification block(s))", highlight=False)
    else:
        err.print("warning: no --webhook, --email-to or --notify-block: a failed or late run notifies nobody",
                  highlight=False)


@app.command()
def serve(prefect_file: PrefectFileOpt = None) -> None:
    """Serve the deployments of prefect.yaml from this process, without a work pool, until stopped: for a try-out.
    Stopping it pauses every deployment it served (their scheduled runs go): in service, use a worker."""
    _prefect_server("serve")
    from sipas_pipeline.orchestration import deployments

    try:
        deployments.serve(deployments.prefect_file(prefect_file))
    except UserError as exc:
        fail(str(exc))


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@contextlib.contextmanager
def signals_after():
    """Hold SIGTERM / SIGINT / SIGHUP until the block is done (imports: seconds at most), then act on the first."""
    held: list[int] = []
    before = {sig: signal.signal(sig, lambda signum, frame: held.append(signum)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        if held and callable(before[held[0]]):
            before[held[0]](held[0], None)


def _stop(signum: int, frame: object) -> None:
    """SIGTERM / SIGINT / SIGHUP: leave through the normal exit path, so the embedded Prefect server stops with us."""
    err.print(f"error: stopped by {signal.Signals(signum).name}", highlight=False, soft_wrap=True)
    raise SystemExit(128 + signum)


LEAVING: list[object] = []  # the exit code of a command that ended normally (or by a signal), once it has


def _leave_now() -> None:
    """Last at exit, after a command that imported Prefect ended normally: once every other hook has run (the
    embedded server stopped, Prefect's logs and events sent, logging's handlers flushed here), leave at once with
    the command's exit code, sparing the interpreter's teardown of Prefect's, Polars' and DuckDB's modules (about a
    second of CPU; several seconds of waiting on a loaded machine). An uncaught exception leaves as Python does."""
    if not LEAVING or "prefect" not in sys.modules:
        return
    import logging
    import os

    code = LEAVING[-1]
    logging.shutdown()  # (a sys.exit("message") was printed by Python before the exit hooks ran)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def main() -> None:
    """Entry point of the `sipas` console script. A signal ends the command with one line and exit code
    128 + signal, never a traceback; whatever it started (the embedded Prefect server) stops with it."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop)
    atexit.register(_leave_now)  # the first hook registered runs last, after those of the server and Prefect
    try:
        app()
    except SystemExit as exc:
        LEAVING.append(exc.code)
        raise
    except KeyboardInterrupt:
        err.print("error: interrupted", highlight=False, soft_wrap=True)
        sys.exit(130)
    except BaseException as exc:  # Prefect's engine re-raises SIGTERM inside a flow as its TerminationSignal
        signum = getattr(exc, "signal", None)
        if not isinstance(signum, int):
            raise
        err.print(f"error: stopped by {signal.Signals(signum).name}", highlight=False,
                  soft_wrap=True)
        sys.exit(128 + signum)


if __name__ == "__main__":
    main()
