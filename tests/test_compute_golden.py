"""Golden test: a hand-made dataset of three provinces whose results are worked out by hand below."""

from __future__ import annotations

import polars as pl
import pytest

from sipas_pipeline.indicators import estimate_indicators, roll_up, sipas_tree
from sipas_pipeline.par_index import ComputeError, par_points, par_totals
from sipas_pipeline.ranking import change, ranks

# Province 01 (Hà Nội, DBSH): 4 forms, weights 1, 2, 1, 3.
#   every policy satisfaction question: 5, 3, 9 (don't know), 4 -> satisfied weight 1 + 3 = 4 of 1 + 2 + 3 = 6
#   service satisfaction (not feedback): 4, 4, 2, 1 -> 1 + 2 = 3 of 7;  feedback filed: yes, yes, no, no
#   feedback satisfaction (asked of rows 1-2 only): 5, 2 -> 1 of 3;  overall: 5, 5, 5, 1 -> 4 of 7
#   A_P_ECO_KNOW: 1, 2, 1, 9 -> 2 of 4;  expectations "1 3", "2", "1", "3 1": option 1 -> 1 + 1 + 3 = 5 of 7
# Provinces 02 (Hà Giang) and 04 (Cao Bằng), both TDMNPB: 3 forms each, weights 1.
#   policy 4, 4, 4 -> 100;  service 5, 1, 9 -> 1 of 2 = 50;  feedback filed 1, 2, 2 and feedback 4 -> 100
W01 = [1.0, 2.0, 1.0, 3.0]
POLICY_01 = 100 * 4 / 6
SERVICE_EL_01 = 100 * 3 / 7
FBK_01 = 100 * 1 / 3
SERVICE_01 = (4 * SERVICE_EL_01 + FBK_01) / 5  # = 100 * 43/105
SIPAS_01 = (POLICY_01 + SERVICE_01) / 2  # = 100 * 113/210
SIPAS_02 = (100 + (4 * 50 + 100) / 5) / 2  # = 80


def _citizens(m) -> pl.DataFrame:
    form = m.forms["citizen"].filter(pl.col("pii") == "no")
    rows = []
    plan = {"01": (W01, [5, 3, 9, 4], [4, 4, 2, 1], [1, 1, 2, 2], [5, 2, None, None], [5, 5, 5, 1],
                   ["1 3", "2", "1", "3 1"], [1, 2, 1, 9]),
            "02": ([1.0] * 3, [4, 4, 4], [5, 1, 9], [1, 2, 2], [4, None, None], [5, 5, 5], ["2", "2", "2"], [1, 1, 1]),
            "04": ([1.0] * 3, [4, 4, 4], [5, 1, 9], [1, 2, 2], [4, None, None], [5, 5, 5], ["2", "2", "2"], [1, 1, 1])}
    for code, (w, pol, srv, fbf, fbk, overall, expect, know) in plan.items():
        for i in range(len(w)):
            row = {f: None for f in form["field_id"]}
            row |= {"form_id": f"{code}-{i}", "province_code": code, "weight": w[i], "svc_used": 1,
                    "stratum": f"{code}-U", "psu": f"{code}-{i % 2}",
                    "a_s_fbfiled": fbf[i], "s_s_overall": overall[i], "expect": expect[i], "a_p_eco_know": know[i]}
            for f in form["field_id"]:
                if f.startswith("s_p_"):
                    row[f] = pol[i]
                elif f.startswith("s_s_fbk_"):
                    row[f] = fbk[i]
                elif f.startswith("s_s_") and f != "s_s_overall":
                    row[f] = srv[i]
            rows.append(row)
    schema = {f: (pl.Float64 if f == "weight" else pl.Int64 if d == "int" else pl.Utf8)
              for f, d in form.select("field_id", "dtype").iter_rows()}
    return pl.DataFrame(rows, schema=schema)


def _officials(m) -> pl.DataFrame:
    items = m.forms["official"].filter(pl.col("refs").str.starts_with("par:"))["field_id"].to_list()
    # 01: two officials rate every item 5 and 3 (mean 4); 02 and 04: everyone rates 3 (mean 3)
    rows = [{"province_code": "01", **{i: 5 for i in items}}, {"province_code": "01", **{i: 3 for i in items}},
            {"province_code": "02", **{i: 3 for i in items}}, {"province_code": "04", **{i: 3 for i in items}}]
    return pl.DataFrame(rows)


def _appraisal(m, share=0.5) -> pl.DataFrame:
    subs = m.par_subcriteria.filter(pl.col("kind") == "appraisal")
    return pl.concat([subs.select(pl.lit(code).alias("province_code"), "subcriterion_id",
                                  (pl.col("max_points") * share).alias("appraised_points"),
                                  pl.col("max_points").alias("self_points")) for code in ("01", "02", "04")])


@pytest.fixture(scope="module")
def results(methodology):
    est = estimate_indicators(methodology, _citizens(methodology))
    return est, sipas_tree(methodology, est)


def _v(frame, **keys) -> float:
    sel = frame
    for k, v in keys.items():
        sel = sel.filter(pl.col(k) == v)
    assert sel.height == 1, keys
    return sel["value"][0]


def test_indicators(results):
    ind = results[0].values
    row = ind.filter((pl.col("province_code") == "01") & (pl.col("indicator_id") == "S_P_ECO_CONTENT")).row(0, named=True)
    assert row["numerator"] == 4 and row["denominator"] == 6 and row["n"] == 3
    assert row["value"] == pytest.approx(200 / 3)
    assert _v(ind, province_code="01", indicator_id="S_S_ACC_LOCATION") == pytest.approx(300 / 7)
    assert _v(ind, province_code="01", indicator_id="S_S_FBK_EASY") == pytest.approx(100 / 3)
    assert _v(ind, province_code="01", indicator_id="S_S_OVERALL") == pytest.approx(400 / 7)
    assert _v(ind, province_code="01", indicator_id="A_P_ECO_KNOW") == pytest.approx(50)
    assert _v(ind, province_code="01", indicator_id="E_01") == pytest.approx(500 / 7)
    assert _v(ind, province_code="02", indicator_id="S_S_PRO_TIME") == pytest.approx(50)
    assert _v(ind, province_code="02", indicator_id="E_02") == pytest.approx(100)
    assert ind.height == 3 * 103


def test_tree(results):
    _, tree = results
    assert _v(tree, province_code="01", node="ECO") == pytest.approx(200 / 3)
    assert _v(tree, province_code="01", node="policy") == pytest.approx(200 / 3)
    assert _v(tree, province_code="01", node="FBK") == pytest.approx(100 / 3)
    assert _v(tree, province_code="01", node="service") == pytest.approx(100 * 43 / 105)
    assert _v(tree, province_code="01", node="SIPAS") == pytest.approx(100 * 113 / 210)
    assert _v(tree, province_code="02", node="SIPAS") == pytest.approx(80)


def test_region_and_nation_are_means_of_provinces(methodology, results):
    _, tree = results
    rolled = roll_up(methodology, tree, ["level", "node"], [])
    sipas = rolled.filter(pl.col("node") == "SIPAS")
    assert _v(sipas, unit_code="VN") == pytest.approx((100 * 113 / 210 + 80 + 80) / 3)
    assert _v(sipas, unit_code="TDMNPB") == pytest.approx(80)
    assert _v(sipas, unit_code="DBSH") == pytest.approx(100 * 113 / 210)


def test_ranks_share_ties(methodology, results):
    _, tree = results
    values = tree.filter(pl.col("node") == "SIPAS").select("province_code", pl.lit("sipas").alias("measure"), "value",
                                                           pl.col("var").sqrt().alias("se"), "df")
    r = ranks(methodology, values)
    got = dict(zip(r["province_code"], r["rank_national"], strict=True))
    assert got == {"02": 1, "04": 1, "01": 3}
    assert dict(zip(r["province_code"], r["rank_regional"], strict=True)) == {"02": 1, "04": 1, "01": 1}
    prev = pl.DataFrame({"province_code": ["01", "02"], "measure": ["sipas", "sipas"], "value": [50.0, 81.0],
                         "rank_national": [2, 1]})
    ch = change(r, prev)
    c = {row["province_code"]: (row["change_value"], row["change_places"]) for row in ch.iter_rows(named=True)}
    assert c["01"] == (pytest.approx(100 * 113 / 210 - 50), -1)
    assert c["02"] == (pytest.approx(-1.0), 0)
    assert c["04"] == (None, None)  # missing last year: null change, not an error


def test_par(methodology, results):
    est, _ = results
    pts, survey = par_points(methodology, _officials(methodology), _appraisal(methodology), est)
    levels, totals = par_totals(methodology, pts, survey)
    t = {r["province_code"]: r for r in totals.iter_rows(named=True)}
    # 01: appraisal 68/2 = 34; officials mean 4 -> 24 x 3/4 = 18; citizens 2 x (policy + service + overall + ADM)/100
    citizens_01 = 2 * (2 / 3) + 2 * (43 / 105) + 2 * (4 / 7) + 2 * (2 / 3)
    assert t["01"]["appraisal_points"] == pytest.approx(34)
    assert t["01"]["par_index"] == pytest.approx(34 + 18 + citizens_01)
    assert t["01"]["group"] == "E"  # 56.63 < 60
    # 02: 34 + 24 x 2/4 = 12 + 2 x (1 + 0.6 + 1 + 1) = 7.2 -> 53.2
    assert t["02"]["par_index"] == pytest.approx(53.2)
    field1 = levels.filter((pl.col("province_code") == "02") & (pl.col("level") == "field") & (pl.col("node") == "1"))
    assert field1["points"][0] == pytest.approx(6.5 / 2 + 3.0 / 2)
    assert field1["max_points"][0] == pytest.approx(9.5)


def test_groups_follow_bounds(methodology, results):
    est, _ = results
    pts, survey = par_points(methodology, _officials(methodology), _appraisal(methodology, share=1.0), est)
    _, totals = par_totals(methodology, pts, survey)
    t = dict(zip(totals["province_code"], totals["group"], strict=True))
    # 02 now: 68 + 12 + 7.2 = 87.2 -> B
    assert totals.filter(pl.col("province_code") == "02")["par_index"][0] == pytest.approx(87.2)
    assert t["02"] == "B"


def test_group_bounds_are_lower_inclusive(methodology):
    """The 2024 groups: A from 90, B from 80, C from 70, D from 60, E from 0, each lower bound inclusive (checked
    top down): exactly 90 is A and 89.999 is B, and so on down; no value, no group."""
    from sipas_pipeline.par_index import group_of

    values = pl.DataFrame({"v": [100.0, 90.0, 89.999, 80.0, 79.999, 70.0, 69.999, 60.0, 59.999, 0.0, None]})
    got = values.select(group_of(methodology, pl.col("v")).alias("group"))["group"].to_list()
    assert got == ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E", None]


def test_bad_appraisal_names_province_and_subcriterion(methodology, results):
    est, _ = results
    bad = _appraisal(methodology).with_columns(
        pl.when((pl.col("province_code") == "04") & (pl.col("subcriterion_id") == "1.1.1")).then(9.0)
        .otherwise(pl.col("appraised_points")).alias("appraised_points"))
    with pytest.raises(ComputeError, match=r"province 04, sub-criterion 1.1.1: appraised 9 outside 0..1.25"):
        par_points(methodology, _officials(methodology), bad, est)
    missing = _appraisal(methodology).filter(~((pl.col("province_code") == "02") & (pl.col("subcriterion_id") == "2.1.1")))
    with pytest.raises(ComputeError, match=r"province 02, sub-criterion 2.1.1: no appraised points"):
        par_points(methodology, _officials(methodology), missing, est)


def test_element_without_answers_is_null_not_nan(methodology):
    """A province where nobody answered an element's questions: the element has no value (null, not
    NaN), and its part is the mean of the elements that have one."""
    eco = [c for c in methodology.forms["citizen"]["field_id"] if c.startswith(("s_p_eco_", "a_p_eco_"))]
    citizens = _citizens(methodology).with_columns(pl.lit(None, pl.Int64).alias(c) for c in eco)
    tree = sipas_tree(methodology, estimate_indicators(methodology, citizens))
    row = tree.filter((pl.col("province_code") == "02") & (pl.col("node") == "ECO")).row(0, named=True)
    assert row["value"] is None and row["var"] is None
    assert tree.filter((pl.col("province_code") == "02") & (pl.col("node") == "policy"))["value"].item() == pytest.approx(100.0)
    assert tree["value"].is_nan().sum() == 0
