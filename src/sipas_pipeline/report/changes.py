"""What a re-run's release changed against the previous release of its year: the corrections applied (with
their reasons, who asked, the provinces), and the provinces whose value, rank or PAR INDEX group moved
(from `current_changes`, the run_diff of the two runs)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import polars as pl

from sipas_pipeline.report.data import ReportData
from sipas_pipeline.report.markup import bi, num, table

MEASURES = {"sipas": "SIPAS", "sipas_policy": "SIPAS chính sách / policy", "sipas_service": "SIPAS dịch vụ / service",
            "par": "Chỉ số CCHC / PAR INDEX"}


@dataclass(frozen=True)
class Changes:
    """The frames of the section and of the workbook's sheet."""

    previous_run: str | None
    corrections: pl.DataFrame  # reason, requested_by, requested_at, action, source, lines, provinces
    moved: pl.DataFrame  # unit_code, unit_name_vi, measure, value_a, value_b, change, rank_a, rank_b, places
    groups: pl.DataFrame  # unit_code, unit_name_vi, group_a, group_b, value_a, value_b
    reruns: int  # published runs of the year before the current one

    @property
    def any(self) -> bool:
        return self.reruns > 0 or self.corrections.height > 0


def changes(data: ReportData) -> Changes:
    runs = data["published_runs"]
    ch = data["changes"]
    previous = ch["previous_run_id"][0] if ch.height else (runs["run_id"][-2] if runs.height > 1 else None)
    cor = data["corrections"]
    if cor.height:
        summary = (cor.group_by("reason", "requested_by", "requested_at", "action", "source")
                   .agg(pl.len().alias("lines"),
                        pl.col("unit_name_vi").drop_nulls().unique().sort().str.join(", ").alias("provinces"))
                   .sort("lines", "reason", descending=[True, False]))
    else:
        summary = pl.DataFrame(schema={"reason": pl.Utf8, "requested_by": pl.Utf8, "requested_at": pl.Date, "action": pl.Utf8,
                                       "source": pl.Utf8, "lines": pl.UInt32, "provinces": pl.Utf8})
    if ch.height:
        ranks = ch.filter(pl.col("kind") == "rank").select(
            "unit_code", "unit_name_vi", pl.col("item").alias("measure"), "value_a", "value_b", "change", "rank_a", "rank_b",
            "places").sort(pl.col("places").abs(), pl.col("change").abs(), descending=True, nulls_last=True)
        groups = ch.filter(pl.col("kind") == "group").with_columns(
            pl.col("item").str.extract(r"^par:(.+)->", 1).alias("group_a"),
            pl.col("item").str.extract(r"->(.+)$", 1).alias("group_b")).select(
            "unit_code", "unit_name_vi", "group_a", "group_b", "value_a", "value_b").sort("unit_code")
    else:
        ranks = pl.DataFrame(schema={"unit_code": pl.Utf8, "unit_name_vi": pl.Utf8, "measure": pl.Utf8, "value_a": pl.Float64,
                                     "value_b": pl.Float64, "change": pl.Float64, "rank_a": pl.Int64, "rank_b": pl.Int64,
                                     "places": pl.Int64})
        groups = pl.DataFrame(schema={"unit_code": pl.Utf8, "unit_name_vi": pl.Utf8, "group_a": pl.Utf8, "group_b": pl.Utf8,
                                      "value_a": pl.Float64, "value_b": pl.Float64})
    return Changes(previous, summary, ranks, groups, max(runs.height - 1, 0))


def summary_sentence(c: Changes) -> tuple[str, str]:
    lines = int(c.corrections["lines"].sum()) if c.corrections.height else 0
    provinces = c.moved["unit_code"].n_unique() if c.moved.height else 0
    groups = "; ".join(f"{r['unit_name_vi']} {r['group_a']} → {r['group_b']}" for r in c.groups.iter_rows(named=True))
    vi = (f"Bản phát hành này thay thế bản của lần chạy {c.previous_run or '–'}: {lines} đính chính được áp dụng; "
          f"{provinces} tỉnh thay đổi giá trị hoặc thứ hạng"
          + (f"; thay đổi nhóm Chỉ số CCHC: {groups}" if groups else "; không tỉnh nào đổi nhóm") + ".")
    en = (f"This release replaces that of run {c.previous_run or '–'}: {lines} corrections applied; {provinces} provinces "
          f"changed value or rank" + (f"; PAR INDEX group changes: {groups}" if groups else "; no province changed group") + ".")
    return vi, en


def section(c: Changes) -> str:
    """The section opening a re-run's release (empty for the first release of a year)."""
    if not c.any:
        return ""
    vi, en = summary_sentence(c)
    out = (f"<section id='changes' class='changes'><h2>{bi('Những gì đã thay đổi', 'What changed')}</h2>"
           f"<p class='lead'>{escape(vi)}<br><span class='en'>{escape(en)}</span></p>")
    if c.corrections.height:
        rows = [[escape(r["reason"] or ""), escape(r["requested_by"] or ""), escape(str(r["requested_at"] or "")),
                 escape(f"{r['action']} ({r['source']})"), str(r["lines"]), escape(r["provinces"] or "–")]
                for r in c.corrections.iter_rows(named=True)]
        out += (f"<h3>{bi('Đính chính đã áp dụng', 'Corrections applied')}</h3>"
                + table([bi("Lý do", "Reason"), bi("Người đề nghị", "Requested by"), bi("Ngày", "Date"),
                         bi("Thao tác", "Action"), bi("Số dòng", "Lines"), bi("Tỉnh", "Provinces")], rows))
    if c.groups.height:
        rows = [[escape(r["unit_name_vi"] or r["unit_code"]), escape(f"{r['group_a']} → {r['group_b']}"),
                 f"{num(r['value_a'])} → {num(r['value_b'])}"] for r in c.groups.iter_rows(named=True)]
        out += (f"<h3>{bi('Thay đổi nhóm Chỉ số CCHC', 'PAR INDEX group changes')}</h3>"
                + table([bi("Tỉnh", "Province"), bi("Nhóm", "Group"), bi("Chỉ số CCHC", "PAR INDEX")], rows, "groups"))
    if c.moved.height:
        rows = [[escape(r["unit_name_vi"] or r["unit_code"]), escape(MEASURES.get(r["measure"], r["measure"])),
                 f"{num(r['value_a'])} → {num(r['value_b'])}", f"{r['change']:+.2f}" if r["change"] is not None else "–",
                 f"{r['rank_a'] or '–'} → {r['rank_b'] or '–'}", f"{r['places']:+d}" if r["places"] else "0"]
                for r in c.moved.head(40).iter_rows(named=True)]
        more = c.moved.height - min(c.moved.height, 40)
        out += (f"<h3>{bi('Tỉnh thay đổi giá trị hoặc thứ hạng', 'Provinces whose value or rank changed')}</h3>"
                + table([bi("Tỉnh", "Province"), bi("Thước đo", "Measure"), bi("Giá trị", "Value"), bi("Thay đổi", "Change"),
                         bi("Hạng", "Rank"), bi("Bậc", "Places")], rows, "moved")
                + (f"<p>{bi(f'và {more} dòng khác trong bảng tính', f'and {more} more rows in the workbook')}</p>"
                   if more else ""))
    return out + "</section>"
