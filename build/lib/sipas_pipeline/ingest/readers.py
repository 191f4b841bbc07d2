"""Readers for the exports a year brings: CSV/TSV in several encodings and separators, Excel
workbooks, Parquet. Each returns every column as NFC text, headers as found, rows in file order."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import polars as pl

TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
SUFFIXES = TEXT_SUFFIXES | {".xlsx", ".xlsm", ".parquet"}
SEPARATORS = (",", ";", "\t", "|")


class UnreadableFile(Exception):
    """A file that cannot be used at all; the message says which file and what is wrong."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


def decode(raw: bytes, path: Path, encoding: str | None = None) -> tuple[str, str]:
    """Bytes -> (NFC text, encoding used): BOMs first, then strict UTF-8, then Windows-1258."""
    if encoding:
        try:
            return unicodedata.normalize("NFC", raw.decode(encoding)), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise UnreadableFile(path, f"cannot decode as {encoding}: {exc}") from exc
    if raw.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ["utf-16"]
    else:
        if b"\x00" in raw[:4096]:
            raise UnreadableFile(path, "binary content (NUL bytes): not a text export")
        candidates = ["utf-8", "cp1258"]
    errors = []
    for enc in candidates:
        try:
            return unicodedata.normalize("NFC", raw.decode(enc)), enc
        except UnicodeDecodeError as exc:
            errors.append(f"{enc}: {exc.reason} at byte {exc.start}")
    raise UnreadableFile(path, "encoding not recognised (" + "; ".join(errors) + ")")


def sniff_separator(header_line: str) -> str:
    """The separator that splits the header line into the most fields."""
    return max(SEPARATORS, key=lambda s: (header_line.count(s), -SEPARATORS.index(s)))


def read_text(path: Path, encoding: str | None = None, separator: str | None = None) -> tuple[pl.DataFrame, dict]:
    """A delimited text export as text columns, with what was detected."""
    raw = path.read_bytes()
    if not raw.strip():
        raise UnreadableFile(path, "empty file")
    text, enc = decode(raw, path, encoding)
    control = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\r\n\t")
    if control > 8:
        raise UnreadableFile(path, f"binary content ({control} control characters in the first 4 KiB)")
    first = text.split("\n", 1)[0]
    sep = separator or sniff_separator(first)
    try:
        frame = pl.read_csv(io.BytesIO(text.encode("utf-8")), separator=sep, infer_schema=False, quote_char='"',
                            raise_if_empty=True)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise UnreadableFile(path, f"not a readable {sep!r}-separated table: {str(exc).splitlines()[0]}") from exc
    return frame, {"format": "text", "encoding": enc, "separator": sep}


def read_excel(path: Path, sheet: str | None = None) -> tuple[pl.DataFrame, dict]:
    """The first (or named) sheet of a workbook as text columns."""
    try:
        frame = pl.read_excel(path, engine="calamine", sheet_name=sheet, read_options={"dtypes": "string"})
    except Exception as exc:  # calamine raises its own error types for corrupt workbooks
        raise UnreadableFile(path, f"cannot open workbook: {str(exc).splitlines()[0]}") from exc
    frame = frame.with_columns(pl.all().str.normalize("NFC"))
    return frame.rename({c: unicodedata.normalize("NFC", c) for c in frame.columns}), {"format": "xlsx"}


def read_parquet(path: Path) -> tuple[pl.DataFrame, dict]:
    """A Parquet file, every column cast to text."""
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:
        raise UnreadableFile(path, f"cannot read Parquet: {str(exc).splitlines()[0]}") from exc
    frame = frame.with_columns(pl.all().cast(pl.Utf8).str.normalize("NFC"))
    return frame.rename({c: unicodedata.normalize("NFC", c) for c in frame.columns}), {"format": "parquet"}


def read_export(path: Path, encoding: str | None = None, separator: str | None = None) -> tuple[pl.DataFrame, dict]:
    """Any supported export as text columns; UnreadableFile names what is wrong."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        frame, info = read_text(path, encoding, separator)
    elif suffix in (".xlsx", ".xlsm"):
        frame, info = read_excel(path)
    elif suffix == ".parquet":
        frame, info = read_parquet(path)
    else:
        raise UnreadableFile(path, f"unsupported file type {suffix!r} (expected one of {sorted(SUFFIXES)})")
    if frame.width == 0:
        raise UnreadableFile(path, "no columns")
    return frame, info
