"""SIPAS indicators and indices from silver citizens' forms, as generated Polars expressions.

One group-by over the forms gives every indicator's weighted numerator and denominator per
province; regions and the nation are the unweighted mean of their provinces (each province counts
once, as in the published national mean), with numerators and denominators summed beside.
"""

from __future__ import annotations

import polars as pl

from sipas_pipeline.methodology import Methodology


def _answer_exprs(m: Methodology, weight: pl.Expr) -> list[pl.Expr]:
    form = {r["field_id"]: r for r in m.forms["citizen"].iter_rows(named=True)}
    exprs = []
    for ind in m.indicators.iter_rows(named=True):
        q = form[ind["question_id"]]
        col = pl.col(ind["question_id"])
        codes = [int(c) for c in ind["counting_codes"].split("|")]
        if q["dtype"] == "multi":
            answered = col.is_not_null()
            hit = col.str.split(" ").list.eval(pl.element().cast(pl.Int64, strict=False).is_in(codes)).list.any()
        else:
            answered = col.is_not_null() & ((col != int(q["dont_know"])) if q["dont_know"] else pl.lit(True))
            hit = col.is_in(codes)
        a = answered.fill_null(False).cast(pl.Float64)
        exprs.append(pl.struct(
            (weight * a * hit.fill_null(False).cast(pl.Float64)).sum().alias("numerator"),
            (weight * a).sum().alias("denominator"),
            a.sum().cast(pl.Int64).alias("n"),
            (weight * weight * a).sum().alias("w2"),
        ).alias(ind["indicator_id"]))
    return exprs


def province_indicators(m: Methodology, citizen: pl.DataFrame) -> pl.DataFrame:
    """Per province and indicator: value (%), numerator, denominator (weighted), n, standard error."""
    wcol = m.meta["sipas"].get("weights_column")
    weight = pl.col(wcol).cast(pl.Float64) if wcol and wcol in citizen.columns else pl.lit(1.0)
    wide = citizen.lazy().group_by("province_code").agg(_answer_exprs(m, weight)).collect()
    ids = m.indicators["indicator_id"].to_list()
    long = (wide.unpivot(index="province_code", on=ids, variable_name="indicator_id", value_name="s")
            .unnest("s"))
    p = pl.col("numerator") / pl.col("denominator")
    n_eff = pl.col("denominator") ** 2 / pl.col("w2")
    return (long.with_columns(
        pl.when(pl.col("denominator") > 0).then(100 * p).alias("value"),
        pl.when(pl.col("denominator") > 0).then(100 * (p * (1 - p) / n_eff).sqrt()).alias("se"),
    ).select("province_code", "indicator_id", "value", "numerator", "denominator", "n", "se")
     .sort("province_code", "indicator_id"))


def _weighted_mean() -> list[pl.Expr]:
    """Mean of `value` weighted by `w` over the non-null values, and its standard error
    (children taken as independent)."""
    w_present = pl.col("w").filter(pl.col("value").is_not_null())
    return [((pl.col("value") * pl.col("w")).sum() / w_present.sum()).alias("value"),
            ((pl.col("se") * pl.col("w")) ** 2).sum().sqrt().truediv(pl.col("w").sum()).alias("se")]


def sipas_tree(m: Methodology, ind: pl.DataFrame) -> pl.DataFrame:
    """Element / policy-group, part and SIPAS values per province: weighted means up the tree."""
    members = m.indicators.filter(pl.col("in_index") == "yes").select("indicator_id", "element", pl.col("weight").alias("w"))
    el = ind.join(members, on="indicator_id", maintain_order="left").group_by("province_code", "element").agg(_weighted_mean())
    el = el.sort("province_code", "element")  # fixed order in, identical float sums out
    parts = (el.join(m.tree.select("element", "part", pl.col("weight").alias("w")), on="element", maintain_order="left")
             .group_by("province_code", "part").agg(_weighted_mean()))
    parts = parts.sort("province_code", "part")
    top = (parts.join(m.parts.select("part", pl.col("weight").alias("w")), on="part", maintain_order="left")
           .group_by("province_code").agg(_weighted_mean()))
    return pl.concat([
        el.select("province_code", pl.lit("element").alias("level"), pl.col("element").alias("node"), "value", "se"),
        parts.select("province_code", pl.lit("part").alias("level"), pl.col("part").alias("node"), "value", "se"),
        top.select("province_code", pl.lit("sipas").alias("level"), pl.lit("SIPAS").alias("node"), "value", "se"),
    ]).sort("province_code", "level", "node")


def roll_up(m: Methodology, by_province: pl.DataFrame, keys: list[str], sums: list[str]) -> pl.DataFrame:
    """Province rows + region and nation rows: the mean of their provinces' values, sums of `sums`."""
    prov = (by_province.join(m.provinces.select("province_code", "region_code"), on="province_code")
            .sort("province_code", *keys))
    # sort_by inside the aggregation: each group is summed in province order, the same in every run
    agg = [pl.col("value").sort_by("province_code").mean(), *[pl.col(c).sort_by("province_code").sum() for c in sums]]
    region = prov.group_by("region_code", *keys).agg(agg).rename({"region_code": "unit_code"})
    nation = prov.group_by(*keys).agg(agg).with_columns(pl.lit("VN").alias("unit_code"))
    cols = ["unit_level", "unit_code", *keys, "value", *sums]
    return pl.concat([
        by_province.rename({"province_code": "unit_code"}).with_columns(pl.lit("province").alias("unit_level")).select(cols),
        region.with_columns(pl.lit("region").alias("unit_level")).select(cols),
        nation.with_columns(pl.lit("nation").alias("unit_level")).select(cols),
    ], how="diagonal_relaxed")
