"""The uncertainty columns in a real DuckDB file, and the change against last year's own results read back from it."""

from __future__ import annotations

import polars as pl
import pytest
from test_publish import publish_sample

from sipas_pipeline.publish import previous_results
from sipas_pipeline.publish import read_query as query
from sipas_pipeline.ranking import change
from sipas_pipeline.stages import read_results

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def db(tmp_path_factory, methodology, sample_work):
    path = tmp_path_factory.mktemp("uncertainty") / "r.duckdb"
    publish_sample(path, methodology, sample_work, "run-u")
    return path


def test_every_estimate_row_has_its_uncertainty(db):
    for view in ("current_indicator_values", "current_sipas_indices"):
        rows = query(db, f"""SELECT count(*), count(se), count(ci_low), count(df), count(small_sample),
                                    count(*) FILTER (WHERE ci_low > value OR ci_high < value OR ci_low < 0 OR ci_high > 100)
                             FROM {view} WHERE value IS NOT NULL""")
        total, se, ci, df, small, outside = rows[0]
        assert total > 0 and se == ci == df == small == total and outside == 0, view
    kinds = dict(query(db, "SELECT kind, count(se) FROM current_par_points WHERE level = 'subcriterion' "
                                "AND unit_level = 'province' GROUP BY 1"))
    assert kinds["appraisal"] == 0 and kinds["survey_official"] > 0 and kinds["survey_citizen"] > 0
    par = query(db, "SELECT count(*), count(se), min(ci_high - ci_low) FROM current_par_index WHERE unit_level = 'province'")[0]
    assert par[0] == par[1] == 63 and par[2] > 0
    ranks = query(db, """SELECT count(*) FILTER (WHERE rank_low <= rank_national AND rank_national <= rank_high),
                                count(*), count(differs_from_above), min(p_top5), max(p_top5) FROM current_ranks""")[0]
    # a rank confidence set always holds the estimated rank (fewer provinces are surely above than estimated above)
    assert ranks[0] == ranks[1] == 4 * 63 and ranks[2] == 4 * 62 and ranks[3] == 0.0 and ranks[4] > 0.5
    sets = query(db, """SELECT count(*) FILTER (WHERE rank_simul_low <= rank_low AND rank_high <= rank_simul_high),
                               count(*) FILTER (WHERE in_top5_set), count(*) FILTER (WHERE in_top5_set AND rank_national <= 5)
                        FROM current_ranks WHERE measure = 'sipas'""")[0]
    assert sets[0] == 63 and sets[1] >= 5 and sets[2] == 5


def test_every_estimate_carries_its_reliability_flag_and_reason(db):
    """Every value has a flag; reliable exactly when no reason; with df < 8 (every province: two strata of a few
    communes) never reliable; the views show it."""
    for view, value in (("current_indicator_values", "value"), ("current_sipas_indices", "value"),
                        ("current_par_index", "par_index"), ("current_ranks", "value")):
        province = "unit_level = 'province'" if view != "current_ranks" else "TRUE"
        row = query(db, f"""SELECT count(*), count(reliability),
                                   count(*) FILTER (WHERE (reliability = 'reliable') = (reliability_reason IS NOT NULL)),
                                   count(*) FILTER (WHERE df < 8 AND reliability = 'reliable'), count(*) FILTER (WHERE df < 8)
                            FROM {view} WHERE {value} IS NOT NULL AND {province}""")[0]
        assert row[0] > 0 and row[1] == row[0] and row[2] == 0 and row[3] == 0 and row[4] > 0, (view, row)


def test_new_columns_are_commented(db):
    rows = query(db, """SELECT table_name, column_name FROM duckdb_columns() WHERE comment IS NULL AND NOT internal
                        AND column_name IN ('se', 'ci_low', 'ci_high', 'df', 'deff', 'n_eff', 'small_sample', 'rank_low',
                        'rank_high', 'p_top5', 'p_bottom5', 'differs_from_above', 'change_se', 'change_basis', 'rank_simul_low',
                        'rank_simul_high', 'in_top5_set', 'in_bottom5_set', 'reliability', 'reliability_reason')""")
    assert rows == []


def test_change_against_last_years_own_results(db, sample_work):
    """The published 2024 run read back as 'last year' of 2025: the same figures again change by 0 with
    se = sqrt(2) x se, an interval around 0, not significant; basis 'results'."""
    previous = previous_results(db, 2025)
    assert previous is not None and previous.height == 4 * 63 and previous["se"].null_count() == 0
    assert previous_results(db, 2024) is None  # no 2023 results in the file
    current = read_results(sample_work["work"])["ranks"].drop(
        "change_value", "change_se", "change_ci_low", "change_ci_high", "change_significant", "change_places", "change_basis")
    out = change(current, previous)
    assert (out["change_basis"] == "results").all() and (out["change_value"].abs() < 1e-12).all()
    assert ((out["change_se"] - 2 ** 0.5 * out["se"]).abs() < 1e-12).all()
    assert (out["change_ci_low"] < 0).all() and (out["change_ci_high"] > 0).all()
    assert not out["change_significant"].any() and (out["change_places"] == 0).all()


def test_change_significance_by_hand(methodology):
    """Value 80 (se 3, df 4) last year 70 (se 4, df 6): change 10, se 5; Welch df = 25^2 / (81/4 + 256/6) = 9.93;
    t(0.975, 9.93) = 2.2302 -> [-1.15, 21.15]: not significant. Against a published 70 (no se): no significance."""
    cur = pl.DataFrame({"province_code": ["01"], "measure": ["sipas"], "value": [80.0], "se": [3.0], "df": [4],
                        "rank_national": [1]})
    prev = pl.DataFrame({"province_code": ["01"], "measure": ["sipas"], "value": [70.0], "se": [4.0], "df": [6],
                         "rank_national": [3], "basis": ["results"]})
    r = change(cur, prev).row(0, named=True)
    assert r["change_value"] == 10.0 and r["change_se"] == 5.0 and r["change_places"] == 2
    assert r["change_ci_low"] == pytest.approx(10 - 2.2302 * 5, abs=1e-3) and r["change_significant"] is False
    pub = change(cur, prev.drop("se", "df").with_columns(pl.lit("published").alias("basis"))).row(0, named=True)
    assert pub["change_value"] == 10.0 and pub["change_se"] is None and pub["change_significant"] is None
    assert pub["change_basis"] == "published"
