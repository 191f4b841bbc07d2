"""Pandera schemas of the compute stage's result frames, checked before they leave the stage."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

_PCT = [pa.Check.in_range(0, 100)]
# every estimate's reliability flag after the NCHS standards (reliability.py) and why
_RELIABILITY = {
    "reliability": pa.Column(pl.Utf8, pa.Check.isin(["reliable", "review", "unreliable"]), nullable=True),
    "reliability_reason": pa.Column(pl.Utf8, nullable=True),
}
# every estimate's uncertainty (variance.py): percent scale like the value; intervals inside [0, 100]
# stabilised variances beside the direct ones (stabilised.py): province rows only
_STABILISED = {
    "se_stabilised": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
    "ci_low_stabilised": pa.Column(pl.Float64, _PCT, nullable=True),
    "ci_high_stabilised": pa.Column(pl.Float64, _PCT, nullable=True),
    "df_stabilised": pa.Column(pl.Float64, pa.Check.ge(1), nullable=True),
}
_UNCERTAINTY = {
    "se": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
    "ci_low": pa.Column(pl.Float64, _PCT, nullable=True),
    "ci_high": pa.Column(pl.Float64, _PCT, nullable=True),
    "df": pa.Column(pl.Float64, pa.Check.ge(1), nullable=True),
    "deff": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
    "n_eff": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
    "small_sample": pa.Column(pl.Boolean, nullable=True),
} | _RELIABILITY | _STABILISED
_INSIDE = [pa.Check(lambda d: d.lazyframe.select(
    (pl.col("ci_low") <= pl.col("value") + 1e-9) & (pl.col("value") <= pl.col("ci_high") + 1e-9)
    | pl.col("ci_low").is_null()), name="interval_holds_value")]
_UNIT = {"unit_level": pa.Column(pl.Utf8, pa.Check.isin(["province", "region", "nation"])),
         "unit_code": pa.Column(pl.Utf8)}

INDICATORS = pa.DataFrameSchema(_UNIT | {
    "indicator_id": pa.Column(pl.Utf8),
    "value": pa.Column(pl.Float64, _PCT, nullable=True),
    "numerator": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),  # null: an incomplete province
    "denominator": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
    "n": pa.Column(pl.Int64, pa.Check.ge(0), nullable=True),
} | _UNCERTAINTY, name="indicator_values", unique=["unit_level", "unit_code", "indicator_id"], checks=_INSIDE)

SIPAS = pa.DataFrameSchema(_UNIT | {
    "level": pa.Column(pl.Utf8, pa.Check.isin(["element", "part", "sipas"])),
    "node": pa.Column(pl.Utf8),
    "value": pa.Column(pl.Float64, _PCT, nullable=True),
    "n": pa.Column(pl.Int64, pa.Check.ge(0), nullable=True),  # null: an incomplete province
} | _UNCERTAINTY, name="sipas_indices", unique=["unit_level", "unit_code", "level", "node"], checks=_INSIDE)

PAR_POINTS = pa.DataFrameSchema({
    "province_code": pa.Column(pl.Utf8),
    "subcriterion_id": pa.Column(pl.Utf8),
    "points": pa.Column(pl.Float64, pa.Check.ge(0)),
    "max_points": pa.Column(pl.Float64, pa.Check.gt(0)),
    "se": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
}, name="par_points", unique=["province_code", "subcriterion_id"],
    checks=[pa.Check(lambda d: d.lazyframe.select(pl.col("points") <= pl.col("max_points") + 1e-9), name="within_max")])

PAR_TOTALS = pa.DataFrameSchema({
    "province_code": pa.Column(pl.Utf8, unique=True),
    "par_index": pa.Column(pl.Float64, pa.Check.in_range(0, 100), nullable=True),  # null: incomplete
    "group": pa.Column(pl.Utf8, nullable=True),
    "se": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
    "ci_low": pa.Column(pl.Float64, _PCT, nullable=True),
    "ci_high": pa.Column(pl.Float64, _PCT, nullable=True),
    "df": pa.Column(pl.Float64, pa.Check.ge(1), nullable=True),
    "official_cluster": pa.Column(pl.Utf8, pa.Check.isin(["agency", "official"]), nullable=True),
} | _RELIABILITY, name="par_totals")

RANKS = pa.DataFrameSchema({
    "province_code": pa.Column(pl.Utf8),
    "measure": pa.Column(pl.Utf8),
    "value": pa.Column(pl.Float64, nullable=True),  # a province without a figure: no value, no rank (never zeros)
    "rank_national": pa.Column(pl.Int64, pa.Check.ge(1), nullable=True),
    "rank_regional": pa.Column(pl.Int64, pa.Check.ge(1), nullable=True),
    "rank_low": pa.Column(pl.Int64, pa.Check.ge(1), nullable=True),
    "rank_high": pa.Column(pl.Int64, pa.Check.ge(1), nullable=True),
    "rank_regional_low": pa.Column(pl.Int64, pa.Check.ge(1), nullable=True),
    "rank_regional_high": pa.Column(pl.Int64, pa.Check.ge(1), nullable=True),
    "rank_simul_low": pa.Column(pl.Int64, pa.Check.ge(1), nullable=True),
    "rank_simul_high": pa.Column(pl.Int64, pa.Check.ge(1), nullable=True),
    "in_top5_set": pa.Column(pl.Boolean, nullable=True),
    "in_bottom5_set": pa.Column(pl.Boolean, nullable=True),
    "p_top5": pa.Column(pl.Float64, pa.Check.in_range(0, 1), nullable=True),
    "p_bottom5": pa.Column(pl.Float64, pa.Check.in_range(0, 1), nullable=True),
    "differs_from_above": pa.Column(pl.Boolean, nullable=True),
    "change_basis": pa.Column(pl.Utf8, pa.Check.isin(["results", "published", "reestimated"]), nullable=True),
    "change_method": pa.Column(pl.Utf8, pa.Check.isin(["paired", "independent"]), nullable=True),
    "previous_se": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
    "change_significant": pa.Column(pl.Boolean, nullable=True),
    "rank_set_variance": pa.Column(pl.Utf8, pa.Check.isin(["direct", "stabilised"]), nullable=True),  # null: no sets (incomplete)
} | _RELIABILITY, name="ranks", unique=["province_code", "measure"], checks=[pa.Check(lambda d: d.lazyframe.select(
    pl.col("rank_low").is_null() | ((pl.col("rank_simul_low") <= pl.col("rank_low")) & (pl.col("rank_low") <= pl.col("rank_high"))
                                    & (pl.col("rank_high") <= pl.col("rank_simul_high")))), name="marginal_inside_simultaneous")])

CONTRASTS = pa.DataFrameSchema(_UNIT | {
    "contrast": pa.Column(pl.Utf8, pa.Check.isin(["policy_minus_service", "minus_nation"])),
    "measure": pa.Column(pl.Utf8),
    "value": pa.Column(pl.Float64, pa.Check.in_range(-100, 100), nullable=True),
    "se": pa.Column(pl.Float64, pa.Check.ge(0), nullable=True),
    "df": pa.Column(pl.Float64, pa.Check.ge(1), nullable=True),
    "ci_low": pa.Column(pl.Float64, nullable=True),
    "ci_high": pa.Column(pl.Float64, nullable=True),
    "significant": pa.Column(pl.Boolean, nullable=True),
}, name="contrasts", unique=["unit_level", "unit_code", "contrast", "measure"])
