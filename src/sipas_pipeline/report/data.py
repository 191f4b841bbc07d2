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
    # whole rows (SELECT *): a file published before a column existed (e.g. reliability) is still read
    "sipas": """SELECT * EXCLUDE (year, run_id) FROM current_sipas_indices WHERE year = $year
                ORDER BY unit_level, unit_code, level, node""",
    "ranks": """SELECT * EXCLUDE (run_id, year) FROM current_ranks WHERE year = $year ORDER BY measure, unit_code""",
    "par": """SELECT * EXCLUDE (run_id, year) FROM current_par_index WHERE year = $year ORDER BY unit_level, unit_code""",
    "par_points": """SELECT unit_level, unit_code, unit_name_vi, region_code, level, node, criterion_id, field_id, label_vi,
                            label_en, points, max_points, pct_of_max
                     FROM current_par_points WHERE year = $year AND level IN ('field', 'criterion')
                     ORDER BY unit_level, unit_code, level, node""",
    "indicators": """SELECT * EXCLUDE (year, run_id) FROM current_indicator_values WHERE year = $year
                     ORDER BY indicator_id, unit_level DESC, unit_code""",
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
    "methodology": "SELECT version, content_hash FROM methodology_versions WHERE year = $year",
    "published_runs": """SELECT run_id, finished_at, results_hash FROM runs WHERE year = $year AND status = 'published'
                         ORDER BY finished_at, run_id""",
    "corrections": """SELECT file, file_sha256, line, action, source, form_id, unit_code, unit_name_vi, field, old_value,
                             new_value, reason, requested_by, requested_at, "rows", outcome
                      FROM current_corrections WHERE year = $year ORDER BY file, line""",
    "changes": """SELECT previous_run_id, kind, unit_code, unit_name_vi, unit_name_en, item, value_a, value_b, change, rank_a,
                         rank_b, places
                  FROM current_changes WHERE year = $year AND kind IN ('rank', 'group') ORDER BY kind, item, unit_code""",
    "series": """SELECT unit_code, year, measure, value, se, df, basis FROM unit_series
                 WHERE measure IN ('sipas', 'par') AND year <= $year AND (unit_year = $year OR (unit_year < $year
                       AND basis = 'results' AND NOT EXISTS (SELECT 1 FROM unit_mappings m WHERE m.year = $year)))
                 ORDER BY unit_code, measure, year""",
}
# frames of tables a file written by an older sipas-pipeline may lack: read as empty when missing
OPTIONAL = {
    "contrasts": """SELECT unit_level, unit_code, unit_name_vi, unit_name_en, region_code, contrast, measure, value, se, df,
                           ci_low, ci_high, significant
                    FROM current_contrasts WHERE year = $year ORDER BY contrast, measure, unit_level, unit_code""",
}
EMPTY = {"contrasts": {"unit_level": pl.Utf8, "unit_code": pl.Utf8, "unit_name_vi": pl.Utf8, "unit_name_en": pl.Utf8,
                       "region_code": pl.Utf8, "contrast": pl.Utf8, "measure": pl.Utf8, "value": pl.Float64,
                       "se": pl.Float64, "df": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
                       "significant": pl.Boolean}}


@dataclass(frozen=True)
class ReportData:
    """The frames the report, the workbook and the CSVs are made from."""

    year: int
    db: Path
    frames: dict[str, pl.DataFrame]

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.frames[name]


def frame(con: duckdb.DuckDBPyConnection, sql: str, year: int) -> pl.DataFrame:
    """One query's rows as a frame (through Arrow: the column types are the database's)."""
    return pl.from_arrow(con.sql(sql, params={"year": year}).to_arrow_table())


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
        frames = {name: frame(con, sql, year) for name, sql in QUERIES.items()}
        for name, sql in OPTIONAL.items():
            try:
                frames[name] = frame(con, sql, year)
            except duckdb.CatalogException:
                frames[name] = pl.DataFrame(schema=EMPTY[name])
    except duckdb.Error as exc:
        raise database_error(db, exc, "read") from exc
    finally:
        con.close()
    if frames["run"].height == 0:
        raise InputError(f"{db}: no published run of {year} (see `sipas runs list`)")
    return ReportData(year, db, frames)
