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

df of an indicator = 6 PSUs - 2 strata = 4; t(0.975, 4) = 2.776445

The tree's score u = (z1 + z2) / 2 per PSU; each stratum's share of its variance, 3/2 x SS(u):
    H1: SS(u) = (648/324^2 + 2.24/15^2 + 2 x 36/(324 x 15)) / 4 = (1/162 + 56/5625 + 2/135) / 4
        v_H1 = 3/8 x 0.03094321 = 0.01160370
    H2: SS(u) = (864/324^2 + 4.16/15^2 + 2 x 43.2/(324 x 15)) / 4 = (2/243 + 4.16/225 + 4/225) / 4
        v_H2 = 3/8 x 0.04449712 = 0.01668642          (v_H1 + v_H2 = 0.02829012 = 4583/162000)
    Satterthwaite df = (v_H1 + v_H2)^2 / (v_H1^2 / 2 + v_H2^2 / 2)
                     = 0.000800331 / ((0.000134646 + 0.000278437) / 2) = 3.87492   (<= 4, so kept)
    t(0.975, 3.87492) = 2.81215 (scipy t.ppf)
    tree interval: 66.111 -+ 2.81215 x 16.8197 = [18.812, 113.41] -> high clipped to 100

Korn-Graubard interval of indicator 1 (n = 12):
    n_eff = p(1-p)/var = (65/324)/(7/324) = 65/7 = 9.28571;  deff = var / (p(1-p)/n) = 84/65 = 1.29231
    (t(0.975, 11) / t(0.975, 4))^2 = (2.200985 / 2.776445)^2 = 0.628429;  n* = 9.28571 x 0.628429 = 5.83541
    x* = p n* = 4.21446;  interval = [Beta(0.025; x*, n* - x* + 1), Beta(0.975; x* + 1, n* - x*)]
    (n* = min(n_eff x 0.628429, n): the cap at n applies after the df factor)
An indicator at 0 % (nobody satisfied), n = 12: n_eff = n, n* = min(12 x 0.628429, 12) = 7.54115;
    interval [0, 1 - 0.025^(1/n*)] = [0, 1 - exp(-3.688879 / 7.54115)] = [0, 38.686 %]: not zero-width.
"""

from __future__ import annotations

import polars as pl
import pytest
from scipy import stats

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.errors import ComputeError
from sipas_pipeline.indicators import estimate_indicators, province_indicators, roll_up, sipas_tree
from sipas_pipeline.methodology.loader import Design
from sipas_pipeline.variance import proportion_interval, strata_psus, stratified_variance

VAR1, VAR2, COV = 7 / 324, 16 / 375, 11 / 450
VAR_NODE = 4583 / 162000
T4, T11 = 2.776445, 2.200985
DF_TREE, T_TREE = 3.87492, 2.81215  # Satterthwaite df of the tree's stratified variance, t(0.975, df)


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
        assert r["df"] == pytest.approx(DF_TREE, abs=1e-4)  # Satterthwaite, below PSUs - strata = 4
    assert _row(tree, level="part", node="service")["value"] is None


def test_tree_interval_is_t_with_design_df_and_clipped(methodology, est):
    from sipas_pipeline.variance import add_uncertainty

    tree = add_uncertainty(sipas_tree(methodology, est), methodology.design, proportion=False)
    r = _row(tree, level="sipas", node="SIPAS")
    assert r["se"] == pytest.approx(16.8197, abs=1e-4)
    assert r["ci_low"] == pytest.approx(100 * 119 / 180 - T_TREE * 16.8197, abs=1e-3)  # 18.812
    assert r["ci_low"] == pytest.approx(18.812, abs=1e-3)
    assert stats.t.ppf(0.975, DF_TREE) == pytest.approx(T_TREE, abs=1e-5)
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


def _officials(m) -> pl.DataFrame:
    """Three officials of province 01 rate every item 5, 3 and 4."""
    items = m.forms["official"].filter(pl.col("refs").str.starts_with("par:"))["field_id"].to_list()
    return pl.DataFrame([{"form_id": f"o{r}", "province_code": "01", **{i: r for i in items}} for r in (5, 3, 4)])


def test_par_survey_points_and_total_uncertainty(methodology, est):
    """Officials (one cluster each): per sub-criterion with m items, s = 5m, 3m, 4m and c = m, so R = 4 and
    z = (s - 4c) / 3m = 1/3, -1/3, 0; var(mean) = 3/2 x 2/9 = 1/3, se 0.57735; points se = max/4 x 0.57735
    (1.5.2, max 1.75: 0.252591). All sub-criteria move together: u = sum_k max_k/4 x z = 6 z (the officials' maxima
    add up to 24) = 2, -2, 0; var = 3/2 x 8 = 12 (se 3.4641 = the sum of the sub-criteria's se); df 3 - 1 = 2.
    Citizens: only policy (= ECO above) has a value: 8.4.2 = 2 x 66.111/100 = 1.32222, se 2/100 x 16.8197 = 0.336394;
    their var 0.02^2 x 1e4 x 4583/162000 = 0.113160 (df 3.87492, the tree's Satterthwaite df).
    PAR = 34 (appraisal, half of 68) + 24 x 3/4 + 1.32222
    = 53.32222; var 12.113160 (se 3.480397); Welch df = 12.11316^2 / (12^2/2 + 0.11316^2/3.87492) = 146.72865 /
    72.00330 = 2.03780, kept fractional (as the SIPAS's); t_0.975(2.0378) = 4.22706 (scipy.stats.t.ppf);
    interval 53.32222 -+ 4.22706 x 3.480397 = [38.6104, 68.0341] (flooring the df to 2 would give t 4.302653)."""
    from sipas_pipeline.par_index import par_points, par_totals

    m = methodology
    subs = m.par_subcriteria.filter(pl.col("kind") == "appraisal")
    appraisal = subs.select(pl.lit("01").alias("province_code"), "subcriterion_id",
                            (pl.col("max_points") / 2).alias("appraised_points"), pl.col("max_points").alias("self_points"))
    pts, survey = par_points(m, _officials(m), appraisal, est)
    official = _row(pts, subcriterion_id="1.5.2")
    assert official["points"] == pytest.approx(1.75 * 3 / 4) and official["se"] == pytest.approx(0.252591, abs=1e-6)
    citizen = _row(pts, subcriterion_id="8.4.2")
    assert citizen["points"] == pytest.approx(1.32222, abs=1e-5) and citizen["se"] == pytest.approx(0.336394, abs=1e-6)
    assert _row(pts, subcriterion_id="1.1.1")["se"] is None  # appraisal: no sampling error
    s = _row(survey, province_code="01")
    assert s["var_official"] == pytest.approx(12.0) and s["df_official"] == 2
    assert s["var_citizen"] == pytest.approx(0.113160, abs=1e-6) and s["df_citizen"] == pytest.approx(DF_TREE, abs=1e-4)
    _, totals = par_totals(m, pts, survey)
    t = _row(totals, province_code="01")
    assert t["par_index"] == pytest.approx(53.32222, abs=1e-5) and t["se"] == pytest.approx(3.480397, abs=1e-6)
    assert t["df"] == pytest.approx(2.03780, abs=1e-4)
    assert t["ci_low"] == pytest.approx(38.6104, abs=1e-3) and t["ci_high"] == pytest.approx(68.0341, abs=1e-3)


def test_rank_intervals_by_hand(methodology):
    """02 and 04 (both TDMNPB) tie at 80 (se 1): each is first in about half the draws, rank interval 1-2, and
    they do not differ; 01 (DBSH) at 50 is third in every draw (30 points below, se sqrt(2) x 1) and differs
    from the one above. Regionally 01 is alone (1-1). The same seed gives the same figures."""
    from sipas_pipeline.ranking import rank_intervals, ranks

    values = pl.DataFrame({"province_code": ["01", "02", "04"], "measure": ["sipas"] * 3, "value": [50.0, 80.0, 80.0],
                           "se": [1.0, 1.0, 1.0], "df": [30, 30, 30]})
    out = rank_intervals(methodology, ranks(methodology, values))
    r = {row["province_code"]: row for row in out.iter_rows(named=True)}
    assert (r["02"]["rank_low"], r["02"]["rank_high"]) == (1, 2) == (r["04"]["rank_low"], r["04"]["rank_high"])
    assert (r["01"]["rank_low"], r["01"]["rank_high"]) == (3, 3)
    assert (r["01"]["rank_regional_low"], r["01"]["rank_regional_high"]) == (1, 1)
    assert r["02"]["p_top5"] == 1.0 and r["01"]["p_bottom5"] == 1.0
    assert r["01"]["differs_from_above"] is True
    second = out.filter(pl.col("rank_national") == 1).sort("province_code")
    assert second["differs_from_above"].to_list() in ([None, False], [False, None])
    assert out.equals(rank_intervals(methodology, ranks(methodology, values)))


@pytest.mark.integration
def test_results_do_not_depend_on_row_order(methodology, sample_work):
    """The citizens' forms in another order give the same bits (their sums run in a fixed order of the design's
    keys, not the input's); the same inputs twice, the same bits (the officials' sums follow the forms' order)."""
    from sipas_pipeline.hashing import frames_sha256
    from sipas_pipeline.stages import compute_results

    silver = {s: pl.read_parquet(StageFolder(sample_work["work"]).silver(s)) for s in ("citizen", "official", "appraisal")}
    first = compute_results(methodology, silver["citizen"], silver["official"], silver["appraisal"])
    shuffled = compute_results(methodology, silver["citizen"].sample(fraction=1.0, shuffle=True, seed=3),
                               silver["official"], silver["appraisal"])
    assert frames_sha256(first) == frames_sha256(shuffled)
    again = compute_results(methodology, silver["citizen"], silver["official"], silver["appraisal"])
    assert frames_sha256(first) == frames_sha256(again)


def test_a_province_without_a_value_gets_no_rank_and_leaves_the_others_alone(methodology):
    """A province with no figure (e.g. incomplete): null rank, null rank interval, excluded from the simulation;
    the other two are ranked 1 and 2 among themselves."""
    from sipas_pipeline.ranking import rank_intervals, ranks

    values = pl.DataFrame({"province_code": ["01", "02", "04"], "measure": ["sipas"] * 3, "value": [50.0, None, 80.0],
                           "se": [1.0, None, 1.0], "df": [30, None, 30]})
    out = {r["province_code"]: r for r in rank_intervals(methodology, ranks(methodology, values)).iter_rows(named=True)}
    assert out["02"]["rank_national"] is None and out["02"]["rank_low"] is None and out["02"]["p_top5"] is None
    assert (out["04"]["rank_national"], out["04"]["rank_low"], out["04"]["rank_high"]) == (1, 1, 1)
    assert (out["01"]["rank_national"], out["01"]["rank_low"], out["01"]["rank_high"]) == (2, 2, 2)
