"""Reliability flags (reliability.py) on hand-made rows, one rule at a time, at and beside each threshold of the
NCHS Data Presentation Standards for Proportions (n_eff 30, width 30 and 5 points, relative width 130%, df 8)."""

from __future__ import annotations

import polars as pl

from sipas_pipeline.reliability import rank_reliability, with_reliability

# value, ci_low, ci_high, df, n, n_eff -> flag, reason (worked out from the rules, not from the code)
ROWS = [
    ((50.0, 45.0, 55.0, 10.0, 100, 80.0), "reliable", None),
    ((50.0, 45.0, 55.0, 10.0, 100, 30.0), "reliable", None),  # n_eff exactly 30: not below
    ((50.0, 45.0, 55.0, 10.0, 100, 29.9), "unreliable", "effective n 29.9 < 30"),
    ((50.0, 45.0, 55.0, 10.0, 25, 80.0), "unreliable", "effective n 25.0 < 30"),  # n_eff above n: n counts
    ((50.0, 35.0, 65.0, 10.0, 100, 80.0), "unreliable", "interval width 30.0 >= 30 points"),
    ((50.0, 35.1, 65.0, 10.0, 100, 80.0), "reliable", None),  # 29.9 wide, 60% of the value
    ((3.0, 0.5, 9.0, 10.0, 400, 300.0), "unreliable", "relative interval width 283% > 130%"),
    ((3.0, 0.4, 4.4, 10.0, 400, 300.0), "reliable", None),  # 4 points wide: no relative check
    ((10.0, 4.0, 17.0, 10.0, 400, 300.0), "reliable", None),  # 13 points, exactly 130% of 10: not above
    ((50.0, 45.0, 55.0, 7.9, 100, 80.0), "review", "df 7.9 < 8"),
    ((50.0, 45.0, 55.0, 8.0, 100, 80.0), "reliable", None),
    ((100.0, 94.0, 100.0, 9.0, 60, 60.0), "review", "value 100%: no variation observed"),
    ((3.0, 0.5, 9.0, 2.8, 20, 15.0), "unreliable",
     "effective n 15.0 < 30; relative interval width 283% > 130%; df 2.8 < 8"),
]


def frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame([r[0] for r in rows], schema=["value", "ci_low", "ci_high", "df", "n", "n_eff"], orient="row")


def test_each_rule_of_the_standards_for_proportions():
    out = with_reliability(frame(ROWS), proportion=True)
    assert out["reliability"].to_list() == [r[1] for r in ROWS]
    assert out["reliability_reason"].to_list() == [r[2] for r in ROWS]


def test_an_index_has_no_relative_width_and_counts_respondents():
    """Indices: the 283% relative width and the value of 100 do not count; n (respondents) does, n_eff does not."""
    rows = [((3.0, 0.5, 9.0, 10.0, 400, 300.0), "reliable", None),
            ((100.0, 94.0, 100.0, 9.0, 60, 60.0), "reliable", None),
            ((50.0, 45.0, 55.0, 10.0, 100, 5.0), "reliable", None),
            ((50.0, 45.0, 55.0, 10.0, 25, 80.0), "unreliable", "respondents 25.0 < 30"),
            ((60.0, 40.0, 80.0, 2.0, 500, 80.0), "unreliable", "interval width 40.0 >= 30 points; df 2.0 < 8")]
    out = with_reliability(frame(rows), proportion=False)
    assert out["reliability"].to_list() == [r[1] for r in rows]
    assert out["reliability_reason"].to_list() == [r[2] for r in rows]


def test_no_value_no_flag_and_ranks_take_their_values_flag():
    out = with_reliability(pl.DataFrame({"par_index": [None, 70.0], "ci_low": [None, 60.0], "ci_high": [None, 80.0],
                                         "df": [None, 3.5]}), proportion=False, value="par_index")
    assert out["reliability"].to_list() == [None, "review"] and out["reliability_reason"].to_list() == [None, "df 3.5 < 8"]
    sipas = pl.DataFrame({"unit_level": ["province", "province", "province", "region"], "unit_code": ["01", "01", "01", "R"],
                          "level": ["sipas", "part", "element", "sipas"], "node": ["SIPAS", "policy", "ECO", "SIPAS"],
                          "reliability": ["review", "reliable", "unreliable", "reliable"],
                          "reliability_reason": ["df 3 < 8", None, "x", None]})
    totals = out.with_columns(province_code=pl.Series(["02", "01"]))
    ranked = pl.DataFrame({"province_code": ["01", "01", "01", "02"], "measure": ["sipas", "sipas_policy", "par", "par"]})
    got = rank_reliability(ranked, sipas, totals).sort("measure", "province_code")
    assert got.select("measure", "province_code", "reliability").rows() == [
        ("par", "01", "review"), ("par", "02", None), ("sipas", "01", "review"), ("sipas_policy", "01", "reliable")]
