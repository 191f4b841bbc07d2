"""Golden fixture for the design-based uncertainty, worked out by hand below (not by re-running the code).

One province (01), two strata, three PSUs each, two respondents per PSU (a dozen):

    stratum H1 (weight 1): PSUs A (r1, r2), B (r3, r4), C (r5, r6)
    stratum H2 (weight 2): PSUs D (r7, r8), E (r9, r10), F (r11, r12)

Indicator 1 = S_P_ECO_CONTENT (satisfied = answer 4 or 5), everyone answers:
    satisfied: r1 r2 | r4 | - || r7 r8 | r9 | r11 r12
    PSU sums y (weighted satisfied), a (weighted answers): A 2/2, B 1/2, C 0/2, D 4/4, E 2/4, F 4/4
    Y = 3 + 2 x 5 = 13, A = 6 + 12 = 18, R1 = 13/18 (72.22 %)
    z_j = (y_j - R a_j) / A, in units of 1/324: A 10, B -8, C -26, D 20, E -16, F 20 (sum 0)
    H1: mean -8, deviations 18, 0, -18 -> SS 648;  H2: mean 8, deviations 12, -24, 12 -> SS 864
    var1 = 3/2 (648 + 864) / 324^2 = 2268 / 104976 = 7/324 = 0.0216049;  se1 = sqrt(7)/18 = 0.146986

Indicator 2 = S_P_ECO_IMPL, with "don't know" (9) for r4, r10 (out of the denominator):
    satisfied: r1 r2 | r3 | - || r7 r8 | - | r11;  not satisfied: r5 r6, r9, r12
    PSU sums y/a: A 2/2, B 1/1, C 0/2, D 4/4, E 0/2, F 2/4;  Y = 9, A = 15, R2 = 3/5 (60 %)
    z_j x 15: A 0.8, B 0.4, C -1.2, D 1.6, E -1.2, F -0.4 (both strata have mean 0)
    SS: H1 0.64 + 0.16 + 1.44 = 2.24;  H2 2.56 + 1.44 + 0.16 = 4.16
    var2 = 3/2 x 6.4 / 225 = 16/375 = 0.0426667
    covariance: H1 (18 x 0.8 + 0 x 0.4 + (-18)(-1.2)) = 36;  H2 (12 x 1.6 + (-24)(-1.2) + 12 (-0.4)) = 43.2
    cov = 3/2 x 79.2 / (324 x 15) = 11/450 = 0.0244444

S_P_ECO_RESULT is never answered, so the element ECO is the mean of the two indicators, and so are the part
(policy: no other element has answers) and SIPAS (no service answers):
    value = (13/18 + 3/5) / 2 = 119/180 = 66.111 %
    var = (var1 + var2 + 2 cov) / 4 = (875 + 1728 + 1980) / 40500 / 4 = 4583/162000 = 0.0282901
    (as if independent it would be (var1 + var2)/4 = 0.0160679: the covariance counts)
    se = 100 sqrt(0.0282901) = 16.8197 points

df = 6 PSUs - 2 strata = 4; t(0.975, 4) = 2.776445
    tree interval: 66.111 -+ 2.776445 x 16.8197 = [19.412, 112.81] -> high clipped to 100

Korn-Graubard interval of indicator 1 (n = 12):
    n_eff = p(1-p)/var = (65/324)/(7/324) = 65/7 = 9.28571;  deff = var / (p(1-p)/n) = 84/65 = 1.29231
    (t(0.975, 11) / t(0.975, 4))^2 = (2.200985 / 2.776445)^2 = 0.628429;  n* = 9.28571 x 0.628429 = 5.83541
    x* = p n* = 4.21446;  interval = [Beta(0.025; x*, n* - x* + 1), Beta(0.975; x* + 1, n* - x*)]
An indicator at 0 % (nobody satisfied), n = 12: n_eff = n, n* = 12 x 0.628429 = 7.54115;
    interval [0, 1 - 0.025^(1/n*)] = [0, 1 - exp(-3.688879 / 7.54115)] = [0, 38.686 %]: not zero-width.
"""

from __future__ import annotations

import polars as pl
import pytest
from scipy import stats

from sipas_pipeline.errors import ComputeError
from sipas_pipeline.indicators import estimate_indicators, province_indicators, roll_up, sipas_tree
from sipas_pipeline.methodology.loader import Design
from sipas_pipeline.variance import proportion_interval, strata_psus, stratified_variance

VAR1, VAR2, COV = 7 / 324, 16 / 375, 11 / 450
VAR_NODE = 4583 / 162000
T4, T11 = 2.776445, 2.200985


def _citizens(m, content=None, impl=None) -> pl.DataFrame:
    """The dozen respondents above (answers 5 = satisfied, 2 = not, 9 = don't know)."""
    form = m.forms["citizen"].filter(pl.col("pii") == "no")
    psus = ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E", "F", "F"]
    content = content or [5, 5, 2, 5, 2, 2, 5, 5, 5, 2, 5, 5]
    impl = impl or [5, 5, 5, 9, 2, 2, 5, 5, 2, 9, 5, 2]
    rows = []
    for i, psu in enumerate(psus):
        row = {f: None for f in form["field_id"]}
        row |= {"form_id": f"r{i + 1}", "province_code": "01", "stratum": "H1" if psu in "ABC" else "H2", "psu": psu,
                "weight": 1.0 if psu in "ABC" else 2.0, "s_p_eco_content": content[i], "s_p_eco_impl": impl[i]}
        rows.append(row)
    schema = {f: (pl.Float64 if f == "weight" else pl.Int64 if d == "int" else pl.Utf8)
              for f, d in form.select("field_id", "dtype").iter_rows()}
    return pl.DataFrame(rows, schema=schema)


@pytest.fixture(scope="module")
def est(methodology):
    return estimate_indicators(methodology, _citizens(methodology))


def _row(frame: pl.DataFrame, **keys) -> dict:
    for k, v in keys.items():
        frame = frame.filter(pl.col(k) == v)
    assert frame.height == 1, keys
    return frame.row(0, named=True)


def test_indicator_variance_and_df(est):
    one = _row(est.values, indicator_id="S_P_ECO_CONTENT")
    assert one["value"] == pytest.approx(100 * 13 / 18) and one["denominator"] == 18 and one["n"] == 12
    assert one["var"] == pytest.approx(VAR1, rel=1e-12)
    assert one["df"] == 4
    two = _row(est.values, indicator_id="S_P_ECO_IMPL")
    assert two["value"] == pytest.approx(60.0) and two["denominator"] == 15 and two["n"] == 10
    assert two["var"] == pytest.approx(VAR2, rel=1e-12)
    assert _row(est.values, indicator_id="S_P_ECO_RESULT")["value"] is None


def test_tree_node_counts_the_covariance(methodology, est):
    tree = sipas_tree(methodology, est)
    for level, node in (("element", "ECO"), ("part", "policy"), ("sipas", "SIPAS")):
        r = _row(tree, level=level, node=node)
        assert r["value"] == pytest.approx(100 * 119 / 180)
        assert r["var"] == pytest.approx(1e4 * VAR_NODE, rel=1e-12)
        assert r["var"] == pytest.approx(1e4 * (VAR1 + VAR2 + 2 * COV) / 4, rel=1e-12)
        assert r["var"] > 1e4 * (VAR1 + VAR2) / 4 * 1.7  # independence would understate it
        assert r["df"] == 4
    assert _row(tree, level="part", node="service")["value"] is None


def test_tree_interval_is_t_with_design_df_and_clipped(methodology, est):
    from sipas_pipeline.variance import add_uncertainty

    tree = add_uncertainty(sipas_tree(methodology, est), methodology.design, proportion=False)
    r = _row(tree, level="sipas", node="SIPAS")
    assert r["se"] == pytest.approx(16.8197, abs=1e-4)
    assert r["ci_low"] == pytest.approx(100 * 119 / 180 - T4 * 16.8197, abs=1e-3)  # 19.412
    assert r["ci_low"] == pytest.approx(19.412, abs=1e-3)
    assert r["ci_high"] == 100.0  # 112.81 clipped
    assert r["deff"] is None and r["small_sample"] is True  # 12 forms < 30


def test_korn_graubard_interval_design_effect_effective_n(methodology):
    ind = province_indicators(methodology, _citizens(methodology))
    r = _row(ind, indicator_id="S_P_ECO_CONTENT")
    assert r["se"] == pytest.approx(100 * 7 ** 0.5 / 18)
    assert r["n_eff"] == pytest.approx(65 / 7) and r["deff"] == pytest.approx(84 / 65)
    n_star = 65 / 7 * (T11 / T4) ** 2
    assert n_star == pytest.approx(5.83541, abs=1e-4)
    x = 13 / 18 * n_star
    assert r["ci_low"] == pytest.approx(100 * stats.beta.ppf(0.025, x, n_star - x + 1), abs=1e-4)
    assert r["ci_high"] == pytest.approx(100 * stats.beta.ppf(0.975, x + 1, n_star - x), abs=1e-4)
    assert 0 < r["ci_low"] < r["value"] < r["ci_high"] < 100
    assert r["small_sample"] is True


def test_zero_percent_gets_a_non_zero_width_interval(methodology):
    nobody = _citizens(methodology, content=[2] * 12)
    r = _row(province_indicators(methodology, nobody), indicator_id="S_P_ECO_CONTENT")
    assert r["value"] == 0.0 and r["se"] == 0.0
    assert r["ci_low"] == 0.0
    assert r["ci_high"] == pytest.approx(38.686, abs=1e-3)
    assert r["n_eff"] == 12 and r["deff"] is None
    everybody = _row(province_indicators(methodology, _citizens(methodology, content=[5] * 12)),
                     indicator_id="S_P_ECO_CONTENT")
    assert everybody["ci_high"] == 100.0 and everybody["ci_low"] == pytest.approx(100 - 38.686, abs=1e-3)


def test_proportion_interval_stays_inside_and_never_collapses():
    out = proportion_interval([0.0, 0.5, 1.0, 0.999], [0.0, 0.01, 0.0, 1e-7], [3, 50, 3, 40], [1, 2, 1, 30], 0.95)
    assert (out["ci_low"] >= 0).all() and (out["ci_high"] <= 1).all()
    assert (out["ci_high"] - out["ci_low"] > 0).all()


def test_lonely_psu_adjust_and_fail():
    """Stratum S1 has PSUs P1 (z 0.05) and P2 (z -0.15): mean -0.05, deviations +-0.1, SS 0.02, x 2/1 -> 0.04.
    Stratum S2 has one PSU P3 (z 0.10): centred at the grand mean of the scores (0) -> 0.01. var = 0.05;
    df = 3 PSUs - 2 strata = 1."""
    psus = pl.DataFrame({"province_code": ["01"] * 3, "stratum": ["S1", "S1", "S2"], "psu": ["P1", "P2", "P3"]})
    n_h, df = strata_psus(psus, Design("stratum", "psu", "weight"))
    scores = psus.with_columns(pl.lit("X").alias("indicator_id"), pl.Series("z", [0.05, -0.15, 0.10]))
    var = stratified_variance(scores, ["indicator_id"], n_h)
    assert var["var"].item() == pytest.approx(0.05)
    assert df["df"].item() == 1
    with pytest.raises(ComputeError, match="stratum S2: a single PSU"):
        strata_psus(psus, Design("stratum", "psu", "weight", lonely_psu="fail"))


def test_region_variance_is_sum_over_k_squared(methodology):
    """Two provinces of one region (02, 04: TDMNPB) with variances 4 and 5 (df 4 and 6): the region's mean has
    variance (4 + 5) / 2^2 = 2.25 and df 10; the nation, the same two provinces, the same."""
    prov = pl.DataFrame({"province_code": ["02", "04"], "level": ["sipas"] * 2, "node": ["SIPAS"] * 2,
                         "value": [80.0, 70.0], "var": [4.0, 5.0], "df": [4, 6], "n": [100, 120]})
    rolled = roll_up(methodology, prov, ["level", "node"], ["n"])
    region = _row(rolled, unit_code="TDMNPB")
    assert region["value"] == 75.0 and region["var"] == pytest.approx(2.25) and region["df"] == 10 and region["n"] == 220
    assert _row(rolled, unit_code="VN")["var"] == pytest.approx(2.25)
