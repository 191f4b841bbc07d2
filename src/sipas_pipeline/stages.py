"""The pipeline's stages as plain functions over a work folder of Parquet (`catalog.StageFolder`): what the
Prefect flow wires. Each stage returns a typed report (a dataclass below); `as_dict()` gives its JSON form
(the manifest's and the run record's), `from_dict` reads it back."""

from __future__ import annotations

import contextvars
import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Self

import polars as pl

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.completeness import Missing, mark_incomplete
from sipas_pipeline.errors import InputError
from sipas_pipeline.hashing import code_fingerprint, sha256_file
from sipas_pipeline.ingest import ingest_source
from sipas_pipeline.ingest.bronze import ignored_files, list_files
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.methodology.loader import SOURCES
from sipas_pipeline.paths import fresh_dir
from sipas_pipeline.validate import validate_files

__all__ = [
    "SOURCES",
    "Computed",
    "Corrected",
    "Ingested",
    "Published",
    "Report",
    "StageFolder",
    "Validated",
    "ValidationReport",
    "changed_files",
    "check_raw",
    "check_unchanged",
    "compute",
    "compute_results",
    "ingest",
    "ingest_and_validate",
    "input_hashes",
    "inputs_key",
    "read_quarantine",
    "read_results",
    "validate",
]

Work = Path | str | StageFolder
TOP_REASONS = 8  # quarantine rules shown per source (the validate command, the flow's validation summary)


def folder(work: Work) -> StageFolder:
    """A stage folder from a path (or itself)."""
    return work if isinstance(work, StageFolder) else StageFolder(Path(work))


class Report:
    """A stage's typed report. `as_dict()` is its JSON form; `report["key"]` reads a field (for callers that
    still index reports like the dicts they were)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclass
class Ingested(Report):
    """Ingest: per source the files read (rows, sha256, format notes), the unreadable and ignored files."""

    files: dict[str, list[dict[str, Any]]]
    unreadable_files: list[dict[str, Any]] = field(default_factory=list)
    ignored_files: list[dict[str, Any]] = field(default_factory=list)
    hashes: dict[str, str | None] = field(default_factory=dict)  # every export file -> SHA-256 of the bytes read


@dataclass
class Validated(Report):
    """Validate (or correct): rows read / valid / quarantined per source and per batch, the top reasons."""

    sources: dict[str, dict[str, int]]
    batches: list[dict[str, Any]]
    top_reasons: dict[str, dict[str, int]]


@dataclass
class Corrected(Validated):
    """Corrections: the accounting after the row corrections (as validate's) and the audit of each correction."""

    applied: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Published(Report):
    """Publish: the DuckDB file, rows written per table, seconds, the results hash, notes for the log."""

    db: str
    rows: dict[str, int]
    seconds: float
    results_hash: str
    notes: list[str] = field(default_factory=list)


@dataclass
class ValidationReport(Report):
    """Ingest and validate together: what `sipas validate` prints and the flow's validation artifact shows."""

    year: int
    sources: dict[str, dict[str, int]]
    unreadable_files: list[dict[str, Any]]
    ignored_files: list[dict[str, Any]]
    top_reasons: dict[str, dict[str, int]]
    batches: list[dict[str, Any]]
    files: dict[str, list[dict[str, Any]]]


@dataclass
class Computed(Report):
    """Compute: the national figures, PAR groups, incomplete provinces, the rankings' ends and the results hash."""

    national: dict[str, float]
    groups: dict[str, int]
    incomplete: dict[str, str]
    sipas: dict[str, list[dict[str, Any]]]
    par: dict[str, list[dict[str, Any]]]
    results_hash: str


def check_raw(m: Methodology, raw_dir: Path) -> None:
    """Fail early, with one message, when the raw folder or a source's export files are missing."""
    raw_dir = Path(raw_dir)
    if raw_dir.exists() and not raw_dir.is_dir():
        raise InputError(f"{raw_dir}: not a folder (--raw names the folder holding citizen/, official/, appraisal/)")
    if not raw_dir.is_dir():
        raise InputError(f"{raw_dir}: no such folder")
    for source in SOURCES:
        folder = raw_dir / m.meta["sources"][source]["folder"]
        try:
            found = list_files(folder)
        except OSError as exc:
            raise InputError(f"{folder}: cannot be read: {(exc.strerror or str(exc)).lower()}") from exc
        if not found:
            ignored = ignored_files(folder, raw_dir, source)
            why = f" ({len(ignored)} ignored: " + "; ".join(f"{i['file']}: {i['reason']}" for i in ignored[:3]) + ")"
            raise InputError(f"source {source!r}: no export files in {folder}" + (why if ignored else ""))


def input_hashes(m: Methodology, raw_dir: Path) -> dict[str, str]:
    """Every export file of the raw folder (path relative to it) -> the SHA-256 of its bytes now
    (`unreadable:<errno>` for a file that cannot be opened)."""
    out = {}
    for source in SOURCES:
        for path in list_files(Path(raw_dir) / m.meta["sources"][source]["folder"]):
            try:
                out[path.relative_to(raw_dir).as_posix()] = sha256_file(path)
            except OSError as exc:  # unreadable: ingest reports it; the key still says so
                out[path.relative_to(raw_dir).as_posix()] = f"unreadable:{exc.errno}"
    return out


def inputs_key(m: Methodology, raw_dir: Path, hashes: dict[str, str] | None = None) -> str:
    """Content key of a run's inputs: every export file's path and SHA-256 (`hashes`, or `input_hashes` now), the
    methodology's hash and the code's fingerprint. Equal keys mean ingest and validate would give the same Parquet;
    ingest then checks that it read exactly these bytes (`ingest(expected=...)`), so a key never names other content."""
    digest = hashlib.sha256(f"{m.content_hash}\n{code_fingerprint()}\n".encode())
    for rel, sha in (hashes if hashes is not None else input_hashes(m, raw_dir)).items():
        digest.update(f"{rel}\t{sha}\n".encode())
    for source in SOURCES:
        folder = Path(raw_dir) / m.meta["sources"][source]["folder"]
        for ignored in ignored_files(folder, Path(raw_dir), source):  # the report lists them: a new one, a new key
            digest.update(f"ignored\t{ignored['file']}\n".encode())
    return digest.hexdigest()


def changed_files(before: dict[str, str | None], now: dict[str, str | None]) -> list[str]:
    """The export files whose content differs between two looks at the raw folder: `citizen/a.csv changed`,
    `... deleted`, `... added` (a file unreadable both times is unchanged)."""
    def same(a: str | None, b: str | None) -> bool:
        return a == b or {str(a)[:10], str(b)[:10]} <= {"unreadable", "None"}
    out = [f"{rel} deleted" for rel in before if rel not in now]
    out += [f"{rel} added" for rel in now if rel not in before]
    out += [f"{rel} changed" for rel in before if rel in now and not same(before[rel], now[rel])]
    return sorted(out)


def raw_changed(raw_dir: Path, changes: list[str], when: str) -> InputError:
    """The one line for a raw folder whose files changed while a run read it."""
    shown = ", ".join(changes[:6]) + (f" and {len(changes) - 6} more" if len(changes) > 6 else "")
    return InputError(f"{raw_dir}: the raw folder changed {when}: {shown}; nothing was published: run again once "
                      "the folder is complete")


def check_unchanged(m: Methodology, raw_dir: Path, read: dict[str, str | None]) -> None:
    """Before publishing: the raw folder still holds exactly the bytes read (`read`: the hashes the inputs' key was
    made of, which ingest checked it read, or a cached ingest's manifest was made from); InputError naming the
    files that changed otherwise."""
    changes = changed_files(read, input_hashes(m, Path(raw_dir)))
    if changes:
        raise raw_changed(Path(raw_dir), changes, "while the run read it")


def ingest(m: Methodology, raw_dir: Path, work: Work, expected: dict[str, str] | None = None) -> Ingested:
    """Raw exports -> `bronze/<source>/*.parquet` of the stage folder; returns the ingest report. `expected`: the
    hashes the inputs' key was made from; when the bytes read differ (a batch replaced, deleted or added while the
    run read the folder), InputError naming the files, and the caller writes no manifest for that key."""
    raw_dir, out = Path(raw_dir), folder(work)
    check_raw(m, raw_dir)
    bronze = fresh_dir(out.bronze_dir, "bronze Parquet")  # replaced only when made by sipas
    # sources are independent (Polars and the readers release the GIL): the large official export is read beside the
    # citizens' many files; each thread keeps the caller's context (a command's progress display)
    with ThreadPoolExecutor(max_workers=len(SOURCES)) as pool:
        runs = [pool.submit(contextvars.copy_context().run, ingest_source, m, s, raw_dir, bronze) for s in SOURCES]
        reports = {s: run.result() for s, run in zip(SOURCES, runs, strict=True)}
    unreadable = [u for r in reports.values() for u in r.unreadable]
    hashes = {rel: sha for r in reports.values() for rel, sha in r.hashes.items()}
    if expected is not None and (changes := changed_files(expected, hashes)):
        raise raw_changed(raw_dir, changes, "between the run's first look and its reading")
    for source, r in reports.items():
        if not r.files:
            where = raw_dir / m.meta["sources"][source]["folder"]
            why = "; ".join(f"{u['file']}: {u['reason']}" for u in r.unreadable) or "no export files there"
            raise InputError(f"source {source!r}: no readable file in {where} ({why})")
    return Ingested(files={s: r.files for s, r in reports.items()}, unreadable_files=unreadable,
                    ignored_files=[i for r in reports.values() for i in r.ignored], hashes=hashes)


def validate(m: Methodology, work: Work, batch_rows: int | None = None) -> Validated:
    """Bronze -> `silver/<source>.parquet` and `quarantine/<source>.parquet` (in batches of `batch_rows` rows,
    `validate.validate_files`); returns the accounting."""
    out = folder(work)
    fresh_dir(out.silver_dir, "silver Parquet")  # replaced only when made by sipas
    fresh_dir(out.quarantine_dir, "quarantine Parquet")
    sources, batches, reasons = {}, [], {}

    def one(source: str) -> tuple[pl.DataFrame, dict[str, int]]:  # in batches: memory bounded by the batch
        return validate_files(m, source, out.bronze_files(source), out.silver(source), out.quarantine(source),
                              batch_rows)

    # sources are independent; Polars releases the GIL, so two run at once on two cores
    with ThreadPoolExecutor(max_workers=len(SOURCES)) as pool:
        results = list(pool.map(one, SOURCES))
    for source, (acc, counts) in zip(SOURCES, results, strict=True):
        sources[source] = {"read": int(acc["read"].sum()), "valid": int(acc["valid"].sum()),
                           "quarantined": int(acc["quarantined"].sum())}
        batches += acc.with_columns(pl.lit(source).alias("source")).to_dicts()
        reasons[source] = counts
    return Validated(sources=sources, batches=batches, top_reasons=reasons)


def ingest_and_validate(m: Methodology, raw_dir: Path, work: Work) -> ValidationReport:
    """Both first stages; the report the `validate` command prints."""
    return validation_report(m, ingest(m, raw_dir, work), validate(m, work))


def validation_report(m: Methodology, ingested: Ingested, checked: Validated) -> ValidationReport:
    """Merge the ingest report and the validate accounting into the stages' report."""
    unreadable_by_source = Counter(u["source"] for u in ingested.unreadable_files)
    sources = {s: c | {"unreadable_files": unreadable_by_source.get(s, 0)} for s, c in checked.sources.items()}
    return ValidationReport(year=m.year, sources=sources, unreadable_files=ingested.unreadable_files,
                            ignored_files=ingested.ignored_files, top_reasons=checked.top_reasons,
                            batches=checked.batches, files=ingested.files)


def compute_results(m: Methodology, citizen: pl.DataFrame | pl.LazyFrame, official: pl.DataFrame | pl.LazyFrame,
                    appraisal: pl.DataFrame, previous: pl.DataFrame | None = None,
                    incomplete: Missing | None = None) -> dict[str, pl.DataFrame]:
    """Silver frames -> the result tables (each validated against its Pandera schema). Every estimate carries its
    design-based uncertainty (`variance.py`); `previous` is last year's (province_code, measure, value,
    rank_national[, se, df, basis], and its PSU scores when re-estimated: the change is then paired) for the change
    columns. Citizens and officials may be LazyFrames.
    Provinces in `incomplete` (completeness.assess) are left out of the figures and marked: SIPAS needs their
    citizens' forms, the PAR INDEX every source; regions and the nation are means over the others."""
    incomplete = incomplete or {}
    citizen = citizen.filter(~pl.col("province_code").is_in([c for c, why in incomplete.items() if "citizen" in why]))
    par_ok = ~pl.col("province_code").is_in(list(incomplete))
    from sipas_pipeline import results_schemas as rs
    from sipas_pipeline.contrasts import contrasts
    from sipas_pipeline.indicators import all_units, estimate_indicators, sipas_tree
    from sipas_pipeline.par_index import par_points, par_totals
    from sipas_pipeline.ranking import change, rank_intervals, ranks
    from sipas_pipeline.reliability import rank_reliability, with_reliability
    from sipas_pipeline.stabilised import with_stabilised

    est = estimate_indicators(m, citizen)

    def par() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        points, survey = par_points(m, official.filter(par_ok), appraisal.filter(par_ok), est.filter(par_ok))
        levels, totals = par_totals(m, points, survey)
        return points, levels, totals

    def units(by_province: pl.DataFrame, keys: list[str], sums: list[str], proportion: bool) -> pl.DataFrame:
        """Province, region and nation rows, each with its uncertainty columns, reliability and, on province rows,
        the stabilised variance beside the direct one."""
        direct = with_reliability(all_units(m, by_province, keys, sums, proportion), proportion)
        return with_stabilised(direct, m.design.confidence, proportion, keys)

    # the PAR INDEX, the indicators' table and the contrasts need only the estimates: they run beside the SIPAS
    # and the ranks (Polars and NumPy release the GIL)
    with ThreadPoolExecutor(max_workers=2) as pool:
        par_run = pool.submit(par)
        values_run = pool.submit(units, est.values, ["indicator_id"], ["numerator", "denominator", "n"], True)
        tree = sipas_tree(m, est)
        sipas = units(tree, ["level", "node"], ["n"], False)
        points, levels, totals = par_run.result()
        measures = pl.concat([
            tree.filter(pl.col("level") != "element").select(
                "province_code", pl.when(pl.col("level") == "sipas").then(pl.lit("sipas"))
                .otherwise(pl.lit("sipas_") + pl.col("node")).alias("measure"), "value", pl.col("var").sqrt().alias("se"),
                "df"),
            totals.select("province_code", pl.lit("par").alias("measure"), pl.col("par_index").alias("value"), "se", "df"),
        ])
        stabilised = sipas.filter(pl.col("unit_level") == "province", pl.col("level") != "element").select(
            pl.col("unit_code").alias("province_code"), pl.when(pl.col("level") == "sipas").then(pl.lit("sipas"))
            .otherwise(pl.lit("sipas_") + pl.col("node")).alias("measure"), "se_stabilised", "df_stabilised")
        measures = measures.join(stabilised, on=["province_code", "measure"], how="left")  # the PAR INDEX has none
        contrasts_run = pool.submit(contrasts, m, est, measures)  # incomplete provinces have no row there
        ranked = change(rank_intervals(m, ranks(m, measures)), previous, m.design.confidence,
                        paired_change(m, est, previous))
        totals = with_reliability(totals, False, value="par_index")
        out = mark_incomplete(m, {
            "indicator_values": values_run.result(), "sipas_indices": sipas, "par_points": points, "par_levels": levels,
            "par_totals": totals, "ranks": rank_reliability(ranked, sipas, totals)}, incomplete)
        out["contrasts"] = contrasts_run.result()
    for name, schema in (("indicator_values", rs.INDICATORS), ("sipas_indices", rs.SIPAS), ("par_points", rs.PAR_POINTS),
                         ("par_totals", rs.PAR_TOTALS), ("ranks", rs.RANKS), ("contrasts", rs.CONTRASTS)):
        out[name] = schema.validate(out[name])
    return out


def paired_change(m: Methodology, est, previous: pl.DataFrame | None) -> pl.DataFrame | None:
    """The paired change's variance (`paired.paired_variance`) when `previous` carries its PSU scores (re-estimated
    from last year's silver forms), else None (independent years)."""
    from sipas_pipeline.comparable import split
    from sipas_pipeline.paired import measure_scores, paired_variance

    _, scores = split(previous)  # matched by the PSU code (2025: the 2024 commune, kept in the frame's psu)
    return None if scores is None else paired_variance(measure_scores(m, est), scores)


def compute(m: Methodology, work: Work, previous: pl.DataFrame | None = None,
            incomplete: Missing | None = None) -> Computed:
    """Silver Parquet -> `results/<table>.parquet`; returns national figures and the rankings' ends. `previous`:
    last year's own results (`publish.previous_results`); without them the change is against `published.csv`.
    `incomplete` (completeness.assess) names the provinces published as incomplete."""
    out = folder(work)
    silver = {s: pl.read_parquet(out.silver(s)) for s in SOURCES}
    previous = previous if previous is not None else previous_published(m)
    tables = compute_results(m, silver["citizen"], silver["official"], silver["appraisal"], previous, incomplete)
    fresh_dir(out.results_dir, "result tables")  # replaced only when made by sipas
    for name, table in tables.items():
        table.write_parquet(out.result(name))
    from sipas_pipeline.publish import results_hash

    return Computed(**summarise(m, tables), results_hash=results_hash(tables))


def read_results(work: Work) -> dict[str, pl.DataFrame]:
    """The result tables the compute stage wrote under `results/`."""
    return {p.stem: pl.read_parquet(p) for p in folder(work).result_files()}


def read_quarantine(work: Work) -> pl.DataFrame:
    """Every source's quarantined rows in one frame (columns of all sources, missing ones null)."""
    frames = [pl.read_parquet(p) for p in folder(work).quarantine_files()]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def run_inputs(ingested: Ingested, checked: Validated) -> list[dict[str, Any]]:
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
    totals = tables["par_totals"]
    out: dict[str, Any] = {"national": national, "groups": dict(sorted(
        totals.filter(pl.col("group").is_not_null()).group_by("group").len().iter_rows()))}
    out["incomplete"] = {r["province_code"]: r["incomplete_reason"] for r in totals.iter_rows(named=True)
                         if r.get("incomplete_reason")}
    for measure in ("sipas", "par"):
        r = (tables["ranks"].filter((pl.col("measure") == measure) & pl.col("rank_national").is_not_null())
             .sort("rank_national", "province_code"))
        rows = [{"rank": k, "province": names[c], "value": round(v, 2), "rank_interval": [lo, hi]}
                for c, v, k, lo, hi in r.select("province_code", "value", "rank_national", "rank_low", "rank_high").iter_rows()]
        out[measure] = {"top5": rows[:5], "bottom5": rows[-5:]}
    return out
