"""Stabilised variances beside the direct ones: each province's variance borrows strength from the others'.

A province's direct (design-based) variance rests on about three PSUs per stratum (df 1-5): its interval is
right on average but wide, and its design effect mostly noise. When the provinces' designs are alike, their
variances on a common scale are alike too: the scale is the design effect for an indicator (variance / (p(1-p)/n))
and the variance per respondent (variance x n, a generalised variance function var = kappa / n) for an index.
On that scale u_p, each province's estimate is moderated towards the pool (Smyth 2004, the empirical-Bayes
"moderated" variance):

    u~_p = (d0 s0 + d_p u_p) / (d0 + d_p),   df~_p = d0 + d_p,

with s0 and d0 the scale and degrees of freedom of a scaled inverse chi-square law of the provinces' true
scales, fitted to the log u_p (their spread beyond what d_p degrees of freedom explain). When the u_p vary no
more than their df explain, d0 is infinite: every province gets the pooled value s0 with df = the sum of the
provinces' df (the pooled design effect). The stabilised interval is Korn-Graubard (indicators) or t (indices)
on u~_p and df~_p. Direct estimates stay the published values; the stabilised columns are named as such.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import special

from sipas_pipeline.variance import proportion_interval, t_interval


def trigamma_inverse(x: float) -> float:
    """y with trigamma(y) = x > 0: Newton's method from y = 0.5 + 1/x, as limma's trigammaInverse (Smyth 2004);
    converges in a few steps (relative step < 1e-12)."""
    y = 0.5 + 1 / x
    for _ in range(50):
        tri = float(special.polygamma(1, y))
        step = tri * (1 - tri / x) / float(special.polygamma(2, y))
        y += step
        if -step / y < 1e-12:
            break
    return y


def moderation(u: np.ndarray, df: np.ndarray) -> tuple[float, float]:
    """(s0, d0) of the provinces' scales `u` (> 0) with degrees of freedom `df`; d0 = inf when their spread is
    all sampling noise (or fewer than three provinces): then s0 is the pooled value sum(df u) / sum(df)."""
    u, df = np.asarray(u, dtype=float), np.asarray(df, dtype=float)
    ok = np.isfinite(u) & (u > 0) & np.isfinite(df) & (df > 0)
    u, df = u[ok], df[ok]
    pooled = float(np.sum(df * u) / np.sum(df)) if u.size else np.nan  # the pooled value, df-weighted
    if u.size < 3:
        return pooled, np.inf
    e = np.log(u) - special.digamma(df / 2) + np.log(df / 2)  # unbiased for the log of each true scale
    excess = np.var(e, ddof=1) - np.mean(special.polygamma(1, df / 2))
    if excess <= 0:
        return pooled, np.inf
    d0 = 2 * trigamma_inverse(float(excess))  # trigamma(d0 / 2) = excess
    return float(np.exp(np.mean(e) + special.digamma(d0 / 2) - np.log(d0 / 2))), d0


def moderated(u: np.ndarray, df: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The moderated scales and their df (`moderation`); the pooled df is the sum of the provinces' when d0 is
    infinite."""
    u, df = np.asarray(u, dtype=float), np.asarray(df, dtype=float)
    s0, d0 = moderation(u, df)
    if not np.isfinite(s0):  # no province with a usable scale (e.g. every one at 0% or 100%): nothing to pool
        return np.full(u.shape, np.nan), np.full(u.shape, np.nan)
    if not np.isfinite(d0):
        pooled = np.nansum(np.where(np.isfinite(u) & (u > 0), df, 0.0))
        return np.full(u.shape, s0), np.full(u.shape, pooled)
    u_ok = np.where(np.isfinite(u), u, s0)
    return (d0 * s0 + df * u_ok) / (d0 + df), d0 + df


def with_stabilised(frame: pl.DataFrame, confidence: float, proportion: bool, keys: list[str]) -> pl.DataFrame:
    """Province rows of `frame` (unit_level, value 0-100, se, n, df, *keys) get se_stabilised, ci_low_stabilised,
    ci_high_stabilised, df_stabilised, moderated per group of `keys` across provinces; other rows null."""
    cols = ("se_stabilised", "ci_low_stabilised", "ci_high_stabilised", "df_stabilised")
    prov = frame.with_row_index("_row").filter((pl.col("unit_level") == "province") & pl.col("value").is_not_null()
                                               & pl.col("se").is_not_null())
    rows, values, ns, variances, dfs_all = [], [], [], [], []
    # the moderation per group; the intervals, elementwise, once over every group's rows
    for _, group in prov.group_by(keys, maintain_order=True):
        v, se, n, df = (group[c].cast(pl.Float64).to_numpy() for c in ("value", "se", "n", "df"))
        var = se ** 2
        if proportion:
            p = v / 100
            srs = p * (1 - p) / n * 1e4  # percentage points squared
            with np.errstate(divide="ignore", invalid="ignore"):
                u = np.where(srs > 0, var / srs, np.nan)
            scale, dfs = moderated(u, df)
            var_s = scale * srs
        else:
            scale, dfs = moderated(var * n, df)
            var_s = scale / n
        rows.append(group["_row"].to_numpy())
        values.append(v)
        ns.append(n)
        variances.append(var_s)
        dfs_all.append(np.broadcast_to(dfs, v.shape))
    if rows:
        v, n, var_s, dfs = (np.concatenate(a).astype(float) for a in (values, ns, variances, dfs_all))
        if proportion:
            out = proportion_interval(v / 100, var_s / 1e4, n, dfs, confidence)
            low, high = 100 * out["ci_low"], 100 * out["ci_high"]
        else:
            low, high = t_interval(v, np.sqrt(var_s), dfs, confidence)
        found = pl.DataFrame({"_row": pl.Series(np.concatenate(rows), dtype=pl.UInt32), "se_stabilised": np.sqrt(var_s),
                              "ci_low_stabilised": low, "ci_high_stabilised": high, "df_stabilised": dfs})
    else:
        found = pl.DataFrame(schema={"_row": pl.UInt32} | {c: pl.Float64 for c in cols})
    return (frame.with_row_index("_row").join(found, on="_row", how="left").drop("_row")
            .with_columns(pl.col(c).fill_nan(None) for c in cols))
