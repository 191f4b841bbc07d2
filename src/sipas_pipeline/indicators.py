"""SIPAS indicators and indices from silver citizens' forms, as generated Polars expressions.

One group-by over the forms gives every indicator's weighted numerator and denominator per
province; regions and the nation are the unweighted mean of their provinces (each province counts
once, as in the published national mean), with numerators and denominators summed beside.
"""

from __future__ import annotations

import polars as pl

from sipas_pipeline.methodology import Methodology

EXACT = 2.0**60  # fixed-point scale: every bit of a float from 2^-8 to 2^40 is a whole number at this scale


def exact_sum(expr: pl.Expr) -> pl.Expr:
    """Sum of floats computed exactly, as 128-bit integers at scale 2^60 and rounded once at the end: the
    same bits whatever the order of the rows, their chunks or the number of threads (a float sum of partial
    sums is not: its last bits follow the order, which a multi-threaded group-by does not fix)."""
    return from_exact(to_exact(expr).sum())


def to_exact(expr: pl.Expr) -> pl.Expr:
    """A float as a 128-bit integer at scale 2^60 (exact for floats from 2^-8 to 2^40): sums of these are exact."""
    return (expr * EXACT).cast(pl.Int128)


def from_exact(expr: pl.Expr) -> pl.Expr:
    """An exact sum (see to_exact) back to a float, rounded once."""
    return expr.cast(pl.Float64) / EXACT


def _answer_exprs(m: Methodology, indicators: pl.DataFrame) -> list[pl.Expr]:
    """Four sums per indicator, as flat columns `<id>:num|den|n|w2`: weighted hits, weighted answers,
    answers, squared weights of answers (for the effective sample size). Weighted sums are exact integer
    sums of the columns `_w` and `_w2` (weight and squared weight, see to_exact)."""
    form = {r["field_id"]: r for r in m.forms["citizen"].iter_rows(named=True)}
    exprs = []
    for ind in indicators.iter_rows(named=True):
        q = form[ind["question_id"]]
        col = pl.col(ind["question_id"])
        codes = [int(c) for c in ind["counting_codes"].split("|")]
        if q["dtype"] == "multi":
            answered = col.is_not_null()
            hit = col.str.split(" ").list.eval(pl.element().cast(pl.Int64, strict=False).is_in(codes)).list.any()
        else:
            answered = col.is_not_null() & ((col != int(q["dont_know"])) if q["dont_know"] else pl.lit(True))
            hit = col.is_in(codes)
        i = ind["indicator_id"]
        zero = pl.lit(0, pl.Int128)
        exprs += [pl.when(answered & hit).then(pl.col("_w")).otherwise(zero).sum().alias(f"{i}:num"),
                  pl.when(answered).then(pl.col("_w")).otherwise(zero).sum().alias(f"{i}:den"),
                  answered.fill_null(False).sum().cast(pl.Int64).alias(f"{i}:n"),
                  pl.when(answered).then(pl.col("_w2")).otherwise(zero).sum().alias(f"{i}:w2")]
    return exprs


def province_indicators(m: Methodology, citizen: pl.DataFrame | pl.LazyFrame,
                        types: list[str] | None = None) -> pl.DataFrame:
    """Per province and indicator: value (%), numerator, denominator (weighted), n, standard error.
    `citizen` may be a LazyFrame (e.g. `pl.scan_parquet` of silver): it is then aggregated by the
    streaming engine, reading only the columns the indicators use. `types` limits the indicator types."""
    wcol = m.meta["sipas"].get("weights_column")
    chosen = m.indicators.filter(pl.col("type").is_in(types)) if types else m.indicators
    lazy = isinstance(citizen, pl.LazyFrame)
    names = citizen.collect_schema().names() if lazy else citizen.columns
    weight = pl.col(wcol).cast(pl.Float64) if wcol and wcol in names else pl.lit(1.0)
    wide = (citizen.lazy().with_columns(to_exact(weight).alias("_w"), to_exact(weight * weight).alias("_w2"))
            .group_by("province_code").agg(_answer_exprs(m, chosen))
            .collect(engine="streaming" if lazy else "auto"))
    long = pl.concat([wide.select("province_code", pl.lit(i).alias("indicator_id"),
                                  *[(pl.col(f"{i}:{k}") if k == "n" else from_exact(pl.col(f"{i}:{k}"))).alias(name)
                                    for k, name in (("num", "numerator"), ("den", "denominator"), ("n", "n"), ("w2", "w2"))])
                      for i in chosen["indicator_id"]])
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
    some = w_present.sum() > 0  # a node none of whose children has a value has no value (not NaN)
    return [pl.when(some).then(exact_sum(pl.col("value") * pl.col("w")) / exact_sum(w_present)).alias("value"),
            pl.when(some).then(exact_sum((pl.col("se") * pl.col("w")) ** 2).sqrt() / exact_sum(w_present)).alias("se")]


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
