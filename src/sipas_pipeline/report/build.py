"""`build`: the whole release for one year from the DuckDB file into a folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from sipas_pipeline.report import figures
from sipas_pipeline.report.data import ReportData, read
from sipas_pipeline.report.excel import write_workbook
from sipas_pipeline.report.exports import write_csvs
from sipas_pipeline.report.figures import Context, rank_interval_name
from sipas_pipeline.report.findings import compute_findings
from sipas_pipeline.report.folder import build_and_swap, target
from sipas_pipeline.report.html import page

PRESS_SCALE = 3.4  # 480-unit charts -> 1632 px wide PNGs


@dataclass(frozen=True)
class ReportFiles:
    """What `build` wrote: the HTML report, the press PNGs, the workbook, the CSVs and (when asked) the PDFs."""

    html: Path
    workbook: Path
    pngs: list[Path] = field(default_factory=list)
    csvs: list[Path] = field(default_factory=list)
    pdfs: list[Path] = field(default_factory=list)

    def all(self) -> list[Path]:
        return [self.html, self.workbook, *self.pngs, *self.csvs, *self.pdfs]


def build(db: Path, year: int, out_dir: Path, pdf: bool = False) -> ReportFiles:
    """Read `year`'s current run from `db` (read-only) and write the release into `out_dir`:
    sipas_<year>_report.html (self-contained), press PNGs of the main charts, sipas_<year>.xlsx, the CSVs and, with
    `pdf`, one A4 PDF scorecard per province under scorecards/ (Chromium's print to PDF). The release is built whole
    in a fresh folder beside `out_dir` and swapped in (report.folder): `out_dir` must be new, empty or an earlier
    release (files there that sipas did not write are kept); any failure is one line and leaves the previous release
    as it was. A missing file or year is an InputError before anything is written."""
    out = target(Path(out_dir))
    data = read(Path(db), year)
    names: dict[str, Path] = {}

    def write(folder: Path) -> list[Path]:
        files = write_release(data, year, folder, pdf)
        names.update({k: v.relative_to(folder) for k, v in files.items() if not isinstance(v, list)})
        names.update({f"{k}:{i}": p.relative_to(folder) for k, v in files.items() if isinstance(v, list)
                      for i, p in enumerate(v)})
        # the release's own top-level entries (the scorecards folder once, not each of its files)
        return sorted({folder / p.parts[0] for p in names.values()})

    build_and_swap(out, write)
    final = {k: out / p for k, p in names.items()}
    return ReportFiles(html=final["html"], workbook=final["workbook"],
                       pngs=[final[k] for k in sorted(final, key=_order) if k.startswith("pngs:")],
                       csvs=[final[k] for k in sorted(final, key=_order) if k.startswith("csvs:")],
                       pdfs=[final[k] for k in sorted(final, key=_order) if k.startswith("pdfs:")])


def _order(key: str) -> tuple[str, int]:
    name, _, i = key.partition(":")
    return name, int(i or 0)


def context(data: ReportData) -> tuple[Context, list[dict]]:
    """The release's context (group bounds, tile places, published figures from the year's methodology) and the
    SIPAS tree's elements in order (policy groups, then service elements)."""
    from sipas_pipeline.methodology import load_methodology

    m = load_methodology(data.year)
    run = data["run"].row(0, named=True)
    date = run["finished_at"].date().isoformat() if run.get("finished_at") else ""
    source = (f"Nguồn / Source: SIPAS & Chỉ số CCHC / PAR INDEX {data.year}, sipas-pipeline, "
              f"lần chạy / run {run['run_id']} ({date})")
    ctx = Context(data, m.group_bounds, m.tile_map(), m.published(), source, rank_interval_name(data["ranks"]))
    parts = dict(m.parts.select("part", "label_vi").iter_rows())
    tree = [{"node": r["element"], "label_vi": r["label_vi"], "label_en": r["label_en"],
             "label": f"{r['label_vi']} / {r['label_en']}", "part": parts.get(r["part"], r["part"])}
            for r in m.tree.iter_rows(named=True)]
    return ctx, tree


def write_release(data: ReportData, year: int, out: Path, pdf: bool = False) -> dict[str, Path | list[Path]]:
    """Every file of the release into the folder `out`: the HTML report, the press PNGs, the workbook, the CSVs and,
    with `pdf`, the PDF scorecards."""
    ctx, tree = context(data)
    sipas, par = figures.sipas_ranking(ctx), figures.par_chart(ctx)
    regions_sipas, regions_par = figures.regions(ctx)
    tiles = {m: figures.tiles(ctx, m) for m in ("sipas", "par")}
    gap = figures.gap_chart(ctx)
    svgs = {"sipas": sipas.svg(), "par": par.svg(), "regions_sipas": regions_sipas.svg(), "regions_par": regions_par.svg(),
            "tiles_sipas": tiles["sipas"].svg("chart tiles"), "tiles_par": tiles["par"].svg("chart tiles"),
            "heatmap": figures.heatmap(ctx, tree).svg("chart heatmap"), "ranks": figures.rank_chart(ctx).svg(),
            "gap": gap.svg() if gap else ""}
    pngs = [c.png(out / f"sipas_{year}_{name}.png", PRESS_SCALE) for name, c in (("sipas", sipas), ("par_index", par))]
    found = compute_findings(year, data["sipas"], data["ranks"], data["par"], data["contrasts"], ctx.published, ctx.bounds,
                             ctx.interval)
    html = out / f"sipas_{year}_report.html"
    html.write_text(page(ctx, found, svgs, tree), encoding="utf-8")
    workbook = write_workbook(data, out / f"sipas_{year}.xlsx", ctx, tree)
    files: dict[str, Path | list[Path]] = {"html": html, "workbook": workbook, "pngs": pngs, "csvs": write_csvs(data, out)}
    if pdf:
        from sipas_pipeline.report.pdf import print_scorecards

        codes = (data["sipas"].filter((pl.col("unit_level") == "province") & (pl.col("level") == "sipas"))
                 .sort("unit_sort_key")["unit_code"].to_list())
        files["pdfs"] = [p for p in print_scorecards(ctx, tree, codes, out / "scorecards") if p.suffix == ".pdf"]
    return files
