"""Paired change (issue #22): the change's variance linearised PSU by PSU when this year's PSUs re-survey last year's."""

from __future__ import annotations

import polars as pl
import pytest

from sipas_pipeline.paired import measure_scores, paired_variance
from sipas_pipeline.ranking import change


def _scores(rows: list[tuple[str, str, float]], unit: str = "68") -> pl.DataFrame:
    return pl.DataFrame([(unit, "sipas", s, p, z) for s, p, z in rows],
                        schema=["province_code", "measure", "stratum", "psu", "z"], orient="row")


THIS = _scores([("H", "A", 1.0), ("H", "B", -2.0), ("H", "C", 1.0)])
LAST = _scores([("h", "A", 2.0), ("h", "B", -1.0), ("h", "C", -1.0)])


def test_paired_variance_by_hand():
    """One unit, one stratum of three communes A, B, C surveyed both years; PSU totals of the SIPAS score (points):
    this year z = 1, -2, 1, last year z = 2, -1, -1.

    Independent years: v_this = 3/2 (1 + 4 + 1) = 9, v_last = 3/2 (4 + 1 + 1) = 9, so se^2 = 18.
    Paired: d = z_this - z_last = -1, -1, 2 (mean 0), var = 3/2 (1 + 1 + 4) = 9 = 9 + 9 - 2 x 4.5, the covariance
    3/2 (1 x 2 + (-2)(-1) + 1 x (-1)) = 4.5 counted. df: 3 PSUs - 1 stratum = 2 (Satterthwaite, one stratum: 2)."""
    out = paired_variance(THIS, LAST).row(0, named=True)
    assert out["var"] == pytest.approx(9.0) and out["df"] == pytest.approx(2.0)
    assert out["matched"] == 3 and out["change_method"] == "paired"


def test_rotation_by_hand():
    """Commune C rotated out and D rotated in: this year A, B, D (z 1, -2, 3), last year A, B, C (z 2, -1, -1).
    Matched A, B: d = -1, -1; C went to this year's stratum H with its neighbours and D takes its place: one draw
    d = 3 - (-1) = 4. Mean 2/3; deviations -5/3, -5/3, 10/3; sum of squares 150/9; var = 3/2 x 150/9 = 25; df 2.
    A second commune E rotated in (z -1) with no partner stands alone: d = -1, four draws, mean 1/4, sum of squares
    (25 + 25 + 225 + 25)/16 = 18.75, var = 4/3 x 18.75 = 25; df 3."""
    this = _scores([("H", "A", 1.0), ("H", "B", -2.0), ("H", "D", 3.0)])
    out = paired_variance(this, LAST).row(0, named=True)
    assert out["var"] == pytest.approx(25.0) and out["df"] == pytest.approx(2.0) and out["matched"] == 2
    more = pl.concat([this, _scores([("H", "E", -1.0)])])
    out = paired_variance(more, LAST).row(0, named=True)
    assert out["var"] == pytest.approx(25.0) and out["df"] == pytest.approx(3.0)


def test_no_psu_matched_is_independent():
    """Last year's communes renamed (no code in common, no link): the variance is exactly v_this + v_last = 18 and
    the method independent; a link previous_psu -> psu (a commune under a new code) pairs them again."""
    renamed = LAST.with_columns((pl.lit("old-") + pl.col("psu")).alias("psu"))
    out = paired_variance(THIS, renamed).row(0, named=True)
    assert out["var"] == pytest.approx(18.0) and out["change_method"] == "independent" and out["matched"] == 0
    links = pl.DataFrame({"previous_psu": ["old-A", "old-B", "old-C"], "psu": ["A", "B", "C"]})
    assert paired_variance(THIS, renamed, links)["var"][0] == pytest.approx(9.0)


def test_change_uses_the_paired_variance_and_says_so():
    """`ranking.change` with a paired variance (9, df 2): se 3, half-width t(0.975, 2) x 3 = 4.302653 x 3 = 12.90796;
    a unit without one keeps sqrt(se^2 + se_prev^2) (independent)."""
    current = pl.DataFrame({"province_code": ["68", "01"], "measure": ["sipas"] * 2, "value": [80.0, 70.0],
                            "se": [3.0, 3.0], "df": [2.0, 2.0], "rank_national": [1, 2]})
    previous = current.with_columns(pl.col("value") - 1, pl.lit("reestimated").alias("basis"))
    out = change(current, previous, 0.95, paired_variance(THIS, LAST)).sort("province_code")
    one, unit = out.row(0, named=True), out.row(1, named=True)
    assert unit["change_method"] == "paired" and unit["change_se"] == pytest.approx(3.0)
    assert unit["change_ci_high"] - unit["change_value"] == pytest.approx(4.302653 * 3, abs=1e-5)
    assert one["change_method"] == "independent" and one["change_se"] == pytest.approx(18 ** 0.5)
    assert unit["previous_se"] == 3.0


def test_measure_scores_give_the_tree_variance():
    """The PSU scores of the ranked measures carry the SIPAS tree's variance: their stratified variance equals
    `sipas_tree`'s var for every province (a simulated year, two provinces)."""
    from sipas_pipeline.indicators import estimate_indicators, sipas_tree
    from sipas_pipeline.methodology import load_methodology
    from sipas_pipeline.synth.simulate import simulate_citizens
    from sipas_pipeline.variance import stratified_variance

    m = load_methodology(2024)
    year = simulate_citizens(m, 3, provinces=["01", "14"], redraw_sample=False)
    est = estimate_indicators(m, year.citizen)
    scores = measure_scores(m, est)
    var = stratified_variance(scores, ["measure"], est.n_h).filter(pl.col("measure") == "sipas").sort("province_code")
    tree = sipas_tree(m, est).filter(pl.col("level") == "sipas").sort("province_code")
    assert var["var"].to_list() == pytest.approx(tree["var"].to_list(), rel=1e-12)
