"""Reliability flags after the NCHS Data Presentation Standards for Proportions (Parker et al., *Vital and Health
Statistics* 2(175), 2017), applied to every published estimate with its reason.

For a proportion (an indicator), in the standards' order:
1. effective sample size n_eff = n / max(deff, 1) (= min(n, p(1-p) / var)) below 30: unreliable;
2. the 95% (Korn-Graubard) interval 30 percentage points wide or more: unreliable;
3. an interval wider than 5 points whose width is more than 130% of the value (relative width): unreliable;
4. design degrees of freedom below 8: the estimate is shown but flagged for review (its variance rests on few
   PSUs);
5. a value of 0% or 100%: shown, flagged for review (no variation was observed).
Indices (SIPAS elements, parts, the SIPAS, the PAR INDEX) are not proportions; the same rules are applied where
they make sense (respondents < 30, interval >= 30 points wide, df < 8), the relative width is not (an index of
satisfaction near 0 is not a rare event). The flag is `reliable`, `review` or `unreliable`; the reason lists
every rule that fired. What is published stays published: the flag tells the reader how far to trust it.
"""

from __future__ import annotations

import polars as pl

MIN_N_EFF = 30
MAX_WIDTH = 30.0  # percentage points
NARROW = 5.0  # percentage points: an interval this narrow needs no relative-width check
MAX_RELATIVE_WIDTH = 1.30
MIN_DF = 8.0


def _fmt(expr: pl.Expr, decimals: int = 1) -> pl.Expr:
    rounded = expr.round(decimals)
    return (rounded.cast(pl.Int64) if decimals == 0 else rounded).cast(pl.Utf8)


def with_reliability(frame: pl.DataFrame, proportion: bool, value: str = "value") -> pl.DataFrame:
    """`frame` (value, ci_low, ci_high, df, and n; n_eff for proportions) with `reliability` and
    `reliability_reason`; both null where the value is null."""
    v, lo, hi, df = pl.col(value), pl.col("ci_low"), pl.col("ci_high"), pl.col("df")
    width = hi - lo
    unreliable, review = [], []
    if "n" in frame.columns:
        n = pl.col("n").cast(pl.Float64)
        size = pl.min_horizontal(pl.col("n_eff"), n) if proportion and "n_eff" in frame.columns else n
        label = "effective n" if proportion else "respondents"
        unreliable.append(pl.when(size < MIN_N_EFF).then(pl.lit(f"{label} ") + _fmt(size) + pl.lit(f" < {MIN_N_EFF}")))
    unreliable.append(pl.when(width >= MAX_WIDTH).then(pl.lit("interval width ") + _fmt(width)
                                                        + pl.lit(f" >= {MAX_WIDTH:g} points")))
    if proportion:
        relative = width / v
        unreliable.append(pl.when((width > NARROW) & (width < MAX_WIDTH) & (v > 0) & (relative > MAX_RELATIVE_WIDTH))
                          .then(pl.lit("relative interval width ") + _fmt(100 * relative, 0)
                                + pl.lit(f"% > {100 * MAX_RELATIVE_WIDTH:g}%")))
    review.append(pl.when(df < MIN_DF).then(pl.lit("df ") + _fmt(df) + pl.lit(f" < {MIN_DF:g}")))
    if proportion:
        review.append(pl.when((v == 0) | (v == 100)).then(pl.lit("value ") + _fmt(v, 0) + pl.lit("%: no variation observed")))
    bad = pl.concat_list(unreliable).list.drop_nulls()
    look = pl.concat_list(review).list.drop_nulls()
    present = v.is_not_null()
    flag = (pl.when(~present).then(None).when(bad.list.len() > 0).then(pl.lit("unreliable"))
            .when(look.list.len() > 0).then(pl.lit("review")).otherwise(pl.lit("reliable")))
    reason = pl.when(present & (pl.concat_list(bad, look).list.len() > 0)).then(pl.concat_list(bad, look).list.join("; "))
    return frame.with_columns(flag.alias("reliability"), reason.alias("reliability_reason"))


def rank_reliability(ranked: pl.DataFrame, sipas: pl.DataFrame, totals: pl.DataFrame) -> pl.DataFrame:
    """`ranked` (province_code, measure, ...) with the reliability of the value ranked: the province's SIPAS or
    part row of `sipas` (sipas_indices with reliability), or its PAR INDEX row of `totals` (par_totals)."""
    tree = sipas.filter(pl.col("unit_level") == "province", pl.col("level") != "element").select(
        pl.col("unit_code").alias("province_code"),
        pl.when(pl.col("level") == "sipas").then(pl.lit("sipas")).otherwise(pl.lit("sipas_") + pl.col("node")).alias("measure"),
        "reliability", "reliability_reason")
    par = totals.select("province_code", pl.lit("par").alias("measure"), "reliability", "reliability_reason")
    return ranked.join(pl.concat([tree, par]), on=["province_code", "measure"], how="left")
