"""The synthetic sampling frame: every commune and village of the (invented) population around the
2024 sample, and how a sample is drawn from it.

`schemas/2024/sampling_frame.csv` lists all communes and villages; `in_sample` marks the 2024 sample
(195 districts, 385 communes, 1,170 villages). The file was made once by `extend_frame` (run this
module: `python -m sipas_pipeline.synth.frame`); the generator reads it and never rewrites it.

Design (what the weights say): within each stratum (province x urban/rural) communes are drawn with
probability proportional to size (adults; systematic PPS, so P(commune) = n_h * M_c / M_h), then villages
by simple random sampling within the commune (k of V), then respondents by simple random sampling
within the village (m of N). A respondent's weight is 1 / (P(commune) * k/V * m/N).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl

EXTRA_COMMUNES = {"yes": (4, 8), "no": (10, 18)}  # unsampled communes per sampled one: urban, rural strata
VILLAGES = (3, 9)  # villages of an added commune
EXTRA_VILLAGES = (1, 5)  # unsampled villages added to a sampled commune
ADULTS = (400, 4000)  # adults in an added village


def extend_frame(sample: pl.DataFrame, seed: int = 2024) -> pl.DataFrame:
    """All communes and villages: the sample's rows (`in_sample` = yes) and invented unsampled ones
    in the same districts and strata, numbered after the sample's codes."""
    rng = np.random.default_rng([seed, 31])
    rows: list[dict] = []
    next_commune = int(sample["commune_code"].cast(pl.Int64).max()) + 1
    for (code, stratum), g in sorted(sample.partition_by("province_code", "stratum", as_dict=True).items()):
        urban = g["urban"][0]
        districts = g["district_code"].unique().sort().to_list()
        for (commune, district), cg in sorted(g.partition_by("commune_code", "district_code", as_dict=True).items()):
            last = max(int(v[-2:]) for v in cg["village_code"])
            for j in range(int(rng.integers(*EXTRA_VILLAGES))):
                rows.append({"province_code": code, "district_code": district, "commune_code": commune,
                             "village_code": f"{commune}{last + j + 1:02d}", "stratum": stratum, "urban": urban,
                             "population": int(rng.integers(*ADULTS)), "in_sample": "no"})
        n_h = g["commune_code"].n_unique()
        for _ in range(n_h * int(rng.integers(*EXTRA_COMMUNES[urban]))):
            commune = f"{next_commune:05d}"
            next_commune += 1
            district = districts[int(rng.integers(0, len(districts)))]
            for j in range(int(rng.integers(*VILLAGES))):
                rows.append({"province_code": code, "district_code": district, "commune_code": commune,
                             "village_code": f"{commune}{j + 1:02d}", "stratum": stratum, "urban": urban,
                             "population": int(rng.integers(*ADULTS)), "in_sample": "no"})
    base = sample.select("province_code", "district_code", "commune_code", "village_code", "stratum", "urban",
                         pl.col("population").cast(pl.Int64), pl.lit("yes").alias("in_sample"))
    return pl.concat([base, pl.DataFrame(rows, schema=base.schema)]).sort(
        "province_code", "district_code", "commune_code", "village_code")


HEADER = """\
# The 2024 SIPAS sampling frame (synthetic, made for this project: the real frame is not public): every
# commune and village of the invented population, one row per village. in_sample = yes marks the 2024
# sample: 195 districts, 385 communes, 1,170 villages over the 63 provinces (the counts methodology.yaml
# expects); a form's village must be a sampled one and nest in the commune, district and province the form
# names. stratum: province x urban/rural (communes are the primary sampling units, drawn within strata with
# probability proportional to size, villages then respondents by simple random sampling within them);
# population: adults in the village, from which inclusion probabilities and design weights follow.
# Made by `python -m sipas_pipeline.synth.frame` around the version-1 sample; not rewritten by the generator.
"""


def main() -> None:
    """Rewrite `schemas/2024/sampling_frame.csv` from its sampled rows (idempotent)."""
    from sipas_pipeline.methodology.loader import _read_csv

    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("schemas/2024/sampling_frame.csv")
    table = _read_csv(path)
    if "in_sample" in table.columns:
        table = table.filter(pl.col("in_sample") == "yes").drop("in_sample")
    frame = extend_frame(table.with_columns(pl.col("population").cast(pl.Int64)))
    path.write_text(HEADER + frame.write_csv(), encoding="utf-8")
    print(f"{path}: {frame.height} villages, {frame['commune_code'].n_unique()} communes "
          f"({(frame['in_sample'] == 'yes').sum()} villages sampled)")


if __name__ == "__main__":
    main()
