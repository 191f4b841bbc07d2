"""Analyst views without joins (issue #14), on the published sample year; pure sort-key tests."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import polars as pl
import pytest

from sipas_pipeline.collation import sort_key_vi
from sipas_pipeline.publish import read_query as query
from sipas_pipeline.stages import read_quarantine


def test_vietnamese_sort_key_orders_letters_before_tones():
    names = ["Bình Định", "Bạc Liêu", "Đà Nẵng", "Dắk Lắk", "Hà Giang", "Hà", "Ha", "An Giang", "Ấn"]
    assert sorted(names, key=sort_key_vi) == ["An Giang", "Ấn", "Bạc Liêu", "Bình Định", "Dắk Lắk", "Đà Nẵng", "Ha", "Hà",
                                              "Hà Giang"]
    assert sorted(names) != sorted(names, key=sort_key_vi)  # byte order differs (the reason for the key)


@pytest.mark.integration
def test_one_key_names_null_for_not_applicable(sample_db):
    cols = query(sample_db, """SELECT c.table_name, c.column_name FROM duckdb_columns() c JOIN duckdb_views() v
                               ON v.view_name = c.table_name WHERE NOT v.internal AND v.view_name LIKE 'current_%'""")
    names = {c for _, c in cols}
    assert "province_code" not in names and "group" not in names and "name_vi" not in names
    for view in ("current_indicator_values", "current_sipas_indices", "current_par_points", "current_par_index",
                 "current_ranks", "current_quarantine", "current_quarantined_forms", "current_corrections"):
        assert {"unit_code", "unit_name_vi", "unit_name_en"} <= {c for t, c in cols if t == view}, view
    assert query(sample_db, "SELECT count(*) FROM current_indicator_values WHERE element = '' OR part = ''") == [(0,)]
    assessment = query(sample_db, "SELECT count(*) FROM current_indicator_values WHERE type = 'assessment' AND element IS NULL")
    assert assessment[0][0] > 0
    no_comment = query(sample_db, """SELECT c.table_name, c.column_name FROM duckdb_columns() c JOIN duckdb_views() v
                                     ON v.view_name = c.table_name WHERE NOT v.internal AND c.comment IS NULL""")
    assert no_comment == []


@pytest.mark.integration
def test_par_region_and_nation_rows(sample_db):
    rows = query(sample_db, """SELECT unit_level, count(*), sum(provinces) FROM current_par_index GROUP BY 1 ORDER BY 1""")
    assert rows == [("nation", 1, 63), ("province", 63, 63), ("region", 6, 63)]
    # the nation's mean equals the mean of the provinces; per cent of maximum = 100 points / max
    (mean,), = query(sample_db, "SELECT avg(par_index) FROM par_totals")
    (nation,), = query(sample_db, "SELECT par_index FROM current_par_index WHERE unit_level = 'nation'")
    assert nation == pytest.approx(mean)
    bad = query(sample_db, """SELECT count(*) FROM current_par_points
                              WHERE abs(pct_of_max - 100 * points / max_points) > 1e-3 OR pct_of_max > 100""")
    assert bad == [(0,)]
    (fields,), = query(sample_db, "SELECT count(*) FROM current_par_points WHERE unit_level = 'region' AND level = 'field'")
    assert fields == 6 * 8


@pytest.mark.integration
def test_quarantined_forms_one_row_per_form(sample_db, sample_work):
    q = sample_work["checked"]["sources"]
    forms = dict(query(sample_db, "SELECT source, count(*) FROM current_quarantined_forms GROUP BY 1"))
    assert forms == {s: c["quarantined"] for s, c in q.items() if c["quarantined"]}
    # each form's reasons and rules are those validation listed for its row (the quarantine Parquet files)
    listed = read_quarantine(sample_work["work"]).select(
        "source_file", "source_row", pl.col("reasons").list.len().alias("n"),
        pl.col("reasons").list.eval(pl.element().struct.field("rule")).list.unique().list.sort().alias("rules"))
    assert listed["n"].max() > 1  # some rows break two rules
    published = query(sample_db, "SELECT source_file, source_row, reasons, rules FROM current_quarantined_forms")
    assert sorted(published) == sorted((f, r, n, list(rules)) for f, r, n, rules in listed.iter_rows())
    named = query(sample_db, """SELECT count(*) FILTER (unit_name_vi IS NULL) FROM current_quarantined_forms
                                WHERE unit_code IN (SELECT unit_code FROM units WHERE unit_level = 'province')""")
    assert named == [(0,)]  # every known province is named (an unknown code keeps its raw value, without a name)


@pytest.mark.integration
def test_sort_key_in_the_database(sample_db):
    names = [n for (n,) in query(sample_db, "SELECT unit_name_vi FROM current_ranks WHERE measure = 'sipas' "
                                            "ORDER BY unit_sort_key")]
    assert names == sorted(names, key=sort_key_vi) and names.index("Bạc Liêu") < names.index("Bình Định")


@pytest.mark.integration
def test_current_changes_survive_an_identical_rerun(sample_db, methodology, sample_work, tmp_path):
    """A run with different results, then an identical re-run: current_changes still shows the real change."""
    from sipas_pipeline.publish import publish
    from sipas_pipeline.stages import read_quarantine, read_results

    db = tmp_path / "sipas.duckdb"
    shutil.copyfile(sample_db, db)
    tables = read_results(sample_work["work"])
    hit = (pl.col("province_code") == "01") & (pl.col("measure") == "par")
    moved = tables | {"ranks": tables["ranks"].with_columns(pl.when(hit).then(pl.col("value") + 1).otherwise(pl.col("value"))
                                                            .alias("value"))}
    quarantine = read_quarantine(sample_work["work"])
    for run_id in ("2024-b", "2024-c"):
        run = {"run_id": run_id, "started_at": datetime.now(UTC), "parameters": {}, "code_version": "test", "timings": []}
        publish(db, methodology, run, moved, quarantine)
    rows = query(db, "SELECT previous_run_id, run_id, kind, unit_code, unit_name_vi, item, round(change, 6) FROM current_changes")
    assert rows == [("2024-sample", "2024-c", "rank", "01", "Hà Nội", "par", 1.0)]
    assert query(db, "SELECT count(*) FROM run_diff('2024-b', '2024-c')") == [(0,)]
