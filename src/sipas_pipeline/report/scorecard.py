"""One province's scorecard (phiếu điểm): its figures with their intervals, its region named, how it differs
from the nation, the policy-minus-service gap, key indicators, and three pictures: the elements against the
nation and the best province, the PAR fields against the national and regional means, and the trend over
every year in the file plus the published figures of earlier years."""

from __future__ import annotations

from html import escape

import polars as pl

from sipas_pipeline.report import charts
from sipas_pipeline.report.figures import Context, flagged
from sipas_pipeline.report.markup import bi, num, table

# indicators shown on every scorecard when the year has them: (id, lower is better)
KEY_INDICATORS = [("S_S_OVERALL", False), ("A_S_INFASK", True), ("A_S_INFPAID", True), ("A_S_ONLINE", False)]


def anchor(code: str) -> str:
    """The id of a province's scorecard (`report.html#p-01`)."""
    return f"p-{code}"


class Lookup:
    """The frames a scorecard reads, indexed once for all 63 scorecards (a filter per card would cost more than
    the drawing)."""

    def __init__(self, ctx: Context):
        d = ctx.data
        s = d["sipas"]
        self.ctx = ctx
        self.sipas = {(r["unit_level"], r["unit_code"], r["level"], r["node"]): r for r in s.iter_rows(named=True)}
        self.ranks = {(r["unit_code"], r["measure"]): r for r in d["ranks"].iter_rows(named=True)}
        self.par = {(r["unit_level"], r["unit_code"]): r for r in d["par"].iter_rows(named=True)}
        self.points = {(r["unit_level"], r["unit_code"], r["node"]): r
                       for r in d["par_points"].filter(pl.col("level") == "field").iter_rows(named=True)}
        self.fields = (d["par_points"].filter((pl.col("level") == "field") & (pl.col("unit_level") == "nation"))
                       .sort("node").select("node", "label_vi", "label_en").rows())
        self.contrasts = {(r["unit_code"], r["contrast"], r["measure"]): r
                          for r in d["contrasts"].filter(pl.col("unit_level") != "region").iter_rows(named=True)}
        key_ids = [k for k, _ in KEY_INDICATORS]
        ind = d["indicators"].filter(pl.col("indicator_id").is_in(key_ids))
        self.indicators = {(r["unit_level"], r["unit_code"], r["indicator_id"]): r for r in ind.iter_rows(named=True)}
        self.key = [k for k in key_ids if ind.filter(pl.col("indicator_id") == k).height]
        el = s.filter((pl.col("unit_level") == "province") & (pl.col("level") == "element") & pl.col("value").is_not_null())
        best = el.sort("value", descending=True).unique("node", keep="first")
        self.best = {r["node"]: r for r in best.iter_rows(named=True)}
        self.region_size = dict(d["ranks"].filter((pl.col("measure") == "sipas") & pl.col("rank_national").is_not_null())
                                .group_by("region_code").len().iter_rows())
        self.regions = {r["unit_code"]: r for r in s.filter((pl.col("unit_level") == "region") & (pl.col("level") == "sipas"))
                        .iter_rows(named=True)}
        self.series = d["series"]
        self.ranked = d["ranks"].filter((pl.col("measure") == "sipas") & pl.col("rank_national").is_not_null()).height


def trend_points(look: Lookup, code: str) -> list[dict]:
    """The unit's SIPAS and PAR INDEX for every year in the file (own results with 95% intervals; a previous year
    re-estimated on this year's units) and the published figures of earlier years (published.csv, no interval)."""
    points, seen = [], set()
    label = {"sipas": "SIPAS", "par": "PAR INDEX"}
    for r in look.series.filter(pl.col("unit_code") == code).iter_rows(named=True):
        if r["value"] is None:
            continue
        half = 1.96 * r["se"] if r["se"] is not None else None
        points.append({"series": label[r["measure"]], "year": r["year"], "value": r["value"],
                       "low": None if half is None else r["value"] - half, "high": None if half is None else r["value"] + half})
        seen.add((r["measure"], r["year"]))
    pub = look.ctx.published
    if pub is not None:
        for r in pub.filter((pl.col("unit") == code) & pl.col("value").is_not_null() & pl.col("measure").is_in(list(label))
                            & (pl.col("year") < look.ctx.data.year)).iter_rows(named=True):
            if (r["measure"], r["year"]) not in seen:
                points.append({"series": label[r["measure"]], "year": r["year"], "value": r["value"], "published": True})
    return points


def contrast_text(c: dict | None) -> str:
    if c is None or c["value"] is None:
        return "–"
    verdict = ("" if c["significant"] is None else " — " + (bi("có ý nghĩa thống kê", "significant") if c["significant"]
                                                             else bi("không phân biệt được", "cannot be told apart")))
    return (f"{c['value']:+.2f} (se {num(c['se'])}; {bi('KTC 95%', '95% CI')} {c['ci_low']:+.2f} {bi('đến', 'to')} "
            f"{c['ci_high']:+.2f}){verdict}")


def change_text(k: dict) -> str:
    if k.get("change_value") is None:
        return bi("không có số liệu năm trước", "no figure of last year")
    basis = {"results": bi("so với kết quả năm trước", "against last year's results"),
             "reestimated": bi("so với năm trước ước lượng lại trên đơn vị năm nay", "against last year re-estimated on "
                               "this year's units"),
             "published": bi("so với số liệu đã công bố, không có sai số chuẩn: chưa rõ có ý nghĩa hay không",
                             "against the published figure, no standard error: significance unknown")}.get(k["change_basis"], "")
    sig = ""
    if k.get("change_significant") is not None:
        sig = "; " + (bi("có ý nghĩa thống kê", "significant") if k["change_significant"]
                      else bi("không có ý nghĩa thống kê", "not significant"))
    return f"{k['change_value']:+.2f} ({basis}{sig})"


def facts(look: Lookup, code: str) -> list[list[str]]:
    top = look.sipas.get(("province", code, "sipas", "SIPAS"), {})
    k = look.ranks.get((code, "sipas"), {})
    p = look.par.get(("province", code), {})
    region = look.regions.get(top.get("region_code"), {})
    vi, en = look.ctx.interval
    flag = " <span class='warn'>" + bi("kém tin cậy", "less reliable") + "</span>" if top and flagged(top) else ""
    region_name = bi(region.get("unit_name_vi") or "–", region.get("unit_name_en") or "–")
    rows = [
        [bi("SIPAS", "SIPAS index"), f"{num(top.get('value'))} ({bi('KTC 95%', '95% CI')} {num(top.get('ci_low'))}–"
                                     f"{num(top.get('ci_high'))}){flag}"],
        [bi("Xếp hạng toàn quốc", "national rank"), f"{k.get('rank_national') or '–'} / {look.ranked} "
         f"({bi(vi, en)}: {k.get('rank_low') or '–'}–{k.get('rank_high') or '–'})"],
        [bi("Vùng", "region"), region_name],
        [bi("Xếp hạng trong vùng", "rank in the region"),
         f"{k.get('rank_regional') or '–'} / {look.region_size.get(top.get('region_code'), '–')} "
         f"({k.get('rank_regional_low') or '–'}–{k.get('rank_regional_high') or '–'})"],
        [bi("Chênh lệch với trung bình toàn quốc", "difference from the national mean"),
         contrast_text(look.contrasts.get((code, "minus_nation", "sipas")))],
        [bi("Chênh lệch chính sách − dịch vụ", "policy minus service gap"),
         contrast_text(look.contrasts.get((code, "policy_minus_service", "sipas")))],
        [bi("Thay đổi so với năm trước", "change on last year"), change_text(k)],
        [bi("Chỉ số CCHC", "PAR INDEX"), f"{num(p.get('par_index'))} ({bi('KTC 95%', '95% CI')} {num(p.get('ci_low'))}–"
         f"{num(p.get('ci_high'))}) — {bi('nhóm', 'group')} {escape(p.get('par_group') or '–')}, {bi('hạng', 'rank')} "
         f"{p.get('rank_national') or '–'}"],
        [bi("Chỉ số CCHC so với toàn quốc", "PAR INDEX minus the national mean"),
         contrast_text(look.contrasts.get((code, "minus_nation", "par")))],
        [bi("Cỡ mẫu (phiếu người dân)", "sample, citizens' forms"), f"{top.get('n') or 0:,}"
         + (" <span class='warn'>" + bi("mẫu nhỏ", "small sample") + "</span>" if top.get("small_sample") else "")],
    ]
    return rows


def element_rows(look: Lookup, code: str, tree: list[dict]) -> list[dict]:
    rows = []
    for node in tree:
        mine = look.sipas.get(("province", code, "element", node["node"]), {})
        nat = look.sipas.get(("nation", "VN", "element", node["node"]), {})
        best = look.best.get(node["node"], {})
        rows.append({"label": (node["label_vi"], node["label_en"]), "node": node["node"], "value": mine.get("value"),
                     "nation": nat.get("value"),
                     "best": best.get("value"), "best_name": best.get("unit_name_vi")})
    return rows


def lists(rows: list[dict]) -> str:
    """The elements furthest above and furthest below the nation, each list holding only what its title says."""
    gaps = [(r["value"] - r["nation"], r) for r in rows if r["value"] is not None and r["nation"] is not None]
    above = sorted((g for g in gaps if g[0] > 0), key=lambda g: -g[0])[:3]
    below = sorted((g for g in gaps if g[0] < 0), key=lambda g: g[0])[:3]
    out = ""
    for title, items in ((bi("Cao hơn toàn quốc nhiều nhất", "furthest above the nation"), above),
                         (bi("Thấp hơn toàn quốc nhiều nhất", "furthest below the nation"), below)):
        body = "".join(f"<li>{bi(*r['label'])}: {g:+.2f}</li>" for g, r in items) or f"<li>{bi('không có', 'none')}</li>"
        out += f"<div class='list'><h4>{title}</h4><ul>{body}</ul></div>"
    return f"<div class='lists'>{out}</div>"


def key_indicators(look: Lookup, code: str, region: str | None) -> str:
    rows = []
    for ind in look.key:
        mine = look.indicators.get(("province", code, ind), {})
        nat = look.indicators.get(("nation", "VN", ind), {})
        reg = look.indicators.get(("region", region, ind), {})
        lower = dict(KEY_INDICATORS)[ind]
        rows.append([bi(mine.get("label_vi") or ind, (mine.get("label_en") or ind) + (" — lower is better" if lower else "")),
                     f"{num(mine.get('value'), 1)} ({num(mine.get('ci_low'), 1)}–{num(mine.get('ci_high'), 1)})",
                     num(reg.get("value"), 1), num(nat.get("value"), 1)])
    if not rows:
        return ""
    return (f"<h4>{bi('Chỉ tiêu chính (%)', 'Key indicators (%)')}</h4>"
            + table([bi("Chỉ tiêu", "Indicator"), bi("Tỉnh (KTC 95%)", "Province (95% CI)"), bi("Vùng", "Region"),
                     bi("Toàn quốc", "Nation")], rows))


def scorecard(look: Lookup, code: str, tree: list[dict]) -> str:
    """The scorecard's HTML section (id `p-<code>`)."""
    top = look.sipas.get(("province", code, "sipas", "SIPAS"), {})
    name = top.get("unit_name_vi") or code
    region = top.get("region_code")
    reg = look.regions.get(region, {})
    year = look.ctx.data.year
    el = element_rows(look, code, tree)
    elements = charts.bar_chart(
        el, f"{name}: yếu tố SIPAS / SIPAS elements", "So với toàn quốc và tỉnh cao nhất / against the nation and the "
        "best province", "%", markers=[("nation", charts.ORANGE, "Toàn quốc / nation"),
                                       ("best", charts.DARK, "Tỉnh cao nhất / best province")]).svg("chart elements")
    fields = [{"label": (f"{fid}. {vi}", en), "value": (look.points.get(("province", code, fid)) or {}).get("pct_of_max"),
               "nation": (look.points.get(("nation", "VN", fid)) or {}).get("pct_of_max"),
               "region": (look.points.get(("region", region, fid)) or {}).get("pct_of_max")} for fid, vi, en in look.fields]
    par_fields = charts.bar_chart(
        fields, f"{name}: lĩnh vực Chỉ số CCHC / PAR INDEX fields", "% điểm tối đa, so với trung bình vùng và toàn quốc / "
        "% of maximum against the regional and national means", "% điểm tối đa / % of maximum",
        markers=[("region", charts.BLUE, f"Vùng / region: {reg.get('unit_name_vi') or '–'}"),
                 ("nation", charts.ORANGE, "Toàn quốc / nation")]).svg("chart fields")
    points = trend_points(look, code)
    trend = (charts.trend(points, f"{name}: qua các năm / over the years",
                          "SIPAS và Chỉ số CCHC, khoảng tin cậy 95% / with 95% intervals").svg("chart trend")
             if points else "")
    incomplete = f"<p class='warn'>{escape(top['incomplete_reason'])}</p>" if top.get("incomplete_reason") else ""
    return (f"<section class='card' id='{anchor(code)}'><h3>{escape(name)} <span "
            f"class='en'>({escape(top.get('unit_name_en') or '')},"
            f" {escape(code)}) — {escape(reg.get('unit_name_vi') or '')} · SIPAS & PAR INDEX {year}</span></h3>{incomplete}"
            f"<div class='grid'><div>{table([bi('Chỉ tiêu', 'Measure'), bi('Giá trị', 'Value')], facts(look, code))}"
            f"{lists(el)}{key_indicators(look, code, region)}</div>"
            f"<div><figure>{elements}</figure><figure>{par_fields}</figure><figure>{trend}</figure></div></div>"
            f"<p class='source'>{escape(look.ctx.source)}</p><p class='top'><a href='#top'>↑ Đầu trang / top</a></p></section>")
