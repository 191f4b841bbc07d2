"""The workbook people print (xlsxwriter): one sheet per measure (provinces by rank with n, se and intervals
beside each value, then the regions and the nation), the elements, the indicators (long: one row per unit and
indicator, with n and interval), the contrasts, PAR points, what changed, quarantine, the run and the notes.
Every sheet: bilingual header row repeated on each printed page, landscape A4 fitted to the page width,
frozen header, filter; figures with two decimals as published (the stored value unrounded, so the cell
equals the database). Every text cell is written with `write_string`, so text starting with = + - @ tab or CR
stays text (no formula injection)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import polars as pl
import xlsxwriter

from sipas_pipeline.report.changes import changes
from sipas_pipeline.report.data import ReportData
from sipas_pipeline.report.figures import Context, flagged
from sipas_pipeline.report.notes import notes

# column -> bilingual header; a column not listed keeps its name
HEADERS = {
    "measure": "Thước đo (measure)", "unit_level": "Cấp đơn vị (unit level)", "unit_code": "Mã (code)",
    "unit_name_vi": "Tên (name)", "unit_name_en": "Name (English)", "region_code": "Vùng (region)", "value": "Giá trị (value)",
    "se": "Sai số chuẩn (se)", "ci_low": "KTC 95% dưới (95% CI low)", "ci_high": "KTC 95% trên (95% CI high)",
    "n": "Số phiếu (n)", "rank_national": "Hạng (rank)", "rank_low": "Hạng, cận tốt (rank interval best)",
    "rank_high": "Hạng, cận kém (rank interval worst)", "rank_regional": "Hạng trong vùng (regional rank)",
    "minus_nation": "Chênh với toàn quốc (minus nation)", "minus_nation_se": "Sai số chênh (se of difference)",
    "minus_nation_significant": "Khác toàn quốc có ý nghĩa (differs significantly)",
    "change_value": "Thay đổi so với năm trước (change)", "change_basis": "Cơ sở so sánh (basis of change)",
    "change_method": "Cách tính sai số thay đổi (change se: paired or independent)",
    "change_significant": "Thay đổi có ý nghĩa (change significant)", "par_group": "Nhóm (group)",
    "flag": "Kém tin cậy (less reliable)", "incomplete_reason": "Thiếu dữ liệu (incomplete)", "part": "Phần (part)",
    "node": "Mã mục (element or field)", "label_vi": "Nhãn (label)", "label_en": "Label (English)",
    "indicator_id": "Mã chỉ tiêu (indicator)",
    "type": "Loại (type)", "contrast": "So sánh (contrast)", "df": "Bậc tự do (df)", "significant": "Có ý nghĩa (significant)",
    "level": "Cấp (level)", "points": "Điểm (points)", "max_points": "Tối đa (max)", "pct_of_max": "% tối đa (% of max)",
    "source": "Nguồn (source)", "forms": "Số phiếu (forms)", "reasons": "Số lý do (reasons)", "rules": "Quy tắc (rules)",
    "field": "Mục (field)", "content": "Nội dung (value)", "topic": "Chủ đề (topic)", "vi": "Tiếng Việt", "en": "English",
    "reason": "Lý do (reason)", "requested_by": "Người đề nghị (requested by)", "requested_at": "Ngày đề nghị (date)",
    "action": "Thao tác (action)", "lines": "Số dòng (lines)", "provinces": "Tỉnh (provinces)",
    "value_a": "Trước (before)", "value_b": "Sau (after)", "change": "Thay đổi (change)", "rank_a": "Hạng trước (rank before)",
    "rank_b": "Hạng sau (rank after)", "places": "Bậc (places)", "group_a": "Nhóm trước (group before)",
    "group_b": "Nhóm sau (group after)", "what": "Loại thay đổi (change kind)", "small_sample": "Mẫu nhỏ (small sample)",
    "label": "Nhãn (label, Vietnamese / English)", "kind": "Loại (kind)",
}
TWO = {"value", "se", "ci_low", "ci_high", "minus_nation", "minus_nation_se", "change_value", "points", "max_points",
       "pct_of_max", "value_a", "value_b", "change", "df"}  # shown with two decimals
MEASURE_SHEETS = {"sipas": "SIPAS", "sipas_policy": "SIPAS chính sách (policy)", "sipas_service": "SIPAS dịch vụ (service)",
                  "par": "Chỉ số CCHC (PAR INDEX)"}
MEASURE_COLUMNS = ["rank_national", "unit_code", "unit_name_vi", "unit_name_en", "region_code", "value", "se", "ci_low",
                   "ci_high", "n", "rank_low", "rank_high", "rank_regional", "minus_nation", "minus_nation_se",
                   "minus_nation_significant", "change_value", "change_basis", "change_method", "change_significant", "flag",
                   "incomplete_reason"]


class Book:
    """The workbook with its formats."""

    def __init__(self, path: Path, year: int):
        self.book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
        self.head = self.book.add_format({"bold": True, "text_wrap": True, "bg_color": "#dbe9f6", "valign": "top", "border": 1})
        self.two = self.book.add_format({"num_format": "0.00"})
        self.bold_two = self.book.add_format({"num_format": "0.00", "bold": True})
        self.bold = self.book.add_format({"bold": True})
        self.wrap = self.book.add_format({"text_wrap": True, "valign": "top"})
        self.year = year

    def sheet(self, name: str, frame: pl.DataFrame, title_rows: int = 0, bold_from: int | None = None,
              widths: dict[str, float] | None = None) -> xlsxwriter.worksheet.Worksheet:
        """A frame as a printable sheet: bilingual header (row 0, repeated on every printed page, frozen, filter),
        numbers as numbers (two decimals where TWO), text as text; rows from `bold_from` (region and nation) bold."""
        ws = self.book.add_worksheet(name)
        for j, col in enumerate(frame.columns):
            ws.write_string(0, j, HEADERS.get(col, col), self.head)
            dtype = frame[col].dtype
            width = (widths or {}).get(col) or (11 if dtype.is_numeric() or dtype == pl.Boolean else 24)
            ws.set_column(j, j, width, self.wrap if width > 30 else None)
        two = [col in TWO for col in frame.columns]
        for i, row in enumerate(frame.iter_rows(), start=1):
            strong = bold_from is not None and i > bold_from
            for j, v in enumerate(row):
                if v is None:
                    continue
                if isinstance(v, bool):
                    ws.write_boolean(i, j, v)
                elif isinstance(v, int | float):
                    fmt = (self.bold_two if strong else self.two) if two[j] else (self.bold if strong else None)
                    ws.write_number(i, j, v, fmt)
                elif isinstance(v, datetime | date):
                    ws.write_string(i, j, v.isoformat())
                else:
                    ws.write_string(i, j, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str),
                                    self.bold if strong else None)
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(frame.height, 1), max(len(frame.columns) - 1, 0))
        self.print_setup(ws, name)
        return ws

    def print_setup(self, ws: xlsxwriter.worksheet.Worksheet, name: str) -> None:
        ws.set_landscape()
        ws.set_paper(9)  # A4
        ws.fit_to_pages(1, 0)  # one page wide, as many tall as needed
        ws.repeat_rows(0)
        ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
        ws.set_header(f"&L{name.replace('&', '&&')}&RSIPAS && PAR INDEX {self.year}")  # && is one & in Excel's codes
        ws.set_footer("&LNguồn / Source: sipas-pipeline&RTrang / page &P / &N")


def measure_table(data: ReportData, measure: str, ctx: Context) -> tuple[pl.DataFrame, int]:
    """One measure's sheet: provinces by rank (then those without a figure), then regions and the nation; and the
    number of province rows (the rows after them are printed bold)."""
    r = data["ranks"].filter(pl.col("measure") == measure)
    c = data["contrasts"].filter((pl.col("contrast") == "minus_nation") & (pl.col("measure") == measure)).select(
        "unit_code", pl.col("value").alias("minus_nation"), pl.col("se").alias("minus_nation_se"),
        pl.col("significant").alias("minus_nation_significant"))
    if measure == "par":
        p = data["par"]
        detail = p.select("unit_level", "unit_code", "unit_name_vi", "unit_name_en", "region_code",
                          pl.col("par_index").alias("value"),
                          "se", "ci_low", "ci_high", "par_group", pl.lit(None, pl.Int64).alias("n"), pl.lit(None, pl.Boolean)
                          .alias("small_sample"))
    else:
        level, node = ("sipas", "SIPAS") if measure == "sipas" else ("part", measure.removeprefix("sipas_"))
        detail = data["sipas"].filter((pl.col("level") == level) & (pl.col("node") == node)).select(
            "unit_level", "unit_code", "unit_name_vi", "unit_name_en", "region_code", "value", "se", "ci_low", "ci_high", "n",
            "small_sample")
    prov = (detail.filter(pl.col("unit_level") == "province")
            .join(r.select("unit_code", "rank_national", "rank_low", "rank_high", "rank_regional", "change_value",
                           "change_basis", "change_method", "change_significant", "incomplete_reason"),
                  on="unit_code", how="left")
            .join(c, on="unit_code", how="left")
            .with_columns(((pl.col("reliability") == "unreliable") if "reliability" in detail.columns else
                           pl.struct("ci_low", "ci_high", "small_sample").map_elements(flagged, return_dtype=pl.Boolean))
                          .alias("flag"))
            .sort("rank_national", "unit_code", nulls_last=True))
    areas = detail.filter(pl.col("unit_level") != "province").sort(pl.col("unit_level") == "nation", "value",
                                                                  descending=[False, True])
    columns = [*MEASURE_COLUMNS[:5], *(["par_group"] if measure == "par" else []), *MEASURE_COLUMNS[5:]]
    if measure == "par":
        columns.remove("n")
    frame = pl.concat([prov, areas], how="diagonal_relaxed").select(columns)
    return frame, prov.height


def _level_order() -> pl.Expr:
    return pl.col("unit_level").replace_strict({"province": 0, "region": 1, "nation": 2}, default=3)


def elements(data: ReportData, tree: list[dict]) -> pl.DataFrame:
    """Every unit's SIPAS elements in tree order with their 95% intervals: provinces, then regions, then the nation."""
    order = {t["node"]: i for i, t in enumerate(tree)}
    el = data["sipas"].filter(pl.col("level") == "element")
    return (el.with_columns(pl.col("node").replace_strict(order, default=len(order)).alias("_o"), _level_order().alias("_l"),
                            (pl.col("label_vi") + " / " + pl.col("label_en")).alias("label"))
            .sort("_l", "unit_sort_key", "unit_code", "_o")
            .select("unit_code", "unit_name_vi", "node", "label", "value", "ci_low", "ci_high"))


def indicators(data: ReportData) -> pl.DataFrame:
    """Every indicator for every unit with its 95% interval and respondents (the CSV export)."""
    return (data["indicators"].with_columns(_level_order().alias("_l"))
            .sort("indicator_id", "_l", "unit_sort_key", "unit_code")
            .select("indicator_id", "type", "label_vi", "label_en", "unit_level", "unit_code", "unit_name_vi", "value", "ci_low",
                    "ci_high", "se", "n", "small_sample"))


def indicators_sheet(data: ReportData) -> pl.DataFrame:
    """The indicators of the nation and the regions (the provinces' are in sipas_<year>_indicators.csv: 7,000
    rows are not a sheet people print)."""
    return (data["indicators"].filter(pl.col("unit_level") != "province")
            .with_columns(_level_order().alias("_l"), (pl.col("label_vi") + " / " + pl.col("label_en")).alias("label"))
            .sort("indicator_id", "_l", "unit_code")
            .select("indicator_id", "label", "unit_code", "unit_name_vi", "value", "ci_low", "ci_high", "n"))


def par_fields(data: ReportData) -> pl.DataFrame:
    """The PAR INDEX fields of every unit: points, maximum, per cent of maximum (criteria: the CSV export)."""
    return (data["par_points"].filter(pl.col("level") == "field").with_columns(
        _level_order().alias("_l"), (pl.col("label_vi") + " / " + pl.col("label_en")).alias("label"))
        .sort("_l", "unit_code", "node").select("unit_code", "unit_name_vi", "node", "label", "points", "max_points",
                                               "pct_of_max"))


def changes_frame(data: ReportData) -> pl.DataFrame:
    c = changes(data)
    rows = [{"what": "đính chính / correction", **{k: r[k] for k in ("reason", "requested_by", "action", "source", "provinces")},
             "requested_at": r["requested_at"], "lines": r["lines"]} for r in c.corrections.iter_rows(named=True)]
    rows += [{"what": "nhóm / group", "unit_code": r["unit_code"], "unit_name_vi": r["unit_name_vi"], "group_a": r["group_a"],
              "group_b": r["group_b"], "value_a": r["value_a"], "value_b": r["value_b"]} for r in c.groups.iter_rows(named=True)]
    rows += [{"what": "giá trị, hạng / value, rank", **r} for r in c.moved.iter_rows(named=True)]
    cols = ["what", "unit_code", "unit_name_vi", "measure", "value_a", "value_b", "change", "rank_a", "rank_b", "places",
            "group_a", "group_b", "reason", "requested_by", "requested_at", "action", "source", "lines", "provinces"]
    if not rows:
        return pl.DataFrame({"what": ["lần phát hành đầu tiên của năm, không có đính chính / first release of the year, "
                                      "no corrections"]})
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.select([x for x in cols if x in frame.columns])


def run_record(data: ReportData) -> pl.DataFrame:
    """The run record as field / value rows, then each input file with its hash and accounting."""
    run = data["run"].row(0, named=True)
    rows = [(k, "" if v is None else str(v)) for k, v in run.items()]
    rows += [(f"input {i['source']}: {i['file']}", f"sha256 {i['sha256']}; read {i['read']}, valid {i['valid']}, "
              f"quarantined {i['quarantined']}") for i in data["inputs"].iter_rows(named=True)]
    rows += [(f"accounting {a['source']}", f"read {a['read']} = valid {a['valid']} + quarantined {a['quarantined']}")
             for a in data["accounting"].iter_rows(named=True)]
    return pl.DataFrame(rows, schema=["field", "content"], orient="row")


def write_workbook(data: ReportData, path: Path, ctx: Context, tree: list[dict]) -> Path:
    """Write the release workbook to `path` (overwritten: it is the report's own file)."""
    b = Book(path, data.year)
    for measure, name in MEASURE_SHEETS.items():
        frame, provinces = measure_table(data, measure, ctx)
        ws = b.sheet(name, frame, bold_from=provinces, widths={"unit_name_vi": 22, "unit_name_en": 20, "incomplete_reason": 30})
        if measure == "sipas" and provinces:
            chart = b.book.add_chart({"type": "bar"})
            sheet = f"'{name}'"
            chart.add_series({"name": "SIPAS", "categories": f"={sheet}!$C$2:$C${provinces + 1}",
                              "values": f"={sheet}!$F$2:$F${provinces + 1}", "fill": {"color": "#0072B2"}})
            chart.set_title({"name": f"SIPAS {data.year} theo tỉnh (by province)"})
            chart.set_x_axis({"min": 0, "max": 100})  # bars from zero
            chart.set_y_axis({"reverse": True, "num_font": {"size": 7}})
            chart.set_legend({"none": True})
            chart.set_size({"width": 640, "height": 16 * provinces + 80})
            ws.insert_chart("W2", chart)
    b.sheet("Yếu tố (Elements)", elements(data, tree), widths={"label": 60})
    b.sheet("Chỉ tiêu (Indicators)", indicators_sheet(data), widths={"label": 70})
    b.sheet("Chênh lệch (Contrasts)", data["contrasts"].select(
        "contrast", "measure", "unit_code", "unit_name_vi", "value", "se", "ci_low", "ci_high", "significant"))
    b.sheet("CCHC (PAR)", par_fields(data), widths={"label": 70})
    b.sheet("Thay đổi (Changes)", changes_frame(data), widths={"reason": 30, "provinces": 30})
    b.sheet("Cách ly (Quarantine)", data["quarantine"], widths={"rules": 40})
    b.sheet("Lần chạy (Run)", run_record(data), widths={"field": 40, "content": 90})
    b.sheet("Ghi chú (Notes)", pl.DataFrame(notes(ctx), schema=["topic", "vi", "en"], orient="row"),
            widths={"vi": 80, "en": 80})
    b.book.close()
    return path
