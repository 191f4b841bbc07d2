"""One A4 PDF scorecard per province, printed by headless Chromium (Page.printToPDF) from the scorecard's own
page: laid out at the printable width, then scaled so that it fits one sheet. Only when asked (`sipas report
--pdf`): a browser costs seconds, the rest of the release milliseconds."""

from __future__ import annotations

import base64
from pathlib import Path

from sipas_pipeline.report.chromium import Browser, DevTools
from sipas_pipeline.report.figures import Context
from sipas_pipeline.report.html import scorecard_page
from sipas_pipeline.report.scorecard import Lookup

A4 = (8.27, 11.69)  # inches
MARGIN = 0.39  # inches (10 mm)
PX = 96  # CSS px per inch


def print_page(page: DevTools, url: str, out: Path) -> Path:
    """Print the page at `url` to `out` as one A4 sheet: measured at the printable width in print media, scaled
    down to the printable height when taller."""
    width, height = ((A4[0] - 2 * MARGIN) * PX, (A4[1] - 2 * MARGIN) * PX)
    page.call("Emulation.setEmulatedMedia", media="print")
    page.call("Emulation.setDeviceMetricsOverride", width=round(width), height=round(height), deviceScaleFactor=1, mobile=False)
    page.open(url)
    tall = page.evaluate("document.documentElement.scrollHeight") or height
    scale = max(0.1, min(1.0, height / tall * 0.98))
    pdf = page.call("Page.printToPDF", paperWidth=A4[0], paperHeight=A4[1], marginTop=MARGIN, marginBottom=MARGIN,
                    marginLeft=MARGIN, marginRight=MARGIN, printBackground=True, scale=round(scale, 3),
                    preferCSSPageSize=False)
    out.write_bytes(base64.b64decode(pdf["data"]))
    return out


def print_scorecards(ctx: Context, tree: list[dict], codes: list[str], out_dir: Path,
                     browser: Browser | None = None) -> list[Path]:
    """`out_dir`/sipas_<year>_<code>.html and .pdf for every province in `codes`; one browser for all (the given
    one, or one started and stopped here)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    look = Lookup(ctx)
    pages = []
    for code in codes:
        html = out_dir / f"sipas_{ctx.data.year}_{code}.html"
        html.write_text(scorecard_page(ctx, code, tree, look), encoding="utf-8")
        pages.append((html, out_dir / f"sipas_{ctx.data.year}_{code}.pdf"))
    if browser is not None and browser.page is not None:
        return [print_page(browser.page, html.as_uri(), pdf) for html, pdf in pages]
    with Browser() as own:
        assert own.page is not None
        return [print_page(own.page, html.as_uri(), pdf) for html, pdf in pages]
