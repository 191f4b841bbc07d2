"""`sipas fieldwork …`: submit a batch, run the fieldwork flow once, serve its deployment, print the status."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from sipas_pipeline.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Live fieldwork (khảo sát đang diễn ra): batches, progress, provisional figures.")
console = Console()

YearOpt = Annotated[int | None, typer.Option("--year", help="Survey year (default: this year, Vietnam time).")]
SeasonOpt = Annotated[Path | None, typer.Option("--season", help="Season folder (default data/<year>/fieldwork).")]
InboxOpt = Annotated[Path | None, typer.Option("--inbox", help="Inbox (default data/<year>/incoming).")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="DuckDB file (default data/sipas.duckdb).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def fail(message: str) -> None:
    from sipas_pipeline.cli import fail as common

    common(message)


def _where(year: int | None, season: Path | None, inbox: Path | None) -> tuple[Any, Path, Path]:
    from sipas_pipeline.fieldwork.live import fieldwork_year
    from sipas_pipeline.fieldwork.season import inbox_dir, season_dir
    from sipas_pipeline.methodology import load_methodology

    y = fieldwork_year(year)
    try:
        m = load_methodology(y)
    except UserError as exc:
        fail(str(exc))
    return m, season or season_dir(y), inbox or inbox_dir(y)


def print_entry(entry: dict[str, Any], quarantine: Any | None) -> None:
    """A batch's line and, when it has quarantined rows, every reason (row, column, rule, value, message)."""
    from sipas_pipeline.fieldwork.live import reasons_line

    console.print(reasons_line(entry), highlight=False, soft_wrap=True)
    if quarantine is not None and quarantine.height:
        for r in quarantine.iter_rows(named=True):  # one line per reason: file, row, column, value, rule, message
            where = f", {r['column']} = {r['value']!r}" if r["column"] else ""
            console.print(f"  {entry['file']} row {r['source_row']}{where}: {r['rule']}: {r['message']}",
                          highlight=False, soft_wrap=True, markup=False)


@app.command()
def submit(file: Annotated[Path, typer.Argument(help="The batch: an export file (CSV, XLSX, TSV, Parquet).")],
           source: Annotated[str, typer.Option("--source", help="citizen or official.")] = "citizen",
           year: YearOpt = None, season: SeasonOpt = None, inbox: InboxOpt = None, db: DbOpt = None,
           queue: Annotated[bool, typer.Option("--queue", help="Only put it in the inbox and ask the running deployment "
                                                           "`fieldwork` for a run now (PREFECT_API_URL).")] = False,
           as_json: JsonOpt = False) -> None:
    """Put FILE in the inbox (a new folder per submission, nothing overwritten) and take it now: its rows read,
    valid and quarantined, with every reason; the provisional figures, tables and page refreshed."""
    from sipas_pipeline.fieldwork.season import FIELDWORK_SOURCES, write_beside

    if source not in FIELDWORK_SOURCES:
        fail(f"--source {source}: one of {', '.join(FIELDWORK_SOURCES)}")
    if not file.is_file():
        fail(f"{file}: no such file")
    m, season_root, box = _where(year, season, inbox)
    folder = box / m.meta["sources"][source]["folder"] / datetime.now(UTC).strftime("submitted-%Y%m%dT%H%M%S%f")
    folder.mkdir(parents=True)
    write_beside(folder / file.name, lambda p: shutil.copyfile(file, p))  # renamed in whole: never taken half-written
    if queue:
        triggered = ask_deployment()
        out = {"inbox": str(folder / file.name), "flow_run": triggered}
        print(json.dumps(out, ensure_ascii=False)) if as_json else console.print(
            f"{folder / file.name}: in the inbox; deployment run {triggered} asked for", highlight=False, soft_wrap=True)
        return
    result = take_now(m, season_root, box, db)
    if as_json:
        print(json.dumps(result, ensure_ascii=False, default=str))
        return
    import polars as pl

    from sipas_pipeline.fieldwork.season import Season

    s = Season(season_root)
    for e in result["entries"]:
        q = s.version("quarantine", e["source"], e["batch_id"], e["sha256"])
        print_entry(e, pl.read_parquet(q).explode("reasons").unnest("reasons") if q.is_file() else None)
    console.print(f"page: {result['page']}", highlight=False, soft_wrap=True)


def take_now(m: Any, season_root: Path, box: Path, db: Path | None) -> dict[str, Any]:
    """Take the inbox's pending batches in this process (under the season's lock) and refresh."""
    from sipas_pipeline.fieldwork.inbox import pending
    from sipas_pipeline.fieldwork.live import refresh, take_batch
    from sipas_pipeline.fieldwork.season import Season, season_lock
    from sipas_pipeline.paths import default_db

    try:
        with season_lock(season_root):
            s = Season.open(season_root)
            entries = [take_batch(m, s, source, path, s.page_path) for source, path in pending(m, s, box)]
            done = refresh(m, s, db or default_db(), s.page_path, entries)
    except UserError as exc:
        fail(str(exc))
    return {"entries": entries, "status": done.status, "page": done.page}


def ask_deployment() -> str:
    """Ask the Prefect server for a run of the deployment `fieldwork` now (Prefect's own mechanism)."""
    if not os.environ.get("PREFECT_API_URL"):
        fail("--queue needs a running Prefect server (PREFECT_API_URL) serving the deployment fieldwork")
    from sipas_pipeline.config import prefect_defaults

    prefect_defaults()
    from prefect.deployments import run_deployment

    from sipas_pipeline.orchestration.fieldwork import DEPLOYMENT

    try:
        return str(run_deployment(DEPLOYMENT, timeout=0).id)
    except Exception as exc:  # an unknown deployment, a server that does not answer: one line
        fail(f"deployment {DEPLOYMENT}: {exc}")
    return ""


@app.command()
def run(year: YearOpt = None, season: SeasonOpt = None, inbox: InboxOpt = None, db: DbOpt = None,
        target_scale: Annotated[float | None, typer.Option("--target-scale", help="Scale of the target sample (a "
                                                          "synthetic year's --scale).")] = None,
        as_json: JsonOpt = False) -> None:
    """One run of the Prefect flow sipas-fieldwork (on PREFECT_API_URL, else an embedded temporary server)."""
    m, season_root, box = _where(year, season, inbox)
    from sipas_pipeline.config import prefect_defaults

    prefect_defaults()
    from sipas_pipeline.orchestration.fieldwork import fieldwork_run

    if not os.environ.get("PREFECT_API_URL"):
        from sipas_pipeline.orchestration import start_embedded_server

        start_embedded_server()
    try:
        out = fieldwork_run(year=m.year, inbox=str(box), season=str(season_root), db=str(db) if db else None,
                            target_scale=target_scale)
    except UserError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({k: out[k] for k in ("year", "taken", "status", "page")}, ensure_ascii=False, default=str))
        return
    for e in out["entries"]:
        print_entry(e, None)
    console.print(f"{len(out['taken'])} batches taken; page {out['page']}", highlight=False, soft_wrap=True)


@app.command()
def serve(year: YearOpt = None, season: SeasonOpt = None, inbox: InboxOpt = None, db: DbOpt = None,
          interval: Annotated[int, typer.Option("--interval", help="Seconds between runs.")] = 60) -> None:
    """Serve the deployment `fieldwork` (interval schedule, one run at a time) until interrupted."""
    m, season_root, box = _where(year, season, inbox)
    from sipas_pipeline.config import prefect_defaults

    prefect_defaults()
    from prefect import serve as prefect_serve

    from sipas_pipeline.orchestration.fieldwork import fieldwork_deployment

    prefect_serve(fieldwork_deployment(m.year, str(box), str(season_root), str(db) if db else None, interval=interval))


@app.command()
def status(year: YearOpt = None, season: SeasonOpt = None, inbox: InboxOpt = None, as_json: JsonOpt = False) -> None:
    """The season's state: batches taken, duplicates, re-sent, forms valid / quarantined, coverage of the target,
    provinces behind schedule, files waiting in the inbox, the last batch."""
    from sipas_pipeline.fieldwork.season import Season

    m, season_root, box = _where(year, season, inbox)
    if not (season_root / "batches.json").is_file():
        fail(f"{season_root}: no fieldwork season yet (sipas fieldwork submit FILE, or the deployment fieldwork, starts it)")
    state = season_state(m, Season(season_root), box)
    if as_json:
        print(json.dumps(state, ensure_ascii=False, default=str))
        return
    s = state["status"]
    console.print(f"Fieldwork {m.year} (khảo sát) as of {s['as_of'] or '–'}: {s['batches_taken']} batches taken, "
                  f"{s['batches_duplicate']} sent twice, {s['batches_superseded']} re-sent, {s['batches_unreadable']} "
                  f"unreadable; {state['pending']} waiting in {box}", highlight=False, soft_wrap=True)
    console.print(f"forms: {s['forms_valid']:,} valid, {s['forms_quarantined']:,} quarantined; of target: citizens "
                  f"{_pct(s['coverage_citizen'])}, officials {_pct(s['coverage_official'])}", highlight=False, soft_wrap=True)
    behind = state["behind_schedule"]
    for source, names in behind.items():
        console.print(f"behind schedule ({source}): {len(names)} provinces: {', '.join(names[:12])}"
                      + (" …" if len(names) > 12 else ""), highlight=False, soft_wrap=True)
    if state["last_batch"]:
        console.print("last batch: " + state["last_batch"], highlight=False, soft_wrap=True)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def season_state(m: Any, season: Any, box: Path) -> dict[str, Any]:
    """What `status` prints, from the season's folder alone (no database, no Prefect)."""
    import polars as pl

    from sipas_pipeline.fieldwork.inbox import pending
    from sipas_pipeline.fieldwork.live import reasons_line, status_row
    from sipas_pipeline.fieldwork.progress import as_of_date, progress

    ledger = season.ledger()
    prog = progress(m, season.tallies(), ledger, season.target_scale)
    names = dict(zip(m.provinces["province_code"], m.provinces["name_vi"], strict=True))
    behind = {src: [f"{c} {names.get(c, '')}" for c in prog.filter((pl.col("source") == src) & pl.col("behind_schedule")
                                                                   .fill_null(False)).sort("unit_code")["unit_code"]]
              for src in ("citizen", "official")}
    return {"year": m.year, "status": status_row(m, ledger, prog, as_of_date(ledger, m)), "pending": len(pending(m, season, box)),
            "behind_schedule": behind, "last_batch": reasons_line(ledger[-1]) if ledger else None}


def sample_season(year: int, out: Path | None, folder: Path | None, seed: int, scale: float, as_json: bool) -> None:
    """`sipas sample --fieldwork DIR`: a synthetic year split into timestamped batches (fieldwork/split.py)."""
    if folder is None or out is not None:
        fail("give either --out DIR (a raw year) or --fieldwork DIR (the year split into batches)")
    if scale <= 0:
        fail("--scale must be positive")
    from sipas_pipeline.fieldwork.split import split_year

    try:
        info = split_year(year, folder, seed=seed, scale=scale)
    except UserError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(info, ensure_ascii=False))
        return
    console.print(f"Wrote a synthetic {year} season to {folder} (seed {seed}, scale {scale:g}): {info['batches']} batches "
                  f"from {info['first']} to {info['last']}, forms {info['forms']}, kinds {info['kinds']}; "
                  f"replay: copy {folder}/batches/* into data/{year}/incoming/ in the order of {folder}/schedule.csv "
                  f"(the annual run of the same forms: sipas run --raw {folder}/annual)", highlight=False, soft_wrap=True)
