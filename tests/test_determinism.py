"""Deterministic to the bit: the same silver gives the same results hash whatever the row order or the
number of Polars threads; exact sums do not depend on order; the hash is canonical and sees the last bit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.hashing import frames_sha256
from sipas_pipeline.publish import results_hash
from sipas_pipeline.stages import SOURCES, compute_results, previous_published
from sipas_pipeline.variance import ordered_sums

ROOT = Path(__file__).resolve().parents[1]

HASH_IN_A_PROCESS = """
import sys
from pathlib import Path
import polars as pl
from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.methodology import load_methodology
from sipas_pipeline.publish import results_hash
from sipas_pipeline.stages import SOURCES, compute_results, previous_published
m = load_methodology(2024)
silver = {s: pl.read_parquet(StageFolder(Path(sys.argv[1])).silver(s)) for s in SOURCES}
tables = compute_results(m, silver["citizen"], silver["official"], silver["appraisal"], previous_published(m))
print(pl.thread_pool_size(), results_hash(tables))
"""


def silver_frames(work: Path) -> dict[str, pl.DataFrame]:
    return {s: pl.read_parquet(StageFolder(work).silver(s)) for s in SOURCES}


def _float_sum(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total


def test_ordered_sums_give_the_same_bits_in_any_row_order():
    values = [0.1, 0.2, 0.3, 0.3, 0.2, 0.1]
    frame = pl.DataFrame({"g": ["a", "a", "a", "b", "b", "b"], "row": [1, 2, 3, 1, 2, 3], "x": values})
    orders = (frame, frame.reverse(), frame.sample(fraction=1.0, shuffle=True, seed=3))
    assert len({_float_sum(o) for o in (values[:3], list(reversed(values[:3])), values[1:3] + values[:1])}) > 1  # the defect
    sums = {tuple(ordered_sums(f, ["g"], {"x": pl.col("x")}, ["row"])["x"].to_list()) for f in orders}
    assert len(sums) == 1
    # the group sums are the sums of their own values (to the last bits of a float sum)
    from fractions import Fraction
    exact = [float(sum(Fraction(v) for v in part)) for part in (values[:3], values[3:])]
    assert sums.pop() == pytest.approx(exact, rel=1e-15)


def test_frames_hash_is_canonical_and_sees_the_last_bit():
    frame = pl.DataFrame({"unit": ["01", "02", "03"], "value": [1.5, None, 2.25], "n": [3, 4, 5]})
    base = frames_sha256({"t": frame})
    assert frames_sha256({"t": frame.reverse()}) == base  # row order
    assert frames_sha256({"t": frame.select("n", "value", "unit")}) == base  # column order
    assert frames_sha256({"t": pl.concat([frame.head(1), frame.tail(2)], rechunk=False)}) == base  # chunks
    nudged = frame.with_columns(pl.when(pl.col("unit") == "03").then(pl.lit(2.25).cast(pl.Float64) + 2**-51)
                                .otherwise(pl.col("value")).alias("value"))
    assert nudged["value"][2] != 2.25
    assert frames_sha256({"t": nudged}) != base  # one last bit
    assert frames_sha256({"t": frame.with_columns(pl.col("value").fill_null(0.0))}) != base  # null is not 0


@pytest.mark.integration
def test_row_order_does_not_change_the_results_hash(methodology, sample_work):
    silver = silver_frames(sample_work["work"])
    prev = previous_published(methodology)
    hashes = set()
    for seed in range(4):
        s = {k: v.sample(fraction=1.0, shuffle=True, seed=seed) for k, v in silver.items()}
        hashes.add(results_hash(compute_results(methodology, s["citizen"], s["official"], s["appraisal"], prev)))
    assert hashes == {sample_work["summary"]["results_hash"]}


@pytest.mark.integration
def test_thread_count_does_not_change_the_results_hash(sample_work):
    """One and three Polars threads in their own processes give the hash this process computed with its default
    pool (the machine's cores)."""
    seen = {}
    for threads in ("1", "3"):
        env = dict(os.environ, POLARS_MAX_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", HASH_IN_A_PROCESS, str(sample_work["work"])], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        pool, digest = out.stdout.split()
        seen[pool] = digest
    assert set(seen) == {"1", "3"}
    assert set(seen.values()) == {sample_work["summary"]["results_hash"]}
