"""Helpers for the benchmark scripts: repeated timings (median and range) and peak memory."""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.synth import generate_year

# where benchmark years and scratch files go (gitignored); the smoke tests point it at a temporary folder
OUT = Path(os.environ.get("SIPAS_BENCH_OUT") or Path(__file__).resolve().parent / "out")


def cpu_seconds(children: bool = False) -> float:
    """User + system CPU seconds of this process so far (or of its waited-for children)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    """Peak resident set of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(median, min, max) seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def silver(scale: float, survey_year: int = 2024) -> Path:
    """The work folder of the synthetic year at `scale` after ingest and validate (made once)."""
    from sipas_pipeline.methodology import load_methodology
    from sipas_pipeline.stages import ingest, validate

    work = OUT / (f"work_x{scale:g}" if survey_year == 2024 else f"work_{survey_year}_x{scale:g}")
    if not (StageFolder(work).silver("citizen")).is_file():
        m = load_methodology(survey_year)
        ingest(m, year(scale, survey_year=survey_year), work)
        validate(m, work)
    return work


def year(scale: float, seed: int = 7, survey_year: int = 2024) -> Path:
    """A synthetic raw year at `scale`, made once under benchmarks/out/."""
    raw = OUT / f"raw_{survey_year}_x{scale:g}"
    if not (raw / "truth" / "manifest.json").is_file():
        generate_year(survey_year, raw, seed=seed, scale=scale)
    return raw


def line(label: str, t: tuple[float, float, float], target: str = "") -> str:
    med, lo, hi = t
    return f"{label:<34} median {med:7.3f} s  (range {lo:.3f}-{hi:.3f})  {target}"
