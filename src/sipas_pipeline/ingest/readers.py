"""Readers for the exports a year brings: CSV/TSV in several encodings, line endings and separators,
Excel workbooks, Parquet. Each gives every column as NFC text (zero-width characters and BOMs
removed), the header found (below title rows, on a later sheet), rows in file order with their line
in the file, and the rows whose number of fields differs from the header's (values blanked)."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
SUFFIXES = TEXT_SUFFIXES | {".xlsx", ".xlsm", ".parquet"}
SEPARATORS = (",", ";", "\t", "|")
HEADER_SCAN = 20  # rows searched for the header (title rows above it)
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"  # zero-width space / non-joiner / joiner, word joiner, BOM
INVISIBLE_RE = f"[{INVISIBLE}]"
_INVISIBLE = re.compile(INVISIBLE_RE)
_QUOTED = re.compile(r'"(?:[^"]|"")*"')
_QUOTED_UTF8 = re.compile(rb'"(?:[^"]|"")*"')
_INVISIBLE_UTF8 = re.compile(b"|".join(re.escape(ch.encode("utf-8")) for ch in INVISIBLE))
_LOST_LETTER = re.compile(r"\w\?|\?\w")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

Score = Callable[[list[str]], int]  # how many form fields a candidate header row maps


class UnreadableFile(Exception):
    """A file that cannot be used at all; the message says which file and what is wrong."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


@dataclass
class RawTable:
    """A table as read: header-named text columns, each row's line in the file (row in the sheet),
    and why a row's shape differs from the header's (null when it does not; such rows hold no values)."""

    frame: pl.DataFrame
    line: pl.Series
    shape: pl.Series
    info: dict = field(default_factory=dict)


def invisible_free(text: str) -> str:
    """Text without zero-width characters and BOMs (so one key cannot be two)."""
    return _INVISIBLE.sub("", text) if _INVISIBLE.search(text) else text


def detect(raw: bytes, path: Path, encoding: str | None = None) -> tuple[str, str, list[str]]:
    """Bytes -> (NFC text, encoding used, what was tried): BOMs first, UTF-16 without BOM by its NUL
    bytes, then strict UTF-8, then Windows-1258."""
    if encoding:
        try:
            return unicodedata.normalize("NFC", raw.decode(encoding)), encoding, [encoding]
        except (UnicodeDecodeError, LookupError) as exc:
            raise UnreadableFile(path, f"cannot decode as {encoding}: {exc}") from exc
    head = raw[:4096]
    if raw.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ["utf-16"]
    elif b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        if odd and odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
            candidates = ["utf-16-le"]
        elif even and even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
            candidates = ["utf-16-be"]
        else:
            raise UnreadableFile(path, "binary content (NUL bytes): not a text export")
    else:
        candidates = ["utf-8", "cp1258"]
    tried = []
    for enc in candidates:
        try:
            return unicodedata.normalize("NFC", raw.decode(enc)), enc, [*tried, enc]
        except UnicodeDecodeError as exc:
            tried.append(f"{enc} (failed: {exc.reason} at byte {exc.start})")
    raise UnreadableFile(path, "encoding not recognised (tried " + "; ".join(tried) + ")")


def decode(raw: bytes, path: Path, encoding: str | None = None) -> tuple[str, str]:
    """Bytes -> (NFC text, encoding used); see `detect`."""
    text, enc, _ = detect(raw, path, encoding)
    return text, enc


def encoding_notes(text: str, encoding: str) -> list[str]:
    """Hints about an encoding that decoded but may have lost letters (a Western cp1252 export)."""
    if encoding == "cp1258" and len(_LOST_LETTER.findall(text[:65536])) >= 3:
        return ["read as cp1258, but '?' stands inside words: this looks like a Western (cp1252) export that "
                "lost its Vietnamese letters; export again as UTF-8"]
    return []


def ending_counts(data: bytes) -> dict[str, int]:
    """How many lines end in CRLF, LF and CR alone (UTF-8 bytes); kinds not found are left out."""
    crlf = data.count(b"\r\n") if b"\r" in data else 0
    cr = data.count(b"\r") - crlf if b"\r" in data else 0
    return {k: n for k, n in (("CRLF", crlf), ("LF", data.count(b"\n") - crlf), ("CR", cr)) if n}


def line_endings(counts: dict[str, int]) -> str:
    """CRLF, LF, CR or mixed (with counts), as found."""
    if len(counts) > 1:
        return "mixed (" + ", ".join(f"{k} {n}" for k, n in counts.items()) + ")"
    return next(iter(counts), "none")


def sniff_separator(text: str) -> str:
    """The separator that splits some line of the first few (the header, below any title) into the most fields."""
    lines = _QUOTED.sub("", text[:65536]).split("\n")[:HEADER_SCAN]
    return max(SEPARATORS, key=lambda s: (max(line.count(s) for line in lines), -SEPARATORS.index(s)))


def header_names(cells: list[str | None]) -> list[str]:
    """Header cells as unique column names (blank -> column_<n>, repeats get _2, _3)."""
    names, seen = [], {}
    for i, c in enumerate(cells):
        name = " ".join((c or "").split()) or f"column_{i + 1}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names


def pick_header(candidates: list[list[str]], score: Score | None) -> tuple[int, int]:
    """(index, score) of the candidate row that maps the most form fields (the first on ties);
    the first row when there is no scorer."""
    if score is None or not candidates:
        return 0, 0
    first = score([c or "" for c in candidates[0]])
    if first * 2 >= len(candidates[0]):  # most cells of the first row name fields: the usual case
        return 0, first
    scores = [first] + [score([c or "" for c in row]) for row in candidates[1:]]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return best, scores[best]


def _shape_message(line: int, found: int, expected: int, header_line: int) -> str:
    return (f"line {line}: {found} fields where the header (line {header_line}) has {expected}; the row is quarantined "
            "whole, as its values may stand in the wrong columns")


def clean_utf8(text: str) -> tuple[bytes, dict[str, int]]:
    """NFC text -> the UTF-8 bytes the parsers read (lone CRs as LF, no zero-width characters or BOMs) and
    how many lines ended in CRLF, LF and CR alone (`ending_counts`)."""
    data = text.encode("utf-8")  # what follows works on UTF-8 bytes: fast whatever the file's encoding
    counts = ending_counts(data)
    if "CR" in counts:  # lone CRs end lines too (the readers split on LF, CRLF included)
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if b"\xe2\x80" in data or b"\xe2\x81\xa0" in data or b"\xef\xbb\xbf" in data:
        data = _INVISIBLE_UTF8.sub(b"", data)
    return data, counts


def text_info(path: Path, text: str, data: bytes, enc: str, tried: list[str], counts: dict[str, int],
              separator: str | None = None) -> dict:
    """What the start of a text export says (its first 64 KiB: binary content is refused, the separator sniffed,
    encoding hints): the `info` of its RawTable."""
    control = len(_CONTROL.findall(text, 0, 4096))
    if control > 8:
        raise UnreadableFile(path, f"binary content ({control} control characters in the first 4 KiB)")
    sep = separator or sniff_separator(data[:65536].decode("utf-8", "ignore"))
    return {"format": "text", "encoding": enc, "encodings_tried": tried, "line_endings": line_endings(counts),
            "separator": sep, "notes": encoding_notes(text, enc)}


def read_text(path: Path, encoding: str | None = None, separator: str | None = None,
              score: Score | None = None, data: bytes | None = None) -> RawTable:
    """A delimited text export: encoding, line endings and separator detected, the header found. `data`: the
    file's bytes when the caller read (and hashed) them already. (`ingest.parts` reads a large one in parts.)"""
    raw = path.read_bytes() if data is None else data
    if not raw.strip():
        raise UnreadableFile(path, "empty file")
    text, enc, tried = detect(raw, path, encoding)
    data, counts = clean_utf8(text)
    return parse_first(path, data, score, text_info(path, text, data, enc, tried, counts, separator))


def parse_first(path: Path, data: bytes, score: Score | None, info: dict) -> RawTable:
    """The first (or only) part of a text export, as clean UTF-8 `data`: the header found, the rows below it."""
    sep = info["separator"]
    grid, empty_rows = _regular_grid(data, sep)
    if grid is None:
        return _read_irregular(path, data.decode("utf-8"), sep, score, info)
    h, found = pick_header([list(r) for r in grid.head(HEADER_SCAN).iter_rows()], score)
    frame = grid.slice(h + 1)
    line = pl.int_range(h + 2, h + 2 + frame.height, dtype=pl.Int64, eager=True)
    if empty_rows:  # rows of empty fields are no rows
        keep = frame.select(~pl.all_horizontal(pl.all().is_null())).to_series()
        frame, line = frame.filter(keep), line.filter(keep)
    frame = frame.rename(dict(zip(grid.columns, header_names(list(grid.row(h))), strict=True)))
    shape = pl.repeat(None, frame.height, dtype=pl.Utf8, eager=True)
    if h:
        info["notes"] = [*info["notes"], f"header found on line {h + 1} (the lines above it are titles, not rows)"]
    return RawTable(frame, line.alias("line"), shape.alias("shape"), info | {"header_row": h + 1, "header_score": found})


def parse_more(path: Path, data: bytes, sep: str, names: list[str], header_line: int, offset: int) -> RawTable:
    """A later part of a text export (clean UTF-8 `data` that starts `offset` lines into the file, on a record's
    first line): its rows under the header `names` found on line `header_line`, read as `parse_first` reads rows."""
    grid, empty_rows = _regular_grid(data, sep) if data.strip() else (None, False)
    if grid is not None and grid.width == len(names):
        line = pl.int_range(offset + 1, offset + 1 + grid.height, dtype=pl.Int64, eager=True)
        if empty_rows:
            keep = grid.select(~pl.all_horizontal(pl.all().is_null())).to_series()
            grid, line = grid.filter(keep), line.filter(keep)
        frame = grid.rename(dict(zip(grid.columns, names, strict=True)))
        return RawTable(frame, line.alias("line"), pl.repeat(None, frame.height, dtype=pl.Utf8, eager=True).alias("shape"))
    records = _records(path, data.decode("utf-8"), sep, offset)
    return _rows_under(records, names, header_line)


def _records(path: Path, text: str, sep: str, offset: int = 0) -> list[tuple[int, list[str]]]:
    """(line, fields) of every record that is not blank, as the csv module reads them; `offset`: lines before `text`."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=False)
    records, start = [], offset + 1
    try:
        for rec in reader:
            if rec and any(c.strip() for c in rec):  # blank lines are no rows
                records.append((start, rec))
            start = offset + reader.line_num + 1
    except csv.Error as exc:
        raise UnreadableFile(path, f"not a readable {sep!r}-separated table at line {offset + reader.line_num}: "
                             f"{exc}") from exc
    return records


def _rows_under(records: list[tuple[int, list[str]]], names: list[str], header_line: int) -> RawTable:
    """Records as rows under a header of `names`: a record of another length is kept as a row of no values, with why."""
    width = len(names)
    lines, shapes, rows = [], [], []
    for line, rec in records:
        lines.append(line)
        if len(rec) == width:
            shapes.append(None)
            rows.append(rec)
        else:
            shapes.append(_shape_message(line, len(rec), width, header_line))
            rows.append([None] * width)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    frame = pl.DataFrame([pl.Series(n, c, dtype=pl.Utf8) for n, c in zip(names, columns, strict=True)])
    frame = frame.with_columns(pl.all().replace("", None))
    return RawTable(frame, pl.Series("line", lines, dtype=pl.Int64), pl.Series("shape", shapes, dtype=pl.Utf8))


def _regular_grid(data: bytes, sep: str) -> tuple[pl.DataFrame | None, bool]:
    """The fast reader's grid (every line a row, header included) and whether some rows are of empty
    fields only; None when the file is not regular: a blank line, a quoted field holding a line break,
    or a line whose number of fields differs from the others' (the exact reader then takes over)."""
    body = data[:-1] if data.endswith(b"\n") else data
    if b"\n\n" in body or body.startswith(b"\n"):
        return None, False
    unquoted = _QUOTED_UTF8.sub(b"", body) if b'"' in body else body
    lines = body.count(b"\n") + 1
    if unquoted is not body and unquoted.count(b"\n") + 1 != lines:
        return None, False
    try:
        grid = pl.read_csv(io.BytesIO(data), separator=sep, has_header=False, infer_schema=False, quote_char='"',
                           raise_if_empty=True)
    except (pl.exceptions.PolarsError, ValueError):  # e.g. a row longer than the first
        return None, False
    if grid.height != lines or unquoted.count(sep.encode()) != lines * (grid.width - 1):
        return None, False
    return grid, sep.encode() * (grid.width - 1) in unquoted  # a row of empty fields: separators only


def _read_irregular(path: Path, text: str, sep: str, score: Score | None, info: dict) -> RawTable:
    """The exact (slower) reader for a file with title rows, ragged rows, blank lines or multi-line cells."""
    records = _records(path, text, sep)
    if not records:
        raise UnreadableFile(path, "no rows (only blank lines)")
    h, found = pick_header([r for _, r in records[:HEADER_SCAN]], score)
    header_line, header = records[h]
    if h:
        info["notes"] = [*info["notes"], f"header found on line {header_line} (the lines above it are titles, not rows)"]
    table = _rows_under(records[h + 1:], header_names(header), header_line)
    return RawTable(table.frame, table.line, table.shape, info | {"header_row": header_line, "header_score": found})


def _sheet_xml(z: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(sheet name, member of the sheet's XML) for every sheet of an open workbook, in workbook order."""
    book = z.read("xl/workbook.xml").decode("utf-8", "replace")
    rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    targets = dict(re.findall(r'<Relationship[^>]*?Id="([^"]+)"[^>]*?Target="([^"]+)"', rels))
    targets |= {a: b for b, a in re.findall(r'<Relationship[^>]*?Target="([^"]+)"[^>]*?Id="([^"]+)"', rels)}
    out = []
    for name, rid in re.findall(r'<sheet [^>]*?name="([^"]+)"[^>]*?r:id="([^"]+)"', book):
        target = targets.get(rid, "").lstrip("/")
        out.append((unicodedata.normalize("NFC", name), target if target.startswith("xl/") else f"xl/{target}"))
    return out


MAX_SHEET_ROWS = 500_000  # above any batch (the largest seen: 294k rows); more is a stray cell, refused unallocated
MAX_SHEET_COLUMN = "ZZ"  # 702 columns (the forms have ~120); a cell in a three-letter column (AAA..XFD) is a stray one
_WIDE_CELL = re.compile(rb'<c [^>]*?r="([A-Z]{3}\d+)"')
_WIDE_HINT = re.compile(rb'r="[A-Z]{3}\d')  # in every match of _WIDE_CELL: a fifth of its cost where none is found
_ROW_NUMBER = re.compile(rb'<row [^>]*?r="(\d+)"')
_DIMENSION = re.compile(rb'<dimension ref="(?:[A-Z]+\d+:)?([A-Z]+)(\d+)"')


def check_extent(path: Path, source: Path | io.BytesIO) -> None:
    """Refuse a workbook whose sheets declare (`<dimension>`) or hold (a cell, a row) an absurd extent, before the
    reader allocates a grid for it (one stray cell at XFD1048576 would ask for hundreds of GB): UnreadableFile
    naming the sheet and the cell. The sheets' XML is scanned in blocks, never held whole."""
    def refuse(name: str, cell: str) -> UnreadableFile:
        return UnreadableFile(path, f"sheet {name!r} reaches {cell}: too large to read (at most {MAX_SHEET_ROWS:,} "
                              f"rows and columns up to {MAX_SHEET_COLUMN}); delete the stray cells or save the sheet as CSV")
    try:
        with zipfile.ZipFile(source) as z:
            for name, member in _sheet_xml(z):
                with z.open(member) as f:
                    tail, first = b"", True
                    while block := f.read(1 << 22):
                        chunk = tail + block
                        if first and (dim := _DIMENSION.search(chunk)):
                            letters, row = dim.group(1).decode(), int(dim.group(2))
                            if len(letters) > len(MAX_SHEET_COLUMN) or row > MAX_SHEET_ROWS:
                                raise refuse(name, f"cell {letters}{row} (its declared extent)")
                        first = False
                        if _WIDE_HINT.search(chunk) and (wide := _WIDE_CELL.search(chunk)):
                            raise refuse(name, f"cell {wide.group(1).decode()}")
                        rows = _ROW_NUMBER.findall(chunk)
                        if rows and (last := max(map(int, rows))) > MAX_SHEET_ROWS:
                            raise refuse(name, f"row {last:,}")
                        tail = chunk[-256:]
    except (KeyError, zipfile.BadZipFile, OSError, ValueError):
        return  # not a readable workbook: the reader says why
    finally:
        if isinstance(source, io.BytesIO):
            source.seek(0)


def _sheet_first_rows(path: Path | io.BytesIO) -> dict[str, int]:
    """Each sheet's first used row (1-based) from the workbook XML, as the reader skips empty rows above it."""
    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            for name, member in _sheet_xml(z):
                xml = z.open(member).read(4096).decode("utf-8", "replace")
                m = re.search(r'<dimension ref="[A-Z]+(\d+)', xml)
                out[name] = int(m.group(1)) if m else 1
    except (KeyError, zipfile.BadZipFile, OSError, ValueError):
        pass
    finally:
        if isinstance(path, io.BytesIO):
            path.seek(0)
    return out


def read_excel(path: Path, sheet: str | None = None, score: Score | None = None, data: bytes | None = None) -> RawTable:
    """The sheet and row that hold the header (the named sheet, or the one whose header maps the most
    form fields: a cover sheet first is passed over), as text columns. A sheet of absurd extent is refused
    first (`check_extent`). `data`: the file's bytes when the caller read (and hashed) them already."""
    source: Path | io.BytesIO = path if data is None else io.BytesIO(data)
    check_extent(path, source)
    try:
        sheets = pl.read_excel(source, engine="calamine", sheet_id=None if sheet else 0, sheet_name=sheet,
                               has_header=False, read_options={"dtypes": "string"}, raise_if_empty=False)
    except Exception as exc:  # calamine raises its own error types for corrupt workbooks
        raise UnreadableFile(path, f"cannot open workbook: {str(exc).splitlines()[0]}") from exc
    sheets = {sheet: sheets} if sheet else sheets
    name, grid, found, h = _header_sheet(path, sheets, score)
    grid = grid.with_columns(pl.all().str.normalize("NFC").str.replace_all(INVISIBLE_RE, ""))
    first = _sheet_first_rows(source).get(unicodedata.normalize("NFC", str(name)), 1)
    header = [c if c is None else invisible_free(unicodedata.normalize("NFC", c)) for c in grid.row(h)]
    width = max((i + 1 for i, c in enumerate(header) if c and c.strip()), default=0)
    body = grid.slice(h + 1).with_row_index("_i")
    body = body.filter(~pl.all_horizontal(pl.exclude("_i").is_null()))  # empty rows are no rows
    line = (body["_i"].cast(pl.Int64) + first + h + 1).alias("line")
    shape = _overflow(body, line, grid.columns[width:], width)
    frame = body.select(grid.columns[:width]).rename(dict(zip(grid.columns[:width], header_names(header[:width]),
                                                              strict=True)))
    if shape.null_count() != shape.len():
        frame = frame.with_columns([pl.when(shape.is_null()).then(pl.col(c)).alias(c) for c in frame.columns])
    notes = [f"header found on sheet {name!r}, row {first + h}"] if h or first > 1 or name != next(iter(sheets)) else []
    info = {"format": "xlsx", "sheet": str(name), "sheets": [str(s) for s in sheets], "header_row": first + h,
            "header_score": found, "notes": notes}
    return RawTable(frame, line, shape, info)


def _header_sheet(path: Path, sheets: dict, score: Score | None) -> tuple[str, pl.DataFrame, int, int]:
    """The sheet whose header row maps the most form fields: its name, grid, score and header row index."""
    best = None
    for name, grid in sheets.items():
        if grid.height == 0:
            continue
        h, found = pick_header([list(r) for r in grid.head(HEADER_SCAN).iter_rows()], score)
        if best is None or found > best[2]:
            best = (name, grid, found, h)
    if best is None:
        raise UnreadableFile(path, f"no rows in any sheet ({', '.join(map(str, sheets))})")
    return best


def _overflow(body: pl.DataFrame, line: pl.Series, extra: list[str], width: int) -> pl.Series:
    """Per row, why it has cells beyond the header's `width` columns (`extra`), else null."""
    shape = pl.repeat(None, body.height, dtype=pl.Utf8, eager=True).alias("shape")
    if not extra:
        return shape
    found_cells = pl.sum_horizontal(pl.col(extra).is_not_null().cast(pl.Int32))
    overflow = body.select(pl.any_horizontal(pl.col(extra).is_not_null()).alias("x"), (width + found_cells).alias("n"))
    return pl.Series("shape", [
        f"row {ln}: cells beyond the header's {width} columns (up to {n}); the row is quarantined whole, as its "
        "values may stand in the wrong columns" if x else None
        for ln, x, n in zip(line, overflow["x"], overflow["n"], strict=True)], dtype=pl.Utf8)


def read_parquet(path: Path, data: bytes | None = None) -> RawTable:
    """A Parquet file, every column cast to text (`data`: its bytes, when read already)."""
    try:
        frame = pl.read_parquet(path if data is None else io.BytesIO(data))
    except Exception as exc:
        raise UnreadableFile(path, f"cannot read Parquet: {str(exc).splitlines()[0]}") from exc
    frame = frame.with_columns(pl.all().cast(pl.Utf8).str.normalize("NFC").str.replace_all(INVISIBLE_RE, ""))
    frame = frame.rename({c: invisible_free(unicodedata.normalize("NFC", c)) for c in frame.columns})
    line = pl.int_range(2, frame.height + 2, dtype=pl.Int64, eager=True).alias("line")
    return RawTable(frame, line, pl.repeat(None, frame.height, dtype=pl.Utf8, eager=True).alias("shape"),
                    {"format": "parquet", "header_row": 1})


def read_table(path: Path, encoding: str | None = None, separator: str | None = None,
               score: Score | None = None, data: bytes | None = None) -> RawTable:
    """Any supported export as a RawTable; UnreadableFile names what is wrong. `score` finds the
    header (the row, and the sheet, that map the most form fields); without it the first row is the header.
    `data`: the file's bytes, when the caller read them (ingest hashes exactly the bytes it parses)."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        table = read_text(path, encoding, separator, score, data)
    elif suffix in (".xlsx", ".xlsm"):
        table = read_excel(path, score=score, data=data)
    elif suffix == ".parquet":
        table = read_parquet(path, data)
    else:
        raise UnreadableFile(path, f"unsupported file type {suffix!r} (expected one of {sorted(SUFFIXES)})")
    if table.frame.width == 0:
        raise UnreadableFile(path, "no columns")
    return table


def read_export(path: Path, encoding: str | None = None, separator: str | None = None,
                score: Score | None = None) -> tuple[pl.DataFrame, dict]:
    """Any supported export as (text columns, what was detected); rows whose number of fields differs
    from the header's are blanked and their lines listed in `info["ragged_lines"]`."""
    table = read_table(path, encoding, separator, score)
    ragged = table.line.filter(table.shape.is_not_null()).to_list()
    return table.frame, table.info | {"ragged_lines": ragged}
