"""Ranks (national and within region; ties share a rank: 1, 2, 2, 4) and change since last year."""

from __future__ import annotations

import polars as pl

from sipas_pipeline.methodology import Methodology


def ranks(m: Methodology, values: pl.DataFrame) -> pl.DataFrame:
    """`values` (province_code, measure, value) -> with rank_national and rank_regional, on values
    rounded to the year's published precision."""
    rounded = pl.col("value").round(m.rank_decimals)
    return (values.join(m.provinces.select("province_code", "region_code"), on="province_code")
            .with_columns(rounded.rank("min", descending=True).over("measure").cast(pl.Int64).alias("rank_national"),
                          rounded.rank("min", descending=True).over("measure", "region_code").cast(pl.Int64)
                          .alias("rank_regional"))
            .sort("measure", "rank_national", "province_code"))


def change(current: pl.DataFrame, previous: pl.DataFrame | None) -> pl.DataFrame:
    """Add change in value and in places against the previous year's (province_code, measure, value,
    rank_national); a province missing in either year gets null changes."""
    if previous is None:
        return current.with_columns(pl.lit(None, pl.Float64).alias("change_value"),
                                    pl.lit(None, pl.Int64).alias("change_places"))
    prev = previous.select("province_code", "measure", pl.col("value").alias("prev_value"),
                           pl.col("rank_national").cast(pl.Int64).alias("prev_rank"))
    return (current.join(prev, on=["province_code", "measure"], how="left")
            .with_columns((pl.col("value") - pl.col("prev_value")).alias("change_value"),
                          (pl.col("prev_rank") - pl.col("rank_national")).alias("change_places"))
            .drop("prev_value", "prev_rank"))
