"""PAR INDEX points per sub-criterion, criterion and field, totals and groups, per province."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sipas_pipeline.errors import ComputeError
from sipas_pipeline.indicators import IndicatorEstimates, combinations, source_coefficients
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.variance import DOMAIN, t_interval

TOTAL = "*"  # key of the citizens' points together


@dataclass(frozen=True)
class OfficialMoments:
    """The officials' forms reduced to what their points and variances need, per province (rows in the order
    of `codes`, every province of the year) and survey_official sub-criterion (columns in the order of
    `subcriteria`): officials `n`, rating sums `s` and counts `c`, and the integer moments `m` = (S'S, S'C, C'C)
    of the officials' per-sub-criterion sums and counts. All are sums of small integers, exact in floating
    point: two sets of forms' moments add (`+`) to their union's, in any order."""

    codes: tuple[str, ...]
    subcriteria: tuple[str, ...]
    n: np.ndarray
    s: np.ndarray
    c: np.ndarray
    m: np.ndarray

    def __add__(self, other: OfficialMoments) -> OfficialMoments:
        return self.combine(other, 1)

    def __sub__(self, other: OfficialMoments) -> OfficialMoments:
        return self.combine(other, -1)

    def combine(self, other: OfficialMoments, sign: int) -> OfficialMoments:
        if (self.codes, self.subcriteria) != (other.codes, other.subcriteria):
            raise ValueError("officials' moments of different provinces or sub-criteria cannot be added")
        return OfficialMoments(self.codes, self.subcriteria, self.n + sign * other.n, self.s + sign * other.s,
                               self.c + sign * other.c, self.m + sign * other.m)


def official_subcriteria(m: Methodology) -> tuple[pl.DataFrame, dict[str, pl.Series]]:
    """The survey_official sub-criteria with an item on the officials' form (subcriterion_id, max_points), and
    per sub-criterion its items (form fields)."""
    items = (m.forms["official"].filter(pl.col("refs").str.starts_with("par:"))
             .select(pl.col("field_id").alias("item"), pl.col("refs").str.strip_prefix("par:").alias("subcriterion_id")))
    subs = (m.par_subcriteria.filter(pl.col("kind") == "survey_official").select("subcriterion_id", "max_points")
            .join(items.select("subcriterion_id").unique(), on="subcriterion_id").sort("subcriterion_id"))
    return subs, {sid: items.filter(pl.col("subcriterion_id") == sid)["item"] for sid in subs["subcriterion_id"]}


def _ratings(m: Methodology, official: pl.DataFrame | pl.LazyFrame, keep: tuple[str, ...] = ()) -> pl.DataFrame:
    """Per official: `p` (the province's position in the year's sorted codes), the `keep` columns, and per
    survey_official sub-criterion j the sum `s<j>` and count `c<j>` of the ratings of its items."""
    _, per_sub = official_subcriteria(m)
    codes = m.provinces["province_code"].sort()
    return (official.lazy().select(
        pl.col("province_code").cast(pl.Enum(codes)).to_physical().alias("p"), *keep,  # p: position in `codes`
        *[pl.sum_horizontal([pl.col(c).cast(pl.Int16).fill_null(0) for c in cols]).cast(pl.Int16).alias(f"s{j}")
          for j, cols in enumerate(per_sub.values())],
        *[pl.sum_horizontal([pl.col(c).is_not_null().cast(pl.Int16) for c in cols]).cast(pl.Int16).alias(f"c{j}")
          for j, cols in enumerate(per_sub.values())])
        .collect(engine="streaming" if isinstance(official, pl.LazyFrame) else "auto"))


def official_moments(m: Methodology, official: pl.DataFrame | pl.LazyFrame) -> OfficialMoments:
    """The reduction of officials' forms (`OfficialMoments`): one pass over the forms, one matrix product per
    province with forms (not per cell)."""
    subs, _ = official_subcriteria(m)
    codes = m.provinces["province_code"].sort()
    # per official and sub-criterion: sum s and count c of the ratings (small integers: narrow columns)
    rated = _ratings(m, official).sort("p")  # each province's forms together (their order within does not matter)
    k_ = range(subs.height)
    n = np.bincount(rated["p"].to_numpy().astype(np.intp), minlength=codes.len()).astype(np.float64)
    # per province the integer moments S'S, S'C, C'C of the officials' sums and counts: sums of small integers,
    # exact in floating point whatever the order of the forms, so the variances below have the same bits in every run
    bounds = np.concatenate([[0], np.cumsum(n.astype(np.int64))])
    big_s = np.zeros((codes.len(), subs.height))
    big_c = np.zeros_like(big_s)
    moments = np.zeros((codes.len(), 3, subs.height, subs.height))
    for p in np.flatnonzero(n):  # one matrix product per province with forms (not per cell)
        part = rated.slice(int(bounds[p]), int(n[p]))
        sp = part.select(f"s{j}" for j in k_).to_numpy().astype(np.float64)
        cp = part.select(f"c{j}" for j in k_).to_numpy().astype(np.float64)
        big_s[p], big_c[p] = sp.sum(axis=0), cp.sum(axis=0)
        moments[p] = (sp.T @ sp, sp.T @ cp, cp.T @ cp)
    return OfficialMoments(tuple(codes.to_list()), tuple(subs["subcriterion_id"].to_list()), n, big_s, big_c, moments)


def official_points(m: Methodology, official: pl.DataFrame | pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """survey_official sub-criteria per province, with their standard errors, from the officials' forms
    (`official_moments`, then `official_points_from_moments`). When the export carries the officials' agency
    (`design.official_cluster`, default agency_code, set on some form), the agencies are the officials' PSUs
    (`agency_clustered`); otherwise each official is one (a simple random sample of officials). The total's
    `official_cluster` says which: agency or official."""
    mom = official_moments(m, official)
    points, total = official_points_from_moments(m, mom)
    column = m.design.official_cluster
    names = official.collect_schema().names() if isinstance(official, pl.LazyFrame) else official.columns
    if column in names:
        has = official.lazy().select(pl.col(column).is_not_null().any()).collect().item()
        if has:
            return agency_clustered(m, official, mom, points, column)
    return points, total


def agency_clustered(m: Methodology, official: pl.DataFrame | pl.LazyFrame, mom: OfficialMoments,
                     points: pl.DataFrame, column: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The officials' standard errors with their agencies as PSUs (one stage, with replacement, within the province):
    per agency a and sub-criterion k the totals S_ak, C_ak of its officials' ratings, the linearised score
    z_ak = (S_ak - R_k C_ak) / C_k, var(points_k) = b_k^2 A/(A-1) sum_a z_ak^2 (A agencies of the province), the
    points together u_a = sum_k b_k z_ak with var = A/(A-1) sum_a u_a^2, df = A - 1. An official without an agency
    is an agency of one. Points are those of `official_points_from_moments` (the estimator does not change)."""
    subs, _ = official_subcriteria(m)
    scale = m.meta["par"].get("official_rating", {"min": 1, "max": 5})
    b = subs["max_points"].to_numpy() / (float(scale["max"]) - float(scale["min"]))
    k = subs.height
    cluster = pl.coalesce(pl.col(column).cast(pl.Utf8), pl.lit("official:") + pl.col("form_id").cast(pl.Utf8))
    rated = _ratings(m, official.lazy().with_columns(cluster.alias("_agency")), ("_agency",))
    totals = (rated.group_by("p", "_agency").agg(pl.col(f"s{j}", f"c{j}").cast(pl.Int64).sum() for j in range(k))
              .sort("p", "_agency"))
    p = totals["p"].to_numpy().astype(np.intp)
    s_a = totals.select(f"s{j}" for j in range(k)).to_numpy().astype(np.float64)
    c_a = totals.select(f"c{j}" for j in range(k)).to_numpy().astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = mom.s / mom.c  # (provinces, k): the provinces' means
        z = np.nan_to_num((s_a - r[p] * c_a) / mom.c[p])
    agencies = np.bincount(p, minlength=len(mom.codes)).astype(np.float64)
    factor = np.where(agencies > 1, agencies / np.maximum(agencies - 1, 1), np.nan)
    var_k = np.zeros((len(mom.codes), k))
    np.add.at(var_k, p, z ** 2)
    u = z @ b
    var_u = np.bincount(p, weights=u ** 2, minlength=len(mom.codes))
    provinces = np.array(mom.codes, dtype=object)
    seen = mom.n > 0
    ses = pl.DataFrame({"province_code": np.repeat(provinces[seen], k),
                        "subcriterion_id": np.tile(subs["subcriterion_id"].to_numpy(), int(seen.sum())),
                        "se_agency": (b[None, :] * np.sqrt(factor[:, None] * var_k))[seen].ravel()},
                       schema={"province_code": pl.Utf8, "subcriterion_id": pl.Utf8, "se_agency": pl.Float64})
    out = (points.join(ses, on=["province_code", "subcriterion_id"], how="left")
           .with_columns(pl.col("se_agency").fill_nan(None).alias("se")).drop("se_agency"))
    total = pl.DataFrame({"province_code": provinces[seen], "var": (factor * var_u)[seen],
                          "df": np.maximum(agencies - 1, 1).astype(np.int64)[seen], "official_cluster": "agency"},
                         schema={"province_code": pl.Utf8, "var": pl.Float64, "df": pl.Int64, "official_cluster": pl.Utf8})
    return out, total.fill_nan(None)


def official_points_from_moments(m: Methodology, mom: OfficialMoments) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The estimator of the survey_official sub-criteria: max x (mean rating - min) / (max - min), the mean over
    all the province's ratings of the sub-criterion's items, with its standard error; and per province the
    variance and df of the officials' points together (their sum in the PAR INDEX).

    Each official's ratings are one cluster of a simple random sample per province (with replacement): the
    mean R_k = S_k / C_k (sum and count of ratings) has the linearised score z_rk = (s_rk - R_k c_rk) / C_k per
    official r; var(points_k) = b_k^2 n/(n-1) sum_r z_rk^2 with b_k = max / (max - min), and the officials'
    points together have the score u_r = sum_k b_k z_rk, so var = b' Z b with Z_jk = sum_r z_rj z_rk. Z comes
    from the integer moments of the officials' sums and counts (`OfficialMoments`): identical bits for the same
    forms in any order, however they were gathered.
    Returns (province_code, subcriterion_id, points, se) and (province_code, var, df, official_cluster 'official')."""
    subs, _ = official_subcriteria(m)
    scale = m.meta["par"].get("official_rating", {"min": 1, "max": 5})
    lo, hi = float(scale["min"]), float(scale["max"])
    n, big_s, big_c, moments = mom.n, mom.s, mom.c, mom.m
    with np.errstate(divide="ignore", invalid="ignore"):
        r = big_s / big_c
        factor = np.where(n > 1, n / np.maximum(n - 1, 1), np.nan)
        # sum over officials of z_j z_k, z_j = (s_j - R_j c_j) / C_j:
        # (S'S - S'C diag(R) - diag(R) C'S + diag(R) C'C diag(R))_jk / (C_j C_k)
        rr = np.nan_to_num(r)
        ss, sc, cc = moments[:, 0], moments[:, 1], moments[:, 2]
        cross = (ss - sc * rr[:, None, :] - np.swapaxes(sc, 1, 2) * rr[:, :, None]
                 + cc * rr[:, :, None] * rr[:, None, :]) / (big_c[:, :, None] * big_c[:, None, :])
    b = subs["max_points"].to_numpy() / (hi - lo)
    var_k = np.diagonal(cross, axis1=1, axis2=2)
    var_u = np.einsum("j,pjk,k->p", b, np.nan_to_num(cross), b)
    points = b[None, :] * (r - lo)
    ses = b[None, :] * np.sqrt(factor[:, None] * var_k)
    provinces = np.array(mom.codes, dtype=object)
    seen = n > 0  # provinces with officials' forms
    out = pl.DataFrame({"province_code": np.repeat(provinces[seen], subs.height),
                        "subcriterion_id": np.tile(subs["subcriterion_id"].to_numpy(), int(seen.sum())),
                        "points": points[seen].ravel(), "se": ses[seen].ravel()},
                       schema={"province_code": pl.Utf8, "subcriterion_id": pl.Utf8, "points": pl.Float64, "se": pl.Float64})
    total = pl.DataFrame({"province_code": provinces[seen], "var": (factor * var_u)[seen],
                          "df": np.maximum(n - 1, 1).astype(np.int64)[seen], "official_cluster": "official"},
                         schema={"province_code": pl.Utf8, "var": pl.Float64, "df": pl.Int64, "official_cluster": pl.Utf8})
    return out.fill_nan(None), total.fill_nan(None)


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
    return survey_and_appraisal(m, official_points(m, official), appraisal, est)


def survey_and_appraisal(m: Methodology, official: tuple[pl.DataFrame, pl.DataFrame], appraisal: pl.DataFrame | None,
                         est: IndicatorEstimates) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`par_points` from the officials' points (`official_points` or `official_points_from_moments`), the
    appraisal points (possibly none: the survey points alone) and the citizens' indicator estimates."""
    official_pts, official_var = official
    citizen_pts, citizen_var = citizen_points(m, est)
    sources = (official_var, est.values) if appraisal is None else (official_var, appraisal, est.values)
    provinces = pl.concat([f.select("province_code") for f in sources]).unique()
    appraised = [] if appraisal is None else [appraisal_points(m, appraisal, provinces)]
    pts = pl.concat([
        *[a.with_columns(pl.lit(None, pl.Float64).alias("se")) for a in appraised],
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
    var = var_official + var_citizen, df by Welch-Satterthwaite (fractional, at least 1), a t(df) interval clipped
    to [0, 100]; `official_cluster` names the officials' PSU (agency, or official for a simple random sample)."""
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
    # fractional, like the SIPAS's Satterthwaite df (flooring df 1.9 to 1 would take t from 4.6 to 12.7)
    welch = (pl.when((v1 + v2) > 0).then((v1 + v2) ** 2 / (v1 ** 2 / d1 + v2 ** 2 / d2))
             .otherwise(pl.min_horizontal(d1, d2)))
    cluster = pl.col("official_cluster") if "official_cluster" in survey.columns else pl.lit(None, pl.Utf8)
    totals = totals.join(survey.select("province_code", (v1 + v2).alias("var"),
                                       pl.max_horizontal(welch, pl.lit(1.0)).cast(pl.Float64).alias("df"),
                                       cluster.alias("official_cluster")),
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
