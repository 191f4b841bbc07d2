"""Two contrasts published beside the estimates, each with a design-based standard error:

- `policy_minus_service`: a unit's satisfaction with public policy minus its satisfaction with public
  administrative services. The same respondents answer both parts, so the two are correlated: the gap is one
  linear combination of the indicators (the policy part's coefficients minus the service part's) and its
  variance comes from the combined linearised score (`indicators.combinations`), never from
  se_policy^2 + se_service^2. Regions and the nation: the mean of their provinces' gaps (provinces independent).
- `minus_nation`: a province's value minus the national mean (the unweighted mean of the k provinces, the
  province itself among them). d_j = (1 - 1/k) x_j - (1/k) sum_{i != j} x_i, provinces independent, so
  var(d_j) = (1 - 2/k) v_j + sum_i v_i / k^2, with Satterthwaite degrees of freedom over the k terms.

`significant`: the 95% (the design's confidence) t interval excludes 0; null without a standard error."""

from __future__ import annotations

import numpy as np
import polars as pl

from sipas_pipeline.indicators import IndicatorEstimates, combinations, roll_up, tree_coefficients
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.variance import DOMAIN, t_interval

COLUMNS = ["unit_level", "unit_code", "contrast", "measure", "value", "se", "df", "ci_low", "ci_high", "significant"]


def part_gap(m: Methodology, est: IndicatorEstimates) -> pl.DataFrame:
    """Per province: the first part minus the second (policy - service) as one combination of the indicators:
    province_code, contrast, value, var (percentage points squared), df."""
    first, second = m.parts["part"].to_list()[:2]
    parts = tree_coefficients(m, est.values).filter(pl.col("level") == "part")
    coefficients = (parts.filter(pl.col("node").is_in([first, second]))
                    .with_columns(pl.when(pl.col("node") == first).then(pl.col("c")).otherwise(-pl.col("c")).alias("c"))
                    .group_by(DOMAIN, "indicator_id").agg(pl.col("c").sum()).sort(DOMAIN, "indicator_id")
                    .with_columns(pl.lit("policy_minus_service").alias("contrast")))
    return combinations(est, coefficients, ["contrast"]).select(DOMAIN, "contrast", "value", "var", "df")


def minus_nation(measures: pl.DataFrame) -> pl.DataFrame:
    """`measures` (province_code, measure, value, se, df) -> province_code, measure, value (the province minus
    the mean of the provinces with a value), var and Satterthwaite df of that difference."""
    out = []
    for measure in sorted(measures["measure"].unique().to_list()):
        part = measures.filter((pl.col("measure") == measure) & pl.col("value").is_not_null()).sort(DOMAIN)
        k = part.height
        if k < 2:
            continue
        x, se, df = (part[c].cast(pl.Float64).to_numpy() for c in ("value", "se", "df"))
        v = se ** 2
        var = (1 - 2 / k) * v + v.sum() / k ** 2
        # Satterthwaite over the k independent terms: own (1 - 1/k)^2 v_j, the others (1/k)^2 v_i
        others = (v ** 2 / df).sum() / k ** 4
        own = ((1 - 1 / k) ** 4 - 1 / k ** 4) * v ** 2 / df
        with np.errstate(divide="ignore", invalid="ignore"):
            dfs = var ** 2 / (own + others)
        out.append(pl.DataFrame({DOMAIN: part[DOMAIN], "measure": measure, "value": x - x.mean(), "var": var,
                                 "df": dfs}))
    return pl.concat(out) if out else pl.DataFrame(schema={DOMAIN: pl.Utf8, "measure": pl.Utf8, "value": pl.Float64,
                                                           "var": pl.Float64, "df": pl.Float64})


def with_interval(frame: pl.DataFrame, confidence: float) -> pl.DataFrame:
    """`frame` with var -> se, ci_low, ci_high (t(df), not clipped: a contrast may be negative), significant."""
    value, var, df = (frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in ("value", "var", "df"))
    se = np.sqrt(var)
    with np.errstate(invalid="ignore"):
        low, high = t_interval(value, se, np.where(df >= 1, df, 1.0), confidence, -np.inf, np.inf)
    return frame.drop("var").with_columns(
        pl.Series("se", se).fill_nan(None), pl.col("df").cast(pl.Float64).fill_nan(None),
        pl.Series("ci_low", low).fill_nan(None), pl.Series("ci_high", high).fill_nan(None),
    ).with_columns(pl.when(pl.col("se").is_not_null()).then((pl.col("ci_low") > 0) | (pl.col("ci_high") < 0))
                   .alias("significant"))


def contrasts(m: Methodology, est: IndicatorEstimates, measures: pl.DataFrame) -> pl.DataFrame:
    """The `contrasts` table: the policy-minus-service gap per province, region and nation, and each province's
    difference from the national mean for every ranked measure (sipas, its parts, par)."""
    gap = roll_up(m, part_gap(m, est), ["contrast"], []).with_columns(pl.lit("sipas").alias("measure"))
    nation = (minus_nation(measures).rename({DOMAIN: "unit_code"})
              .with_columns(pl.lit("province").alias("unit_level"), pl.lit("minus_nation").alias("contrast")))
    both = pl.concat([gap.select("unit_level", "unit_code", "contrast", "measure", "value", "var", "df"),
                      nation.select("unit_level", "unit_code", "contrast", "measure", "value", "var", "df")])
    return (with_interval(both, m.design.confidence).select(COLUMNS)
            .sort("contrast", "measure", "unit_level", "unit_code"))
