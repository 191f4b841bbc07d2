"""The comparable series: 2024 re-estimated on the 2025 units (domain estimation).

Golden fixture, worked out by hand (not by re-running the code). Two 2024 provinces merge into one 2025 unit:
Hà Giang (02) and Tuyên Quang (08) -> Tuyên Quang (08). Each province is one stratum with two PSUs of two
respondents; Tuyên Quang's respondents weigh 3, Hà Giang's 1. Indicator S_P_ECO_CONTENT (satisfied = 4 or 5),
everyone answers:

    02 (weight 1): PSU A r1 yes, r2 yes | PSU B r3 no, r4 yes       -> 3 of 4 satisfied: 75 %
    08 (weight 3): PSU C r5 yes, r6 no  | PSU D r7 no, r8 no        -> 1 of 4 satisfied: 25 %
    PSU sums y (weighted satisfied) / a (weighted answers): A 2/2, B 1/2, C 3/6, D 0/6
    pooled: Y = 6, A = 16, R = 6/16 = 37.5 %  (the mean of the two percentages, 50 %, is not the merged population's)
    z_j = (y_j - R a_j) / A, in units of 1/16: A 1.25, B 0.25, C 0.75, D -2.25
    stratum 02: mean 0.75, deviations +-0.5 -> SS 0.5;  stratum 08: mean -0.75, deviations +-1.5 -> SS 4.5
    var = 2/1 x (0.5 + 4.5) / 256 = 10/256 = 0.0390625;  se = sqrt(10)/16 = 0.1976424 -> 19.76424 points
    df of an indicator = 4 PSUs - 2 strata = 2; of a composite (element, part, SIPAS): Satterthwaite over the
    strata's shares v_02 = 2 x 0.5/256 = 1/256 and v_08 = 2 x 4.5/256 = 9/256:
    (10/256)^2 / ((1/256)^2 / 1 + (9/256)^2 / 1) = 100 / 82 = 1.219512

No other indicator is answered, so element ECO, the policy part and SIPAS of unit 08 all equal 37.5 with that
se. Against a 2025 value of 50 (se 10, df 10): change 12.5, se sqrt(100 + 390.625) = 22.14977.
"""

from __future__ import annotations

import math

import polars as pl
import pytest

from sipas_pipeline import comparable
from sipas_pipeline.errors import MethodologyError
from sipas_pipeline.methodology import load_methodology

SE = 100 * math.sqrt(10) / 16


@pytest.fixture(scope="module")
def years():
    return load_methodology(2024), load_methodology(2025)


def _forms(m, codes=("02", "08")) -> pl.DataFrame:
    form = m.forms["citizen"].filter(pl.col("pii") == "no")
    people = [("02", "A", 5), ("02", "A", 4), ("02", "B", 2), ("02", "B", 5),
              ("08", "C", 5), ("08", "C", 3), ("08", "D", 1), ("08", "D", 2)]
    rows = []
    for i, (code, psu, answer) in enumerate(people):
        row = {f: None for f in form["field_id"]}
        row |= {"form_id": f"r{i + 1}", "province_code": code if code in codes else codes[-1], "stratum": f"S{code}",
                "psu": psu, "weight": 1.0 if code == "02" else 3.0, "s_p_eco_content": answer}
        rows.append(row)
    schema = {f: (pl.Float64 if f == "weight" else pl.Int64 if d == "int" else pl.Utf8)
              for f, d in form.select("field_id", "dtype").iter_rows()}
    return pl.DataFrame(rows, schema=schema)


def test_two_province_merge_golden(years):
    prev, m = years
    out = comparable.reestimate(prev, m, _forms(prev))
    assert sorted(out["province_code"].unique().to_list()) == ["08"]
    for measure in ("sipas", "sipas_policy"):
        r = out.filter(pl.col("measure") == measure).row(0, named=True)
        assert r["value"] == pytest.approx(37.5, rel=1e-12)
        assert r["se"] == pytest.approx(SE, rel=1e-12)
        assert r["df"] == pytest.approx(100 / 82, rel=1e-12)  # the composite's Satterthwaite df (< 2)
        assert r["n"] == 8 and r["basis"] == "reestimated"
    assert out.filter(pl.col("measure") == "sipas_service")["value"][0] is None


def _against_2024(years, measure: str, value: float, se: float, df: float) -> dict:
    """The series row of unit 08 for a 2025 estimate, against the golden re-estimated 2024."""
    prev, m = years
    before = comparable.reestimate(prev, m, _forms(prev))
    now = pl.DataFrame({"province_code": ["08"], "measure": [measure], "value": [value], "se": [se], "df": [df],
                        "rank_national": [1]})
    return comparable.series(now, before, 0.95).row(0, named=True)


def test_change_against_the_reestimated_year(years):
    r = _against_2024(years, "sipas", 50.0, 10.0, 10.0)
    assert r["previous_value"] == pytest.approx(37.5) and r["change_value"] == pytest.approx(12.5)
    assert r["change_se"] == pytest.approx(math.sqrt(100 + SE**2), rel=1e-12)
    assert r["change_ci_low"] < 0 < r["change_ci_high"] and r["change_significant"] is False
    assert r["change_basis"] == "reestimated"


def test_par_is_not_comparable(years):
    r = _against_2024(years, "par", 90.0, 0.5, 50.0)
    assert r["change_value"] is None and r["previous_value"] is None and r["change_basis"] == "not comparable"


def test_both_nations_are_published():
    units = pl.DataFrame({"province_code": ["08", "01"], "measure": ["sipas", "sipas"], "value": [80.0, 90.0],
                          "se": [3.0, 4.0]})
    provinces = pl.DataFrame({"province_code": ["02", "08", "01"], "measure": ["sipas"] * 3,
                              "value": [70.0, 80.0, 90.0], "se": [1.0, 2.0, 2.0]})
    out = comparable.nations(units, provinces)
    assert out.height == 2
    by = dict(zip(out["definition"], out["value"], strict=True))
    assert by["mean of 2 units (re-estimated)"] == pytest.approx(85.0)
    assert by["mean of 3 provinces (as that year computed it)"] == pytest.approx(80.0)
    assert out.filter(pl.col("definition").str.contains("units"))["se"][0] == pytest.approx(5.0 / 2)


def test_a_province_without_a_unit_is_an_error(years):
    prev, m = years
    forms = _forms(prev).with_columns(pl.lit("99").alias("province_code"))
    with pytest.raises(MethodologyError, match="99"):
        comparable.reestimate(prev, m, forms)


def test_mapping_covers_every_2024_province_and_2025_unit(years):
    prev, m = years
    mapping = m.unit_mapping
    assert sorted(mapping["from_code"]) == sorted(prev.provinces["province_code"])
    assert sorted(mapping["to_code"].unique()) == sorted(m.provinces["province_code"])


def test_pooling_refuses_weights_not_on_one_population_scale():
    """Before old provinces are pooled into a unit, each one's design weights must sum to its frame adults (within
    a factor, 5 by the methodology): a Horvitz-Thompson total 10% off, or a small year's half, passes; weights
    normalised within a province
    (summing to its forms) are refused in one line naming the province, before anything is estimated."""
    from sipas_pipeline.comparable import check_weight_scale
    from sipas_pipeline.errors import InputError
    from sipas_pipeline.methodology import load_methodology

    prev = load_methodology(2024)
    adults = prev.population_frame.group_by("province_code").agg(pl.col("population").sum()).sort("province_code")
    codes, pops = adults["province_code"].to_list()[:3], adults["population"].to_list()[:3]
    good = pl.DataFrame({"province_code": codes, "weight": [pops[0] * 1.1, pops[1] * 0.9, pops[2] * 0.5]})
    check_weight_scale(prev, good, 5.0)
    normalised = good.with_columns(pl.when(pl.col("province_code") == codes[1]).then(pl.lit(580.0))
                                   .otherwise(pl.col("weight")).alias("weight"))
    with pytest.raises(InputError) as err:
        check_weight_scale(prev, normalised.lazy(), 5.0)
    text = str(err.value)
    assert "\n" not in text and f"{codes[1]} (580 vs {pops[1]:,.0f})" in text and "in 1 province," in text
