"""SIPAS indicators and indices from silver citizens' forms, as generated Polars expressions.

One group-by over the forms counts every indicator's hits and answers per province, stratum, PSU and
weight; the weighted numerator and denominator, and the PSU totals of each indicator's linearised score
(`variance.py`), follow from those counts. A node of the SIPAS tree is a linear combination of its
province's indicators, so its value and its design-based variance come from the same coefficients.
Regions and the nation are the unweighted mean of their provinces (each province counts once, as in
the published national mean), with numerators and denominators summed beside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sipas_pipeline.methodology import Methodology
from sipas_pipeline.variance import (
    DOMAIN,
    PSU,
    STRATUM,
    add_uncertainty,
    combine_scores,
    design_frame,
    ordered_sums,
    ratio_scores,
    strata_psus,
    stratified_variance,
)


@dataclass(frozen=True)
class IndicatorEstimates:
    """Indicators per province with what their uncertainty needs.

    values: province_code, indicator_id, value (%), numerator, denominator, n, var (of the 0-1 proportion), df;
    scores: PSU totals `z` of each indicator's linearised score (province_code, stratum, psu, indicator_id, z);
    n_h: PSUs per stratum; respondents: forms per province."""

    values: pl.DataFrame
    scores: pl.DataFrame
    n_h: pl.DataFrame
    respondents: pl.DataFrame

    def filter(self, keep: pl.Expr) -> IndicatorEstimates:
        """The estimates of the provinces where `keep` (an expression on `province_code`) holds (`n_h`, keyed
        by stratum and read through joins, stays whole)."""
        return IndicatorEstimates(self.values.filter(keep), self.scores.filter(keep), self.n_h, self.respondents.filter(keep))


def with_code_masks(m: Methodology, frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """`frame` with one text column `<question>#codes` per multi-select question: its space-separated codes
    normalised once per question (single spaces, no leading zeros) and framed by spaces, so that an indicator
    tests " c " for each counting code c."""
    exprs = [(pl.lit(" ") + pl.col(q).str.replace_all(r"\s+", " ").str.replace_all(r"(^| )0+(\d)", "$1$2") + pl.lit(" "))
             .alias(f"{q}#codes") for q in m.forms["citizen"].filter(pl.col("dtype") == "multi")["field_id"]]
    return frame.with_columns(exprs) if exprs else frame


def answer_flags(m: Methodology, indicators: pl.DataFrame) -> dict[str, tuple[pl.Expr, pl.Expr]]:
    """Per indicator, two row-level booleans (never null): answered ("don't know" and blanks are not answers)
    and counted (answered with a counting code). Multi-select questions read the `with_code_masks` columns."""
    form = {r["field_id"]: r for r in m.forms["citizen"].iter_rows(named=True)}
    flags = {}
    for ind in indicators.iter_rows(named=True):
        q = form[ind["question_id"]]
        col = pl.col(ind["question_id"])
        codes = [int(c) for c in ind["counting_codes"].split("|")]
        if q["dtype"] == "multi":
            answered = col.is_not_null()
            hit = pl.col(f"{ind['question_id']}#codes").str.contains_any([f" {c} " for c in codes])
        else:
            answered = col.is_not_null() & ((col != int(q["dont_know"])) if q["dont_know"] else pl.lit(True))
            contiguous = codes == list(range(min(codes), max(codes) + 1))
            hit = col.is_between(min(codes), max(codes)) if contiguous else col.is_in(codes)
        answered = answered.fill_null(False)
        flags[ind["indicator_id"]] = (answered, answered & hit.fill_null(False))
    return flags


def _count_exprs(m: Methodology, indicators: pl.DataFrame) -> list[pl.Expr]:
    """Two integer counts per indicator, as flat columns `<id>:hits|n`: counted answers and answers. Integer
    sums are exact in any order."""
    return [e for i, (answered, hit) in answer_flags(m, indicators).items()
            for e in (hit.sum().cast(pl.Int64).alias(f"{i}:hits"), answered.sum().cast(pl.Int64).alias(f"{i}:n"))]


def indicator_cells(m: Methodology, citizen: pl.DataFrame | pl.LazyFrame,
                    types: list[str] | None = None) -> pl.DataFrame:
    """The reduction of citizens' forms to integer counts, the sufficient statistics of every estimate: one
    row per (province, stratum, PSU, weight) with `forms` and, per indicator, `<id>:hits` and `<id>:n` (counted
    answers and answers; never null). Forms sharing a weight (a village's respondents) collapse into one row, so
    the counts of two sets of forms add (`add_cells`) to the counts of their union, exactly and in any order.
    `citizen` may be a LazyFrame (e.g. `pl.scan_parquet` of silver): it is then aggregated by the streaming
    engine, reading only the columns used. `types` limits the indicator types. Sorted by the keys."""
    design = m.design
    chosen = m.indicators.filter(pl.col("type").is_in(types)) if types else m.indicators
    lazy = isinstance(citizen, pl.LazyFrame)
    keys = CELL_KEYS
    engine = "streaming" if lazy else "auto"
    forms = design_frame(citizen, design)
    multi = set(m.forms["citizen"].filter(pl.col("dtype") == "multi")["field_id"])
    single = chosen.filter(~pl.col("question_id").is_in(multi))
    wide = forms.group_by(keys).agg(pl.len().alias("forms"), *_count_exprs(m, single)).collect(engine=engine).sort(keys)
    for q in sorted(multi & set(chosen["question_id"])):
        # a multi-select answer is text with few distinct values: count the forms per value first, then test the
        # codes once per distinct value (not once per form)
        these = chosen.filter(pl.col("question_id") == q)
        per_value = forms.group_by(*keys, q).agg(pl.len().alias("k")).collect(engine=engine)
        counted = (with_code_masks(m, per_value).group_by(keys).agg(
            [(e.cast(pl.Int64) * pl.col("k")).sum().alias(f"{i}:{w}")
             for i, (answered, hit) in answer_flags(m, these).items() for w, e in (("hits", hit), ("n", answered))]))
        wide = wide.join(counted, on=keys, how="left", nulls_equal=True).sort(keys)
    ids = chosen["indicator_id"].to_list()
    counts = [f"{i}:{w}" for i in ids for w in ("hits", "n")]
    return wide.select(*keys, pl.col("forms").cast(pl.Int64), *[pl.col(c).fill_null(0).cast(pl.Int64) for c in counts])


CELL_KEYS = [DOMAIN, STRATUM, PSU, "weight"]


def add_cells(*cells: pl.DataFrame, sign: list[int] | None = None) -> pl.DataFrame:
    """The cells of the union of disjoint sets of forms: the counts of each (province, stratum, PSU, weight)
    summed (integers: exact in any order); with `sign` (+1 / -1 per frame) a set of forms can be taken out again.
    Cells left with no form are dropped; sorted by the keys."""
    signs = sign or [1] * len(cells)
    counts = [c for c in cells[0].columns if c not in CELL_KEYS]
    both = pl.concat([c.with_columns(pl.col(counts) * s) for c, s in zip(cells, signs, strict=True)], how="vertical")
    return (both.group_by(CELL_KEYS).agg(pl.col(counts).sum()).filter(pl.col("forms") != 0)
            .select(CELL_KEYS + counts).sort(CELL_KEYS))


def cell_indicators(cells: pl.DataFrame) -> list[str]:
    """The indicator ids whose counts a cells frame holds, in its column order."""
    return [c.removesuffix(":hits") for c in cells.columns if c.endswith(":hits")]


def estimate_indicators(m: Methodology, citizen: pl.DataFrame | pl.LazyFrame,
                        types: list[str] | None = None) -> IndicatorEstimates:
    """Every indicator per province: value, numerator, denominator, n and its design-based variance, from the
    forms' integer counts (`indicator_cells`, then `estimates_from_cells`)."""
    return estimates_from_cells(m, indicator_cells(m, citizen, types))


def estimates_from_cells(m: Methodology, cells: pl.DataFrame) -> IndicatorEstimates:
    """The estimator: integer counts per (province, stratum, PSU, weight) (`indicator_cells`, or the sum of several
    batches' cells) -> every indicator's value, numerator, denominator, n and design-based variance. The weighted
    PSU sums run over the small frame in a fixed order (the same bits for the same counts, however they were
    gathered)."""
    design = m.design
    wide = cells.sort(CELL_KEYS)
    psus = wide.select(DOMAIN, STRATUM, PSU).unique().sort(DOMAIN, STRATUM, PSU)
    n_h, df = strata_psus(psus, design)
    respondents = wide.group_by(DOMAIN).agg(pl.col("forms").sum().alias("n")).sort(DOMAIN)
    # PSU sums of the weighted counts, every indicator at once: `wide` is sorted by (province, stratum, PSU,
    # weight), so each PSU's rows are contiguous and numpy adds them in weight order (the same bits every run)
    ids = cell_indicators(wide)
    new_psu = pl.any_horizontal([pl.col(k).ne_missing(pl.col(k).shift(1)) for k in (DOMAIN, STRATUM, PSU)]).fill_null(True)
    starts = np.flatnonzero(wide.select(new_psu.alias("new")).to_series().to_numpy())
    w = wide["weight"].to_numpy()[:, None]
    hits = wide.select(pl.col(f"{i}:hits").fill_null(0) for i in ids).to_numpy().astype(np.float64)
    answers = wide.select(pl.col(f"{i}:n").fill_null(0) for i in ids).to_numpy().astype(np.float64)
    y, a, n = (np.add.reduceat(x, starts, axis=0) if len(starts) else x[:0] for x in (hits * w, answers * w, answers))
    at = wide.select(DOMAIN, STRATUM, PSU)[starts]
    psu_sums = pl.DataFrame({**{k: np.repeat(at[k].to_numpy(), len(ids)) for k in (DOMAIN, STRATUM, PSU)},
                             "indicator_id": np.tile(np.array(ids, dtype=object), len(starts)),
                             "y": y.ravel(), "a": a.ravel(), "n": n.ravel().astype(np.int64)},
                            schema={DOMAIN: pl.Utf8, STRATUM: pl.Utf8, PSU: pl.Utf8, "indicator_id": pl.Utf8,
                                    "y": pl.Float64, "a": pl.Float64, "n": pl.Int64})
    totals, scores = ratio_scores(psu_sums, ["indicator_id"])
    counts = psu_sums.group_by(DOMAIN, "indicator_id").agg(pl.col("n").sum())
    var = stratified_variance(scores, ["indicator_id"], n_h)
    values = (totals.join(counts, on=[DOMAIN, "indicator_id"]).join(var, on=[DOMAIN, "indicator_id"], how="left")
              .join(df, on=DOMAIN, how="left")
              .select(DOMAIN, "indicator_id", (100 * pl.col("R")).alias("value"), pl.col("Y").alias("numerator"),
                      pl.col("A").alias("denominator"), "n", pl.when(pl.col("A") > 0).then(pl.col("var")).alias("var"), "df")
              .sort(DOMAIN, "indicator_id"))
    return IndicatorEstimates(values=values, scores=scores, n_h=n_h, respondents=respondents)


def province_indicators(m: Methodology, citizen: pl.DataFrame | pl.LazyFrame,
                        types: list[str] | None = None) -> pl.DataFrame:
    """Per province and indicator: value (%), numerator, denominator (weighted), n, df and the uncertainty
    columns (se, ci_low, ci_high, deff, n_eff, small_sample), design-based (see `estimate_indicators`)."""
    return add_uncertainty(estimate_indicators(m, citizen, types).values, m.design, proportion=True)


def tree_coefficients(m: Methodology, values: pl.DataFrame) -> pl.DataFrame:
    """Each node of the SIPAS tree (element, part, SIPAS) per province as a linear combination of indicators:
    province_code, level, node, indicator_id, c (node value = sum of c x indicator value). A node is the
    weighted mean of its children that have a value (a node none of whose children has one has none)."""
    members = m.indicators.filter(pl.col("in_index") == "yes").select("indicator_id", "element", pl.col("weight").alias("w"))
    present = values.filter(pl.col("value").is_not_null()).select(DOMAIN, "indicator_id")
    el = (present.join(members, on="indicator_id").sort(DOMAIN, "element", "indicator_id")
          .with_columns((pl.col("w") / pl.col("w").sum().over(DOMAIN, "element")).alias("c")))
    parts = (el.select(DOMAIN, "element").unique().join(m.tree.select("element", "part", pl.col("weight").alias("we")),
                                                         on="element").sort(DOMAIN, "part", "element")
             .with_columns((pl.col("we") / pl.col("we").sum().over(DOMAIN, "part")).alias("ce")))
    tops = (parts.select(DOMAIN, "part").unique().join(m.parts.select("part", pl.col("weight").alias("wp")), on="part")
            .sort(DOMAIN, "part").with_columns((pl.col("wp") / pl.col("wp").sum().over(DOMAIN)).alias("cp")))
    via_part = el.join(parts.select(DOMAIN, "element", "part", "ce"), on=[DOMAIN, "element"])
    via_top = via_part.join(tops.select(DOMAIN, "part", "cp"), on=[DOMAIN, "part"])
    return pl.concat([
        el.select(DOMAIN, pl.lit("element").alias("level"), pl.col("element").alias("node"), "indicator_id", "c"),
        via_part.select(DOMAIN, pl.lit("part").alias("level"), pl.col("part").alias("node"), "indicator_id",
                        (pl.col("c") * pl.col("ce")).alias("c")),
        via_top.select(DOMAIN, pl.lit("sipas").alias("level"), pl.lit("SIPAS").alias("node"), "indicator_id",
                       (pl.col("c") * pl.col("ce") * pl.col("cp")).alias("c")),
    ]).sort(DOMAIN, "level", "node", "indicator_id")


def source_coefficients(m: Methodology, values: pl.DataFrame) -> pl.DataFrame:
    """Every SIPAS result a PAR sub-criterion may name (`sipas`, `part:<id>`, `element:<id>`, `indicator:<id>`) as
    a linear combination of indicators: province_code, source, indicator_id, c."""
    tree = tree_coefficients(m, values).select(
        DOMAIN, pl.when(pl.col("level") == "sipas").then(pl.lit("sipas")).otherwise(pl.col("level") + ":" + pl.col("node"))
        .alias("source"), "indicator_id", "c")
    identity = values.filter(pl.col("value").is_not_null()).select(
        DOMAIN, (pl.lit("indicator:") + pl.col("indicator_id")).alias("source"), "indicator_id", pl.lit(1.0).alias("c"))
    return pl.concat([tree, identity])


def combinations(est: IndicatorEstimates, coefficients: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Linear combinations of indicators per province: `coefficients` (province_code, indicator_id, *keys, c) ->
    province_code, *keys, value (%), var (of the value, percentage points squared), df, n (the province's forms).
    The variance comes from the combined linearised score, so every covariance counts."""
    g = [DOMAIN, *keys]
    value = ordered_sums(coefficients.join(est.values.select(DOMAIN, "indicator_id", "value"), on=[DOMAIN, "indicator_id"]),
                         g, {"value": pl.col("c") * pl.col("value")}, ["indicator_id"])
    var = stratified_variance(combine_scores(est.scores, coefficients, "indicator_id", keys), keys, est.n_h)
    df = est.values.select(DOMAIN, "df").unique(DOMAIN)
    # the composite's Satterthwaite df, within [1, PSUs - strata]; the plain count where it has no variance
    satterthwaite = pl.min_horizontal(pl.max_horizontal(pl.col("df_satterthwaite"), pl.lit(1.0)), pl.col("df"))
    return (value.join(var, on=g, how="left").with_columns(pl.col("var") * 1e4).join(df, on=DOMAIN, how="left")
            .with_columns(pl.coalesce(satterthwaite, pl.col("df")).cast(pl.Float64).alias("df"))
            .join(est.respondents, on=DOMAIN, how="left").select(*g, "value", "var", "df", "n").sort(*g))


def sipas_tree(m: Methodology, est: IndicatorEstimates) -> pl.DataFrame:
    """Element / policy-group, part and SIPAS per province (weighted means up the tree), with the tree's
    design-based variance `var` (percentage points squared), df and n (forms), before `add_uncertainty`."""
    nodes = pl.concat([pl.DataFrame({"level": ["sipas"], "node": ["SIPAS"]}),
                       m.parts.select(pl.lit("part").alias("level"), pl.col("part").alias("node")),
                       m.tree.select(pl.lit("element").alias("level"), pl.col("element").alias("node"))])
    every = est.respondents.select(DOMAIN).join(nodes, how="cross")  # a node without a value keeps a (null) row
    found = combinations(est, tree_coefficients(m, est.values), ["level", "node"])
    return (every.join(found, on=[DOMAIN, "level", "node"], how="left")
            .join(est.values.select(DOMAIN, "df").unique(DOMAIN), on=DOMAIN, how="left", suffix="_p")
            .join(est.respondents, on=DOMAIN, how="left", suffix="_p")
            .select(DOMAIN, "level", "node", "value", "var", pl.coalesce("df", pl.col("df_p").cast(pl.Float64)).alias("df"),
                    pl.coalesce("n", "n_p").cast(pl.Int64).alias("n")).sort(DOMAIN, "level", "node"))


def all_units(m: Methodology, by_province: pl.DataFrame, keys: list[str], sums: list[str], proportion: bool) -> pl.DataFrame:
    """Province, region and nation rows (`roll_up`), each with its uncertainty columns (`add_uncertainty`)."""
    rolled = roll_up(m, by_province, keys, sums).sort("unit_level", "unit_code", *keys)
    return add_uncertainty(rolled, m.design, proportion)


def roll_up(m: Methodology, by_province: pl.DataFrame, keys: list[str], sums: list[str]) -> pl.DataFrame:
    """Province rows + region and nation rows: the mean of their provinces' values, sums of `sums`. With a
    `var` column (and `df`): provinces are independent strata, so the variance of the unweighted mean of k
    provinces is the sum of their variances / k^2, and its degrees of freedom the sum of theirs."""
    prov = (by_province.join(m.provinces.select("province_code", "region_code"), on="province_code")
            .sort("province_code", *keys))
    # sort_by inside the aggregation: each group is summed in province order, the same in every run
    agg = [pl.col("value").sort_by("province_code").mean(), *[pl.col(c).sort_by("province_code").sum() for c in sums]]
    extra = []
    if "var" in by_province.columns:
        k = pl.col("value").count()
        present = pl.col("value").is_not_null()
        agg += [pl.when(k > 0).then(pl.when(present).then(pl.col("var")).sort_by("province_code").sum() / k ** 2).alias("var"),
                pl.when(k > 0).then(pl.when(present).then(pl.col("df")).sort_by("province_code").sum()).alias("df")]
        extra = ["var", "df"]
    region = prov.group_by("region_code", *keys).agg(agg).rename({"region_code": "unit_code"})
    nation = prov.group_by(*keys).agg(agg).with_columns(pl.lit("VN").alias("unit_code"))
    cols = ["unit_level", "unit_code", *keys, "value", *sums, *extra]
    return pl.concat([
        by_province.rename({"province_code": "unit_code"}).with_columns(pl.lit("province").alias("unit_level")).select(cols),
        region.with_columns(pl.lit("region").alias("unit_level")).select(cols),
        nation.with_columns(pl.lit("nation").alias("unit_level")).select(cols),
    ], how="diagonal_relaxed")
