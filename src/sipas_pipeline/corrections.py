"""Corrections sent after a first run: read the correction files, replace re-sent batch files, and
apply row corrections between validate and compute (corrected rows are validated again). Any
problem stops the run with one message per problem naming file and line; nothing is half-applied.

A correction file is read like an export (CSV/TSV/TXT in UTF-8, UTF-8 with BOM, UTF-16 or Windows-1258,
any of , ; tab |; or an .xlsx workbook's first sheet) with the columns of `COLUMNS`, one correction per line:
- `set`: change `field` of the form `form_id` from `old_value` (must match what is there) to `new_value`;
- `move`: move the form to the village `new_value` (the levels above it follow from the sampling
  frame); `old_value` is the village it is in now;
- `withdraw`: take the form out (it goes to quarantine with rule `withdrawn` and the reason);
- `keep`: of a form delivered more than once with different answers (rule `conflicting_duplicate`),
  keep the copy in `field` (the file as it sits in the raw folder, e.g. `citizen/x_v2.csv`, or
  `file:row` when the copies share a file); the other copies go to quarantine with rule `not_kept`;
- `replace_batch`: `field` is the batch file as it sits in the raw folder (e.g. `citizen/x.csv`;
  `./citizen/x.csv` is the same file; it cannot leave the raw folder), `new_value` the re-sent file
  (relative to the correction file; inside its folder or the raw folder; it must be readable),
  `old_value` optionally the first characters of the replaced file's SHA-256.
One form cannot be both withdrawn and set or moved.
`reason`, `requested_by` and `requested_at` (a date) are required on every line.
"""

from __future__ import annotations

import hashlib
import posixpath
import shutil
import unicodedata
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path, PureWindowsPath
from typing import Any

import polars as pl

from sipas_pipeline.catalog import StageFolder
from sipas_pipeline.errors import CorrectionError
from sipas_pipeline.hashing import sha256_file
from sipas_pipeline.ingest import LINEAGE
from sipas_pipeline.ingest.readers import TEXT_SUFFIXES, UnreadableFile, read_export, read_text
from sipas_pipeline.ingest.readers import read_table as read_raw_table
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.paths import MARKER, fresh_dir
from sipas_pipeline.validate import batch_accounting, read_bronze, reason_counts, recount, validate_source

COLUMNS = ["action", "source", "form_id", "field", "old_value", "new_value", "reason", "requested_by", "requested_at"]
ACTIONS = ("set", "move", "withdraw", "replace_batch", "keep")




@dataclass(frozen=True)
class Correction:
    """One line of a correction file."""

    file: str
    line: int
    action: str
    source: str
    form_id: str
    field: str
    old_value: str
    new_value: str
    reason: str
    requested_by: str
    requested_at: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def row(self) -> dict[str, Any]:
        """The correction as a flat dict (the audit table's columns)."""
        return dict(vars(self))

    def audit(self, rows: int, outcome: str, province_code: str | None = None) -> dict[str, Any]:
        """The audit row of the applied correction: the correction, rows touched, outcome, the form's province
        and the SHA-256 of the correction file's content."""
        path = Path(self.file)
        return self.row() | {"rows": rows, "outcome": outcome, "province_code": province_code,
                             "file_sha256": sha256_file(path) if path.is_file() else None}


def read_table(path: Path) -> pl.DataFrame:
    """A correction file's rows as text, read like an export: CSV/TSV/TXT in UTF-8 (with or without
    BOM), UTF-16 or Windows-1258 (any of , ; tab |), or the first sheet of an .xlsx workbook.
    UnreadableFile (or OSError) says why not."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        table = read_raw_table(path)
    elif suffix in TEXT_SUFFIXES or suffix == "":
        table = read_text(path)
    else:
        raise UnreadableFile(path, f"unsupported correction file type {suffix!r} (CSV, TSV or TXT text, or an .xlsx "
                                   "workbook)")
    ragged = table.line.filter(table.shape.is_not_null()).to_list()
    if ragged:
        lines = ", ".join(map(str, ragged[:5]))
        raise UnreadableFile(path, f"line {lines}: the number of fields differs from the header's (a correction "
                                   "line must be whole: nothing was applied)")
    frame = table.frame
    return frame.rename({c: unicodedata.normalize("NFC", c).strip().lstrip("\ufeff") for c in frame.columns})


def read_corrections(m: Methodology, paths: list[Path]) -> list[Correction]:
    """Parse and check correction files (encoding, format, actions, sources, required fields, dates,
    batch paths; one form not both withdrawn and changed)."""
    out, problems = [], []
    for path in map(Path, paths):
        if not path.is_file():
            problems.append(f"{path}: no such correction file")
            continue
        try:
            frame = read_table(path)
        except UnreadableFile as exc:
            problems.append(f"{path}: cannot be read as a correction file: {exc.reason}")
            continue
        except OSError as exc:
            problems.append(f"{path}: cannot be read: {exc.strerror or exc}")
            continue
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            problems.append(f"{path}:1: missing columns {', '.join(missing)} (expected {', '.join(COLUMNS)})")
            continue
        for i, row in enumerate(frame.select(COLUMNS).iter_rows(named=True), start=2):
            c = Correction(str(path), i, *[(row.get(k) or "").strip() for k in COLUMNS])
            if c.action == "replace_batch" and c.field:
                c = replace(c, field=normal_path(c.field))
            if c.requested_at.endswith(" 00:00:00"):  # a workbook's date cell read as a date-time
                c = replace(c, requested_at=c.requested_at.removesuffix(" 00:00:00"))
            problems += [f"{c.where}: {p}" for p in line_problems(m, c)]
            out.append(c)
    problems += conflicts(out)
    if problems:
        raise CorrectionError("\n".join(problems))
    return out


def normal_path(text: str) -> str:
    """A batch path as written in a correction file, normalised to the raw folder's form
    (`./citizen//x.csv`, `citizen\\x.csv` -> `citizen/x.csv`)."""
    return posixpath.normpath(text.replace("\\", "/")).removeprefix("./")


def conflicts(corrections: list[Correction]) -> list[str]:
    """One form withdrawn and also set or moved: a problem naming both lines."""
    withdrawn = {(c.source, c.form_id): c for c in corrections if c.action == "withdraw"}
    return [f"{c.where}: form {c.form_id} is withdrawn at {withdrawn[(c.source, c.form_id)].where} and {c.action} here: "
            "one form cannot be both (keep one line)"
            for c in corrections if c.action in ("set", "move") and (c.source, c.form_id) in withdrawn]


def line_problems(m: Methodology, c: Correction) -> list[str]:
    """What is wrong with one correction line on its own."""
    if c.action not in ACTIONS:
        return [f"unknown action {c.action!r} (one of {', '.join(ACTIONS)})"]
    return common_problems(m, c) + (batch_problems(c) if c.action == "replace_batch" else form_problems(m, c))


def common_problems(m: Methodology, c: Correction) -> list[str]:
    """The source and the request (reason, who, a date) of any line."""
    p = []
    if c.source not in m.meta["sources"]:
        p.append(f"unknown source {c.source!r} (one of {', '.join(m.meta['sources'])})")
    p += [f"{k} is required" for k in ("reason", "requested_by", "requested_at") if not getattr(c, k)]
    if c.requested_at:
        try:
            date.fromisoformat(c.requested_at)
        except ValueError:
            p.append(f"requested_at {c.requested_at!r} is not a date (YYYY-MM-DD)")
    return p


def batch_problems(c: Correction) -> list[str]:
    """A `replace_batch` line names a file inside the raw folder and the re-sent file."""
    if not c.field or not c.new_value:
        return ["replace_batch needs field (the batch file in the raw folder) and new_value (the re-sent file)"]
    if c.field.startswith(("/", "../")) or c.field == ".." or PureWindowsPath(c.field).drive:
        return [f"batch file {c.field} is outside the raw folder (give its path inside it, e.g. citizen/x.csv)"]
    return []


def form_problems(m: Methodology, c: Correction) -> list[str]:
    """A line about one form (set, move, withdraw, keep): its id and what its action needs."""
    p = [] if c.form_id else ["form_id is required"]
    if c.action == "set" and c.source in m.forms:
        p += set_problems(m, c)
    if c.action == "keep" and not c.field:
        p.append("keep needs field: the file of the copy to keep (as in the raw folder, e.g. citizen/x_v2.csv, or file:row)")
    if c.action == "move" and (c.field not in ("", "village_code") or not c.new_value):
        p.append("move needs new_value (the village code); field is village_code or empty")
    return p


def set_problems(m: Methodology, c: Correction) -> list[str]:
    """What is wrong with the field of a `set` line: not a field of the form, personal data, the key, geography."""
    form = m.forms[c.source]
    fields = dict(zip(form["field_id"], form["pii"], strict=True))
    if c.field not in fields:
        return [f"field {c.field!r} is not a field of the {c.source} form"]
    if fields[c.field] != "no" or c.field in LINEAGE:
        return [f"field {c.field!r} holds personal data and is not kept: it cannot be corrected"]
    if c.field in m.meta["sources"][c.source]["key"]:
        return [f"field {c.field!r} is the form's key: withdraw the form instead"]
    if c.field in m.geography:
        return [f"field {c.field!r} is geography: use move"]
    return []


def corrections_key(corrections: list[Correction]) -> str:
    """Content hash of the corrections, in the order given (empty string when there are none)."""
    if not corrections:
        return ""
    h = hashlib.sha256()
    for c in corrections:
        h.update(repr({k: v for k, v in c.row().items() if k not in ("file", "line")}).encode())
        if c.action == "replace_batch":
            try:
                h.update(sha256_file(Path(c.file).parent / c.new_value).encode())
            except OSError as exc:  # a missing or unreadable re-sent file: overlay_raw stops the run in one line
                h.update(f"unreadable:{exc.errno}".encode())
    return h.hexdigest()


def this_runs_files(applied: list[dict[str, Any]], corrections: list[Correction]) -> list[dict[str, Any]]:
    """The audit rows of the corrections stage (perhaps served from its manifest, made by an earlier run from the same
    corrections in other files: another encoding, separator or name) with the file, line and file SHA-256 of *this*
    run's correction files: the audit always names the files passed. Rows and corrections are in the same order."""
    if len(applied) != len(corrections):
        return applied
    return [a | {"file": c.file, "line": c.line,
                 "file_sha256": sha256_file(Path(c.file)) if Path(c.file).is_file() else None}
            for a, c in zip(applied, corrections, strict=True)]


def overlay_raw(m: Methodology, raw: Path, corrections: list[Correction], out: Path) -> Path:
    """The raw folder as it stands after `replace_batch` corrections: `raw` itself when there are none,
    else `out` with links to every file and the re-sent files in place of the replaced ones."""
    swaps = [c for c in corrections if c.action == "replace_batch"]
    if not swaps:
        return Path(raw)
    problems, by_file = [], {}
    for c in swaps:
        problems += swap_problems(c, Path(raw))
        by_file[c.field] = Path(c.file).parent / c.new_value
    if problems:
        raise CorrectionError("\n".join(problems))
    out = fresh_dir(out, "raw folder with re-sent batches")
    for path in sorted(p for p in Path(raw).rglob("*") if p.is_file() and p.name != MARKER):
        rel = path.relative_to(raw).as_posix()
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((by_file.get(rel) or path).resolve())
    return out


def swap_problems(c: Correction, raw: Path) -> list[str]:
    """What stops one `replace_batch` line: the replaced file (in the raw folder, the content old_value names)
    and the re-sent one (beside the correction file or in the raw folder, readable)."""
    old, new = raw / c.field, Path(c.file).parent / c.new_value
    problems = []
    if not inside(old, raw):
        problems.append(f"{c.where}: batch file {c.field} is outside the raw folder {raw}")
    elif not old.is_file():
        problems.append(f"{c.where}: batch file {c.field} is not in {raw}")
    elif c.old_value and not sha256_file(old).startswith(c.old_value.lower()):
        problems.append(f"{c.where}: {c.field} is not the file named by old_value {c.old_value} (its content changed)")
    if not (inside(new, Path(c.file).parent) or inside(new, raw)):
        problems.append(f"{c.where}: re-sent file {c.new_value} is outside the correction file's folder and the raw "
                        "folder")
    elif not new.is_file():
        problems.append(f"{c.where}: re-sent file {new} not found")
    else:
        try:
            read_export(new)
        except UnreadableFile as exc:
            problems.append(f"{c.where}: re-sent file {new} cannot be read: {exc.reason}")
        except OSError as exc:
            problems.append(f"{c.where}: re-sent file {new} cannot be read: {exc.strerror or exc}")
    return problems


def inside(path: Path, folder: Path) -> bool:
    """Whether `path` (links and `..` resolved) lies inside `folder`."""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def apply_corrections(m: Methodology, work_in: Path | StageFolder, work_out: Path | StageFolder,
                      corrections: list[Correction], batches_in: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Silver + quarantine of `work_in` with the row corrections applied -> `work_out`; the corrected
    forms are validated again (with every row sharing their key, so duplicates stay duplicates).
    A source without corrections is copied as it is, its accounting (`batches_in`, from validate)
    kept. Returns the audit rows, the accounting per source and batch, and the quarantine reasons
    of the corrected sources."""
    work_in, work_out = (w if isinstance(w, StageFolder) else StageFolder(Path(w)) for w in (work_in, work_out))
    rows = [c for c in corrections if c.action != "replace_batch"]
    problems: list[str] = []
    audit: list[dict[str, Any]] = [c.audit(0, "replaced") for c in corrections if c.action == "replace_batch"]
    sources, batches, frames, reasons = {}, [], {}, {}
    for source in m.meta["sources"]:
        mine = [c for c in rows if c.source == source]
        kept = [b for b in batches_in or [] if b["source"] == source]
        if not mine and kept:  # untouched: copied below, validate's accounting stands
            frames[source] = None
            acc = pl.DataFrame(kept)
        else:
            silver, quarantine, done = corrected_source(m, work_in, source, mine, problems)
            audit += done
            if mine:
                reasons[source] = reason_counts(quarantine)
            frames[source] = (silver, quarantine)
            acc = (recount(pl.DataFrame(kept), silver, quarantine, source) if kept else
                   batch_accounting(read_bronze(work_in, source), silver, quarantine, source))
            acc = acc.with_columns(pl.lit(source).alias("source"))
        sources[source] = {k: int(acc[k].sum()) for k in ("read", "valid", "quarantined")}
        batches += acc.to_dicts()
    if problems:  # nothing is written unless every correction applies
        raise CorrectionError("\n".join(problems))
    write_corrected(work_in, work_out, frames)
    order = {(c.file, c.line): i for i, c in enumerate(corrections)}
    return {"applied": sorted(audit, key=lambda a: order[(a["file"], a["line"])]), "sources": sources, "batches": batches,
            "top_reasons": reasons}


def corrected_source(m: Methodology, work_in: StageFolder, source: str, mine: list[Correction],
                     problems: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, list[dict[str, Any]]]:
    """A source's silver and quarantine with its row corrections `mine` applied (as they are when none)."""
    silver = pl.read_parquet(work_in.silver(source))
    quarantine = pl.read_parquet(work_in.quarantine(source))
    if not mine:
        return silver, quarantine, []
    ids = sorted({c.form_id for c in mine})
    forms = pl.scan_parquet(work_in.bronze_files(source)).filter(form_key(m, source).is_in(ids)).collect()
    return correct_source(m, source, forms, silver, quarantine, mine, problems)


def write_corrected(work_in: StageFolder, work_out: StageFolder,
                    frames: dict[str, tuple[pl.DataFrame, pl.DataFrame] | None]) -> None:
    """Each source's corrected silver and quarantine into `work_out`; an untouched source (None) is copied."""
    for sub in (work_out.silver_dir, work_out.quarantine_dir):
        sub.mkdir(parents=True, exist_ok=True)
    for source, corrected in frames.items():
        for where, frame in zip((StageFolder.silver, StageFolder.quarantine), corrected or (None, None), strict=True):
            if frame is None:
                shutil.copyfile(where(work_in, source), where(work_out, source))
            else:
                frame.write_parquet(where(work_out, source))


def form_key(m: Methodology, source: str) -> pl.Expr:
    """A source's form id as written in correction files (key columns joined by '/')."""
    key = m.meta["sources"][source]["key"]
    return pl.concat_str([pl.col(k) for k in key], separator="/") if len(key) > 1 else pl.col(key[0])


Where = tuple[str, int]  # a row's lineage: source_file, source_row


@dataclass
class RowEdits:
    """What one source's corrections do to its rows, row by row (the lineage `Where`)."""

    withdrawn: dict[Where, Correction]
    not_kept: dict[Where, Correction]
    touched: dict[Where, list[tuple[Correction, list[str]]]]


def correct_source(m: Methodology, source: str, forms: pl.DataFrame, silver: pl.DataFrame, quarantine: pl.DataFrame,
                   corrections: list[Correction], problems: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, list[dict]]:
    """Apply one source's row corrections to `forms` (the bronze text of every row whose form id a
    correction names) and validate them again."""
    rows = forms.sort("source_file", "source_row")
    records = rows.to_dicts()
    key_cols = m.meta["sources"][source]["key"]
    by_form: dict[str, list[dict]] = {}
    for r in records:
        by_form.setdefault("/".join(str(r[k]) for k in key_cols), []).append(r)
    edits = edit_rows(m, source, by_form, corrections, problems)
    gone = edits.withdrawn | edits.not_kept
    kept = [r for r in records if (r["source_file"], r["source_row"]) not in gone]
    again = validate_source(m, source, pl.DataFrame(kept, schema=forms.schema, orient="row")) if kept else None
    bad_at = broken_rules(again)
    for at, changes in edits.touched.items():
        for c, fields in changes:
            for x in (x for x in bad_at.get(at, []) if x["column"] in fields):
                problems.append(f"{c.where}: new value {c.new_value!r} breaks rule {x['rule']} on {x['column']}: {x['message']}")
    audit = [audit_row(c, by_form.get(c.form_id, []), bad_at) for c in corrections]
    silver, quarantine = rebuild(source, rows, silver, quarantine, again, edits)
    return silver, quarantine, audit


def broken_rules(again: Any) -> dict[tuple[str, int], list[dict]]:
    """The reasons of the corrected rows that validation quarantined again, by (file, row)."""
    if again is None or not again.quarantine.height:
        return {}
    return {(r["source_file"], r["source_row"]): r["reasons"]
            for r in again.quarantine.select("source_file", "source_row", "reasons").iter_rows(named=True)}


def audit_row(c: Correction, hits: list[dict], bad_at: dict[tuple[str, int], list[dict]]) -> dict[str, Any]:
    """The audit row of one correction: rows touched, outcome and the form's province."""
    outcome = ("withdrawn" if c.action == "withdraw" else "kept" if c.action == "keep" else
               "quarantined" if any((r["source_file"], r["source_row"]) in bad_at for r in hits) else "valid")
    return c.audit(len(hits), outcome, next((r["province_code"] for r in hits if r.get("province_code")), None))


def edit_rows(m: Methodology, source: str, by_form: dict[str, list[dict]], corrections: list[Correction],
              problems: list[str]) -> RowEdits:
    """Apply each correction to the rows of its form (in place), noting withdrawn, not kept and changed rows."""
    frame = m.sampling_frame.select(m.geography).unique(subset=["village_code"])  # the year's levels
    villages = {r["village_code"]: r for r in frame.iter_rows(named=True)}
    edits = RowEdits({}, {}, {})
    for c in corrections:
        hits = by_form.get(c.form_id, [])
        if not hits:
            problems.append(f"{c.where}: form {c.form_id!r} not found in source {source}")
        elif c.action == "keep":
            keep_one(c, hits, edits, problems)
        elif c.action == "withdraw":
            edits.withdrawn |= {(r["source_file"], r["source_row"]): c for r in hits}
        else:
            for r in hits:
                change_row(c, r, villages, edits, problems)
    return edits


def keep_one(c: Correction, hits: list[dict], edits: RowEdits, problems: list[str]) -> None:
    """`keep`: the copy named by `field` stays, the others are not kept."""
    chosen = [r for r in hits if c.field in (r["source_file"], f"{r['source_file']}:{r['source_row']}")]
    if len(chosen) != 1:
        copies = ", ".join(f"{r['source_file']}:{r['source_row']}" for r in hits)
        problems.append(f"{c.where}: keep {c.field!r} names {len(chosen)} of the copies of form {c.form_id} "
                        f"({copies}); name one (file, or file:row)")
        return
    edits.not_kept |= {(r["source_file"], r["source_row"]): c for r in hits if r is not chosen[0]}


def change_row(c: Correction, r: dict, villages: dict[str, dict], edits: RowEdits, problems: list[str]) -> None:
    """`set` a field or `move` the form to a village, when the old value matches."""
    at = (r["source_file"], r["source_row"])
    field = c.field if c.action == "set" else "village_code"
    current = r.get(field) or ""
    if current != c.old_value:
        problems.append(f"{c.where}: old value {c.old_value!r} of {field} does not match {current!r} "
                        f"in form {c.form_id} ({r['source_file']} row {r['source_row']})")
    elif c.action == "set":
        r[field] = c.new_value or None
        edits.touched.setdefault(at, []).append((c, [field]))
    elif c.new_value not in villages:
        problems.append(f"{c.where}: village {c.new_value!r} is not in the sampling frame (rule geography)")
    else:
        geography = list(villages[c.new_value])  # the year's levels, as the frame gives them
        r.update(villages[c.new_value])
        edits.touched.setdefault(at, []).append((c, geography))


def rebuild(source: str, rows: pl.DataFrame, silver: pl.DataFrame, quarantine: pl.DataFrame, again: Any,
            edits: RowEdits) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Silver and quarantine with the corrected forms' rows replaced by their new validation, withdrawn and
    not-kept rows quarantined with their reason."""
    lineage = ["source_file", "source_row"]
    affected = rows.select(lineage)
    silver = silver.join(affected, on=lineage, how="anti")
    parts = [quarantine.join(affected, on=lineage, how="anti")]
    if again is not None:
        silver = pl.concat([silver, again.silver], how="vertical_relaxed")
        parts.append(again.quarantine)
    out = [(at, "withdrawn", f"withdrawn by {c.where}: {c.reason} ({c.requested_by}, {c.requested_at})")
           for at, c in edits.withdrawn.items()]
    out += [(at, "not_kept", f"another copy ({c.field}) kept by {c.where}: {c.reason} ({c.requested_by}, {c.requested_at})")
            for at, c in edits.not_kept.items() if at not in edits.withdrawn]
    if out:
        why = pl.DataFrame({"source_file": [a for (a, _), _, _ in out], "source_row": [b for (_, b), _, _ in out],
                            "rule": [r for _, r, _ in out], "message": [msg for _, _, msg in out]},
                           schema_overrides={"source_row": pl.Int64})
        parts.append(rows.join(why, on=lineage).with_columns(
            pl.concat_list(pl.struct(pl.lit(None, pl.Utf8).alias("column"), pl.col("rule"),
                                     pl.lit(None, pl.Utf8).alias("value"), pl.col("message"))).alias("reasons"),
            pl.lit(source).alias("source")).drop("message", "rule"))
    quarantine = pl.concat([q.select(parts[0].columns) for q in parts if q.height] or parts[:1], how="vertical_relaxed")
    return silver.sort(lineage), quarantine.sort(lineage)
