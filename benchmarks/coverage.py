"""Coverage of the pipeline's intervals on simulated years whose truth is known (issue #11).

Each simulated year is made in memory (`synth.simulate_citizens`: commune and village effects, a
respondent halo, a fresh PPS sample of communes from the frame, all 63 provinces at their full
per-province sample size) and estimated with the pipeline's own functions (`estimate_indicators`,
`sipas_tree`, `add_uncertainty`, `ranks`, `rank_intervals`). It prints how often the 95% intervals
hold the true (finite-population) value, for indicators (overall and by n band) and the province
SIPAS, and how often the 90% rank interval holds the true rank; beside them the same with the
version-1 formula (Kish effective n per indicator, sqrt(p(1-p)/n_eff), combined up the tree as if
independent, value +- 1.96 se), computed here for contrast since the pipeline no longer has it.
Targets: 93.5-96.5% for indicators and SIPAS, >= 92% in the n < 30 band, >= 88% for rank intervals.

usage: python benchmarks/coverage.py [--years 200] [--effects 1] [--seed 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import peak_rss_mb

from sipas_pipeline.indicators import answer_flags, estimate_indicators, sipas_tree, tree_coefficients, with_code_masks
from sipas_pipeline.methodology import Methodology, load_methodology
from sipas_pipeline.ranking import rank_intervals, rank_percentiles, ranks, simulated_ranks
from sipas_pipeline.synth import DesignParams, simulate_citizens
from sipas_pipeline.variance import add_uncertainty

BANDS = [("n < 30", 0, 30), ("n 30-99", 30, 100), ("n 100+", 100, 10**9)]
TARGETS = {"indicators": (93.5, 96.5), "n < 30": (92.0, 100.0), "SIPAS": (93.5, 96.5), "rank": (88.0, 100.0)}
Z95 = 1.959963984540054


def kish(m: Methodology, citizen: pl.DataFrame) -> pl.DataFrame:
    """Version 1's standard error per province and indicator: sqrt(p(1-p)/n_eff), n_eff = (sum w)^2 / sum w^2
    over those who answered (percentage points)."""
    w = pl.col("weight")
    exprs = []
    for i, (answered, hit) in answer_flags(m, m.indicators).items():
        wa = pl.when(answered).then(w).otherwise(0.0)
        exprs += [pl.when(hit).then(wa).otherwise(0.0).sum().alias(f"{i}:y"), wa.sum().alias(f"{i}:a"),
                  (wa * wa).sum().alias(f"{i}:w2")]
    wide = with_code_masks(m, citizen).group_by("province_code").agg(exprs)
    long = pl.concat([wide.select("province_code", pl.lit(i).alias("indicator_id"), pl.col(f"{i}:y").alias("y"),
                                  pl.col(f"{i}:a").alias("a"), pl.col(f"{i}:w2").alias("w2"))
                      for i in m.indicators["indicator_id"]])
    p = pl.col("y") / pl.col("a")
    return long.select("province_code", "indicator_id",
                       pl.when(pl.col("a") > 0).then(100 * (p * (1 - p) * pl.col("w2") / pl.col("a") ** 2).sqrt())
                       .alias("se_kish"))


def one_year(m: Methodology, seed: int, design: DesignParams) -> dict[str, pl.DataFrame]:
    """Estimates, intervals and truth of one simulated year: indicator rows, SIPAS rows."""
    year = simulate_citizens(m, seed, design)
    est = estimate_indicators(m, year.citizen)
    ind = add_uncertainty(est.values, m.design, proportion=True)
    ind = (ind.join(year.truth.rename({"value": "truth"}), on=["province_code", "indicator_id"])
           .join(kish(m, year.citizen), on=["province_code", "indicator_id"]))
    tree = add_uncertainty(sipas_tree(m, est), m.design, proportion=False).filter(pl.col("level") == "sipas")
    # version 1: the tree's se from the indicators' Kish se, children independent
    coef = tree_coefficients(m, est.values).filter(pl.col("level") == "sipas")
    kish_tree = (coef.join(ind.select("province_code", "indicator_id", "se_kish"), on=["province_code", "indicator_id"])
                 .group_by("province_code").agg(((pl.col("c") * pl.col("se_kish")) ** 2).sum().sqrt().alias("se_kish")))
    truth = year.tree.filter(pl.col("node") == "SIPAS").select(
        "province_code", pl.col("value").alias("truth"),
        pl.col("value").rank("ordinal", descending=True).cast(pl.Int64).alias("true_rank"))
    sipas = tree.join(truth, on="province_code").join(kish_tree, on="province_code").sort("province_code")
    ranked = rank_intervals(m, ranks(m, sipas.select("province_code", pl.lit("sipas").alias("measure"), "value", "se", "df")))
    sipas = sipas.join(ranked.select("province_code", "rank_low", "rank_high"), on="province_code")
    # version 1's rank interval: the same simulation with the Kish se and a normal distribution
    v, se = sipas["value"].to_numpy(), sipas["se_kish"].to_numpy()
    draws = v[None, :] + se[None, :] * np.random.default_rng(seed).standard_normal((m.design.rank_draws, v.size))
    low, high = rank_percentiles(simulated_ranks(draws, np.zeros(v.size, dtype=np.int64)), (1 - m.design.rank_interval) / 2)
    sipas = sipas.with_columns(pl.Series("rank_low_kish", low), pl.Series("rank_high_kish", high))
    return {"indicators": ind.with_columns(pl.lit(seed).alias("year")), "sipas": sipas.with_columns(pl.lit(seed).alias("year"))}


def covered(low: str, high: str, truth: str = "truth") -> pl.Expr:
    return ((pl.col(truth) >= pl.col(low)) & (pl.col(truth) <= pl.col(high))).cast(pl.Float64)


def summarise(ind: pl.DataFrame, sipas: pl.DataFrame) -> list[tuple[str, int, float, float]]:
    """(what, cells, design-based coverage %, version-1 coverage %) rows."""
    ind = ind.filter(pl.col("value").is_not_null() & pl.col("se").is_not_null()).with_columns(
        covered("ci_low", "ci_high").alias("ok"),
        ((pl.col("truth") - pl.col("value")).abs() <= Z95 * pl.col("se_kish")).cast(pl.Float64).alias("ok_kish"))
    rows = [("indicators", ind)] + [(label, ind.filter((pl.col("n") >= lo) & (pl.col("n") < hi))) for label, lo, hi in BANDS]
    out = [(label, f.height, 100 * f["ok"].mean(), 100 * f["ok_kish"].mean()) for label, f in rows if f.height]
    s = sipas.with_columns(covered("ci_low", "ci_high").alias("ok"),
                           ((pl.col("truth") - pl.col("value")).abs() <= Z95 * pl.col("se_kish")).cast(pl.Float64)
                           .alias("ok_kish"),
                           covered("rank_low", "rank_high", "true_rank").alias("rank_ok"),
                           covered("rank_low_kish", "rank_high_kish", "true_rank").alias("rank_ok_kish"))
    out.append(("SIPAS", s.height, 100 * s["ok"].mean(), 100 * s["ok_kish"].mean()))
    out.append(("rank", s.height, 100 * s["rank_ok"].mean(), 100 * s["rank_ok_kish"].mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", type=int, default=200)
    ap.add_argument("--effects", type=float, default=1.0, help="scale of the effects: 1 = realistic defaults, 0 = none")
    ap.add_argument("--seed", type=int, default=1000, help="first simulated year's seed (then +1 each)")
    args = ap.parse_args()
    m = load_methodology(2024)
    design = DesignParams().scaled(args.effects)
    t0 = time.perf_counter()
    years = [one_year(m, args.seed + k, design) for k in range(args.years)]
    seconds = time.perf_counter() - t0
    ind = pl.concat([y["indicators"] for y in years])
    sipas = pl.concat([y["sipas"] for y in years])
    per_year = ind.group_by("year").agg(pl.col("n").sum())["n"].mean()
    print(f"{args.years} simulated years x 63 provinces (all 103 indicators, fresh PPS sample each year), "
          f"effects x{args.effects:g}: commune ICC {design.commune_icc:g}, village ICC {design.village_icc:g}, "
          f"inter-item correlation {design.item_correlation:g} (latent scale)")
    print(f"  {per_year / 63 / 103:.0f} answers per province and indicator on average; "
          f"{seconds:.0f} s ({seconds / args.years:.2f} s a year), peak RSS {peak_rss_mb():.0f} MB")
    print(f"  {'coverage of':<40}{'cells':>8}  {'design-based':>12}  {'v1 Kish':>8}  target")
    for label, cells, ours, old in summarise(ind, sipas):
        lo, hi = TARGETS.get(label, (None, None))
        what = f"90% rank interval{label[4:]}" if label.startswith("rank") else f"95% interval, {label}"
        target = "" if lo is None else (f">= {lo:g}%" if hi >= 100 else f"{lo:g}-{hi:g}%")
        verdict = "" if lo is None else ("  ok" if lo <= ours <= hi else "  MISSED")
        kish_col = "" if np.isnan(old) else f"{old:.1f}%"
        print(f"  {what:<40}{cells:>8}  {ours:>11.1f}%  {kish_col:>8}  {target}{verdict}")
    se_ratio = sipas.select((pl.col("se") / pl.col("se_kish")).median()).item()
    print(f"  SIPAS: median design-based se / Kish se = {se_ratio:.2f}; its df (Satterthwaite, at most PSUs - strata) "
          f"median {sipas['df'].median():.2f}; median 90% rank interval width "
          f"{(sipas['rank_high'] - sipas['rank_low']).median():g} places")


if __name__ == "__main__":
    main()
