"""The 51 satisfaction indicators per province, three ways on the same silver Parquet, at 1x, 10x
and 100x the full-size year (100x = 3.6M citizens' forms): the project's Polars code (streaming from
Parquet), plain pandas as an analyst would write it, and plain DuckDB SQL. Each way runs in its own
process (so its peak resident memory is its own); the script checks the three give the same numbers
and prints the ratios. Targets at 100x: Polars at least as fast as DuckDB, 5x faster than pandas,
peak memory under 2 GB.

usage: python benchmarks/satisfaction.py [--scales 1 10 100] [--repeat 3] [--base-scale 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl
from common import OUT, peak_rss_mb
from common import silver as silver_work

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.methodology import load_methodology

METHODS = ("polars", "duckdb", "pandas")


def indicator_specs() -> list[dict]:
    """The satisfaction indicators: id, question, counting codes, "don't know" code."""
    m = load_methodology(2024)
    form = {r["field_id"]: r for r in m.forms["citizen"].iter_rows(named=True)}
    out = []
    for ind in m.indicators.filter(pl.col("type") == "satisfaction").iter_rows(named=True):
        q = form[ind["question_id"]]
        assert q["dtype"] == "int", "the plain versions handle single-answer questions"
        out.append({"id": ind["indicator_id"], "q": ind["question_id"],
                    "codes": [int(c) for c in ind["counting_codes"].split("|")],
                    "dk": int(q["dont_know"]) if q["dont_know"] else None})
    return out


def run_polars(path: Path) -> pl.DataFrame:
    """The project's code: streaming group-by over the Parquet, only the columns it needs."""
    from sipas_pipeline.indicators import province_indicators

    m = load_methodology(2024)
    return province_indicators(m, pl.scan_parquet(path), ["satisfaction"]).select(
        "province_code", "indicator_id", "numerator", "denominator", "n")


def run_pandas(path: Path) -> pl.DataFrame:
    """What an analyst would write in pandas: read the columns, one weighted sum per indicator."""
    import pandas as pd

    specs = indicator_specs()
    df = pd.read_parquet(path, columns=["province_code", "weight", *[s["q"] for s in specs]])
    parts = []
    for s in specs:
        answered = df[s["q"]].notna() & (df[s["q"]] != s["dk"] if s["dk"] is not None else True)
        hit = df[s["q"]].isin(s["codes"])
        tmp = pd.DataFrame({"province_code": df["province_code"], "numerator": df["weight"] * (answered & hit),
                            "denominator": df["weight"] * answered, "n": answered.astype("int64")})
        g = tmp.groupby("province_code", as_index=False)[["numerator", "denominator", "n"]].sum()
        g["indicator_id"] = s["id"]
        parts.append(g)
    out = pd.concat(parts, ignore_index=True)
    return pl.from_pandas(out[["province_code", "indicator_id", "numerator", "denominator", "n"]])


def run_duckdb(path: Path) -> pl.DataFrame:
    """Plain DuckDB SQL over the Parquet file: one SUM(CASE ...) per indicator, one GROUP BY."""
    from sipas_pipeline.duckdb_file import connect

    specs = indicator_specs()
    cols = []
    for i, s in enumerate(specs):
        answered = f"{s['q']} IS NOT NULL" + (f" AND {s['q']} <> {s['dk']}" if s["dk"] is not None else "")
        codes = ", ".join(map(str, s["codes"]))
        cols += [f"SUM(CASE WHEN {answered} AND {s['q']} IN ({codes}) THEN weight ELSE 0 END) AS num_{i}",
                 f"SUM(CASE WHEN {answered} THEN weight ELSE 0 END) AS den_{i}",
                 f"COUNT(*) FILTER (WHERE {answered}) AS n_{i}"]
    sql = f"SELECT province_code, {', '.join(cols)} FROM read_parquet('{path}') GROUP BY province_code"
    wide = pl.from_arrow(connect(":memory:").sql(sql).to_arrow_table())
    return pl.concat([wide.select("province_code", pl.lit(s["id"]).alias("indicator_id"),
                                  pl.col(f"num_{i}").cast(pl.Float64).alias("numerator"),
                                  pl.col(f"den_{i}").cast(pl.Float64).alias("denominator"),
                                  pl.col(f"n_{i}").cast(pl.Int64).alias("n")) for i, s in enumerate(specs)])


def child(method: str, path: Path, repeat: int, out: Path) -> None:
    """One method, `repeat` times, in this process; prints its times and peak memory as JSON."""
    print(json.dumps(measure(method, path, repeat, out)))


def measure(method: str, path: Path, repeat: int, out: Path) -> dict:
    """One method, `repeat` times, in this process: its result written to `out`, its times and peak memory."""
    fn = {"polars": run_polars, "pandas": run_pandas, "duckdb": run_duckdb}[method]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(path)
        times.append(time.perf_counter() - t0)
    result.sort("province_code", "indicator_id").write_parquet(out)
    return {"times": times, "peak_rss_mb": peak_rss_mb()}


def replicated(base: Path, k: int) -> Path:
    """The silver citizens' Parquet replicated k times (streamed, made once)."""
    path = OUT / f"silver_citizen_{base.parent.parent.name}_x{k}.parquet"
    if not path.is_file():
        pl.concat([pl.scan_parquet(base)] * k).sink_parquet(path)
    return path


def same_numbers(results: dict[str, pl.DataFrame]) -> float:
    """Largest relative difference between the methods' numerators / denominators; n must be equal."""
    ref = results["polars"]
    worst = 0.0
    for name, other in results.items():
        j = ref.join(other, on=["province_code", "indicator_id"], how="full", suffix="_o")
        assert j.height == ref.height == other.height, f"{name}: different rows"
        assert (j["n"] == j["n_o"]).all(), f"{name}: respondent counts differ"
        for c in ("numerator", "denominator"):
            rel = ((j[c] - j[f"{c}_o"]).abs() / j[c].abs().clip(lower_bound=1e-9)).max()
            worst = max(worst, float(rel))
    assert worst < 1e-9, f"the methods disagree (relative difference {worst:g})"
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--base-scale", type=float, default=1.0, help="the year replicated (1 = full size)")
    ap.add_argument("--child", nargs=4, metavar=("METHOD", "PARQUET", "REPEAT", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--same-process", action="store_true",
                    help="every way in this process (the smoke test; the peak memory is then this process's)")
    args = ap.parse_args()
    if args.child:
        method, path, repeat, out = args.child
        child(method, Path(path), int(repeat), Path(out))
        return
    base = StageFolder(silver_work(args.base_scale)).silver("citizen")
    n_ind = len(indicator_specs())
    memory = "this process's peak RSS (--same-process)" if args.same_process else "peak RSS of each way's own process"
    print(f"{n_ind} satisfaction indicators per province, three ways, {args.repeat} runs each (median, range; {memory})")
    for k in args.scales:
        path = replicated(base, k)
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
        results, stats = {}, {}
        for method in METHODS:
            out = OUT / f"sat_{method}_x{k}.parquet"
            if args.same_process:
                stats[method] = measure(method, path, args.repeat, out)
            else:
                done = subprocess.run([sys.executable, __file__, "--child", method, str(path), str(args.repeat), str(out)],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"{method} failed:\n{done.stderr[-2000:]}")
                stats[method] = json.loads(done.stdout.strip().splitlines()[-1])
            results[method] = pl.read_parquet(out)
        worst = same_numbers(results)
        print(f"x{k}: {rows:,} forms — same numbers in all three (max relative difference {worst:.1e})")
        med = {m: statistics.median(s["times"]) for m, s in stats.items()}
        for method in METHODS:
            t = stats[method]["times"]
            print(f"  {method:<7} median {med[method]:7.3f} s  (range {min(t):.3f}-{max(t):.3f})  "
                  f"peak RSS {stats[method]['peak_rss_mb']:7.0f} MB")
        print(f"  ratios: pandas / polars {med['pandas'] / med['polars']:.1f}x, "
              f"duckdb / polars {med['duckdb'] / med['polars']:.2f}x"
              + ("   (targets at 100x: pandas >= 5x, duckdb >= 1x, polars peak < 2048 MB)" if k == 100 else ""))


if __name__ == "__main__":
    main()
