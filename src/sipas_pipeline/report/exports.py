"""CSV exports for Excel users: UTF-8 with a byte-order mark, so Excel opens the Vietnamese names intact."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sipas_pipeline.report.data import ReportData
from sipas_pipeline.report.excel import indicators_wide, rankings


def write_csvs(data: ReportData, out_dir: Path) -> list[Path]:
    """rankings, indicators (wide by province), PAR fields and criteria, quarantine summary as UTF-8-BOM CSV."""
    frames = {"rankings": rankings(data), "indicators": indicators_wide(data)[0], "par": data["par_points"],
              "quarantine": data["quarantine"]}
    paths = []
    for name, frame in frames.items():
        path = Path(out_dir) / f"sipas_{data.year}_{name}.csv"
        frame.with_columns(pl.col(pl.List(pl.Utf8)).list.join(", ")).write_csv(path, include_bom=True)
        paths.append(path)
    return paths
