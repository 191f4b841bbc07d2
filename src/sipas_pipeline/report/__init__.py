"""The analyst release (issue #14): one self-contained HTML report with charts and a scorecard per province,
PNGs of the main charts for the press, an Excel workbook and CSV exports, all read from the DuckDB file
(read-only). `build` is the one entry point; `sipas report` and the flow's report stage call it."""

from sipas_pipeline.report.build import ReportFiles, build

__all__ = ["ReportFiles", "build"]
