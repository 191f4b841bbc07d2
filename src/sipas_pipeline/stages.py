"""The pipeline's stages as plain functions over folders of Parquet: what the Prefect flow wires."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from sipas_pipeline.ingest import ingest_source
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.validate import read_bronze, validate_source

SOURCES = ("citizen", "official", "appraisal")


class InputError(Exception):
    """The input cannot be used at all (no such folder, a required source has no readable file)."""


def ingest(m: Methodology, raw_dir: Path, work_dir: Path) -> dict[str, Any]:
    """Raw exports -> `work_dir/bronze/<source>/*.parquet`; returns the ingest report."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputError(f"{raw_dir}: no such folder")
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
    for source in SOURCES:
        bronze = read_bronze(work_dir / "bronze", source)
        result = validate_source(m, source, bronze)
        result.silver.write_parquet(work_dir / "silver" / f"{source}.parquet")
        result.quarantine.write_parquet(work_dir / "quarantine" / f"{source}.parquet")
        acc = result.accounting
        sources[source] = {"read": int(acc["read"].sum()), "valid": int(acc["valid"].sum()),
                           "quarantined": int(acc["quarantined"].sum())}
        batches += acc.with_columns(pl.lit(source).alias("source")).to_dicts()
        rules = Counter()
        if result.quarantine.height:
            exploded = result.quarantine.select("reasons").explode("reasons").unnest("reasons")
            rules.update(dict(exploded.group_by("rule").len().iter_rows()))
        reasons[source] = dict(rules.most_common())
    return {"sources": sources, "batches": batches, "top_reasons": reasons}


def ingest_and_validate(m: Methodology, raw_dir: Path, work_dir: Path) -> dict[str, Any]:
    """Both first stages; the report the `validate` command prints."""
    report = ingest(m, raw_dir, work_dir)
    checked = validate(m, work_dir)
    unreadable_by_source = Counter(u["source"] for u in report["unreadable_files"])
    for source, counts in checked["sources"].items():
        counts["unreadable_files"] = unreadable_by_source.get(source, 0)
    return {"year": m.year, "sources": checked["sources"], "unreadable_files": report["unreadable_files"],
            "top_reasons": checked["top_reasons"], "batches": checked["batches"], "files": report["files"]}


def compute_results(m: Methodology, citizen: pl.DataFrame, official: pl.DataFrame, appraisal: pl.DataFrame,
                    previous: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
    """Silver frames -> the result tables (each validated against its Pandera schema)."""
    from sipas_pipeline import results_schemas as rs
    from sipas_pipeline.indicators import province_indicators, roll_up, sipas_tree
    from sipas_pipeline.par_index import par_points, par_totals
    from sipas_pipeline.ranking import change, ranks

    ind = province_indicators(m, citizen)
    tree = sipas_tree(m, ind)
    points = par_points(m, official, appraisal, ind, tree)
    levels, totals = par_totals(m, points)
    measures = pl.concat([
        tree.filter(pl.col("level") != "element").select(
            "province_code", pl.when(pl.col("level") == "sipas").then(pl.lit("sipas"))
            .otherwise(pl.lit("sipas_") + pl.col("node")).alias("measure"), "value"),
        totals.select("province_code", pl.lit("par").alias("measure"), pl.col("par_index").alias("value")),
    ])
    ranked = change(ranks(m, measures), previous)

    def all_units(by_province: pl.DataFrame, keys: list[str], sums: list[str]) -> pl.DataFrame:
        """Province, region and nation rows; the standard error stays on province rows."""
        se = by_province.select("province_code", *keys, "se").rename({"province_code": "unit_code"})
        return (roll_up(m, by_province.drop("se"), keys, sums).join(se, on=["unit_code", *keys], how="left")
                .sort("unit_level", "unit_code", *keys))

    out = {
        "indicator_values": rs.INDICATORS.validate(all_units(ind, ["indicator_id"], ["numerator", "denominator", "n"])),
        "sipas_indices": rs.SIPAS.validate(all_units(tree, ["level", "node"], [])),
        "par_points": rs.PAR_POINTS.validate(points),
        "par_levels": levels,
        "par_totals": rs.PAR_TOTALS.validate(totals),
        "ranks": rs.RANKS.validate(ranked),
    }
    return out


def compute(m: Methodology, work_dir: Path) -> dict[str, Any]:
    """Silver Parquet -> `results/<table>.parquet`; returns national figures and the rankings' ends."""
    work_dir = Path(work_dir)
    silver = {s: pl.read_parquet(work_dir / "silver" / f"{s}.parquet") for s in SOURCES}
    tables = compute_results(m, silver["citizen"], silver["official"], silver["appraisal"], previous_published(m))
    (work_dir / "results").mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.write_parquet(work_dir / "results" / f"{name}.parquet")
    return summarise(m, tables)


def previous_published(m: Methodology) -> pl.DataFrame | None:
    """Last year's published province figures from the year's `published.csv`, if it has any."""
    pub = m.published()
    if pub is None:
        return None
    codes = m.provinces["province_code"].to_list()
    prev = pub.filter((pl.col("year") == m.year - 1) & pl.col("unit").is_in(codes))
    if prev.height == 0:
        return None
    return prev.select(pl.col("unit").alias("province_code"), "measure", "value", pl.col("rank").alias("rank_national"))


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
        rows = [{"rank": k, "province": names[c], "value": round(v, 2)}
                for c, v, k in r.select("province_code", "value", "rank_national").iter_rows()]
        out[measure] = {"top5": rows[:5], "bottom5": rows[-5:]}
    return out
