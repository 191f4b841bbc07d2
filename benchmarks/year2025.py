"""Survey year 2025 on the 34 units: time its compute stage and the comparable re-estimation of 2024 on the 34
units (domain estimation from the 2024 silver citizens' forms), at 1x (targets: each <= 1 s beside the run's other
stages). Also prints the recovery of the truth (2025 SIPAS, and the change against 2024-on-2025-units) for the year.

usage: python benchmarks/year2025.py [--repeat 5] [--scale 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import line, silver, timed, year

from sipas_pipeline import comparable
from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.stages import compute_results

NODES = {"SIPAS": "sipas", "policy": "sipas_policy", "service": "sipas_service"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    m = load_methodology(2025)
    t0 = time.perf_counter()
    w24, w25 = StageFolder(silver(args.scale)), StageFolder(silver(args.scale, survey_year=2025))
    print(f"setup (generate, ingest and validate 2024 and 2025 once, cached): {time.perf_counter() - t0:.1f} s")
    frames = {s: pl.read_parquet(w25.silver(s)) for s in ("citizen", "official", "appraisal")}
    silver24 = w24.silver("citizen")
    previous = comparable.comparable_previous(m, silver24)
    print(line("2024 re-estimated on the 34 units", timed(lambda: comparable.comparable_previous(m, silver24), args.repeat),
               "(target <= 1 s)"))
    print(line("2025 compute stage (with change)",
               timed(lambda: compute_results(m, frames["citizen"], frames["official"], frames["appraisal"], previous),
                     args.repeat), "(target <= 1 s)"))
    tables = compute_results(m, frames["citizen"], frames["official"], frames["appraisal"], previous)
    ranks = tables["ranks"]
    raw = year(args.scale, survey_year=2025)
    truth = pl.read_csv(raw / "truth" / "provinces.csv", schema_overrides={"province_code": pl.Utf8})
    got = ranks.filter(pl.col("measure") == "sipas").join(truth, on="province_code")
    z = (got["value"] - got["sipas"]) / got["se"]
    print(f"2025 SIPAS within 3 se of the truth: {int((z.abs() <= 3).sum())} of {got.height} units")
    series = (pl.read_csv(raw / "truth" / "comparable.csv", schema_overrides={"province_code": pl.Utf8})
              .filter(pl.col("node").is_in(list(NODES))).with_columns(pl.col("node").replace_strict(NODES).alias("measure")))
    ch = ranks.join(series, on=["province_code", "measure"])
    zc = (ch["change_value"] - ch["change"]) / ch["change_se"]
    print(f"change 2024 -> 2025 within 3 se of the true change: {int((zc.abs() <= 3).sum())} of {ch.height} "
          f"(SIPAS and parts x 34 units); significant: {int(ch['change_significant'].sum())}")


if __name__ == "__main__":
    main()
