"""Normalisation on the way in: text, headers, province names, dates."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

import polars as pl

from sipas_pipeline.ingest.readers import INVISIBLE_RE, invisible_free
from sipas_pipeline.methodology import Methodology

_PREFIX = re.compile(r"^(tinh|thanh pho|tp\.?)\s*")
EXCEL_EPOCH = date(1899, 12, 30)


@lru_cache(maxsize=1 << 16)
def header_key(text: str) -> str:
    """A header as compared: NFC, no zero-width characters or BOMs, case-folded, single spaces."""
    return " ".join(invisible_free(unicodedata.normalize("NFC", str(text))).casefold().split())


def place_key(text: str) -> str:
    """A place name as compared: no case, diacritics, prefixes ("Tỉnh", "TP.") or punctuation."""
    s = unicodedata.normalize("NFD", str(text).replace("Đ", "D").replace("đ", "d"))
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Mn").casefold()
    s = " ".join(s.split())
    while (stripped := _PREFIX.sub("", s)) != s:
        s = stripped
    return re.sub(r"[^a-z0-9]", "", s)


def province_lookup(m: Methodology) -> dict[str, str]:
    """Every accepted spelling (as place_key) -> province code."""
    table: dict[str, str] = {}
    for code, name, name_en in m.provinces.select("province_code", "name_vi", "name_en").iter_rows():
        for spelling in (code, name, name_en):
            table[place_key(spelling)] = code
        table[str(int(code))] = code  # "1" for "01"
    for alias, code in m.province_aliases.select("alias", "province_code").iter_rows():
        table[place_key(alias)] = code
    return table


def resolve_provinces(col: pl.Series, lookup: dict[str, str]) -> pl.Series:
    """Codes for the spellings that resolve; the text as found for the others (validation names it)."""
    uniques = col.drop_nulls().unique().to_list()
    mapping = {u: lookup.get(place_key(u), u) for u in uniques}
    return col.replace_strict(mapping, default=None, return_dtype=pl.Utf8) if mapping else col


def clean_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Trimmed, blanks as null (text arrives in NFC without zero-width characters: every reader cleans it)."""
    return frame.with_columns(pl.all().str.strip_chars().replace("", None))


def without_invisible(frame: pl.DataFrame) -> pl.DataFrame:
    """Text columns and headers without zero-width characters or BOMs (for frames that come from no reader)."""
    frame = frame.with_columns(pl.col(pl.Utf8).str.replace_all(INVISIBLE_RE, ""))
    return frame.rename({c: invisible_free(c) for c in frame.columns})


def normalise_dates(col: pl.Expr) -> pl.Expr:
    """ISO dates for ISO, ISO date-times, dd/mm/yyyy and Excel serials; other text unchanged."""
    iso = col.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    dmy = col.str.to_date("%d/%m/%Y", strict=False)
    serial = pl.when(col.str.contains(r"^\d{5}(\.0+)?$")).then(
        pl.lit(EXCEL_EPOCH) + pl.duration(days=col.str.extract(r"^(\d{5})").cast(pl.Int64, strict=False)))
    parsed = pl.coalesce(iso, dmy, serial.cast(pl.Date))
    return pl.when(parsed.is_not_null()).then(parsed.dt.strftime("%Y-%m-%d")).otherwise(col)
