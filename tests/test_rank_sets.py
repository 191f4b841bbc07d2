"""Confidence sets for ranks (rank_sets.py) against a small case worked by hand.

Four provinces with known variances (se 1 each, df infinite: csranks' Gaussian case): A = 90, B = 80,
C = B - 1.99 sqrt(2), D = C - 2.22 sqrt(2). The studentised differences: t(B, C) = 1.99, t(C, D) = 2.22,
t(B, D) = 4.21, 7 or more against A. A family of ordered pairs (a, b) ("a above b") is tested with the 90%
quantile of the max over it of (Z_a - Z_b) / sqrt(2), Z iid N(0, 1). The quantiles of the families below are
computed here independently of the code's bootstrap: by quadrature for the families around one province, by a
plain Monte Carlo of 400,000 normal vectors for the others:

- marginal, unit j's family {(j, k), (k, j)}: round 1, three differences two-sided: 2.062: B rejects A > B and
  B > D, not B > C (1.99); round 2, B-C two-sided with the one-sided B > A and D > B left: 1.916 < 1.99,
  rejected: B = {2}. C: round 1 rejects A > C and C > D (2.22), round 2 (1.916) B > C: C = {3}. A = {1}, D = {4}.
  Single step (round 1 only): B = {2, 3}, C = {2, 3}.
- simultaneous, every ordered pair: round 1, the range of four normals: 2.290: rejects A over all and B > D, not
  C > D (2.22) nor B > C; round 2, the eight pairs left: 2.146 < 2.22: C > D rejected; round 3, seven pairs
  left: 2.090 > 1.99: nothing more. A = {1}, B = {2, 3}, C = {2, 3}, D = {4}. Single step: B = {2, 3},
  C = {2, 4}, D = {3, 4}.
- the top two: simultaneous lower end <= 2: A, B, C; the bottom two: upper end >= 3: B, C, D; the top one: A.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from sipas_pipeline.rank_sets import error_draws, mean_loadings, null_draws, observed_t, rank_sets, studentised

LEVEL = 0.90
HAND = np.array([90.0, 80.0, 80.0 - 1.99 * np.sqrt(2), 80.0 - (1.99 + 2.22) * np.sqrt(2)])
A, B, C, D = range(4)


def star_critical(kinds: list[str]) -> float:
    """90% quantile, by quadrature, of the max over one unit j's differences with the others, / sqrt(2): per other
    unit k 'both' (|Z_j - Z_k|), 'up' (Z_j - Z_k) or 'down' (Z_k - Z_j); given Z_j the terms are independent."""
    r = np.sqrt(2)
    terms = {"both": lambda z, c: stats.norm.cdf(z + c * r) - stats.norm.cdf(z - c * r),
             "up": lambda z, c: stats.norm.cdf(c * r - z), "down": lambda z, c: stats.norm.cdf(z + c * r)}

    def cover(c: float) -> float:
        inner = lambda z: stats.norm.pdf(z) * np.prod([terms[k](z, c) for k in kinds])  # noqa: E731
        return integrate.quad(inner, -12, 12)[0] - LEVEL
    return optimize.brentq(cover, 0.5, 6)


def family_critical(pairs: list[tuple[int, int]]) -> float:
    """90% quantile of max over ordered pairs (a, b) of (Z_a - Z_b) / sqrt(2), by plain Monte Carlo."""
    z = np.random.default_rng(2024).standard_normal((400_000, 4))
    return float(np.quantile(np.max([(z[:, a] - z[:, b]) / np.sqrt(2) for a, b in pairs], axis=0), LEVEL))


@pytest.fixture(scope="module")
def gaussian_draws() -> np.ndarray:
    return null_draws(np.ones(4), np.full(4, np.inf), np.random.default_rng(11), 20000)


def test_the_hand_case_sits_between_the_critical_values():
    """The fixture discriminates: each studentised gap is at least 0.06 from the critical value that decides it
    (the bootstrap's error at 20,000 draws is about 0.01)."""
    c3, c_round2 = star_critical(["both"] * 3), star_critical(["up", "both", "down"])
    every = [(a, b) for a in range(4) for b in range(4) if a != b]
    s1 = family_critical(every)
    s2 = family_critical([p for p in every if p not in ((A, B), (A, C), (A, D), (B, D))])
    s3 = family_critical([p for p in every if p not in ((A, B), (A, C), (A, D), (B, D), (C, D))])
    assert (c3, c_round2) == (pytest.approx(2.062, abs=1e-3), pytest.approx(1.916, abs=1e-3))
    assert (s1, s2, s3) == (pytest.approx(2.290, abs=0.01), pytest.approx(2.146, abs=0.01), pytest.approx(2.090, abs=0.01))
    t = observed_t(HAND, np.eye(4))
    assert (t[B, C], t[C, D], t[B, D]) == (pytest.approx(1.99), pytest.approx(2.22), pytest.approx(4.21))
    assert c_round2 + 0.06 < t[B, C] < min(c3, s3) - 0.06 and max(c3, s2) + 0.06 < t[C, D] < s1 - 0.06
    assert t[B, D] > s1 + 1 and t[A, B] > s1 + 4


def test_marginal_and_simultaneous_sets_by_hand(gaussian_draws):
    sets = rank_sets(HAND, np.eye(4), gaussian_draws, LEVEL, tau=2)
    assert list(zip(sets.marginal_low, sets.marginal_high, strict=True)) == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert list(zip(sets.simultaneous_low, sets.simultaneous_high, strict=True)) == [(1, 1), (2, 3), (2, 3), (4, 4)]
    assert sets.top.tolist() == [True, True, True, False]
    assert sets.bottom.tolist() == [False, True, True, True]
    one = rank_sets(HAND, np.eye(4), gaussian_draws, LEVEL, tau=1)
    assert one.top.tolist() == [True, False, False, False] and one.bottom.tolist() == [False, False, False, True]


def test_single_step_is_wider_than_stepdown(gaussian_draws):
    sets = rank_sets(HAND, np.eye(4), gaussian_draws, LEVEL, tau=2, stepdown=False)
    assert list(zip(sets.marginal_low, sets.marginal_high, strict=True)) == [(1, 1), (2, 3), (2, 3), (4, 4)]
    assert list(zip(sets.simultaneous_low, sets.simultaneous_high, strict=True)) == [(1, 1), (2, 3), (2, 4), (3, 4)]


def test_the_order_of_the_units_does_not_matter(gaussian_draws):
    """The same provinces listed in another order get the same sets (the draws are exchangeable here)."""
    order = np.array([2, 0, 3, 1])
    a = rank_sets(HAND, np.eye(4), gaussian_draws, LEVEL, tau=2)
    b = rank_sets(HAND[order], np.eye(4), gaussian_draws, LEVEL, tau=2)
    assert b.marginal_low.tolist() == a.marginal_low[order].tolist()
    assert b.simultaneous_high.tolist() == a.simultaneous_high[order].tolist()


def test_few_degrees_of_freedom_widen_the_sets():
    """Two provinces, the second's variance zero: the studentised error of the difference is exactly t(df of the
    first), so the critical value is t_0.95(3) = 2.353, not the normal 1.645. A gap of t = 2.0 separates the
    two with a known variance, not with df 3; a gap of 2.6 separates them in both."""
    var = np.array([1.0, 0.0])
    known = null_draws(var, np.array([np.inf, np.inf]), np.random.default_rng(3), 20000)
    few = null_draws(var, np.array([3.0, 3.0]), np.random.default_rng(3), 20000)
    for gap, with_df3 in ((2.0, (1, 2)), (2.6, (1, 1))):
        x = np.array([50.0 + gap, 50.0])
        assert (rank_sets(x, np.diag(var), known, LEVEL).marginal_high[0]) == 1
        assert (rank_sets(x, np.diag(var), few, LEVEL).marginal_low[0], rank_sets(x, np.diag(var), few, LEVEL)
                .marginal_high[0]) == with_df3
    assert np.quantile(np.abs(few[:, 0, 1]), LEVEL) == pytest.approx(stats.t.ppf(0.95, 3), abs=0.08)


def test_regions_as_means_of_provinces_count_their_covariance():
    """Loadings: units that are means of independent provinces. A = province 1, B = mean of provinces 1 and 2:
    var(A - B) = (v1 + v2) / 4, not v1 + (v1 + v2) / 4; with known variances every drawn T is N(0, 1)."""
    v = np.array([4.0, 1.0])
    a = np.array([[1.0, 0.0], [0.5, 0.5]])
    t = null_draws(v, np.full(2, np.inf), np.random.default_rng(5), 40000, loadings=a)
    assert t[:, 0, 1].std() == pytest.approx(1.0, abs=0.02)
    cov = a @ np.diag(v) @ a.T
    assert observed_t(np.array([10.0, 8.0]), cov)[0, 1] == pytest.approx(2.0 / np.sqrt(1.25))
    labels, loadings = mean_loadings(np.array(["S", "N", "S"]))
    assert labels.tolist() == ["N", "S"] and loadings.tolist() == [[0, 1, 0], [0.5, 0, 0.5]]


def test_the_draws_taken_first_give_the_same_studentised_errors():
    """rank_intervals takes every measure's random numbers first (error_draws) and studentises them later, a measure
    per core: the same T, bit for bit, as null_draws taking and studentising at once, with and without loadings."""
    var, df = np.array([1.0, 2.5, 0.5, 4.0]), np.array([2.0, np.inf, 5.0, 1.0])
    a = mean_loadings(np.array(["x", "x", "y", "y"]))[1]
    for loadings in (None, a):
        at_once_rng, rng = np.random.default_rng(9), np.random.default_rng(9)
        at_once = null_draws(var, df, at_once_rng, 500, loadings=loadings)
        first = error_draws(var, df, rng, 500)
        assert np.array_equal(studentised(*first, loadings), at_once)
        assert rng.standard_normal() == at_once_rng.standard_normal()  # as many random numbers taken

    """Equal estimates are never ordered; one unit alone is rank 1 in every set."""
    t = null_draws(np.ones(3), np.full(3, 5.0), np.random.default_rng(1), 2000)
    sets = rank_sets(np.array([70.0, 70.0, 70.0]), np.eye(3), t, LEVEL, tau=1)
    assert sets.marginal_low.tolist() == [1, 1, 1] and sets.marginal_high.tolist() == [3, 3, 3]
    assert sets.top.all() and sets.bottom.all()
    one = rank_sets(np.array([70.0]), np.eye(1), t[:, :1, :1], LEVEL)
    assert (one.marginal_low[0], one.marginal_high[0], one.simultaneous_low[0], bool(one.top[0])) == (1, 1, 1, True)


def test_groups_restrict_each_family_to_the_group(gaussian_draws):
    """Regions in one pass (`groups`): A, B in one group, C, D in the other. Within a pair the family is one
    difference, two-sided: the 90% critical value is the normal 1.645 (T = (Z_a - Z_b) / sqrt 2 ~ N(0, 1)), so
    A-B (t = 7.1) and C-D (t = 2.22) are both separated: every unit is rank 1 or 2 of its group, alone in its set.
    The same draws with one group give the four-unit sets of the hand case."""
    from sipas_pipeline.rank_sets import marginal_bounds

    t = observed_t(HAND, np.eye(4))
    assert np.quantile(np.abs(gaussian_draws[:, C, D]), LEVEL) == pytest.approx(1.645, abs=0.03)
    low, high = marginal_bounds(t, gaussian_draws, LEVEL, groups=np.array(["N", "N", "S", "S"]))
    assert list(zip(low, high, strict=True)) == [(1, 1), (2, 2), (1, 1), (2, 2)]
    low, high = marginal_bounds(t, gaussian_draws, LEVEL, groups=np.zeros(4))
    assert list(zip(low, high, strict=True)) == [(1, 1), (2, 2), (3, 3), (4, 4)]
    # B and C closer (t 1.99 < 2.062 in one step): single step, B and C share {2, 3} in one group of four
    low, high = marginal_bounds(t, gaussian_draws, LEVEL, stepdown=False)
    assert list(zip(low, high, strict=True)) == [(1, 1), (2, 3), (2, 3), (4, 4)]


def test_groups_at_once_match_each_group_alone():
    """marginal_bounds with groups takes every group's families at once (candidates padded to the largest group):
    the same sets, exactly, as each group's block of estimates and draws on its own; groups of one, unequal sizes,
    labels in no order, single step too."""
    from sipas_pipeline.rank_sets import marginal_bounds

    rng = np.random.default_rng(4)
    groups = np.array(["b", "a", "c", "b", "a", "b", "d", "a", "b", "c", "b", "a"])
    value, var, df = rng.normal(0, 1.5, groups.size), rng.uniform(0.3, 2, groups.size), rng.integers(1, 6, groups.size)
    t_hat, t_star = observed_t(value, np.diag(var)), null_draws(var, df.astype(float), rng, 2000)
    for stepdown in (True, False):
        low, high = marginal_bounds(t_hat, t_star, LEVEL, stepdown, groups=groups)
        for g in np.unique(groups):
            idx = np.flatnonzero(groups == g)
            alone = marginal_bounds(t_hat[np.ix_(idx, idx)], t_star[:, idx][:, :, idx], LEVEL, stepdown)
            assert (low[idx].tolist(), high[idx].tolist()) == (alone[0].tolist(), alone[1].tolist())
        assert low[groups == "d"].tolist() == [1] and high[groups == "d"].tolist() == [1]
        assert (high - low).max() >= 1  # some set is not a single rank: the comparison is not of trivial sets


def test_the_sets_name_the_variances_they_use(methodology):
    """design.rank_variance 'stabilised': the rows with a stabilised variance use it (here se 3 instead of 1:
    B and C at 80 and 75 are no longer told apart, t = 5 / sqrt(18) = 1.18), the others their direct one;
    'direct' uses se and df throughout. rank_set_variance says which."""
    import polars as pl

    from sipas_pipeline.ranking import rank_intervals, ranks

    values = pl.DataFrame({"province_code": ["01", "02", "04"], "measure": ["sipas"] * 3, "value": [95.0, 80.0, 75.0],
                           "se": [1.0, 1.0, 1.0], "df": [30.0, 30.0, 30.0], "se_stabilised": [None, 3.0, 3.0],
                           "df_stabilised": [None, 200.0, 200.0]})
    def sets(variance: str) -> dict:
        return {r["province_code"]: r for r in rank_intervals(methodology, ranks(methodology, values), variance)
                .iter_rows(named=True)}

    out = sets("stabilised")
    assert [out[c]["rank_set_variance"] for c in ("01", "02", "04")] == ["direct", "stabilised", "stabilised"]
    assert (out["02"]["rank_low"], out["02"]["rank_high"]) == (2, 3) == (out["04"]["rank_low"], out["04"]["rank_high"])
    assert out["02"]["se"] == 1.0  # the published se stays the direct one
    direct = sets("direct")
    assert {r["rank_set_variance"] for r in direct.values()} == {"direct"}
    assert [(direct[c]["rank_low"], direct[c]["rank_high"]) for c in ("01", "02", "04")] == [(1, 1), (2, 2), (3, 3)]
    assert "se_stabilised" not in rank_intervals(methodology, ranks(methodology, values)).columns
