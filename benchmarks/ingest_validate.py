"""Ingest + validate time on the full-size synthetic year (target: under 3 s on 2 cores).

usage: python benchmarks/ingest_validate.py [--scale 1] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, line, peak_rss_mb, timed, year

from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.stages import ingest, validate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    m = load_methodology(2024)
    raw = year(args.scale)
    work = OUT / f"work_x{args.scale:g}"
    t_ingest = timed(lambda: ingest(m, raw, work), args.repeat)
    t_validate = timed(lambda: validate(m, work), args.repeat)
    both = tuple(a + b for a, b in zip(t_ingest, t_validate, strict=True))
    print(f"ingest + validate, scale {args.scale:g} ({raw.name}), {args.repeat} runs")
    print(line("ingest", t_ingest))
    print(line("validate", t_validate))
    print(line("ingest + validate", both, "target < 3 s at scale 1"))
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
