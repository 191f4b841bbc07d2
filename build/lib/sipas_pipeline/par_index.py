"""PAR INDEX points per sub-criterion, criterion and field, totals and groups, per province."""

from __future__ import annotations

import polars as pl

from sipas_pipeline.errors import ComputeError
from sipas_pipeline.methodology import Methodology


def official_points(m: Methodology, official: pl.DataFrame) -> pl.DataFrame:
    """survey_official sub-criteria: max x (mean rating - min) / (max - min) over the province's ratings."""
    items = (m.forms["official"].filter(pl.col("refs").str.starts_with("par:"))
             .select(pl.col("field_id").alias("item"), pl.col("refs").str.strip_prefix("par:").alias("subcriterion_id")))
    scale = m.meta["par"].get("official_rating", {"min": 1, "max": 5})
    lo, hi = float(scale["min"]), float(scale["max"])
    # sums and counts per province and item first (one small row per province), then per sub-criterion:
    # the mean of all its ratings = sum of the sums / sum of the counts (ratings are integers: exact)
    cols = items["item"].to_list()
    per_item = (official.lazy().group_by("province_code")
                .agg(*[pl.col(c).cast(pl.Float64).sum().alias(f"s:{c}") for c in cols],
                     *[pl.col(c).count().alias(f"n:{c}") for c in cols]).collect()
                .unpivot(index="province_code", variable_name="what", value_name="x")
                .with_columns(pl.col("what").str.split_exact(":", 1).struct.rename_fields(["stat", "item"]))
                .unnest("what"))
    means = (per_item.join(items, on="item").sort("province_code", "subcriterion_id", "item", "stat")
             .group_by("province_code", "subcriterion_id")
             .agg((pl.col("x").filter(pl.col("stat") == "s").sum() / pl.col("x").filter(pl.col("stat") == "n").sum())
                  .alias("mean_rating")))
    subs = m.par_subcriteria.filter(pl.col("kind") == "survey_official").select("subcriterion_id", "max_points")
    return means.join(subs, on="subcriterion_id").select(
        "province_code", "subcriterion_id", (pl.col("max_points") * (pl.col("mean_rating") - lo) / (hi - lo)).alias("points"))


def citizen_points(m: Methodology, indicators: pl.DataFrame, tree: pl.DataFrame) -> pl.DataFrame:
    """survey_citizen sub-criteria: max x (SIPAS result named by `source`) / 100."""
    results = pl.concat([
        tree.select("province_code", pl.when(pl.col("level") == "sipas").then(pl.lit("sipas"))
                    .otherwise(pl.col("level") + ":" + pl.col("node")).alias("source"), "value"),
        indicators.select("province_code", (pl.lit("indicator:") + pl.col("indicator_id")).alias("source"), "value"),
    ])
    subs = m.par_subcriteria.filter(pl.col("kind") == "survey_citizen").select("subcriterion_id", "source", "max_points")
    return subs.join(results, on="source").select(
        "province_code", "subcriterion_id", (pl.col("max_points") * pl.col("value") / 100).alias("points"))


def appraisal_points(m: Methodology, appraisal: pl.DataFrame, provinces: pl.DataFrame) -> pl.DataFrame:
    """Appraised points of the appraisal sub-criteria of `provinces`, checked against their maxima."""
    subs = m.par_subcriteria.filter(pl.col("kind") == "appraisal").select("subcriterion_id", "max_points")
    got = provinces.join(subs, how="cross").join(
        appraisal.select("province_code", "subcriterion_id", pl.col("appraised_points").alias("points"),
                         pl.col("self_points")), on=["province_code", "subcriterion_id"], how="left")
    problems = []
    for r in got.filter(pl.col("points").is_null()).head(20).iter_rows(named=True):
        problems.append(f"province {r['province_code']}, sub-criterion {r['subcriterion_id']}: no appraised points")
    for r in got.filter((pl.col("points") < 0) | (pl.col("points") > pl.col("max_points") + 1e-9)).head(20).iter_rows(named=True):
        problems.append(f"province {r['province_code']}, sub-criterion {r['subcriterion_id']}: "
                        f"appraised {r['points']:g} outside 0..{r['max_points']:g}")
    if problems:
        raise ComputeError("appraisal points cannot be used:\n  " + "\n  ".join(problems))
    return got.select("province_code", "subcriterion_id", "points", "self_points")


def par_points(m: Methodology, official: pl.DataFrame, appraisal: pl.DataFrame, indicators: pl.DataFrame,
               tree: pl.DataFrame) -> pl.DataFrame:
    """Points per province and sub-criterion, with kind, criterion, field and maximum."""
    provinces = pl.concat([f.select("province_code") for f in (official, appraisal, indicators)]).unique()
    pts = pl.concat([
        appraisal_points(m, appraisal, provinces),
        official_points(m, official).with_columns(pl.lit(None, pl.Float64).alias("self_points")),
        citizen_points(m, indicators, tree).with_columns(pl.lit(None, pl.Float64).alias("self_points")),
    ])
    subs = m.par_subcriteria.select("subcriterion_id", "criterion_id", "field_id", "kind", "max_points")
    return pts.join(subs, on="subcriterion_id").sort("province_code", "subcriterion_id")


def par_totals(m: Methodology, points: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(points per criterion and field, totals with group) per province."""
    # sums in sub-criterion order inside each group (sort_by): identical floats in every run
    def total(col: str = "points", where: pl.Expr | None = None) -> pl.Expr:
        if where is None:
            return pl.col(col).sort_by("subcriterion_id").sum()
        return pl.col(col).filter(where).sort_by(pl.col("subcriterion_id").filter(where)).sum()

    levels = pl.concat([
        points.group_by("province_code", pl.col("criterion_id").alias("node"))
        .agg(total(), total("max_points")).with_columns(pl.lit("criterion").alias("level")),
        points.group_by("province_code", pl.col("field_id").cast(pl.Utf8).alias("node"))
        .agg(total(), total("max_points")).with_columns(pl.lit("field").alias("level")),
    ]).select("province_code", "level", "node", "points", "max_points").sort("province_code", "level", "node")
    totals = points.group_by("province_code").agg(
        total().alias("par_index"),
        total(where=pl.col("kind") == "appraisal").alias("appraisal_points"),
        total(where=pl.col("kind") != "appraisal").alias("survey_points"))
    return levels, totals.with_columns(group_of(m, pl.col("par_index")).alias("group")).sort("province_code")


def group_of(m: Methodology, value: pl.Expr) -> pl.Expr:
    """The group (A, B, …) of a PAR INDEX value by the year's bounds (lower bound inclusive)."""
    expr = None
    for group, bound in m.group_bounds:
        cond = value >= bound
        expr = pl.when(cond).then(pl.lit(group)) if expr is None else expr.when(cond).then(pl.lit(group))
    return expr.otherwise(pl.lit(None, pl.Utf8))
