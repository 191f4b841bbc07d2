"""The Excel workbook for directors (xlsxwriter): rankings (rounded as published, unrounded beside), indicators
wide by province, PAR fields and criteria, quarantine summary, the run record. Vietnamese headers with English,
frozen header rows, filters, a native bar chart of the provinces. Every text cell is written with
`write_string`, so text starting with = + - @ tab or CR stays text (no formula injection)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import polars as pl
import xlsxwriter

from sipas_pipeline.report.data import ReportData

# column -> bilingual header; a column not listed keeps its name
HEADERS = {
    "measure": "Thước đo (measure)", "unit_code": "Mã (code)", "unit_name_vi": "Tên (name)", "unit_name_en": "Name (English)",
    "region_code": "Vùng (region)", "value_published": "Giá trị công bố (value, rounded)", "value": "Giá trị (value, unrounded)",
    "se": "Sai số chuẩn (se)", "rank_national": "Hạng (rank)", "rank_low": "Hạng tốt nhất 90% (rank low)",
    "rank_high": "Hạng kém nhất 90% (rank high)", "rank_regional": "Hạng trong vùng (regional rank)",
    "change_value": "Thay đổi (change)", "change_significant": "Có ý nghĩa (significant)",
    "incomplete_reason": "Thiếu dữ liệu (incomplete)", "level": "Cấp (level)", "node": "Mục (node)",
    "label_vi": "Nhãn (label)", "label_en": "Label (English)", "points": "Điểm (points)", "max_points": "Tối đa (max)",
    "pct_of_max": "% tối đa (% of max)", "source": "Nguồn (source)", "forms": "Số phiếu (forms)",
    "reasons": "Số lý do (reasons)", "rules": "Quy tắc (rules)", "field": "Mục (field)", "content": "Nội dung (value)",
    "kind": "Loại (kind)",
}
RANK_COLUMNS = ["measure", "unit_code", "unit_name_vi", "unit_name_en", "region_code", "value_published", "value", "se",
                "rank_national", "rank_low", "rank_high", "rank_regional", "change_value", "change_significant",
                "incomplete_reason"]


def write_sheet(book: xlsxwriter.Workbook, name: str, frame: pl.DataFrame, head: xlsxwriter.format.Format,
                wide: dict[str, str] | None = None) -> xlsxwriter.worksheet.Worksheet:
    """A frame as a sheet: a bilingual header row (frozen, with a filter), text as text, numbers as numbers."""
    ws = book.add_worksheet(name)
    labels = wide or {}
    for j, col in enumerate(frame.columns):
        ws.write_string(0, j, labels.get(col, HEADERS.get(col, col)), head)
        ws.set_column(j, j, 12 if frame[col].dtype.is_numeric() else 22)
    for i, row in enumerate(frame.iter_rows(), start=1):
        for j, v in enumerate(row):
            if v is None:
                continue
            if isinstance(v, bool):
                ws.write_boolean(i, j, v)
            elif isinstance(v, int | float):
                ws.write_number(i, j, v)
            elif isinstance(v, datetime | date):
                ws.write_string(i, j, v.isoformat())
            else:
                ws.write_string(i, j, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(frame.height, 1), max(len(frame.columns) - 1, 0))
    return ws


def rankings(data: ReportData) -> pl.DataFrame:
    """Ranks of every measure, the value rounded as published (2 decimals) and unrounded beside."""
    return (data["ranks"].with_columns(value_published=pl.col("value").round(2))
            .sort("measure", "rank_national", "unit_sort_key", nulls_last=True).select(RANK_COLUMNS))


def indicators_wide(data: ReportData) -> tuple[pl.DataFrame, dict[str, str]]:
    """Indicators wide by province: one row per province, one column per indicator (header: id and label)."""
    ind = data["indicators"]
    wide = (ind.pivot(on="indicator_id", index=["unit_code", "unit_name_vi", "unit_sort_key"], values="value")
            .sort("unit_sort_key").drop("unit_sort_key"))
    labels = dict(zip(ind["indicator_id"], ind["label_vi"], strict=False))
    return wide, {c: f"{c} — {labels[c]}" for c in wide.columns if c in labels}


def run_record(data: ReportData) -> pl.DataFrame:
    """The run record as field / value rows, then each input file with its hash and accounting."""
    run = data["run"].row(0, named=True)
    rows = [(k, "" if v is None else str(v)) for k, v in run.items()]
    rows += [(f"input {i['source']}: {i['file']}", f"sha256 {i['sha256']}; read {i['read']}, valid {i['valid']}, "
              f"quarantined {i['quarantined']}") for i in data["inputs"].iter_rows(named=True)]
    rows += [(f"accounting {a['source']}", f"read {a['read']} = valid {a['valid']} + quarantined {a['quarantined']}")
             for a in data["accounting"].iter_rows(named=True)]
    return pl.DataFrame(rows, schema=["field", "content"], orient="row")


def write_workbook(data: ReportData, path: Path) -> Path:
    """Write the release workbook to `path` (overwritten: it is the report's own file)."""
    book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    head = book.add_format({"bold": True, "text_wrap": True, "bg_color": "#dbe9f6", "valign": "top"})
    ranks = rankings(data)
    ws = write_sheet(book, "Xếp hạng (Rankings)", ranks, head)
    sipas = ranks.with_row_index("row", offset=1).filter((pl.col("measure") == "sipas") & pl.col("value").is_not_null())
    if sipas.height:
        first, last = int(sipas["row"].min()), int(sipas["row"].max())
        chart = book.add_chart({"type": "bar"})
        sheet = "'Xếp hạng (Rankings)'"
        chart.add_series({"name": "SIPAS", "categories": f"={sheet}!$C${first + 1}:$C${last + 1}",
                          "values": f"={sheet}!$F${first + 1}:$F${last + 1}", "fill": {"color": "#2c7fb8"}})
        chart.set_title({"name": f"SIPAS {data.year} theo tỉnh (by province)"})
        chart.set_y_axis({"reverse": True, "num_font": {"size": 7}})
        chart.set_legend({"none": True})
        chart.set_size({"width": 640, "height": 16 * sipas.height + 80})
        ws.insert_chart("Q2", chart)
    wide, labels = indicators_wide(data)
    write_sheet(book, "Chỉ tiêu (Indicators)", wide, head, labels)
    write_sheet(book, "CCHC (PAR)", data["par_points"].select(
        "unit_level", "unit_code", "unit_name_vi", "level", "node", "label_vi", "label_en", "points", "max_points",
        "pct_of_max"), head)
    write_sheet(book, "Cách ly (Quarantine)", data["quarantine"], head)
    write_sheet(book, "Lần chạy (Run)", run_record(data), head)
    book.close()
    return path
