"""What the release shows, read once from the DuckDB file's analyst views (read-only) into Polars frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from sipas_pipeline.duckdb_file import connect, database_error
from sipas_pipeline.errors import InputError

QUERIES = {
    "run": "SELECT * EXCLUDE (inputs, accounting, unreadable_files, ignored_files, timings) FROM current_runs WHERE year = $year",
    "inputs": "SELECT i.* FROM (SELECT unnest(inputs) AS i FROM current_runs WHERE year = $year)",
    "accounting": "SELECT a.* FROM (SELECT unnest(accounting) AS a FROM current_runs WHERE year = $year)",
    "sipas": """SELECT unit_level, unit_code, unit_name_vi, unit_name_en, unit_sort_key, region_code, level, node, label_vi,
                       label_en, value, se, ci_low, ci_high, n, small_sample, incomplete_reason
                FROM current_sipas_indices WHERE year = $year ORDER BY unit_level, unit_code, level, node""",
    "ranks": """SELECT * EXCLUDE (run_id, year) FROM current_ranks WHERE year = $year ORDER BY measure, unit_code""",
    "par": """SELECT * EXCLUDE (run_id, year) FROM current_par_index WHERE year = $year ORDER BY unit_level, unit_code""",
    "par_points": """SELECT unit_level, unit_code, unit_name_vi, region_code, level, node, criterion_id, field_id, label_vi,
                            label_en, points, max_points, pct_of_max
                     FROM current_par_points WHERE year = $year AND level IN ('field', 'criterion')
                     ORDER BY unit_level, unit_code, level, node""",
    "indicators": """SELECT unit_code, unit_name_vi, unit_sort_key, indicator_id, type, label_vi, label_en, value
                     FROM current_indicator_values WHERE year = $year AND unit_level = 'province'
                     ORDER BY indicator_id, unit_code""",
    "quarantine": """SELECT source, unit_code, unit_name_vi, count(*) AS forms, sum(reasons) AS reasons,
                            string_agg(DISTINCT r, ', ' ORDER BY r) AS rules
                     FROM (SELECT *, unnest(rules) AS r FROM current_quarantined_forms WHERE year = $year)
                     GROUP BY ALL ORDER BY source, unit_code NULLS LAST""",
}


@dataclass(frozen=True)
class ReportData:
    """The frames the report, the workbook and the CSVs are made from."""

    year: int
    db: Path
    frames: dict[str, pl.DataFrame]

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.frames[name]


def read(db: Path, year: int) -> ReportData:
    """Every frame of the release for `year` from `db` (read-only). InputError when the file has no
    published run of that year; DatabaseError (one line) when the file cannot be read."""
    db = Path(db)
    if not db.is_file():
        raise InputError(f"{db}: no such DuckDB file (run `sipas run` first)")
    try:
        con = connect(db, read_only=True)
    except duckdb.Error as exc:
        raise database_error(db, exc, "read") from exc
    try:
        frames = {}
        for name, sql in QUERIES.items():
            cur = con.execute(sql, {"year": year})
            frames[name] = pl.DataFrame(cur.fetchall(), schema=[d[0] for d in cur.description], orient="row",
                                        infer_schema_length=None)
    except duckdb.Error as exc:
        raise database_error(db, exc, "read") from exc
    finally:
        con.close()
    if frames["run"].height == 0:
        raise InputError(f"{db}: no published run of {year} (see `sipas runs list`)")
    return ReportData(year, db, frames)
