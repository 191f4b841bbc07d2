"""`build`: the whole release for one year from the DuckDB file into a folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from sipas_pipeline.report import charts
from sipas_pipeline.report.data import read
from sipas_pipeline.report.excel import write_workbook
from sipas_pipeline.report.exports import write_csvs
from sipas_pipeline.report.folder import build_and_swap, target
from sipas_pipeline.report.html import page


@dataclass(frozen=True)
class ReportFiles:
    """What `build` wrote: the HTML report, the press PNGs, the workbook and the CSVs."""

    html: Path
    workbook: Path
    pngs: list[Path] = field(default_factory=list)
    csvs: list[Path] = field(default_factory=list)

    def all(self) -> list[Path]:
        return [self.html, self.workbook, *self.pngs, *self.csvs]


def build(db: Path, year: int, out_dir: Path) -> ReportFiles:
    """Read `year`'s current run from `db` (read-only) and write the release into `out_dir`:
    sipas_<year>_report.html (self-contained), PNGs of the main charts, sipas_<year>.xlsx and the CSVs. The release
    is built whole in a fresh folder beside `out_dir` and swapped in (report.folder): `out_dir` must be new, empty or
    an earlier release (files there that sipas did not write are kept); any failure is one line and leaves the
    previous release as it was. A missing file or year is an InputError before anything is written."""
    out = target(Path(out_dir))
    data = read(Path(db), year)
    names: dict[str, Path] = {}

    def write(folder: Path) -> list[Path]:
        files = write_release(data, year, folder)
        names.update({k: v for k, v in files.items() if not isinstance(v, list)})
        names.update({f"{k}:{i}": p for k, v in files.items() if isinstance(v, list) for i, p in enumerate(v)})
        return list(names.values())

    build_and_swap(out, write)
    final = {k: out / p.name for k, p in names.items()}
    return ReportFiles(html=final["html"], workbook=final["workbook"],
                       pngs=[final[k] for k in sorted(final) if k.startswith("pngs:")],
                       csvs=[final[k] for k in sorted(final, key=_order) if k.startswith("csvs:")])


def _order(key: str) -> tuple[str, int]:
    name, _, i = key.partition(":")
    return name, int(i or 0)


def write_release(data, year: int, out: Path) -> dict[str, Path | list[Path]]:
    """Every file of the release into the folder `out`: the HTML report, the PNGs, the workbook and the CSVs."""
    s = data["sipas"]
    provinces = s.filter((pl.col("unit_level") == "province") & (pl.col("level") == "sipas"))
    national = s.filter((pl.col("unit_level") == "nation") & (pl.col("level") == "sipas"))["value"][0]
    par = data["par"]
    regions = (s.filter((pl.col("unit_level") == "region") & (pl.col("level") == "sipas"))
               .select("unit_code", "unit_name_vi", sipas="value")
               .join(par.filter(pl.col("unit_level") == "region").select("unit_code", "par_index"), on="unit_code")
               .sort("unit_code"))
    pngs = [out / f"sipas_{year}_sipas.png", out / f"sipas_{year}_par_index.png"]
    figures = {
        "sipas": charts.sipas_ranking(provinces, national, pngs[0]),
        "par": charts.par_index(par.filter(pl.col("unit_level") == "province"), pngs[1]),
        "regions": charts.regional_means(regions),
        "heatmap": charts.element_heatmap(s.filter((pl.col("unit_level") == "province") & (pl.col("level") == "element"))),
        "ranks": charts.rank_intervals(data["ranks"].filter(pl.col("measure") == "sipas")),
    }
    html = out / f"sipas_{year}_report.html"
    html.write_text(page(data, figures), encoding="utf-8")
    workbook = write_workbook(data, out / f"sipas_{year}.xlsx")
    return {"html": html, "workbook": workbook, "pngs": pngs, "csvs": write_csvs(data, out)}
