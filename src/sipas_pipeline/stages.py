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
