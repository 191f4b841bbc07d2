"""Raw exports -> bronze Parquet: canonical columns, lineage on every row, no personal data."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from sipas_pipeline.hashing import sha256_file
from sipas_pipeline.ingest.normalize import (
    clean_text,
    header_key,
    normalise_dates,
    place_key,
    province_lookup,
    resolve_provinces,
    without_invisible,
)
from sipas_pipeline.ingest.parts import Reencode, in_parts, read_parts
from sipas_pipeline.ingest.readers import SUFFIXES, RawTable, Score, UnreadableFile, read_table
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.parquet_rows import hold
from sipas_pipeline.progress import track

LINEAGE = ["source_file", "source_row", "batch_id", "file_sha256"]
# bronze is read once, whole, by validate: no statistics or dictionaries to make (a third of the writing's cost)
BRONZE_PARQUET = {"compression": "lz4", "write_statistics": False, "use_dictionary": False}
ROW_SHAPE = "row_shape"  # bronze only: why a row's number of fields differs from its header's (null when it does not)


@dataclass
class IngestReport:
    """What ingest did for one source: files read, rows, columns ignored, files it could not read."""

    source: str
    files: list[dict] = field(default_factory=list)
    unreadable: list[dict] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)
    hashes: dict[str, str | None] = field(default_factory=dict)  # every file read -> SHA-256 of the bytes read

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


def header_score(form: pl.DataFrame) -> Score:
    """How many cells of a candidate header row name a field of the form (personal data included)."""
    names = {header_key(a) for fid, hs in form.select("field_id", "headers").iter_rows()
             for a in [fid, *(h for h in (hs or "").split("|") if h)]}

    def score(cells: list[str]) -> int:
        return sum(1 for c in cells if c and (header_key(c) in names or header_key(c.rsplit("/", 1)[-1]) in names))
    return score


def where_header(info: dict) -> str:
    """Where the header was taken from, as said in reasons: line (and sheet)."""
    sheet = f" of sheet {info['sheet']!r}" if info.get("sheet") else ""
    found = f", the row that names the most form fields ({info['header_score']})" if "header_score" in info else ""
    notes = "".join(f"; {n}" for n in info.get("notes", []))
    return f"header taken from row {info.get('header_row', 1)}{sheet}{found}{notes}"


_MAPPED: dict[tuple[int, tuple[str, ...]], tuple] = {}


def _mapped(m: Methodology, source: str, columns: list[str]) -> tuple[dict[str, str], list[str], list[str], list[str],
                                                                     list[pl.Expr]]:
    """For a header: field id -> export column, missing required fields, ignored columns (`map_headers`), the public
    fields and the expressions that take them as text. Kept per form and header: a source's files share theirs."""
    form = source_fields(m, source)
    key = (id(form), tuple(columns))
    hit = _MAPPED.get(key)
    if hit is None or hit[0] is not form:
        if len(_MAPPED) > 256:
            _MAPPED.clear()
        mapping, missing, ignored = map_headers(columns, form)
        by_field, fields = {v: k for k, v in mapping.items()}, public_fields(m, source)
        taken = [pl.col(by_field[f]).cast(pl.Utf8).alias(f) if f in by_field else pl.lit(None, pl.Utf8).alias(f)
                 for f in fields]
        hit = _MAPPED[key] = (form, by_field, missing, ignored, fields, taken)
    return hit[1:]


def canonical(frame: pl.DataFrame, m: Methodology, source: str, rel_path: str, sha: str,
              line: pl.Series | None = None, shape: pl.Series | None = None,
              info: dict | None = None) -> tuple[pl.DataFrame, dict]:
    """A raw table -> the form's non-personal fields as raw text + lineage (`source_row`: the row's
    line in the file, header = 1 unless `line` says otherwise) + `row_shape`; raises UnreadableFile
    (with `rel_path`) when required columns are missing. Personal-data columns are dropped here, and a
    row whose shape is wrong keeps no value at all."""
    by_field, missing, ignored, fields, taken = _mapped(m, source, frame.columns)
    if missing:
        where = f" ({where_header(info)})" if info else ""
        raise UnreadableFile(Path(rel_path), "missing required columns: " + ", ".join(missing) + where)
    n = frame.height
    line = line if line is not None else pl.int_range(2, n + 2, dtype=pl.Int64, eager=True)
    shape = shape if shape is not None else pl.repeat(None, n, dtype=pl.Utf8, eager=True)
    ok = shape.is_null()
    whole = ok.all()
    out = frame.select(
        pl.lit(rel_path).alias("source_file"),
        pl.lit(line.cast(pl.Int64)).alias("source_row"),
        pl.lit(Path(rel_path).stem).alias("batch_id"),
        pl.lit(sha).alias("file_sha256"),
        pl.lit(shape.cast(pl.Utf8)).alias(ROW_SHAPE),
        *(taken if whole else [pl.when(pl.lit(ok)).then(pl.col(by_field[f]).cast(pl.Utf8)).alias(f) if f in by_field
                               else pl.lit(None, pl.Utf8).alias(f) for f in fields]))
    return out, {"file": rel_path, "rows": out.height, "sha256": sha, "ignored_columns": list(ignored),
                 "row_shape": int(n - ok.sum())}


def public_fields(m: Methodology, source: str) -> list[str]:
    """The fields of a source that are kept (everything but personal data), in form order."""
    return source_fields(m, source).filter(pl.col("pii") == "no")["field_id"].to_list()


def _old_units(m: Methodology) -> dict[str, str]:
    """Aliases marked `old_unit` in province_aliases.csv (as place_key) -> the code of the unit that took them in."""
    aliases = m.province_aliases
    if "old_unit" not in aliases.columns:
        return {}
    return {place_key(a): c for a, c, flag in aliases.select("alias", "province_code", "old_unit").iter_rows()
            if flag == "yes"}


def old_unit_counts(m: Methodology, source: str, rows: pl.DataFrame) -> Counter[tuple[str, str]]:
    """(province field, value as keyed) -> rows, for the values that name a former province (see old_unit_notes)."""
    old, out = _old_units(m), Counter()
    if not old:
        return out
    for f in source_fields(m, source).filter(pl.col("dtype") == "province")["field_id"]:
        if f in rows.columns:
            out.update({(f, v): n for v, n in rows.group_by(f).len().iter_rows() if v is not None and place_key(v) in old})
    return out


def old_unit_notes(m: Methodology, source: str, rows: pl.DataFrame | None = None,
                   counts: Counter[tuple[str, str]] | None = None) -> list[str]:
    """A note when rows name a province by an alias marked `old_unit` in province_aliases.csv (a previous year's
    province now part of a unit, e.g. Bình Thuận in Lâm Đồng from 2025): resolved, and said so in the report.
    `counts`: old_unit_counts summed over a file read in parts, instead of its `rows`."""
    counts = counts if counts is not None else old_unit_counts(m, source, rows)
    old, notes = _old_units(m), []
    for f in source_fields(m, source).filter(pl.col("dtype") == "province")["field_id"]:
        found = [(v, old[place_key(v)], n) for (g, v), n in counts.items() if g == f]
        if found:
            named = ", ".join(f"{v} -> {c}" for v, c, _ in sorted(found)[:3])
            notes.append(f"{sum(n for *_, n in found)} rows name a former province in {f} ({named}): "
                         "resolved to the unit that took it in (unit_mapping.csv)")
    return notes


def normalise(frame: pl.DataFrame, m: Methodology, source: str, lookup: dict[str, str] | None = None) -> pl.DataFrame:
    """Canonical raw text -> bronze: trimmed, blanks null, provinces as codes, dates as ISO.
    Run once over all of a source's files (one pass, whatever the number of batches)."""
    form = source_fields(m, source)
    dtypes = dict(zip(form["field_id"], form["dtype"], strict=True))
    fields = public_fields(m, source)
    out = frame.with_columns(clean_text(frame.select(fields)))
    lookup = lookup if lookup is not None else province_lookup(m)
    exprs = []
    for f in fields:
        if dtypes[f] == "date":
            exprs.append(normalise_dates(pl.col(f)).alias(f))
        elif dtypes[f] == "multi":
            exprs.append(pl.col(f).str.replace_all(r"[\s,;]+", " "))
    out = out.with_columns(exprs) if exprs else out
    provinces = [f for f in fields if dtypes[f] == "province"]
    return out.with_columns([resolve_provinces(out[f], lookup).alias(f) for f in provinces]).select(
        *LINEAGE, ROW_SHAPE, *fields)


def empty_bronze(m: Methodology, source: str) -> pl.DataFrame:
    """A source's bronze with no rows (every batch header-only): lineage, row shape and the public fields."""
    return pl.DataFrame(schema={"source_file": pl.Utf8, "source_row": pl.Int64, "batch_id": pl.Utf8,
                                "file_sha256": pl.Utf8, ROW_SHAPE: pl.Utf8} | {f: pl.Utf8 for f in public_fields(m, source)})


def to_bronze(frame: pl.DataFrame | RawTable, m: Methodology, source: str, rel_path: str, sha: str,
              lookup: dict[str, str] | None = None) -> tuple[pl.DataFrame, dict]:
    """One raw table (a frame whose header is row 1, or a RawTable as read) -> bronze rows + its
    summary (`canonical` then `normalise`)."""
    if isinstance(frame, RawTable):
        out, summary = canonical(frame.frame, m, source, rel_path, sha, frame.line, frame.shape, frame.info)
    else:
        out, summary = canonical(without_invisible(frame), m, source, rel_path, sha)
    return normalise(out, m, source, lookup), summary


def _skipped(path: Path) -> bool:
    return path.name.startswith((".", "~$"))


def list_files(folder: Path) -> list[Path]:
    """The export files of a source folder: files directly in it with a supported type, in name order
    (the order "first copy" refers to). Files in subfolders are never read (see `ignored_files`)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not _skipped(p) and p.suffix.lower() in SUFFIXES)


def not_a_file(p: Path) -> str | None:
    """Why an entry of a source folder is not a regular file that could be read (None when it is one): a broken
    symbolic link or a loop, a named pipe, socket or device, or a folder named like an export file."""
    if p.is_symlink():
        try:
            p.stat()
        except OSError as exc:
            return ("a symbolic link loop" if exc.errno == errno.ELOOP else
                    "a broken symbolic link (its target is missing)")
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        return f"cannot be looked at: {(exc.strerror or str(exc)).lower()}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder named like an export file: only files are read" if p.suffix.lower() in SUFFIXES else ""
    kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"not a regular file ({kind})"


def ignored_files(folder: Path, raw_dir: Path, source: str) -> list[dict]:
    """Everything under a source folder that is not read, with why: files in subfolders (e.g. a stale
    copy in `citizen/old/`), unsupported file types, hidden and Office lock files, and entries that are not
    regular files (broken links, link loops, named pipes, folders named like an export file)."""
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.rglob("*")):
        special = not_a_file(p)
        if special == "" or (special is None and p.parent == folder and not _skipped(p)
                             and p.suffix.lower() in SUFFIXES):
            continue  # a plain subfolder (its files are listed), or a file that is read
        rel = p.relative_to(raw_dir).as_posix()
        if special:
            why = special
        elif p.parent != folder:
            why = f"in a subfolder: only files directly in {folder.relative_to(raw_dir).as_posix()}/ are read"
        elif _skipped(p):
            why = "hidden or Office lock file"
        else:
            why = f"unsupported file type {p.suffix.lower() or '(none)'!r} (expected one of {sorted(SUFFIXES)})"
        out.append({"source": source, "file": rel, "reason": why})
    return out


def ingest_parts(m: Methodology, source: str, path: Path, rel: str, out: Path, score: Score,
                 part_bytes: int | None = None) -> dict:
    """A large text export (`parts.in_parts`) read, normalised and written to bronze Parquet `out` part by part
    (one row group each): its summary, as `canonical` and the reader give it for a file read whole. The rows carry
    the file's SHA-256 before its end is read, so the bytes read are hashed too and must match it; UnreadableFile
    when they do not (the file changed while it was read), or the reader's."""
    sha, lookup, tried = sha256_file(path), province_lookup(m), None
    while True:
        hasher, rows, shapes, counts, summary, writer = hashlib.sha256(), 0, 0, Counter(), None, None
        try:
            for table in read_parts(path, hasher, score, part_bytes, tried):
                part, summary = canonical(table.frame, m, source, rel, sha, table.line, table.shape, table.info)
                counts.update(old_unit_counts(m, source, part))
                rows, shapes = rows + summary["rows"], shapes + summary["row_shape"]
                arrow = normalise(part, m, source, lookup).to_arrow()
                writer = writer or pq.ParquetWriter(out, arrow.schema, **BRONZE_PARQUET)
                writer.write_table(arrow.cast(writer.schema))
        except Reencode as exc:
            tried = exc.tried
            continue
        finally:
            if writer is not None:
                writer.close()
        break
    if hasher.hexdigest() != sha:
        changed = UnreadableFile(Path(rel), f"changed while it was read (SHA-256 {sha[:12]}... when first looked at, "
                                 f"{hasher.hexdigest()[:12]}... as read): read it again once the file is complete")
        changed.sha256 = hasher.hexdigest()  # the run's key then differs from what was read: nothing is published
        raise changed
    info = table.info | {"notes": [*table.info.get("notes", []), *old_unit_notes(m, source, counts=counts)]}
    return summary | {"rows": rows, "row_shape": shapes} | info


def write_bronze(rows: pl.DataFrame, path: Path, keep: bool = True) -> None:
    """One batch's bronze rows to Parquet `path`, kept in memory for validate when `keep` (`parquet_rows.hold`)."""
    pq.write_table(rows.to_arrow(), path, **BRONZE_PARQUET)
    if keep:
        hold(path, rows)


def ingest_source(m: Methodology, source: str, raw_dir: Path, bronze_dir: Path,
                  part_bytes: int | None = None) -> IngestReport:
    """Read every file of a source folder into bronze Parquet (one file per batch). A text export larger than
    `part_bytes` (default `parts.PART_BYTES`) is read and written in parts (`ingest_parts`)."""
    folder = raw_dir / m.meta["sources"][source]["folder"]
    report = IngestReport(source, ignored=ignored_files(folder, raw_dir, source))
    out_dir = bronze_dir / source
    out_dir.mkdir(parents=True, exist_ok=True)
    score = header_score(source_fields(m, source))

    def one(path: Path) -> tuple[pl.DataFrame | None, dict]:
        rel = path.relative_to(raw_dir).as_posix()
        sha = None
        if in_parts(path, part_bytes):
            bronze = out_dir / f"{path.stem}.parquet"
            try:
                return None, ingest_parts(m, source, path, rel, bronze, score, part_bytes) | {"_written": True}
            except (UnreadableFile, OSError) as exc:
                bronze.unlink(missing_ok=True)
                why = exc.reason if isinstance(exc, UnreadableFile) else f"cannot be read: {(exc.strerror or str(exc)).lower()}"
                sha = getattr(exc, "sha256", None) or (sha256_file(path) if isinstance(exc, UnreadableFile) else None)
                return None, {"file": rel, "source": source, "reason": why, "_sha256": sha}
        try:
            data = path.read_bytes()  # read once: the hash recorded is of exactly the bytes parsed
            sha = hashlib.sha256(data).hexdigest()
            table = read_table(path, score=score, data=data)
            del data
            rows, summary = canonical(table.frame, m, source, rel, sha, table.line, table.shape, table.info)
        except UnreadableFile as exc:
            return None, {"file": rel, "source": source, "reason": exc.reason, "_sha256": sha}
        except OSError as exc:  # permission denied, a file that vanished: unreadable, with the cause
            return None, {"file": rel, "source": source, "_sha256": sha,
                          "reason": f"cannot be read: {(exc.strerror or str(exc)).lower()}"}
        info = table.info | {"notes": [*table.info.get("notes", []), *old_unit_notes(m, source, rows)]}
        return rows, summary | info

    # files are independent: read them on all cores, report them in name order
    frames = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        files = list_files(folder)
        for rows, result in track(pool.map(one, files), len(files), f"ingest {source} files"):
            read = rows is not None or result.pop("_written", False)
            report.hashes[result["file"]] = result["sha256"] if read else result.pop("_sha256")
            (report.files if read else report.unreadable).append(result)
            if rows is not None:
                frames.append(rows)
        if frames:
            bronze = normalise(pl.concat(frames, how="vertical"), m, source, province_lookup(m))
            parts = bronze.partition_by("batch_id", as_dict=True, maintain_order=True).items()
            from sipas_pipeline.validate import ONE_BATCH_ROWS

            # kept for validate only when it reads the source whole (what it holds then anyway): a larger source is
            # validated in batches, memory bounded by the batch (issue #19), from the files
            keep = bronze.height <= ONE_BATCH_ROWS
            list(pool.map(lambda p: write_bronze(p[1], out_dir / f"{p[0][0]}.parquet", keep), parts))
    return report
