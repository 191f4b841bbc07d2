"""Time `sipas report` (a real process) on the full-size synthetic year, published once without Prefect.
Target: <= 5 s. Prints the figures; asserts nothing."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from common import OUT, year

from sipas_pipeline import stages
from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.publish import publish


def main() -> None:
    m = load_methodology(2024)
    raw = year(1.0)  # the full-size synthetic year, made once
    work, db, out = OUT / "report" / "work", OUT / "report" / "sipas.duckdb", OUT / "report" / "release"
    if not db.is_file():
        stages.ingest(m, raw, work)
        stages.validate(m, work)
        stages.compute(m, work)
        publish(db, m, {"run_id": "2024-bench", "started_at": datetime.now(UTC), "parameters": {}, "code_version": "bench",
                        "timings": []}, stages.read_results(work), stages.read_quarantine(work))
    sipas = Path(sys.executable).with_name("sipas")
    times, cpu = [], []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([str(sipas), "report", "--year", "2024", "--db", str(db), "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    times.sort()
    cpu.sort()
    print(f"sipas report, full-size year: median {times[1]:.2f} s wall (min {times[0]:.2f}, max {times[2]:.2f}), "
          f"{cpu[1]:.2f} s CPU; target <= 5 s")


if __name__ == "__main__":
    main()
