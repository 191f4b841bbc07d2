"""Coverage of the pipeline's intervals and rank confidence sets on simulated years whose truth is known (issues
#11, #22).

Each simulated year is made in memory (`synth.simulate_citizens`: commune and village effects, a
respondent halo, a fresh PPS sample of communes from the frame, all 63 provinces at their full
per-province sample size) and estimated with the pipeline's own functions (`estimate_indicators`,
`sipas_tree`, `add_uncertainty`, `ranks`, `rank_intervals`). It prints how often the 95% intervals
hold the true (finite-population) value, for indicators (overall and by n band) and the province
SIPAS; beside them the same with the version-1 formula (Kish effective n per indicator, sqrt(p(1-p)/n_eff),
combined up the tree as if independent, value +- 1.96 se), computed here for contrast since the pipeline no
longer has it. Targets: 93.5-96.5% for indicators and SIPAS, >= 92% in the n < 30 band.

Ranks (issue #22): how often the 90% confidence sets for the SIPAS ranks (`rank_sets`, through
`ranking.rank_intervals`) hold the true rank, by the province's true position (true top five, middle, bottom
five): the marginal set >= 90% at every position; the simultaneous set holding all 63 ranks at once, and the
sets for the top and bottom five holding all five true ones, >= 90% of the years. Two blocks: the sets built from
the stabilised variances (what the pipeline publishes, `design.rank_variance: stabilised`) and from the direct
ones (what it published before). For contrast, the old percentile interval of draws around the estimates (not
published any more).

Each setting is `effects:shared`: the effects' scale (1 = the realistic defaults: commune ICC 0.03, village 0.02,
inter-item correlation 0.25) and the share of the commune and village effects common to all items of a place
(`DesignParams.shared`: the larger, the more a province's SIPAS moves with its few communes).

Change since last year (issue #22, `change_coverage.py`): `--change N` re-surveys N simulated worlds (place effects
persistent by code, `DesignParams.persistence` 0.8 of their variance) in 2024 and 2025 and prints the coverage of the
change's 95% interval (paired, as published, and the old independent one), its false-positive rate where the truth
does not change, and the real sd of the change over the se each reports. Targets 93.5-96.5% and 4-6%.

usage: python benchmarks/coverage.py [--years 200] [--settings 1:0.5 ...] [--seed 1000] [--ranks-only]
                                     [--change 100] [--change-only]
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
from sipas_pipeline.stabilised import with_stabilised
from sipas_pipeline.synth import DesignParams, simulate_citizens
from sipas_pipeline.variance import add_uncertainty

BANDS = [("n < 30", 0, 30), ("n 30-99", 30, 100), ("n 100+", 100, 10**9)]
TARGETS = {"indicators": (93.5, 96.5), "n < 30": (92.0, 100.0), "SIPAS": (93.5, 96.5),
           "indicators, stabilised": (93.5, 96.5), "SIPAS, stabilised": (93.5, 96.5)}
TOP = 5
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
    ind = with_stabilised(add_uncertainty(est.values, m.design, proportion=True).with_columns(
        pl.lit("province").alias("unit_level")), m.design.confidence, True, ["indicator_id"])
    ind = (ind.join(year.truth.rename({"value": "truth"}), on=["province_code", "indicator_id"])
           .join(kish(m, year.citizen), on=["province_code", "indicator_id"]))
    tree = with_stabilised(add_uncertainty(sipas_tree(m, est), m.design, proportion=False).with_columns(
        pl.lit("province").alias("unit_level")), m.design.confidence, False, ["level", "node"]).filter(pl.col("level") == "sipas")
    # version 1: the tree's se from the indicators' Kish se, children independent
    coef = tree_coefficients(m, est.values).filter(pl.col("level") == "sipas")
    kish_tree = (coef.join(ind.select("province_code", "indicator_id", "se_kish"), on=["province_code", "indicator_id"])
                 .group_by("province_code").agg(((pl.col("c") * pl.col("se_kish")) ** 2).sum().sqrt().alias("se_kish")))
    truth = year.tree.filter(pl.col("node") == "SIPAS").select(
        "province_code", pl.col("value").alias("truth"),
        pl.col("value").rank("ordinal", descending=True).cast(pl.Int64).alias("true_rank"))
    sipas = tree.join(truth, on="province_code").join(kish_tree, on="province_code").sort("province_code")
    values = sipas.select("province_code", pl.lit("sipas").alias("measure"), "value", "se", "df", "se_stabilised",
                          "df_stabilised")
    for basis in BASES:  # the sets from the direct variances and from the stabilised ones (design.rank_variance)
        ranked = rank_intervals(m, ranks(m, values), basis)
        sipas = sipas.join(ranked.select("province_code", *[pl.col(c).alias(f"{c}:{basis}") for c in SET_COLUMNS]),
                           on="province_code")
    # the old percentile interval: draws around the estimates (value + se x t(df)), 5th-95th percentile of the rank
    v, se, df = (sipas[c].to_numpy() for c in ("value", "se", "df"))
    draws = v[None, :] + se[None, :] * np.random.default_rng(seed).standard_t(df[None, :], (m.design.rank_draws, v.size))
    low, high = rank_percentiles(simulated_ranks(draws, np.zeros(v.size, dtype=np.int64)), (1 - m.design.rank_interval) / 2)
    sipas = sipas.with_columns(pl.Series("rank_low_old", low), pl.Series("rank_high_old", high))
    return {"indicators": ind.with_columns(pl.lit(seed).alias("year")), "sipas": sipas.with_columns(pl.lit(seed).alias("year"))}


BASES = {"direct": "each province's se and df, about 1-6", "stabilised": "se_stabilised and df_stabilised, the "
         "pipeline's default (design.rank_variance)"}
SET_COLUMNS = ("rank_low", "rank_high", "rank_simul_low", "rank_simul_high", "in_top5_set", "in_bottom5_set")


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
                           .alias("ok_kish"))
    out.append(("SIPAS", s.height, 100 * s["ok"].mean(), 100 * s["ok_kish"].mean()))
    for label, f in (("indicators, stabilised", ind), ("SIPAS, stabilised", s)):
        ok = f.filter(pl.col("se_stabilised").is_not_null()).select(covered("ci_low_stabilised", "ci_high_stabilised"))
        out.append((label, ok.height, 100 * ok.to_series().mean(), float("nan")))
    return out


def rank_coverage(sipas: pl.DataFrame, basis: str) -> dict[str, float]:
    """Coverage (%) of the rank sets built from `basis` variances by true position, joint coverage per year, widths."""
    k = sipas.group_by("year").len()["len"].max()
    s = sipas.rename({f"{c}:{basis}": c for c in SET_COLUMNS}).with_columns(
        pl.when(pl.col("true_rank") <= TOP).then(pl.lit("top")).when(pl.col("true_rank") > k - TOP).then(pl.lit("bottom"))
        .otherwise(pl.lit("middle")).alias("position"),
        covered("rank_low", "rank_high", "true_rank").alias("marginal"),
        covered("rank_simul_low", "rank_simul_high", "true_rank").alias("simul"),
        covered("rank_low_old", "rank_high_old", "true_rank").alias("old"))
    out = {}
    for what in ("marginal", "old"):
        for pos in ("top", "middle", "bottom"):
            out[f"{what} {pos}"] = 100 * s.filter(pl.col("position") == pos)[what].mean()
        out[f"{what} all"] = 100 * s[what].mean()
    years = s.group_by("year").agg(
        pl.col("simul").min().alias("simul"),
        pl.col("in_top5_set").filter(pl.col("true_rank") <= TOP).all().alias("top"),
        pl.col("in_bottom5_set").filter(pl.col("true_rank") > k - TOP).all().alias("bottom"),
        pl.col("in_top5_set").sum().alias("top_size"), pl.col("in_bottom5_set").sum().alias("bottom_size"))
    out |= {"simul joint": 100 * years["simul"].mean(), "top joint": 100 * years["top"].cast(pl.Float64).mean(),
            "bottom joint": 100 * years["bottom"].cast(pl.Float64).mean(),
            "width marginal": float((s["rank_high"] - s["rank_low"] + 1).median()),
            "width simul": float((s["rank_simul_high"] - s["rank_simul_low"] + 1).median()),
            "width old": float((s["rank_high_old"] - s["rank_low_old"] + 1).median()),
            "top size": float(years["top_size"].median()), "bottom size": float(years["bottom_size"].median())}
    return out


def print_ranks(r: dict[str, float], basis: str) -> None:
    """The rank block of one setting, for the sets built from `basis` variances."""
    def verdict(*values: float) -> str:
        return "  ok" if min(values) >= 90 else "  MISSED"
    print(f"  rank sets from the {basis} variances ({BASES[basis]})")
    print(f"  {'coverage of the SIPAS rank (90%) by true position':<52}{'top 5':>7}{'middle':>8}{'bottom 5':>9}{'all':>7}"
          "  target")
    m = [r[f"marginal {p}"] for p in ("top", "middle", "bottom", "all")]
    print(f"  {'90% marginal rank set (rank_low-rank_high)':<52}" + "".join(f"{x:>{w}.1f}%" for x, w in
                                                                       zip(m, (6, 7, 8, 6), strict=True))
          + "  >= 90% at every position" + verdict(*m[:3]))
    o = [r[f"old {p}"] for p in ("top", "middle", "bottom", "all")]
    print(f"  {'old percentile interval (draws around estimates)':<52}" + "".join(f"{x:>{w}.1f}%" for x, w in
                                                                            zip(o, (6, 7, 8, 6), strict=True))
          + "  (contrast: no longer published)")
    print(f"  simultaneous set holds all ranks at once: {r['simul joint']:.1f}% of years  (>= 90%){verdict(r['simul joint'])}")
    print(f"  top-five set holds all five true top: {r['top joint']:.1f}%; bottom-five set all five true bottom: "
          f"{r['bottom joint']:.1f}%  (>= 90%){verdict(r['top joint'], r['bottom joint'])}")
    print(f"  median width (places): marginal {r['width marginal']:g}, simultaneous {r['width simul']:g}, old "
          f"{r['width old']:g}; median size of the top-five set {r['top size']:g}, bottom-five {r['bottom size']:g}")


def setting(text: str) -> tuple[float, float]:
    """`effects:shared` -> (effects scale, shared share)."""
    effects, _, shared = text.partition(":")
    return float(effects), float(shared or 0.5)


def change_block(m: Methodology, seed: int, replicates: int, design: DesignParams, effects: float) -> None:
    """The change's coverage on `replicates` re-surveyed worlds (`change_coverage.py`), printed."""
    from change_coverage import print_change, replicate

    t0 = time.perf_counter()
    m25 = load_methodology(2025)
    rows = pl.concat([replicate(m, m25, seed + k, design) for k in range(replicates)])
    print(f"effects x{effects:g}: commune ICC {design.commune_icc:g}, village ICC {design.village_icc:g}, shared "
          f"{design.shared:g}, persistence {design.persistence:g}")
    print_change(rows, replicates, time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", type=int, default=200)
    ap.add_argument("--settings", nargs="+", type=setting, default=[(1.0, 0.5)],
                    help="effects:shared pairs, e.g. 1:0.25 1:1 2:1 (effects 1 = realistic defaults)")
    ap.add_argument("--seed", type=int, default=1000, help="first simulated year's seed (then +1 each)")
    ap.add_argument("--ranks-only", action="store_true", help="print only the rank blocks")
    ap.add_argument("--change", type=int, default=0, help="re-surveyed replicates for the change's coverage (0: none)")
    ap.add_argument("--change-only", action="store_true", help="print only the change block")
    args = ap.parse_args()
    m = load_methodology(2024)
    for effects, shared in args.settings:
        base = DesignParams().scaled(effects)
        design = DesignParams(base.commune_icc, base.village_icc, shared, base.item_correlation, base.urban_shift,
                              base.villages_per_commune)
        if args.change:
            change_block(m, args.seed, args.change, design, effects)
        if args.change_only:
            continue
        t0 = time.perf_counter()
        years = [one_year(m, args.seed + k, design) for k in range(args.years)]
        seconds = time.perf_counter() - t0
        ind = pl.concat([y["indicators"] for y in years])
        sipas = pl.concat([y["sipas"] for y in years])
        per_year = ind.group_by("year").agg(pl.col("n").sum())["n"].mean()
        print(f"{args.years} simulated years x 63 provinces (all 103 indicators, fresh PPS sample each year), "
              f"effects x{effects:g}: commune ICC {design.commune_icc:g}, village ICC {design.village_icc:g}, "
              f"shared {design.shared:g}, inter-item correlation {design.item_correlation:g} (latent scale)")
        print(f"  {per_year / 63 / 103:.0f} answers per province and indicator on average; "
              f"{seconds:.0f} s ({seconds / args.years:.2f} s a year), peak RSS {peak_rss_mb():.0f} MB")
        if not args.ranks_only:
            print(f"  {'coverage of':<40}{'cells':>8}  {'design-based':>12}  {'v1 Kish':>8}  target")
            for label, cells, ours, old in summarise(ind, sipas):
                lo, hi = TARGETS.get(label, (None, None))
                target = "" if lo is None else (f">= {lo:g}%" if hi >= 100 else f"{lo:g}-{hi:g}%")
                verdict = "" if lo is None else ("  ok" if lo <= ours <= hi else "  MISSED")
                kish_col = "" if np.isnan(old) else f"{old:.1f}%"
                print(f"  {'95% interval, ' + label:<40}{cells:>8}  {ours:>11.1f}%  {kish_col:>8}  {target}{verdict}")
            se_ratio = sipas.select((pl.col("se") / pl.col("se_kish")).median()).item()
            print(f"  SIPAS: median design-based se / Kish se = {se_ratio:.2f}; its df (Satterthwaite, at most PSUs - "
                  f"strata) median {sipas['df'].median():.2f}; stabilised: median df {sipas['df_stabilised'].median():.0f}, "
                  "median interval width (points) direct "
                  f"{(sipas['ci_high'] - sipas['ci_low']).median():.2f}, stabilised "
                  f"{(sipas['ci_high_stabilised'] - sipas['ci_low_stabilised']).median():.2f}")
        for basis in BASES:
            print_ranks(rank_coverage(sipas, basis), basis)


if __name__ == "__main__":
    main()
