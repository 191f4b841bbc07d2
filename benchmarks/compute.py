"""Compute time and peak memory of the whole compute stage (indicators with design-based standard errors,
intervals and design effects, the SIPAS tree linearised as a whole, PAR INDEX with its survey se, ranks with
simulated rank intervals, regions and nation) on the full-size year and on the year made N times larger by
replicating the silver citizens' and officials' forms (targets: <= 1 s at 1x; <= 15 s and < 2 GB at 100x).

At 1x the stage runs as `sipas run` does (silver read into memory). Larger years are written once as
replicated Parquet and scanned lazily (Polars' streaming engine reads only the columns used), each scale in
its own process so its peak resident memory is its own.

usage: python benchmarks/compute.py [--repeat 5] [--scales 1 10 100] [--base-scale 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, line, peak_rss_mb, timed
from common import silver as silver_work

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.stages import compute_results

SOURCES = ("citizen", "official", "appraisal")


def replicated(work: Path, k: int, base: float) -> Path:
    """Silver citizens and officials replicated k times, written once as Parquet (streamed, not in memory)."""
    folder = OUT / f"silver_x{base:g}_rep{k}"
    for source in ("citizen", "official"):
        path = folder / f"{source}.parquet"
        if not path.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            pl.concat([pl.scan_parquet(StageFolder(work).silver(source))] * k).sink_parquet(path)
    return folder


def one_scale(k: int, base: float, repeat: int) -> dict:
    """Time the compute stage at scale k in this process; its figures as a dict."""
    m = load_methodology(2024)
    work = silver_work(base)
    appraisal = pl.read_parquet(StageFolder(work).silver("appraisal"))
    if k == 1:
        cit, off = (pl.read_parquet(StageFolder(work).silver(s)) for s in ("citizen", "official"))
        rows = (cit.height, off.height)
    else:
        folder = replicated(work, k, base)
        cit, off = (pl.scan_parquet(folder / f"{s}.parquet") for s in ("citizen", "official"))
        rows = tuple(f.select(pl.len()).collect().item() for f in (cit, off))
    t = timed(lambda: compute_results(m, cit, off, appraisal), repeat)
    return {"k": k, "citizens": rows[0], "officials": rows[1], "t": t, "peak_mb": peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument("--base-scale", type=float, default=1.0, help="the year replicated (1 = full size)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # run one scale in this process, print JSON
    ap.add_argument("--same-process", action="store_true",
                    help="every scale in this process (the smoke test; the peak memory is then this process's)")
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(one_scale(args.one, args.base_scale, args.repeat)))
        return
    silver_work(args.base_scale)  # make the year once, before the timed processes
    where = "all scales in this process" if args.same_process else "each scale in its own process"
    print(f"compute stage with design-based uncertainty, {args.repeat} runs per scale, {where}")
    for k in args.scales:
        if args.same_process:
            r = one_scale(k, args.base_scale, args.repeat)
        else:
            done = subprocess.run([sys.executable, __file__, "--one", str(k), "--repeat", str(args.repeat),
                                   "--base-scale", str(args.base_scale)], capture_output=True, text=True, check=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
        target = {1: "target <= 1 s", 100: "target <= 15 s, < 2 GB"}.get(k, "")
        print(line(f"x{k}: {r['citizens']:,} citizens, {r['officials']:,} officials", tuple(r["t"]), target)
              + f"  peak RSS {r['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
