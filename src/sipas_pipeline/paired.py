"""Paired change: the variance of a year-on-year change when this year's PSUs re-survey last year's.

The 2025 sample re-surveys the 2024 communes. With persistent place effects the two years' estimates of a unit
are positively correlated, and sqrt(se1^2 + se2^2) overstates the change's standard error (several-fold on the
synthetic design). The change D = T_this - T_last of two linearised estimates is itself linearised PSU by PSU:

    d_j = z_this,j - sum of z_last,i over last year's PSUs i matched to j

(each year's z the PSU total of its own linearised score, with its own weights and totals), then the stratified
variance of the d_j (`variance.stratified_variance`, this year's strata, with-replacement approximation):
every covariance between the years within a PSU counts. Matching is by code: last year's PSU i is matched to this
year's PSU j when their codes are equal or `links` (previous_psu -> psu, e.g. a commune merged into a new one)
says so, within the same unit. Rotation: a PSU rotated out goes to the stratum its matched neighbours went to, and
takes the place of a PSU rotated in to that stratum (in code order: the pair is one draw of the stratum, with
d = z_new - z_old, so the stratum's draws keep a common mean); a PSU surveyed in one year with no partner
contributes its own term (z_this, or -z_last in its own previous stratum when none of it was matched). With no
PSU matched the variance is exactly se1^2 + se2^2. Degrees of freedom: the Satterthwaite df over the
strata, within [1, PSUs - strata] (as the SIPAS tree's).
"""

from __future__ import annotations

import polars as pl

from sipas_pipeline.indicators import IndicatorEstimates, tree_coefficients
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.variance import DOMAIN, PSU, STRATUM, combine_scores, stratified_variance

PAIRED, INDEPENDENT = "paired", "independent"
SCORE_COLUMNS = [DOMAIN, "measure", STRATUM, PSU, "z"]


def measure_scores(m: Methodology, est: IndicatorEstimates) -> pl.DataFrame:
    """PSU totals `z` (percentage points) of the linearised scores of the ranked SIPAS measures (sipas, sipas_<part>)
    per province: province_code, measure, stratum, psu, z."""
    coef = (tree_coefficients(m, est.values).filter(pl.col("level") != "element")
            .with_columns(pl.when(pl.col("level") == "sipas").then(pl.lit("sipas"))
                          .otherwise(pl.lit("sipas_") + pl.col("node")).alias("measure"))
            .select(DOMAIN, "indicator_id", "measure", "c"))
    scores = combine_scores(est.scores, coef, "indicator_id", ["measure"])
    return scores.select(DOMAIN, "measure", STRATUM, PSU, (100 * pl.col("z")).alias("z")).sort(DOMAIN, "measure", STRATUM, PSU)


def _matched(current: pl.DataFrame, previous: pl.DataFrame, links: pl.DataFrame | None) -> pl.DataFrame:
    """Last year's PSUs with the PSU of this year each is matched to (`to_psu`, null when none) and that PSU's stratum
    (`to_stratum`): province_code, stratum, psu, to_psu, to_stratum."""
    last = previous.select(DOMAIN, STRATUM, PSU).unique()
    this = current.select(DOMAIN, pl.col(PSU).alias("to_psu"), pl.col(STRATUM).alias("to_stratum")).unique()
    if links is None or links.height == 0:
        candidates = last.with_columns(pl.col(PSU).alias("to_psu"))
    else:
        linked = links.select(pl.col("previous_psu").cast(pl.Utf8).alias(PSU), pl.col("psu").cast(pl.Utf8).alias("to_psu"))
        candidates = pl.concat([last.join(linked, on=PSU, how="inner"), last.with_columns(pl.col(PSU).alias("to_psu"))])
    found = (candidates.join(this, on=[DOMAIN, "to_psu"], how="inner")
             .sort(DOMAIN, STRATUM, PSU, "to_psu").unique([DOMAIN, STRATUM, PSU], keep="first"))  # a split PSU: its first
    return last.join(found.select(DOMAIN, STRATUM, PSU, "to_psu", "to_stratum"), on=[DOMAIN, STRATUM, PSU], how="left")


def paired_variance(current: pl.DataFrame, previous: pl.DataFrame, links: pl.DataFrame | None = None) -> pl.DataFrame:
    """The change's variance per (province_code, measure) from the two years' PSU scores (`measure_scores` of each,
    previous on this year's units): province_code, measure, var, df, matched (last year's PSUs matched),
    change_method ('paired' with at least one PSU matched, else 'independent')."""
    match = _matched(current, previous, links)
    # a previous stratum goes with the stratum of this year most of its matched PSUs went to (ties: the first code)
    home = (match.filter(pl.col("to_psu").is_not_null()).group_by(DOMAIN, STRATUM, "to_stratum").len()
            .sort(DOMAIN, STRATUM, pl.col("len"), "to_stratum", descending=[False, False, True, False])
            .unique([DOMAIN, STRATUM], keep="first").select(DOMAIN, STRATUM, pl.col("to_stratum").alias("home")))
    # a commune rotated out takes the place in the sample of one rotated in to the same stratum (in code order):
    # the pair is one draw of the stratum, its d = z_new - z_old; the rest stand alone
    match = match.join(home, on=[DOMAIN, STRATUM], how="left")
    taken = match["to_psu"].drop_nulls().unique().to_list()
    slot = pl.int_range(pl.len()).over(DOMAIN, "home")
    out = (match.filter(pl.col("to_psu").is_null() & pl.col("home").is_not_null()).sort(DOMAIN, "home", PSU)
           .with_columns(slot.alias("slot")))
    into = (current.select(DOMAIN, pl.col(STRATUM).alias("home"), pl.col(PSU).alias("into")).unique()
            .filter(~pl.col("into").is_in(taken)).sort(DOMAIN, "home", "into").with_columns(slot.alias("slot")))
    placed = out.join(into, on=[DOMAIN, "home", "slot"], how="inner").select(DOMAIN, STRATUM, PSU, "into")
    last = (previous.join(match, on=[DOMAIN, STRATUM, PSU], how="left")
            .join(placed, on=[DOMAIN, STRATUM, PSU], how="left")
            .select(DOMAIN, "measure",
                    pl.coalesce("to_stratum", "home", pl.lit("previous:") + pl.col(STRATUM)).alias(STRATUM),
                    pl.coalesce("to_psu", "into", pl.lit("previous:") + pl.col(PSU)).alias(PSU), (-pl.col("z")).alias("z")))
    d = (pl.concat([current.select(DOMAIN, "measure", STRATUM, PSU, "z"), last])
         .group_by(DOMAIN, "measure", STRATUM, PSU).agg(pl.col("z").sort().sum()).sort(DOMAIN, "measure", STRATUM, PSU))
    psus = d.select(DOMAIN, STRATUM, PSU).unique()
    n_h = psus.group_by(STRATUM).agg(pl.len().alias("n_h")).sort(STRATUM)
    counted = psus.group_by(DOMAIN).agg((pl.len() - pl.col(STRATUM).n_unique()).alias("df_max"))
    matched = match.group_by(DOMAIN).agg(pl.col("to_psu").is_not_null().sum().alias("matched"))
    var = stratified_variance(d, ["measure"], n_h)
    df = pl.min_horizontal(pl.max_horizontal(pl.col("df_satterthwaite"), pl.lit(1.0)),
                           pl.max_horizontal(pl.col("df_max"), pl.lit(1)))
    return (var.join(counted, on=DOMAIN, how="left").join(matched, on=DOMAIN, how="left")
            .with_columns(pl.col("matched").fill_null(0))
            .select(DOMAIN, "measure", "var", pl.coalesce(df, pl.col("df_max").clip(1)).cast(pl.Float64).alias("df"),
                    pl.col("matched").cast(pl.Int64),
                    pl.when(pl.col("matched") > 0).then(pl.lit(PAIRED)).otherwise(pl.lit(INDEPENDENT)).alias("change_method"))
            .sort(DOMAIN, "measure"))
