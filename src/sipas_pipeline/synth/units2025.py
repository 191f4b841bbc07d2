"""Build `schemas/2025/` from `schemas/2024/` and the merger file (Resolution 202/2025/QH15).

Run once: `python -m sipas_pipeline.synth.units2025 <province_merger_2025.csv>`. It writes the 34 units
(`provinces.csv`), the old names as aliases (`province_aliases.csv`), the mapping old -> new
(`unit_mapping.csv`) and copies the forms, code lists,
indicator set and PAR framework of 2024 unchanged; `methodology.yaml` is written by hand.

Rules (documented in schemas/2025/methodology.yaml):
- a unit's region is the 2024 region of the province whose name the unit keeps (the merger file's first
  row for the unit), e.g. the new Lâm Đồng stays in the Central Highlands although it takes in Bình Thuận;
- the two-tier sampling frame is not written here: `python -m sipas_pipeline.synth.frame` writes it from the
  official 2025 communes (`tools/official_units.py`) and the 2024 frame.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from sipas_pipeline.paths import schemas_root

COPIED = ("code_lists.csv", "indicators.csv", "official_form.csv", "appraisal_form.csv",
          "par_criteria.csv", "par_subcriteria.csv")


def _strip_accents(name: str) -> str:
    import unicodedata

    text = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def build(merger_csv: Path, out: Path | None = None, old_year: int = 2024) -> Path:
    """Write the generated files of the 2025 folder (all but methodology.yaml)."""
    old = schemas_root() / str(old_year)
    out = out or schemas_root() / "2025"
    out.mkdir(parents=True, exist_ok=True)
    merger = pl.read_csv(merger_csv, infer_schema=False)
    provinces = pl.read_csv(old / "provinces.csv", comment_prefix="#", infer_schema=False)
    region = dict(zip(provinces["province_code"], provinces["region_code"], strict=True))
    units = (merger.group_by("new_code", maintain_order=True).first()
             .select(pl.col("new_code").alias("province_code"), pl.col("new_name").alias("name_vi"),
                     pl.col("new_name").map_elements(_strip_accents, return_dtype=pl.Utf8).alias("name_en"),
                     pl.col("old_code").replace_strict(region).alias("region_code"))
             .sort("province_code"))
    header = ("# The 34 provinces and centrally-run cities from 1 July 2025 (Resolution 202/2025/QH15; codes of\n"
              "# Decision 19/2025/QĐ-TTg as in ../shared/reference/province_merger_2025.csv). region_code: the 2024 region\n"
              "# of the province whose name the unit keeps (see methodology.yaml, regions). Made by\n"
              "# `python -m sipas_pipeline.synth.units2025`.\n")
    (out / "provinces.csv").write_text(header + units.write_csv(), encoding="utf-8")
    mapping = merger.select(pl.lit(str(old_year)).alias("from_year"), pl.col("old_code").alias("from_code"),
                            pl.col("old_name").alias("from_name"), pl.col("new_code").alias("to_code"),
                            pl.col("new_name").alias("to_name")).sort("from_code")
    (out / "unit_mapping.csv").write_text(
        f"# Each {old_year} province -> the 2025 unit it became (whole provinces merged; no province split).\n"
        "# Used to re-estimate the previous year on this year's units (the comparable series).\n"
        + mapping.write_csv(), encoding="utf-8")
    old_aliases = pl.read_csv(old / "province_aliases.csv", comment_prefix="#", infer_schema=False)
    to_new = dict(zip(merger["old_code"], merger["new_code"], strict=True))
    new_names = set(units["name_vi"])
    aliases = pl.concat([
        merger.filter(~pl.col("old_name").is_in(list(new_names)))
        .select(pl.col("old_name").alias("alias"), pl.col("new_code").alias("province_code"), pl.lit("yes").alias("old_unit")),
        old_aliases.with_columns(pl.col("province_code").replace_strict(to_new), pl.lit("no").alias("old_unit")),
    ]).unique("alias", keep="first", maintain_order=True)
    (out / "province_aliases.csv").write_text(
        "# Other ways a unit is written in the exports. A 2024 province's name resolves to the 2025 unit that took it\n"
        "# in (an export still spelling an old province): old_unit = yes, and the ingest report notes such rows per file.\n"
        "alias,province_code,old_unit\n" + aliases.write_csv(include_header=False), encoding="utf-8")
    for name in COPIED:
        text = (old / name).read_text(encoding="utf-8")
        (out / name).write_text(text.replace(str(old_year), "2025", 1), encoding="utf-8")
    cit = (old / "citizen_form.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (out / "citizen_form.csv").write_text(
        "".join(line.replace(str(old_year), "2025", 1) if i == 0 else line
                for i, line in enumerate(cit) if not line.startswith("district_code,")), encoding="utf-8")
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
