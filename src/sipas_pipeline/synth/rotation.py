"""Sample rotation: next year's sample re-surveys this year's communes and villages, but for a few communes
replaced, as a real panel of PSUs rotates (a commune that refused, was merged away, or is rotated out by design).

`rotate` marks the new sample in a frame's `in_sample`: about 5% of the sampled PSUs (communes; in the 2025 frame
the 2024 commune, column `psu`) are each replaced by an unsampled PSU of the same stratum with at least as many
villages (the same number of villages taken, by a seeded random order), so the sample keeps its counts of PSUs
and villages.
"""

from __future__ import annotations

import numpy as np
import polars as pl

ROTATED = 0.05  # share of the sampled communes replaced from one year to the next


def rotate(frame: pl.DataFrame, share: float = ROTATED, seed: int = 2025) -> pl.DataFrame:
    """`frame` (PSU column `psu` or `commune_code`, village_code, stratum, in_sample yes/no, ...) with about `share`
    of its sampled PSUs replaced within their strata; rows and their order unchanged."""
    from sipas_pipeline.synth.design import psu_column

    psu = psu_column(frame)
    rng = np.random.default_rng([seed, 77])
    communes = (frame.group_by("stratum", pl.col(psu).alias("commune_code"))
                .agg(pl.len().alias("villages"), (pl.col("in_sample") == "yes").sum().alias("taken"))
                .sort("stratum", "commune_code"))
    sampled = communes.filter(pl.col("taken") > 0)
    picks = rng.permutation(sampled.height)[: round(share * sampled.height)]
    out, added = {}, {}
    used: set[str] = set()
    for r in sampled[np.sort(picks).tolist()].iter_rows(named=True) if len(picks) else []:
        spare = communes.filter((pl.col("stratum") == r["stratum"]) & (pl.col("taken") == 0)
                                & (pl.col("villages") >= r["taken"]) & ~pl.col("commune_code").is_in(list(used)))
        if spare.height == 0:
            continue
        new = spare["commune_code"][int(rng.integers(spare.height))]
        used.add(new)
        out[r["commune_code"]] = True
        villages = frame.filter(pl.col(psu) == new)["village_code"].sort().to_list()
        added[new] = set(np.array(villages)[rng.permutation(len(villages))[: r["taken"]]].tolist())
    chosen = sorted(v for vs in added.values() for v in vs)
    dropped = pl.col(psu).is_in(sorted(out))
    return frame.with_columns(
        pl.when(pl.col("village_code").is_in(chosen)).then(pl.lit("yes"))
        .when(dropped).then(pl.lit("no")).otherwise(pl.col("in_sample")).alias("in_sample"))
