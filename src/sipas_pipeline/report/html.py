"""The report page: one self-contained HTML file (inline CSS and SVG, no script, no external request),
Vietnamese first with English beside: what changed (a re-run), the headline and findings in words, the
charts, notes on method and sources, then a scorecard per province. Responsive: usable at 390 px wide
(charts scale down, wide tables and the heat map scroll inside their own box), and printable."""

from __future__ import annotations

from html import escape

import polars as pl

from sipas_pipeline.report import changes, notes
from sipas_pipeline.report.figures import Context
from sipas_pipeline.report.findings import Findings
from sipas_pipeline.report.markup import bi, num, table
from sipas_pipeline.report.scorecard import Lookup, anchor, scorecard

CSS = """*{box-sizing:border-box}body{font-family:'DejaVu Sans',Arial,sans-serif;margin:0 auto;padding:1em;max-width:1040px;
color:#222;line-height:1.4}h1{font-size:1.5em}h2{border-bottom:2px solid #0072B2;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .45em;font-size:.88em;vertical-align:top}
td.n{text-align:right;white-space:nowrap}.en{color:#555;font-size:.92em}.scroll{max-width:100%;overflow-x:auto}
.card{border:1px solid #ccc;padding:.5em 1em;margin:1.5em 0}.card:target{border:2px solid #0072B2;background:#f4f9fd}
nav a{margin-right:.6em;white-space:nowrap;display:inline-block}figure{margin:1em 0}
svg.chart{max-width:100%;height:auto;display:block}.wide{max-width:100%;overflow-x:auto}.wide svg.chart{max-width:none}
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1em}
.lists{display:flex;flex-wrap:wrap;gap:1em}.list h4{margin:.4em 0}.list ul{margin:0;padding-left:1.2em}
.lead{font-size:1.1em}.headline{font-size:1.15em;background:#f4f9fd;border-left:4px solid #0072B2;padding:.6em .8em}
.source{color:#555;font-size:.85em}.warn{color:#a33}.notes li{margin:.4em 0}.changes{background:#fff8ec;padding:.2em 1em}
.charts{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1em}
@media (max-width:760px){.grid,.charts{grid-template-columns:minmax(0,1fr)}body{padding:.5em}}
@media print{body{max-width:none;padding:0}.card{break-inside:avoid;border:none}.top,nav{display:none}}"""
CSP = "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"


def head(title: str, extra_css: str = "") -> str:
    return (f"<!DOCTYPE html><html lang='vi'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>{CSP}"
            f"<title>{escape(title)}</title><style>{CSS}{extra_css}</style></head>")


def incomplete_note(ctx: Context) -> str:
    """Provinces published without a figure: said, never silent."""
    miss = ctx.data["ranks"].filter((pl.col("measure") == "sipas") & pl.col("incomplete_reason").is_not_null())
    if miss.height == 0:
        return ""
    items = "".join(f"<li>{escape(r['unit_name_vi'] or r['unit_code'])}: {escape(r['incomplete_reason'])}</li>"
                    for r in miss.iter_rows(named=True))
    return f"<p class='warn'>{bi('Tỉnh thiếu dữ liệu, không có số liệu', 'incomplete provinces, no figure')}:</p><ul>{items}</ul>"


def national_table(ctx: Context) -> str:
    s = ctx.data["sipas"].filter(pl.col("unit_level") == "nation")
    rows = [[bi(r["label_vi"], r["label_en"]), num(r["value"]), f"{num(r['ci_low'])}–{num(r['ci_high'])}"]
            for r in s.filter(pl.col("level").is_in(["sipas", "part"])).sort("level", descending=True).iter_rows(named=True)]
    par = ctx.data["par"].filter(pl.col("unit_level") == "nation")
    if par.height:
        rows.append([bi("Chỉ số CCHC (trung bình các tỉnh)", "PAR INDEX, mean of the provinces"), num(par["par_index"][0]), "–"])
    return table([bi("Chỉ số", "Measure"), bi("Giá trị", "Value"), bi("Khoảng tin cậy 95%", "95% CI")], rows)


def findings_section(f: Findings) -> str:
    items = "".join(f"<li>{escape(vi)}<br><span class='en'>{escape(en)}</span></li>" for vi, en in f.findings)
    return (f"<p class='headline' id='headline'>{escape(f.headline[0])}<br><span class='en'>{escape(f.headline[1])}</span></p>"
            f"<h2 id='findings'>{bi('Phát hiện chính', 'Key findings')}</h2><ul class='findings'>{items}</ul>")


def figure(fid: str, title: str, svg: str, wide: bool = False) -> str:
    return f"<figure id='{fid}' class='{'wide' if wide else ''}'><figcaption><h3>{title}</h3></figcaption>{svg}</figure>"


def page(ctx: Context, findings: Findings, svgs: dict[str, str], tree: list[dict]) -> str:
    """The whole report as one HTML document."""
    run = ctx.data["run"].row(0, named=True)
    year = ctx.data.year
    provinces = (ctx.data["sipas"].filter((pl.col("unit_level") == "province") & (pl.col("level") == "sipas"))
                 .sort("unit_sort_key"))
    nav = "".join(f"<a href='#{anchor(c)}'>{escape(n)}</a> "
                  f"" for c, n in provinces.select("unit_code", "unit_name_vi").iter_rows())
    pairs = [("sipas-chart", bi("SIPAS theo tỉnh", "SIPAS by province"), "sipas"),
             ("par-chart", bi("Chỉ số CCHC theo tỉnh và nhóm", "PAR INDEX by province and group"), "par"),
             ("regions-chart", bi("SIPAS theo vùng", "SIPAS by region"), "regions_sipas"),
             ("regions-par-chart", bi("Chỉ số CCHC theo vùng", "PAR INDEX by region"), "regions_par"),
             ("tile-sipas", bi("Bản đồ ô SIPAS", "SIPAS tile map"), "tiles_sipas"),
             ("tile-par", bi("Bản đồ ô Chỉ số CCHC", "PAR INDEX tile map"), "tiles_par"),
             ("rank-chart", bi("Thứ hạng và khoảng xếp hạng", "Ranks and their intervals"), "ranks"),
             ("gap-chart", bi("Chênh lệch chính sách − dịch vụ", "Policy minus service gap"), "gap")]
    charts_html = "".join(figure(fid, title, svgs[key]) for fid, title, key in pairs if svgs.get(key))
    heat = figure("heatmap", bi("Bản đồ nhiệt tỉnh × yếu tố SIPAS", "Province × SIPAS element heat "
                                                                    "map"), svgs["heatmap"], wide=True)
    look = Lookup(ctx)
    cards = "".join(scorecard(look, c, tree) for c in provinces["unit_code"].to_list())
    return (head(f"SIPAS & Chỉ số CCHC {year} — báo cáo / report") + "<body id='top'>"
            f"<h1>{bi(f'Chỉ số SIPAS và Chỉ số CCHC năm {year}', f'SIPAS and PAR INDEX {year}')}</h1>"
            f"<p class='source'>{bi('Lần chạy', 'run')} <code>{escape(run['run_id'])}</code>, "
            f"{bi('mã băm kết quả', 'results hash')} <code>{escape((run['results_hash'] or '')[:16])}</code></p>"
            + changes.section(changes.changes(ctx.data)) + findings_section(findings) + incomplete_note(ctx)
            + f"<h2 id='summary'>{bi('Tóm tắt toàn quốc', 'National summary')}</h2>" + national_table(ctx)
            + f"<h2 id='charts'>{bi('Biểu đồ', 'Charts')}</h2><div class='charts'>{charts_html}</div>{heat}"
            + notes.section(ctx)
            + f"<h2 id='scorecards'>{bi('Phiếu điểm từng tỉnh', 'Scorecard per province')}</h2><nav>{nav}</nav>{cards}"
            + "</body></html>")


PRINT_CSS = """@page{size:A4;margin:10mm}body{max-width:none;padding:0;font-size:11px}.card{border:none;margin:0;padding:0}
.grid{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}td,th{font-size:10px}h3{margin:.2em 0}figure{margin:.3em 0}
.top{display:none}.scroll{overflow:visible}"""


def scorecard_page(ctx: Context, code: str, tree: list[dict], look: Lookup | None = None) -> str:
    """One province's scorecard as its own page, laid out for one A4 sheet (what the PDF prints)."""
    look = look or Lookup(ctx)
    return (head(f"{code} — SIPAS & PAR INDEX {ctx.data.year}", PRINT_CSS) + "<body>" + scorecard(look, code, tree)
            + "</body></html>")
