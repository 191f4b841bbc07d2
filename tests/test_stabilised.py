"""Stabilised variances (stabilised.py): the pooled design effect when the provinces' design effects agree, the
empirical-Bayes moderation when they do not, and the columns beside the direct ones."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sipas_pipeline.stabilised import moderated, moderation, with_stabilised


def test_agreeing_provinces_pool_with_the_sum_of_their_df():
    """Equal scales: no spread beyond sampling noise, d0 infinite, every province gets the pooled value with the
    sum of the df. Two provinces: pooled by df, (2 x 1 + 4 x 3) / 6 = 2.3333, df 6."""
    assert moderation(np.array([2.0, 2.0, 2.0]), np.array([3.0, 3.0, 3.0])) == (pytest.approx(2.0), np.inf)
    scale, df = moderated(np.array([1.0, 3.0]), np.array([2.0, 4.0]))
    assert scale.tolist() == pytest.approx([14 / 6, 14 / 6]) and df.tolist() == [6.0, 6.0]


def test_the_moderation_recovers_the_spread_of_true_variances():
    """5,000 provinces whose true scales follow 2 x 10 / chi2(10) (a scaled inverse chi-square with 10 df), each
    observed with 3 df: the fitted prior df is near 10 and its scale near 2; a province's moderated value lies
    between its own and the prior's, with df 3 + d0."""
    rng = np.random.default_rng(0)
    true = 2.0 * 10 / rng.chisquare(10, 5000)
    u = true * rng.chisquare(3, 5000) / 3
    s0, d0 = moderation(u, np.full(5000, 3.0))
    assert 7 < d0 < 14 and s0 == pytest.approx(2.0, rel=0.1)
    scale, df = moderated(u, np.full(5000, 3.0))
    assert np.all((scale - u) * (scale - s0) <= 1e-12) and df == pytest.approx(3 + d0)
    assert np.mean((scale - true) ** 2) < 0.5 * np.mean((u - true) ** 2)  # closer to the truth than the direct


def test_columns_beside_the_direct_ones():
    """Three provinces at 50% with n 100 and design effect 2 (var 50 points^2 = 2 x 25), df 3 each: pooled, the
    stabilised se is sqrt(50) = 7.0711 with df 9; a province at 50% with a design effect of 8 moves back to the pool
    of the others: region and nation rows get nothing."""
    frame = pl.DataFrame({"unit_level": ["province"] * 3 + ["nation"], "unit_code": ["01", "02", "04", "VN"],
                          "indicator_id": ["X"] * 4, "value": [50.0] * 4, "se": [50 ** 0.5] * 3 + [4.0],
                          "n": [100] * 3 + [300], "df": [3.0] * 3 + [9.0]})
    out = with_stabilised(frame, 0.95, proportion=True, keys=["indicator_id"])
    assert out["se_stabilised"].to_list()[:3] == pytest.approx([50 ** 0.5] * 3) and out["df_stabilised"][0] == 9.0
    assert out.filter(pl.col("unit_level") == "nation")["se_stabilised"].to_list() == [None]
    low, high = out["ci_low_stabilised"][0], out["ci_high_stabilised"][0]
    assert low < 50 < high and high - low < 40
    index = with_stabilised(frame.with_columns(pl.Series("se", [50 ** 0.5, 50 ** 0.5, 200 ** 0.5, 4.0])), 0.95,
                            proportion=False, keys=["indicator_id"])
    se = index["se_stabilised"].to_list()
    assert se[0] == se[1] == se[2] and 50 ** 0.5 < se[0] < 200 ** 0.5  # fully pooled: the df explain the spread
    assert se[0] == pytest.approx(((3 * 5000 + 3 * 5000 + 3 * 20000) / 9 / 100) ** 0.5)


def test_nothing_to_pool_gives_nothing():
    """Every province at 100% (no design effect to learn from): no stabilised variance at all, never a df of 0."""
    frame = pl.DataFrame({"unit_level": ["province"] * 3, "unit_code": ["01", "02", "04"], "indicator_id": ["X"] * 3,
                          "value": [100.0] * 3, "se": [0.0] * 3, "n": [40] * 3, "df": [3.0] * 3})
    out = with_stabilised(frame, 0.95, proportion=True, keys=["indicator_id"])
    assert out["se_stabilised"].to_list() == [None] * 3 and out["df_stabilised"].to_list() == [None] * 3


def test_groups_together_give_each_group_alone():
    """The moderation is per group of `keys` and the intervals are taken once over every group's rows: the same
    columns, exactly, as each group's rows alone (proportions and indices; region rows and a missing se left out)."""
    rng = np.random.default_rng(3)
    k = 12
    frame = pl.DataFrame({
        "unit_level": (["province"] * (k - 2) + ["region", "province"]) * 3, "indicator_id": [i for i in "abc" for _ in range(k)],
        "value": rng.uniform(20, 90, 3 * k), "se": [*rng.uniform(1, 6, 3 * k - 1), None], "n": rng.integers(30, 200, 3 * k),
        "df": rng.integers(1, 6, 3 * k).astype(float)})
    for proportion in (True, False):
        together = with_stabilised(frame, 0.95, proportion, keys=["indicator_id"])
        alone = pl.concat([with_stabilised(frame.filter(pl.col("indicator_id") == i), 0.95, proportion, ["indicator_id"])
                           for i in "abc"])
        assert together.equals(alone)
        assert together["se_stabilised"].null_count() == 3 + 1  # the three region rows and the row without se
