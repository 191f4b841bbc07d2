"""One fieldwork step as plain functions (what the Prefect flow `sipas-fieldwork` wires): take the inbox's new
batches one at a time, the page rewritten after each (`take_batch`), then refresh the provisional figures, the
progress and the `fieldwork_*` tables once (`refresh`: one DuckDB file swapped in)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from sipas_pipeline.fieldwork.database import batches_frame, quarantine_frame, write
from sipas_pipeline.fieldwork.progress import as_of_date, progress
from sipas_pipeline.fieldwork.season import Season
from sipas_pipeline.fieldwork.sufficient import SIPAS_COLUMNS, provisional
from sipas_pipeline.methodology import Methodology

TIMEZONE = "Asia/Ho_Chi_Minh"  # the survey's calendar


def fieldwork_year(year: int | None) -> int:
    """The survey year in the field: the given one, else this calendar year in Vietnam time."""
    return int(year) if year else datetime.now(ZoneInfo(TIMEZONE)).year


def reasons_line(entry: dict[str, Any]) -> str:
    """A batch in one line: what it counted and why rows were quarantined."""
    why = ", ".join(f"{rule} {n}" for rule, n in entry.get("reasons", {}).items()) or "none"
    extra = entry.get("note") or ""
    if entry.get("supersedes"):
        extra = f"re-sent: replaces #{entry['supersedes']}"
    if entry.get("retracted"):
        extra += f"; copies quarantined in {len(entry['retracted'])} earlier batch(es)"
    return (f"#{entry['seq']} {entry['source']} {entry['file']}: {entry['status']}, read {entry['read']}, "
            f"valid {entry['valid']}, quarantined {entry['quarantined']} (reasons: {why}){'; ' + extra if extra else ''}")


@dataclass
class Refreshed:
    """What a refresh wrote: the status row, the tables, the page."""

    status: dict[str, Any]
    tables: dict[str, pl.DataFrame]
    page: str | None


def coverage(m: Methodology, prog: pl.DataFrame, source: str) -> pl.DataFrame:
    """valid / target per unit (province, region, nation) of a source."""
    prov = (prog.filter((pl.col("source") == source) & (pl.col("level") == "province"))
            .join(m.provinces.select("province_code", "region_code"), on="province_code", how="inner"))
    sums = [pl.col("valid").sum(), pl.col("target").sum()]
    units = pl.concat([
        prov.select(pl.lit("province").alias("unit_level"), pl.col("province_code").alias("unit_code"), "valid", "target"),
        prov.group_by(pl.col("region_code").alias("unit_code")).agg(sums).with_columns(pl.lit("region").alias("unit_level")),
        prov.select(sums).with_columns(pl.lit("VN").alias("unit_code"), pl.lit("nation").alias("unit_level")),
    ], how="diagonal_relaxed")
    return units.select("unit_level", "unit_code", pl.when(pl.col("target") > 0).then(pl.col("valid") / pl.col("target"))
                        .alias("coverage"))


def status_row(m: Methodology, ledger: list[dict[str, Any]], prog: pl.DataFrame, as_of: date | None) -> dict[str, Any]:
    """The season in one row (fieldwork_status)."""
    taken = [e for e in ledger if e["status"] == "taken"]
    count = {s: sum(1 for e in ledger if e["status"] == s) for s in ("taken", "duplicate", "superseded", "unreadable")}
    nation = prog.filter(pl.col("level") == "province").group_by("source").agg(pl.col("valid").sum(), pl.col("target").sum())
    cov = {s: (v / t if t else None) for s, v, t in nation.iter_rows()}
    return {"as_of": as_of, "refreshed_at": datetime.now(UTC), "provisional": True,
            **{f"batches_{k}": v for k, v in count.items()},
            "forms_read": sum(e["read"] for e in taken), "forms_valid": sum(e["valid"] for e in taken),
            "forms_quarantined": sum(e["quarantined"] for e in taken),
            "coverage_citizen": cov.get("citizen"), "coverage_official": cov.get("official")}


@dataclass
class SeasonTables:
    """What the page and the tables share: fieldwork_status, _batches and _progress from the ledger and the tallies
    (sums per unit, no forms read), the coverage per unit of each source and the rows' as-of stamp."""

    tables: dict[str, pl.DataFrame]
    citizen: pl.DataFrame
    official: pl.DataFrame
    stamp: list[pl.Expr]


def season_tables(m: Methodology, season: Season) -> SeasonTables:
    """The `SeasonTables` of the season now."""
    ledger = season.ledger()
    prog = progress(m, season.tallies(), ledger, season.target_scale)
    as_of = as_of_date(ledger, m)
    tables = {
        "fieldwork_status": pl.DataFrame([status_row(m, ledger, prog, as_of)]),
        "fieldwork_batches": batches_frame(ledger),
        "fieldwork_progress": prog.select("as_of", "source", "level", "unit_code", "province_code", "target", "received",
                                          "valid", "quarantined", "coverage", "expected", "behind_schedule",
                                          "last_batch_date", "batches").with_columns(pl.col("as_of", "last_batch_date")
                                                                                    .str.to_date()),
    }
    stamp = [pl.lit(as_of, pl.Date).alias("as_of"), pl.lit(True).alias("provisional")]
    return SeasonTables(tables, coverage(m, prog, "citizen"), coverage(m, prog, "official"), stamp)


def sipas_table(sipas: pl.DataFrame, cit: pl.DataFrame, stamp: list[pl.Expr]) -> pl.DataFrame:
    """fieldwork_sipas: the tree's rows with their stamp and the citizens' coverage of their unit."""
    return sipas.join(cit, on=["unit_level", "unit_code"], how="left").select(
        *stamp, *SIPAS_COLUMNS, "coverage")


def fieldwork_tables(m: Methodology, season: Season) -> dict[str, pl.DataFrame]:
    """Every fieldwork_* table (but the quarantine) from the season's statistics and ledger."""
    shared = season_tables(m, season)
    cit, stamp = shared.citizen, shared.stamp
    figures = provisional(m, season.cells(m), season.official(m))
    off = shared.official.filter(pl.col("unit_level") == "province").select(
        pl.col("unit_code").alias("province_code"), pl.col("coverage").alias("c_off"))
    ind = figures["indicators"].join(cit, on=["unit_level", "unit_code"], how="left")
    par = (figures["par_survey"].join(cit.filter(pl.col("unit_level") == "province").select(
        pl.col("unit_code").alias("province_code"), pl.col("coverage").alias("c_cit")), on="province_code", how="left")
        .join(off, on="province_code", how="left")
        .with_columns(pl.when(pl.col("kind") == "survey_official").then(pl.col("c_off"))
                      .when(pl.col("kind") == "survey_citizen").then(pl.col("c_cit"))
                      .otherwise(pl.min_horizontal("c_off", "c_cit")).alias("coverage")).drop("c_off", "c_cit"))
    return shared.tables | {
        "fieldwork_indicators": ind.select(*stamp, "unit_level", "unit_code", "indicator_id", "value", "se", "ci_low",
                                           "ci_high", "df", "deff", "n_eff", "small_sample", "numerator", "denominator",
                                           "n", "coverage"),
        "fieldwork_sipas": sipas_table(figures["sipas"], cit, stamp),
        "fieldwork_par_survey": par.select(*stamp, "province_code", "subcriterion_id", "kind", "max_points", "points", "se",
                                           "df", "ci_low", "ci_high", "coverage"),
        "fieldwork_units": m.provinces.select("province_code", "name_vi", "name_en", "region_code").sort("province_code"),
    }


def touched(season: Season, entry: dict[str, Any]) -> set[str] | None:
    """The provinces whose citizens' forms a batch changed: its own, its earlier version's, those of the batches it
    retracted forms from (none for the officials': SIPAS is the citizens'); None: unknown (recompute all)."""
    if entry["source"] != "citizen" or entry["status"] != "taken":
        return set()
    ledger = {e["seq"]: e for e in season.ledger()}
    seqs = [entry["seq"], *([entry["supersedes"]] if entry.get("supersedes") else []),
            *(r["seq"] for r in entry.get("retracted", []))]
    if any("provinces" not in ledger.get(s, {}) for s in seqs):
        return None
    return {p for s in seqs for p in ledger[s]["provinces"]}


def page_after(m: Methodology, season: Season, entry: dict[str, Any], page: Path) -> Path:
    """The page rewritten after one batch (beside, then renamed): status, progress and batches from the ledger and the
    tallies, the provinces' SIPAS with only the provinces this batch touched recomputed (`province_sipas`). The
    batch's cost is its provinces', whatever the forms already in."""
    from sipas_pipeline.fieldwork.page import write_page
    from sipas_pipeline.fieldwork.season import write_frame
    from sipas_pipeline.fieldwork.sufficient import province_sipas

    kept = season.province_sipas()
    provinces = None if kept is None else touched(season, entry)
    if provinces is None:
        rows = province_sipas(m, season.cells(m))
    elif provinces:
        rows = pl.concat([kept.filter(~pl.col("unit_code").is_in(sorted(provinces))),
                          province_sipas(m, season.cells(m), provinces)], how="vertical_relaxed")
    else:
        rows = kept
    if rows is not kept:
        write_frame(season.sipas_path, rows)
    shared = season_tables(m, season)
    return write_page(m, shared.tables | {"fieldwork_sipas": sipas_table(rows, shared.citizen, shared.stamp)}, page)


def take_batch(m: Methodology, season: Season, source: str, path: Path, page: Path | None) -> dict[str, Any]:
    """Take one batch (`inbox.take`) and rewrite the page after it; its ledger entry."""
    from sipas_pipeline.fieldwork.inbox import take

    entry = take(m, season, source, path)
    if page is not None:
        page_after(m, season, entry, page)
    return entry


def changed_quarantine(season: Season, entries: list[dict[str, Any]]) -> dict[int, pl.DataFrame]:
    """The quarantine rows of the batches these entries took or changed (retractions), by seq."""
    ledger = {e["seq"]: e for e in season.ledger()}
    seqs = {e["seq"] for e in entries} | {r["seq"] for e in entries for r in e.get("retracted", [])}
    out = {}
    for seq in sorted(seqs):
        e = ledger[seq]
        path = season.version("quarantine", e["source"], e["batch_id"], e["sha256"])
        if path.is_file():
            out[seq] = quarantine_frame(seq, e["batch_id"], pl.read_parquet(path))
    return out


def refresh(m: Methodology, season: Season, db: Path, page: Path | None,
            entries: list[dict[str, Any]] | None = None) -> Refreshed:
    """Write the fieldwork tables (and the quarantine rows of `entries`) into `db`, and the page to `page`."""
    from sipas_pipeline.fieldwork.season import write_frame

    tables = fieldwork_tables(m, season)
    write(db, m, tables, changed_quarantine(season, entries or []))
    sipas = tables["fieldwork_sipas"]  # the page's provinces from the full computation (they are the same)
    write_frame(season.sipas_path, sipas.filter(pl.col("unit_level") == "province").select(SIPAS_COLUMNS))
    written = None
    if page is not None:
        from sipas_pipeline.fieldwork.page import write_page

        written = str(write_page(m, tables, page))
    return Refreshed(status=tables["fieldwork_status"].to_dicts()[0], tables=tables, page=written)
