"""The report page: one self-contained HTML file (inline CSS and SVG, no script, no external request),
Vietnamese first with English beside: national summary, the charts, then a scorecard per province."""

from __future__ import annotations

from html import escape

import polars as pl

from sipas_pipeline.report.data import ReportData

CSS = """body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{font-size:1.6em}h2{border-bottom:2px solid #2c7fb8;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;font-size:.9em}
td.n{text-align:right}.en{color:#666;font-size:.9em}.card{border:1px solid #ccc;padding:.5em 1em;margin:1.5em 0}
.card:target{border:2px solid #2c7fb8;background:#f4f9fd}nav a{margin-right:.6em;white-space:nowrap}
svg{max-width:100%;height:auto}
.warn{color:#b30000}"""


def num(v: float | None, digits: int = 2) -> str:
    """A figure as published (rounded), or an en dash for no figure."""
    return "–" if v is None else f"{v:.{digits}f}"


def bi(vi: str, en: str) -> str:
    """Vietnamese with the English beside."""
    return f"{escape(vi)} <span class='en'>({escape(en)})</span>"


def table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table (cells already escaped; numeric-looking cells right-aligned)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='n'>{c}</td>" if c[:1].isdigit() or c[:1] in "-–+" else f"<td>{c}</td>"
                                    for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def anchor(code: str) -> str:
    """The id of a province's scorecard (`report.html#p-01`)."""
    return f"p-{code}"


def national_summary(data: ReportData) -> str:
    """SIPAS, its parts, the PAR INDEX, the groups and the change of the national mean."""
    s = data["sipas"].filter(pl.col("unit_level") == "nation")
    par = data["par"]
    nation = par.filter(pl.col("unit_level") == "nation").row(0, named=True)
    rows = [[bi(r["label_vi"], r["label_en"]), num(r["value"]), f"{num(r['ci_low'])}–{num(r['ci_high'])}"]
            for r in s.filter(pl.col("level").is_in(["sipas", "part"])).sort("level", descending=True).iter_rows(named=True)]
    rows.append([bi("Chỉ số CCHC (trung bình các tỉnh)", "PAR INDEX, mean of the provinces"), num(nation["par_index"]), "–"])
    groups = par.filter(pl.col("unit_level") == "province").group_by("par_group").len().sort("par_group")
    g = ", ".join(f"{r['par_group'] or '–'}: {r['len']}" for r in groups.iter_rows(named=True))
    ranks = data["ranks"].filter(pl.col("measure") == "sipas")
    change = ranks["change_value"].drop_nulls()
    moved = (f"{bi('Thay đổi trung bình so với năm trước', 'mean change since last year')}: {num(change.mean())} "
             f"({int(ranks['change_significant'].fill_null(False).sum())} "
             f"{bi('tỉnh thay đổi có ý nghĩa thống kê', 'provinces with a significant change')})"
             if change.len() else bi("Không có số liệu năm trước", "no figures of last year"))
    return (f"<h2 id='summary'>{bi('Tóm tắt toàn quốc', 'National summary')}</h2>"
            + table([bi("Chỉ số", "Measure"), bi("Giá trị", "Value"), bi("Khoảng tin cậy 95%", "95% CI")], rows)
            + f"<p>{bi('Nhóm Chỉ số CCHC', 'PAR INDEX groups')}: {escape(g)}</p><p>{moved}</p>")


def incomplete_note(data: ReportData) -> str:
    """Provinces published without a figure: said, never silent."""
    miss = data["ranks"].filter((pl.col("measure") == "sipas") & pl.col("incomplete_reason").is_not_null())
    if miss.height == 0:
        return ""
    items = "".join(f"<li>{escape(r['unit_name_vi'] or r['unit_code'])}: {escape(r['incomplete_reason'])}</li>"
                    for r in miss.iter_rows(named=True))
    return f"<p class='warn'>{bi('Tỉnh thiếu dữ liệu, không có số liệu', 'incomplete provinces, no figure')}:</p><ul>{items}</ul>"


def scorecard(data: ReportData, code: str) -> str:
    """One province's scorecard: value, rank and interval, regional rank, change, elements against the nation,
    PAR fields against the national and regional means, sample size."""
    s = data["sipas"]
    mine = s.filter((pl.col("unit_level") == "province") & (pl.col("unit_code") == code))
    top = mine.filter(pl.col("level") == "sipas").row(0, named=True)
    region = top["region_code"]
    k = data["ranks"].filter((pl.col("unit_code") == code) & (pl.col("measure") == "sipas")).row(0, named=True)
    p = data["par"].filter((pl.col("unit_level") == "province") & (pl.col("unit_code") == code)).row(0, named=True)
    verdict = {True: "có ý nghĩa / significant", False: "không có ý nghĩa / not significant",
               None: "so với số liệu công bố / against published figures"}[k["change_significant"]]
    change = "–" if k["change_value"] is None else f"{k['change_value']:+.2f} ({verdict})"
    facts = [
        [bi("SIPAS", "SIPAS index"), f"{num(top['value'])} ({num(top['ci_low'])}–{num(top['ci_high'])})"],
        [bi("Xếp hạng toàn quốc", "national rank"),
         f"{k['rank_national'] or '–'} ({k['rank_low'] or '–'}–{k['rank_high'] or '–'})"],
        [bi("Xếp hạng trong vùng", "rank in the region"),
         f"{k['rank_regional'] or '–'} ({k['rank_regional_low'] or '–'}–{k['rank_regional_high'] or '–'})"],
        [bi("Thay đổi so với năm trước", "change since last year"), escape(change)],
        [bi("Chỉ số CCHC", "PAR INDEX"), f"{num(p['par_index'])} — {bi('nhóm', 'group')} {escape(p['par_group'] or '–')}, "
                                           f"{bi('hạng', 'rank')} {p['rank_national'] or '–'}"],
        [bi("Cỡ mẫu (phiếu người dân)", "sample size, citizens' forms"), f"{top['n'] or 0:,}"
         + (" <span class='warn'>mẫu nhỏ / small sample</span>" if top["small_sample"] else "")],
    ]
    nation = s.filter((pl.col("unit_level") == "nation") & (pl.col("level") == "element")).select("node", nat="value")
    el = (mine.filter(pl.col("level") == "element").join(nation, on="node", how="left")
          .with_columns(gap=pl.col("value") - pl.col("nat")).filter(pl.col("gap").is_not_null()).sort("gap", descending=True))
    el_rows = [[bi(r["label_vi"], r["label_en"]), num(r["value"]), num(r["nat"]), f"{r['gap']:+.2f}"]
               for r in pl.concat([el.head(3), el.tail(3)]).unique(maintain_order=True).iter_rows(named=True)]
    pts = data["par_points"].filter(pl.col("level") == "field")
    f_me = pts.filter((pl.col("unit_level") == "province") & (pl.col("unit_code") == code))
    f_nat = pts.filter(pl.col("unit_level") == "nation").select("node", nat="pct_of_max")
    f_reg = pts.filter((pl.col("unit_level") == "region") & (pl.col("unit_code") == region)).select("node", reg="pct_of_max")
    fields = f_me.join(f_nat, on="node", how="left").join(f_reg, on="node", how="left").sort("node")
    f_rows = [[bi(r["label_vi"], r["label_en"]), num(r["points"]), num(r["max_points"]), num(r["pct_of_max"], 1),
               num(r["reg"], 1), num(r["nat"], 1)] for r in fields.iter_rows(named=True)]
    name = top["unit_name_vi"] or code
    return (f"<section class='card' id='{anchor(code)}'><h3>{escape(name)} <span class='en'>({escape(top['unit_name_en'] or '')},"
            f" {escape(code)})</span></h3>"
            + (f"<p class='warn'>{escape(top['incomplete_reason'])}</p>" if top["incomplete_reason"] else "")
            + table([bi("Chỉ tiêu", "Measure"), bi("Giá trị", "Value")], facts)
            + f"<h4>{bi('Yếu tố mạnh nhất và yếu nhất so với toàn quốc', 'Strongest and weakest elements vs the nation')}</h4>"
            + table([bi("Yếu tố", "Element"), bi("Tỉnh", "Province"), bi("Toàn quốc", "Nation"), bi("Chênh lệch", "Gap")],
                    el_rows)
            + f"<h4>{bi('Lĩnh vực Chỉ số CCHC', 'PAR INDEX fields')} (% {bi('điểm tối đa', 'of maximum')})</h4>"
            + table([bi("Lĩnh vực", "Field"), bi("Điểm", "Points"), bi("Tối đa", "Max"), "%", bi("Vùng", "Region") + " %",
                     bi("Toàn quốc", "Nation") + " %"], f_rows)
            + "<p><a href='#top'>↑ Đầu trang / top</a></p></section>")


def page(data: ReportData, charts: dict[str, str]) -> str:
    """The whole report as one HTML document."""
    run = data["run"].row(0, named=True)
    provinces = (data["sipas"].filter((pl.col("unit_level") == "province") & (pl.col("level") == "sipas"))
                 .sort("unit_sort_key"))
    nav = "".join(f"<a href='#{anchor(c)}'>{escape(n)}</a> "
                  for c, n in provinces.select("unit_code", "unit_name_vi").iter_rows())
    sections = [
        ("sipas-chart", bi("SIPAS của các tỉnh, khoảng tin cậy và trung bình toàn quốc",
                           "SIPAS of every province with its confidence interval and the national mean"), "sipas"),
        ("par-chart", bi("Chỉ số CCHC theo nhóm", "PAR INDEX coloured by group"), "par"),
        ("regions-chart", bi("Trung bình theo vùng", "Regional means"), "regions"),
        ("heatmap", bi("Bản đồ nhiệt tỉnh × yếu tố SIPAS", "Province × SIPAS element heat map"), "heatmap"),
        ("rank-chart", bi("Khoảng xếp hạng", "Rank intervals"), "ranks"),
    ]
    body = "".join(f"<h2>{title}</h2><figure id='{fid}'>{charts[key]}</figure>" for fid, title, key in sections)
    cards = "".join(scorecard(data, c) for c in provinces["unit_code"].to_list())
    return ("<!DOCTYPE html><html lang='vi'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
            f"<title>SIPAS & Chỉ số CCHC {data.year} — báo cáo / report</title><style>{CSS}</style></head><body id='top'>"
            f"<h1>{bi(f'Chỉ số SIPAS và Chỉ số CCHC năm {data.year}', f'SIPAS and PAR INDEX {data.year}')}</h1>"
            f"<p>{bi('Lần chạy', 'run')} <code>{escape(run['run_id'])}</code>, "
            f"{bi('mã băm kết quả', 'results hash')} <code>{escape((run['results_hash'] or '')[:16])}</code></p>"
            + incomplete_note(data) + national_summary(data) + body
            + f"<h2 id='scorecards'>{bi('Phiếu điểm từng tỉnh', 'Scorecard per province')}</h2><nav>{nav}</nav>{cards}"
            + "</body></html>")
