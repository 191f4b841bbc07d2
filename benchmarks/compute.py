"""Compute time (indicators, SIPAS tree, PAR, ranks) on the full-size year and on a year made
N times larger by replicating the silver citizens' and officials' forms (target: < 1 s at 1x).

usage: python benchmarks/compute.py [--repeat 5] [--scales 1 10 100]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import line, peak_rss_mb, timed
from common import silver as silver_work

from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.stages import compute_results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument("--base-scale", type=float, default=1.0, help="the year replicated (1 = full size)")
    args = ap.parse_args()
    m = load_methodology(2024)
    work = silver_work(args.base_scale)
    silver = {s: pl.read_parquet(work / "silver" / f"{s}.parquet") for s in ("citizen", "official", "appraisal")}
    print(f"compute, {args.repeat} runs per scale")
    for k in args.scales:
        cit = pl.concat([silver["citizen"]] * k) if k > 1 else silver["citizen"]
        off = pl.concat([silver["official"]] * k) if k > 1 else silver["official"]
        t = timed(lambda c=cit, o=off: compute_results(m, c, o, silver["appraisal"]), args.repeat)
        print(line(f"x{k}: {cit.height:,} citizens, {off.height:,} officials", t, "target < 1 s" if k == 1 else ""))
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
