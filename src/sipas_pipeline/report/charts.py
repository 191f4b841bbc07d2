"""The release's charts as `drawing.Canvas` objects (SVG for the page, PNG for the press), drawn so they do
not mislead: estimates as dots with their intervals (a bar, when there is one, starts at zero), group bounds
drawn as lines, only the groups present in a legend, reliability flags where an interval is wide, every
label bilingual and at least 11 px, colours safe for colour-blind readers (single-hue sequences and the
viridis steps, never red against green). Inputs are plain rows (dicts), so each chart is a pure function."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from sipas_pipeline.report.drawing import Canvas

BLUE, GREY, DARK, ORANGE = "#0072B2", "#9a9a9a", "#333333", "#D55E00"  # Okabe-Ito blue and vermillion
LIGHT_BLUE = "#8fbfe0"
# groups A (best) to E: viridis steps, dark to light, distinguishable in every common colour-vision deficiency
GROUP_COLOURS = {"A": "#30427a", "B": "#1f8a8a", "C": "#4fbf6a", "D": "#b5d83a", "E": "#f2e33b"}
QUARTILE_COLOURS = ["#deebf7", "#9ecae1", "#4292c6", "#08519c"]  # lowest to highest quarter (one hue)
WIDTH = 480
NAME_W, VALUE_W, ROW = 150, 58, 16


def ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (about n of them)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    first = math.floor(lo / step) * step
    return [round(first + i * step, 6) for i in range(math.ceil((hi - first) / step) + 1)]


def wrap(text: str, size: float, width: float) -> list[str]:
    """Greedy word wrap for a line of `width` units at font `size` (DejaVu Sans: about 0.6 em per character)."""
    per_line = max(int(width / (0.6 * size)), 10)
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > per_line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def fit(text: str, size: float, width: float) -> str:
    """`text` cut (with an ellipsis) to what fits `width` units at font `size`."""
    most = max(int(width / (0.56 * size)), 4)
    return text if len(text) <= most else text[:most - 1].rstrip(" ,/") + "…"


def heading(c: Canvas, title: str, subtitle: str, y: float = 18) -> float:
    """Title (bold) and subtitle lines at the top; returns the y below them."""
    for line in wrap(title, 14, c.width - 16):
        c.text(8, y, line, 14, bold=True)
        y += 18
    for line in wrap(subtitle, 12, c.width - 16):
        c.text(8, y, line, 12, fill="#555")
        y += 15
    return y + 4


def footer(c: Canvas, source: str) -> None:
    y = c.height - 8 - 14 * (len(wrap(source, 11, c.width - 16)) - 1)
    for line in wrap(source, 11, c.width - 16):
        c.text(8, y, line, 11, fill="#555", cls="source")
        y += 14


def dot_plot(rows: Sequence[dict], title: str, subtitle: str, axis_label: str, source: str = "",
             references: Sequence[tuple[float, str]] = (), bounds: Sequence[tuple[float, str]] = (),
             legend: Sequence[tuple[str, str, str]] = (), flag_note: str = "", lo: float | None = None,
             hi: float | None = None, decimals: int = 2, label: str = "") -> Canvas:
    """Each row (label, value, low, high[, colour, flag, tip]) a dot with its interval line, in the given order,
    its value printed at the right (a flagged row: hollow dot and a dagger). `references`: dashed lines with
    a label (e.g. the national mean); `bounds`: solid lines at group bounds (class `bound`); `legend`: (colour,
    text, group) entries, drawn as given (callers pass only what the chart holds)."""
    rows = [r for r in rows if r.get("value") is not None]
    values = [v for r in rows for v in (r["value"], r.get("low"), r.get("high")) if v is not None]
    values += [x for x, _ in references] + [x for x, _ in bounds]
    lo = min(values) if lo is None else lo
    hi = max(values) if hi is None else hi
    pad = (hi - lo) * 0.04 or 1
    axis = ticks(lo - pad, hi + pad)
    x0, x1 = axis[0], axis[-1]
    c = Canvas(WIDTH, 0, label or title)
    top = heading(c, title, subtitle) + (16 * (bool(references) + bool(bounds)) + 4 if references or bounds else 0)
    legend_rows = len(legend) + bool(flag_note)
    c.height = top + ROW * len(rows) + 40 + 16 * legend_rows + (14 * len(wrap(source, 11, WIDTH - 16)) + 6 if source else 4)
    left, right = NAME_W, WIDTH - VALUE_W

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * (right - left)

    bottom = top + ROW * len(rows)
    for t in axis:
        c.line(px(t), top - 4, px(t), bottom, "#e6e6e6")
        c.text(px(t), bottom + 14, f"{t:g}", 11, "middle", fill="#555", cls="tick")
    c.line(left, bottom, right, bottom, "#999", cls="axis", data={"min": f"{x0:g}", "max": f"{x1:g}"})
    c.text((left + right) / 2, bottom + 29, axis_label, 11, "middle", fill="#555")
    for x, text in bounds:
        c.line(px(x), top - 12, px(x), bottom, DARK, 1.2, cls="bound", data={"value": f"{x:g}"})
        c.text(px(x) + 2, top - 4, text, 11, fill=DARK, cls="bound-label")
    ref_y = top - 4 - (16 if bounds else 0)
    for x, text in references:
        c.line(px(x), ref_y - 8, px(x), bottom, ORANGE, 1.2, "4 3", cls="reference", data={"value": f"{x:.4f}"})
        c.text(px(x) + (-3 if px(x) > right - 120 else 3), ref_y, text, 11, "end" if px(x) > right - 120 else "start",
               fill=ORANGE)
    for i, r in enumerate(rows):
        y = top + ROW * i + ROW / 2
        colour = r.get("colour") or BLUE
        c.text(left - 6, y + 4, r["label"], 11.5, "end", cls="name")
        if r.get("low") is not None and r.get("high") is not None:
            c.line(px(r["low"]), y, px(r["high"]), y, colour if r.get("colour") else LIGHT_BLUE, 2.5, cls="interval")
        flag = bool(r.get("flag"))
        c.circle(px(r["value"]), y, 3.6, "white" if flag else colour, colour if flag else None,
                 cls="dot flagged" if flag else "dot", tip=r.get("tip"), data={"group": r["group"]} if r.get("group") else None)
        c.text(WIDTH - 4, y + 4, f"{r['value']:.{decimals}f}" + (" †" if flag else ""), 11, "end", cls="value")
    y = bottom + 46
    for colour, text, group in legend:
        c.rect(8, y - 9, 12, 10, colour, "#666", cls="legend-item", data={"group": group})
        c.text(26, y, text, 11)
        y += 16
    if flag_note:
        c.circle(14, y - 4, 3.6, "white", BLUE, cls="legend-flag")
        c.text(26, y, "† " + flag_note, 11)
        y += 16
    if source:
        footer(c, source)
    return c


def bar_chart(rows: Sequence[dict], title: str, subtitle: str, axis_label: str, hi: float = 100,
              markers: Sequence[tuple[str, str, str]] = (), source: str = "", decimals: int = 1) -> Canvas:
    """Horizontal bars from zero (never a truncated axis) with optional marker ticks per row: `markers` are
    (key in the row, colour, legend text), e.g. the national and regional means."""
    c = Canvas(WIDTH, 0, title)
    top = heading(c, title, subtitle)
    left, right = NAME_W + 30, WIDTH - VALUE_W
    rows = list(rows)
    row_h = 28
    bottom = top + row_h * len(rows)
    c.height = bottom + 40 + 16 * len(markers) + (14 * len(wrap(source, 11, WIDTH - 16)) + 6 if source else 4)

    def px(v: float) -> float:
        return left + v / hi * (right - left)

    for t in ticks(0, hi):
        if t <= hi:
            c.line(px(t), top, px(t), bottom, "#e6e6e6")
            c.text(px(t), bottom + 14, f"{t:g}", 11, "middle", fill="#555", cls="tick")
    c.line(px(0), top, px(0), bottom, "#999", cls="axis", data={"min": "0", "max": f"{hi:g}"})
    c.text((left + right) / 2, bottom + 29, axis_label, 11, "middle", fill="#555")
    for i, r in enumerate(rows):
        y = top + row_h * i
        vi, en = r["label"] if isinstance(r["label"], tuple) else (r["label"], "")
        c.text(left - 6, y + 12, fit(vi, 11, left - 10), 11, "end", cls="name")
        if en:
            c.text(left - 6, y + 25, fit(en, 11, left - 10), 11, "end", fill="#555", cls="name-en")
        value = r.get("value")
        if value is not None:
            c.rect(px(0), y + 6, px(value) - px(0), row_h - 12, r.get("colour") or LIGHT_BLUE, cls="bar",
                   data={"x0": "0"})
            c.text(WIDTH - 4, y + 18, f"{value:.{decimals}f}", 11, "end", cls="value")
        for key, colour, _ in markers:
            if r.get(key) is not None:
                c.line(px(r[key]), y + 1, px(r[key]), y + row_h - 1, colour, 2.5, cls=f"marker {key}")
    y = bottom + 46
    for _key, colour, text in markers:
        c.line(10, y - 9, 10, y + 1, colour, 2.5)
        c.text(20, y, text, 11)
        y += 16
    if source:
        footer(c, source)
    return c


def tile_map(tiles: Sequence[dict], title: str, subtitle: str, legend: Sequence[tuple[str, str, str]],
             source: str = "") -> Canvas:
    """A grid of units in their geographic places (row, col from the year's tile file): each tile coloured by
    its class (quartile or group), its short name and value written on it. `tiles`: code, row, col, short,
    value, colour, cls (legend key), name (full, for the tooltip)."""
    cols = max(t["col"] for t in tiles) + 1
    rows = max(t["row"] for t in tiles) + 1
    size = min(64.0, (WIDTH - 16) / cols)
    c = Canvas(WIDTH, 0, title)
    top = heading(c, title, subtitle)
    left = (WIDTH - size * cols) / 2
    for t in tiles:
        x, y = left + t["col"] * size, top + t["row"] * size * 0.72
        dark = t["colour"] in (QUARTILE_COLOURS[2], QUARTILE_COLOURS[3], GROUP_COLOURS["A"], GROUP_COLOURS["B"])
        ink = "white" if dark else "#111"
        c.rect(x + 1, y + 1, size - 2, size * 0.72 - 2, t["colour"], "#fff", cls="tile",
               tip=f"{t['name']}: {t['value_text']}", data={"code": t["code"], "class": t["cls"]})
        c.text(x + size / 2, y + size * 0.30, t["short"], 11, "middle", bold=True, fill=ink)
        c.text(x + size / 2, y + size * 0.58, t["value_text"], 11, "middle", fill=ink)
    y = top + rows * size * 0.72 + 18
    for colour, text, key in legend:
        c.rect(8, y - 10, 14, 12, colour, "#666", cls="legend-item", data={"group": key})
        c.text(28, y, text, 11)
        y += 16
    c.height = y + (14 * len(wrap(source, 11, WIDTH - 16)) + 6 if source else 0)
    if source:
        footer(c, source)
    return c


def heatmap(rows: Sequence[dict], columns: Sequence[dict], title: str, subtitle: str, source: str = "") -> Canvas:
    """Units (rows, in the given order) x tree nodes (columns, in tree order, each with its part), every cell
    coloured on one blue scale over the cells' range and its value written in it. `rows`: label, values
    {node: value}; `columns`: node, label_vi, label_en, part (its part's label)."""
    cell_w, cell_h = 36, 17
    head = max(len(col[k]) for col in columns for k in ("label_vi", "label_en")) * 6.0 * 0.87 + 24 if columns else 40
    values = [v for r in rows for v in r["values"].values() if v is not None]
    lo, hi = (min(values), max(values)) if values else (0, 100)
    width = NAME_W + cell_w * len(columns) + 10
    c = Canvas(max(width, WIDTH), 0, title)
    top = heading(c, title, subtitle) + head
    parts: dict[str, list[int]] = {}
    for j, col in enumerate(columns):
        parts.setdefault(col["part"], []).append(j)
        x = NAME_W + cell_w * j + cell_w / 2
        c.text(x - 2, top - 6, col["label_vi"], 11, rotate=-60, cls="column")
        c.text(x + 11, top - 6, col["label_en"], 11, rotate=-60, fill="#555", cls="column-en")
    for part, js in parts.items():
        x0, x1 = NAME_W + cell_w * js[0], NAME_W + cell_w * (js[-1] + 1)
        c.line(x0 + 2, top - 2, x1 - 2, top - 2, DARK, 2)
        c.line(x1, top, x1, top + cell_h * len(rows), "white", 3)
        c.text((x0 + x1) / 2, top - head + 2, part, 11, "middle", bold=True)
    for i, r in enumerate(rows):
        y = top + cell_h * i
        c.text(NAME_W - 6, y + 12, r["label"], 11, "end", cls="name")
        for j, col in enumerate(columns):
            v = r["values"].get(col["node"])
            if v is None:
                continue
            share = (v - lo) / (hi - lo) if hi > lo else 0.5
            fill = blend("#f0f6fb", "#08306b", share)
            c.rect(NAME_W + cell_w * j, y, cell_w - 1, cell_h - 1, fill, cls="cell",
                   tip=f"{r['label']} – {col['label_vi']} ({col['label_en']}): {v:.2f}")
            c.text(NAME_W + cell_w * j + cell_w / 2, y + 12, f"{v:.1f}", 11, "middle",
                   fill="white" if share > 0.55 else "#111", cls="cell-value")
    y = top + cell_h * len(rows) + 18
    for k in range(6):  # the scale, light to dark
        v = lo + (hi - lo) * k / 5
        c.rect(8 + 44 * k, y - 10, 44, 12, blend("#f0f6fb", "#08306b", k / 5))
        c.text(8 + 44 * k + 22, y + 14, f"{v:.0f}", 11, "middle")
    c.text(8 + 44 * 6 + 6, y, "% (thang màu / colour scale)", 11)
    c.height = y + 24 + (14 * len(wrap(source, 11, c.width - 16)) + 6 if source else 0)
    if source:
        footer(c, source)
    return c


def blend(a: str, b: str, t: float) -> str:
    """The colour a share `t` (0-1) of the way from `a` to `b`."""
    t = min(max(t, 0.0), 1.0)
    pa, pb = (tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for h in (a, b))
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(pa, pb, strict=True))


def trend(points: Sequence[dict], title: str, subtitle: str) -> Canvas:
    """A unit's figures over the years: per series (SIPAS, PAR INDEX), one dot per year with its interval
    where it has one; published figures (no interval) drawn hollow. `points`: series, year, value, low,
    high, published (bool)."""
    c = Canvas(WIDTH, 0, title)
    top = heading(c, title, subtitle) + 6
    years = sorted({p["year"] for p in points})
    values = [v for p in points for v in (p["value"], p.get("low"), p.get("high")) if v is not None]
    axis = ticks(min(values) - 1, max(values) + 1, 4) if values else [0, 100]
    h = 150
    left, right = 60, WIDTH - 120
    c.height = top + h + 70

    def px(year: int) -> float:
        return (left + right) / 2 if len(years) == 1 else left + (year - years[0]) / (years[-1] - years[0]) * (right - left)

    def py(v: float) -> float:
        return top + h - (v - axis[0]) / (axis[-1] - axis[0]) * h

    for t in axis:
        c.line(left - 10, py(t), right + 10, py(t), "#e6e6e6")
        c.text(left - 14, py(t) + 4, f"{t:g}", 11, "end", fill="#555", cls="tick")
    for y in years:
        c.text(px(y), top + h + 16, str(y), 11, "middle", cls="year")
    colours = {"SIPAS": BLUE, "PAR INDEX": ORANGE}
    for k, series in enumerate(sorted({p["series"] for p in points})):
        colour = colours.get(series, DARK)
        mine = sorted((p for p in points if p["series"] == series), key=lambda p: p["year"])
        for a, b in itertools.pairwise(mine):
            c.line(px(a["year"]), py(a["value"]), px(b["year"]), py(b["value"]), colour, 1.5,
                   "3 3" if b.get("published") or a.get("published") else None)
        for p in mine:
            if p.get("low") is not None and p.get("high") is not None:
                c.line(px(p["year"]), py(p["low"]), px(p["year"]), py(p["high"]), colour, 2)
            c.circle(px(p["year"]), py(p["value"]), 4, "white" if p.get("published") else colour, colour,
                     cls="trend-point", data={"year": p["year"], "series": series})
        last = mine[-1]
        c.text(right + 16, py(last["value"]) + 4 + 13 * k * 0, f"{series} {last['value']:.2f}", 11, fill=colour)
    c.circle(14, top + h + 40, 4, "white", DARK)
    c.text(24, top + h + 44, "số liệu đã công bố, không có khoảng tin cậy / published figure, no interval", 11)
    return c
