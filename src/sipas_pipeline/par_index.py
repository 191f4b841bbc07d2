"""PAR INDEX points per sub-criterion, criterion and field, totals and groups, per province."""

from __future__ import annotations

import numpy as np
import polars as pl

from sipas_pipeline.errors import ComputeError
from sipas_pipeline.indicators import IndicatorEstimates, combinations, source_coefficients
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.variance import DOMAIN, t_interval

TOTAL = "*"  # key of the citizens' points together


def official_points(m: Methodology, official: pl.DataFrame | pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """survey_official sub-criteria: max x (mean rating - min) / (max - min), the mean over all the province's
    ratings of the sub-criterion's items, with its standard error; and per province the variance and df of the
    officials' points together (their sum in the PAR INDEX).

    Each official's ratings are one cluster of a simple random sample per province (with replacement): the
    mean S_k / C_k (sum and count of ratings) has the linearised score z_rk = (s_rk - R_k c_rk) / C_k per
    official r, and the covariance of sub-criteria k, l is n/(n-1) sum_r z_rk z_rl. That sum is expanded
    into integer moments (sum s_k s_l, s_k c_l, c_k c_l) summed by one group-by: exact in any order.
    Returns (province_code, subcriterion_id, points, se) and (province_code, var, df)."""
    items = (m.forms["official"].filter(pl.col("refs").str.starts_with("par:"))
             .select(pl.col("field_id").alias("item"), pl.col("refs").str.strip_prefix("par:").alias("subcriterion_id")))
    subs = (m.par_subcriteria.filter(pl.col("kind") == "survey_official").select("subcriterion_id", "max_points")
            .join(items.select("subcriterion_id").unique(), on="subcriterion_id").sort("subcriterion_id"))
    scale = m.meta["par"].get("official_rating", {"min": 1, "max": 5})
    lo, hi = float(scale["min"]), float(scale["max"])
    ids = subs["subcriterion_id"].to_list()
    k_ = range(len(ids))
    per_row = [e for j, sid in enumerate(ids) for e in (
        pl.sum_horizontal([pl.col(c).cast(pl.Int64).fill_null(0)
                           for c in items.filter(pl.col("subcriterion_id") == sid)["item"]]).alias(f"s{j}"),
        pl.sum_horizontal([pl.col(c).is_not_null().cast(pl.Int64)
                           for c in items.filter(pl.col("subcriterion_id") == sid)["item"]]).alias(f"c{j}"))]

    def moment(a: str, b: str) -> pl.Expr:
        return (pl.col(a) * pl.col(b)).sum().alias(f"{a}*{b}")

    aggs = [pl.len().alias("officials"), *[pl.col(f"{x}{j}").sum() for j in k_ for x in "sc"],
            *[moment(f"s{j}", f"s{k}") for j in k_ for k in k_ if j <= k],
            *[moment(f"s{j}", f"c{k}") for j in k_ for k in k_],
            *[moment(f"c{j}", f"c{k}") for j in k_ for k in k_ if j <= k]]
    lazy = isinstance(official, pl.LazyFrame)
    mom = (official.lazy().with_columns(per_row).group_by("province_code").agg(aggs)
           .collect(engine="streaming" if lazy else "auto").sort("province_code"))

    def arr(fmt: str, symmetric: bool = False) -> np.ndarray:
        """(provinces, K, K) array of the moments `fmt` (e.g. 's{}*c{}')."""
        cols = [[fmt.format(*((min(j, k), max(j, k)) if symmetric else (j, k))) for k in k_] for j in k_]
        return np.stack([np.stack([mom[c].to_numpy().astype(float) for c in row], axis=1) for row in cols], axis=1)

    n = mom["officials"].to_numpy().astype(float)
    big_s = np.stack([mom[f"s{j}"].to_numpy().astype(float) for j in k_], axis=1)
    big_c = np.stack([mom[f"c{j}"].to_numpy().astype(float) for j in k_], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = big_s / big_c
        sc = arr("s{}*c{}")
        cross = (arr("s{}*s{}", True) - r[:, None, :] * sc - r[:, :, None] * np.swapaxes(sc, 1, 2)
                 + r[:, :, None] * r[:, None, :] * arr("c{}*c{}", True))
        cov = np.where((n > 1)[:, None, None], (n / (n - 1))[:, None, None] * cross, np.nan) / (
            big_c[:, :, None] * big_c[:, None, :])
    b = subs["max_points"].to_numpy() / (hi - lo)
    points = pl.DataFrame({
        "province_code": np.repeat(mom["province_code"].to_numpy(), len(ids)),
        "subcriterion_id": np.tile(np.array(ids, dtype=object), mom.height),
        "points": (b[None, :] * (r - lo)).ravel(),
        "se": (b[None, :] * np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0))).ravel(),
    }, schema={"province_code": pl.Utf8, "subcriterion_id": pl.Utf8, "points": pl.Float64, "se": pl.Float64})
    total = pl.DataFrame({"province_code": mom["province_code"], "var": np.einsum("k,pkl,l->p", b, cov, b),
                          "df": np.maximum(n - 1, 1).astype(np.int64)})
    return points.fill_nan(None), total.fill_nan(None)


def citizen_points(m: Methodology, est: IndicatorEstimates) -> tuple[pl.DataFrame, pl.DataFrame]:
    """survey_citizen sub-criteria: max x (SIPAS result named by `source`) / 100, each a linear combination of
    the province's indicators, with its design-based standard error; and per province the variance and df of
    the citizens' points together (one combination: the sub-criteria share respondents, so they covary).
    Returns (province_code, subcriterion_id, points, se) and (province_code, var, df)."""
    subs = m.par_subcriteria.filter(pl.col("kind") == "survey_citizen").select("subcriterion_id", "source", "max_points")
    coef = (source_coefficients(m, est.values).join(subs, on="source")
            .select(DOMAIN, "indicator_id", "subcriterion_id", (pl.col("c") * pl.col("max_points") / 100).alias("c")))
    total = (coef.sort(DOMAIN, "indicator_id", "subcriterion_id").group_by(DOMAIN, "indicator_id")
             .agg(pl.col("c").sort_by("subcriterion_id").sum()).with_columns(pl.lit(TOTAL).alias("subcriterion_id")))
    both = combinations(est, pl.concat([coef, total.select(coef.columns)]), ["subcriterion_id"])
    points = both.filter(pl.col("subcriterion_id") != TOTAL).select(
        DOMAIN, "subcriterion_id", pl.col("value").alias("points"), pl.col("var").sqrt().alias("se"))
    return points, both.filter(pl.col("subcriterion_id") == TOTAL).select(DOMAIN, "var", "df")


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


def par_points(m: Methodology, official: pl.DataFrame | pl.LazyFrame, appraisal: pl.DataFrame,
               est: IndicatorEstimates) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Points per province and sub-criterion, with kind, criterion, field, maximum and standard error (survey
    sub-criteria; appraisal points have none); and per province the variance and df of the officials' and the
    citizens' points (columns var_official, df_official, var_citizen, df_citizen)."""
    official_pts, official_var = official_points(m, official)
    citizen_pts, citizen_var = citizen_points(m, est)
    provinces = pl.concat([f.select("province_code") for f in (official_var, appraisal, est.values)]).unique()
    pts = pl.concat([
        appraisal_points(m, appraisal, provinces).with_columns(pl.lit(None, pl.Float64).alias("se")),
        official_pts.with_columns(pl.lit(None, pl.Float64).alias("self_points")),
        citizen_pts.with_columns(pl.lit(None, pl.Float64).alias("self_points")),
    ], how="diagonal_relaxed").select("province_code", "subcriterion_id", "points", "self_points", "se")
    subs = m.par_subcriteria.select("subcriterion_id", "criterion_id", "field_id", "kind", "max_points")
    survey = (provinces.join(official_var.rename({"var": "var_official", "df": "df_official"}), on="province_code", how="left")
              .join(citizen_var.rename({"var": "var_citizen", "df": "df_citizen"}), on="province_code", how="left")
              .sort("province_code"))
    return pts.join(subs, on="subcriterion_id").sort("province_code", "subcriterion_id"), survey


def par_totals(m: Methodology, points: pl.DataFrame, survey: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(points per criterion and field, totals with group) per province. With `survey` (from `par_points`) the
    totals carry the survey part's uncertainty: the officials' and citizens' samples are independent, so
    var = var_official + var_citizen, df by Welch-Satterthwaite, a t(df) interval clipped to [0, 100]."""
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
    totals = totals.with_columns(group_of(m, pl.col("par_index")).alias("group")).sort("province_code")
    if survey is None:
        return levels, totals
    v1, v2, d1, d2 = (pl.col(c) for c in ("var_official", "var_citizen", "df_official", "df_citizen"))
    welch = (pl.when((v1 + v2) > 0).then(((v1 + v2) ** 2 / (v1 ** 2 / d1 + v2 ** 2 / d2)).floor())
             .otherwise(pl.min_horizontal(d1, d2)))
    totals = totals.join(survey.select("province_code", (v1 + v2).alias("var"),
                                       pl.max_horizontal(welch, pl.lit(1)).cast(pl.Int64).alias("df")),
                         on="province_code", how="left")
    se = np.sqrt(totals["var"].to_numpy().astype(float))
    low, high = t_interval(totals["par_index"].to_numpy(), se, totals["df"].to_numpy().astype(float), m.design.confidence)
    return levels, totals.drop("var").with_columns(pl.Series("se", se), pl.Series("ci_low", low),
                                                   pl.Series("ci_high", high)).fill_nan(None)


def group_of(m: Methodology, value: pl.Expr) -> pl.Expr:
    """The group (A, B, …) of a PAR INDEX value by the year's bounds (lower bound inclusive)."""
    expr = None
    for group, bound in m.group_bounds:
        cond = value >= bound
        expr = pl.when(cond).then(pl.lit(group)) if expr is None else expr.when(cond).then(pl.lit(group))
    return expr.otherwise(pl.lit(None, pl.Utf8))
