"""Coverage of the year-on-year change's 95% interval on re-surveyed simulated years (issue #22), used by
`coverage.py --change`.

Each replicate is one simulated world (`synth.simulate_citizens` with one seed: place effects persistent by code,
`DesignParams.persistence` of their variance, plus each year's own part) surveyed twice with the declared samples
(the 2025 frame re-surveys the 2024 communes and villages):
- 2024 -> 2025: 2024 re-estimated on the 34 units (`comparable.reestimate`), 2025 estimated, the change's interval
  paired (`paired.paired_variance`, as the run computes it) and, for contrast, independent (sqrt(se1^2 + se2^2));
  the truth is the change of the finite-population values (2024 pooled on the units);
- no change: the 2024 methodology twice (two occasions, the same targets): the true change is 0, so an interval
  excluding 0 is a false positive.
Reported: coverage of the true change, false-positive rate, and the real sd of the change's error over the
replicates divided by the reported se (median over units and measures): about 1 for a se that is right.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from sipas_pipeline import comparable
from sipas_pipeline.indicators import estimate_indicators, sipas_tree
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.paired import measure_scores, paired_variance
from sipas_pipeline.ranking import change
from sipas_pipeline.synth import DesignParams, simulate_citizens
from sipas_pipeline.synth.truth import tree_truth

MEASURES = {"SIPAS": "sipas", "policy": "sipas_policy", "service": "sipas_service"}
TARGETS = {"coverage": (93.5, 96.5), "false positives": (4.0, 6.0)}


def measures(m: Methodology, est) -> pl.DataFrame:
    """province_code, measure, value, se, df, rank_national (unused here) of the ranked SIPAS measures."""
    tree = sipas_tree(m, est).filter(pl.col("level") != "element")
    name = pl.when(pl.col("node") == "SIPAS").then(pl.lit("sipas")).otherwise(pl.lit("sipas_") + pl.col("node"))
    return tree.select("province_code", name.alias("measure"), "value", pl.col("var").sqrt().alias("se"), "df",
                       pl.lit(1).alias("rank_national"))


def truth_of(tree: pl.DataFrame, name: str) -> pl.DataFrame:
    return (tree.filter(pl.col("node").is_in(list(MEASURES)))
            .select("province_code", pl.col("node").replace_strict(MEASURES).alias("measure"), pl.col("value").alias(name)))


def both_ways(m: Methodology, current: pl.DataFrame, previous: pl.DataFrame, paired: pl.DataFrame) -> pl.DataFrame:
    """The change with its paired and its independent interval side by side."""
    keys = ["province_code", "measure"]
    cols = ["change_se", "change_ci_low", "change_ci_high", "change_significant"]
    p = change(current, previous, m.design.confidence, paired).select(*keys, "change_value", "change_method", *cols)
    i = change(current, previous, m.design.confidence).select(*keys, *[pl.col(c).alias(f"{c}_ind") for c in cols])
    return p.join(i, on=keys)


def replicate(m24: Methodology, m25: Methodology, seed: int, design: DesignParams) -> pl.DataFrame:
    """Both worlds of one replicate: rows per (world, unit, measure) with the change, both intervals and the truth."""
    y24 = simulate_citizens(m24, seed, design, redraw_sample=False)
    y25 = simulate_citizens(m25, seed, design, redraw_sample=False)
    prev = comparable.reestimate(m24, m25, y24.citizen)
    values, scores = comparable.split(prev)
    est25 = estimate_indicators(m25, y25.citizen)
    paired = paired_variance(measure_scores(m25, est25), scores)
    unit_of = dict(zip(m25.unit_mapping["from_code"], m25.unit_mapping["to_code"], strict=True))
    before = truth_of(tree_truth(m24, y24.population.domain_truth(unit_of)), "before")
    truth = truth_of(y25.tree, "after").join(before, on=["province_code", "measure"])
    merged = (both_ways(m25, measures(m25, est25), values, paired).join(truth, on=["province_code", "measure"])
              .with_columns(pl.lit("2024 -> 2025 (34 units)").alias("world")))
    # no change: the 2024 design surveyed twice (occasion 2025 redraws the year's own parts and the answers)
    again = simulate_citizens(m24, seed, design, redraw_sample=False, occasion=2025)
    est_a = estimate_indicators(m24, y24.citizen)
    est_b = estimate_indicators(m24, again.citizen)
    first = measures(m24, est_a).with_columns(pl.lit("results").alias("basis"))
    pairs = paired_variance(measure_scores(m24, est_b), measure_scores(m24, est_a))
    same = (both_ways(m24, measures(m24, est_b), first, pairs)
            .join(truth_of(again.tree, "after").join(truth_of(y24.tree, "before"), on=["province_code", "measure"]),
                  on=["province_code", "measure"])
            .with_columns(pl.lit("no change (63 provinces, 2024 twice)").alias("world")))
    return pl.concat([merged, same.select(merged.columns)]).with_columns(pl.lit(seed).alias("replicate"))


def summary(rows: pl.DataFrame) -> list[dict]:
    """Per world: coverage and false positives (%) of the paired and the independent interval, and the real sd of
    the change's error over the replicates / the reported se (median over unit x measure)."""
    truth = pl.col("after") - pl.col("before")
    out = []
    for (world,), part in sorted(rows.partition_by("world", as_dict=True).items()):
        w = part.with_columns(truth.alias("truth"), (pl.col("change_value") - truth).alias("error"))
        row = {"world": world, "cells": w.height, "paired": (w["change_method"] == "paired").mean() * 100}
        for tag, suffix in (("paired", ""), ("independent", "_ind")):
            lo, hi, se = (pl.col(f"{c}{suffix}") for c in ("change_ci_low", "change_ci_high", "change_se"))
            row[f"coverage {tag}"] = 100 * w.select(((pl.col("truth") >= lo) & (pl.col("truth") <= hi)).mean()).item()
            null = w.filter(pl.col("truth").abs() < 1e-9)
            row[f"false positives {tag}"] = 100 * null[f"change_significant{suffix}"].mean() if null.height else float("nan")
            ratio = w.group_by("province_code", "measure").agg((pl.col("error").std() / (se ** 2).mean().sqrt()).alias("r"))
            row[f"sd/se {tag}"] = float(ratio["r"].median())
        out.append(row)
    return out


def print_change(rows: pl.DataFrame, replicates: int, seconds: float) -> None:
    """The change block of one setting."""
    print(f"  change since last year, 95% interval, {replicates} re-surveyed replicates ({seconds:.0f} s):")
    print(f"  {'world':<40}{'cells':>7}{'paired':>8}  {'coverage':>17}  {'false positives':>17}  {'real sd / se':>15}")
    print(f"  {'':<40}{'':>7}{'share':>8}  {'paired  indep.':>17}  {'paired  indep.':>17}  {'paired  indep.':>15}")
    for r in summary(rows):
        cov = (r["coverage paired"], r["coverage independent"])
        fp = (r["false positives paired"], r["false positives independent"])
        lo, hi = TARGETS["coverage"]
        verdict = "ok" if lo <= cov[0] <= hi else "MISSED"
        if not np.isnan(fp[0]):
            flo, fhi = TARGETS["false positives"]
            verdict += ", fp " + ("ok" if flo <= fp[0] <= fhi else "MISSED")
        print(f"  {r['world']:<40}{r['cells']:>7}{r['paired']:>7.0f}%  {cov[0]:>7.1f}% {cov[1]:>7.1f}%  "
              + (f"{fp[0]:>7.1f}% {fp[1]:>7.1f}%" if not np.isnan(fp[0]) else f"{'-':>8} {'-':>8}")
              + f"  {r['sd/se paired']:>7.2f} {r['sd/se independent']:>7.2f}  ({verdict}; targets coverage "
              f"{lo:g}-{hi:g}%, false positives 4-6%)")
