"""The personal-data screen for values that leave the pipeline by mistake: a quarantined value keyed in the wrong
column (an address in the province column, a phone in the PSU column) is published only when it looks like none of
a phone number, an ID number, an e-mail address, a street address, a person's name or long free text; otherwise as
`[redacted: N characters] (why)`."""

from __future__ import annotations

import re

import polars as pl

LONG_TEXT = 40  # characters: a value longer than this is free text (the longest unit name is 21)
# common family names (not those that begin place names too: Hà, Cao, Lâm, Hồ, ...)
SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Ngô",
            "Dương", "Lý", "Đinh", "Đào", "Trương", "Lương", "Tạ", "Trịnh", "Đoàn")
PATTERNS = (  # (why, pattern), first match wins; patterns are searched in the NFC text
    ("an e-mail address", r"[\w.+-]+@[\w-]+\.[\w.-]+"),
    ("a phone number", r"(?:\+?84|\b0)[\s.-]?[1-9](?:[\s.-]?\d){7,9}\b"),
    ("an ID number", r"\b\d{9}\b|\b\d{12}\b"),
    ("an address", r"\b(?:số|ngõ|ngách|hẻm|kiệt|đường|phố|phường|quận|tổ|xóm|ấp|khu|kp)\.?\s*\d|"
                   r"\b(?:ngõ|ngách|hẻm|đường|phường|quận|street|road|ward)\b"),
    ("a person's name", rf"^(?:{'|'.join(SURNAMES)})(?:\s+\w+){{1,3}}$"),
)
_COMPILED = [(why, re.compile(p, re.IGNORECASE if why == "an address" else 0)) for why, p in PATTERNS]


def why_personal(value: str) -> str | None:
    """Why `value` may be personal data (the first pattern it matches, or its length), else None."""
    if len(value) > LONG_TEXT:
        return "long free text"
    return next((why for why, rx in _COMPILED if rx.search(value)), None)


def screened(value: str | None) -> str | None:
    """`value` as it may be published: itself, or `[redacted: N characters] (why)`."""
    if value is None:
        return None
    why = why_personal(value)
    return value if why is None else f"[redacted: {len(value)} characters] ({why})"


def screen_columns(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """`frame` with the text `columns` passed through the screen (each distinct value of them all screened once)."""
    schema = frame.schema
    text = [c for c in columns if schema.get(c) == pl.Utf8]
    if not text or frame.height == 0:
        return frame
    values = pl.concat([frame.get_column(c) for c in text]).drop_nulls().unique()
    mapping = {v: s for v in values.to_list() if (s := screened(v)) != v}
    return frame.with_columns(pl.col(text).replace(mapping)) if mapping else frame
