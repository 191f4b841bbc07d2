"""Deterministic to the bit: the full-size year's results hash, computed many times.

1. `--stages` times (default 100) through the compute stage from the same silver Parquet, in this
   process, with Polars' own thread pool (leave POLARS_MAX_THREADS unset);
2. `--runs` times (default 10) through the real command `sipas run --json` (each its own process, its
   own temporary Prefect server), alternately with a fresh work folder (nothing cached) and the same one
   (ingest, validate and compute served from Prefect's cache), all publishing into one DuckDB file.

Prints how many distinct hashes each part saw and over all (must be 1), and checks that every run's
`runs.results_hash` in the DuckDB file is the hash its command printed.

usage: python benchmarks/determinism.py [--stages 100] [--runs 10] [--scale 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
from common import OUT, silver, year

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.duckdb_file import read_query
from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.publish import results_hash
from sipas_pipeline.stages import SOURCES, compute_results, previous_published

SIPAS = Path(sys.executable).with_name("sipas")


def stage_hashes(scale: float, times: int) -> Counter:
    """The results hash of `times` computations of the year from its silver Parquet."""
    m = load_methodology(2024)
    work = silver(scale)
    frames = {s: pl.read_parquet(StageFolder(work).silver(s)) for s in SOURCES}
    seen: Counter = Counter()
    for _ in range(times):
        tables = compute_results(m, frames["citizen"], frames["official"], frames["appraisal"], previous_published(m))
        seen[results_hash(tables)] += 1
    return seen


def run_hashes(scale: float, times: int) -> tuple[Counter, list[dict]]:
    """The results hash printed by `times` real `sipas run` commands (uncached and cached alternately),
    and per run: cached stages, seconds, and whether the DuckDB file recorded the same hash."""
    root = OUT / f"determinism_x{scale:g}"
    shutil.rmtree(root, ignore_errors=True)
    db, cached_work = root / "sipas.duckdb", root / "work-cached"
    (root / "prefect").mkdir(parents=True)
    env = os.environ | {"PREFECT_HOME": str(root / "prefect"), "SIPAS_DATA": str(root / "data")}
    env.pop("PREFECT_API_URL", None)
    seen: Counter = Counter()
    runs = []
    for i in range(times):
        work = cached_work if i % 2 else root / f"work-{i}"
        t0 = time.perf_counter()
        proc = subprocess.run([str(SIPAS), "run", "--year", "2024", "--raw", str(year(scale)), "--db", str(db),
                               "--work", str(work), "--json"], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"sipas run failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
        out = json.loads(proc.stdout)
        recorded = read_query(db, "SELECT results_hash FROM runs WHERE run_id = $r", {"r": out["run_id"]})[0][0]
        seen[out["results_hash"]] += 1
        runs.append({"cached": out["cached"], "seconds": round(time.perf_counter() - t0, 1),
                     "recorded_equal": recorded == out["results_hash"]})
    return seen, runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", type=int, default=100)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    print(f"POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS', 'unset')}, Polars thread pool "
          f"{pl.thread_pool_size()}, {os.cpu_count()} CPUs")
    t0 = time.perf_counter()
    stages = stage_hashes(args.scale, args.stages)
    print(f"compute from silver x{args.scale:g}: {sum(stages.values())} times, {len(stages)} distinct hash(es) "
          f"{[h[:16] for h in stages]}  ({time.perf_counter() - t0:.0f} s)")
    t0 = time.perf_counter()
    runs, detail = run_hashes(args.scale, args.runs)
    print(f"sipas run x{args.scale:g}: {sum(runs.values())} runs "
          f"({sum(1 for d in detail if d['cached'])} with cached stages), {len(runs)} distinct hash(es) "
          f"{[h[:16] for h in runs]}; DuckDB runs.results_hash equal to the printed hash in "
          f"{sum(d['recorded_equal'] for d in detail)} of {len(detail)}  ({time.perf_counter() - t0:.0f} s)")
    for i, d in enumerate(detail):
        print(f"  run {i + 1}: cached {d['cached'] or 'nothing'}, {d['seconds']} s")
    distinct = len(set(stages) | set(runs))
    print(f"distinct results hashes over all {sum(stages.values()) + sum(runs.values())}: {distinct} (must be 1)")
    if distinct != 1 or not all(d["recorded_equal"] for d in detail):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
