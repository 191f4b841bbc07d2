"""A small drawing surface for the release's charts: shapes recorded once, written as inline SVG for the
HTML (text kept as <text>, so the page is searchable and names stay Vietnamese) or as a PNG for the press
(Pillow, at a scale: 2 gives 1600+ px from an 800-unit chart). No matplotlib: drawing a chart is string
work, so 63 scorecards with three charts each cost milliseconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from html import escape
from pathlib import Path

FONT = "DejaVu Sans"
MIN_TEXT = 11  # px: no label smaller (readable on a phone)
FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


@dataclass
class Canvas:
    """Shapes in drawing units (1 unit = 1 CSS px at natural size). `items` are (kind, attributes) pairs."""

    width: float
    height: float
    label: str = ""
    items: list[tuple[str, dict]] = field(default_factory=list)

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#444", width: float = 1,
             dash: str | None = None, cls: str | None = None, data: dict | None = None) -> None:
        self.items.append(("line", {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "stroke": stroke, "width": width,
                                    "dash": dash, "cls": cls, "data": data}))

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str | None = None,
             cls: str | None = None, tip: str | None = None, data: dict | None = None) -> None:
        self.items.append(("rect", {"x": x, "y": y, "w": w, "h": h, "fill": fill, "stroke": stroke, "cls": cls,
                                    "tip": tip, "data": data}))

    def circle(self, cx: float, cy: float, r: float, fill: str, stroke: str | None = None, cls: str | None = None,
               tip: str | None = None, data: dict | None = None) -> None:
        self.items.append(("circle", {"cx": cx, "cy": cy, "r": r, "fill": fill, "stroke": stroke, "cls": cls,
                                      "tip": tip, "data": data}))

    def text(self, x: float, y: float, s: str, size: float = 12, anchor: str = "start", bold: bool = False,
             fill: str = "#222", cls: str | None = None, rotate: float = 0, data: dict | None = None) -> None:
        self.items.append(("text", {"x": x, "y": y, "s": s, "size": max(size, MIN_TEXT), "anchor": anchor, "bold": bold,
                                    "fill": fill, "cls": cls, "rotate": rotate, "data": data}))

    # ---- SVG -------------------------------------------------------------------------------------------------

    def svg(self, cls: str = "chart") -> str:
        """Inline SVG: natural width, scaled down (never up) by CSS on narrow screens."""
        parts = [f"<svg xmlns='http://www.w3.org/2000/svg' class='{cls}' viewBox='0 0 {self.width:g} {self.height:g}' "
                 f"width='{self.width:g}' height='{self.height:g}' role='img' aria-label='{escape(self.label, True)}' "
                 f"font-family=\"{FONT}, Arial, sans-serif\">"]
        if self.label:
            parts.append(f"<title>{escape(self.label)}</title>")
        parts += [_svg_item(kind, a) for kind, a in self.items]
        parts.append("</svg>")
        return "".join(parts)

    # ---- PNG -------------------------------------------------------------------------------------------------

    def png(self, path: Path, scale: float = 2) -> Path:
        """The same shapes as a PNG `scale` times the natural size (white background)."""
        from PIL import Image, ImageDraw

        img = Image.new("RGB", (round(self.width * scale), round(self.height * scale)), "white")
        draw = ImageDraw.Draw(img)
        for kind, a in self.items:
            if kind == "line":
                draw.line([(a["x1"] * scale, a["y1"] * scale), (a["x2"] * scale, a["y2"] * scale)], fill=a["stroke"],
                          width=max(1, round(a["width"] * scale)))
            elif kind == "rect":
                x0, y0 = a["x"] * scale, a["y"] * scale
                draw.rectangle([x0, y0, x0 + max(a["w"] * scale - 1, 0), y0 + max(a["h"] * scale - 1, 0)],
                               fill=a["fill"], outline=a["stroke"])
            elif kind == "circle":
                r = a["r"] * scale
                cx, cy = a["cx"] * scale, a["cy"] * scale
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=None if a["fill"] == "none" else a["fill"],
                             outline=a["stroke"], width=max(1, round(scale)))
            elif kind == "text" and not a["rotate"]:
                anchor = {"start": "ls", "middle": "ms", "end": "rs"}[a["anchor"]]
                draw.text((a["x"] * scale, a["y"] * scale), a["s"], fill=a["fill"], anchor=anchor,
                          font=_font(round(a["size"] * scale), a["bold"]))
            elif kind == "text":
                _rotated_text(img, a, scale)
        img.save(path, format="PNG", compress_level=1)  # fast: the default level costs 0.4 s a chart
        return path


def _attrs(a: dict) -> str:
    out = f" class='{a['cls']}'" if a.get("cls") else ""
    for k, v in (a.get("data") or {}).items():
        out += f" data-{k}='{escape(str(v), True)}'"
    return out


def _svg_item(kind: str, a: dict) -> str:
    tip = f"<title>{escape(a['tip'])}</title>" if a.get("tip") else ""
    if kind == "line":
        dash = f" stroke-dasharray='{a['dash']}'" if a["dash"] else ""
        return (f"<line x1='{a['x1']:.1f}' y1='{a['y1']:.1f}' x2='{a['x2']:.1f}' y2='{a['y2']:.1f}' stroke='{a['stroke']}' "
                f"stroke-width='{a['width']:g}'{dash}{_attrs(a)}/>")
    if kind == "rect":
        stroke = f" stroke='{a['stroke']}'" if a["stroke"] else ""
        body = f"<rect x='{a['x']:.1f}' y='{a['y']:.1f}' width='{max(a['w'], 0):.1f}' height='{a['h']:.1f}' fill='{a['fill']}'"
        return body + f"{stroke}{_attrs(a)}" + (f">{tip}</rect>" if tip else "/>")
    if kind == "circle":
        stroke = f" stroke='{a['stroke']}' stroke-width='1.5'" if a["stroke"] else ""
        body = f"<circle cx='{a['cx']:.1f}' cy='{a['cy']:.1f}' r='{a['r']:g}' fill='{a['fill']}'{stroke}{_attrs(a)}"
        return body + (f">{tip}</circle>" if tip else "/>")
    rot = f" transform='rotate({a['rotate']:g} {a['x']:.1f} {a['y']:.1f})'" if a["rotate"] else ""
    weight = " font-weight='bold'" if a["bold"] else ""
    return (f"<text x='{a['x']:.1f}' y='{a['y']:.1f}' font-size='{a['size']:g}' text-anchor='{a['anchor']}' "
            f"fill='{a['fill']}'{weight}{rot}{_attrs(a)}>{escape(a['s'])}</text>")


@cache
def _font(size: int, bold: bool):
    from PIL import ImageFont

    try:
        return ImageFont.truetype(FONT_FILES[bold], size)
    except OSError:  # no DejaVu on this machine: matplotlib's copy of it
        import importlib.resources

        ttf = importlib.resources.files("matplotlib") / "mpl-data" / "fonts" / "ttf" / (
            "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
        return ImageFont.truetype(str(ttf), size)


def _rotated_text(img, a: dict, scale: float) -> None:
    """Rotated text in a PNG: drawn on its own transparent strip, rotated, pasted with its baseline start at (x, y)."""
    from PIL import Image, ImageDraw

    font = _font(round(a["size"] * scale), a["bold"])
    _, _, right, bottom = font.getbbox(a["s"])
    strip = Image.new("RGBA", (right + 4, bottom + 4), (255, 255, 255, 0))
    ImageDraw.Draw(strip).text((0, 0), a["s"], fill=a["fill"], font=font)
    turned = strip.rotate(-a["rotate"], expand=True)
    x, y = a["x"] * scale, a["y"] * scale
    at = (round(x - (turned.width if a["anchor"] == "end" else 0)), round(y - turned.height))
    img.paste(turned, at, turned)
