"""The sampling frames of 2024 and 2025: the official communes (General Statistics Office lists, see
`tools/official_units.py`) with synthetic villages and adults, and the year's sample marked in them.

Run `python -m sipas_pipeline.synth.frame` to rewrite `schemas/2024/sampling_frame.csv` and
`schemas/2025/sampling_frame.csv` from the committed lists (`communes.csv`, `commune_mapping.csv`); the generator
reads the frames and never rewrites them.

2024: every commune of `schemas/2024/communes.csv` (10,051; urban = phường or thị trấn) gets 3-7 villages (4-8 in
urban communes) of 300-2,500 adults (synthetic: the lists carry no population); stratum = province x urban/rural.
The sample keeps the sizes of the file being rewritten (communes per stratum, villages per commune: 385 communes,
1,170 villages) and is drawn as the design says: communes by systematic PPS (adults) within strata, villages by
simple random sampling within the commune (so P(commune) = n_h M_c / M_h, P(village | commune) = k / V).

2025: the same villages and adults, and the 2024 sample re-surveyed with 5% of its PSUs rotated (`rotation.py`),
each in the 2025 commune
`commune_mapping.csv` takes its 2024 commune to (province = the unit). The primary sampling unit stays the 2024
commune the village was drawn in (`psu`, its 2024 code) and the strata the 2024 ones inside each unit
(`<unit>-<old province>-<U|R>`): the sample was drawn in them, and a 2025 commune can join a ward and a rural
commune. `urban` is the stratum's (the 2024 commune's type); the 2025 commune's own type is in communes.csv.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from sipas_pipeline.paths import schemas_root
from sipas_pipeline.synth.design import pps_communes, sample_villages
from sipas_pipeline.synth.rotation import rotate

VILLAGES = {"yes": (4, 9), "no": (3, 8)}  # villages of a commune (numpy integers: high exclusive), urban / rural
ADULTS = (300, 2501)  # adults in a village
COLUMNS_2024 = ["province_code", "district_code", "commune_code", "village_code", "stratum", "urban", "population",
                "in_sample"]


def _read(path) -> pl.DataFrame:
    return pl.read_csv(path, comment_prefix="#", infer_schema=False)


def villages_2024(communes: pl.DataFrame, seed: int = 2024) -> pl.DataFrame:
    """Synthetic villages and adults of every official commune (codes `<commune><NN>`), in_sample = no."""
    rng = np.random.default_rng([seed, 41])
    communes = communes.sort("commune_code")
    lo = np.where(communes["urban"] == "yes", VILLAGES["yes"][0], VILLAGES["no"][0])
    hi = np.where(communes["urban"] == "yes", VILLAGES["yes"][1], VILLAGES["no"][1])
    counts = rng.integers(lo, hi)
    rows = communes.select("province_code", "district_code", "commune_code", "urban")[np.repeat(np.arange(communes.height),
                                                                                               counts)]
    number = np.concatenate([np.arange(1, k + 1) for k in counts])
    return (rows.with_columns(
        (pl.col("commune_code") + pl.Series([f"{j:02d}" for j in number])).alias("village_code"),
        (pl.col("province_code") + pl.lit("-") + pl.when(pl.col("urban") == "yes").then(pl.lit("U")).otherwise(pl.lit("R")))
        .alias("stratum"),
        pl.Series("population", rng.integers(*ADULTS, rows.height), pl.Int64),
        pl.lit("no").alias("in_sample"))
        .select(COLUMNS_2024))


def sample_sizes(previous: pl.DataFrame) -> tuple[pl.DataFrame, list[int]]:
    """The sizes of a frame's sample: communes per stratum (`n_h`) and, per stratum, the villages taken in each
    sampled commune (largest first)."""
    sampled = previous.filter(pl.col("in_sample") == "yes")
    n_h = sampled.group_by("stratum").agg(pl.col("commune_code").n_unique().alias("n_h"))
    ks = (sampled.group_by("stratum", "commune_code").len().sort("stratum", "len", descending=[False, True])
          .group_by("stratum", maintain_order=True).agg("len"))
    return n_h, ks


def frame_2024(communes: pl.DataFrame, previous: pl.DataFrame, seed: int = 2024) -> pl.DataFrame:
    """The 2024 frame: `villages_2024` with a sample of `previous`'s sizes drawn by the design."""
    frame = villages_2024(communes, seed)
    n_h, ks = sample_sizes(previous)
    rng = np.random.default_rng([seed, 43])

    picked = pps_communes(frame, n_h, rng)
    order = picked.sort("stratum", "v_c", "commune_code", descending=[False, True, False])
    k = order.join(ks, on="stratum").with_columns(pl.col("len").list.get(pl.int_range(pl.len()).over("stratum"))
                                                  .cast(pl.Int64).alias("k")).drop("len")
    if (k["k"] > k["v_c"]).any():
        raise ValueError("sampling frame: a sampled commune has fewer villages than its sample takes")
    sample = sample_villages(frame, k, rng)
    chosen = set(sample["village_code"].to_list())
    return frame.with_columns(pl.when(pl.col("village_code").is_in(chosen)).then(pl.lit("yes")).otherwise(pl.lit("no"))
                              .alias("in_sample")).sort("province_code", "district_code", "commune_code", "village_code")


def frame_2025(frame: pl.DataFrame, mapping: pl.DataFrame) -> pl.DataFrame:
    """The 2025 frame from the 2024 one and `commune_mapping.csv` (the module docstring's rules)."""
    to = mapping.select(pl.col("from_commune").alias("commune_code"), pl.col("to_province").alias("unit"),
                        pl.col("to_commune"))
    out = frame.join(to, on="commune_code", how="left")
    if out["to_commune"].null_count():
        raise ValueError("commune_mapping.csv: a 2024 commune of the frame has no 2025 commune")
    out = (out.select(pl.col("unit").alias("province_code"), pl.col("to_commune").alias("commune_code"), "village_code",
                      pl.col("commune_code").alias("psu"), (pl.col("unit") + pl.lit("-") + pl.col("stratum")).alias("stratum"),
                      "urban", "population", "in_sample")
           .sort("province_code", "commune_code", "village_code"))
    return rotate(out)  # a few PSUs replaced, as a panel rotates (synth/rotation.py)


HEADER_2024 = """\
# The 2024 SIPAS sampling frame: every commune of the official list (communes.csv: GSO codes, vietnam-provinces
# 0.6.0) with synthetic villages (3-7, urban 4-8; codes <commune><NN>) and synthetic adults (the list has no
# population), one row per village. stratum: province x urban/rural (urban = phường or thị trấn). in_sample = yes
# marks the 2024 sample: 385 communes, 1,170 villages, drawn as methodology.yaml says (communes PPS by adults within
# strata, villages by simple random sampling within the commune). Made by `python -m sipas_pipeline.synth.frame`.
"""
HEADER_2025 = """\
# The 2025 SIPAS sampling frame: two tiers (communes in provinces, no districts). The villages and adults of the
# 2024 frame, each in the 2025 commune commune_mapping.csv takes its 2024 commune to (vietnam-provinces 2025.10.1).
# psu: the 2024 commune the village was drawn in (its code kept: the 2025 survey re-surveys the 2024 sample);
# stratum: unit - old province x urban/rural, the strata the sample was drawn in; urban: the stratum's (the 2024
# commune's type; the 2025 commune's own type is in communes.csv). in_sample marks the 2025 sample: the 2024
# sample re-surveyed, 5% of its PSUs replaced by others of their stratum (synth/rotation.py).
# Made by `python -m sipas_pipeline.synth.frame`.
"""


def main() -> None:
    """Rewrite both years' sampling_frame.csv from the committed official lists (deterministic)."""
    root = schemas_root()
    f24 = frame_2024(_read(root / "2024" / "communes.csv"), _read(root / "2024" / "sampling_frame.csv"))
    (root / "2024" / "sampling_frame.csv").write_text(HEADER_2024 + f24.write_csv(), encoding="utf-8")
    f25 = frame_2025(f24, _read(root / "2025" / "commune_mapping.csv"))
    (root / "2025" / "sampling_frame.csv").write_text(HEADER_2025 + f25.write_csv(), encoding="utf-8")
    for year, f in ((2024, f24), (2025, f25)):
        s = f.filter(pl.col("in_sample") == "yes")
        print(f"{year}: {f.height} villages, {f['commune_code'].n_unique()} communes; sample: "
              + ", ".join(f"{c} {s[c].n_unique()}" for c in ("district_code", "commune_code", "psu", "village_code")
                          if c in s.columns))


if __name__ == "__main__":
    main()
