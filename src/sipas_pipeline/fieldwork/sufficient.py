"""Provisional figures from the season's sufficient statistics, by the annual run's own estimator.

Every estimate of the annual compute is a function of sums over the forms: the citizens' integer counts per
(province, stratum, PSU, weight) (`indicators.indicator_cells`) give each indicator's weighted numerator,
denominator and the PSU totals of its linearised score, hence every indicator, every node of the SIPAS tree and
the citizens' PAR sub-criteria with their design-based variances; the officials' integer moments per province
(`par_index.OfficialMoments`) give the officials' sub-criteria and their variance. A batch adds its own
statistics to the season's (integers: exact, in any order), so after the last batch the season holds exactly the
statistics the annual run reduces its silver to, and `provisional` runs the same functions on them: the figures
are the annual run's on the same forms, bit for bit, by construction. A batch costs its own reduction plus one
estimate from statistics whose size is bounded by the sample design (villages x weights, provinces), not by the
forms already in.

The page, rewritten after every batch, needs only the provinces' SIPAS: a province's figures are a function of its
own cells alone (its strata and PSUs), so `province_sipas` recomputes the provinces a batch touched (about 0.02 s for
one, 0.12 s for all 63) and the others keep their rows, bit for bit what a full computation gives.
"""

from __future__ import annotations

import polars as pl

from sipas_pipeline.indicators import all_units, estimates_from_cells, sipas_tree
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.par_index import OfficialMoments, official_points_from_moments, par_totals, survey_and_appraisal
from sipas_pipeline.variance import t_interval

SIPAS_COLUMNS = ["unit_level", "unit_code", "level", "node", "value", "se", "ci_low", "ci_high", "df", "small_sample", "n"]


def provisional(m: Methodology, cells: pl.DataFrame, official: OfficialMoments) -> dict[str, pl.DataFrame]:
    """The provisional figures of the season so far: `indicators` and `sipas` (province, region and nation rows,
    as the annual `indicator_values` and `sipas_indices`), `par_survey` (per province the survey sub-criteria's
    points with se, df and t interval, and their total under subcriterion_id '*', as the annual `par_totals`'
    survey part). Empty frames while no citizens' form is in."""
    est = estimates_from_cells(m, cells)
    tree = sipas_tree(m, est)
    out = {"indicators": all_units(m, est.values, ["indicator_id"], ["numerator", "denominator", "n"], True),
           "sipas": all_units(m, tree, ["level", "node"], ["n"], False)}
    off_pts, off_var = official_points_from_moments(m, official)
    points, survey = survey_and_appraisal(m, (off_pts, off_var), None, est)
    _, totals = par_totals(m, points, survey)
    dfs = pl.concat([off_var.select("province_code", "df").join(off_pts.select("province_code", "subcriterion_id"),
                                                                 on="province_code"),
                     est.values.select("province_code", "df").unique("province_code")
                     .join(points.filter(pl.col("kind") == "survey_citizen").select("province_code", "subcriterion_id"),
                           on="province_code")]).with_columns(pl.col("df").cast(pl.Float64))
    subs = points.join(dfs, on=["province_code", "subcriterion_id"], how="left").sort("province_code", "subcriterion_id")
    low, high = t_interval(subs["points"].to_numpy(), subs["se"].to_numpy(), subs["df"].to_numpy(), m.design.confidence,
                           0.0, 100.0)
    subs = subs.with_columns(pl.Series("ci_low", low), pl.Series("ci_high", high)).select(
        "province_code", "subcriterion_id", "kind", "max_points", "points", "se", "df", "ci_low", "ci_high")
    total = totals.select("province_code", pl.lit("*").alias("subcriterion_id"), pl.lit("survey").alias("kind"),
                          pl.lit(None, pl.Float64).alias("max_points"), pl.col("par_index").alias("points"), "se",
                          pl.col("df").cast(pl.Float64), "ci_low", "ci_high")
    max_survey = m.par_subcriteria.filter(pl.col("kind") != "appraisal")["max_points"].sum()
    total = total.with_columns(pl.lit(float(max_survey)).alias("max_points"))
    out["par_survey"] = pl.concat([subs, total], how="vertical_relaxed").fill_nan(None).sort("province_code", "subcriterion_id")
    return out


def province_sipas(m: Methodology, cells: pl.DataFrame, provinces: set[str] | None = None) -> pl.DataFrame:
    """The SIPAS tree's province rows (element, part, SIPAS with se, df and interval) of `provinces` (all: None), as
    `provisional(...)["sipas"]` has them."""
    if provinces is not None:
        cells = cells.filter(pl.col("province_code").is_in(sorted(provinces)))
    tree = sipas_tree(m, estimates_from_cells(m, cells))
    rows = all_units(m, tree, ["level", "node"], ["n"], False).filter(pl.col("unit_level") == "province")
    return rows.select(SIPAS_COLUMNS)
