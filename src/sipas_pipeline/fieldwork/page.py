"""The fieldwork page: one offline HTML file in the release's style (its CSS and helpers, inline SVG, no script,
no external request), rewritten after each refresh: progress per province against the target, quarantine rate
per batch and per team, the provisional SIPAS per province with its interval. The SVG is drawn here directly
(a few hundred shapes), not with matplotlib, so a refresh stays well under a second."""

from __future__ import annotations

from html import escape
from pathlib import Path

import polars as pl

from sipas_pipeline.fieldwork.season import write_beside
from sipas_pipeline.methodology import Methodology
from sipas_pipeline.report.html import CSS, bi, num, table

BLUE, GREY, RED = "#2c7fb8", "#9ecae1", "#b30000"
LABEL_W, BAR_W, ROW_H = 150, 520, 14


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def bars(rows: list[tuple[str, float, float | None, bool]], scale_max: float, caption: str) -> str:
    """Horizontal bars (value, optional marker, flagged in red) with a label per row; `scale_max` is the axis end."""
    h = ROW_H * len(rows) + 24
    out = [f"<svg width='{LABEL_W + BAR_W + 60}' height='{h}' role='img'>"
           f"<title>{escape(caption)}</title>"]
    for i, (label, value, marker, flag) in enumerate(rows):
        y = 4 + i * ROW_H
        w = 0 if scale_max <= 0 else BAR_W * min(value, scale_max) / scale_max
        out.append(f"<text x='{LABEL_W - 4}' y='{y + 10}' text-anchor='end' font-size='10'>{escape(label)}</text>"
                   f"<rect x='{LABEL_W}' y='{y + 2}' width='{w:.1f}' height='{ROW_H - 4}' fill='{RED if flag else BLUE}'/>")
        if marker is not None and scale_max > 0:
            x = LABEL_W + BAR_W * min(marker, scale_max) / scale_max
            out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{y}' y2='{y + ROW_H}' stroke='#444' stroke-width='1.5'/>")
        out.append(f"<text x='{LABEL_W + w + 3:.1f}' y='{y + 10}' font-size='9'>{pct(value)}</text>")
    y = h - 8
    out.append(f"<text x='{LABEL_W}' y='{y}' font-size='9' fill='#444'>{escape(caption)}</text></svg>")
    return "".join(out)


def intervals(rows: list[tuple[str, float, float, float]], lo: float, hi: float, caption: str) -> str:
    """A dot and its interval per row on a common axis [lo, hi]."""
    h = ROW_H * len(rows) + 28
    span = max(hi - lo, 1e-9)

    def x(v: float) -> float:
        return LABEL_W + BAR_W * (min(max(v, lo), hi) - lo) / span

    out = [f"<svg width='{LABEL_W + BAR_W + 60}' height='{h}' role='img'>"
           f"<title>{escape(caption)}</title>"]
    for i, (label, v, a, b) in enumerate(rows):
        y = 4 + i * ROW_H + ROW_H / 2
        out.append(f"<text x='{LABEL_W - 4}' y='{y + 3}' text-anchor='end' font-size='10'>{escape(label)}</text>"
                   f"<line x1='{x(a):.1f}' x2='{x(b):.1f}' y1='{y}' y2='{y}' stroke='{GREY}' stroke-width='3'/>"
                   f"<circle cx='{x(v):.1f}' cy='{y}' r='3' fill='{BLUE}'/>")
    y = h - 16
    for t in range(int(lo // 10 * 10), int(hi) + 1, 10):
        if lo <= t <= hi:
            out.append(f"<text x='{x(t):.1f}' y='{y}' font-size='9' text-anchor='middle'>{t}</text>")
    out.append(f"<text x='{LABEL_W}' y='{h - 4}' font-size='9' fill='#444'>{escape(caption)}</text></svg>")
    return "".join(out)


def render(m: Methodology, tables: dict[str, pl.DataFrame]) -> str:
    """The page as one HTML document."""
    status = tables["fieldwork_status"].row(0, named=True)
    names = dict(zip(m.provinces["province_code"], m.provinces["name_vi"], strict=True))
    as_of = status["as_of"]
    prog = tables["fieldwork_progress"].filter(pl.col("level") == "province")
    title = bi(f"Khảo sát năm {m.year} đang diễn ra — số liệu tạm tính", f"Fieldwork {m.year} in progress — provisional figures")
    warn = bi("Số liệu tạm tính, chưa phải kết quả chính thức của năm", "Provisional: not the annual results")
    head = (f"<h1>{title}</h1><p class='warn'>{warn}."
            f" {bi('Cập nhật đến ngày', 'as of')} {escape(str(as_of) if as_of else '–')}; "
            f"{bi('lô đã nhận', 'batches taken')} {status['batches_taken']}, {bi('gửi trùng', 'sent twice')} "
            f"{status['batches_duplicate']}, {bi('gửi lại', 're-sent')} {status['batches_superseded']}; "
            f"{bi('phiếu hợp lệ', 'valid forms')} {status['forms_valid']:,}, {bi('bị cách ly', 'quarantined')} "
            f"{status['forms_quarantined']:,}; {bi('đạt chỉ tiêu', 'of target')}: {bi('người dân', 'citizens')} "
            f"{pct(status['coverage_citizen'])}, {bi('cán bộ', 'officials')} {pct(status['coverage_official'])}.</p>")
    body = [head]
    titles = {"citizen": bi("Tiến độ phiếu người dân theo tỉnh", "Citizens' forms per province against target"),
              "official": bi("Tiến độ phiếu cán bộ, công chức theo tỉnh", "Officials' forms per province against target")}
    for source, title in titles.items():
        p = prog.filter(pl.col("source") == source).filter(pl.col("unit_code").is_in(list(names))).sort("unit_code")
        rows = [(f"{names.get(r['unit_code'], r['unit_code'])}", r["coverage"] or 0.0,
                 (r["expected"] / r["target"]) if r["target"] else None, bool(r["behind_schedule"]))
                for r in p.iter_rows(named=True)]
        behind = [names.get(c, c) for c in p.filter(pl.col("behind_schedule"))["unit_code"]]
        body.append(f"<h2 id='progress-{source}'>{title}</h2>"
                    + bars(rows, max([1.0] + [r[1] for r in rows]),
                           "Hợp lệ / chỉ tiêu (vạch: dự kiến đến nay; đỏ: chậm tiến độ) — valid / target "
                           "(line: expected by now; red: behind schedule)")
                    + f"<p>{bi('Chậm tiến độ', 'behind schedule')}: {escape(', '.join(behind) or '–')}</p>")
        rows_t = [[escape(f"{r['unit_code']} {names.get(r['unit_code'], '')}"), f"{r['valid']:,}", f"{r['target'] or 0:,}",
                   f"{r['quarantined']:,}", escape(str(r["last_batch_date"] or "–")),
                   "<span class='warn'>chậm / behind</span>" if r["behind_schedule"] else ""] for r in p.iter_rows(named=True)]
        body.append("<details><summary>" + bi("Bảng chi tiết", "table") + "</summary>"
                    + table([bi("Tỉnh", "Province"), bi("Hợp lệ", "Valid"), bi("Chỉ tiêu", "Target"),
                             bi("Cách ly", "Quarantined"), bi("Lô cuối", "Last batch"), ""], rows_t) + "</details>")
    batches = tables["fieldwork_batches"]
    counted = batches.filter(pl.col("status").is_in(["taken", "superseded"]))
    teams = (counted.group_by("team").agg(pl.len().alias("batches"), pl.col("read").sum(), pl.col("quarantined").sum())
             .with_columns((pl.col("quarantined") / pl.col("read")).alias("rate")).sort("rate", "team", descending=[True, False]))
    body.append(f"<h2 id='quarantine-teams'>{bi('Tỷ lệ cách ly theo đội khảo sát', 'Quarantine rate per team')}</h2>"
                + table([bi("Đội", "Team"), bi("Lô", "Batches"), bi("Dòng", "Rows"), bi("Cách ly", "Quarantined"), "%"],
                        [[escape(r["team"] or "–"), str(r["batches"]), f"{r['read']:,}", f"{r['quarantined']:,}",
                          f"{100 * (r['rate'] or 0):.1f}"] for r in teams.head(15).iter_rows(named=True)]))
    recent = batches.sort("seq", descending=True).head(40)
    per_batch = bi("Tỷ lệ cách ly theo lô (40 lô gần nhất)", "Quarantine rate per batch (latest 40)")
    body.append(f"<h2 id='quarantine-batches'>{per_batch}</h2>"
                + table([bi("Lô", "Batch"), bi("Đội", "Team"), bi("Trạng thái", "Status"), bi("Dòng", "Rows"),
                         bi("Cách ly", "Quarantined"), "%", bi("Lý do", "Reasons")],
                        [[escape(r["batch_id"]), escape(r["team"] or ""), escape(r["status"]), str(r["read"]),
                          str(r["quarantined"]), f"{100 * (r['quarantine_rate'] or 0):.1f}",
                          escape((r["reasons"] or "{}").strip("{}").replace('"', ""))] for r in recent.iter_rows(named=True)]))
    sipas = (tables["fieldwork_sipas"].filter((pl.col("unit_level") == "province") & (pl.col("level") == "sipas")
                                              & pl.col("value").is_not_null()).sort("value", descending=True))
    rows = [(names.get(r["unit_code"], r["unit_code"]), r["value"], r["ci_low"], r["ci_high"])
            for r in sipas.iter_rows(named=True)]
    lo = min([r[2] for r in rows], default=0.0)
    hi = max([r[3] for r in rows], default=100.0)
    body.append(f"<h2 id='sipas'>{bi('SIPAS tạm tính và khoảng tin cậy 95%', 'Provisional SIPAS with 95% intervals')}</h2>"
                + intervals(rows, max(0.0, lo - 2), min(100.0, hi + 2), "SIPAS (%) — tạm tính / provisional")
                + table([bi("Tỉnh", "Province"), "SIPAS", bi("Khoảng tin cậy", "Interval"), "n", bi("Đạt chỉ tiêu", "Coverage")],
                        [[escape(names.get(r["unit_code"], r["unit_code"])), num(r["value"]),
                          f"{num(r['ci_low'])}–{num(r['ci_high'])}", str(r["n"]), pct(r["coverage"])]
                         for r in sipas.iter_rows(named=True)]))
    return ("<!DOCTYPE html><html lang='vi'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
            f"<title>Khảo sát {m.year} — tạm tính / fieldwork, provisional</title><style>{CSS}</style></head><body>"
            + "".join(body) + "</body></html>")


def write_page(m: Methodology, tables: dict[str, pl.DataFrame], path: Path) -> Path:
    """Write the page to `path` (beside, then renamed)."""
    text = render(m, tables)
    write_beside(Path(path), lambda p: p.write_text(text, encoding="utf-8"))
    return Path(path)
