"""Province targets for a synthetic year, calibrated to the published figures (`published.csv`).

Anchored provinces get their published value and rank; the others fill the remaining ranks on a
smooth curve through the anchors, placed by a seeded search so that regional means land on the
published ones. The tail of the curve is solved so that the mean of the 63 equals the national
figure.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from sipas_pipeline.methodology import Methodology

# Values the release does not give for ranked provinces: plausible points between their neighbours.
_SIPAS_FILL = {3: 89.80, 4: 89.40, 5: 89.00}
_PAR_FILL = {2: 95.20, 3: 94.50, 4: 93.00, 13: 90.01, 14: 89.85}
_BOTTOM_GAP = {"sipas": 4.0, "par": 2.2}


def _curve(anchors: dict[int, float], n: int, mean: float, free_from: int, gap: float) -> np.ndarray:
    """Values by rank 1..n through `anchors`; ranks past `free_from` are solved for the mean."""
    def build(tail: float) -> np.ndarray:
        pts = dict(anchors)
        pts[n] = tail - gap
        pts[n - 5] = tail
        xs = sorted(pts)
        return np.interp(np.arange(1, n + 1), xs, [pts[x] for x in xs])

    lo, hi = 40.0, anchors[free_from]
    for _ in range(100):
        mid = (lo + hi) / 2
        if build(mid).mean() > mean:
            hi = mid
        else:
            lo = mid
    return build((lo + hi) / 2)


def _assign(values: np.ndarray, fixed: dict[str, int], codes: list[str], regions: dict[str, str],
            region_targets: dict[str, float], rng: np.random.Generator) -> dict[str, float]:
    """Give each province a rank: fixed ones keep theirs, the rest are placed by a seeded search."""
    free_codes = [c for c in codes if c not in fixed]
    free_ranks = [r for r in range(1, len(codes) + 1) if r not in fixed.values()]
    order = list(rng.permutation(len(free_ranks)))
    rank_of = dict(fixed) | {c: free_ranks[i] for c, i in zip(free_codes, order, strict=True)}

    def loss(rk: dict[str, int]) -> float:
        if not region_targets:
            return 0.0
        total = 0.0
        for reg, target in region_targets.items():
            vals = [values[rk[c] - 1] for c in codes if regions[c] == reg]
            total += (float(np.mean(vals)) - target) ** 2
        return total

    best = loss(rank_of)
    for _ in range(4000 if region_targets else 0):
        a, b = rng.choice(len(free_codes), size=2, replace=False)
        ca, cb = free_codes[a], free_codes[b]
        rank_of[ca], rank_of[cb] = rank_of[cb], rank_of[ca]
        new = loss(rank_of)
        if new <= best:
            best = new
        else:
            rank_of[ca], rank_of[cb] = rank_of[cb], rank_of[ca]
    return {c: float(values[rank_of[c] - 1]) for c in codes}


# A year with no published figures but a `comparable` block (2025 on the 34 units): the previous year's targets
# averaged over the provinces a unit took in (weighted by adults in the frame), plus a plausible year's drift
# (points; the published national SIPAS moved +1.28 and the PAR INDEX +1.39 from 2023 to 2024).
DRIFT = {"sipas": (0.8, 0.9), "par": (1.0, 0.8)}  # mean, sd across units
PART_NOISE = 0.5  # the parts drift apart by this sd (points)


def unit_weights(prev: Methodology, m: Methodology) -> pl.DataFrame:
    """Each previous-year province with the unit it became and its adults in the frame (the pooling weight)."""
    adults = prev.population_frame.group_by("province_code").agg(pl.col("population").sum().alias("adults"))
    mapping = m.unit_mapping.select(pl.col("from_code").alias("province_code"), pl.col("to_code").alias("unit_code"))
    return mapping.join(adults, on="province_code", how="left")


def derived_targets(m: Methodology, seed: int) -> pl.DataFrame:
    """Targets of a year without published figures: the previous year's targets on this year's units plus drift."""
    from sipas_pipeline.methodology import load_methodology

    prev = load_methodology(int(m.comparable["previous_year"]), m.root.parent)
    old = province_targets(prev, seed)
    measures = ["sipas", "policy", "service", "par"]
    pooled = (old.join(unit_weights(prev, m), on="province_code")
              .group_by("unit_code").agg([((pl.col(c) * pl.col("adults")).sum() / pl.col("adults").sum()).alias(c)
                                          for c in measures])
              .rename({"unit_code": "province_code"}))
    # sorted after the join (a join keeps no order): each unit gets the same drift in every process
    units = (m.provinces.select("province_code", "region_code").join(pooled, on="province_code", how="inner")
             .sort("province_code"))
    rng = np.random.default_rng([seed, m.year, 1])
    n = units.height
    d_sipas = rng.normal(*DRIFT["sipas"], n)
    d_part = rng.normal(0, PART_NOISE, n)
    d_par = rng.normal(*DRIFT["par"], n)
    return units.with_columns(
        (pl.col("policy") + d_sipas - d_part).clip(40, 98.5).alias("policy"),
        (pl.col("service") + d_sipas + d_part).clip(40, 98.5).alias("service"),
        (pl.col("par") + d_par).clip(40, 99.0).alias("par"),
    ).with_columns(((pl.col("policy") + pl.col("service")) / 2).alias("sipas")).select(
        "province_code", "region_code", *measures)


def province_targets(m: Methodology, seed: int) -> pl.DataFrame:
    """SIPAS, its two parts and the PAR INDEX targeted for every province."""
    pub = m.published()
    if (pub is None or pub.filter(pl.col("year") == m.year).height == 0) and m.comparable:
        return derived_targets(m, seed)
    if pub is None:
        raise ValueError(f"{m.root / 'published.csv'}: needed to calibrate a synthetic year")
    pub = pub.filter(pl.col("year") == m.year)
    codes = m.provinces["province_code"].to_list()
    regions = dict(zip(m.provinces["province_code"], m.provinces["region_code"], strict=True))
    rng = np.random.default_rng([seed, 20240])
    out: dict[str, dict[str, float]] = {}
    for measure, fill in (("sipas", _SIPAS_FILL), ("par", _PAR_FILL)):
        rows = pub.filter(pl.col("measure") == measure)
        national = rows.filter(pl.col("unit") == "VN")["value"][0]
        ranked = rows.filter(pl.col("rank").is_not_null())
        fixed = dict(zip(ranked["unit"], ranked["rank"], strict=True))
        anchors = {r: v for r, v in zip(ranked["rank"], ranked["value"], strict=True) if v is not None}
        anchors |= fill
        bottom = max(r for r, v in zip(ranked["rank"], ranked["value"], strict=True) if v is not None
                     or r in fill)
        anchors = {r: v for r, v in anchors.items() if r <= bottom}
        values = _curve(anchors, len(codes), national, bottom, _BOTTOM_GAP[measure])
        region_rows = rows.filter(pl.col("unit").is_in(m.regions["region_code"].to_list()))
        targets = dict(zip(region_rows["unit"], region_rows["value"], strict=True))
        out[measure] = _assign(values, fixed, codes, regions, targets, rng)
    # parts: service a little above policy, as published; spread between provinces
    pol_nat = pub.filter((pl.col("measure") == "sipas_policy") & (pl.col("unit") == "VN"))["value"]
    srv_nat = pub.filter((pl.col("measure") == "sipas_service") & (pl.col("unit") == "VN"))["value"]
    half_gap = (float(srv_nat[0]) - float(pol_nat[0])) / 2 if len(pol_nat) and len(srv_nat) else 0.0
    d = rng.normal(0, 1.2, len(codes))
    d -= d.mean()
    sipas = np.array([out["sipas"][c] for c in codes])
    return pl.DataFrame({
        "province_code": codes,
        "region_code": [regions[c] for c in codes],
        "sipas": sipas,
        "policy": sipas - half_gap + d,
        "service": sipas + half_gap - d,
        "par": [out["par"][c] for c in codes],
    })
