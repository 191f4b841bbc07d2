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
    # one row per source, kind and resolved province (unresolved provinces in one row of their own): every form once
    "quarantine": """SELECT f.source,
                            CASE WHEN list_contains(f.rules, 'withdrawn') THEN 'rút phiếu (withdrawn)'
                                 WHEN list_contains(f.rules, 'not_kept') THEN 'bản không giữ (not kept)'
                                 ELSE 'không hợp lệ (validation)' END AS kind,
                            u.unit_code,
                            coalesce(u.name_vi, '(không xác định được tỉnh / province not resolved)') AS unit_name_vi,
                            count(*) AS forms, sum(f.reasons) AS reasons,
                            array_to_string(list_sort(list_distinct(flatten(list(f.rules)))), ', ') AS rules
                     FROM current_quarantined_forms f
                     LEFT JOIN units u ON u.year = f.year AND u.unit_level = 'province' AND u.unit_code = f.unit_code
                     WHERE f.year = $year
                     GROUP BY ALL ORDER BY f.source, kind DESC, u.unit_code NULLS LAST""",
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
