"""Skip logic (`ask_if`) of a form: `q == 1`, `q != 2`, joined by `and`, as Polars expressions."""

from __future__ import annotations

import re

import polars as pl

_TERM = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(==|!=)\s*(-?\d+)\s*$")


def parse_condition(text: str) -> list[tuple[str, str, int]]:
    """Split `a == 1 and b != 2` into terms; raise ValueError on anything else."""
    terms = []
    for part in re.split(r"\band\b", text):
        m = _TERM.match(part)
        if not m:
            raise ValueError(f"cannot read condition {part.strip()!r} (expected `field == code`)")
        terms.append((m.group(1), m.group(2), int(m.group(3))))
    return terms


def condition_expr(text: str) -> pl.Expr:
    """The condition as a boolean expression over typed or raw-text answers; a term on a blank
    (or non-numeric) answer is false."""
    expr = pl.lit(True)
    for field, op, code in parse_condition(text):
        col = pl.col(field).cast(pl.Int64, strict=False)
        term = (col == code) if op == "==" else (col != code)
        expr = expr & term.fill_null(False)
    return expr
