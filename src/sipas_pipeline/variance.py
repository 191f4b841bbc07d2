"""Design-based uncertainty: Taylor-linearised variances over strata and PSUs, degrees of freedom,
confidence intervals (Korn-Graubard for proportions, t(df) for indices), design effects.

Method (Wolter, ch. 6; Lumley, *Complex Surveys*, ch. 2-3). A ratio R = sum(w y) / sum(w a) has the
linearised score z_i = w_i (y_i - R a_i) / sum(w a). Its variance in a domain (a province) is

    v = sum over strata h of n_h / (n_h - 1) * sum over the stratum's PSUs j of (z_hj - mean_h z)^2

with z_hj the PSU totals of z (zero outside the domain) and n_h the PSUs of the stratum: the
with-replacement approximation at the first stage, no finite population correction. A stratum with a
single PSU ("lonely PSU") contributes its PSU's squared deviation from the grand mean of PSU totals,
which is zero for a linearised score (R survey's `lonely.psu = "adjust"`), with factor 1; the rule
`fail` stops the run instead. Degrees of freedom: PSUs - strata of the domain (at least 1) for an
indicator; for a composite (a tree node), whose strata contribute unequal shares of the variance, the
Satterthwaite effective df (sum_h v_h)^2 / sum_h (v_h^2 / (n_h - 1)), at most PSUs - strata (Korn and
Graubard 1999, 5.2): with about 4 PSUs per province the plain count over-states the df of the SIPAS.

A node of the SIPAS tree is a linear combination sum_i c_i R_i of indicators; its score is the same
combination of the indicators' scores. Because PSU totals are sums, combining the PSU totals of the
indicators' scores equals summing each respondent's combined score first: every covariance between
indicators and between respondents of a commune is counted.

Every float sum runs in a fixed order (sorted keys, `sort_by` inside aggregations): identical inputs
give identical bits whatever the thread count.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import special  # quantiles of t and beta (scipy.stats takes seconds to import)

from sipas_pipeline.errors import ComputeError
from sipas_pipeline.methodology.loader import Design

DOMAIN = "province_code"
STRATUM = "stratum"
PSU = "psu"


def ordered_sums(frame: pl.DataFrame, keys: list[str], values: dict[str, pl.Expr], order: list[str]) -> pl.DataFrame:
    """Group sums in a fixed order: `frame` sorted by `keys` then `order` (which make rows unique), each value
    expression evaluated per row and summed within its group from the first row to the last by numpy
    (`add.reduceat`): the same bits whatever the thread count. A sum with a missing value is missing."""
    f = frame.sort(*keys, *order)
    if f.height == 0:
        return f.select(*keys, *[e.alias(k) for k, e in values.items()]).cast({k: pl.Float64 for k in values})
    new_group = pl.any_horizontal([pl.col(k).ne_missing(pl.col(k).shift(1)) for k in keys]).fill_null(True)
    starts = np.flatnonzero(f.select(new_group.alias("s")).to_series().to_numpy())
    starts[0] = 0
    sums = {k: np.add.reduceat(v.cast(pl.Float64).fill_null(np.nan).to_numpy(), starts)
            for k, v in f.select(**values).to_dict().items()}
    return f.select(keys)[starts].with_columns(pl.Series(k, v).fill_nan(None) for k, v in sums.items())


def design_frame(citizen: pl.DataFrame | pl.LazyFrame, design: Design) -> pl.LazyFrame:
    """The citizens' forms with the design columns under canonical names (`stratum`, `psu`, `weight`)."""
    lazy = citizen.lazy()
    names = lazy.collect_schema().names()
    missing = [c for c in (design.strata, design.psu, design.weight) if c not in names]
    if missing:
        raise ComputeError(f"citizens' forms: no design column {', '.join(missing)} (methodology design block)")
    return lazy.with_columns(pl.col(design.strata).cast(pl.Utf8).alias(STRATUM), pl.col(design.psu).cast(pl.Utf8).alias(PSU),
                             pl.col(design.weight).cast(pl.Float64).alias("weight"))


def strata_psus(psus: pl.DataFrame, design: Design) -> tuple[pl.DataFrame, pl.DataFrame]:
    """From the distinct (province_code, stratum, psu) of the sample: (PSUs per stratum `n_h`, degrees of
    freedom per province `df` = PSUs - strata, at least 1). A lonely PSU under rule `fail` stops the run."""
    n_h = psus.group_by(STRATUM).agg(pl.len().alias("n_h")).sort(STRATUM)
    lonely = n_h.filter(pl.col("n_h") == 1)
    if design.lonely_psu == "fail" and lonely.height:
        raise ComputeError(f"stratum {lonely[STRATUM][0]}: a single PSU (methodology design.lonely_psu = fail); "
                           f"{lonely.height} such strata")
    df = (psus.group_by(DOMAIN).agg((pl.len() - pl.col(STRATUM).n_unique()).alias("df"))
          .with_columns(pl.max_horizontal(pl.col("df"), pl.lit(1)).cast(pl.Int64)).sort(DOMAIN))
    return n_h, df


def stratified_variance(scores: pl.DataFrame, keys: list[str], n_h: pl.DataFrame) -> pl.DataFrame:
    """Variance per (province, *keys) of an estimate from the PSU totals `z` of its linearised score.
    `scores`: province_code, stratum, psu, *keys, z (one row per PSU of the domain); `n_h`: PSUs per stratum
    in the whole sample (PSUs of a stratum outside the domain have z = 0 and count)."""
    g = [DOMAIN, *keys, STRATUM]
    z = pl.col("z")
    scores = scores.join(n_h, on=STRATUM, how="left")
    s1 = ordered_sums(scores, g, {"s1": z, "m": pl.lit(1.0)}, [PSU])
    with_mean = scores.join(s1, on=g, how="left").with_columns((pl.col("s1") / pl.col("n_h")).alias("zbar"))
    # over all n_h PSUs, (z - zbar)^2: the domain's PSUs plus (n_h - m) PSUs at zero; a lonely PSU: z^2 (centre 0)
    dev = pl.when(pl.col("n_h") > 1).then((z - pl.col("zbar")) ** 2).otherwise(z ** 2)
    ss = ordered_sums(with_mean, g, {"ss": dev}, [PSU]).join(s1, on=g).join(n_h, on=STRATUM)
    nh = pl.col("n_h")
    v = (pl.when(nh > 1).then(nh / (nh - 1) * (pl.col("ss") + (nh - pl.col("m")) * (pl.col("s1") / nh) ** 2))
         .otherwise(pl.col("ss")))
    # Satterthwaite: df = (sum_h v_h)^2 / sum_h v_h^2 / (n_h - 1), over the strata with more than one PSU
    per_stratum = ss.with_columns(v.alias("v"))
    out = ordered_sums(per_stratum, [DOMAIN, *keys],
                       {"var": pl.col("v"), "v2": pl.when(nh > 1).then(pl.col("v") ** 2 / (nh - 1)).otherwise(0.0)},
                       [STRATUM])
    return out.select(DOMAIN, *keys, "var", pl.when(pl.col("v2") > 0).then(pl.col("var") ** 2 / pl.col("v2"))
                      .alias("df_satterthwaite"))


def ratio_scores(psu_sums: pl.DataFrame, keys: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """From PSU sums `y` (weighted hits) and `a` (weighted answers) per (province, stratum, psu, *keys):
    (the domain totals with the ratio R = Y / A, the PSU totals z = (y - R a) / A of the linearised score)."""
    g = [DOMAIN, *keys]
    totals = (ordered_sums(psu_sums, g, {"Y": pl.col("y"), "A": pl.col("a")}, [STRATUM, PSU])
              .with_columns(pl.when(pl.col("A") > 0).then(pl.col("Y") / pl.col("A")).alias("R")))
    scores = (psu_sums.join(totals, on=g, how="left")
              .select(DOMAIN, STRATUM, PSU, *keys, ((pl.col("y") - pl.col("R") * pl.col("a")) / pl.col("A")).alias("z")))
    return totals, scores


def combine_scores(scores: pl.DataFrame, coefficients: pl.DataFrame, item: str, keys: list[str]) -> pl.DataFrame:
    """PSU totals of linear combinations: `coefficients` (province_code, item, *keys, c) applied to the items'
    PSU totals `z`; returns province_code, stratum, psu, *keys, z. Summed in item order."""
    g = [DOMAIN, STRATUM, PSU, *keys]
    return ordered_sums(scores.join(coefficients, on=[DOMAIN, item], how="inner"), g, {"z": pl.col("c") * pl.col("z")}, [item])


def quantile_t(df: np.ndarray, confidence: float) -> np.ndarray:
    """Two-sided t quantile for `confidence` with `df` degrees of freedom (elementwise)."""
    return special.stdtrit(np.asarray(df, dtype=float), 0.5 + confidence / 2)


def t_interval(value: np.ndarray, se: np.ndarray, df: np.ndarray, confidence: float,
               low: float = 0.0, high: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """value -+ t(df) se, clipped to [low, high] (NaN where value or se is missing)."""
    half = quantile_t(df, confidence) * se
    return np.clip(value - half, low, high), np.clip(value + half, low, high)


def proportion_interval(p: np.ndarray, var: np.ndarray, n: np.ndarray, df: np.ndarray,
                        confidence: float) -> dict[str, np.ndarray]:
    """Korn-Graubard (1998) interval of a proportion `p` (0-1) with design variance `var`, `n` respondents and
    `df` design degrees of freedom: Clopper-Pearson with the effective sample size n_eff = p(1-p)/var, capped at
    scaled by (t_{n-1} / t_df)^2 and capped at n: n* = min(n_eff (t_{n-1} / t_df)^2, n), x = p n*. At p = 0 or 1 (or
    var = 0) n_eff = n. Never zero-width for n > 0, always inside [0, 1]. Also returns the design effect
    var / (p(1-p)/n) and n_eff."""
    p, var, n, df = (np.asarray(a, dtype=float) for a in (p, var, n, df))
    with np.errstate(divide="ignore", invalid="ignore"):
        pq = p * (1 - p)
        deff = np.where(pq > 0, var / (pq / n), np.nan)
        n_eff = np.where((pq > 0) & (var > 0), pq / var, n)
        ratio = (quantile_t(np.maximum(n - 1, 1), confidence) / quantile_t(df, confidence)) ** 2
        n_star = np.minimum(n_eff * ratio, n)
        x = p * n_star
        alpha = 1 - confidence
        low = np.where(x > 0, special.betaincinv(x, n_star - x + 1, alpha / 2), 0.0)
        high = np.where(n_star - x > 0, special.betaincinv(x + 1, n_star - x, 1 - alpha / 2), 1.0)
    bad = ~np.isfinite(p) | ~(n > 0)
    return {"ci_low": np.where(bad, np.nan, low), "ci_high": np.where(bad, np.nan, high),
            "deff": np.where(bad, np.nan, deff), "n_eff": np.where(bad, np.nan, n_eff)}


def add_uncertainty(frame: pl.DataFrame, design: Design, proportion: bool) -> pl.DataFrame:
    """`frame` with value (0-100), var (of the 0-1 scale for proportions, of the value scale otherwise), n and df
    -> with se, ci_low, ci_high, deff, n_eff, small_sample (percent scale like value); `var` dropped.
    Proportions get Korn-Graubard intervals, design effect and effective n; indices (tree nodes) t(df)
    intervals clipped to [0, 100], no design effect (a composite has no single SRS reference)."""
    value = frame["value"].to_numpy().astype(float)
    var = frame["var"].to_numpy().astype(float)
    n = frame["n"].to_numpy().astype(float)
    df = frame["df"].to_numpy().astype(float)
    if proportion:
        out = proportion_interval(value / 100, var, n, df, design.confidence)
        se = 100 * np.sqrt(var)
        cols = {"se": se, "ci_low": 100 * out["ci_low"], "ci_high": 100 * out["ci_high"], "deff": out["deff"],
                "n_eff": out["n_eff"]}
    else:
        se = np.sqrt(var)
        low, high = t_interval(value, se, df, design.confidence)
        cols = {"se": se, "ci_low": low, "ci_high": high, "deff": np.full(len(value), np.nan),
                "n_eff": np.full(len(value), np.nan)}
    small = (n < design.small_sample) | (np.nan_to_num(cols["n_eff"], nan=np.inf) < design.small_sample)
    present = pl.col("value").is_not_null()
    return frame.drop("var").with_columns(
        *[pl.Series(k, v, dtype=pl.Float64).fill_nan(None) for k, v in cols.items()],
        pl.Series("small_sample", small), pl.col("df").cast(pl.Float64),
    ).with_columns(pl.when(present).then(pl.col(c)).alias(c)
                   for c in ("se", "ci_low", "ci_high", "deff", "n_eff", "df", "small_sample"))
