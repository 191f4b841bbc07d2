"""The release's national charts from its frames: which rows each chart shows, in which order, with which
bounds, legend and flags (`charts` draws them). Also the reliability rule and the names of the rank
intervals, shared with the scorecards and the workbook."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from sipas_pipeline.report import charts
from sipas_pipeline.report.data import ReportData
from sipas_pipeline.report.drawing import Canvas

WIDE = 20.0  # points: a 95% interval wider than this is flagged (besides a small sample)


@dataclass(frozen=True)
class Context:
    """What every part of the release needs beside the frames: year, group bounds, tile places, published
    figures, the source line, and what the rank intervals are."""

    data: ReportData
    bounds: list[tuple[str, float]]
    tiles: pl.DataFrame | None
    published: pl.DataFrame | None
    source: str
    interval: tuple[str, str]  # (vi, en) name of the rank intervals in the file


def rank_interval_name(ranks: pl.DataFrame) -> tuple[str, str]:
    """The rank intervals named for what they are: confidence sets (when the file has them) or the percentiles
    of simulated ranks around the estimates."""
    if "rank_simul_low" in ranks.columns:
        return "tập tin cậy 90% của thứ hạng", "90% confidence set for the rank"
    return "khoảng xếp hạng 90% mô phỏng", "90% simulated rank interval"


def flagged(row: dict) -> bool:
    """Reliability flag: the file's own (`reliability` = unreliable, NCHS standards: reliability.py) when it has
    one, else (a file from before the flags) a small sample or a 95% interval wider than WIDE points."""
    if "reliability" in row:
        return row["reliability"] == "unreliable"
    low, high = row.get("ci_low"), row.get("ci_high")
    return bool(row.get("small_sample")) or (low is not None and high is not None and high - low > WIDE)


FLAG_NOTE = ("không đáng tin cậy theo chuẩn NCHS (mẫu nhỏ hoặc khoảng tin cậy quá rộng) / "
             "unreliable by the NCHS standards (small sample or too wide an interval)")


def provinces(data: ReportData, level: str = "sipas") -> pl.DataFrame:
    s = data["sipas"]
    return s.filter((pl.col("unit_level") == "province") & (pl.col("level") == level))


def group_of(bounds: list[tuple[str, float]], value: float) -> str:
    return next((g for g, b in bounds if value >= b), bounds[-1][0])


def sipas_ranking(ctx: Context) -> Canvas:
    d = provinces(ctx.data).filter(pl.col("value").is_not_null()).sort("value", descending=True)
    nat = ctx.data["sipas"].filter((pl.col("unit_level") == "nation") & (pl.col("level") == "sipas"))["value"][0]
    rows = [{"label": r["unit_name_vi"], "value": r["value"], "low": r["ci_low"], "high": r["ci_high"], "flag": flagged(r),
             "tip": f"{r['unit_name_vi']}: {r['value']:.2f} ({r['ci_low']:.2f}–{r['ci_high']:.2f})"
                    + (f"; {r['reliability_reason']}" if r.get("reliability_reason") else "")} for r in d.iter_rows(named=True)]
    year = ctx.data.year
    return charts.dot_plot(
        rows, f"SIPAS {year} theo tỉnh / by province",
        "Giá trị và khoảng tin cậy 95%, xếp từ cao xuống thấp / value and 95% confidence interval, highest first",
        "SIPAS (%)", ctx.source, references=[(nat, f"Toàn quốc / Nation {nat:.2f}")],
        flag_note=FLAG_NOTE if any(r["flag"] for r in rows) else "", label=f"SIPAS {year}")


def par_chart(ctx: Context) -> Canvas:
    par = ctx.data["par"]
    d = par.filter((pl.col("unit_level") == "province") & pl.col("par_index").is_not_null()).sort("par_index", descending=True)
    nat = par.filter(pl.col("unit_level") == "nation")["par_index"][0]
    rows = [{"label": r["unit_name_vi"], "value": r["par_index"], "low": r["ci_low"], "high": r["ci_high"],
             "colour": charts.GROUP_COLOURS.get(r["par_group"], charts.GREY), "group": r["par_group"], "flag": flagged(r),
             "tip": f"{r['unit_name_vi']}: {r['par_index']:.2f}, nhóm / group {r['par_group']}"} for r in d.iter_rows(named=True)]
    present = sorted({r["group"] for r in rows if r["group"]})
    lo, hi = float(d["ci_low"].fill_null(d["par_index"]).min()), float(d["ci_high"].fill_null(d["par_index"]).max())
    bounds = [(b, f"{g} ≥ {b:g}") for g, b in ctx.bounds if lo - 2 <= b <= hi + 2 and b > 0]
    text = dict(ctx.bounds)
    legend = [(charts.GROUP_COLOURS.get(g, charts.GREY), f"Nhóm / Group {g} (≥ {text[g]:g})" if text.get(g) else
               f"Nhóm / Group {g}", g) for g in present]
    year = ctx.data.year
    return charts.dot_plot(
        rows, f"Chỉ số CCHC {year} / PAR INDEX {year}",
        "Giá trị, khoảng tin cậy 95% (phần điều tra) và ngưỡng nhóm / value, 95% interval (survey part) and group bounds",
        "PAR INDEX (%)", ctx.source, references=[(nat, f"Toàn quốc / Nation {nat:.2f}")], bounds=bounds, legend=legend,
        label=f"PAR INDEX {year}")


def regions(ctx: Context) -> tuple[Canvas, Canvas]:
    """Regions ranked by SIPAS and by the PAR INDEX, each with its 95% interval (SIPAS from the file; the PAR
    INDEX of a region is the mean of its provinces: se = sqrt(sum se^2) / k, normal interval)."""
    s = ctx.data["sipas"].filter((pl.col("unit_level") == "region") & (pl.col("level") == "sipas")).sort("value", descending=True)
    rows = [{"label": r["unit_name_vi"], "value": r["value"], "low": r["ci_low"], "high": r["ci_high"]}
            for r in s.iter_rows(named=True)]
    first = charts.dot_plot(rows, "SIPAS theo vùng / by region", "Xếp hạng, khoảng tin cậy 95% / ranked, 95% interval",
                            "SIPAS (%)", label="SIPAS by region")
    par = ctx.data["par"]
    prov = par.filter((pl.col("unit_level") == "province") & pl.col("par_index").is_not_null())
    se = prov.group_by("region_code").agg((pl.col("se").pow(2).sum().sqrt() / pl.len()).alias("rse"))
    reg = (par.filter(pl.col("unit_level") == "region").join(se, left_on="unit_code", right_on="region_code", how="left")
           .sort("par_index", descending=True))
    rows = [{"label": r["unit_name_vi"], "value": r["par_index"],
             "low": None if r["rse"] is None else r["par_index"] - 1.96 * r["rse"],
             "high": None if r["rse"] is None else r["par_index"] + 1.96 * r["rse"]} for r in reg.iter_rows(named=True)]
    second = charts.dot_plot(rows, "Chỉ số CCHC theo vùng / PAR INDEX by region",
                             "Trung bình các tỉnh, xếp hạng, khoảng tin cậy 95% / mean of the provinces, ranked, 95% interval",
                             "PAR INDEX (%)", label="PAR INDEX by region")
    return first, second


def tiles(ctx: Context, measure: str) -> Canvas | None:
    """The tile map of `measure`: SIPAS coloured by quartile of the provinces, the PAR INDEX by group."""
    if ctx.tiles is None:
        units = provinces(ctx.data).sort("unit_code")  # a year without a tile file: units in code order, 8 a row
        places = units.with_row_index("i").select(pl.col("unit_code").alias("province_code"), (pl.col("i") // 8).alias("row"),
                                                  (pl.col("i") % 8).alias("col"),
                                                  pl.col("unit_name_vi").str.slice(0, 8).alias("short"))
    else:
        places = ctx.tiles
    names = dict(provinces(ctx.data).select("unit_code", "unit_name_vi").iter_rows())
    if measure == "sipas":
        d = provinces(ctx.data).select("unit_code", "value")
        vals = d["value"].drop_nulls()
        q = [vals.quantile(p, "linear") for p in (0.25, 0.5, 0.75)] if vals.len() else [0, 0, 0]

        def klass(v: float | None) -> tuple[str, str]:
            if v is None:
                return "none", "#ffffff"
            k = sum(v > x for x in q)
            return f"Q{k + 1}", charts.QUARTILE_COLOURS[k]
        lo = [float(vals.min()), *q] if vals.len() else [0, 0, 0, 0]
        hi = [*q, float(vals.max())] if vals.len() else [0, 0, 0, 0]
        legend_all = [(charts.QUARTILE_COLOURS[k], f"Nhóm tứ phân vị / quartile Q{k + 1}: {lo[k]:.2f}–{hi[k]:.2f}", f"Q{k + 1}")
                      for k in range(3, -1, -1)]
        title = (f"SIPAS {ctx.data.year}: bản đồ ô theo tứ phân vị / tile map by quartile")
        values = dict(d.iter_rows())
    else:
        d = ctx.data["par"].filter(pl.col("unit_level") == "province").select("unit_code", "par_index", "par_group")
        groups = dict(d.select("unit_code", "par_group").iter_rows())

        def klass(v: float | None, code: str = "") -> tuple[str, str]:  # type: ignore[misc]
            g = groups.get(code)
            return (g, charts.GROUP_COLOURS.get(g, charts.GREY)) if g else ("none", "#ffffff")
        text = dict(ctx.bounds)
        present = sorted({g for g in groups.values() if g})
        legend_all = [(charts.GROUP_COLOURS.get(g, charts.GREY), f"Nhóm / Group {g} (≥ {text.get(g, 0):g})", g) for g in present]
        title = f"Chỉ số CCHC {ctx.data.year}: bản đồ ô theo nhóm / PAR INDEX tile map by group"
        values = dict(d.select("unit_code", "par_index").iter_rows())
    rows = []
    for p in places.iter_rows(named=True):
        code = p["province_code"]
        v = values.get(code)
        cls, colour = klass(v) if measure == "sipas" else klass(v, code)
        rows.append({"code": code, "row": p["row"], "col": p["col"], "short": p["short"], "name": names.get(code, code),
                     "value_text": "–" if v is None else f"{v:.1f}", "colour": colour, "cls": cls})
    shown = {r["cls"] for r in rows}
    legend = [item for item in legend_all if item[2] in shown]
    return charts.tile_map(rows, title, "Mỗi ô một tỉnh ở vị trí địa lý gần đúng / one tile per province, placed "
                                        "roughly where it lies", legend, ctx.source)


def heatmap(ctx: Context, tree: list[dict]) -> Canvas:
    """Provinces (ranked by SIPAS) x elements in tree order (policy groups, then service elements)."""
    el = ctx.data["sipas"].filter((pl.col("unit_level") == "province") & (pl.col("level") == "element"))
    order = provinces(ctx.data).sort("value", descending=True, nulls_last=True)["unit_code"].to_list()
    by = {}
    for r in el.iter_rows(named=True):
        by.setdefault(r["unit_code"], {"label": r["unit_name_vi"], "values": {}})["values"][r["node"]] = r["value"]
    rows = [by[c] for c in order if c in by]
    return charts.heatmap(rows, tree, f"Yếu tố SIPAS {ctx.data.year} theo tỉnh / SIPAS elements by province",
                          "Tỉnh xếp theo SIPAS, yếu tố theo cây chỉ số; giá trị % / provinces by SIPAS, elements in "
                          "the index tree's order; values in %", ctx.source)


def rank_chart(ctx: Context) -> Canvas:
    r = ctx.data["ranks"].filter((pl.col("measure") == "sipas") & pl.col("rank_national").is_not_null()).sort("rank_national")
    rows = [{"label": x["unit_name_vi"], "value": float(x["rank_national"]), "low": x["rank_low"], "high": x["rank_high"],
             "flag": x["rank_low"] is not None and x["rank_high"] - x["rank_low"] >= r.height / 2}
            for x in r.iter_rows(named=True)]
    vi, en = ctx.interval
    return charts.dot_plot(rows, f"Xếp hạng SIPAS {ctx.data.year} / SIPAS rank",
                           f"Hạng và {vi} (1 = cao nhất) / rank and {en} (1 = best)", "Hạng / rank", lo=1, hi=r.height,
                           decimals=0, flag_note="khoảng rộng hơn nửa số tỉnh / interval wider than half the provinces"
                           if any(x["flag"] for x in rows) else "", label="SIPAS rank")


def gap_chart(ctx: Context) -> Canvas | None:
    g = ctx.data["contrasts"].filter((pl.col("contrast") == "policy_minus_service") & (pl.col("unit_level") == "province")
                                     & pl.col("value").is_not_null()).sort("value", descending=True)
    if g.height == 0:
        return None
    rows = [{"label": r["unit_name_vi"], "value": r["value"], "low": r["ci_low"], "high": r["ci_high"],
             "colour": charts.BLUE if r["significant"] else charts.GREY} for r in g.iter_rows(named=True)]
    return charts.dot_plot(rows, f"Chênh lệch chính sách − dịch vụ {ctx.data.year} / policy minus service gap",
                           "Điểm phần trăm, khoảng tin cậy 95% (cùng người trả lời, hiệu tuyến tính hóa) / points, 95% "
                           "interval (same respondents, linearised contrast)", "điểm / points",
                           references=[(0.0, "0")], legend=[(charts.BLUE, "khác 0 có ý nghĩa / differs from 0", "sig"),
                                                              (charts.GREY, "không phân biệt được với 0 / cannot be told "
                                                               "from 0", "ns")], label="policy minus service gap")
