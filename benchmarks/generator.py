"""The synthetic-year generator at a given scale (default 100x: ~3.65M citizens' and ~4.9M officials'
forms): time and peak resident memory. It streams province by province, so memory stays flat.

usage: python benchmarks/generator.py [--scale 100] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, peak_rss_mb

from sipas_pipeline.synth import generate_year


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=100.0)
    ap.add_argument("--keep", action="store_true", help="keep the generated year (several GB at 100x)")
    args = ap.parse_args()
    out = OUT / f"generated_x{args.scale:g}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    manifest = generate_year(2024, out, seed=7, scale=args.scale)
    seconds = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e9
    print(f"generator, scale {args.scale:g}: {json.dumps(manifest['rows'])}, {manifest['defects']['total']:,} defects")
    print(f"  time {seconds:.1f} s   peak RSS {peak_rss_mb():.0f} MB   {size:.2f} GB written")
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
