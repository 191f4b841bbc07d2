"""CSV exports for Excel users: UTF-8 with a byte-order mark, so Excel opens the Vietnamese names intact."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sipas_pipeline.report.data import ReportData
from sipas_pipeline.report.excel import indicators


def rankings(data: ReportData) -> pl.DataFrame:
    """Ranks of every measure with the value, se and rank interval."""
    return data["ranks"].sort("measure", "rank_national", "unit_sort_key", nulls_last=True).select(
        "measure", "unit_code", "unit_name_vi", "unit_name_en", "region_code", "value", "se", "rank_national", "rank_low",
        "rank_high", "rank_regional", "change_value", "change_basis", "change_method", "change_significant", "incomplete_reason")


def write_csvs(data: ReportData, out_dir: Path) -> list[Path]:
    """rankings, indicators (long: unit, indicator, value, interval, n), contrasts, PAR fields and criteria and the
    quarantine summary as UTF-8-BOM CSV."""
    frames = {"rankings": rankings(data), "indicators": indicators(data), "contrasts": data["contrasts"],
              "par": data["par_points"], "quarantine": data["quarantine"]}
    paths = []
    for name, frame in frames.items():
        path = Path(out_dir) / f"sipas_{data.year}_{name}.csv"
        frame.with_columns(pl.col(pl.List(pl.Utf8)).list.join(", ")).write_csv(path, include_bom=True)
        paths.append(path)
    return paths
