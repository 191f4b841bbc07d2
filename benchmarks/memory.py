"""Peak memory of ingest + validate against the size of one citizens' export (issue #19, target: a 1 GB export
validates under 1.5 GB peak RSS, the 93 MB one under 0.6 GB). Each export is generated here (never committed): the
rows of a real synthetic batch repeated with fresh form ids until the file reaches its size; each size is measured
in a fresh process (peak resident set of that process), under an address-space limit so a size that needs far
more memory than the machine should give fails instead of swapping out the others.

usage: python benchmarks/memory.py [--sizes-mb 100 500 1000] [--limit-gb 8] [--part-mb MB] [--batch-rows N]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT

ROOT = Path(__file__).resolve().parents[1]
BATCH = ROOT / "sample_data" / "2024" / "citizen" / "sipas2024_01_ha-noi.csv"  # a real (synthetic) batch's rows


def make_export(path: Path, size_mb: float) -> int:
    """A citizens' export of about `size_mb` MB at `path` (made once): the batch's rows repeated, each with its own
    form id; returns the rows written."""
    done = path.with_suffix(".rows")
    if path.is_file() and done.is_file():
        return int(done.read_text())
    rows = list(csv.reader(io.StringIO(BATCH.read_text(encoding="utf-8-sig"), newline="")))
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    path.parent.mkdir(parents=True, exist_ok=True)
    target, n = int(size_mb * 1024 * 1024), 0
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(header)
        while f.tell() < target:
            chunk = []
            for r in body:
                r = list(r)
                r[0] = f"24-01-{n:08d}"
                n += 1
                chunk.append(r)
            w.writerows(chunk)
    done.write_text(str(n))
    return n


def child(path: Path, part_mb: float | None, batch_rows: int | None) -> None:
    """In a fresh process: ingest and validate the one export (in parts of `part_mb` MB and batches of `batch_rows`
    rows, else the defaults); print seconds, rows and peak RSS as JSON."""
    from sipas_pipeline.catalog import StageFolder
    from sipas_pipeline.ingest import ingest_source
    from sipas_pipeline.methodology import load_methodology
    from sipas_pipeline.paths import fresh_dir
    from sipas_pipeline.validate import validate_files

    m = load_methodology(2024)
    raw = path.parent.parent
    work = StageFolder(path.parent.parent.with_name(path.parent.parent.name + "_work"))
    for sub in (work.bronze_dir, work.silver_dir, work.quarantine_dir):
        fresh_dir(sub, "benchmark Parquet")
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # after the imports
    t0, c0 = time.perf_counter(), time.process_time()
    report = ingest_source(m, "citizen", raw, work.bronze_dir, int(part_mb * 1024 * 1024) if part_mb else None)
    after_ingest = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    acc, _ = validate_files(m, "citizen", work.bronze_files("citizen"), work.silver("citizen"),
                            work.quarantine("citizen"), batch_rows)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(json.dumps({"rows": report.rows, "valid": int(acc["valid"].sum()), "quarantined": int(acc["quarantined"].sum()),
                      "seconds": round(seconds, 2), "cpu": round(cpu, 2), "peak_gb": round(peak, 3),
                      "ingest_peak_gb": round(after_ingest, 3), "start_gb": round(start, 3)}))


def measure(path: Path, limit_gb: float, tuning: list[str]) -> dict:
    """One size in a fresh process under an address-space limit; its figures, or why it failed."""
    def limit() -> None:
        cap = int(limit_gb * 1024 ** 3)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    p = subprocess.run([sys.executable, __file__, "--child", str(path), *tuning], capture_output=True, text=True,
                       preexec_fn=limit, timeout=3600)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        return {"failed": f"exit {p.returncode} under a {limit_gb:g} GB address-space limit: {last[:160]}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes-mb", type=float, nargs="+", default=[100, 500, 1000])
    ap.add_argument("--limit-gb", type=float, default=8.0)
    ap.add_argument("--part-mb", type=float, help="bytes of a part read at once (default: ingest.parts.PART_BYTES)")
    ap.add_argument("--batch-rows", type=int, help="rows validated at once (default: validate.BATCH_ROWS)")
    ap.add_argument("--child", type=Path)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.part_mb, args.batch_rows)
        return
    tuning = [*(["--part-mb", str(args.part_mb)] if args.part_mb else []),
              *(["--batch-rows", str(args.batch_rows)] if args.batch_rows else [])]
    print("Peak memory of ingest + validate of one citizens' export (targets: 1 GB < 1.5 GB peak; 93 MB < 0.6 GB)")
    for size in args.sizes_mb:
        path = OUT / "memory" / f"x{size:g}mb" / "citizen" / "export.csv"
        rows = make_export(path, size)
        got = measure(path, args.limit_gb, tuning)
        mb = path.stat().st_size / 1024 / 1024
        if "failed" in got:
            print(f"export {mb:,.0f} MB ({rows:,} rows): {got['failed']}")
        else:
            print(f"export {mb:,.0f} MB ({rows:,} rows): peak RSS {got['peak_gb']:.2f} GB "
                  f"({got['peak_gb'] * 1024 / mb:.1f}x the file; {got['ingest_peak_gb']:.2f} GB by the end of ingest, "
                  f"{got['start_gb']:.2f} GB after the imports), {got['seconds']:.1f} s ({got['cpu']:.1f} s CPU); "
                  f"read {got['rows']:,} = valid {got['valid']:,} + quarantined {got['quarantined']:,}")


if __name__ == "__main__":
    main()
