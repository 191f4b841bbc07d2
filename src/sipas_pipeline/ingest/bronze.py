"""Raw exports -> bronze Parquet: canonical columns, lineage on every row, no personal data."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from sipas_pipeline.hashing import sha256_file
from sipas_pipeline.ingest.normalize import clean_text, header_key, normalise_dates, province_lookup, resolve_provinces
from sipas_pipeline.ingest.readers import SUFFIXES, UnreadableFile, read_export
from sipas_pipeline.methodology import Methodology

LINEAGE = ["source_file", "source_row", "batch_id", "file_sha256"]


@dataclass
class IngestReport:
    """What ingest did for one source: files read, rows, columns ignored, files it could not read."""

    source: str
    files: list[dict] = field(default_factory=list)
    unreadable: list[dict] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f["rows"] for f in self.files)


def source_fields(m: Methodology, source: str) -> pl.DataFrame:
    """The form of a source: one row per canonical field."""
    return m.forms[source]


def map_headers(columns: list[str], form: pl.DataFrame) -> tuple[dict[str, str], list[str], list[str]]:
    """(export column -> field id, missing required field ids, ignored columns).

    A field is found under its id or any of its header aliases, compared without case or extra
    spaces; for `group/question` headers the last path segment counts too. Personal-data fields are
    found (so they are not reported as unknown) and mapped to nothing: they are dropped here."""
    keys: dict[str, str] = {}
    for c in columns:
        keys.setdefault(header_key(c), c)
        keys.setdefault(header_key(c.rsplit("/", 1)[-1]), c)
    mapping, missing, used = {}, [], set()
    for row in form.iter_rows(named=True):
        aliases = [row["field_id"], *[h for h in row["headers"].split("|") if h]]
        found = next((keys[header_key(a)] for a in aliases if header_key(a) in keys
                      and keys[header_key(a)] not in used), None)
        if found is None:
            if row["required"] == "yes" and row["pii"] == "no":
                missing.append(row["field_id"])
            continue
        used.add(found)
        if row["pii"] == "no":
            mapping[found] = row["field_id"]
    ignored = [c for c in columns if c not in used]
    return mapping, missing, ignored


def to_bronze(frame: pl.DataFrame, m: Methodology, source: str, rel_path: str, sha: str,
              lookup: dict[str, str] | None = None) -> tuple[pl.DataFrame, dict]:
    """A raw table (text columns) -> canonical bronze columns + lineage; raises UnreadableFile
    (with `rel_path`) when required columns are missing."""
    form = source_fields(m, source)
    mapping, missing, ignored = map_headers(frame.columns, form)
    if missing:
        raise UnreadableFile(Path(rel_path), "missing required columns: " + ", ".join(missing))
    fields = [f for f in form.filter(pl.col("pii") == "no")["field_id"].to_list()]
    by_field = {v: k for k, v in mapping.items()}
    out = clean_text(frame.select([pl.col(by_field[f]).cast(pl.Utf8).alias(f) if f in by_field
                                   else pl.lit(None, pl.Utf8).alias(f) for f in fields]))
    dtypes = dict(zip(form["field_id"], form["dtype"], strict=True))
    lookup = lookup if lookup is not None else province_lookup(m)
    for f in fields:
        if dtypes[f] == "province":
            out = out.with_columns(resolve_provinces(out[f], lookup).alias(f))
        elif dtypes[f] == "date":
            out = out.with_columns(normalise_dates(pl.col(f)).alias(f))
        elif dtypes[f] == "multi":
            out = out.with_columns(pl.col(f).str.replace_all(r"[\s,;]+", " "))
    stem = Path(rel_path).stem
    out = out.with_columns(
        pl.lit(rel_path).alias("source_file"),
        (pl.int_range(pl.len(), dtype=pl.Int64) + 2).alias("source_row"),  # header is row 1
        pl.lit(stem).alias("batch_id"),
        pl.lit(sha).alias("file_sha256"),
    ).select(LINEAGE + fields)
    return out, {"file": rel_path, "rows": out.height, "sha256": sha, "ignored_columns": ignored}


def list_files(folder: Path) -> list[Path]:
    """The export files of a source folder, in name order (the order "first copy" refers to)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((".", "~$")))


def ingest_source(m: Methodology, source: str, raw_dir: Path, bronze_dir: Path) -> IngestReport:
    """Read every file of a source folder into bronze Parquet (one file per batch)."""
    folder = raw_dir / m.meta["sources"][source]["folder"]
    report = IngestReport(source)
    out_dir = bronze_dir / source
    out_dir.mkdir(parents=True, exist_ok=True)
    lookup = province_lookup(m)

    def one(path: Path) -> dict:
        rel = path.relative_to(raw_dir).as_posix()
        try:
            if path.suffix.lower() not in SUFFIXES:
                raise UnreadableFile(Path(rel), f"unsupported file type {path.suffix!r}")
            frame, info = read_export(path)
            bronze, summary = to_bronze(frame, m, source, rel, sha256_file(path), lookup)
        except UnreadableFile as exc:
            return {"file": rel, "source": source, "reason": exc.reason}
        bronze.write_parquet(out_dir / f"{path.stem}.parquet", statistics=False)
        return summary | info

    # files are independent: read them on all cores, report them in name order
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for result in pool.map(one, list_files(folder)):
            (report.unreadable if "reason" in result else report.files).append(result)
    return report
