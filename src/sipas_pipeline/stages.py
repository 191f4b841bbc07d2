"""The pipeline's stages as plain functions over folders of Parquet: what the Prefect flow wires."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from sipas_pipeline.errors import InputError
from sipas_pipeline.hashing import code_fingerprint, frames_sha256, sha256_file
from sipas_pipeline.ingest import ingest_source
from sipas_pipeline.ingest.bronze import list_files
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.validate import read_bronze, validate_source

SOURCES = ("citizen", "official", "appraisal")




def check_raw(m: Methodology, raw_dir: Path) -> None:
    """Fail early, with one message, when the raw folder or a source's export files are missing."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputError(f"{raw_dir}: no such folder")
    for source in SOURCES:
        folder = raw_dir / m.meta["sources"][source]["folder"]
        if not list_files(folder):
            raise InputError(f"source {source!r}: no export files in {folder}")


def inputs_key(m: Methodology, raw_dir: Path) -> str:
    """Content key of a run's inputs: every export file's path and SHA-256, the methodology's hash and
    the code's fingerprint. Equal keys mean ingest and validate would give the same Parquet."""
    digest = hashlib.sha256(f"{m.content_hash}\n{code_fingerprint()}\n".encode())
    for source in SOURCES:
        folder = Path(raw_dir) / m.meta["sources"][source]["folder"]
        for path in list_files(folder):
            digest.update(f"{path.relative_to(raw_dir).as_posix()}\t{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def ingest(m: Methodology, raw_dir: Path, work_dir: Path) -> dict[str, Any]:
    """Raw exports -> `work_dir/bronze/<source>/*.parquet`; returns the ingest report."""
    raw_dir = Path(raw_dir)
    check_raw(m, raw_dir)
    bronze = Path(work_dir) / "bronze"
    if bronze.exists():
        shutil.rmtree(bronze)
    reports = {s: ingest_source(m, s, raw_dir, bronze) for s in SOURCES}
    unreadable = [u for r in reports.values() for u in r.unreadable]
    for source, r in reports.items():
        if not r.files:
            folder = raw_dir / m.meta["sources"][source]["folder"]
            why = "; ".join(f"{u['file']}: {u['reason']}" for u in r.unreadable) or "no export files there"
            raise InputError(f"source {source!r}: no readable file in {folder} ({why})")
    return {"files": {s: r.files for s, r in reports.items()}, "unreadable_files": unreadable}


def validate(m: Methodology, work_dir: Path) -> dict[str, Any]:
    """Bronze -> `silver/<source>.parquet` and `quarantine/<source>.parquet`; returns the accounting."""
    work_dir = Path(work_dir)
    for sub in ("silver", "quarantine"):
        (work_dir / sub).mkdir(parents=True, exist_ok=True)
    sources, batches, reasons = {}, [], {}

    def one(source: str):
        result = validate_source(m, source, read_bronze(work_dir / "bronze", source))
        result.silver.write_parquet(work_dir / "silver" / f"{source}.parquet")
        result.quarantine.write_parquet(work_dir / "quarantine" / f"{source}.parquet")
        return result

    # sources are independent; Polars releases the GIL, so two run at once on two cores
    with ThreadPoolExecutor(max_workers=len(SOURCES)) as pool:
        results = list(pool.map(one, SOURCES))
    for source, result in zip(SOURCES, results, strict=True):
        acc = result.accounting
        sources[source] = {"read": int(acc["read"].sum()), "valid": int(acc["valid"].sum()),
                           "quarantined": int(acc["quarantined"].sum())}
        batches += acc.with_columns(pl.lit(source).alias("source")).to_dicts()
        reasons[source] = reason_counts(result.quarantine)
    return {"sources": sources, "batches": batches, "top_reasons": reasons}


def reason_counts(quarantine: pl.DataFrame) -> dict[str, int]:
    """How many quarantined rows break each rule, most frequent first."""
    rules: Counter = Counter()
    if quarantine.height:
        exploded = quarantine.select("reasons").explode("reasons").unnest("reasons")
        rules.update(dict(exploded.group_by("rule").len().iter_rows()))
    return dict(rules.most_common())


def ingest_and_validate(m: Methodology, raw_dir: Path, work_dir: Path) -> dict[str, Any]:
    """Both first stages; the report the `validate` command prints."""
    return validation_report(m, ingest(m, raw_dir, work_dir), validate(m, work_dir))


def validation_report(m: Methodology, report: dict[str, Any], checked: dict[str, Any]) -> dict[str, Any]:
    """Merge the ingest report and the validate accounting into the stages' report."""
    unreadable_by_source = Counter(u["source"] for u in report["unreadable_files"])
    for source, counts in checked["sources"].items():
        counts["unreadable_files"] = unreadable_by_source.get(source, 0)
    return {"year": m.year, "sources": checked["sources"], "unreadable_files": report["unreadable_files"],
            "top_reasons": checked["top_reasons"], "batches": checked["batches"], "files": report["files"]}


def compute_results(m: Methodology, citizen: pl.DataFrame | pl.LazyFrame, official: pl.DataFrame | pl.LazyFrame,
                    appraisal: pl.DataFrame, previous: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
    """Silver frames -> the result tables (each validated against its Pandera schema). Every estimate carries its
    design-based uncertainty (`variance.py`); `previous` is last year's (province_code, measure, value,
    rank_national[, se, df, basis]) for the change columns. Citizens and officials may be LazyFrames."""
    from sipas_pipeline import results_schemas as rs
    from sipas_pipeline.indicators import estimate_indicators, roll_up, sipas_tree
    from sipas_pipeline.par_index import par_points, par_totals
    from sipas_pipeline.ranking import change, rank_intervals, ranks
    from sipas_pipeline.variance import add_uncertainty

    est = estimate_indicators(m, citizen)
    tree = sipas_tree(m, est)
    points, survey = par_points(m, official, appraisal, est)
    levels, totals = par_totals(m, points, survey)
    measures = pl.concat([
        tree.filter(pl.col("level") != "element").select(
            "province_code", pl.when(pl.col("level") == "sipas").then(pl.lit("sipas"))
            .otherwise(pl.lit("sipas_") + pl.col("node")).alias("measure"), "value", pl.col("var").sqrt().alias("se"), "df"),
        totals.select("province_code", pl.lit("par").alias("measure"), pl.col("par_index").alias("value"), "se", "df"),
    ])
    ranked = change(rank_intervals(m, ranks(m, measures)), previous, m.design.confidence)

    def all_units(by_province: pl.DataFrame, keys: list[str], sums: list[str], proportion: bool) -> pl.DataFrame:
        """Province, region and nation rows, each with its uncertainty columns."""
        rolled = roll_up(m, by_province, keys, sums).sort("unit_level", "unit_code", *keys)
        return add_uncertainty(rolled, m.design, proportion)

    return {
        "indicator_values": rs.INDICATORS.validate(
            all_units(est.values, ["indicator_id"], ["numerator", "denominator", "n"], True)),
        "sipas_indices": rs.SIPAS.validate(all_units(tree, ["level", "node"], ["n"], False)),
        "par_points": rs.PAR_POINTS.validate(points),
        "par_levels": levels,
        "par_totals": rs.PAR_TOTALS.validate(totals),
        "ranks": rs.RANKS.validate(ranked),
    }


def compute(m: Methodology, work_dir: Path, previous: pl.DataFrame | None = None) -> dict[str, Any]:
    """Silver Parquet -> `results/<table>.parquet`; returns national figures and the rankings' ends. `previous`:
    last year's own results (`publish.previous_results`); without them the change is against `published.csv`."""
    work_dir = Path(work_dir)
    silver = {s: pl.read_parquet(work_dir / "silver" / f"{s}.parquet") for s in SOURCES}
    previous = previous if previous is not None else previous_published(m)
    tables = compute_results(m, silver["citizen"], silver["official"], silver["appraisal"], previous)
    (work_dir / "results").mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.write_parquet(work_dir / "results" / f"{name}.parquet")
    return summarise(m, tables) | {"results_hash": frames_sha256(tables)}


def read_results(work_dir: Path) -> dict[str, pl.DataFrame]:
    """The result tables the compute stage wrote under `work_dir/results`."""
    return {p.stem: pl.read_parquet(p) for p in sorted((Path(work_dir) / "results").glob("*.parquet"))}


def read_quarantine(work_dir: Path) -> pl.DataFrame:
    """Every source's quarantined rows in one frame (columns of all sources, missing ones null)."""
    frames = [pl.read_parquet(p) for p in sorted((Path(work_dir) / "quarantine").glob("*.parquet"))]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def run_inputs(ingested: dict[str, Any], checked: dict[str, Any]) -> list[dict[str, Any]]:
    """Each input file with its content hash and its rows read / valid / quarantined."""
    counts = {b["source_file"]: b for b in checked["batches"]}
    out = []
    for source, files in ingested["files"].items():
        for f in files:
            b = counts.get(f["file"], {})
            out.append({"source": source, "file": f["file"], "sha256": f["sha256"], "batch_id": Path(f["file"]).stem,
                        "read": f["rows"], "valid": b.get("valid", 0), "quarantined": b.get("quarantined", 0)})
    return out


def previous_published(m: Methodology) -> pl.DataFrame | None:
    """Last year's published province figures from the year's `published.csv`, if it has any."""
    pub = m.published()
    if pub is None:
        return None
    codes = m.provinces["province_code"].to_list()
    prev = pub.filter((pl.col("year") == m.year - 1) & pl.col("unit").is_in(codes))
    if prev.height == 0:
        return None
    return prev.select(pl.col("unit").alias("province_code"), "measure", "value", pl.col("rank").alias("rank_national"),
                       pl.lit("published").alias("basis"))


def summarise(m: Methodology, tables: dict[str, pl.DataFrame]) -> dict[str, Any]:
    """National means and the top and bottom five provinces by SIPAS and PAR INDEX."""
    names = dict(zip(m.provinces["province_code"], m.provinces["name_vi"], strict=True))
    sipas = tables["sipas_indices"].filter(pl.col("unit_level") == "nation")
    national = {("sipas" if r["level"] == "sipas" else f"sipas_{r['node']}"): round(r["value"], 2)
                for r in sipas.filter(pl.col("level") != "element").iter_rows(named=True)}
    national["par"] = round(float(tables["par_totals"]["par_index"].mean()), 2)
    out: dict[str, Any] = {"national": national, "groups": dict(sorted(
        tables["par_totals"].group_by("group").len().iter_rows()))}
    for measure in ("sipas", "par"):
        r = tables["ranks"].filter(pl.col("measure") == measure).sort("rank_national", "province_code")
        rows = [{"rank": k, "province": names[c], "value": round(v, 2), "rank_interval": [lo, hi]}
                for c, v, k, lo, hi in r.select("province_code", "value", "rank_national", "rank_low", "rank_high").iter_rows()]
        out[measure] = {"top5": rows[:5], "bottom5": rows[-5:]}
    return out
