"""The `fieldwork_*` tables of the DuckDB file (schemas/duckdb/fieldwork.sql): written beside the current file
and swapped in, as every writer of the file does (`duckdb_file.next_file`), in one transaction; the annual
tables and views are never written (a new file gets the annual schema's tables, empty, so that the annual run
recognises it)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from sipas_pipeline.duckdb_file import migrate, next_file
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.paths import schemas_root

TABLES = ("fieldwork_status", "fieldwork_batches", "fieldwork_progress", "fieldwork_indicators", "fieldwork_sipas",
          "fieldwork_par_survey", "fieldwork_units")


def sql_file() -> Path:
    return schemas_root() / "duckdb" / "fieldwork.sql"


def batches_frame(ledger: list[dict[str, Any]]) -> pl.DataFrame:
    """The ledger as the fieldwork_batches table."""
    rows = [{"seq": e["seq"], "source": e["source"], "batch_id": e["batch_id"], "file": e["file"], "team": e.get("team"),
             "sha256": e["sha256"], "taken_at": datetime.fromisoformat(e["taken_at"]), "fieldwork_date": e.get("fieldwork_date"),
             "status": e["status"], "read": e["read"], "valid": e["valid"], "quarantined": e["quarantined"],
             "quarantine_rate": e["quarantined"] / e["read"] if e["read"] else None, "supersedes": e.get("supersedes"),
             "superseded_by": e.get("superseded_by"), "same_as": e.get("same_as"), "note": e.get("note"),
             "reasons": json.dumps(e.get("reasons", {}), ensure_ascii=False)} for e in ledger]
    schema = {"seq": pl.Int32, "source": pl.Utf8, "batch_id": pl.Utf8, "file": pl.Utf8, "team": pl.Utf8, "sha256": pl.Utf8,
              "taken_at": pl.Datetime("us", "UTC"), "fieldwork_date": pl.Utf8, "status": pl.Utf8, "read": pl.Int64,
              "valid": pl.Int64, "quarantined": pl.Int64, "quarantine_rate": pl.Float64, "supersedes": pl.Int32,
              "superseded_by": pl.Int32, "same_as": pl.Int32, "note": pl.Utf8, "reasons": pl.Utf8}
    return pl.DataFrame(rows, schema=schema).with_columns(pl.col("fieldwork_date").str.to_date())


def quarantine_frame(seq: int, batch_id: str, quarantine: pl.DataFrame) -> pl.DataFrame:
    """One batch's quarantined rows, one row per reason."""
    cols = {"form_id": pl.Utf8, "province_code": pl.Utf8}
    q = quarantine.with_columns(pl.lit(None, t).alias(c) for c, t in cols.items() if c not in quarantine.columns)
    return (q.select("source", "source_file", "source_row", "form_id", "province_code", "reasons").explode("reasons")
            .unnest("reasons").select(pl.lit(seq, pl.Int32).alias("seq"), pl.lit(batch_id).alias("batch_id"), "source",
                                      "source_file", "source_row", "form_id", "province_code", "column", "rule", "value",
                                      "message"))


def write(db: Path, m: Methodology, frames: dict[str, pl.DataFrame], quarantine: dict[int, pl.DataFrame]) -> None:
    """Replace the year's rows of every fieldwork table with `frames`, and the quarantine rows of the batches in
    `quarantine` (seq -> rows), in one transaction of the next file, swapped in."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    with next_file(Path(db), f"fieldwork-{m.year}-{stamp}", m.year) as (con, _):
        con.execute("BEGIN TRANSACTION")
        try:
            if not has_table(con, "fieldwork_status"):  # a new file, or one the fieldwork never wrote: the full check
                migrate(con, Path(db), f"fieldwork-{m.year}")
                con.execute(sql_file().read_text(encoding="utf-8"))
            for name, frame in frames.items():
                con.execute(f"DELETE FROM {name} WHERE year = $year", {"year": m.year})
                insert(con, name, frame, m.year)
            if quarantine:
                con.execute("DELETE FROM fieldwork_quarantine WHERE year = $year AND list_contains($seqs, seq)",
                            {"year": m.year, "seqs": sorted(quarantine)})
                for frame in quarantine.values():
                    insert(con, "fieldwork_quarantine", frame, m.year)
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchall()[0][0])


def insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, year: int) -> None:
    """Insert `frame` (with the year in front) by column name."""
    if frame.height == 0:
        return
    data = frame.with_columns(pl.lit(year, pl.Int32).alias("year")).to_arrow()  # noqa: F841 (read by DuckDB by name)
    cols = ", ".join(f'"{c}"' for c in ["year", *frame.columns])
    con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM data")
