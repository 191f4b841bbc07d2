"""Ranks (national and within region; ties share a rank: 1, 2, 2, 4), confidence sets for them (`rank_sets`), whether
a province differs from the one ranked just above it, and the change since last year."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from sipas_pipeline.methodology import Methodology
from sipas_pipeline.variance import quantile_t


def ranks(m: Methodology, values: pl.DataFrame) -> pl.DataFrame:
    """`values` (province_code, measure, value[, se, df]) -> with rank_national and rank_regional, on values
    rounded to the year's published precision. A province without a value gets no rank."""
    rounded = pl.col("value").round(m.rank_decimals)
    return (values.join(m.provinces.select("province_code", "region_code"), on="province_code")
            .with_columns(rounded.rank("min", descending=True).over("measure").cast(pl.Int64).alias("rank_national"),
                          rounded.rank("min", descending=True).over("measure", "region_code").cast(pl.Int64)
                          .alias("rank_regional"))
            .sort("measure", "rank_national", "province_code", nulls_last=True))


def simulated_ranks(draws: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Ranks (1 = highest) of each row of `draws` (draws x provinces) within each group label of `groups`
    (all equal: national). Vectorised over the whole matrix."""
    _, group_idx = np.unique(groups, return_inverse=True)
    # one sort per draw by (group, -value): the group index dominates any spread of the values
    span = np.abs(draws).max() * 4 + 1
    order = np.argsort(group_idx[None, :] * span - draws, axis=1, kind="stable")
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.broadcast_to(np.arange(draws.shape[1]), draws.shape), axis=1)
    starts = np.searchsorted(np.sort(group_idx), group_idx)
    return position - starts[None, :] + 1


def rank_percentiles(ranks: np.ndarray, tail: float) -> tuple[np.ndarray, np.ndarray]:
    """Per province (column), the `tail` and `1 - tail` percentiles of its simulated ranks (inverted CDF: the
    smallest rank whose cumulative share reaches the level), from a province x rank count table."""
    draws, k = ranks.shape
    counts = np.bincount((np.arange(k)[None, :] * k + ranks - 1).ravel(), minlength=k * k).reshape(k, k)
    cdf = np.cumsum(counts, axis=1) / draws
    low = (cdf < tail - 1e-12).sum(axis=1) + 1
    high = (cdf < 1 - tail - 1e-12).sum(axis=1) + 1
    return low, high


TOP = 5  # "the top five" / "the bottom five"


def rank_intervals(m: Methodology, ranked: pl.DataFrame, variance: str | None = None) -> pl.DataFrame:
    """`ranked` (from `ranks`, with se and df) -> with the `rank_interval` (90%) confidence sets for ranks of
    Mogstad, Romano, Shaikh and Wilhelm (`rank_sets`): rank_low / rank_high the marginal set of each province's
    national rank, rank_simul_low / rank_simul_high the simultaneous set (all provinces at once),
    rank_regional_low / high the marginal set of the rank within the region, in_top5_set / in_bottom5_set
    whether the province belongs to the confidence set for the national top / bottom five; beside them
    p_top5 and p_bottom5, the share of draws around the estimates (value + se x t(df), provinces independent)
    in which the province ranks in the top / bottom five: a description of the estimates' spread, not the
    probability that it is there. differs_from_above: the interval of the difference with the province ranked
    just above nationally excludes 0 (null for the first). Draws and seed from the methodology's design block:
    the same in every run (`rank_set_draws` for the sets' critical values, `rank_draws` for the simulation).
    The sets are built from the variances `variance` names (default: the methodology's `design.rank_variance`):
    'stabilised' takes a province's se_stabilised and df_stabilised where `ranked` has them (the SIPAS and its
    parts), its direct se and df elsewhere (the PAR INDEX); rank_set_variance names what each row's sets used.
    se and df stay the direct ones, and so do differs_from_above and the descriptive simulation."""
    from sipas_pipeline.rank_sets import error_draws, marginal_bounds, observed_t, rank_sets, studentised

    d = m.design
    variance = variance or d.rank_variance
    stable = variance == "stabilised" and "se_stabilised" in ranked.columns
    basis = (pl.when(pl.col("se_stabilised").is_not_null() & pl.col("df_stabilised").is_not_null())
             .then(pl.lit("stabilised")).otherwise(pl.lit("direct")) if stable else pl.lit("direct"))
    ranked = ranked.with_columns(basis.alias("rank_set_variance"))
    rng = np.random.default_rng(d.rank_seed)
    ints = ("rank_low", "rank_high", "rank_simul_low", "rank_simul_high", "rank_regional_low", "rank_regional_high")
    bools = ("in_top5_set", "in_bottom5_set")
    # the random numbers first, measure by measure in one order (the same draws as one loop took them): the work on
    # them then runs a measure per core (NumPy releases the GIL on the large arrays)
    measures = []
    for measure in sorted(ranked["measure"].unique().to_list()):  # a handful of measures, each one matrix
        part = ranked.filter(pl.col("measure") == measure).sort("rank_national", "province_code", nulls_last=True)
        ok = (part["value"].is_not_null() & part["se"].is_not_null() & part["df"].is_not_null()).to_numpy()
        sub = part.filter(pl.Series(ok))
        drawn = None
        if sub.height:
            v, se, df = (sub[c].to_numpy().astype(float) for c in ("value", "se", "df"))
            s_se, s_df = se, df
            if stable:  # the stabilised variance where the row has one
                use = (sub["rank_set_variance"] == "stabilised").to_numpy()
                s_se = np.where(use, sub["se_stabilised"].fill_null(np.nan).to_numpy(), se)
                s_df = np.where(use, sub["df_stabilised"].fill_null(np.nan).to_numpy(), df)
            errors = error_draws(s_se ** 2, s_df, rng, d.rank_set_draws)
            # the descriptive simulation's: every province's estimate drawn as value + se x t(df), independently
            drawn = (v, se, s_se, errors, rng.standard_t(df[None, :], size=(d.rank_draws, sub.height)))
        measures.append((part, ok, sub, drawn))

    def one(part: pl.DataFrame, ok: np.ndarray, sub: pl.DataFrame, drawn: tuple | None) -> pl.DataFrame:
        cols: dict[str, np.ndarray] = {}
        if drawn is not None:
            v, se, s_se, errors, t_draws = drawn
            t_star = studentised(*errors)
            nat = rank_sets(v, np.diag(s_se ** 2), t_star, d.rank_interval, TOP)
            # within the region: the same draws, each province's family restricted to its region's provinces
            reg_low, reg_high = marginal_bounds(observed_t(v, np.diag(s_se ** 2)), t_star, d.rank_interval,
                                                groups=sub["region_code"].to_numpy())
            x = v[None, :] + se[None, :] * t_draws
            sim = simulated_ranks(x, np.zeros(sub.height, dtype=np.int64))
            cols = {"rank_low": nat.marginal_low, "rank_high": nat.marginal_high, "rank_simul_low": nat.simultaneous_low,
                    "rank_simul_high": nat.simultaneous_high, "rank_regional_low": reg_low, "rank_regional_high": reg_high,
                    "in_top5_set": nat.top, "in_bottom5_set": nat.bottom,
                    "p_top5": (sim <= TOP).mean(axis=0), "p_bottom5": (sim > sub.height - TOP).mean(axis=0)}
        full = {k: np.full(part.height, np.nan) for k in (*ints, *bools, "p_top5", "p_bottom5")}
        for k, arr in cols.items():
            full[k][ok] = arr
        kind = {k: pl.Int64 for k in ints} | {k: pl.Boolean for k in bools}
        part = part.with_columns(*[pl.Series(k, a).fill_nan(None).cast(kind.get(k, pl.Float64)) for k, a in full.items()])
        return part.with_columns(differs_from_above(d.confidence))

    with ThreadPoolExecutor(max_workers=max(1, min(len(measures), os.cpu_count() or 1))) as pool:
        out = list(pool.map(lambda job: one(*job), measures))
    done = pl.concat(out, how="diagonal_relaxed") if out else ranked
    return done.drop("se_stabilised", "df_stabilised", strict=False)


def difference_interval(se_a: pl.Expr, df_a: pl.Expr, se_b: pl.Expr, df_b: pl.Expr,
                        confidence: float) -> tuple[pl.Expr, pl.Expr]:
    """For the difference of two independent estimates: its variance se_a^2 + se_b^2 and the half-width of its
    t interval, with Welch-Satterthwaite df."""
    se2 = se_a ** 2 + se_b ** 2
    welch = se2 ** 2 / (se_a ** 4 / df_a + se_b ** 4 / df_b)
    q = welch.map_batches(lambda s: pl.Series(quantile_t(s.to_numpy(), confidence)), return_dtype=pl.Float64)
    return se2, q * se2.sqrt()


def differs_from_above(confidence: float) -> pl.Expr:
    """Whether the interval of (value of the province just above) - (value) excludes 0: t with Welch-Satterthwaite
    df, se = sqrt(se^2 + se_above^2). Rows sorted by national rank; null for the first or without se."""
    above_v, above_se, above_df = (pl.col(c).shift(1) for c in ("value", "se", "df"))
    se2, half = difference_interval(pl.col("se"), pl.col("df"), above_se, above_df, confidence)
    return (pl.when(se2 > 0).then((above_v - pl.col("value")).abs() > half)
            .when(se2 == 0).then(above_v != pl.col("value")).alias("differs_from_above"))


def change(current: pl.DataFrame, previous: pl.DataFrame | None, confidence: float = 0.95,
           paired: pl.DataFrame | None = None) -> pl.DataFrame:
    """Add the change since the previous year's (province_code, measure, value, rank_national[, se, df, basis]).
    With the previous year's own results (basis 'results' or 'reestimated', with se): change_se, a t interval and
    change_significant (the interval excludes 0), the variance either `paired` (province_code, measure, var, df,
    change_method from `paired.paired_variance`: this year's PSUs re-survey last year's, the change linearised PSU
    by PSU with the covariance of the two years) or independent, sqrt(se^2 + se_prev^2) with Welch-Satterthwaite
    df; change_method says which; previous_se is last year's se. Against published figures without se (basis
    'published'): the change in value and places, significance and method null. A province missing in either year
    gets null changes. Rows of `previous` with a `psu` (its PSU scores, `comparable.split`) are ignored here."""
    names = ["change_value", "change_se", "change_ci_low", "change_ci_high", "change_significant", "change_places",
             "change_basis", "change_method", "previous_se"]
    if previous is None:
        types = [pl.Float64] * 4 + [pl.Boolean, pl.Int64, pl.Utf8, pl.Utf8, pl.Float64]
        return current.with_columns(pl.lit(None, t).alias(c) for c, t in zip(names, types, strict=True))
    if "psu" in previous.columns:
        previous = previous.filter(pl.col("psu").is_null())
    prev = previous.select(
        "province_code", "measure", pl.col("value").alias("prev_value"),
        pl.col("rank_national").cast(pl.Int64).alias("prev_rank"),
        (pl.col("se") if "se" in previous.columns else pl.lit(None, pl.Float64)).cast(pl.Float64).alias("prev_se"),
        (pl.col("df") if "df" in previous.columns else pl.lit(None, pl.Float64)).cast(pl.Float64).alias("prev_df"),
        (pl.col("basis") if "basis" in previous.columns else pl.lit("published")).alias("change_basis"))
    joined = current.join(prev, on=["province_code", "measure"], how="left")
    if paired is not None and paired.height:
        joined = joined.join(paired.filter(pl.col("change_method") == "paired").select(
            "province_code", "measure", pl.col("var").alias("paired_var"), pl.col("df").alias("paired_df")),
            on=["province_code", "measure"], how="left")
    else:
        joined = joined.with_columns(pl.lit(None, pl.Float64).alias("paired_var"), pl.lit(None, pl.Float64).alias("paired_df"))
    diff = pl.col("value") - pl.col("prev_value")
    se2, half = difference_interval(pl.col("se"), pl.col("df"), pl.col("prev_se"), pl.col("prev_df"), confidence)
    with_se = pl.col("change_basis").is_in(["results", "reestimated"]) & se2.is_not_null()  # own microdata: with se
    is_paired = with_se & pl.col("paired_var").is_not_null()
    q = pl.col("paired_df").map_batches(lambda s: pl.Series(quantile_t(s.fill_null(1.0).to_numpy(), confidence)),
                                        return_dtype=pl.Float64)
    se = pl.when(is_paired).then(pl.col("paired_var").sqrt()).when(with_se).then(se2.sqrt())
    half = pl.when(is_paired).then(q * pl.col("paired_var").sqrt()).otherwise(half)
    return (joined.with_columns(diff.alias("change_value"), se.alias("change_se"),
                                pl.when(with_se).then(diff - half).alias("change_ci_low"),
                                pl.when(with_se).then(diff + half).alias("change_ci_high"),
                                (pl.col("prev_rank") - pl.col("rank_national")).alias("change_places"),
                                pl.when(pl.col("prev_value").is_not_null()).then(pl.col("change_basis")).alias("change_basis"),
                                pl.when(is_paired).then(pl.lit("paired")).when(with_se).then(pl.lit("independent"))
                                .alias("change_method"),
                                pl.when(pl.col("prev_value").is_not_null()).then(pl.col("prev_se")).alias("previous_se"))
            .with_columns(pl.when(pl.col("change_se").is_not_null())
                          .then((pl.col("change_ci_low") > 0) | (pl.col("change_ci_high") < 0)).alias("change_significant"))
            .drop("prev_value", "prev_rank", "prev_se", "prev_df", "paired_var", "paired_df")
            .with_columns(pl.col("change_value").fill_nan(None)))
