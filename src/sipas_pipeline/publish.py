"""Publish a run's results into the DuckDB file: one transaction per run into the next file (built
beside the current one and swapped in, see `duckdb_file`), the DDL and views from `schemas/duckdb/`,
comments on every table, view and column, and the hash of exactly the tables published."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from sipas_pipeline.collation import sort_key_vi
from sipas_pipeline.duckdb_file import (
    VIEW_BASE,
    check_database,
    connect,
    migrate,
    next_file,
    read_query,
    record_schema,
    schema_is_current,
    schema_text,
)
from sipas_pipeline.errors import DatabaseError, DatabaseLocked
from sipas_pipeline.hashing import frames_sha256
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.paths import schemas_root

__all__ = ["DatabaseError", "DatabaseLocked", "check_database", "connect", "publish", "read_query", "record_failure",
           "results_hash"]


def ddl_files() -> list[Path]:
    """The SQL files applied on every publish, in order."""
    root = schemas_root() / "duckdb"
    return [root / "tables.sql", root / "views.sql"]


def previous_results(db: Path, year: int) -> pl.DataFrame | None:
    """The previous year's own current results in `db` (read-only): province_code, measure, value, se, df,
    rank_national and basis 'results', for the change columns; None when the file, the table or that year's
    results are not there (the change is then against published figures)."""
    db = Path(db)
    if not db.is_file():
        return None
    con = connect(db, read_only=True)
    try:
        cur = con.execute("""SELECT k.province_code, k.measure, k.value, k.se, k.df, k.rank_national, 'results' AS basis
                             FROM ranks k JOIN current_runs r USING (run_id) WHERE k.year = $year AND k.value IS NOT NULL
                             ORDER BY k.measure, k.province_code""", {"year": year - 1})
        frame = pl.DataFrame(cur.fetchall(), schema=[d[0] for d in cur.description], orient="row")
    except (duckdb.CatalogException, duckdb.BinderException):  # no ranks, or ranks without se (older schema): none
        return None
    finally:
        con.close()
    return frame if frame.height else None


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create tables (if missing) and views, and (re)apply every comment."""
    for path in ddl_files():
        con.execute(path.read_text(encoding="utf-8"))
    comment_view_columns(con)


def bring_schema(con: duckdb.DuckDBPyConnection, db: Path, run_id: str) -> list[str]:
    """Inside the publish's transaction: migrate the file and apply the schema files (tables, views, every
    comment), unless the file holds exactly what these files made when last applied (`schema_is_current`: the
    usual publish, which then rewrites no table, view or comment); returns the migration's notes."""
    ddl = schema_text()
    if schema_is_current(con, ddl):
        return []
    notes = migrate(con, db, run_id)
    ensure_schema(con)
    record_schema(con, ddl)
    return notes


def comment_view_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Give each view column without a comment the comment of the same column in its base table."""
    rows = con.execute("""
        SELECT c.table_name, c.column_name FROM duckdb_columns() c JOIN duckdb_views() v
          ON v.view_name = c.table_name AND v.schema_name = c.schema_name
        WHERE NOT v.internal AND c.comment IS NULL""").fetchall()
    known = con.execute("""
        SELECT c.table_name, c.column_name, c.comment FROM duckdb_columns() c JOIN duckdb_tables() t
          ON t.table_name = c.table_name AND t.schema_name = c.schema_name WHERE c.comment IS NOT NULL
        ORDER BY c.table_name""").fetchall()
    by_table = {(t, c): text for t, c, text in known}
    any_table = {}
    for _, c, text in known:
        any_table.setdefault(c, text)
    for view, column in rows:
        base = VIEW_BASE.get(view, view.removeprefix("current_"))
        text = by_table.get((base, column)) or any_table.get(column)
        if text is None:
            raise ValueError(f"schemas/duckdb/views.sql: view {view} column {column} has no comment")
        con.execute(f'COMMENT ON COLUMN {view}."{column}" IS ' + sql_string(text))


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def dimension_frames(m: Methodology) -> dict[str, pl.DataFrame]:
    """The dimension tables of a year, from its methodology."""
    year = pl.lit(m.year, pl.Int32).alias("year")
    p, r = m.provinces, m.regions
    units = pl.concat([
        p.select(year, pl.lit("province").alias("unit_level"), pl.col("province_code").alias("unit_code"),
                 "name_vi", "name_en", "region_code"),
        r.select(year, pl.lit("region").alias("unit_level"), pl.col("region_code").alias("unit_code"),
                 "name_vi", "name_en", "region_code"),
        pl.DataFrame({"unit_code": ["VN"], "name_vi": ["Toàn quốc"], "name_en": ["Nation"]}).select(
            year, pl.lit("nation").alias("unit_level"), "unit_code", "name_vi", "name_en",
            pl.lit(None, pl.Utf8).alias("region_code")),
    ])
    sipas = pl.concat([
        pl.DataFrame({"node": ["SIPAS"], "label_vi": ["Chỉ số SIPAS"], "label_en": ["SIPAS index"]}).select(
            year, pl.lit("sipas").alias("level"), "node", pl.lit(None, pl.Utf8).alias("parent"),
            pl.lit(1.0).alias("weight"), "label_vi", "label_en"),
        m.parts.select(year, pl.lit("part").alias("level"), pl.col("part").alias("node"),
                       pl.lit("SIPAS").alias("parent"), pl.col("weight").cast(pl.Float64), "label_vi", "label_en"),
        m.tree.select(year, pl.lit("element").alias("level"), pl.col("element").alias("node"),
                      pl.col("part").alias("parent"), pl.col("weight").cast(pl.Float64), "label_vi", "label_en"),
    ])
    sub = m.par_subcriteria
    crit_max = sub.group_by("criterion_id").agg(pl.col("max_points").sum())
    none = pl.lit(None, pl.Utf8)
    par = pl.concat([
        m.par_fields.select(year, pl.lit("field").alias("level"), pl.col("field_id").cast(pl.Utf8).alias("node"),
                            none.alias("criterion_id"), pl.col("field_id").cast(pl.Utf8), none.alias("kind"),
                            none.alias("source"), pl.col("max_points").cast(pl.Float64), "label_vi", "label_en"),
        m.par_criteria.join(crit_max, on="criterion_id", how="left").select(
            year, pl.lit("criterion").alias("level"), pl.col("criterion_id").alias("node"), "criterion_id",
            pl.col("field_id").cast(pl.Utf8), none.alias("kind"), none.alias("source"),
            pl.col("max_points").cast(pl.Float64), "label_vi", "label_en"),
        sub.select(year, pl.lit("subcriterion").alias("level"), pl.col("subcriterion_id").alias("node"),
                   "criterion_id", pl.col("field_id").cast(pl.Utf8), "kind", "source",
                   pl.col("max_points").cast(pl.Float64), "label_vi", "label_en"),
    ])
    ind = m.indicators.select(year, pl.exclude("weight"), pl.col("weight").cast(pl.Float64)).with_columns(
        pl.col("in_index").cast(pl.Utf8).str.to_lowercase().is_in(["true", "yes", "1"]),
        pl.col("counting_codes").cast(pl.Utf8))
    units = units.with_columns(pl.col("name_vi").map_elements(sort_key_vi, return_dtype=pl.Utf8).alias("name_sort"))
    mapping = (m.unit_mapping.select(year, pl.col("from_year").cast(pl.Int32), "from_code", "from_name", "to_code", "to_name")
               if m.unit_mapping is not None else pl.DataFrame(schema={
                   "year": pl.Int32, "from_year": pl.Int32, "from_code": pl.Utf8, "from_name": pl.Utf8, "to_code": pl.Utf8,
                   "to_name": pl.Utf8}))
    return {"units": units, "indicators": ind, "sipas_structure": sipas, "par_structure": par, "unit_mappings": mapping}


def fact_frames(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The compute stage's tables in the shape of the fact tables (PAR levels in one long table)."""
    sub = tables["par_points"].select("province_code", pl.lit("subcriterion").alias("level"),
                                      pl.col("subcriterion_id").alias("node"), "points", "max_points", "self_points", "se")
    levels = tables["par_levels"].select("province_code", "level", "node", "points", "max_points",
                                         pl.lit(None, pl.Float64).alias("self_points"), pl.lit(None, pl.Float64).alias("se"))
    return {"indicator_values": tables["indicator_values"], "sipas_indices": tables["sipas_indices"],
            "par_points": pl.concat([sub, levels]), "par_totals": tables["par_totals"], "ranks": tables["ranks"]} | (
        {"contrasts": tables["contrasts"]} if "contrasts" in tables else {})


def quarantine_frame(quarantine: pl.DataFrame, units: list[str] | None = None) -> pl.DataFrame:
    """Quarantined rows (one per row, reasons listed) -> one row per reason with the row as JSON. Every value that
    leaves (the offending value, the row's fields) passes the personal-data screen first (personal_data); a
    province that is not one of `units` (text that could not be resolved) is no code: null, its text screened."""
    if quarantine.height == 0:
        return pl.DataFrame(schema={"source": pl.Utf8, "batch_id": pl.Utf8, "source_file": pl.Utf8,
                                    "source_row": pl.Int64, "form_id": pl.Utf8, "province_code": pl.Utf8,
                                    "column_name": pl.Utf8, "rule": pl.Utf8, "value": pl.Utf8,
                                    "message": pl.Utf8, "record": pl.Utf8})
    from sipas_pipeline.personal_data import screen_columns

    record_cols = [c for c in quarantine.columns if c not in ("reasons", "source")]
    fields = [c for c in record_cols if c not in ("source_file", "batch_id", "file_sha256", "source_row")]
    frame = screen_columns(quarantine, fields)
    frame = frame.with_columns(pl.struct(record_cols).struct.json_encode().alias("record"))
    for col in ("form_id", "province_code"):
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.Utf8).alias(col))
    if units is not None:
        frame = frame.with_columns(pl.when(pl.col("province_code").is_in(units)).then(pl.col("province_code")))
    out = (frame.select("source", "batch_id", "source_file", "source_row", "form_id", "province_code", "record",
                        "reasons").explode("reasons").unnest("reasons")
           .rename({"column": "column_name"})
           .select("source", "batch_id", "source_file", "source_row", "form_id", "province_code", "column_name",
                   "rule", "value", "message", "record"))
    return screen_columns(out, ["value"])


def insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, run_id: str | None, year: int) -> None:
    """Append `frame` to `table` by column name, with run id and year in front."""
    con.register("_frame", frame.to_arrow())
    keys = ("$run_id AS run_id, " if run_id is not None else "") + "$year AS year, "
    params = {"year": year} | ({"run_id": run_id} if run_id is not None else {})
    con.execute(f"INSERT INTO {table} BY NAME SELECT {keys} * EXCLUDE (year) FROM _frame"
                if "year" in frame.columns else
                f"INSERT INTO {table} BY NAME SELECT {keys} * FROM _frame", params)
    con.unregister("_frame")


def run_row(m: Methodology, run: dict[str, Any], status: str, results_hash: str | None = None,
            error: str | None = None) -> dict[str, Any]:
    """The `runs` row of a run record (the dict `orchestration.run_year` builds: run_id, started_at,
    parameters, flow_run_id, code_version, inputs, accounting, unreadable_files, ignored_files, timings, libraries)."""
    return {"run_id": run["run_id"], "year": m.year, "status": status, "started_at": run["started_at"],
            "finished_at": datetime.now(UTC), "parameters": json.dumps(run.get("parameters", {}), ensure_ascii=False),
            "flow_run_id": run.get("flow_run_id"), "methodology_hash": m.content_hash,
            "code_version": run.get("code_version", "unknown"), "inputs": run.get("inputs", []),
            "accounting": run.get("accounting", []), "unreadable_files": run.get("unreadable_files", []),
            "ignored_files": run.get("ignored_files", []), "timings": run.get("timings", []),
            "results_hash": results_hash, "error": error, "libraries": run.get("libraries", []),
            "trigger": run.get("parameters", {}).get("trigger")}


def insert_run(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """Insert one `runs` row (nested lists of dicts become DuckDB lists of structs)."""
    cols = list(row)
    con.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('$' + c for c in cols)})", row)


def results_hash(tables: dict[str, pl.DataFrame]) -> str:
    """SHA-256 of the fact tables a run publishes from the compute stage's `tables`, in a canonical
    encoding (see hashing.frames_sha256): what `runs.results_hash` records."""
    return frames_sha256(fact_frames(tables))


def publish(db: Path, m: Methodology, run: dict[str, Any], tables: dict[str, pl.DataFrame],
            quarantine: pl.DataFrame, *, corrections: list[dict[str, Any]] | None = None,
            before_commit: Callable[[], None] | None = None) -> dict[str, Any]:
    """Write one run (dimensions refreshed, facts, quarantine, corrections audit, run row) in one transaction
    into the next file and swap it in, making the run current; on any error the current file stays as it
    was. Returns counts, seconds, the results hash (of the fact tables inserted) and notes (a migration,
    a stale marker taken over)."""
    t0 = time.perf_counter()
    db = Path(db)
    facts = fact_frames(tables)
    digest = frames_sha256(facts)
    with next_file(db, run["run_id"], m.year) as (con, notes):
        con.execute("BEGIN TRANSACTION")
        try:
            notes += bring_schema(con, db, run["run_id"])
            for name, frame in dimension_frames(m).items():
                con.execute(f"DELETE FROM {name} WHERE year = $year", {"year": m.year})
                insert(con, name, frame, None, m.year)
            con.execute("""INSERT INTO methodology_versions SELECT $year, $version, $hash, $files, $run_id
                           WHERE NOT EXISTS (SELECT 1 FROM methodology_versions WHERE year = $year AND content_hash = $hash)""",
                        {"year": m.year, "version": str(m.meta.get("version", "")), "hash": m.content_hash,
                         "files": json.dumps(m.files), "run_id": run["run_id"]})
            counts = {}
            audit = {"corrections": pl.DataFrame(corrections, infer_schema_length=None)} if corrections else {}
            rejected = quarantine_frame(quarantine, m.provinces["province_code"].to_list())
            for name, frame in (facts | {"quarantine": rejected} | audit).items():
                insert(con, name, frame, run["run_id"], m.year)
                counts[name] = frame.height
            seconds = time.perf_counter() - t0
            timed = dict(run) | {"timings": [*run.get("timings", []), {"stage": "publish", "seconds": round(seconds, 3)}]}
            insert_run(con, run_row(m, timed, "published", digest))
            if before_commit is not None:
                before_commit()
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
    return {"db": str(db), "rows": counts, "seconds": round(time.perf_counter() - t0, 3), "results_hash": digest,
            "notes": notes}


def record_failure(db: Path, m: Methodology, run: dict[str, Any], error: str, status: str = "failed") -> None:
    """Record a run that stopped (status failed, or refused for a user's mistake; nothing else of it) so `runs`
    says what happened."""
    with next_file(Path(db), run["run_id"], m.year) as (con, _):
        con.execute("BEGIN TRANSACTION")
        bring_schema(con, Path(db), run["run_id"])
        insert_run(con, run_row(m, run, status, error=error[:2000]))
        con.execute("COMMIT")
