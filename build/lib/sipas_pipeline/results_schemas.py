"""Pandera schemas of the compute stage's result frames, checked before they leave the stage."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

_PCT = [pa.Check.in_range(0, 100)]
_UNIT = {"unit_level": pa.Column(pl.Utf8, pa.Check.isin(["province", "region", "nation"])),
         "unit_code": pa.Column(pl.Utf8)}

INDICATORS = pa.DataFrameSchema(_UNIT | {
    "indicator_id": pa.Column(pl.Utf8),
    "value": pa.Column(pl.Float64, _PCT, nullable=True),
    "numerator": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),  # null: an incomplete province
    "denominator": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
    "n": pa.Column(pl.Int64, pa.Check.ge(0), nullable=True),
}, name="indicator_values", unique=["unit_level", "unit_code", "indicator_id"])

SIPAS = pa.DataFrameSchema(_UNIT | {
    "level": pa.Column(pl.Utf8, pa.Check.isin(["element", "part", "sipas"])),
    "node": pa.Column(pl.Utf8),
    "value": pa.Column(pl.Float64, _PCT, nullable=True),
}, name="sipas_indices", unique=["unit_level", "unit_code", "level", "node"])

PAR_POINTS = pa.DataFrameSchema({
    "province_code": pa.Column(pl.Utf8),
    "subcriterion_id": pa.Column(pl.Utf8),
    "points": pa.Column(pl.Float64, pa.Check.ge(0)),
    "max_points": pa.Column(pl.Float64, pa.Check.gt(0)),
}, name="par_points", unique=["province_code", "subcriterion_id"],
    checks=[pa.Check(lambda d: d.lazyframe.select(pl.col("points") <= pl.col("max_points") + 1e-9), name="within_max")])

PAR_TOTALS = pa.DataFrameSchema({
    "province_code": pa.Column(pl.Utf8, unique=True),
    "par_index": pa.Column(pl.Float64, pa.Check.in_range(0, 100), nullable=True),  # null: incomplete
    "group": pa.Column(pl.Utf8, nullable=True),
}, name="par_totals")

RANKS = pa.DataFrameSchema({
    "province_code": pa.Column(pl.Utf8),
    "measure": pa.Column(pl.Utf8),
    "value": pa.Column(pl.Float64, nullable=True),  # null value and ranks: an incomplete province
    "rank_national": pa.Column(pl.Int64, pa.Check.ge(1), nullable=True),
    "rank_regional": pa.Column(pl.Int64, pa.Check.ge(1), nullable=True),
}, name="ranks", unique=["province_code", "measure"])
