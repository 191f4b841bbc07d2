"""Time `sipas report` (a real process) on the full-size synthetic year, published once without Prefect.
Target: <= 5 s. Prints the figures; asserts nothing."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from common import OUT, cpu_seconds, year

from sipas_pipeline import stages
from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.publish import publish


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0, help="1 = the full-size year")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    m = load_methodology(2024)
    raw = year(args.scale)  # the synthetic year, made once
    here = OUT / f"report-{args.scale:g}"
    work, db, out = here / "work", here / "sipas.duckdb", here / "release"
    if not db.is_file():
        stages.ingest(m, raw, work)
        stages.validate(m, work)
        stages.compute(m, work)
        publish(db, m, {"run_id": "2024-bench", "started_at": datetime.now(UTC), "parameters": {}, "code_version": "bench",
                        "timings": []}, stages.read_results(work), stages.read_quarantine(work))
    sipas = Path(sys.executable).with_name("sipas")
    times, cpu = [], []
    for _ in range(args.repeat):
        before = cpu_seconds(children=True)
        t0 = time.perf_counter()
        subprocess.run([str(sipas), "report", "--year", "2024", "--db", str(db), "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
        cpu.append(cpu_seconds(children=True) - before)
    times.sort()
    cpu.sort()
    mid = len(times) // 2
    print(f"sipas report, year at scale {args.scale:g}: median {times[mid]:.2f} s wall (min {times[0]:.2f}, "
          f"max {times[-1]:.2f}), median {cpu[mid]:.2f} s CPU; target <= 5 s")


if __name__ == "__main__":
    main()
