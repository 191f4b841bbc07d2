"""A re-run after a one-province correction beside a full run, both through the Prefect flow on the
embedded server, on the full-size year (target: the re-run's pipeline time at most half the full run's).

The pipeline time is the seconds the stages themselves spend (the flow's `timings`: a stage served
from Prefect's cache counts 0); the wall time adds Prefect's own work per run. Both publish without the analyst
release (`report=False`: `benchmarks/report.py` measures it).

usage: python benchmarks/rerun.py [--scale 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
from common import OUT, year

from sipas_pipeline.catalog import Catalog, StageFolder
from sipas_pipeline.corrections import COLUMNS

PROVINCE = "01"
QUESTIONS = ["s_s_acc_location", "s_s_pro_posted", "s_s_sta_courtesy", "s_s_res_correct", "s_s_overall"]


def one_province_file(work_in: Path, out: Path) -> int:
    """Correction lines setting QUESTIONS to 1 on every valid form of PROVINCE; returns the line count."""
    silver = pl.read_parquet(StageFolder(work_in).silver("citizen")).filter(pl.col("province_code") == PROVINCE)
    bronze = pl.concat([pl.read_parquet(p) for p in StageFolder(work_in).bronze_files("citizen")])
    forms = bronze.join(silver.select("source_file", "source_row"), on=["source_file", "source_row"])
    n = 0
    with out.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in forms.iter_rows(named=True):
            for q in QUESTIONS:
                if r[q] not in (None, "1", "9"):
                    w.writerow({"action": "set", "source": "citizen", "form_id": r["form_id"], "field": q,
                                "old_value": r[q], "new_value": "1", "reason": "benchmark", "requested_by": "bench",
                                "requested_at": "2025-01-15"})
                    n += 1
    return n


def main() -> None:
    from sipas_pipeline.config import prefect_defaults

    prefect_defaults(Path(__file__).resolve().parents[1] / ".prefect")  # before Prefect is imported
    from sipas_pipeline.orchestration import annual_run

    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    raw = year(args.scale)
    root = OUT / f"rerun_x{args.scale:g}"
    full, rerun = [], []
    for i in range(args.repeat):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        kw = {"year": 2024, "raw": str(raw), "db": str(root / "bench.duckdb"), "work": str(root / "work"),
              "allow_incomplete": args.scale < 1,  # a tiny smoke-test year has provinces under the minimum
              "report": False}  # the stages are measured: the analyst release (report.py) is not rebuilt each run
        t0 = time.perf_counter()
        a = annual_run(**kw)
        full.append((sum(a["timings"].values()), time.perf_counter() - t0))
        fix = root / "fix.csv"
        lines = one_province_file(Catalog(root / "work").input_folders()[0].root, fix)
        t0 = time.perf_counter()
        b = annual_run(**kw, corrections=[str(fix)])
        rerun.append((sum(b["timings"].values()), time.perf_counter() - t0))
        if i == 0:
            print(f"full run stages: {a['timings']}")
            print(f"re-run after {lines} corrections to province {PROVINCE}: {b['timings']}, cached {b['cached']}")
    for label, xs in (("full run", full), ("re-run, one province corrected", rerun)):
        pipe, wall = [x[0] for x in xs], [x[1] for x in xs]
        print(f"{label:<32} pipeline median {statistics.median(pipe):6.3f} s (range {min(pipe):.3f}-{max(pipe):.3f})"
              f"   wall median {statistics.median(wall):6.3f} s")
    ratio = statistics.median(x[0] for x in rerun) / statistics.median(x[0] for x in full)
    print(f"re-run / full pipeline time: {ratio:.2f} (target <= 0.50)")


if __name__ == "__main__":
    main()
