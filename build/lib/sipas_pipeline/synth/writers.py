"""Write a batch the way the systems of a survey year export it: CSV in several encodings and
separators, Excel workbooks, KoboToolbox-style CSV."""

from __future__ import annotations

import io
import unicodedata
from datetime import date, datetime
from functools import cache
from itertools import combinations
from pathlib import Path

import polars as pl
import xlsxwriter

FORMATS = ("csv-utf8", "csv-utf8-bom", "csv-cp1258-semicolon", "xlsx", "tsv-utf16")
FIXED_TIME = datetime(2025, 1, 15, 8, 0, 0)


@cache
def _cp1258_map() -> dict[int, str]:
    """Precomposed Vietnamese letters that Windows-1258 lacks -> base letter + combining tone mark."""
    table = {}
    for cp in range(0xC0, 0x1EFF + 1):
        ch = chr(cp)
        try:
            ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        base, *marks = unicodedata.normalize("NFD", ch)
        for k in range(len(marks), -1, -1):  # keep as many marks composed as the code page allows
            for kept in combinations(range(len(marks)), k):
                rest = "".join(mk for i, mk in enumerate(marks) if i not in kept)
                cand = unicodedata.normalize("NFC", base + "".join(marks[i] for i in kept)) + rest
                if len(unicodedata.normalize("NFC", base + "".join(marks[i] for i in kept))) != 1:
                    continue
                try:
                    cand.encode("cp1258")
                except UnicodeEncodeError:
                    continue
                table[cp] = cand
                break
            if cp in table:
                break
    return table


def encode_cp1258(text: str) -> bytes:
    """Text as Windows-1258 bytes, decomposing tone marks the way that code page needs."""
    return unicodedata.normalize("NFC", text).translate(_cp1258_map()).encode("cp1258")


def _csv_text(frame: pl.DataFrame, separator: str) -> str:
    return frame.write_csv(separator=separator, line_terminator="\r\n", quote_style="necessary")


def write_table(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    """Write `frame` (text columns, export headers) to `path` in export format `fmt`."""
    if fmt == "csv-utf8":
        path.write_bytes(_csv_text(frame, ",").encode("utf-8"))
    elif fmt == "csv-utf8-bom":
        path.write_bytes(b"\xef\xbb\xbf" + _csv_text(frame, ",").encode("utf-8"))
    elif fmt == "csv-cp1258-semicolon":
        path.write_bytes(encode_cp1258(_csv_text(frame, ";")))
    elif fmt == "tsv-utf16":
        path.write_bytes(_csv_text(frame, "\t").encode("utf-16"))
    elif fmt == "xlsx":
        write_xlsx(frame, path)
    else:
        raise ValueError(f"unknown export format {fmt!r}")


def _cell(value: str | None):
    """Numbers and ISO dates become typed cells, as a spreadsheet would hold them."""
    if value is None:
        return None
    if value.isdigit() and not value.startswith("0"):
        return int(value)
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    return value


def write_xlsx(frame: pl.DataFrame, path: Path, sheet: str = "Du lieu") -> None:
    """An Excel workbook, byte-identical for identical input (fixed document times)."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"constant_memory": True, "in_memory": False})
    wb.set_properties({"created": FIXED_TIME, "author": "sipas-pipeline synthetic year"})
    ws = wb.add_worksheet(sheet)
    date_fmt = wb.add_format({"num_format": "dd/mm/yyyy"})
    ws.write_row(0, 0, frame.columns)
    for r, row in enumerate(frame.iter_rows(), start=1):
        for c, value in enumerate(row):
            v = _cell(value)
            if v is None:
                continue
            if isinstance(v, date):
                ws.write_datetime(r, c, v, date_fmt)
            else:
                ws.write(r, c, v)
    wb.close()
    path.write_bytes(buf.getvalue())
